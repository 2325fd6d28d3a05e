"""What the local servers share: one child process, its log, stop and kill."""

from __future__ import annotations

import signal
import subprocess
import time
from typing import IO, Self

from loopitis.local.ports import (
    LocalServerError,
    accepts_connections,
    end_process_group,
)

_POLL_S = 0.05


class LocalServer:
    """A server run as a child process in its own process group.

    Subclasses start it; this class tells whether it runs and ends it.
    """

    # How a clean stop is asked for, and whether only the leader gets it.
    stop_signal = signal.SIGTERM
    stop_leader_only = False

    port: int
    host: str

    def __init__(self) -> None:
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    def start(self) -> None:
        raise NotImplementedError

    @property
    def pid(self) -> int | None:
        """The server's pid while it runs, else None."""
        if self._process is None or self._process.poll() is not None:
            return None
        return self._process.pid

    @property
    def running(self) -> bool:
        return self.pid is not None

    def stop(self, timeout_s: float = 15.0) -> None:
        """Ask the server to stop; kill it after ``timeout_s``."""
        if self._process is None:
            return
        end_process_group(
            self._process,
            self.stop_signal,
            timeout_s,
            leader_only=self.stop_leader_only,
        )
        self._forget_process()

    def kill(self) -> None:
        """SIGKILL the server and its workers, as a crash would."""
        if self._process is None:
            return
        end_process_group(self._process, signal.SIGKILL, timeout_s=5.0)
        self._forget_process()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _wait_until_ready(self, timeout_s: float) -> None:
        """Poll until the server answers; a server that exits or stays silent
        past ``timeout_s`` is an error that says why."""
        assert self._process is not None
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            exit_code = self._process.poll()
            if exit_code is not None:
                message = self._exit_message(exit_code)
                self._forget_process()
                raise LocalServerError(message)
            if accepts_connections(self.port, self.host) and self._is_ready():
                return
            time.sleep(_POLL_S)
        self.kill()
        raise LocalServerError(self._timeout_message(timeout_s))

    def _is_ready(self) -> bool:
        raise NotImplementedError

    def _exit_message(self, exit_code: int) -> str:
        raise NotImplementedError

    def _timeout_message(self, timeout_s: float) -> str:
        raise NotImplementedError

    def _forget_process(self) -> None:
        self._process = None
        if self._log is not None:
            self._log.close()
            self._log = None

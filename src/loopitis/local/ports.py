"""Loopback ports, ending child processes, and the error of local servers."""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import socket
import subprocess

from loopitis.errors import LoopitisError

LOOPBACK = "127.0.0.1"


class LocalServerError(LoopitisError):
    """A local server (PostgreSQL, broker, dev child) failed to start or stop."""


def free_port(host: str = LOOPBACK) -> int:
    """Return a TCP port that nothing listens on right now.

    The port is only free at the moment of the call; whoever binds it next wins.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        port: int = probe.getsockname()[1]
    return port


def port_in_use(port: int, host: str = LOOPBACK) -> bool:
    """Tell whether a server could not bind ``host:port`` now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        # Servers set SO_REUSEADDR too, so a port left in TIME_WAIT counts as free.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return True
            raise
    return False


def accepts_connections(
    port: int, host: str = LOOPBACK, timeout_s: float = 0.5
) -> bool:
    """Tell whether something accepts a TCP connection on ``host:port``."""
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            return True
    except OSError:
        return False


def end_process_group(
    process: subprocess.Popen[bytes],
    first_signal: int,
    timeout_s: float,
    *,
    leader_only: bool = False,
) -> int:
    """Send ``first_signal`` to a child, then SIGKILL its group if it lingers.

    The child must have been started with ``start_new_session=True`` so that its
    pid is also the id of a process group holding its own children. With
    ``leader_only`` the polite signal goes to the child alone, for servers such
    as PostgreSQL that tell their own workers how to shut down.
    Returns the child's exit code.
    """
    if process.poll() is not None:
        return process.returncode
    if leader_only:
        process.send_signal(first_signal)
    else:
        signal_group(process.pid, first_signal)
    try:
        exit_code = process.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        exit_code = None
    # Also sweeps grandchildren that outlived a leader which did exit in time.
    signal_group(process.pid, signal.SIGKILL)
    return process.wait() if exit_code is None else exit_code


def signal_group(pid: int, signal_number: int) -> None:
    """Signal the process group led by ``pid``; a group already gone is fine."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal_number)

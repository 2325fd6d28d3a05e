"""``loopitis dev`` supervises real processes: stand-ins for the loopitis commands.

The supervisor runs in its own interpreter (it owns signal handlers) with a real
PostgreSQL and broker; only the gateway, consumer and migrate commands are
small scripts that record what happened to them.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

STAND_IN = """
import json, os, signal, sys, time

role, marker_dir = sys.argv[1], sys.argv[2]
behaviour = sys.argv[3] if len(sys.argv) > 3 else "serve"
record = {
    "role": role,
    "pid": os.getpid(),
    "env": {k: v for k, v in os.environ.items() if k.startswith("LOOPITIS_")},
}

def save():
    path = os.path.join(marker_dir, f"{role}-{os.getpid()}.json")
    with open(path + ".tmp", "w") as file:
        json.dump(record, file)
    os.replace(path + ".tmp", path)

def on_term(signum, frame):
    record["term_ns"] = time.time_ns()
    time.sleep(0.3)  # a short drain, so the order of stops is measurable
    record["exit_ns"] = time.time_ns()
    save()
    sys.exit(0)

signal.signal(signal.SIGTERM, on_term)
save()
print(f"{role} up", flush=True)
if behaviour == "exit-0":
    sys.exit(0)
if behaviour == "exit-3":
    sys.exit(3)
if behaviour == "die-soon":
    time.sleep(1.0)
    os._exit(7)
while True:
    time.sleep(0.1)
"""

DRIVER = """
import json, sys
from pathlib import Path
from loopitis.local.dev import DevCommands, run_dev

options = json.loads(sys.argv[1])
commands = DevCommands(**options.pop("commands"))
sys.exit(run_dev(data_dir=Path(options.pop("data_dir")), commands=commands, **options))
"""


@dataclass
class DevRun:
    """A supervisor started in a subprocess, with where its traces go."""

    process: subprocess.Popen[bytes]
    output_path: Path
    marker_dir: Path
    data_dir: Path

    @property
    def output(self) -> str:
        return self.output_path.read_text()

    def markers(self) -> list[dict[str, object]]:
        return [json.loads(path.read_text()) for path in self.marker_dir.glob("*.json")]

    def wait_for(self, roles: list[str], timeout_s: float = 30.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            started = sorted(str(marker["role"]) for marker in self.markers())
            if started == sorted(roles) and "Press Ctrl-C" in self.output:
                return
            assert self.process.poll() is None, self.output
            time.sleep(0.05)
        raise AssertionError(f"children did not start in time:\n{self.output}")


@pytest.fixture
def stand_in(tmp_path: Path) -> Path:
    script = tmp_path / "stand_in.py"
    script.write_text(STAND_IN)
    return script


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def _start_dev(
    tmp_path: Path,
    stand_in: Path,
    *,
    port: int | None = None,
    consumer: str = "serve",
    migrate: str = "exit-0",
    run_name: str = "run",
) -> DevRun:
    marker_dir = tmp_path / f"markers-{run_name}"
    marker_dir.mkdir()
    data_dir = tmp_path / "data"

    def command(role: str, behaviour: str) -> list[str]:
        return [sys.executable, str(stand_in), role, str(marker_dir), behaviour]

    options = {
        "port": port or _free_port(),
        "consumers": 2,
        "data_dir": str(data_dir),
        "grace_s": 5.0,
        "commands": {
            "migrate": command("migrate", migrate),
            "gateway": command("gateway", "serve"),
            "consumer": command("consumer", consumer),
        },
    }
    output_path = tmp_path / f"{run_name}.out"
    environment = {**os.environ, "LOOPITIS_LOG_LEVEL": "DEBUG"}
    environment.pop("LOOPITIS_PASSWORD", None)
    with output_path.open("wb") as output:
        process = subprocess.Popen(
            [sys.executable, "-c", DRIVER, json.dumps(options)],
            stdout=output,
            stderr=subprocess.STDOUT,
            env=environment,
        )
    return DevRun(process, output_path, marker_dir, data_dir)


def _run_refused(
    tmp_path: Path, data_dir: Path, port: int
) -> subprocess.CompletedProcess[str]:
    options = {
        "port": port,
        "data_dir": str(data_dir),
        "commands": {"migrate": ["true"], "gateway": ["true"], "consumer": ["true"]},
    }
    return subprocess.run(
        [sys.executable, "-c", DRIVER, json.dumps(options)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


@pytest.fixture
def dev_runs() -> Iterator[list[DevRun]]:
    runs: list[DevRun] = []
    yield runs
    for run in runs:  # a failed test must not leave a supervisor behind
        if run.process.poll() is None:
            run.process.send_signal(signal.SIGTERM)
            run.process.wait(timeout=30)


def _is_gone(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state in ("Z", "X")


def _server_pids(run: DevRun) -> list[int]:
    postmaster = (run.data_dir / "postgres" / "postmaster.pid").read_text()
    broker_line = next(
        line for line in run.output.splitlines() if "broker ready" in line
    )
    return [
        int(postmaster.split()[0]),
        int(broker_line.rsplit("pid ", 1)[1].split(")")[0]),
    ]


def _stop_lines(output: str) -> list[str]:
    return [
        line.split("| ", 1)[1] for line in output.splitlines() if "| stopped " in line
    ]


def test_run_dev_stops_children_then_servers_in_order(
    tmp_path: Path, stand_in: Path, dev_runs: list[DevRun]
) -> None:
    """SIGTERM stops consumers, then the gateway, broker and postgres; none remain."""
    run = _start_dev(tmp_path, stand_in)
    dev_runs.append(run)
    run.wait_for(["migrate", "gateway", "consumer", "consumer"])
    pids = [int(str(marker["pid"])) for marker in run.markers()] + _server_pids(run)

    run.process.send_signal(signal.SIGTERM)

    assert run.process.wait(timeout=30) == 0, run.output
    assert _stop_lines(run.output) == [
        "stopped consumer-1 (exit code 0)",
        "stopped consumer-2 (exit code 0)",
        "stopped gateway (exit code 0)",
        "stopped broker",
        "stopped postgres",
    ]
    by_role = {str(m["role"]) + str(m["pid"]): m for m in run.markers()}
    consumers = [m for m in by_role.values() if m["role"] == "consumer"]
    gateway = next(m for m in by_role.values() if m["role"] == "gateway")
    assert all("exit_ns" in consumer for consumer in consumers)
    assert int(str(gateway["term_ns"])) >= max(
        int(str(c["exit_ns"])) for c in consumers
    )
    assert [pid for pid in pids if not _is_gone(pid)] == []


def test_run_dev_gives_children_the_dev_environment(
    tmp_path: Path, stand_in: Path, dev_runs: list[DevRun]
) -> None:
    """Children get dev settings, stored credentials and the user's LOOPITIS_* vars."""
    run = _start_dev(tmp_path, stand_in)
    dev_runs.append(run)
    run.wait_for(["migrate", "gateway", "consumer", "consumer"])
    credentials_path = run.data_dir / "credentials.json"
    credentials = json.loads(credentials_path.read_text())
    environment = next(m["env"] for m in run.markers() if m["role"] == "gateway")
    assert isinstance(environment, dict)

    assert credentials_path.stat().st_mode & 0o777 == 0o600
    assert environment["LOOPITIS_ENV"] == "development"
    assert environment["LOOPITIS_DATABASE_URL"].endswith("/loopitis")
    assert environment["LOOPITIS_KAFKA_BOOTSTRAP"].startswith("127.0.0.1:")
    assert environment["LOOPITIS_USERNAME"] == credentials["username"]
    assert environment["LOOPITIS_PASSWORD"] == credentials["password"]
    assert environment["LOOPITIS_LINK_SECRET"] == credentials["link_secret"]
    assert environment["LOOPITIS_LOG_LEVEL"] == "DEBUG"
    assert f"password   {credentials['password']}" in run.output
    assert "API docs   http://127.0.0.1:" in run.output

    run.process.send_signal(signal.SIGINT)
    assert run.process.wait(timeout=30) == 0, run.output
    again = _start_dev(tmp_path, stand_in, run_name="again")
    dev_runs.append(again)
    again.wait_for(["migrate", "gateway", "consumer", "consumer"])
    environment_again = next(
        m["env"] for m in again.markers() if m["role"] == "gateway"
    )
    assert isinstance(environment_again, dict)
    assert environment_again["LOOPITIS_PASSWORD"] == credentials["password"]
    assert (
        environment_again["LOOPITIS_DATABASE_URL"]
        == environment["LOOPITIS_DATABASE_URL"]
    )


def test_run_dev_refuses_a_second_instance_on_the_same_data_dir(
    tmp_path: Path, stand_in: Path, dev_runs: list[DevRun]
) -> None:
    """A second supervisor on a data dir in use exits 1 with one line."""
    run = _start_dev(tmp_path, stand_in)
    dev_runs.append(run)
    run.wait_for(["migrate", "gateway", "consumer", "consumer"])

    second = _run_refused(tmp_path, run.data_dir, _free_port())

    assert second.returncode == 1
    assert second.stdout == ""
    assert len(second.stderr.strip().splitlines()) == 1
    assert f"pid {run.process.pid}" in second.stderr
    assert run.process.poll() is None


def test_run_dev_refuses_a_busy_http_port(tmp_path: Path) -> None:
    """An HTTP port someone else listens on makes dev exit 1 with one line."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]

        refused = _run_refused(tmp_path, tmp_path / "data", port)

    assert refused.returncode == 1
    assert refused.stderr.strip().splitlines() == [
        f"loopitis dev: port {port} on 127.0.0.1 is already in use; stop what "
        "listens there or choose another port with --port"
    ]
    assert not (tmp_path / "data" / "postgres").exists()


def test_run_dev_restarts_a_consumer_that_dies(
    tmp_path: Path, stand_in: Path, dev_runs: list[DevRun]
) -> None:
    """A consumer that dies is reported and started again; dev keeps running."""
    run = _start_dev(tmp_path, stand_in, consumer="die-soon")
    dev_runs.append(run)

    deadline = time.monotonic() + 30
    while run.output.count("consumer-1 exited with code 7") < 2:
        assert time.monotonic() < deadline, run.output
        assert run.process.poll() is None, run.output
        time.sleep(0.2)
    assert "restarting it in 2 s" in run.output
    assert "stopping everything else" not in run.output


def test_run_dev_starts_nothing_when_migrate_fails(
    tmp_path: Path, stand_in: Path, dev_runs: list[DevRun]
) -> None:
    """A failing migrate ends dev with exit 1 before gateway or consumers start."""
    run = _start_dev(tmp_path, stand_in, migrate="exit-3")
    dev_runs.append(run)

    assert run.process.wait(timeout=30) == 1, run.output
    assert "migrate failed with exit code 3" in run.output
    assert [marker["role"] for marker in run.markers()] == ["migrate"]

"""A running Loopitis: gateway and consumers as real processes on real servers."""

from __future__ import annotations

import base64
import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from loopitis.local.ports import free_port

USERNAME = "tester"
PASSWORD = "test-password-for-loopitis"
# The Standard Webhooks secret the stack signs callbacks with (32 bytes).
SIGNING_SECRET = (
    "whsec_" + base64.b64encode(b"loopitis-test-signing-key-32-byt").decode()
)


@dataclass
class Stack:
    """Processes of one Loopitis deployment, and how to reach its gateway."""

    env: dict[str, str]
    logdir: Path
    port: int = field(default_factory=free_port)
    gateway: subprocess.Popen[bytes] | None = None
    consumers: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def auth(self) -> tuple[str, str]:
        return USERNAME, PASSWORD

    def start_gateway(self) -> None:
        self.gateway = self._spawn(
            "gateway", ["gateway", "--host", "127.0.0.1", "--port", str(self.port)]
        )
        self._wait_for_gateway()

    def start_consumer(self) -> subprocess.Popen[bytes]:
        process = self._spawn(f"consumer-{len(self.consumers) + 1}", ["consumer"])
        self.consumers.append(process)
        return process

    def wait_for_partitions(self, count: int, timeout_s: float = 60.0) -> None:
        """Until live consumers own ``count`` partitions between them."""
        deadline = time.monotonic() + timeout_s
        owned = 0
        while time.monotonic() < deadline:
            health = httpx.get(f"{self.base_url}/health", timeout=5).json()
            owned = sum(len(c["partitions"]) for c in health["consumers"])
            if owned == count:
                return
            time.sleep(0.3)
        raise AssertionError(f"consumers own {owned} partitions, expected {count}")

    def stop(self) -> None:
        for process in [*self.consumers, self.gateway]:
            if process is not None and process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in [*self.consumers, self.gateway]:
            if process is None:
                continue
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    def _spawn(self, name: str, arguments: list[str]) -> subprocess.Popen[bytes]:
        with (self.logdir / f"{name}.log").open("ab") as log:
            return subprocess.Popen(
                [sys.executable, "-m", "loopitis", *arguments],
                env={**os.environ, **self.env},
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def _wait_for_gateway(self) -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            assert self.gateway is not None
            if self.gateway.poll() is not None:
                raise AssertionError(f"gateway exited; see {self.logdir}/gateway.log")
            try:
                httpx.get(f"{self.base_url}/health", timeout=2)
                return
            except httpx.TransportError:
                time.sleep(0.1)
        raise AssertionError("gateway did not answer within 30 s")


@contextlib.contextmanager
def started_stack(
    database_url: str, bootstrap: str, workdir: Path, **overrides: str
) -> Iterator[Stack]:
    """A gateway and one consumer with their own topic, owning all partitions."""
    topic = f"loopitis-test-{uuid.uuid4().hex[:8]}"
    running = Stack(stack_env(database_url, bootstrap, topic, **overrides), workdir)
    running.env["LOOPITIS_PUBLIC_URL"] = running.base_url
    try:
        running.start_gateway()
        running.start_consumer()
        running.wait_for_partitions(int(running.env["LOOPITIS_KAFKA_PARTITIONS"]))
        yield running
    finally:
        running.stop()


def stack_env(
    database_url: str, bootstrap: str, topic: str, **overrides: str
) -> dict[str, str]:
    env = {
        "LOOPITIS_ENV": "development",
        "LOOPITIS_DATABASE_URL": database_url,
        "LOOPITIS_KAFKA_BOOTSTRAP": bootstrap,
        "LOOPITIS_USERNAME": USERNAME,
        "LOOPITIS_PASSWORD": PASSWORD,
        "LOOPITIS_PUBLIC_URL": "http://127.0.0.1:1",
        "LOOPITIS_KAFKA_TOPIC": topic,
        "LOOPITIS_KAFKA_GROUP": f"{topic}-group",
        "LOOPITIS_KAFKA_PARTITIONS": "6",
        "LOOPITIS_KAFKA_SESSION_TIMEOUT_MS": "6000",
        "LOOPITIS_CALLBACK_TIMEOUT_MS": "2000",
        "LOOPITIS_SHUTDOWN_GRACE_MS": "5000",
        "LOOPITIS_LOG_FORMAT": "console",
        # Every receiver of the tests listens on 127.0.0.1; the guard's own
        # tests switch this off again.
        "LOOPITIS_ALLOW_PRIVATE_TARGETS": "true",
        "LOOPITIS_SIGNING_SECRET": SIGNING_SECRET,
    }
    env.update(overrides)
    return env

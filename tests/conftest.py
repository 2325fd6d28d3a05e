"""Session fixtures: real Postgres, a real Kafka-protocol broker, a real stack."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import httpx
import pytest

from support.database import create_database
from support.receiver import Receiver
from support.servers import kafka_server, postgres_server
from support.stack import Stack, started_stack


@pytest.fixture(scope="session")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("servers")


@pytest.fixture(scope="session")
def postgres_url(workdir: Path) -> Iterator[str]:
    with postgres_server(workdir) as url:
        yield url


@pytest.fixture(scope="session")
def kafka_bootstrap(workdir: Path) -> Iterator[str]:
    with kafka_server(workdir) as (bootstrap, _):
        yield bootstrap


@pytest.fixture(scope="session")
async def database_url(postgres_url: str) -> str:
    return await create_database(postgres_url)


@pytest.fixture(scope="session")
async def db(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=4)
    yield pool
    await pool.close()


@pytest.fixture(scope="session")
def stack(
    database_url: str, kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    """One gateway and one consumer shared by the end-to-end tests."""
    workdir = tmp_path_factory.mktemp("stack")
    with started_stack(database_url, kafka_bootstrap, workdir) as running:
        yield running


@pytest.fixture(scope="session")
async def receiver() -> AsyncIterator[Receiver]:
    async with Receiver() as running:
        yield running


@pytest.fixture
async def api(stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        base_url=stack.base_url, auth=stack.auth, timeout=10
    ) as client:
        yield client

"""The asyncpg connection pool, and the one place its errors are translated."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg

from loopitis.errors import StorageUnavailable

# Errors that mean "Postgres is not reachable or not answering", as opposed
# to a bug in a statement, which must surface as itself.
_UNAVAILABLE = (
    OSError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.CannotConnectNowError,
    asyncpg.TooManyConnectionsError,
    asyncpg.AdminShutdownError,
    asyncpg.CrashShutdownError,
    TimeoutError,
)


async def _init_connection(connection: asyncpg.Connection) -> None:
    await connection.set_type_codec(
        "jsonb", encoder=json.dumps, decoder=json.loads, schema="pg_catalog"
    )


async def create_pool(dsn: str, size: int) -> asyncpg.Pool:
    """A pool that may start while Postgres is down; it connects on first use."""
    return await asyncpg.create_pool(
        dsn,
        min_size=0,
        max_size=size,
        init=_init_connection,
        command_timeout=30,
        timeout=5,
    )


@asynccontextmanager
async def translated_errors() -> AsyncIterator[None]:
    """Turn connection-level failures into StorageUnavailable."""
    try:
        yield
    except _UNAVAILABLE as exc:
        raise StorageUnavailable(f"{type(exc).__name__}: {exc}") from exc


@asynccontextmanager
async def acquire(
    pool: asyncpg.Pool,
) -> AsyncIterator[asyncpg.pool.PoolConnectionProxy[asyncpg.Record]]:
    async with translated_errors(), pool.acquire() as connection:
        yield connection

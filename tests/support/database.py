"""Fresh, migrated databases for tests, one per stack."""

from __future__ import annotations

import asyncio
import uuid

import asyncpg
from alembic import command

from loopitis.storage.migrate import alembic_config


async def create_database(server_url: str) -> str:
    """A new database on the server, migrated to head; returns its URL."""
    name = f"loopitis_test_{uuid.uuid4().hex[:10]}"
    connection = await asyncpg.connect(server_url)
    try:
        await connection.execute(f'CREATE DATABASE "{name}"')
    finally:
        await connection.close()
    url = server_url.rsplit("/", 1)[0] + f"/{name}"
    sqlalchemy_url = "postgresql+asyncpg://" + url.split("://", 1)[1]
    await asyncio.to_thread(command.upgrade, alembic_config(sqlalchemy_url), "head")
    return url

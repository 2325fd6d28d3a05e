"""Request dependencies and their Annotated aliases."""

from __future__ import annotations

import base64
import binascii
import secrets
from typing import Annotated

import asyncpg
from fastapi import Depends, HTTPException, Request

from loopitis.messaging.publisher import JobEventPublisher
from loopitis.settings import Settings

_CHALLENGE = {"WWW-Authenticate": 'Basic realm="loopitis"'}


# The dependencies are ``async def`` although they never wait: FastAPI runs a
# plain ``def`` dependency in a worker thread, a thread hop per dependency and
# request that cost most of the gateway's intake rate.


async def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def _pool(request: Request) -> asyncpg.Pool:
    pool: asyncpg.Pool = request.app.state.pool
    return pool


async def _publisher(request: Request) -> JobEventPublisher:
    publisher: JobEventPublisher = request.app.state.publisher
    return publisher


SettingsDep = Annotated[Settings, Depends(_settings)]
PoolDep = Annotated[asyncpg.Pool, Depends(_pool)]
PublisherDep = Annotated[JobEventPublisher, Depends(_publisher)]


def credentials_match(request: Request, settings: Settings) -> bool:
    """Constant-time check of HTTP Basic credentials."""
    header = request.headers.get("authorization", "")
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic":
        return False
    try:
        decoded = base64.b64decode(encoded, validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return False
    username, _, password = decoded.partition(":")
    user_ok = secrets.compare_digest(username.encode(), settings.username.encode())
    password_ok = secrets.compare_digest(password.encode(), settings.password.encode())
    return user_ok and password_ok


def check_credentials(request: Request, settings: Settings) -> None:
    if not credentials_match(request, settings):
        raise HTTPException(
            401, "valid HTTP Basic credentials are required", _CHALLENGE
        )


async def require_credentials(request: Request, settings: SettingsDep) -> None:
    check_credentials(request, settings)


Authenticated = Depends(require_credentials)

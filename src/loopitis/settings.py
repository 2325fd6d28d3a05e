"""One settings class, read from ``LOOPITIS_*`` environment variables.

Every process (gateway, consumer, migrate) loads the same class, so a wrong
value stops all of them the same way: one line naming the variable.
"""

from __future__ import annotations

import re
from functools import cached_property
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from loopitis.errors import ConfigError

ENV_PREFIX = "LOOPITIS_"
PLACEHOLDER_PASSWORDS = frozenset(
    {"", "change-me", "changeme", "password", "admin", "secret", "loopitis"}
)
MIN_PRODUCTION_PASSWORD_LENGTH = 12
_BOOTSTRAP_ENTRY = re.compile(r"^[A-Za-z0-9.\-\[\]:]+:\d{1,5}$")


class Settings(BaseSettings):
    """Settings shared by every Loopitis process. Names are documented in README."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore")

    env: Literal["production", "development"] = "production"
    database_url: str = Field(repr=False)
    kafka_bootstrap: str
    username: str
    password: str = Field(repr=False)
    public_url: str
    link_secret: str = Field(default="", repr=False)
    callback_timeout_ms: int = Field(default=10_000, ge=100, le=600_000)
    min_interval_ms: int = Field(default=300, ge=1, le=86_400_000)
    consumer_concurrency: int = Field(default=256, ge=1, le=100_000)
    kafka_topic: str = Field(default="loopitis.jobs", min_length=1, max_length=200)
    kafka_partitions: int = Field(default=24, ge=1, le=10_000)
    kafka_group: str = Field(default="loopitis-consumers", min_length=1)
    kafka_session_timeout_ms: int = Field(default=10_000, ge=1_000, le=300_000)
    shutdown_grace_ms: int = Field(default=15_000, ge=0, le=600_000)
    payload_max_bytes: int = Field(default=65_536, ge=1, le=16 * 1024 * 1024)
    request_max_bytes: int = Field(default=1_048_576, ge=1_024, le=64 * 1024 * 1024)
    db_pool_size: int = Field(default=10, ge=1, le=200)
    log_format: Literal["auto", "json", "console"] = "auto"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    @field_validator("database_url")
    @classmethod
    def _check_database_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("postgresql", "postgres") or not parts.hostname:
            raise ValueError(
                f"'{_redact(value)}' is not a postgresql://user:pass@host:port/db URL"
            )
        return value

    @field_validator("kafka_bootstrap")
    @classmethod
    def _check_bootstrap(cls, value: str) -> str:
        entries = [entry.strip() for entry in value.split(",")]
        if not all(_BOOTSTRAP_ENTRY.match(entry) for entry in entries):
            raise ValueError(f"'{value}' is not host:port[,host:port]")
        return ",".join(entries)

    @field_validator("public_url")
    @classmethod
    def _check_public_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"'{value}' is not an absolute http(s) URL")
        return value.rstrip("/")

    @field_validator("username")
    @classmethod
    def _check_username(cls, value: str) -> str:
        if not value or ":" in value:
            raise ValueError("must be non-empty and must not contain ':'")
        return value

    @model_validator(mode="after")
    def _refuse_weak_password_in_production(self) -> Settings:
        if self.env != "production":
            return self
        if self.password.lower() in PLACEHOLDER_PASSWORDS:
            raise ValueError(
                "password: a placeholder password is refused in production"
            )
        if len(self.password) < MIN_PRODUCTION_PASSWORD_LENGTH:
            raise ValueError(
                f"password: production needs at least "
                f"{MIN_PRODUCTION_PASSWORD_LENGTH} characters"
            )
        return self

    @property
    def development(self) -> bool:
        return self.env == "development"

    @cached_property
    def asyncpg_dsn(self) -> str:
        """The database URL in the form asyncpg expects."""
        return "postgresql://" + self.database_url.split("://", 1)[1]

    @cached_property
    def sqlalchemy_url(self) -> str:
        """The database URL with SQLAlchemy's asyncpg driver name."""
        return "postgresql+asyncpg://" + self.database_url.split("://", 1)[1]

    @cached_property
    def bootstrap_servers(self) -> list[str]:
        return self.kafka_bootstrap.split(",")

    @cached_property
    def effective_link_secret(self) -> bytes:
        """Key for signed links; derived from the password unless set apart."""
        return (self.link_secret or f"loopitis-links:{self.password}").encode()


def load_settings() -> Settings:
    """Read the settings, turning the first problem into one ConfigError."""
    try:
        return Settings()  # type: ignore[call-arg]
    except ValidationError as exc:
        raise _first_problem(exc) from exc


def _first_problem(exc: ValidationError) -> ConfigError:
    error = exc.errors()[0]
    field = str(error["loc"][0]) if error["loc"] else ""
    message = str(error["msg"]).removeprefix("Value error, ")
    if not field and ":" in message:
        field, message = (part.strip() for part in message.split(":", 1))
    if error["type"] == "missing":
        message = "is required and not set"
    return ConfigError(ENV_PREFIX + field.upper(), message)


def _redact(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    return url.replace(f":{parts.password}@", ":***@", 1)

"""One settings class, read from ``LOOPITIS_*`` environment variables.

Every process (gateway, consumer, migrate) loads the same class, so a wrong
value stops all of them the same way: one line naming the variable.
"""

from __future__ import annotations

import base64
import binascii
import re
from functools import cached_property
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from loopitis.errors import ConfigError
from loopitis.model.targets import TargetPolicy

ENV_PREFIX = "LOOPITIS_"
PLACEHOLDER_PASSWORDS = frozenset(
    {"", "change-me", "changeme", "password", "admin", "secret", "loopitis"}
)
MIN_PRODUCTION_PASSWORD_LENGTH = 12
SIGNING_SECRET_PREFIX = "whsec_"  # noqa: S105 - the format prefix, not a secret
# The Standard Webhooks specification asks for 24 to 64 bytes of key.
SIGNING_KEY_BYTES = (24, 64)
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
    signing_secret: str = Field(default="", repr=False)
    signing_secret_previous: str = Field(default="", repr=False)
    allow_private_targets: bool | None = None
    allowed_targets: str = ""
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
    request_max_headers: int = Field(default=100, ge=10, le=1_000)
    db_pool_size: int = Field(default=10, ge=1, le=200)
    log_format: Literal["auto", "json", "console"] = "auto"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    metrics_port: int = Field(default=0, ge=0, le=65_535)

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

    @field_validator("allow_private_targets", mode="before")
    @classmethod
    def _empty_means_default(cls, value: object) -> object:
        return None if value == "" else value

    @field_validator("signing_secret_previous")
    @classmethod
    def _check_previous_secret(cls, value: str) -> str:
        if value:
            _signing_key(value)
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

    @model_validator(mode="after")
    def _check_signing_secret(self) -> Settings:
        # After the password check, so a fresh config.properties names the
        # password first.
        if not self.signing_secret and self.development:
            return self
        if not self.signing_secret:
            raise ValueError(
                "signing_secret: production signs every callback and needs a "
                "secret; set a whsec_ value, e.g. from "
                'python -c "import base64,os; '
                "print('whsec_' + base64.b64encode(os.urandom(32)).decode())\""
            )
        try:
            _signing_key(self.signing_secret)
        except ValueError as exc:
            raise ValueError(f"signing_secret: {exc}") from None
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

    @property
    def private_targets_allowed(self) -> bool:
        """Whether callbacks may reach private addresses: by default only in
        development."""
        if self.allow_private_targets is None:
            return self.development
        return self.allow_private_targets

    @cached_property
    def target_policy(self) -> TargetPolicy:
        return TargetPolicy.from_entries(
            self.private_targets_allowed, self.allowed_targets.split(",")
        )

    @cached_property
    def signing_secrets(self) -> tuple[str, ...]:
        """Secrets that sign each call: the current one, then the one being
        rotated out."""
        return tuple(
            s for s in (self.signing_secret, self.signing_secret_previous) if s
        )

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


def _signing_key(secret: str) -> bytes:
    """The key bytes of a ``whsec_<base64>`` secret; ValueError when malformed."""
    encoded = secret.removeprefix(SIGNING_SECRET_PREFIX)
    try:
        key = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError(
            "is not whsec_ followed by base64; the value is not shown"
        ) from None
    low, high = SIGNING_KEY_BYTES
    if not low <= len(key) <= high:
        raise ValueError(
            f"decodes to {len(key)} bytes; the key must have {low} to {high}"
        )
    return key


def _redact(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    return url.replace(f":{parts.password}@", ":***@", 1)

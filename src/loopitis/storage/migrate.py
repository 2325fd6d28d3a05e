"""Bring the database schema to the newest revision with Alembic."""

from __future__ import annotations

import logging
from pathlib import Path

from alembic import command
from alembic.config import Config

from loopitis.settings import Settings

log = logging.getLogger(__name__)


def migrations_dir() -> Path:
    """The Alembic scripts: inside the wheel, or at the top of a source checkout."""
    packaged = Path(__file__).resolve().parent.parent / "_migrations"
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parents[3] / "migrations"


def alembic_config(sqlalchemy_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(migrations_dir()))
    config.attributes["sqlalchemy_url"] = sqlalchemy_url
    return config


def upgrade_to_head(settings: Settings) -> None:
    """Apply every migration the database has not seen yet; safe to repeat."""
    command.upgrade(alembic_config(settings.sqlalchemy_url), "head")
    log.info("database schema is at the newest revision")

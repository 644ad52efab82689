"""Run Alembic migrations from code (the CLI, the app at start-up, tests)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(url: str | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    if url:
        config.set_main_option("sqlalchemy.url", url)
    return config


def upgrade(engine: Engine, revision: str = "head") -> None:
    config = alembic_config()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)


def open_database():  # type: ignore[no-untyped-def]
    """The configured database, migrated to the latest schema, with the system's reactions on.

    What every command that touches data opens first (the CLI, the demo, the server).
    """
    from yiyang.config import get_settings
    from yiyang.db import Database
    from yiyang.events import install_handlers

    install_handlers()
    database = Database(settings=get_settings())
    upgrade(database.engine)
    return database

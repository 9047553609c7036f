"""Create or migrate the database to the newest schema with Alembic."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy.engine import Connection

from bot.storage.db import Database

MIGRATIONS = Path(__file__).with_name("migrations")


def alembic_config(url: str, connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


async def _run(database: Database, step: Callable[[Config, str], None], revision: str) -> None:
    """Run one Alembic command inside one connection of ``database``'s engine, then commit."""

    def _in_sync(connection: Connection) -> None:
        step(alembic_config(database.url, connection), revision)

    async with database.engine.connect() as connection:
        await connection.run_sync(_in_sync)
        await connection.commit()


async def upgrade(database: Database, revision: str = "head") -> None:
    """Bring the database up to ``revision`` (the newest schema by default)."""
    await _run(database, command.upgrade, revision)


async def downgrade(database: Database, revision: str) -> None:
    """Step the schema back to ``revision`` (``base`` removes every table)."""
    await _run(database, command.downgrade, revision)

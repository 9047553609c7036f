"""Create or migrate the database to the newest schema.

:func:`upgrade` and :func:`downgrade` run Alembic (``fieldbot db upgrade``, the tests). The bot's
start-up calls :func:`ensure_current` instead, which reads the schema's revision with one plain query
and compares it with the newest migration file's: Alembic (a heavy import, about 9 MiB and a few
hundred milliseconds) is loaded only when there is something to upgrade. A database without a single
table is created from the models and stamped with the newest revision, as Alembic's documentation
recommends for building an up-to-date database from scratch (``tests/test_fast_schema.py`` checks that
this and the migrations give the same schema).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Column, MetaData, PrimaryKeyConstraint, String, Table, inspect
from sqlalchemy.engine import Connection

from bot.storage.db import Database
from bot.storage.models import Base

if TYPE_CHECKING:
    from alembic.config import Config

log = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).with_name("migrations")
VERSION_TABLE = "alembic_version"

# Alembic's own version table, as ``alembic stamp`` would create it.
_version_table = Table(VERSION_TABLE, MetaData(), Column("version_num", String(32), nullable=False),
                       PrimaryKeyConstraint("version_num", name="alembic_version_pkc"))

_REVISION = re.compile(r"^revision\s*(?::[^=]*)?=\s*['\"]([^'\"]+)['\"]\s*$", re.MULTILINE)
_DOWN_REVISION = re.compile(r"^down_revision\s*(?::[^=]*)?=\s*(.+?)\s*$", re.MULTILINE)


@cache
def head_revision() -> str | None:
    """The newest revision, read from the migration files without Alembic (None if that is not clear)."""
    revisions: set[str] = set()
    parents: set[str] = set()
    for path in (MIGRATIONS / "versions").glob("*.py"):
        if path.name == "__init__.py":  # Alembic skips it too
            continue
        text = path.read_text(encoding="utf-8")
        revision, down = _REVISION.search(text), _DOWN_REVISION.search(text)
        if revision is None or down is None:
            return None
        revisions.add(revision.group(1))
        parent = down.group(1)
        if parent != "None":
            quoted = re.fullmatch(r"['\"]([^'\"]+)['\"]", parent)
            if quoted is None:  # a merge (a tuple of parents): let Alembic work it out
                return None
            parents.add(quoted.group(1))
    heads = revisions - parents
    return heads.pop() if len(heads) == 1 else None


def alembic_config(url: str, connection: Connection | None = None) -> Config:
    from alembic.config import Config

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
    """Bring the database up to ``revision`` (the newest schema by default) with Alembic."""
    from alembic import command

    await _run(database, command.upgrade, revision)


async def downgrade(database: Database, revision: str) -> None:
    """Step the schema back to ``revision`` (``base`` removes every table)."""
    from alembic import command

    await _run(database, command.downgrade, revision)


def _state(connection: Connection) -> tuple[bool, set[str]]:
    """(the database has no table at all, the revisions its version table holds)."""
    tables = set(inspect(connection).get_table_names())
    if VERSION_TABLE not in tables:
        return not tables, set()
    rows = connection.execute(_version_table.select()).scalars()
    return False, {str(value) for value in rows}


def _create_and_stamp(connection: Connection, head: str) -> None:
    Base.metadata.create_all(connection)
    _version_table.create(connection)
    connection.execute(_version_table.insert().values(version_num=head))


async def ensure_current(database: Database) -> str:
    """At start-up: make sure the schema is the newest, as cheaply as possible; says what it did.

    ``current`` (one query, no Alembic), ``created`` (an empty database, built from the models and
    stamped) or ``upgraded`` (Alembic ran the missing migrations).
    """
    head = head_revision()
    if head is not None:
        async with database.engine.connect() as connection:
            empty, revisions = await connection.run_sync(_state)
            if revisions == {head}:
                return "current"
            if empty:
                await connection.run_sync(_create_and_stamp, head)
                await connection.commit()
                log.info("created the database schema at revision %s", head)
                return "created"
    await upgrade(database)
    return "upgraded"

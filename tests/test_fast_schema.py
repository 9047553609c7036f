"""The start-up's schema check: an empty database built from the models equals one built by the migrations."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection

from bot.storage import migrate
from bot.storage.db import Database
from tests.conftest import ON_POSTGRES, PG_ENV, SWITCH_ENV, _drop_pg_database, _fresh_pg_database

Fresh = Callable[[], Awaitable[Database]]


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def fresh(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Fresh]:
    """Hands out empty databases on one backend."""
    opened: list[Database] = []
    dropped: list[str] = []
    base = os.environ.get(PG_ENV)
    if request.param == "postgres" and not base:
        pytest.skip(f"{PG_ENV} is not set")
    if request.param == "sqlite" and ON_POSTGRES:
        pytest.skip(f"{SWITCH_ENV}=postgres: this test runs as its [postgres] case")

    async def make() -> Database:
        if request.param == "sqlite":
            database = Database(f"sqlite+aiosqlite:///{tmp_path / f'db{len(opened)}.db'}")
        else:
            assert base is not None
            url, name = await _fresh_pg_database(base)
            dropped.append(name)
            database = Database(url)
        opened.append(database)
        return database

    yield make
    for database in opened:
        await database.dispose()
    for name in dropped:
        assert base is not None
        await _drop_pg_database(base, name)


def _options(options: dict[str, Any] | None) -> str:
    return repr(sorted((key, str(value)) for key, value in (options or {}).items()))


def _schema(connection: Connection) -> dict[str, Any]:
    found = inspect(connection)
    schema: dict[str, Any] = {}
    for table in sorted(found.get_table_names()):
        columns = [(c["name"], str(c["type"]), c["nullable"], str(c.get("default"))) for c in found.get_columns(table)]
        schema[table] = {
            "columns": sorted(columns),
            "pk": found.get_pk_constraint(table)["constrained_columns"],
            "fks": sorted((fk["name"], tuple(fk["constrained_columns"]), fk["referred_table"],
                           tuple(fk["referred_columns"]), str(fk.get("options")))
                          for fk in found.get_foreign_keys(table)),
            "indexes": sorted((ix["name"], tuple(str(c) for c in ix["column_names"]), bool(ix["unique"]),
                               _options(ix.get("dialect_options"))) for ix in found.get_indexes(table)),
            "uniques": sorted((u["name"], tuple(u["column_names"])) for u in found.get_unique_constraints(table)),
            "checks": sorted((c["name"], c["sqltext"]) for c in found.get_check_constraints(table)),
        }
    return schema


async def test_created_schema_equals_the_migrated_one(fresh: Fresh) -> None:
    migrated, created = await fresh(), await fresh()
    await migrate.upgrade(migrated)
    assert await migrate.ensure_current(created) == "created"
    async with migrated.engine.connect() as a, created.engine.connect() as b:
        assert await b.run_sync(_schema) == await a.run_sync(_schema)
        version = text("SELECT version_num FROM alembic_version")
        assert (await b.execute(version)).scalars().all() == (await a.execute(version)).scalars().all()


async def test_current_database_needs_no_alembic(fresh: Fresh) -> None:
    database = await fresh()
    await migrate.upgrade(database)
    assert await migrate.ensure_current(database) == "current"


async def test_an_older_schema_is_upgraded(fresh: Fresh) -> None:
    database = await fresh()
    await migrate.upgrade(database, "0006")
    assert await migrate.ensure_current(database) == "upgraded"
    assert await migrate.ensure_current(database) == "current"

"""The visit list and the case card use their indexes: the plans of the very statements the services run.

A modest database (20,000 cases, 60,000 visits, 500 field collectors) is generated with raw inserts
(``bench/_bigdb.py``'s generator); SQLite's EXPLAIN QUERY PLAN (and PostgreSQL's EXPLAIN, with the
planner told to avoid sequential scans, merge and hash joins, which it prefers on tables this small) must show an index
search of cases, assignments, visits and field requests, and no full scan of any of them.
"""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Select, text
from sqlalchemy.dialects import postgresql, sqlite

from bench import _bigdb
from bot.services import visits
from bot.storage import migrate
from bot.storage.db import Database

CASES = 20_000
BIG_TABLES = ("cases", "assignments", "visits", "field_requests")


def _statements(collector_id: int, case_id: int) -> dict[str, Select[Any]]:
    today = _bigdb.NOW.date()
    card_visits, card_promises = visits.case_card_queries(case_id)
    return {
        "list": visits.visit_list_query(collector_id, now=_bigdb.NOW, today=today, origin=(31.2, 121.4), limit=8),
        "list page 2": visits.visit_list_query(collector_id, now=_bigdb.NOW, today=today, offset=8, limit=8),
        "card visits": card_visits,
        "card promises": card_promises,
    }


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("plans") / "fieldbot.db"

    async def schema() -> None:
        database = Database(f"sqlite+aiosqlite:///{path}")
        await migrate.upgrade(database)
        await database.dispose()

    asyncio.run(schema())
    _bigdb.fill(path, CASES)
    return path


def _sqlite_plan(path: Path, statement: Select[Any]) -> list[str]:
    sql = str(statement.compile(dialect=sqlite.dialect(), compile_kwargs={"literal_binds": True}))
    with sqlite3.connect(path) as conn:
        return [row[3] for row in conn.execute("EXPLAIN QUERY PLAN " + sql)]


@pytest.mark.sqlite_only("SQLite's EXPLAIN QUERY PLAN")
def test_the_visit_list_and_the_card_search_indexes_on_sqlite(generated: Path) -> None:
    collector = _bigdb.open_collector(CASES)
    plans = {name: _sqlite_plan(generated, statement) for name, statement in _statements(collector, 2).items()}
    for name, plan in plans.items():
        for line in plan:
            for table in BIG_TABLES:
                assert not line.startswith(f"SCAN {table}"), (name, plan)
    listing = plans["list"]
    assert "SEARCH assignments USING INDEX ix_assignments_current_staff (staff_id=?)" in listing
    assert "SEARCH field_requests USING INDEX ix_field_requests_open (field_collector_id=?)" in listing
    assert any(line.startswith("SEARCH visits USING INDEX uq_visits_open_per_case") for line in listing)
    assert any(line.startswith("SEARCH cases USING INTEGER PRIMARY KEY") for line in listing)
    assert "COMPOUND QUERY" in listing and "UNION ALL" in listing  # two branches, not an OR
    assert any("ix_visits_case_id" in line for line in plans["card visits"]), plans["card visits"]
    assert any("ix_promises_case_id" in line for line in plans["card promises"]), plans["card promises"]


@pytest.mark.postgres
async def test_the_visit_list_and_the_card_search_indexes_on_postgresql(
        any_database: Database, generated: Path) -> None:
    if any_database.engine.dialect.name != "postgresql":
        pytest.skip("the SQLite plan is checked above")
    tables = ("staff", "cases", "assignments", "visits", "field_requests")
    columns = {}
    with sqlite3.connect(generated) as source:
        for table in tables:
            cursor = source.execute(f"SELECT * FROM {table}")
            columns[table] = ([d[0] for d in cursor.description], cursor.fetchall())
    async with any_database.engine.begin() as conn:
        raw = await conn.get_raw_connection()
        driver = raw.driver_connection
        assert driver is not None
        for table in tables:
            names, rows = columns[table]
            typed = [tuple(_pg_value(name, value) for name, value in zip(names, row, strict=True)) for row in rows]
            await driver.copy_records_to_table(table, records=typed, columns=names)
        for table in tables:
            await conn.execute(text(f"ANALYZE {table}"))
    collector = _bigdb.open_collector(CASES)
    async with any_database.engine.connect() as conn:
        for setting in ("enable_seqscan", "enable_mergejoin", "enable_hashjoin"):
            await conn.execute(text(f"SET {setting} = off"))  # plan as at production size: nested index loops
        for name, statement in _statements(collector, 2).items():
            sql = str(statement.compile(dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True}))
            lines = [row[0] for row in await conn.execute(text("EXPLAIN " + sql.replace("%", "%%")))]
            plan = "\n".join(lines)
            for n, line in enumerate(lines):
                for table in BIG_TABLES:
                    assert f"Seq Scan on {table}" not in line, (name, plan)
                    if f" on {table}" in line and "Index" in line and "Scan" in line:
                        # an index scan with no condition would read the whole table
                        assert "Cond:" in lines[n + 1], (name, plan)
            if name.startswith("list"):
                assert "ix_assignments_current_staff" in plan or "ix_assignments_staff_id" in plan, plan
                assert "ix_field_requests_open" in plan, plan
                assert "uq_visits_open_per_case" in plan, plan


def _pg_value(name: str, value: object) -> object:
    from datetime import UTC, date, datetime

    if value is None:
        return None
    if name in ("active", "checkin_flagged"):
        return bool(value)
    if name in ("next_action_on",):
        return date.fromisoformat(str(value))
    if name.endswith("_at"):
        return datetime.fromisoformat(str(value)).replace(tzinfo=UTC)
    return value

"""``fieldbot db copy``: a team's SQLite database moved to PostgreSQL (or another SQLite file), every row
of every table as it was, sequences continued, the audit chain intact on the target; a second copy
into the now full target is refused."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update

from bot.cli import main
from bot.sandbox.geocoder import OfflineGeocoder
from bot.sandbox.harness import BotHarness
from bot.services import intake, staff
from bot.storage import dbcopy
from bot.storage.db import Database
from bot.storage.models import AuditEntry, Base, Case, Evidence, Incident, OutboxMessage, Role, Staff, Visit
from tests.case_files import sample_cases, write_cases_csv
from tests.conftest import PG_ENV, _drop_pg_database, _fresh_pg_database
from tests.field_office import ANN, file_visit


@pytest.fixture
async def team(harness: BotHarness, office: dict[str, int], tmp_path: Path) -> AsyncIterator[str]:
    """A working team's database (SQLite): staff (one whose supervisor was registered after them), cases
    from a bank's file, a filed visit with its evidence, an alarm raised and delivered, audit entries,
    inbox and outbox rows. The bot is stopped; yields the database's URL."""
    now = harness.clock.now()
    async with harness.db.write() as session:
        early = await staff.add_staff(session, name="Cy", role=Role.COLLECTOR, team="B", now=now)
        late = await staff.add_staff(session, name="Dee", role=Role.SUPERVISOR, team="B", now=now)
        await session.execute(update(Staff).where(Staff.id == early.id).values(supervisor_id=late.id,
                                                                               telegram_user_id=9_007_199_254_740_993))
    path = write_cases_csv(tmp_path / "bank.csv", sample_cases()[:6])
    summary = await intake.import_file(harness.db, path.read_bytes(), path.name, clock=harness.clock,
                                       calendar=harness.runtime.calendar, media=harness.runtime.media,
                                       geocoder=OfflineGeocoder({"深圳市南山区": (22.5405, 113.9346)}), team="A")
    assert summary.imported > 0
    harness.clock.advance(hours=1)
    await file_visit(harness, office["ann"], office["case"], "PTP", {"amount": "500.00", "promise_date": "2026-11-20"})
    await harness.send(harness.updates.command(ANN, "/sos"))
    await harness.deliver_outbox()
    harness.clock.advance(minutes=5)
    await harness.tick()
    url = harness.settings.database_url
    await harness.close()
    yield url


@pytest.fixture
def cli_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for key in list(os.environ):
        if key.startswith("FIELDBOT_") and key not in ("FIELDBOT_KEYS_DIR", PG_ENV):
            monkeypatch.delenv(key)
    monkeypatch.setenv("FIELDBOT_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.chdir(tmp_path)  # no stray .env is read


async def fieldbot(*argv: str) -> int:
    """The ``fieldbot`` command in a thread of its own (it runs its own event loop)."""
    return await asyncio.to_thread(main, list(argv))


async def every_row(url: str) -> dict[str, list[dict[str, Any]]]:
    """Every table's rows, in primary-key order, as the models' types read them."""
    database = Database(url)
    try:
        async with database.read() as session:
            return {table.name: [dict(row) for row in (await session.execute(
                select(table).order_by(*table.primary_key.columns))).mappings()]
                for table in Base.metadata.sorted_tables}
    finally:
        await database.dispose()


async def copy_and_check(source: str, target: str, capsys: pytest.CaptureFixture[str]) -> None:
    before = await every_row(source)
    assert await fieldbot("db", "copy", "--from", source, "--to", target, "--batch", "7") == 0
    out = capsys.readouterr().out
    assert "audit log intact" in out and "MISMATCH" not in out, out
    assert "references to a row copied later, set afterwards: 1" in out  # Cy's supervisor, Dee
    assert ("sequences set" in out) is target.startswith("postgresql")
    for table in ("staff", "cases", "imports", "visits", "evidence", "incidents", "incident_events", "audit_log"):
        assert f"  {table} " in out
    after = await every_row(target)
    assert after == before  # every row of every table, value for value
    assert all(before[name] for name in ("staff", "cases", "imports", "visits", "evidence", "incidents",
                                          "incident_events", "audit_log", "inbox", "outbox", "assignments"))
    staff_rows = {row["name"]: row for row in after["staff"]}
    assert staff_rows["Cy"]["supervisor_id"] == staff_rows["Dee"]["id"] > staff_rows["Cy"]["id"]
    assert staff_rows["Cy"]["telegram_user_id"] == 9_007_199_254_740_993  # beyond a double's exact integers
    incident = after["incidents"][0]
    assert incident["raised_at"].utcoffset() == timedelta(0) and incident["first_delivered_at"] is not None
    assert after["visits"][0]["details"] == before["visits"][0]["details"] != {}
    assert isinstance(after["outbox"][0]["payload"], dict)

    # the bot goes on on the target: new rows get new ids (the sequences continue), the chain goes on
    copied = Database(target)
    try:
        async with copied.write() as session:
            newcomer = await staff.add_staff(session, name="Eve", role=Role.COLLECTOR, team="A",
                                             now=incident["raised_at"])
            assert newcomer.id == max(row["id"] for row in after["staff"]) + 1
            session.add(OutboxMessage(chat_id=1, kind="t", payload={"text": "x"}, created_at=incident["raised_at"],
                                      next_attempt_at=incident["raised_at"]))
            await session.flush()
        async with copied.read() as session:
            assert await session.scalar(select(AuditEntry.seq).order_by(AuditEntry.seq.desc()).limit(1)) == \
                after["audit_log"][-1]["seq"] + 1
            assert (await session.scalars(select(Evidence))).all() and (await session.scalars(select(Visit))).all()
            assert (await session.scalars(select(Case))).all() and (await session.scalars(select(Incident))).all()
    finally:
        await copied.dispose()
    os.environ["FIELDBOT_DATABASE_URL"] = target
    try:
        assert await fieldbot("audit", "verify") == 0
    finally:
        del os.environ["FIELDBOT_DATABASE_URL"]
    assert "audit log intact" in capsys.readouterr().out

    # a second copy into the (now full) target is refused, in one line, and changes nothing
    assert await fieldbot("db", "copy", "--from", source, "--to", target) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not empty" in err and "Traceback" not in err, err
    assert len((await every_row(target))["staff"]) == len(after["staff"]) + 1


@pytest.mark.usefixtures("cli_env")
async def test_sqlite_to_sqlite(team: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    await copy_and_check(team, f"sqlite+aiosqlite:///{tmp_path / 'moved' / 'fieldbot.db'}", capsys)


@pytest.mark.postgres
@pytest.mark.usefixtures("cli_env")
async def test_sqlite_to_postgresql_and_back(team: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base = os.environ.get(PG_ENV)
    if not base:
        pytest.skip(f"{PG_ENV} is not set")
    url, name = await _fresh_pg_database(base)
    try:
        await copy_and_check(team, url, capsys)
        back = f"sqlite+aiosqlite:///{tmp_path / 'back.db'}"  # and out again: PostgreSQL to SQLite
        assert await fieldbot("db", "copy", "--from", url, "--to", back) == 0
        assert "audit log intact" in capsys.readouterr().out
        assert await every_row(back) == await every_row(url)
    finally:
        await _drop_pg_database(base, name)


async def test_refusals_leave_the_target_as_it_was(tmp_path: Path) -> None:
    import sqlite3

    from bot.storage import migrate

    source = Database(f"sqlite+aiosqlite:///{tmp_path / 'old.db'}")
    target = Database(f"sqlite+aiosqlite:///{tmp_path / 'new.db'}")
    try:
        await migrate.upgrade(source, "0001")
        with pytest.raises(dbcopy.CopyRefused, match="fieldbot db upgrade"):
            await dbcopy.copy_database(source, target)
        with pytest.raises(dbcopy.CopyRefused, match="same database"):
            await dbcopy.copy_database(source, Database(source.url))
        await migrate.upgrade(source)
        with sqlite3.connect(tmp_path / "new.db") as other:  # somebody else's database: not touched
            other.execute("CREATE TABLE ledger (id INTEGER PRIMARY KEY)")
        with pytest.raises(dbcopy.CopyRefused, match=r"not a fieldbot database's \(ledger\)"):
            await dbcopy.copy_database(source, target)
        with sqlite3.connect(tmp_path / "new.db") as other:
            assert [r[0] for r in other.execute("SELECT name FROM sqlite_master WHERE type = 'table'")] == ["ledger"]
    finally:
        await source.dispose()
        await target.dispose()

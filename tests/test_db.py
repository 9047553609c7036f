"""The storage layer: SQLite settings, writers that cannot fail with BUSY_SNAPSHOT, timestamps, constraints."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import func, inspect, select, text
from sqlalchemy.exc import IntegrityError

from bot.clock import ManualClock
from bot.services import staff
from bot.storage.db import Database
from bot.storage.models import Assignment, Case, Role, Staff


@pytest.mark.sqlite_only("SQLite's PRAGMAs: WAL, foreign keys, busy timeout")
async def test_sqlite_pragmas(database: Database) -> None:
    async with database.read() as session:
        assert (await session.execute(text("PRAGMA journal_mode"))).scalar() == "wal"
        assert (await session.execute(text("PRAGMA foreign_keys"))).scalar() == 1
        assert (await session.execute(text("PRAGMA busy_timeout"))).scalar() >= 5000


async def test_concurrent_read_then_write_transactions_all_succeed(any_database: Database,
                                                                   clock: ManualClock) -> None:
    """Each writer reads, yields to the others, then writes: with deferred BEGIN on SQLite this fails."""
    async with any_database.write() as session:
        await staff.add_staff(session, name="counter", role=Role.ADMIN, now=clock.now())

    async def bump(i: int) -> None:
        async with any_database.write() as session:
            # FOR UPDATE is what PostgreSQL needs; SQLite's BEGIN IMMEDIATE already serialises writers.
            member = await session.scalar(select(Staff).where(Staff.name == "counter").with_for_update())
            assert member is not None
            await asyncio.sleep(0.01)
            member.phone = str(int(member.phone or "0") + 1)

    await asyncio.gather(*(bump(i) for i in range(8)))
    async with any_database.read() as session:
        member = await session.scalar(select(Staff).where(Staff.name == "counter"))
    assert member is not None and member.phone == "8"  # no lost update either


async def test_times_come_back_aware_and_equal(any_database: Database) -> None:
    moment = datetime(2026, 11, 2, 9, 30, 15, 123456, tzinfo=timezone(timedelta(hours=8)))
    async with any_database.write() as session:
        member = Staff(name="t", role="admin", active=True, created_at=moment)
        session.add(member)
    async with any_database.read() as session:
        loaded = await session.get(Staff, member.id)
    assert loaded is not None and loaded.created_at == moment and loaded.created_at.tzinfo is not None
    assert loaded.created_at.utcoffset() == timedelta(0)


async def test_naive_datetimes_are_refused(database: Database) -> None:
    with pytest.raises(Exception, match="naive"):
        async with database.write() as session:
            session.add(Staff(name="t", role="admin", active=True, created_at=datetime(2026, 1, 1)))


async def test_case_number_is_unique_per_bank_and_one_current_assignment(any_database: Database) -> None:
    now = datetime(2026, 11, 2, tzinfo=UTC)

    def case(bank: str) -> Case:
        return Case(bank=bank, case_no="C-1", debtor_name="李四", address="上海", amount_due_fen=100,
                    status="new", created_at=now, updated_at=now)

    async with any_database.write() as session:
        session.add_all([case("招商银行"), case("中信银行")])
    with pytest.raises(IntegrityError):
        async with any_database.write() as session:
            session.add(case("招商银行"))
    async with any_database.write() as session:
        member = Staff(name="c", role="collector", active=True, created_at=now)
        session.add(member)
        await session.flush()
        first = await session.scalar(select(Case).where(Case.bank == "招商银行"))
        assert first is not None
        session.add(Assignment(case_id=first.id, staff_id=member.id, assigned_at=now))
    with pytest.raises(IntegrityError):
        async with any_database.write() as session:
            session.add(Assignment(case_id=first.id, staff_id=member.id, assigned_at=now))
    async with any_database.read() as session:
        assert await session.scalar(select(func.count()).select_from(Assignment)) == 1


async def test_foreign_keys_are_enforced(any_database: Database) -> None:
    now = datetime(2026, 11, 2, tzinfo=UTC)
    with pytest.raises(IntegrityError):
        async with any_database.write() as session:
            session.add(Assignment(case_id=999, staff_id=999, assigned_at=now))


async def test_migrations_match_the_models(any_database: Database) -> None:
    """Alembic's autogenerate finds nothing to add: every model change came with its migration."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from bot.storage.models import Base

    def diff(connection: object) -> list[object]:
        context = MigrationContext.configure(connection, opts={"compare_type": True})  # type: ignore[arg-type]
        return list(compare_metadata(context, Base.metadata))

    async with any_database.engine.connect() as connection:
        differences = await connection.run_sync(diff)
    assert differences == []


async def test_downgrade_to_base_and_up_again(any_database: Database) -> None:
    from bot.storage import migrate

    async def tables() -> set[str]:
        async with any_database.engine.connect() as connection:
            return set(await connection.run_sync(lambda c: inspect(c).get_table_names()))

    assert "cases" in await tables()
    await migrate.downgrade(any_database, "base")
    assert await tables() <= {"alembic_version"}
    await migrate.upgrade(any_database)
    assert {"cases", "imports", "flow_states"} <= await tables()

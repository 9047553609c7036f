"""Audit entries chained in memory within a transaction: one head read, many entries, still one valid chain."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from sqlalchemy import func, select

from bot.clock import ManualClock
from bot.services import audit
from bot.storage.db import Database
from bot.storage.models import AuditEntry


async def _writer(db: Database, clock: ManualClock, name: str, transactions: int, per: int) -> None:
    for t in range(transactions):
        async with db.write() as session:
            for i in range(per):
                await audit.record(session, action=f"test.{name}", object_type="case", object_id=i, actor_id=1,
                                   details={"t": t, "i": i}, at=clock.now())
            await audit.record_many(session, [audit.Pending(f"test.{name}.bulk", "case", i, 1, {"t": t})
                                              for i in range(per)], at=clock.now())
            await audit.record(session, action=f"test.{name}.last", object_type="case", at=clock.now())
        await asyncio.sleep(0)


async def test_many_entries_in_one_transaction_form_one_chain(any_database: Database, clock: ManualClock) -> None:
    async with any_database.write() as session:
        for i in range(5):
            await audit.record(session, action="test.one", object_type="case", object_id=i, at=clock.now())
        assert await audit.record_many(session, [audit.Pending("test.bulk", "case", i) for i in range(7)],
                                       at=clock.advance(timedelta(seconds=1))) == 7
        await audit.record(session, action="test.two", object_type="case", at=clock.now())
    async with any_database.read() as session:
        entries = (await session.scalars(select(AuditEntry).order_by(AuditEntry.seq))).all()
        result = await audit.verify(session)
    assert [e.seq for e in entries] == list(range(1, 14))
    assert [e.action for e in entries][4:6] == ["test.one", "test.bulk"]
    assert result.ok and result.checked == 13


async def test_rolled_back_entries_leave_no_gap(any_database: Database, clock: ManualClock) -> None:
    try:
        async with any_database.write() as session:
            await audit.record(session, action="test.lost", object_type="case", at=clock.now())
            raise RuntimeError("rolled back")
    except RuntimeError:
        pass
    async with any_database.write() as session:
        await audit.record(session, action="test.kept", object_type="case", at=clock.now())
    async with any_database.read() as session:
        result = await audit.verify(session)
        actions = (await session.scalars(select(AuditEntry.action))).all()
    assert result.ok and actions == ["test.kept"]


async def test_two_writers_at_the_same_time_keep_one_valid_chain(any_database: Database,
                                                                  clock: ManualClock) -> None:
    second = Database(any_database.url)  # its own engine and connections: a second process
    try:
        await asyncio.gather(_writer(any_database, clock, "a", 6, 5), _writer(second, clock, "b", 6, 5))
    finally:
        await second.dispose()
    async with any_database.read() as session:
        count = await session.scalar(select(func.count()).select_from(AuditEntry))
        result = await audit.verify(session)
    assert count == 2 * 6 * 11
    assert result.ok and result.checked == count

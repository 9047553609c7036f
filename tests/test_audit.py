"""The hash-chained audit log: appends, verification, and detection of edits and removals."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import delete, select, update

from bot.clock import ManualClock
from bot.services import audit
from bot.storage.db import Database
from bot.storage.models import AuditEntry


async def _write_entries(db: Database, clock: ManualClock, count: int) -> None:
    for i in range(count):
        async with db.write() as session:
            await audit.record(session, action="test.step", object_type="case", object_id=i, actor_id=1,
                               details={"n": i, "名字": "张三"}, at=clock.advance(timedelta(seconds=1)))


async def test_chain_links_each_entry_to_the_one_before(any_database: Database, clock: ManualClock) -> None:
    await _write_entries(any_database, clock, 4)
    async with any_database.read() as session:
        entries = (await session.scalars(select(AuditEntry).order_by(AuditEntry.seq))).all()
        result = await audit.verify(session)
    assert [e.seq for e in entries] == [1, 2, 3, 4]
    assert entries[0].prev_hash == audit.GENESIS
    assert [e.prev_hash for e in entries[1:]] == [e.hash for e in entries[:-1]]
    assert result.ok and result.checked == 4


async def test_edited_old_entry_is_named(any_database: Database, clock: ManualClock) -> None:
    await _write_entries(any_database, clock, 5)
    async with any_database.write() as session:
        await session.execute(update(AuditEntry).where(AuditEntry.seq == 2).values(details='{"n":99}'))
    async with any_database.read() as session:
        result = await audit.verify(session)
    assert not result.ok
    assert (result.bad_seq, result.problem) == (2, "altered")
    assert "#2" in result.describe()


async def test_removed_entry_is_found(any_database: Database, clock: ManualClock) -> None:
    await _write_entries(any_database, clock, 5)
    async with any_database.write() as session:
        await session.execute(delete(AuditEntry).where(AuditEntry.seq == 3))
    async with any_database.read() as session:
        result = await audit.verify(session)
    assert not result.ok
    assert (result.bad_seq, result.problem) == (4, "removed")


async def test_rewritten_entry_with_recomputed_hash_still_breaks_the_chain(
    any_database: Database, clock: ManualClock
) -> None:
    await _write_entries(any_database, clock, 3)
    async with any_database.write() as session:
        entry = await session.scalar(select(AuditEntry).where(AuditEntry.seq == 1))
        assert entry is not None
        entry.details = '{"forged":true}'
        entry.hash = audit.entry_hash(seq=1, at=entry.at, actor_id=entry.actor_id, action=entry.action,
                                      object_type=entry.object_type, object_id=entry.object_id,
                                      details=entry.details, prev_hash=entry.prev_hash)
    async with any_database.read() as session:
        result = await audit.verify(session)
    assert not result.ok and result.bad_seq == 2


async def test_verify_walks_in_batches(database: Database, clock: ManualClock) -> None:
    await _write_entries(database, clock, 7)
    async with database.read() as session:
        assert (await audit.verify(session, batch=3)).checked == 7

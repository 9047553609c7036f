"""The outbox: rows first, sent by priority, retried after 429s and network failures, never lost."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

import scheduler.outbox_sender as sender
from bot.clock import ManualClock
from bot.sandbox.harness import BotHarness
from bot.services import leases, outbox
from bot.services.outbox import Claimed, Priority
from bot.storage.db import Database
from bot.storage.models import Instance, OutboxMessage, Staff, SweepLease
from scheduler import jobs
from tests.conftest import TestDatabases
from tests.field_office import ANN, BOB


async def _queue(harness: BotHarness, chat_id: int, text: str, priority: Priority = Priority.NORMAL,
                 **kwargs: object) -> int:
    async with harness.db.write() as session:
        row = await outbox.enqueue(session, chat_id=chat_id, text=text, kind="test", now=harness.clock.now(),
                                   priority=priority, **kwargs)  # type: ignore[arg-type]
        assert row is not None
        return row.id


async def _row(harness: BotHarness, row_id: int) -> OutboxMessage:
    async with harness.db.read() as session:
        row = await session.get(OutboxMessage, row_id)
    assert row is not None
    return row


async def test_alerts_go_before_everything_else(harness: BotHarness) -> None:
    await _queue(harness, 11, "weekly report", Priority.BULK)
    await _queue(harness, 12, "reminder")
    await _queue(harness, 13, "SOS!", Priority.ALERT, buttons=[[("I'm on it", "ack:1")]])
    assert await harness.deliver_outbox() == 3
    sent = harness.api.sent("sendMessage")
    assert [c.params["text"] for c in sent] == ["SOS!", "reminder", "weekly report"]
    assert sent[0].params["reply_markup"] == {"inline_keyboard": [[{"text": "I'm on it", "callback_data": "ack:1"}]]}


async def test_flood_control_waits_retry_after_then_sends_once(harness: BotHarness) -> None:
    row_id = await _queue(harness, 11, "hello")
    harness.api.fail_next("sendMessage", retry_after=7)
    assert await harness.deliver_outbox() == 0
    row = await _row(harness, row_id)
    assert row.sent_at is None and row.attempts == 1 and "429" in (row.last_error or "")
    assert row.next_attempt_at == harness.clock.now() + timedelta(seconds=7)
    harness.clock.advance(seconds=6)
    assert await harness.deliver_outbox() == 0
    harness.clock.advance(seconds=1)
    assert await harness.deliver_outbox() == 1
    assert await harness.deliver_outbox() == 0
    assert harness.api.texts(11) == ["hello"]
    assert (await _row(harness, row_id)).attempts == 2


async def test_network_outage_is_retried_with_backoff(harness: BotHarness) -> None:
    row_id = await _queue(harness, 11, "hello")
    harness.api.set_offline(True)
    for _ in range(4):
        await harness.deliver_outbox()
        harness.clock.advance(minutes=1)
    assert (await _row(harness, row_id)).sent_at is None
    harness.api.set_offline(False)
    harness.clock.advance(minutes=5)
    assert await harness.deliver_outbox() == 1
    row = await _row(harness, row_id)
    assert row.sent_at is not None and row.attempts == 5


async def test_blocked_user_stops_retries_and_keeps_the_reason(harness: BotHarness) -> None:
    row_id = await _queue(harness, 11, "hello")
    harness.api.fail_next("sendMessage", status=403, description="Forbidden: bot was blocked by the user")
    assert await harness.deliver_outbox() == 0
    row = await _row(harness, row_id)
    assert row.failed_at is not None and "blocked" in (row.last_error or "")
    harness.clock.advance(hours=1)
    assert await harness.deliver_outbox() == 0


async def test_dedupe_key_queues_once_and_rows_survive_a_restart(harness: BotHarness) -> None:
    async with harness.db.write() as session:
        first = await outbox.enqueue(session, chat_id=11, text="x", kind="t", now=harness.clock.now(), dedupe_key="k")
        again = await outbox.enqueue(session, chat_id=11, text="x", kind="t", now=harness.clock.now(), dedupe_key="k")
    assert first is not None and again is None
    await harness.restart()
    assert await harness.deliver_outbox() == 1
    async with harness.db.read() as session:
        assert len((await session.scalars(select(OutboxMessage))).all()) == 1


async def test_sweeps_are_registered_on_the_job_queue(harness: BotHarness) -> None:
    assert harness.app.job_queue is not None
    names = {job.name for job in harness.app.job_queue.jobs()}
    assert {"outbox", "unassigned"} <= names


async def _claim_as(harness: BotHarness, owner: str) -> list[Claimed]:
    async with harness.db.write() as session:
        return (await outbox.claim(session, owner, now=harness.clock.now())).rows


async def test_the_claim_is_committed_before_the_send(harness: BotHarness, monkeypatch: pytest.MonkeyPatch) -> None:
    row_id = await _queue(harness, 11, "hello", Priority.ALERT)
    seen: list[tuple[str | None, object]] = []
    deliver = sender._deliver

    async def watching(bot: Any, runtime: Any, row: Claimed) -> Any:
        other = Database(harness.settings.database_url)  # another connection sees only what was committed
        try:
            async with other.read() as session:
                stored = await session.get(OutboxMessage, row.id)
                assert stored is not None
                seen.append((stored.claimed_by, stored.claimed_at))
        finally:
            await other.dispose()
        return await deliver(bot, runtime, row)

    monkeypatch.setattr(sender, "_deliver", watching)
    assert await harness.deliver_outbox() == 1
    assert seen == [(harness.runtime.instance_id, harness.clock.now())]
    row = await _row(harness, row_id)
    assert row.sent_at is not None and row.telegram_message_id is not None
    assert row.claimed_by == harness.runtime.instance_id  # who sent it stays on the row


async def test_a_claim_held_by_a_live_process_is_left_alone(harness: BotHarness) -> None:
    await _queue(harness, 11, "hello", Priority.ALERT)
    assert [r.chat_id for r in await _claim_as(harness, "other-process")] == [11]
    harness.clock.advance(seconds=4)
    async with harness.db.write() as session:
        await leases.beat(session, "other-process", now=harness.clock.now())  # it is still alive
    harness.clock.advance(seconds=4)
    assert await harness.deliver_outbox() == 0
    assert harness.api.texts(11) == []


async def test_a_dead_processs_claims_are_taken_over_within_seconds(harness: BotHarness) -> None:
    row_id = await _queue(harness, 11, "hello", Priority.ALERT)
    await _claim_as(harness, "dead-process")
    harness.clock.advance(seconds=4)
    assert await harness.deliver_outbox() == 0  # its heartbeat is 4 s old: it may still be sending
    harness.clock.advance(seconds=1.5)
    assert await harness.deliver_outbox() == 1
    assert harness.api.texts(11) == ["hello"]
    assert (await _row(harness, row_id)).claimed_by == harness.runtime.instance_id


async def test_a_stale_claim_cannot_record_its_result(harness: BotHarness) -> None:
    row_id = await _queue(harness, 11, "hello")
    [stale] = await _claim_as(harness, "slow-process")
    harness.clock.advance(seconds=6)
    [fresh] = await _claim_as(harness, "fast-process")
    async with harness.db.write() as session:
        assert await outbox.mark_sent(session, fresh, telegram_message_id=77, now=harness.clock.now()) is not None
    async with harness.db.write() as session:
        assert await outbox.mark_sent(session, stale, telegram_message_id=99, now=harness.clock.now()) is None
        assert await outbox.mark_retry(session, stale, error="x", now=harness.clock.now()) is None
        assert await outbox.mark_failed(session, stale, error="x", now=harness.clock.now()) is None
    row = await _row(harness, row_id)
    assert (row.telegram_message_id, row.claimed_by, row.attempts, row.failed_at) == (77, "fast-process", 1, None)
    assert await harness.deliver_outbox() == 0


async def test_a_crash_between_send_and_record_duplicates_only_the_row_in_flight(
    harness: BotHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    for i in range(5):
        await _queue(harness, 11, f"message {i}", Priority.URGENT)
    record = sender._record
    calls = 0

    class Killed(BaseException):
        """The process dies: nothing after this point runs, not even cleanup."""

    async def dying(runtime: Any, row: Claimed, **kwargs: Any) -> bool:
        nonlocal calls
        calls += 1
        if calls == 3:
            raise Killed
        return await record(runtime, row, **kwargs)

    async def no_cleanup(runtime: Any, rows: list[Claimed]) -> None:
        return None

    monkeypatch.setattr(sender, "_record", dying)
    monkeypatch.setattr(sender, "_release", no_cleanup)
    with pytest.raises(Killed):
        await harness.deliver_outbox()
    assert harness.api.texts(11) == ["message 0", "message 1", "message 2"]
    monkeypatch.undo()
    harness._app = None  # kill -9: no shutdown, nothing released
    await harness.start()
    assert await harness.deliver_outbox() == 0  # message 2..4 are still claimed by the dead process
    harness.clock.advance(seconds=leases.HEARTBEAT_TTL.total_seconds() + 1)
    assert await harness.deliver_outbox() == 3
    assert harness.api.texts(11) == ["message 0", "message 1", "message 2", "message 2", "message 3", "message 4"]
    assert await harness.deliver_outbox() == 0


async def test_deactivated_staff_are_skipped_and_the_alert_group_still_gets_it(
    harness: BotHarness, field: dict[str, int], tmp_path: Path
) -> None:
    group = -1001234567890
    async with harness.db.write() as session:
        bob = await session.get(Staff, field["bob"])
        assert bob is not None
        bob.active = False
    to_bob = await _queue(harness, BOB.id, "for Bob", Priority.ALERT)
    to_ann = await _queue(harness, ANN.id, "for Ann", Priority.ALERT)
    to_group = await _queue(harness, group, "for the group", Priority.ALERT)
    to_stranger = await _queue(harness, 777, "for a plain chat id")
    assert await harness.deliver_outbox() == 3
    assert harness.api.texts(BOB.id) == []
    assert harness.api.texts(ANN.id) == ["for Ann"] and harness.api.texts(group) == ["for the group"]
    assert harness.api.texts(777) == ["for a plain chat id"]
    skipped = await _row(harness, to_bob)
    assert skipped.sent_at is None and skipped.failed_at is not None
    assert skipped.last_error == outbox.DEACTIVATED == "recipient deactivated"
    for row_id in (to_ann, to_group, to_stranger):
        assert (await _row(harness, row_id)).sent_at is not None
    harness.clock.advance(hours=1)
    assert await harness.deliver_outbox() == 0


async def test_the_alert_sweep_takes_urgent_rows_and_the_outbox_sweep_the_rest(harness: BotHarness) -> None:
    await _queue(harness, 11, "report", Priority.BULK)
    await _queue(harness, 12, "urgent", Priority.URGENT)
    await _queue(harness, 13, "SOS", Priority.ALERT)
    assert await jobs.outbox_sweep(harness.runtime, harness.app.bot) == 1
    assert harness.api.texts(11) == ["report"] and harness.api.texts(12) == []
    assert await jobs.alert_sweep(harness.runtime, harness.app.bot) == 2


async def test_the_sweep_lease_is_short_and_renewed_by_the_heartbeat(harness: BotHarness) -> None:
    db, now = harness.db, harness.clock.now()
    assert await leases.heartbeat(db, "first", now=now)
    assert not await leases.heartbeat(db, "second", now=now)
    for _ in range(10):  # renewed every second, it never lapses
        harness.clock.advance(seconds=1)
        assert await leases.heartbeat(db, "first", now=harness.clock.now())
        assert not await leases.heartbeat(db, "second", now=harness.clock.now())
    harness.clock.advance(seconds=leases.TTL.total_seconds())  # first is killed: the second takes over
    assert await leases.heartbeat(db, "second", now=harness.clock.now())
    async with db.read() as session:
        lease = await session.get(SweepLease, leases.SWEEPS)
        assert lease is not None and lease.holder == "second"
        assert {i.id for i in await session.scalars(select(Instance))} >= {"first", "second"}
    await leases.release(db, "second")  # a clean shutdown: the lease and the heartbeat go at once
    async with db.read() as session:
        assert await session.get(SweepLease, leases.SWEEPS) is None
        assert await session.get(Instance, "second") is None
    assert await leases.acquire(db, "third", now=harness.clock.now())


async def test_releasing_on_an_unmigrated_database_logs_one_line(tmp_path: Path, clock: ManualClock,
                                                                caplog: pytest.LogCaptureFixture,
                                                                db_urls: TestDatabases) -> None:
    database = Database(db_urls.url(tmp_path / "empty.db", empty=True))
    try:
        await leases.release(database, "someone")
    finally:
        await database.dispose()
    [record] = [r for r in caplog.records if r.name == "bot.services.leases"]
    assert "could not release" in record.getMessage() and "\n" not in record.getMessage()
    assert record.exc_info is None

"""The outbox: rows first, sent by priority, retried after 429s and network failures, never lost."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from bot.sandbox.harness import BotHarness
from bot.services import outbox
from bot.services.outbox import Priority
from bot.storage.models import OutboxMessage


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

"""The continuous outbox sender at Telegram's pace, against the stand-in's flood control (real time).

The stand-in answers 429 the way Telegram does: more than 30 messages in a second, or two in a second
to one private chat. These tests run the real sender for a few seconds and measure what arrived when.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from bot.sandbox.botapi import ApiReply, FakeBotApi, FloodControl
from bot.sandbox.harness import BotHarness
from bot.services import outbox
from bot.services.outbox import Priority
from bot.storage.models import OutboxMessage
from scheduler import jobs
from scheduler.outbox_sender import OutboxSender, wake
from tests.field_office import ANN

Arrivals = dict[int, list[float]]


def watch(api: FakeBotApi) -> Arrivals:
    """Record when each accepted sendMessage reached the stand-in, per chat (monotonic seconds)."""
    arrivals: Arrivals = defaultdict(list)
    handle = api.handle

    def timed(method: str, params: Any, files: Any = None) -> ApiReply:
        reply = handle(method, params, files)
        if method == "sendMessage" and reply.status == 200:
            arrivals[int(params["chat_id"])].append(time.monotonic())
        return reply

    api.handle = timed  # type: ignore[method-assign]
    return arrivals


async def queue(harness: BotHarness, items: list[tuple[int, str, Priority]]) -> list[int]:
    async with harness.db.write() as session:
        rows = [await outbox.enqueue(session, chat_id=chat, text=text, kind="test", now=harness.clock.now(),
                                     priority=priority, buttons=[[("ok", f"ack:{n}")]] if priority == 0 else None)
                for n, (chat, text, priority) in enumerate(items)]
    return [row.id for row in rows if row is not None]


async def unsent(harness: BotHarness) -> int:
    async with harness.db.read() as session:
        return int(await session.scalar(select(func.count()).select_from(OutboxMessage)
                                        .where(OutboxMessage.sent_at.is_(None))) or 0)


async def until(condition: Callable[[], bool], seconds: float) -> float:
    """Wait (really) until ``condition`` holds; returns how long it took; fails after ``seconds``."""
    started = time.monotonic()
    while not condition():
        assert time.monotonic() - started < seconds, "timed out"
        await asyncio.sleep(0.005)
    return time.monotonic() - started


@pytest.fixture
async def flood(harness: BotHarness) -> FloodControl:
    control = harness.api.flood_control(rate=30, chat_rate=1.0)
    assert control is not None
    return control


@pytest.fixture
async def sender(harness: BotHarness, flood: FloodControl) -> AsyncIterator[OutboxSender]:
    running = harness.app.bot_data[jobs.SENDER_KEY]  # built by post_init; the job queue would start it
    assert isinstance(running, OutboxSender)
    yield running
    await running.stop()


async def test_300_messages_to_30_chats_at_the_limit_without_a_429(harness: BotHarness, flood: FloodControl,
                                                                  sender: OutboxSender) -> None:
    arrivals = watch(harness.api)
    await queue(harness, [(5000 + i % 30, f"notice {i}", Priority.NORMAL) for i in range(300)])
    sender.start()
    await until(lambda: sum(map(len, arrivals.values())) >= 300, 14)
    for _ in range(100):  # the last result is being recorded
        if await unsent(harness) == 0:
            break
        await asyncio.sleep(0.02)
    assert await unsent(harness) == 0
    assert flood.refused == 0
    assert sorted(c.params["text"] for c in harness.api.sent()) == sorted(f"notice {i}" for i in range(300))
    for chat, times in arrivals.items():
        gaps = [b - a for a, b in itertools.pairwise(times)]
        assert min(gaps) >= 1.0, (chat, min(gaps))
    every = sorted(t for times in arrivals.values() for t in times)
    assert max(sum(1 for t in every if start <= t < start + 1.0) for start in every) <= 30


async def test_an_alert_queued_behind_a_500_message_broadcast_goes_out_first(
    harness: BotHarness, flood: FloodControl, sender: OutboxSender
) -> None:
    arrivals = watch(harness.api)
    await queue(harness, [(6000 + i % 250, f"broadcast {i}", Priority.BULK) for i in range(500)])
    sender.start()
    await until(lambda: sum(map(len, arrivals.values())) >= 45, 5)  # the broadcast is well under way
    queued = time.monotonic()
    await queue(harness, [(6001, "alert to a chat in the broadcast", Priority.ALERT),
                          (7001, "alert to a chat of its own", Priority.ALERT)])
    assert wake(harness.runtime)
    await until(lambda: len(arrivals[7001]) == 1 and len(arrivals[6001]) == 2, 3)
    assert harness.api.texts(6001) == ["broadcast 1", "alert to a chat in the broadcast"]
    assert arrivals[7001][0] - queued <= 0.3
    assert arrivals[6001][-1] - queued <= 1.1  # that chat's spacing (one a second) is all it waited for
    assert await unsent(harness) > 400  # it did not wait for the broadcast
    assert flood.refused == 0


async def test_a_429_for_one_chat_does_not_delay_the_others(harness: BotHarness, flood: FloodControl,
                                                            sender: OutboxSender) -> None:
    arrivals = watch(harness.api)
    [victim, *_] = await queue(harness, [(8000, "to the chat that gets 429", Priority.URGENT)]
                               + [(8001 + i, f"to chat {i}", Priority.URGENT) for i in range(20)])
    harness.api.fail_next("sendMessage", retry_after=2)  # the first send (the oldest row, to 8000) gets 429
    started = time.monotonic()
    sender.start()
    await until(lambda: all(arrivals[8001 + i] for i in range(20)), 3)
    assert max(arrivals[8001 + i][0] for i in range(20)) - started < 1.0
    async with harness.db.read() as session:
        row = await session.get(OutboxMessage, victim)
    assert row is not None and row.sent_at is None and "429" in (row.last_error or "")
    assert row.next_attempt_at == harness.clock.now() + timedelta(seconds=2)
    harness.clock.advance(seconds=2)  # the row's retry time (the bot's clock) ...
    sender.wake()
    await asyncio.sleep(0.3)
    assert arrivals[8000] == []  # ... but the chat itself waits the real retry_after
    await until(lambda: len(arrivals[8000]) == 1, 3)
    assert arrivals[8000][0] - started >= 2.0
    assert flood.refused == 0


async def test_alerts_for_one_person_within_a_second_go_as_one_message(
    harness: BotHarness, flood: FloodControl, sender: OutboxSender
) -> None:
    arrivals = watch(harness.api)
    await queue(harness, [(9000, "first alarm", Priority.ALERT)])
    sender.start()
    await until(lambda: len(arrivals[9000]) == 1, 2)
    ids = await queue(harness, [(9000, "second alarm", Priority.ALERT), (9000, "third alarm", Priority.ALERT)])
    sender.wake()
    await until(lambda: len(arrivals[9000]) == 2, 3)
    last = harness.api.last("sendMessage", 9000)
    assert last.params["text"] == "second alarm\n\nthird alarm"
    assert last.params["reply_markup"]["inline_keyboard"] == [[{"text": "ok", "callback_data": "ack:0"}],
                                                               [{"text": "ok", "callback_data": "ack:1"}]]
    for _ in range(100):  # the results are being recorded
        async with harness.db.read() as session:
            rows = [await session.get(OutboxMessage, i) for i in ids]
        if all(r is not None and r.sent_at is not None for r in rows):
            break
        await asyncio.sleep(0.02)
    assert {(r.sent_at is not None, r.telegram_message_id) for r in rows if r} == {(True, last.result["message_id"])}
    assert flood.refused == 0


async def test_a_reply_does_not_wait_for_the_broadcast(harness: BotHarness, field: dict[str, int],
                                                       flood: FloodControl, sender: OutboxSender) -> None:
    arrivals = watch(harness.api)
    await queue(harness, [(6000 + i % 250, f"broadcast {i}", Priority.BULK) for i in range(500)])
    sender.start()
    await until(lambda: sum(map(len, arrivals.values())) >= 45, 5)
    started = time.monotonic()
    calls = await harness.send(harness.updates.command(ANN, "/help"))
    assert time.monotonic() - started < 0.3
    assert harness.replies(calls, ANN.id)
    assert await unsent(harness) > 400

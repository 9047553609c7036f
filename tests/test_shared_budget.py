"""One sending budget for every instance of the bot, kept in Redis (bot/send_budget.py).

These need a Redis server: they run when ``FIELDBOT_TEST_REDIS_URL`` is set (``.ci/run`` sets it on a
machine with Redis) and fail if it is set but the server is down. Each test takes its own key prefix.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import time
import uuid
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from bot.clock import ManualClock
from bot.ratelimit import Pacer
from bot.sandbox.botapi import ApiReply, FakeBotApi
from bot.sandbox.harness import BotHarness, sandbox_settings
from bot.send_budget import SharedBudget, connect
from bot.services import outbox
from bot.services.outbox import Priority
from bot.storage.models import OutboxMessage
from scheduler import jobs
from scheduler.outbox_sender import OutboxSender

REDIS_ENV = "FIELDBOT_TEST_REDIS_URL"
pytestmark = pytest.mark.skipif(not os.environ.get(REDIS_ENV), reason=f"{REDIS_ENV} is not set")


def _budget(token: str, **kwargs: Any) -> SharedBudget:
    from redis.asyncio import Redis

    return SharedBudget(Redis.from_url(os.environ[REDIS_ENV]), token, **kwargs)


def _max_in_a_second(times: list[float]) -> int:
    every = sorted(times)
    return max((sum(1 for t in every if start <= t < start + 1.0) for start in every), default=0)


async def test_two_pacers_share_one_window() -> None:
    token = f"test-{uuid.uuid4().hex}"
    first, second = _budget(token, rate=10), _budget(token, rate=10)
    pacers = [Pacer(shared=first), Pacer(shared=second)]  # each would let 30 a second through on its own
    granted: list[float] = []

    async def take(pacer: Pacer) -> None:
        await pacer.acquire(5)
        granted.append(time.monotonic())

    started = time.monotonic()
    await asyncio.gather(*(take(pacers[i % 2]) for i in range(25)))
    elapsed = time.monotonic() - started
    await first.close()
    await second.close()
    assert len(granted) == 25
    assert _max_in_a_second(granted) <= 10
    assert elapsed >= 1.9  # 25 slots at 10 a second over both: at least two full windows


async def test_alerts_keep_the_reserved_slots_from_the_other_instance() -> None:
    token = f"test-{uuid.uuid4().hex}"
    broadcast, alerts = _budget(token, rate=10, alert_reserve=3), _budget(token, rate=10, alert_reserve=3)
    for _ in range(7):  # the broadcast uses what it may of this second
        await broadcast.take(8)
    started = time.monotonic()
    await asyncio.wait_for(broadcast.take(8), timeout=3)  # an eighth ordinary message waits for the next second
    assert time.monotonic() - started > 0.5
    for _ in range(3):
        quick = time.monotonic()
        await alerts.take(0)  # an alert from the other instance still finds a slot
        assert time.monotonic() - quick < 0.2
    await broadcast.close()
    await alerts.close()


async def test_a_chat_s_spacing_holds_across_instances() -> None:
    token = f"test-{uuid.uuid4().hex}"
    first, second = _budget(token), _budget(token)
    await first.chat_turn(42)
    started = time.monotonic()
    await second.chat_turn(42)  # the other instance waits for the second to pass
    assert time.monotonic() - started >= 0.9
    quick = time.monotonic()
    await second.chat_turn(43)  # another chat does not
    assert time.monotonic() - quick < 0.2
    await first.close()
    await second.close()


async def test_sending_goes_on_when_redis_is_down() -> None:
    budget = connect("redis://127.0.0.1:1/0", "down")  # nothing listens there
    pacer = Pacer(shared=budget)
    started = time.monotonic()
    await asyncio.wait_for(pacer.acquire(0), timeout=5)
    await pacer.chat_turn(42)
    assert time.monotonic() - started < 1.5  # two calls, each given up within the 0.5 s timeout
    await budget.close()


async def test_two_instances_send_a_2000_message_broadcast_under_30_a_second_without_a_429(
        tmp_path: Path, clock: ManualClock) -> None:
    api = FakeBotApi(clock=lambda: clock.now().timestamp())
    flood = api.flood_control(rate=30, chat_rate=1.0)
    assert flood is not None
    arrivals: dict[int, list[float]] = defaultdict(list)
    handle = api.handle

    def timed(method: str, params: Any, files: Any = None) -> ApiReply:
        reply = handle(method, params, files)
        if method == "sendMessage" and reply.status == 200:
            arrivals[int(params["chat_id"])].append(time.monotonic())
        return reply

    api.handle = timed  # type: ignore[method-assign]
    settings = sandbox_settings(tmp_path, redis_url=os.environ[REDIS_ENV])
    first = BotHarness(settings, clock, api=api)
    await first.start()
    second = BotHarness(settings, clock, api=api)
    await second.start()
    try:
        async with first.db.write() as session:
            for i in range(2000):
                await outbox.enqueue(session, chat_id=10_000 + i % 200, text=f"broadcast {i}", kind="test",
                                     now=clock.now(), priority=Priority.BULK)
        senders = [h.app.bot_data[jobs.SENDER_KEY] for h in (first, second)]
        assert all(isinstance(s, OutboxSender) for s in senders)
        started = time.monotonic()
        for sender in senders:
            sender.start()
        while sum(map(len, arrivals.values())) < 2000:
            assert time.monotonic() - started < 150, "timed out"
            await asyncio.sleep(0.05)
        elapsed = time.monotonic() - started
        for sender in senders:
            await sender.stop()
        async with first.db.read() as session:
            unsent = await session.scalar(select(func.count()).select_from(OutboxMessage)
                                          .where(OutboxMessage.sent_at.is_(None)))
            claimed_by = set(await session.scalars(select(OutboxMessage.claimed_by).distinct()))
    finally:
        await second.close()
        await first.close()
    every = [t for times in arrivals.values() for t in times]
    assert len(every) == 2000 and unsent == 0
    assert flood.refused == 0
    assert _max_in_a_second(every) <= 30
    for chat, times in arrivals.items():
        assert min(b - a for a, b in itertools.pairwise(times)) >= 1.0, chat
    assert len(claimed_by) == 2  # both instances sent
    assert elapsed >= 2000 / 30 - 1  # together, not each at its own 30 a second

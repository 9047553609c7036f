"""The inbound throttle: a flood from one person is answered in full but at the sustained rate, in order;
SOS never waits; other people are not held up; strangers cannot fill the audit log with wrong codes."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from telegram import Update

from bot.clock import ManualClock
from bot.handlers.access import STRANGER_AUDIT_CAP
from bot.handlers.throttle import PerUserUpdateProcessor, TokenBucket, is_urgent, lane_key
from bot.i18n import translator
from bot.sandbox.harness import BotHarness, sandbox_settings
from bot.sandbox.updates import FakeUser, UpdateFactory, group_chat, to_update
from bot.storage.models import AuditEntry, Incident, Role
from tests.field_office import ANN, BOB, BOSS

RATE, BURST = 20.0, 10  # fast enough for a test; production defaults to 1/s with bursts of 10
STRANGER = FakeUser(3999, "Stranger", language_code="en")


@pytest.fixture
async def office(tmp_path: Path, clock: ManualClock) -> AsyncIterator[BotHarness]:
    harness = BotHarness(sandbox_settings(tmp_path, throttle_rate=RATE, throttle_burst=BURST), clock)
    await harness.start()
    try:
        boss = await harness.onboard(BOSS, "Boss", Role.SUPERVISOR, team="A")
        await harness.onboard(ANN, "Ann", Role.COLLECTOR, team="A", supervisor_id=boss)
        await harness.onboard(BOB, "Bob", Role.COLLECTOR, team="A", supervisor_id=boss)
        await harness.deliver_outbox()
        harness.api.clear()
        yield harness
    finally:
        await harness.close()
    assert harness.api.violations == [], harness.api.violations


class Feeder:
    """Hands updates to the application the way PTB's update fetcher does with concurrent updates:
    one task per update, in arrival order, each through the application's update processor."""

    def __init__(self, harness: BotHarness) -> None:
        self.harness = harness
        self.done: list[int] = []  # update ids, in the order their processing finished

    async def _run(self, update: Update) -> None:
        await self.harness.app.process_update(update)
        self.done.append(update.update_id)

    def feed(self, data: dict[str, Any]) -> asyncio.Task[None]:
        app = self.harness.app
        update = to_update(data, app.bot)
        return asyncio.create_task(app.update_processor.process_update(update, self._run(update)))


async def _until(condition: Callable[[], Awaitable[bool]], limit: float = 5.0) -> float:
    """Poll ``condition`` (an async callable) until true; the seconds it took."""
    start = time.monotonic()
    while time.monotonic() - start < limit:
        if await condition():
            return time.monotonic() - start
        await asyncio.sleep(0.01)
    raise AssertionError("condition not met in time")


async def _incidents(harness: BotHarness) -> int:
    async with harness.db.read() as session:
        return int(await session.scalar(select(func.count()).select_from(Incident)) or 0)


def test_token_bucket_sustained_rate() -> None:
    bucket = TokenBucket(rate=1.0, burst=10, stamp=0.0)
    now, waits = 0.0, []
    for _ in range(50):  # fifty at once, each one waiting for its token before the next is asked for
        wait = bucket.take(now)
        waits.append(wait)
        now += wait
    assert waits[:10] == [0.0] * 10 and all(w == pytest.approx(1.0) for w in waits[11:])
    assert now == pytest.approx(40.0)  # 50 updates at 1/s after a burst of 10
    later = now + 100
    assert bucket.take(later) == 0.0 and bucket.full(later + 10)


class VirtualTime:
    """The throttle's clock and sleep, with time passing only while someone sleeps."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        await asyncio.sleep(0)


async def test_a_flood_is_answered_in_full_in_order_at_the_sustained_rate(office: BotHarness) -> None:
    processor = office.app.update_processor
    assert isinstance(processor, PerUserUpdateProcessor)
    processor.rate, processor.burst = 1.0, 10  # the production defaults, on a virtual clock
    virtual = VirtualTime()
    processor.clock, processor.sleep = virtual.clock, virtual.sleep
    feeder = Feeder(office)
    updates = [office.updates.text(ANN, f"message {i}") for i in range(50)]
    await asyncio.gather(*(feeder.feed(u) for u in updates))
    assert len(office.replies(office.api.calls, ANN.id)) == 50  # nothing lost
    assert feeder.done == [u["update_id"] for u in updates]  # in Telegram's order
    assert len(virtual.sleeps) == 40 and all(s == pytest.approx(1.0) for s in virtual.sleeps)
    assert virtual.now == pytest.approx(40.0)  # a burst of 10, then one a second


async def test_a_flood_takes_real_time(office: BotHarness) -> None:
    feeder = Feeder(office)
    start = time.monotonic()
    await asyncio.gather(*(feeder.feed(office.updates.text(ANN, f"message {i}")) for i in range(30)))
    assert time.monotonic() - start >= 0.9 * (30 - BURST) / RATE  # 20 waits of 1/20 s at least
    assert len(office.replies(office.api.calls, ANN.id)) == 30


async def test_others_are_not_held_up_and_sos_never_waits(office: BotHarness) -> None:
    feeder = Feeder(office)
    flood = [feeder.feed(office.updates.text(ANN, f"message {i}")) for i in range(60)]
    await asyncio.sleep(0.3)  # Ann's burst is used up; her backlog drains at 20/s

    # Ann's backlog needs over 2 s more; Bob, in his own lane, is answered long before that (the margin
    # is for a loaded machine: a single update takes milliseconds)
    start = time.monotonic()
    await feeder.feed(office.updates.text(BOB, "hello"))
    assert time.monotonic() - start < 1.5
    assert office.replies(office.api.calls, BOB.id)

    assert sum(not t.done() for t in flood) > 20  # Ann is still throttled
    sos = feeder.feed(office.updates.text(ANN, translator("en")("menu.sos")))
    took = await _until(lambda: _incidents_at_least(office, 1))
    assert took < 1.5 and not all(t.done() for t in flood)  # the alarm is up before her backlog is through
    await sos
    assert any(call.params.get("chat_id") == BOSS.id for call in office.api.calls)  # the supervisor is told

    # with the alarm open, nothing of hers waits for a token: the rest of the backlog goes at once
    waited = office.app.update_processor.waited  # type: ignore[attr-defined]
    await asyncio.gather(*flood)
    assert office.app.update_processor.waited <= waited + 1  # type: ignore[attr-defined]
    assert len([c for c in office.api.calls if c.params.get("chat_id") == ANN.id and c.method == "sendMessage"]) >= 61


async def _incidents_at_least(harness: BotHarness, n: int) -> bool:
    return await _incidents(harness) >= n


def test_what_skips_the_lane() -> None:
    factory = UpdateFactory()
    sos_texts = [translator(loc)("menu.sos") for loc in ("en", "zh_CN")]
    for data in [factory.command(ANN, "/sos"), *(factory.text(ANN, t) for t in sos_texts),
                 factory.button(BOSS, "sos:ack:7"), factory.button(ANN, "sos:safe"), factory.button(ANN, "sf:done:3")]:
        assert is_urgent(Update.de_json(data, None))
    for data in [factory.text(ANN, "hello"), factory.command(ANN, "/visits"), factory.button(ANN, "v:in:1")]:
        assert not is_urgent(Update.de_json(data, None))
        assert lane_key(Update.de_json(data, None)) == ANN.id
    assert lane_key(Update.de_json(factory.text(ANN, "hello", chat=group_chat(-100555)), None)) is None


async def test_throttle_off_keeps_the_order() -> None:
    processor = PerUserUpdateProcessor(rate=0, burst=1)
    order: list[int] = []

    async def work(i: int, pause: float) -> None:
        await asyncio.sleep(pause)
        order.append(i)

    factory = UpdateFactory()
    updates = [Update.de_json(factory.text(ANN, str(i)), None) for i in range(5)]
    await asyncio.gather(*(processor.process_update(u, work(i, 0.05 - i * 0.01))
                           for i, u in enumerate(updates)))
    assert order == [0, 1, 2, 3, 4]  # a later, quicker update never overtakes an earlier one
    assert processor.waited == 0


async def test_a_stranger_cannot_fill_the_audit_log(office: BotHarness) -> None:
    answers = 0
    for i in range(100):
        calls = await office.send(office.updates.command(STRANGER, "/start", f"wrong-code-{i:03d}"))
        answers += len(office.replies(calls, STRANGER.id))
    async with office.db.read() as session:
        rows = await session.scalar(select(func.count()).select_from(AuditEntry)
                                    .where(AuditEntry.object_id == str(STRANGER.id)))
    assert rows == STRANGER_AUDIT_CAP  # the wrong codes the lock-out allows, then one "locked"
    assert answers == STRANGER_AUDIT_CAP  # one answer each, the last one the lock-out notice, then silence
    assert translator("en")("start.locked") in office.api.texts(STRANGER.id)

    # an hour later the account may try again (and is capped again)
    office.clock.advance(hours=1, seconds=1)
    calls = await office.send(office.updates.command(STRANGER, "/start", "wrong-again"))
    assert office.replies(calls, STRANGER.id) == [translator("en")("start.code_wrong")]

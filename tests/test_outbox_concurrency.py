"""Exactly once under concurrency: sweeps, an SOS handler and a second process sending from one outbox.

Every sender claims rows in a committed transaction before sending them, so whatever runs at the
same time (the alert sweep, the outbox sweep, the SOS handler's immediate send, another process on
the same database) each queued message reaches its chat exactly once.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from bot.clock import ManualClock
from bot.sandbox.botapi import FakeBotApi
from bot.sandbox.harness import BotHarness, sandbox_settings
from bot.services import outbox
from bot.services.outbox import Priority
from bot.storage.db import Database
from bot.storage.models import IncidentEvent, OutboxMessage
from scheduler import jobs
from tests.field_office import ANN, BOB, BOSS


def deliveries(api: FakeBotApi) -> Counter[tuple[Any, str]]:
    """How often each (chat, text) was delivered by a successful sendMessage."""
    return Counter((c.params["chat_id"], c.params["text"]) for c in api.sent("sendMessage"))


async def queue(db: Database, now: Any, items: list[tuple[int, str, Priority]]) -> None:
    async with db.write() as session:
        for chat_id, text, priority in items:
            await outbox.enqueue(session, chat_id=chat_id, text=text, kind="test", now=now, priority=priority,
                                 flush=False)


async def repeat(times: int, step: Callable[[], Awaitable[Any]]) -> None:
    for _ in range(times):
        await step()


async def unsent(db: Database) -> int:
    async with db.read() as session:
        return int(await session.scalar(select(func.count()).select_from(OutboxMessage)
                                        .where(OutboxMessage.sent_at.is_(None))) or 0)


async def test_sweeps_and_sos_handlers_at_the_same_time_deliver_every_alert_once(
    harness: BotHarness, field: dict[str, int]
) -> None:
    now = harness.clock.now()
    await queue(harness.db, now, [(BOSS.id, f"urgent {i}", Priority.URGENT) for i in range(30)]
                + [(BOB.id, f"ordinary {i}", Priority.NORMAL) for i in range(30)]
                + [(ANN.id, f"alert {i}", Priority.ALERT) for i in range(10)])
    runtime, bot = harness.runtime, harness.app.bot
    await asyncio.gather(
        repeat(4, lambda: jobs.alert_sweep(runtime, bot)),
        repeat(4, lambda: jobs.outbox_sweep(runtime, bot)),
        repeat(4, harness.deliver_outbox),
        harness.send(harness.updates.command(ANN, "/sos")),
        harness.send(harness.updates.command(BOB, "/sos")),
        repeat(4, lambda: jobs.alert_sweep(runtime, bot)),
    )
    await harness.deliver_outbox()
    counts = deliveries(harness.api)
    twice = {key: n for key, n in counts.items() if n > 1}
    assert twice == {}
    assert await unsent(harness.db) == 0
    assert sum(1 for chat, text in counts if chat == BOSS.id and text.startswith("urgent ")) == 30
    assert sum(1 for chat, text in counts if chat == BOB.id and text.startswith("ordinary ")) == 30
    sos = [text for chat, text in counts if chat == BOSS.id and text.startswith("🆘 EMERGENCY")]
    assert len(sos) == 2 and any("Ann" in t for t in sos) and any("Bob" in t for t in sos)
    async with harness.db.read() as session:
        kinds = Counter(await session.scalars(select(IncidentEvent.kind)))
    assert kinds["delivered"] == kinds["queued"] == 2


async def _two_processes_deliver_once(first: BotHarness, second: BotHarness, *, messages: int = 120) -> None:
    """Both applications send from the one outbox at the same time, through every path they have."""
    now = first.clock.now()
    async with first.db.read() as session:
        before = int(await session.scalar(select(func.max(OutboxMessage.id))) or 0)
    priorities = [Priority.ALERT, Priority.URGENT, Priority.NORMAL, Priority.BULK]
    await queue(first.db, now, [(1000 + i % 7, f"message {i}", priorities[i % 4]) for i in range(messages)])
    for _ in range(5):
        await asyncio.gather(
            first.deliver_outbox(), second.deliver_outbox(),
            jobs.alert_sweep(first.runtime, first.app.bot), jobs.alert_sweep(second.runtime, second.app.bot),
            jobs.outbox_sweep(second.runtime, second.app.bot), jobs.outbox_sweep(first.runtime, first.app.bot),
            first.tick(), second.tick(),
        )
        if await unsent(first.db) == 0:
            break
    counts = deliveries(first.api)
    assert {key: n for key, n in counts.items() if n > 1} == {}
    assert sorted(text for _, text in counts) == sorted(f"message {i}" for i in range(messages))
    async with first.db.read() as session:
        rows = list(await session.scalars(select(OutboxMessage).where(OutboxMessage.id > before)))
    assert len(rows) == messages and all(row.sent_at is not None and row.attempts == 1 for row in rows)
    assert {row.claimed_by for row in rows} <= {first.runtime.instance_id, second.runtime.instance_id}
    assert first.runtime.instance_id != second.runtime.instance_id


async def test_two_applications_on_one_database_deliver_each_message_once(tmp_path: Path,
                                                                          clock: ManualClock) -> None:
    first = BotHarness(sandbox_settings(tmp_path), clock)
    await first.start()
    second = BotHarness(sandbox_settings(tmp_path), clock, api=first.api)  # its own engine, runtime and id
    await second.start()
    try:
        await _two_processes_deliver_once(first, second)
    finally:
        await second.close()
        await first.close()
    assert first.api.violations == []


async def test_claim_race_on_each_backend(any_database: Database, tmp_path: Path, clock: ManualClock) -> None:
    """Four engines (four processes' worth of connections) claim at once: no row is taken twice.

    On PostgreSQL this is ``FOR UPDATE SKIP LOCKED``; on SQLite the writer lock. Then two whole
    applications on the same database send concurrently.
    """
    now = clock.now()
    await queue(any_database, now, [(2000 + i, f"row {i}", Priority(p)) for i, p in
                                    zip(range(200), [0, 2, 5, 8] * 50, strict=True)])
    engines = [Database(any_database.url) for _ in range(4)]
    taken: dict[str, list[int]] = {f"process-{n}": [] for n in range(len(engines))}

    async def claimer(owner: str, db: Database) -> None:
        while True:
            async with db.write() as session:
                claim = await outbox.claim(session, owner, now=now, limit=7)
            if not claim.rows:
                return
            taken[owner].extend(row.id for row in claim.rows)
            await asyncio.sleep(0)
            async with db.write() as session:
                for row in claim.rows:
                    assert await outbox.mark_sent(session, row, telegram_message_id=row.id, now=now) is not None

    try:
        await asyncio.gather(*(claimer(owner, db) for owner, db in zip(taken, engines, strict=True)))
    finally:
        for db in engines:
            await db.dispose()
    every = [row_id for ids in taken.values() for row_id in ids]
    assert len(every) == len(set(every)) == 200
    assert await unsent(any_database) == 0

    api = FakeBotApi(clock=lambda: clock.now().timestamp())
    settings = sandbox_settings(tmp_path, database_url=any_database.url)
    first = BotHarness(settings, clock, api=api)
    await first.start()
    second = BotHarness(settings, clock, api=api)
    await second.start()
    try:
        await _two_processes_deliver_once(first, second, messages=80)
    finally:
        await second.close()
        await first.close()
    assert api.violations == []

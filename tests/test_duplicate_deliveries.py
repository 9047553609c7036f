"""The same update delivered to two processes at the same moment (an updater restart, a webhook retried
while the first delivery is still being handled): one effect, and the second delivery is dropped
silently, on SQLite and on PostgreSQL. No internal error for the person, no traceback in the log."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.clock import ManualClock
from bot.i18n import SUPPORTED_LOCALES, translator
from bot.sandbox.botapi import FakeBotApi
from bot.sandbox.harness import BotHarness, sandbox_settings
from bot.sandbox.updates import FakeUser
from bot.services import inbox, incidents
from bot.services.errors import AlreadyDone
from bot.storage.db import Database
from bot.storage.models import ExtensionRequest, FlowState, InboxEntry, Incident, IncidentEvent, Role
from tests.field_office import ANN, BOSS, add_case

INTERNAL = tuple(translator(locale)("error.internal") for locale in SUPPORTED_LOCALES)
EN = translator("en")


class Rendezvous:
    """Each delivery of an update waits at the inbox for the other one to get there too (a few ms at
    most): both transactions are open and claim the same key at the same moment. Without it the first
    could be done before the second starts, which is only a replay."""

    def __init__(self) -> None:
        self.waiting: set[str] = set()
        self.met = 0

    async def meet(self, key: str) -> None:
        if key in self.waiting:  # the second one: let the first go on, and claim at the same time
            self.waiting.discard(key)
            self.met += 1
            return
        self.waiting.add(key)
        for _ in range(400):
            await asyncio.sleep(0.005)
            if key not in self.waiting:
                return
        self.waiting.discard(key)  # no second delivery of this one


@dataclass
class Pair:
    first: BotHarness
    second: BotHarness
    rendezvous: Rendezvous


@pytest.fixture
async def pair(any_database: Database, tmp_path: Path, clock: ManualClock,
               monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Pair]:
    """Two whole applications (two processes' worth: own engine, runtime, instance id) on one database,
    with a supervisor and a collector who has a case."""
    rendezvous = Rendezvous()
    claim = inbox.claim

    async def claim_together(session: AsyncSession, key: str, *, now: datetime) -> None:
        await rendezvous.meet(key)
        await claim(session, key, now=now)

    monkeypatch.setattr(inbox, "claim", claim_together)
    # One process queues its own alarms one after another (incidents.raising); two processes do not.
    monkeypatch.setattr(incidents, "raising", asyncio.Lock)
    api = FakeBotApi(clock=lambda: clock.now().timestamp())
    settings = sandbox_settings(tmp_path, database_url=any_database.url, throttle_rate=0)
    first, second = BotHarness(settings, clock, api=api), BotHarness(settings, clock, api=api)
    await first.start()
    await second.start()
    try:
        boss = await first.onboard(BOSS, "Boss", Role.SUPERVISOR, team="A")
        ann = await first.onboard(ANN, "Ann", Role.COLLECTOR, team="A", supervisor_id=boss)
        await add_case(first, "ZS-1", ann, (31.2304, 121.4737))
        await first.deliver_outbox()
        api.clear()
        yield Pair(first, second, rendezvous)
    finally:
        await second.close()
        await first.close()
    assert api.violations == [], api.violations


async def at_once(pair: Pair, update: dict[str, Any], caplog: pytest.LogCaptureFixture,
                  chat: FakeUser = ANN, *, meet: bool = True) -> list[str]:
    """Both applications process ``update`` concurrently; returns what the bot said to ``chat``."""
    before, met = len(pair.first.api.calls), pair.rendezvous.met
    caplog.clear()
    with caplog.at_level(logging.INFO):
        await asyncio.gather(pair.first.send(update), pair.second.send(update))
    assert pair.rendezvous.met == met + meet  # both were at the inbox at the same moment
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
    assert errors == [], [r.getMessage() for r in errors]
    assert sum("already applied" in r.getMessage() for r in caplog.records) == 1
    replies = pair.first.replies(pair.first.api.calls[before:], chat_id=chat.id)
    assert not any(text.startswith(INTERNAL) for text in replies), replies
    return replies


async def count(db: Database, what: Any, *where: Any) -> int:
    async with db.read() as session:
        return int(await session.scalar(select(func.count()).select_from(what).where(*where)) or 0)


async def test_an_sos_delivered_twice_at_once_raises_one_alarm(pair: Pair, caplog: pytest.LogCaptureFixture) -> None:
    replies = await at_once(pair, pair.first.updates.command(ANN, "/sos"), caplog)
    assert await count(pair.first.db, Incident) == 1
    assert await count(pair.first.db, IncidentEvent, IncidentEvent.kind == "raised") == 1
    assert replies.count(EN("sos.raised")) == 1


async def test_a_button_delivered_twice_at_once_starts_one_request(pair: Pair,
                                                                  caplog: pytest.LogCaptureFixture) -> None:
    """The extension request's first button saves the step (a new flow_states row) in a write_once."""
    replies = await at_once(pair, pair.first.updates.button(ANN, "v:ext:1", forge=True), caplog)
    assert await count(pair.first.db, FlowState) == 1
    assert replies == [EN("extension.ask_reason", case_no="ZS-1")]


async def test_a_question_button_delivered_twice_at_once_asks_once(pair: Pair,
                                                                  caplog: pytest.LogCaptureFixture) -> None:
    """A button that only asks for a typed answer (``ask_for_text``: the step is saved, nothing else).
    It used to ask twice, and on PostgreSQL the second insert of the step failed as an internal error."""
    replies = await at_once(pair, pair.first.updates.button(BOSS, "dk:hold:1", forge=True), caplog, chat=BOSS)
    assert await count(pair.first.db, FlowState) == 1
    assert len(replies) == 1, replies


async def test_the_last_answer_delivered_twice_at_once_files_one_request(pair: Pair,
                                                                        caplog: pytest.LogCaptureFixture) -> None:
    first = pair.first
    await first.send(first.updates.button(ANN, "v:ext:1", forge=True))
    await first.send(first.updates.text(ANN, "The debtor is travelling"))
    replies = await at_once(pair, first.updates.text(ANN, "2026-11-05"), caplog)
    assert await count(first.db, ExtensionRequest) == 1
    assert replies == [EN("extension.sent", date=EN.date(date(2026, 11, 5)))]


@pytest.mark.parametrize("flush", [True, False], ids=["clash-at-flush", "clash-at-commit"])
async def test_a_key_clash_as_an_integrity_error_is_already_done(pair: Pair, flush: bool,
                                                                 monkeypatch: pytest.MonkeyPatch,
                                                                 caplog: pytest.LogCaptureFixture) -> None:
    """A claim that reads, then inserts: both deliveries find no key and both insert. On PostgreSQL the
    second insert fails with a primary-key violation, at its flush or at the commit (SQLite's write
    lock makes the second one find the key). ``write_once`` sees the key committed by the other
    delivery and drops its own, silently."""
    meet = pair.rendezvous.meet

    async def read_then_insert(session: AsyncSession, key: str, *, now: datetime) -> None:
        if await session.get(InboxEntry, key) is not None:
            raise AlreadyDone()
        await meet(key)
        session.add(InboxEntry(key=key, at=now))
        if flush:
            await session.flush()

    monkeypatch.setattr(inbox, "claim", read_then_insert)
    # on SQLite the second delivery waits for the write lock (its read began the transaction), not here
    replies = await at_once(pair, pair.first.updates.button(ANN, "v:ext:1", forge=True), caplog,
                            meet=not pair.first.db.sqlite)
    assert await count(pair.first.db, FlowState) == 1
    assert replies == [EN("extension.ask_reason", case_no="ZS-1")]


async def test_two_first_steps_saved_for_one_person_at_once_do_not_clash(any_database: Database) -> None:
    """``flows.enter`` from two processes at the same moment (no row yet): both succeed, one row remains."""
    from bot.services import flows, staff
    from bot.steps import DeskStep

    now = datetime(2026, 11, 2, 9, 0).astimezone()
    async with any_database.write() as session:
        person = await staff.add_staff(session, name="Boss", role=Role.SUPERVISOR, team="A", now=now)
    other = Database(any_database.url)  # a second process's engine
    try:
        both_read = asyncio.Barrier(2)

        async def save(database: Database, query: str) -> None:
            async with database.write() as session:
                await session.get(FlowState, person.id)  # on PostgreSQL each finds no row yet ...
                with contextlib.suppress(TimeoutError):  # (SQLite: the other waits for the write lock)
                    async with asyncio.timeout(1.0):
                        await both_read.wait()
                await flows.enter(session, person.id, DeskStep.RESULTS, {"query": query}, now=now)  # ... and saves

        await asyncio.gather(save(any_database, "first"), save(other, "second"))
    finally:
        await other.dispose()
    async with any_database.read() as session:
        rows = (await session.scalars(select(FlowState))).all()
    assert len(rows) == 1 and rows[0].data["query"] in ("first", "second")

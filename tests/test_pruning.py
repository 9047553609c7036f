"""Old inbox and outbox rows are pruned after FIELDBOT_PRUNE_AFTER_DAYS, in batches; pending messages and
recent rows stay (SQLite and PostgreSQL)."""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from bot.clock import ManualClock
from bot.config import ConfigError, load_settings
from bot.sandbox.harness import BotHarness
from bot.services import inbox, outbox, pruning
from bot.storage.db import Database
from bot.storage.models import InboxEntry, OutboxMessage
from scheduler import jobs
from tests.field_office import ANN

KEEP = timedelta(days=30)


async def seed(database: Database, clock: ManualClock) -> dict[str, int]:
    """Outbox rows of every kind, 40 days old and 1 day old; inbox keys as old."""
    now = clock.now()
    ids: dict[str, int] = {}
    async with database.write() as session:
        for age, label in ((timedelta(days=40), "old"), (timedelta(days=1), "fresh")):
            at = now - age
            await inbox.claim(session, f"update:{label}", now=at)
            for state in ("sent", "failed", "pending", "claimed"):
                row = await outbox.enqueue(session, chat_id=1000, text=f"{state} {label}", kind="test", now=at,
                                           dedupe_key=f"{state}:{label}")
                assert row is not None
                if state == "sent":
                    row.sent_at, row.attempts, row.telegram_message_id = at, 1, 7
                elif state == "failed":
                    row.failed_at, row.last_error = at, outbox.DEACTIVATED
                elif state == "claimed":
                    row.claimed_by, row.claimed_at = "instance-gone", at
                ids[f"{state} {label}"] = row.id
    return ids


async def outbox_left(database: Database) -> set[str]:
    async with database.read() as session:
        return set(await session.scalars(select(OutboxMessage.payload["text"].as_string())))


async def inbox_left(database: Database) -> set[str]:
    async with database.read() as session:
        return set(await session.scalars(select(InboxEntry.key)))


async def test_old_rows_go_fresh_and_pending_stay(any_database: Database, clock: ManualClock) -> None:
    await seed(any_database, clock)
    pruned = await pruning.sweep(any_database, now=clock.now(), keep=KEEP)
    assert (pruned.inbox, pruned.outbox) == (1, 2)
    assert await inbox_left(any_database) == {"update:fresh"}
    assert await outbox_left(any_database) == {"pending old", "claimed old", "sent fresh", "failed fresh",
                                               "pending fresh", "claimed fresh"}
    assert (await pruning.sweep(any_database, now=clock.now(), keep=KEEP)).total == 0

    clock.advance(days=28, hours=23)  # the fresh rows are now 30 days less an hour old
    assert (await pruning.sweep(any_database, now=clock.now(), keep=KEEP)).total == 0
    clock.advance(hours=2)
    assert await pruning.sweep(any_database, now=clock.now(), keep=KEEP) == pruning.Pruned(inbox=1, outbox=2)
    assert await inbox_left(any_database) == set()
    assert await outbox_left(any_database) == {"pending old", "claimed old", "pending fresh", "claimed fresh"}


async def test_a_run_deletes_a_few_batches_and_the_next_run_goes_on(any_database: Database,
                                                                   clock: ManualClock) -> None:
    old = clock.now() - timedelta(days=31)
    async with any_database.write() as session:
        for n in range(23):
            await inbox.claim(session, f"update:{n}", now=old)
            row = await outbox.enqueue(session, chat_id=1000, text=f"m{n}", kind="test", now=old)
            assert row is not None
            if n % 2:
                row.sent_at = old
            else:
                row.failed_at = old
    runs = []
    while (pruned := await pruning.sweep(any_database, now=clock.now(), keep=KEEP, batch=5, batches=2)).total:
        runs.append((pruned.inbox, pruned.outbox))
    assert runs == [(10, 10), (10, 10), (3, 3)]
    assert await inbox_left(any_database) == set() and await outbox_left(any_database) == set()


async def test_the_sweep_follows_the_setting_and_keeps_replays_of_recent_updates_away(
        harness: BotHarness, field: dict[str, int]) -> None:
    """Through the bot: an update applied 31 days ago loses its inbox row; one of yesterday keeps it, so
    a second delivery of it still changes nothing. (An update older than the setting could be applied
    again if it came back, but Telegram keeps undelivered updates for 24 hours at most.)"""
    assert ("prune", jobs.prune_sweep, 3600.0) in jobs.CUSTODY_SWEEPS
    assert harness.runtime.settings.prune_after_days == 30
    old = harness.updates.button(ANN, f"v:ext:{field['case']}", forge=True)
    await harness.send(old)
    await harness.send(harness.updates.command(ANN, "/cancel"))
    harness.clock.advance(days=30)
    recent = harness.updates.button(ANN, f"v:ext:{field['case']}", forge=True)
    await harness.send(recent)
    await harness.deliver_outbox()
    harness.clock.advance(days=1)
    assert await jobs.prune_sweep(harness.runtime, harness.app.bot) > 0
    assert await inbox_left(harness.db) == {inbox.update_key(recent["update_id"])}
    assert await outbox_left(harness.db) == set()  # the notices of the new cases, sent 31 days ago
    assert harness.replies(await harness.replay(recent)) == []


def test_the_setting(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for key in list(os.environ):
        if key.startswith("FIELDBOT_") and key != "FIELDBOT_KEYS_DIR":
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)
    assert load_settings().prune_after_days == 30
    monkeypatch.setenv("FIELDBOT_PRUNE_AFTER_DAYS", "90")
    assert load_settings().prune_after_days == 90
    monkeypatch.setenv("FIELDBOT_PRUNE_AFTER_DAYS", "1")
    with pytest.raises(ConfigError, match="FIELDBOT_PRUNE_AFTER_DAYS"):
        load_settings()

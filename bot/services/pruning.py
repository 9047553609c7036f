"""Old rows of the inbox and the outbox are deleted, in small batches, by the hourly ``prune`` sweep.

Both tables only grow otherwise: one inbox row per update that changed something, one outbox row per
message sent. After ``FIELDBOT_PRUNE_AFTER_DAYS`` (30 by default) they are no longer needed:

* **inbox** rows older than that go. A row exists so that a second delivery of the same update changes
  nothing. Telegram keeps an update it could not deliver for 24 hours at most and never delivers one
  again once it was confirmed, so an update id older than a few days cannot come back; were one
  replayed by hand after its row went, it would be applied again.
* **outbox** rows *done* before that go: sent (``sent_at``), or given up or skipped (``failed_at``: too
  many attempts, a request Telegram refused for good, a deactivated recipient). A pending row (neither
  set, claimed by a sender or not) is never deleted, however old. Nothing reads a done row later: an
  alarm's deliveries are recorded in its timeline (``incident_events``) and the audit log, and the
  owner's live-location message id is copied to the incident, in the transaction that marks the row
  sent. A dedupe key keeps a message from being queued twice only while its row is kept; each one
  names its day, or the row it is about carries its own "done" mark (a promise's status, a report
  run, an outage, a reminder), except the offer to carry on with a draft visit report made at a
  restart: a draft left untouched longer than this is offered once more at the next restart.
  ``fieldbot status`` counts the failed messages still kept, that is those of the last
  ``FIELDBOT_PRUNE_AFTER_DAYS``.

A sweep run deletes at most :data:`BATCHES_PER_RUN` batches of :data:`BATCH` rows per table, each in
a transaction of its own, and yields to the event loop between them. ``bench/prune_batch.py`` measured a
batch at about 25 to 40 ms (median; the longest about 60 ms) on SQLite and on PostgreSQL, on the 2-core
development machine while it was busy: that is how long SQLite's write lock is held, so a write waits
no longer than that; the event loop itself is not held (the work runs in the driver), its longest stall
about 10 ms. A backlog (the first run on a database that was never pruned) is worked off at 20,000
rows a table an hour. The outbox's sent rows are found through its pending index (``sent_at`` first), the
given-up ones through its ``sent_at IS NULL`` part; the inbox has no index on its time: a batch walks
the table in insertion order, where the oldest rows are, and once nothing is stale a run reads it
through once (some 15 to 30 ms for 20,000 rows).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.storage.db import Database
from bot.storage.models import InboxEntry, OutboxMessage

BATCH = 5_000
BATCHES_PER_RUN = 4
# A plain DELETE: the ORM would otherwise fetch every deleted key back (RETURNING) to update the session.
_PLAIN = {"synchronize_session": False}


@dataclass(frozen=True)
class Pruned:
    inbox: int = 0
    outbox: int = 0

    @property
    def total(self) -> int:
        return self.inbox + self.outbox


async def prune_inbox(session: AsyncSession, *, before: datetime, limit: int = BATCH) -> int:
    """Delete up to ``limit`` inbox rows recorded before ``before``; returns how many went."""
    stale = select(InboxEntry.key).where(InboxEntry.at < before).limit(limit)
    result = await session.execute(delete(InboxEntry).where(InboxEntry.key.in_(stale)), execution_options=_PLAIN)
    return int(getattr(result, "rowcount", 0) or 0)


async def prune_outbox(session: AsyncSession, *, before: datetime, limit: int = BATCH) -> int:
    """Delete up to ``limit`` outbox rows sent, or given up, before ``before``; pending rows stay."""
    deleted = 0
    done: list[ColumnElement[bool]] = [OutboxMessage.sent_at < before]  # sent (the pending index's column)
    failed: list[ColumnElement[bool]] = [OutboxMessage.sent_at.is_(None), OutboxMessage.failed_at < before]
    for where in (done, failed):
        if deleted >= limit:
            break
        stale = select(OutboxMessage.id).where(*where).limit(limit - deleted)
        result = await session.execute(delete(OutboxMessage).where(OutboxMessage.id.in_(stale)),
                                       execution_options=_PLAIN)
        deleted += int(getattr(result, "rowcount", 0) or 0)
    return deleted


async def sweep(database: Database, *, now: datetime, keep: timedelta, batch: int = BATCH,
                batches: int = BATCHES_PER_RUN) -> Pruned:
    """One run of the prune sweep: what fell out of the last ``keep``, a few batches per table at most."""
    before = now - keep
    counts = {}
    for name, prune in (("inbox", prune_inbox), ("outbox", prune_outbox)):
        total = 0
        for _ in range(batches):
            async with database.write() as session:
                deleted = await prune(session, before=before, limit=batch)
            total += deleted
            if deleted < batch:
                break
            await asyncio.sleep(0)  # let waiting updates run between batches
        counts[name] = total
    return Pruned(**counts)

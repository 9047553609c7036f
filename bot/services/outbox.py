"""Messages that must arrive are rows first: written in the transaction that decided to send them.

The outbox sweep (``scheduler/outbox_sender.py``) sends due rows in priority order (alerts first),
retries on 429 and network errors with back-off, and survives restarts. No Telegram import here:
buttons are stored as ``[[label, callback_data], ...]`` rows and built into a keyboard by the sender.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import IntEnum
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.services.quiet import QuietHours
from bot.storage.models import OutboxMessage

LEASE = timedelta(seconds=60)
MAX_BACKOFF = timedelta(minutes=5)
MAX_ATTEMPTS = 50

Buttons = Sequence[Sequence[tuple[str, str]]]


class Priority(IntEnum):
    ALERT = 0
    URGENT = 2
    REVIEW = 4
    NORMAL = 5
    BULK = 8


@dataclass(frozen=True)
class Attachment:
    """A file from the data dir sent with the message (``sendDocument`` or ``sendPhoto``)."""

    path: str
    filename: str
    as_photo: bool = False


async def enqueue(
    session: AsyncSession,
    *,
    chat_id: int,
    text: str,
    kind: str,
    now: datetime,
    priority: Priority = Priority.NORMAL,
    buttons: Buttons | None = None,
    protect_content: bool = False,
    attachment: Attachment | None = None,
    not_before: datetime | None = None,
    dedupe_key: str | None = None,
    flush: bool = True,
    meta: dict[str, Any] | None = None,
) -> OutboxMessage | None:
    """Queue one message. With ``dedupe_key``, a second enqueue of the same key does nothing.

    ``flush=False`` leaves the INSERT to the transaction's next flush (sweeps queue many at once).
    """
    if dedupe_key is not None:
        existing = await session.scalar(select(OutboxMessage).where(OutboxMessage.dedupe_key == dedupe_key))
        if existing is not None:
            return None
    payload: dict[str, Any] = {"text": text, "protect_content": protect_content}
    if meta:
        payload["meta"] = meta  # what the message belongs to (e.g. an incident), for delivery records
    if buttons:
        payload["buttons"] = [[list(b) for b in row] for row in buttons]
    method = "sendMessage"
    if attachment is not None:
        method = "sendPhoto" if attachment.as_photo else "sendDocument"
        payload["file"] = {"path": attachment.path, "filename": attachment.filename}
    row = OutboxMessage(
        chat_id=chat_id, kind=kind, priority=int(priority), method=method, payload=payload, dedupe_key=dedupe_key,
        created_at=now, next_attempt_at=max(now, not_before) if not_before else now, attempts=0,
    )
    session.add(row)
    if flush:
        await session.flush()
    return row


async def claim_due(session: AsyncSession, *, now: datetime, limit: int = 20,
                    max_priority: int | None = None, quiet: QuietHours | None = None) -> list[OutboxMessage]:
    """Take up to ``limit`` due rows, most urgent first, leasing them so no other sweep sends them too.

    During ``quiet`` hours only alerts and urgent messages go out; the rest wait for the morning.
    """
    if quiet is not None and quiet.contains(now):
        max_priority = min(max_priority if max_priority is not None else Priority.URGENT, Priority.URGENT)
    query = (
        select(OutboxMessage)
        .where(OutboxMessage.sent_at.is_(None), OutboxMessage.failed_at.is_(None),
               OutboxMessage.next_attempt_at <= now)
        .order_by(OutboxMessage.priority, OutboxMessage.next_attempt_at, OutboxMessage.id)
        .limit(limit)
    )
    if max_priority is not None:
        query = query.where(OutboxMessage.priority <= max_priority)
    if session.bind is not None and session.bind.dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    rows = list((await session.scalars(query)).all())
    for row in rows:
        row.next_attempt_at = now + LEASE
    return rows


async def mark_sent(session: AsyncSession, message_id: int, *, telegram_message_id: int | None,
                    now: datetime) -> OutboxMessage | None:
    row = await session.get(OutboxMessage, message_id)
    if row is not None:
        row.sent_at = now
        row.attempts += 1
        row.telegram_message_id = telegram_message_id
    return row


ALERT_MAX_BACKOFF = timedelta(seconds=10)


def backoff(attempts: int, priority: int = Priority.NORMAL) -> timedelta:
    """2, 4, 8, ... seconds; alerts never wait more than 10 s between tries, others 5 minutes."""
    ceiling = ALERT_MAX_BACKOFF if priority <= Priority.URGENT else MAX_BACKOFF
    return min(timedelta(seconds=2 ** min(attempts, 12)), ceiling)


async def mark_retry(session: AsyncSession, message_id: int, *, error: str, now: datetime,
                     retry_after: float | None = None) -> OutboxMessage | None:
    """A passing failure (429, network): try again after Telegram's ``retry_after`` or a back-off."""
    row = await session.get(OutboxMessage, message_id)
    if row is None:
        return None
    row.attempts += 1
    row.last_error = error[:500]
    if row.attempts >= MAX_ATTEMPTS:
        row.failed_at = now
    else:
        wait = timedelta(seconds=retry_after) if retry_after is not None else backoff(row.attempts, row.priority)
        row.next_attempt_at = now + wait
    return row


async def mark_failed(session: AsyncSession, message_id: int, *, error: str, now: datetime) -> OutboxMessage | None:
    """A lasting failure (blocked by the user, bad request): stop trying and keep the reason."""
    row = await session.get(OutboxMessage, message_id)
    if row is not None:
        row.attempts += 1
        row.failed_at = now
        row.last_error = error[:500]
    return row

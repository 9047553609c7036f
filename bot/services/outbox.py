"""Messages that must arrive are rows first: written in the transaction that decided to send them.

The senders (``scheduler/outbox_sender.py``: the alert sweep, the outbox sweep, and a handler that
sends an SOS at once) send due rows in priority order (alerts first), retry on 429 and network errors
with back-off, and survive restarts. No Telegram import here: buttons are stored as
``[[label, callback_data], ...]`` rows and built into a keyboard by the sender.

Exactly once, as far as a network allows:

1. **Claim, commit, then send.** :func:`claim` marks the rows with the sender's instance id and the
   claim time (``claimed_by``, ``claimed_at``) and the transaction commits before anything is sent.
   A claimed row is not due for anyone else while its owner's heartbeat (``instances``, written every
   second, see ``bot/services/leases.py``) is fresh, so two sweeps, a handler and a second process
   never send the same row. On PostgreSQL ``FOR UPDATE SKIP LOCKED`` keeps concurrent claimers
   apart; on SQLite the writer lock (``BEGIN IMMEDIATE``) serialises them.
2. **Record only under the claim.** :func:`mark_sent`, :func:`mark_retry` and :func:`mark_failed`
   change the row only if it is still claimed by the same sender with the same claim time and not
   yet sent; a sent row keeps its Telegram message id and is never claimed again.
3. **A dead owner's claims lapse in seconds.** When a process dies its heartbeat stops; after
   ``HEARTBEAT_TTL`` (5 s) its claimed rows are due again for everyone. A live owner keeps a claim
   however long the send takes (up to the :data:`MAX_IN_FLIGHT` backstop).

What a crash can still do: a process killed after Telegram accepted a message and before the record
committed leaves that row claimed but not marked sent; it is sent again after the heartbeat lapses.
That is at most one duplicate of each row that was between send and record at that instant, and each
sender has at most one such row (it sends its claimed rows one at a time).

A message to a deactivated staff member is not sent: it is marked failed with
:data:`DEACTIVATED` as the reason. Group chats (the supervisors' alert group) are nobody's staff row.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import IntEnum
from typing import Any

from sqlalchemy import ColumnElement, delete, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.services.leases import HEARTBEAT_TTL, beat
from bot.services.quiet import QuietHours
from bot.storage.models import Instance, OutboxMessage, Staff

# A claim whose owner is alive is kept however long the send takes, up to this backstop (a live
# owner that could not record its result, e.g. the database was away at that moment).
MAX_IN_FLIGHT = timedelta(minutes=5)
DEACTIVATED = "recipient deactivated"
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


LIVE_FOREVER = 0x7FFFFFFF  # the live_period of a live location that can be edited until it is stopped


@dataclass(frozen=True)
class Location:
    """A map pin instead of a text: a new live location, the live location ``message_id`` moved to this
    point, or (``stop``) that live location no longer updated. ``text`` is then empty."""

    latitude: float
    longitude: float
    message_id: int | None = None
    stop: bool = False
    live_period: int = LIVE_FOREVER

    @property
    def method(self) -> str:
        if self.message_id is None:
            return "sendLocation"
        return "stopMessageLiveLocation" if self.stop else "editMessageLiveLocation"

    def as_payload(self) -> dict[str, Any]:
        if self.message_id is None:
            return {"latitude": self.latitude, "longitude": self.longitude, "live_period": self.live_period}
        return {"latitude": self.latitude, "longitude": self.longitude, "message_id": self.message_id}


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
    location: Location | None = None,
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
    if location is not None:
        method = location.method
        payload["location"] = location.as_payload()
    row = OutboxMessage(
        chat_id=chat_id, kind=kind, priority=int(priority), method=method, payload=payload, dedupe_key=dedupe_key,
        created_at=now, next_attempt_at=max(now, not_before) if not_before else now, attempts=0,
    )
    session.add(row)
    if flush:
        await session.flush()
    return row


@dataclass(frozen=True)
class Claimed:
    """A row taken by one sender: what it needs to send it, and the claim its record must match."""

    id: int
    chat_id: int
    kind: str
    priority: int
    method: str
    payload: dict[str, Any]
    claimed_by: str
    claimed_at: datetime
    attempts: int


@dataclass
class Claim:
    """What one claim took: rows to send now, and rows skipped (recorded as failed) with the reason."""

    rows: list[Claimed]
    skipped: list[tuple[Claimed, str]]
    groups: list[list[Claimed]] = field(default_factory=list)  # rows to send as one message each


def _claim_is_free(now: datetime) -> ColumnElement[bool]:
    """Nobody holds the row: never claimed, released, its owner's heartbeat is stale, or held far too long."""
    owner_alive = (select(Instance.id)
                   .where(Instance.id == OutboxMessage.claimed_by, Instance.heartbeat_at >= now - HEARTBEAT_TTL)
                   .exists())
    return or_(OutboxMessage.claimed_by.is_(None), OutboxMessage.claimed_at.is_(None),
               OutboxMessage.claimed_at < now - MAX_IN_FLIGHT, ~owner_alive)


async def claim(session: AsyncSession, owner: str, *, now: datetime, limit: int = 20, max_priority: int | None = None,
                min_priority: int | None = None, quiet: QuietHours | None = None,
                exclude_chats: Collection[int] = (), one_per_chat: bool = False, combine: int = 1) -> Claim:
    """Take up to ``limit`` due rows for ``owner``, most urgent first; the caller commits before sending.

    A row is due when it is neither sent nor failed, its ``next_attempt_at`` has come, and no live
    sender holds it (see :func:`_claim_is_free`). The claim writes ``claimed_by``/``claimed_at`` and
    the owner's heartbeat in this transaction; on PostgreSQL ``FOR UPDATE SKIP LOCKED`` keeps two
    claimers apart, on SQLite the writer lock (``BEGIN IMMEDIATE``) does. Rows for a deactivated staff
    member are not sent: they are marked failed with the reason :data:`DEACTIVATED` (a group chat is
    nobody's staff row, so messages to it still go).

    During ``quiet`` hours only alerts and urgent messages go out; the rest wait for the morning.

    The continuous sender picks with ``exclude_chats`` (chats still inside their one-second spacing,
    or with a message in flight) and ``one_per_chat``; with ``combine > 1`` an alert is taken with up
    to ``combine - 1`` more due alerts for the same chat queued within :data:`COMBINE_WITHIN` of it,
    to go as one message (see :attr:`Claim.groups`).
    """
    if quiet is not None and quiet.contains(now):
        max_priority = min(max_priority if max_priority is not None else Priority.URGENT, Priority.URGENT)
    await beat(session, owner, now=now)
    query = (
        select(OutboxMessage)
        .where(OutboxMessage.sent_at.is_(None), OutboxMessage.failed_at.is_(None),
               OutboxMessage.next_attempt_at <= now, _claim_is_free(now))
        .order_by(OutboxMessage.priority, OutboxMessage.next_attempt_at, OutboxMessage.id)
        .limit(limit * CANDIDATES if one_per_chat else limit)
    )
    if exclude_chats:
        query = query.where(OutboxMessage.chat_id.not_in(list(exclude_chats)))
    if max_priority is not None:
        query = query.where(OutboxMessage.priority <= max_priority)
    if min_priority is not None:
        query = query.where(OutboxMessage.priority >= min_priority)
    if session.bind is not None and session.bind.dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True, of=OutboxMessage)
    rows = list((await session.scalars(query)).all())
    groups = _pick(rows, limit=limit, combine=combine) if one_per_chat else [[row] for row in rows]
    rows = [row for group in groups for row in group]
    chats = {row.chat_id for row in rows if row.chat_id > 0}
    inactive = set(await session.scalars(select(Staff.telegram_user_id).where(
        Staff.telegram_user_id.in_(chats), Staff.active.is_(False)))) if chats else set()
    result = Claim(rows=[], skipped=[])
    for group in groups:
        taken: list[Claimed] = []
        for row in group:
            row.claimed_by, row.claimed_at = owner, now
            if row.chat_id in inactive:
                row.failed_at, row.last_error = now, DEACTIVATED
                result.skipped.append((_snapshot(row), DEACTIVATED))
            else:
                taken.append(_snapshot(row))
        if taken:
            result.rows.extend(taken)
            result.groups.append(taken)
    await session.flush()
    return result


CANDIDATES = 4  # one_per_chat reads this many rows per wanted one (several may be for one chat)
COMBINE_WITHIN = timedelta(seconds=1)
COMBINED_TEXT_LIMIT = 4096  # Telegram's limit for one message's text
SEPARATOR = "\n\n"


def _combinable(row: OutboxMessage) -> bool:
    return (row.priority == Priority.ALERT and row.method == "sendMessage" and "file" not in row.payload
            and not row.payload.get("protect_content"))


def _pick(rows: list[OutboxMessage], *, limit: int, combine: int) -> list[list[OutboxMessage]]:
    """The most urgent row of each chat (in the query's order), up to ``limit`` chats; alerts with their fellows."""
    groups: dict[int, list[OutboxMessage]] = {}
    for row in rows:
        group = groups.get(row.chat_id)
        if group is None:
            if len(groups) < limit:
                groups[row.chat_id] = [row]
            continue
        first = group[0]
        if (len(group) < combine and _combinable(first) and _combinable(row)
                and row.created_at - first.created_at <= COMBINE_WITHIN
                and sum(len(r.payload["text"]) + len(SEPARATOR) for r in group) + len(row.payload["text"])
                <= COMBINED_TEXT_LIMIT):
            group.append(row)
    return list(groups.values())


async def anything_due(session: AsyncSession, *, now: datetime, max_priority: int | None = None,
                       min_priority: int | None = None, exclude_chats: Collection[int] = ()) -> bool:
    """Whether :func:`claim` would find a row: a read, so an idle sender takes no write lock."""
    query = select(OutboxMessage.id).where(
        OutboxMessage.sent_at.is_(None), OutboxMessage.failed_at.is_(None), OutboxMessage.next_attempt_at <= now,
        _claim_is_free(now)).limit(1)
    if max_priority is not None:
        query = query.where(OutboxMessage.priority <= max_priority)
    if min_priority is not None:
        query = query.where(OutboxMessage.priority >= min_priority)
    if exclude_chats:
        query = query.where(OutboxMessage.chat_id.not_in(list(exclude_chats)))
    return (await session.scalar(query)) is not None


def _snapshot(row: OutboxMessage) -> Claimed:
    assert row.claimed_by is not None and row.claimed_at is not None
    return Claimed(id=row.id, chat_id=row.chat_id, kind=row.kind, priority=row.priority, method=row.method,
                   payload=dict(row.payload), claimed_by=row.claimed_by, claimed_at=row.claimed_at,
                   attempts=row.attempts)


def _still_held(claimed: Claimed) -> list[ColumnElement[bool]]:
    return [OutboxMessage.id == claimed.id, OutboxMessage.claimed_by == claimed.claimed_by,
            OutboxMessage.claimed_at == claimed.claimed_at, OutboxMessage.sent_at.is_(None),
            OutboxMessage.failed_at.is_(None)]


async def _held(session: AsyncSession, claimed: Claimed) -> OutboxMessage | None:
    """The row, locked, if ``claimed`` still holds it; None when another sender took it over meanwhile."""
    query = select(OutboxMessage).where(*_still_held(claimed))
    if session.bind is not None and session.bind.dialect.name == "postgresql":
        query = query.with_for_update()
    return (await session.scalars(query)).first()


async def mark_sent(session: AsyncSession, claimed: Claimed, *, telegram_message_id: int | None,
                    now: datetime) -> int | None:
    """Record a delivery (never sent again); returns the row's attempts, or None if the claim was lost.

    One guarded ``UPDATE ... RETURNING``: it applies only while ``claimed`` still holds the row.
    """
    result = await session.execute(
        update(OutboxMessage)
        .where(*_still_held(claimed))
        .values(sent_at=now, attempts=OutboxMessage.attempts + 1, telegram_message_id=telegram_message_id)
        .returning(OutboxMessage.attempts)
        .execution_options(synchronize_session=False))
    return result.scalar_one_or_none()


ALERT_MAX_BACKOFF = timedelta(seconds=10)


def backoff(attempts: int, priority: int = Priority.NORMAL) -> timedelta:
    """2, 4, 8, ... seconds; alerts never wait more than 10 s between tries, others 5 minutes."""
    ceiling = ALERT_MAX_BACKOFF if priority <= Priority.URGENT else MAX_BACKOFF
    return min(timedelta(seconds=2 ** min(attempts, 12)), ceiling)


async def mark_retry(session: AsyncSession, claimed: Claimed, *, error: str, now: datetime,
                     retry_after: float | None = None) -> OutboxMessage | None:
    """A passing failure (429, network): release the row, to be tried after ``retry_after`` or a back-off."""
    row = await _held(session, claimed)
    if row is None:
        return None
    row.claimed_by = row.claimed_at = None
    row.attempts += 1
    row.last_error = error[:500]
    if row.attempts >= MAX_ATTEMPTS:
        row.failed_at = now
    else:
        wait = timedelta(seconds=retry_after) if retry_after is not None else backoff(row.attempts, row.priority)
        row.next_attempt_at = now + wait
    return row


async def mark_failed(session: AsyncSession, claimed: Claimed, *, error: str, now: datetime) -> OutboxMessage | None:
    """A lasting failure (blocked by the user, bad request): stop trying and keep the reason."""
    row = await _held(session, claimed)
    if row is not None:
        row.attempts += 1
        row.failed_at = now
        row.last_error = error[:500]
    return row


async def release(session: AsyncSession, rows: Sequence[Claimed]) -> int:
    """Give back claims a sender will not use (it was stopped halfway); returns how many were released."""
    released = 0
    for claimed in rows:
        row = await _held(session, claimed)
        if row is not None:
            row.claimed_by = row.claimed_at = None
            released += 1
    return released


def _unclaimed(row_id: int) -> list[ColumnElement[bool]]:
    return [OutboxMessage.id == row_id, OutboxMessage.claimed_by.is_(None), OutboxMessage.sent_at.is_(None),
            OutboxMessage.failed_at.is_(None)]


async def replace_location(session: AsyncSession, row: OutboxMessage, location: Location) -> bool:
    """Point a queued location row no sender holds at ``location`` instead (coalescing: the newest point
    goes, once). False when a sender took it meanwhile, or it went: then it is left as it is."""
    result = await session.execute(
        update(OutboxMessage).where(*_unclaimed(row.id))
        .values(method=location.method, payload={**row.payload, "location": location.as_payload()}))
    return bool(getattr(result, "rowcount", 0))


async def withdraw(session: AsyncSession, row: OutboxMessage) -> bool:
    """Take back a queued row no sender holds (what it would say no longer applies); False if one took it."""
    result = await session.execute(delete(OutboxMessage).where(*_unclaimed(row.id)))
    return bool(getattr(result, "rowcount", 0))

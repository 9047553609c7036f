"""The outbox senders: send queued messages, most urgent first, and record what happened to each.

Every send goes claim → commit → send → record (see ``bot/services/outbox.py``):

* the claim (rows marked with this process's ``runtime.instance_id`` and the claim time) commits
  before the first message goes out, so no other sender (the other sweep, an SOS handler, another
  process on the same database) can take the same rows;
* each row is then sent and its result recorded in its own transaction, which applies only while
  the row is still claimed by this sender; a sent row keeps its Telegram message id for good;
* if this process dies, its heartbeat stops and its claimed rows are due again for the others within
  ``leases.HEARTBEAT_TTL`` (5 s). The one row that was between send and record can go out twice.

Rows are sent one at a time per sender, so a crash leaves at most one such row per sender.

:class:`OutboxSender` is what a running bot uses: a task that sends continuously, at Telegram's pace.
It has two lanes, each a sender in the sense above: alerts and urgent rows, and everything else (a
slow upload never holds an alert up). Both take their slots from the bot's one :class:`Pacer`
(about 30 messages a second, the most urgent waiter first, so an alert never waits behind a
broadcast) and keep one message a second per chat: each pick claims only rows whose chat is free,
one per chat. A 429 puts that chat (only) aside for ``retry_after``. A handler that queued an alert
wakes it (:func:`wake`); otherwise it looks for due rows every second. Alerts for one person queued
within a second go as one message when they are due together; each row is still recorded (and its
incident told) on its own. :func:`send_due` is the unpaced drain the tests and ``run_all`` use.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession
from telegram import Chat, InlineKeyboardButton, InlineKeyboardMarkup, InputFile, Message
from telegram.error import BadRequest, Forbidden, NetworkError, RetryAfter, TelegramError, TimedOut
from telegram.ext import ExtBot

from bot.ratelimit import NO_RETRY, Pacer
from bot.runtime import Runtime
from bot.services import incidents, outbox
from bot.services.outbox import Claimed
from bot.storage.db import Database
from bot.storage.media import MediaCorrupt, MediaMissing

log = logging.getLogger(__name__)

BATCH = 20
HOLD = 0.75  # seconds the alert lane waits at most for SOS alarms still being written (they go as one message)
BUDGET_SECONDS = 5.0  # a sweep run drains batch after batch for at most this long; the next run goes on


def _markup(payload: dict[str, Any]) -> InlineKeyboardMarkup | None:
    rows = payload.get("buttons")
    if not rows:
        return None
    return InlineKeyboardMarkup(
        [[InlineKeyboardButton(label, callback_data=data) for label, data in row] for row in rows]
    )


async def _locate(bot: ExtBot[Any], runtime: Runtime, row: Claimed) -> Message:
    """A live location: sent, moved or stopped (``payload["location"]``, see ``outbox.Location``)."""
    where = row.payload["location"]
    if row.method == "sendLocation":
        return await bot.send_location(chat_id=row.chat_id, latitude=where["latitude"], longitude=where["longitude"],
                                       live_period=where["live_period"], rate_limit_args=NO_RETRY)
    try:
        if row.method == "stopMessageLiveLocation":
            done = await bot.stop_message_live_location(chat_id=row.chat_id, message_id=where["message_id"],
                                                        rate_limit_args=NO_RETRY)
        else:
            done = await bot.edit_message_live_location(chat_id=row.chat_id, message_id=where["message_id"],
                                                        latitude=where["latitude"], longitude=where["longitude"],
                                                        rate_limit_args=NO_RETRY)
    except BadRequest as exc:
        if "not modified" not in exc.message.lower():
            raise
        done = True  # it already shows this point (sent once before the answer was lost)
    if isinstance(done, Message):
        return done
    return Message(where["message_id"], runtime.clock.now(), Chat(row.chat_id, Chat.PRIVATE))


async def _deliver(bot: ExtBot[Any], runtime: Runtime, row: Claimed) -> Message:
    payload = row.payload
    if "location" in payload:
        return await _locate(bot, runtime, row)
    common: dict[str, Any] = {"reply_markup": _markup(payload), "protect_content": payload.get("protect_content"),
                              "rate_limit_args": NO_RETRY}
    file = payload.get("file")
    if row.method == "sendMessage" or not file:
        return await bot.send_message(row.chat_id, payload["text"], **common)
    upload = InputFile(await runtime.media.read(file["path"]), filename=file["filename"])
    if row.method == "sendPhoto":
        return await bot.send_photo(row.chat_id, upload, caption=payload["text"][:1024], **common)
    return await bot.send_document(row.chat_id, upload, caption=payload["text"][:1024], **common)


async def _tell_owner(session: AsyncSession, row: Claimed, *, ok: bool, now: datetime, error: str | None,
                      attempts: int) -> None:
    """Tell what the row belongs to (an incident's alert) how its delivery went."""
    meta = row.payload.get("meta")
    if meta and "incident_id" in meta and "location" in row.payload:  # the owner's copy of a live location
        await incidents.location_delivered(session, row, ok=ok, now=now, error=error)
    elif meta and "incident_id" in meta:
        await incidents.record_delivery(session, meta, ok=ok, now=now, chat_id=row.chat_id, error=error,
                                        attempts=attempts)


async def _record(runtime: Runtime, row: Claimed, *, ok: bool, error: str | None = None,
                  retry_after: float | None = None, final: bool = False, message_id: int | None = None,
                  db: Database | None = None) -> bool:
    """Mark the row (sent, retry later, or failed for good) and tell what it belongs to, in one transaction.

    Applies only while this sender still holds the claim; returns False (and writes nothing) otherwise.
    """
    now = runtime.clock.now()
    async with (db or runtime.db).write() as session:
        attempts: int | None
        if ok:
            attempts = await outbox.mark_sent(session, row, telegram_message_id=message_id, now=now)
        else:
            updated = (await outbox.mark_failed(session, row, error=error or "", now=now) if final else
                       await outbox.mark_retry(session, row, error=error or "", now=now, retry_after=retry_after))
            attempts = None if updated is None else updated.attempts
        if attempts is None:
            log.warning("outbox #%s: the claim of %s at %s was taken over; result not recorded (%s)",
                        row.id, row.claimed_by, row.claimed_at.isoformat(), "sent" if ok else error)
            return False
        await _tell_owner(session, row, ok=ok, now=now, error=error, attempts=attempts)
    return True


async def _send_one(bot: ExtBot[Any], runtime: Runtime, row: Claimed) -> bool:
    """Send one claimed row and record the outcome; True when it was delivered and recorded."""
    try:
        message = await _deliver(bot, runtime, row)
    except RetryAfter as exc:
        value = exc.retry_after
        retry = value.total_seconds() if isinstance(value, timedelta) else float(value)
        log.warning("outbox #%s: flood control, retry after %ss", row.id, retry)
        await _record(runtime, row, ok=False, error=f"429 retry_after={retry}", retry_after=retry)
        return False
    except (Forbidden, BadRequest) as exc:
        log.error("outbox #%s to %s failed for good: %s", row.id, row.chat_id, exc)
        await _record(runtime, row, ok=False, error=f"{type(exc).__name__}: {exc}", final=True)
        return False
    except (MediaMissing, MediaCorrupt) as exc:  # the attachment is gone or damaged: retrying cannot help
        log.error("outbox #%s to %s failed for good, its file is refused: %s", row.id, row.chat_id, exc)
        await _record(runtime, row, ok=False, error=f"{type(exc).__name__}: {exc}", final=True)
        return False
    except (NetworkError, TimedOut, OSError) as exc:  # an object store out of reach too (MediaUnavailable)
        log.warning("outbox #%s: network problem, will retry: %s", row.id, exc)
        await _record(runtime, row, ok=False, error=f"{type(exc).__name__}: {exc}")
        return False
    except TelegramError as exc:  # e.g. a group that became a supergroup: recorded, not retried forever
        log.error("outbox #%s to %s failed: %s", row.id, row.chat_id, exc)
        await _record(runtime, row, ok=False, error=f"{type(exc).__name__}: {exc}", final=True)
        return False
    return await _record(runtime, row, ok=True, message_id=message.message_id)


async def _release(runtime: Runtime, rows: list[Claimed], db: Database | None = None) -> None:
    """Give back claims this sender will not use (it was stopped halfway); never raises."""
    try:
        async with (db or runtime.db).write() as session:
            await outbox.release(session, rows)
    except Exception as exc:  # the claims lapse with this process's heartbeat anyway
        log.warning("could not release %s outbox claims: %s", len(rows), exc)


async def _claim(runtime: Runtime, *, limit: int, max_priority: int | None,
                 min_priority: int | None, db: Database | None = None, **picking: Any) -> outbox.Claim:
    """Claim a batch and commit; rows to deactivated staff are recorded as skipped in the same transaction."""
    now = runtime.clock.now()
    async with (db or runtime.db).write() as session:
        taken = await outbox.claim(session, runtime.instance_id, now=now, limit=limit, max_priority=max_priority,
                                   min_priority=min_priority, quiet=runtime.quiet, **picking)
        for row, reason in taken.skipped:
            log.info("outbox #%s to %s not sent: %s", row.id, row.chat_id, reason)
            await _tell_owner(session, row, ok=False, now=now, error=reason, attempts=row.attempts)
    return taken


async def send_due(bot: ExtBot[Any], runtime: Runtime, *, limit: int = BATCH, max_priority: int | None = None,
                   min_priority: int | None = None, batches: int | None = None,
                   budget: float = BUDGET_SECONDS) -> int:
    """Send what is due now, batch after batch (``batches`` at most, for ``budget`` seconds at most).

    Returns how many were delivered. Priorities are ``min_priority <= priority <= max_priority``.
    """
    delivered = 0
    deadline = time.monotonic() + budget
    done = 0
    while True:
        taken = await _claim(runtime, limit=limit, max_priority=max_priority, min_priority=min_priority)
        # committed: from here on no other sender can take these rows while this process is alive
        pending = list(taken.rows)
        try:
            while pending:
                row = pending[0]
                if await _send_one(bot, runtime, row):
                    delivered += 1
                pending.pop(0)
        finally:
            if pending:  # cancelled (shutdown) or the database failed: the others may take them now
                await _release(runtime, pending)
        done += 1
        if (len(taken.rows) + len(taken.skipped) < limit or (batches is not None and done >= batches)
                or time.monotonic() >= deadline):
            return delivered


# ---- the continuous sender -------------------------------------------------------------------------


def _combined(rows: list[Claimed]) -> Claimed:
    """Alerts for one chat as one message: the texts one after another, every row's buttons."""
    first = rows[0]
    payload = dict(first.payload)
    payload["text"] = outbox.SEPARATOR.join(row.payload["text"] for row in rows)
    payload["buttons"] = [button_row for row in rows for button_row in row.payload.get("buttons") or []]
    return Claimed(id=first.id, chat_id=first.chat_id, kind=first.kind, priority=first.priority, method=first.method,
                   payload=payload, claimed_by=first.claimed_by, claimed_at=first.claimed_at, attempts=first.attempts)


async def _record_group(runtime: Runtime, rows: list[Claimed], *, ok: bool, error: str | None = None,
                        retry_after: float | None = None, final: bool = False,
                        message_id: int | None = None, db: Database | None = None) -> bool:
    """:func:`_record` for rows sent as one message: each row marked under its own claim, one transaction."""
    if len(rows) == 1:
        return await _record(runtime, rows[0], ok=ok, error=error, retry_after=retry_after, final=final,
                             message_id=message_id, db=db)
    now = runtime.clock.now()
    recorded = False
    async with (db or runtime.db).write() as session:
        for row in rows:
            attempts: int | None
            if ok:
                attempts = await outbox.mark_sent(session, row, telegram_message_id=message_id, now=now)
            else:
                updated = (await outbox.mark_failed(session, row, error=error or "", now=now) if final else
                           await outbox.mark_retry(session, row, error=error or "", now=now,
                                                   retry_after=retry_after))
                attempts = None if updated is None else updated.attempts
            if attempts is None:
                log.warning("outbox #%s: the claim of %s at %s was taken over; result not recorded",
                            row.id, row.claimed_by, row.claimed_at.isoformat())
                continue
            recorded = True
            await _tell_owner(session, row, ok=ok, now=now, error=error, attempts=attempts)
    return recorded


def _own_connections_help(db: Database) -> bool:
    """An SQLite file: a second engine on it sees the same rows (an in-memory database it would not)."""
    if not db.sqlite:
        return False
    name = make_url(db.url).database or ""
    return bool(name) and name != ":memory:" and not name.startswith("file:") and "mode=memory" not in db.url


_SENDERS: dict[str, OutboxSender] = {}


def running(runtime: Runtime) -> OutboxSender | None:
    """This process's continuous sender, if it is running."""
    sender = _SENDERS.get(runtime.instance_id)
    return sender if sender is not None and sender.running else None


def wake(runtime: Runtime) -> bool:
    """Tell the running sender that rows were queued; False if none runs here (then send them yourself)."""
    sender = running(runtime)
    if sender is None:
        return False
    sender.wake()
    return True


class OutboxSender:
    """Sends the outbox continuously at Telegram's pace: alerts first, one message a second per chat.

    Two lanes (alerts and urgent rows; everything else), each claiming ``batch`` rows at a time, one
    per free chat, and sending them one by one, each after taking a slot from ``pacer``. ``idle``:
    how often a lane with nothing to send looks again (rows queued by another process, retries that
    fell due); a handler that queued something calls :meth:`wake` instead of waiting for that.
    """

    LANES = (("alerts", None, int(outbox.Priority.URGENT)), ("outbox", int(outbox.Priority.URGENT) + 1, None))

    def __init__(self, bot: ExtBot[Any], runtime: Runtime, pacer: Pacer, *, batch: int = 15, idle: float = 1.0,
                 combine: int = 5, ahead: float = 0.5, hold: float = HOLD) -> None:
        self.bot, self.runtime, self.pacer = bot, runtime, pacer
        self.batch, self.idle, self.combine, self.ahead, self.hold = batch, idle, combine, ahead, hold
        self.delivered = 0
        self._tasks: list[asyncio.Task[None]] = []
        self._wake: dict[str, asyncio.Event] = {}
        self._held: set[int] = set()  # chats with a claimed row in one lane: the other lane leaves them alone
        self._stopping = False
        self._own_db: Database | None = None

    @property
    def db(self) -> Database:
        """The sender's own connections to an SQLite file (see :meth:`start`), else the bot's."""
        return self._own_db or self.runtime.db

    @property
    def running(self) -> bool:
        return any(not task.done() for task in self._tasks)

    def start(self) -> None:
        if self.running:
            return
        self._stopping = False
        if self._own_db is None and _own_connections_help(self.runtime.db):
            # Its own pool: a crowd of handlers waiting for SQLite's write lock holds every connection of
            # the bot's pool, and an alert must not wait in that queue for a connection to claim or record.
            self._own_db = Database(self.runtime.db.url)
        self._wake = {name: asyncio.Event() for name, _, _ in self.LANES}
        self._tasks = [asyncio.create_task(self._lane(name, low, high), name=f"outbox-{name}")
                       for name, low, high in self.LANES]
        _SENDERS[self.runtime.instance_id] = self

    def wake(self) -> None:
        for event in self._wake.values():
            event.set()

    async def stop(self, grace: float = 2.0) -> None:
        """Stop both lanes after the message in flight; claims not yet sent are given back."""
        if _SENDERS.get(self.runtime.instance_id) is self:
            del _SENDERS[self.runtime.instance_id]
        self._stopping = True
        self.wake()
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=grace)
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks = []
        if self._own_db is not None:
            own, self._own_db = self._own_db, None
            with contextlib.suppress(Exception):
                await own.dispose()

    async def _lane(self, name: str, min_priority: int | None, max_priority: int | None) -> None:
        wake = self._wake[name]
        while not self._stopping:
            try:
                wake.clear()
                if not await self._round(min_priority, max_priority):
                    await self._rest(wake)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("outbox %s lane failed; it goes on in a second", name)
                await asyncio.sleep(1.0)

    async def _rest(self, wake: asyncio.Event) -> None:
        """Nothing to send now: wait for a wake-up, a chat's spacing to end, or ``idle`` seconds."""
        now = time.monotonic()
        soonest = min(self.pacer.busy_chats(now).values(), default=now + self.idle)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(wake.wait(), timeout=max(0.01, min(self.idle, soonest - now)))

    async def _round(self, min_priority: int | None, max_priority: int | None) -> bool:
        """Claim one batch (one row or alert group per chat that is free now or within ``ahead`` seconds)
        and send each the moment its chat is free; False if nothing was due."""
        now = time.monotonic()
        # alerts are claimed only for a free chat, so those queued meanwhile go together in one message
        ahead = 0.0 if max_priority is not None and max_priority <= outbox.Priority.URGENT else self.ahead
        busy = {chat for chat, free in self.pacer.busy_chats(now).items() if free > now + ahead} | self._held
        async with self.db.read() as session:
            if not await outbox.anything_due(session, now=self.runtime.clock.now(), max_priority=max_priority,
                                             min_priority=min_priority, exclude_chats=busy):
                return False
        if ahead == 0.0 and incidents.alarms_being_raised():
            # several SOS at once: wait (a little) for the alarms still being written, so a supervisor with
            # two of them gets one message now rather than one now and the next a second later (the queue is
            # first come first served: this waits for the alarms that were already on their way, no others)
            self.pacer.reserve(self.batch)  # meanwhile the replies to those raising them leave the budget to these
            try:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self.hold), incidents.raising():
                        pass
            finally:
                self.pacer.reserve(-self.batch)
        taken = await _claim(self.runtime, limit=self.batch, max_priority=max_priority, min_priority=min_priority,
                             db=self.db,
                             exclude_chats=busy, one_per_chat=True, combine=self.combine)
        if not taken.groups:
            return bool(taken.skipped)
        # committed: from here on no other sender can take these rows while this process is alive
        now = time.monotonic()
        pending = sorted(taken.groups, key=lambda group: max(self.pacer.chat_free_at(group[0].chat_id) - now, 0.0))
        chats = {group[0].chat_id for group in pending}
        self._held |= chats
        # alerts waiting for their chat's spacing keep their slots in the budget: a crowd of replies or a
        # broadcast must not have used up the second they fall due in
        reserved = len(pending) if max_priority is not None and max_priority <= outbox.Priority.URGENT else 0
        self.pacer.reserve(reserved)
        try:
            while pending and not self._stopping:
                group = pending[0]
                wait = self.pacer.chat_free_at(group[0].chat_id) - time.monotonic()
                if wait > 0:
                    await asyncio.sleep(wait)
                await self.pacer.chat_turn(group[0].chat_id)  # another instance may have just sent there
                if reserved:
                    self.pacer.reserve(-1)
                    reserved -= 1
                await self.pacer.acquire(group[0].priority)
                if await self._send(group):
                    self.delivered += len(group)
                pending.pop(0)
        finally:
            self.pacer.reserve(-reserved)
            self._held -= chats
            if pending:  # cancelled (shutdown) or the database failed: the others may take them now
                await _release(self.runtime, [row for group in pending for row in group], self.db)
        return True

    async def _send(self, rows: list[Claimed]) -> bool:
        """Send one claimed row (or alerts combined into one message), record it, keep the chat's spacing."""
        chat = rows[0].chat_id
        message = _combined(rows) if len(rows) > 1 else rows[0]
        try:
            sent = await _deliver(self.bot, self.runtime, message)
        except RetryAfter as exc:
            value = exc.retry_after
            retry = value.total_seconds() if isinstance(value, timedelta) else float(value)
            self.pacer.chat_wait(chat, retry)  # only this chat waits; the others go on
            log.warning("outbox #%s to %s: flood control, retry after %ss", rows[0].id, chat, retry)
            await _record_group(self.runtime, rows, ok=False, error=f"429 retry_after={retry}", retry_after=retry,
                                db=self.db)
            return False
        except (Forbidden, BadRequest) as exc:
            self.pacer.chat_sent(chat)
            log.error("outbox #%s to %s failed for good: %s", rows[0].id, chat, exc)
            await _record_group(self.runtime, rows, ok=False, error=f"{type(exc).__name__}: {exc}", final=True,
                                db=self.db)
            return False
        except (NetworkError, TimedOut, OSError) as exc:
            self.pacer.chat_sent(chat)
            log.warning("outbox #%s: network problem, will retry: %s", rows[0].id, exc)
            await _record_group(self.runtime, rows, ok=False, error=f"{type(exc).__name__}: {exc}", db=self.db)
            return False
        except TelegramError as exc:
            self.pacer.chat_sent(chat)
            log.error("outbox #%s to %s failed: %s", rows[0].id, chat, exc)
            await _record_group(self.runtime, rows, ok=False, error=f"{type(exc).__name__}: {exc}", final=True,
                                db=self.db)
            return False
        self.pacer.chat_sent(chat)  # answered: the chat's next message no sooner than a second from now
        if len(rows) > 1:
            log.info("outbox: %s alerts to %s sent as one message", len(rows), chat)
        return await _record_group(self.runtime, rows, ok=True, message_id=sent.message_id, db=self.db)

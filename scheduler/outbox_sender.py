"""The outbox senders: send queued messages, most urgent first, and record what happened to each.

Every send goes claim → commit → send → record (see ``bot/services/outbox.py``):

* the claim (rows marked with this process's ``runtime.instance_id`` and the claim time) commits
  before the first message goes out, so no other sender (the other sweep, an SOS handler, another
  process on the same database) can take the same rows;
* each row is then sent and its result recorded in its own transaction, which applies only while
  the row is still claimed by this sender; a sent row keeps its Telegram message id for good;
* if this process dies, its heartbeat stops and its claimed rows are due again for the others within
  ``leases.HEARTBEAT_TTL`` (5 s). The one row that was between send and record can go out twice.

Rows are sent one at a time per sender, so a crash leaves at most one such row per sender. The alert
sweep sends alerts and urgent rows, the outbox sweep the rest (a slow upload never holds an alert up).
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession
from telegram import InlineKeyboardButton, InlineKeyboardMarkup, InputFile, Message
from telegram.error import BadRequest, Forbidden, NetworkError, RetryAfter, TelegramError, TimedOut
from telegram.ext import ExtBot

from bot.ratelimit import NO_RETRY
from bot.runtime import Runtime
from bot.services import incidents, outbox
from bot.services.outbox import Claimed

log = logging.getLogger(__name__)

BATCH = 20
BUDGET_SECONDS = 5.0  # a sweep run drains batch after batch for at most this long; the next run goes on


def _markup(payload: dict[str, Any]) -> InlineKeyboardMarkup | None:
    rows = payload.get("buttons")
    if not rows:
        return None
    return InlineKeyboardMarkup(
        [[InlineKeyboardButton(label, callback_data=data) for label, data in row] for row in rows]
    )


async def _deliver(bot: ExtBot[Any], runtime: Runtime, row: Claimed) -> Message:
    payload = row.payload
    common: dict[str, Any] = {"reply_markup": _markup(payload), "protect_content": payload.get("protect_content"),
                              "rate_limit_args": NO_RETRY}
    file = payload.get("file")
    if row.method == "sendMessage" or not file:
        return await bot.send_message(row.chat_id, payload["text"], **common)
    path = runtime.settings.data_dir / file["path"]
    upload = InputFile(await asyncio.to_thread(path.read_bytes), filename=file["filename"])
    if row.method == "sendPhoto":
        return await bot.send_photo(row.chat_id, upload, caption=payload["text"][:1024], **common)
    return await bot.send_document(row.chat_id, upload, caption=payload["text"][:1024], **common)


async def _tell_owner(session: AsyncSession, row: Claimed, *, ok: bool, now: datetime, error: str | None,
                      attempts: int) -> None:
    """Tell what the row belongs to (an incident's alert) how its delivery went."""
    meta = row.payload.get("meta")
    if meta and "incident_id" in meta:
        await incidents.record_delivery(session, meta, ok=ok, now=now, chat_id=row.chat_id, error=error,
                                        attempts=attempts)


async def _record(runtime: Runtime, row: Claimed, *, ok: bool, error: str | None = None,
                  retry_after: float | None = None, final: bool = False, message_id: int | None = None) -> bool:
    """Mark the row (sent, retry later, or failed for good) and tell what it belongs to, in one transaction.

    Applies only while this sender still holds the claim; returns False (and writes nothing) otherwise.
    """
    now = runtime.clock.now()
    async with runtime.db.write() as session:
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
    except (NetworkError, TimedOut, OSError) as exc:
        log.warning("outbox #%s: network problem, will retry: %s", row.id, exc)
        await _record(runtime, row, ok=False, error=f"{type(exc).__name__}: {exc}")
        return False
    except TelegramError as exc:  # e.g. a group that became a supergroup: recorded, not retried forever
        log.error("outbox #%s to %s failed: %s", row.id, row.chat_id, exc)
        await _record(runtime, row, ok=False, error=f"{type(exc).__name__}: {exc}", final=True)
        return False
    return await _record(runtime, row, ok=True, message_id=message.message_id)


async def _release(runtime: Runtime, rows: list[Claimed]) -> None:
    """Give back claims this sender will not use (it was stopped halfway); never raises."""
    try:
        async with runtime.db.write() as session:
            await outbox.release(session, rows)
    except Exception as exc:  # the claims lapse with this process's heartbeat anyway
        log.warning("could not release %s outbox claims: %s", len(rows), exc)


async def _claim(runtime: Runtime, *, limit: int, max_priority: int | None,
                 min_priority: int | None) -> outbox.Claim:
    """Claim a batch and commit; rows to deactivated staff are recorded as skipped in the same transaction."""
    now = runtime.clock.now()
    async with runtime.db.write() as session:
        taken = await outbox.claim(session, runtime.instance_id, now=now, limit=limit, max_priority=max_priority,
                                   min_priority=min_priority, quiet=runtime.quiet)
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

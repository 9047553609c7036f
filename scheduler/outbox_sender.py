"""The outbox sweep: sends queued messages, most urgent first, and records what happened to each."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from typing import Any

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, InputFile, Message
from telegram.error import BadRequest, Forbidden, NetworkError, RetryAfter, TelegramError, TimedOut
from telegram.ext import ExtBot

from bot.ratelimit import NO_RETRY
from bot.runtime import Runtime
from bot.services import incidents, outbox
from bot.storage.models import OutboxMessage

log = logging.getLogger(__name__)


def _markup(payload: dict[str, Any]) -> InlineKeyboardMarkup | None:
    rows = payload.get("buttons")
    if not rows:
        return None
    return InlineKeyboardMarkup(
        [[InlineKeyboardButton(label, callback_data=data) for label, data in row] for row in rows]
    )


async def _deliver(bot: ExtBot[Any], runtime: Runtime, row: OutboxMessage) -> Message:
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


async def _record(runtime: Runtime, row: OutboxMessage, *, ok: bool, error: str | None = None,
                  retry_after: float | None = None, final: bool = False, message_id: int | None = None) -> None:
    """Mark the row (sent, retry later, or failed for good) and tell what it belongs to, in one transaction."""
    now = runtime.clock.now()
    async with runtime.db.write() as session:
        if ok:
            updated = await outbox.mark_sent(session, row.id, telegram_message_id=message_id, now=now)
        elif final:
            updated = await outbox.mark_failed(session, row.id, error=error or "", now=now)
        else:
            updated = await outbox.mark_retry(session, row.id, error=error or "", now=now, retry_after=retry_after)
        meta = row.payload.get("meta")
        if meta and "incident_id" in meta and updated is not None:
            await incidents.record_delivery(session, meta, ok=ok, now=now, chat_id=row.chat_id, error=error,
                                            attempts=updated.attempts)


async def send_due(bot: ExtBot[Any], runtime: Runtime, *, limit: int = 20, max_priority: int | None = None) -> int:
    """Send what is due now; returns how many were delivered."""
    async with runtime.db.write() as session:
        rows = await outbox.claim_due(session, now=runtime.clock.now(), limit=limit, max_priority=max_priority,
                                      quiet=runtime.quiet)
        session.expunge_all()
    delivered = 0
    for row in rows:
        try:
            message = await _deliver(bot, runtime, row)
        except RetryAfter as exc:
            value = exc.retry_after
            retry = value.total_seconds() if isinstance(value, timedelta) else float(value)
            log.warning("outbox #%s: flood control, retry after %ss", row.id, retry)
            await _record(runtime, row, ok=False, error=f"429 retry_after={retry}", retry_after=retry)
            continue
        except (Forbidden, BadRequest) as exc:
            log.error("outbox #%s to %s failed for good: %s", row.id, row.chat_id, exc)
            await _record(runtime, row, ok=False, error=f"{type(exc).__name__}: {exc}", final=True)
            continue
        except (NetworkError, TimedOut, OSError) as exc:
            log.warning("outbox #%s: network problem, will retry: %s", row.id, exc)
            await _record(runtime, row, ok=False, error=f"{type(exc).__name__}: {exc}")
            continue
        except TelegramError as exc:  # e.g. a group that became a supergroup: recorded, not retried forever
            log.error("outbox #%s to %s failed: %s", row.id, row.chat_id, exc)
            await _record(runtime, row, ok=False, error=f"{type(exc).__name__}: {exc}", final=True)
            continue
        await _record(runtime, row, ok=True, message_id=message.message_id)
        delivered += 1
    return delivered

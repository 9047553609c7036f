"""The outbox sweep: sends queued messages, most urgent first, and records what happened to each."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Message
from telegram.error import BadRequest, Forbidden, NetworkError, RetryAfter, TimedOut
from telegram.ext import ExtBot

from bot.ratelimit import NO_RETRY
from bot.runtime import Runtime
from bot.services import outbox
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
    with path.open("rb") as handle:
        if row.method == "sendPhoto":
            return await bot.send_photo(row.chat_id, handle, caption=payload["text"][:1024], **common)
        return await bot.send_document(row.chat_id, handle, filename=file["filename"],
                                       caption=payload["text"][:1024], **common)


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
            async with runtime.db.write() as session:
                await outbox.mark_retry(session, row.id, error=f"429 retry_after={retry}", now=runtime.clock.now(),
                                        retry_after=retry)
            continue
        except (Forbidden, BadRequest) as exc:
            log.error("outbox #%s to %s failed for good: %s", row.id, row.chat_id, exc)
            async with runtime.db.write() as session:
                await outbox.mark_failed(session, row.id, error=f"{type(exc).__name__}: {exc}",
                                         now=runtime.clock.now())
            continue
        except (NetworkError, TimedOut, OSError) as exc:
            log.warning("outbox #%s: network problem, will retry: %s", row.id, exc)
            async with runtime.db.write() as session:
                await outbox.mark_retry(session, row.id, error=f"{type(exc).__name__}: {exc}", now=runtime.clock.now())
            continue
        async with runtime.db.write() as session:
            await outbox.mark_sent(session, row.id, telegram_message_id=message.message_id, now=runtime.clock.now())
        delivered += 1
    return delivered

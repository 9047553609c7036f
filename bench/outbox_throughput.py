"""Outbox throughput against Telegram's flood limits: how fast, and how many 429s.

    python bench/outbox_throughput.py [--full]

The Bot API stand-in enforces Telegram's limits on real time (30 messages in any second, one a
second per private chat; over either: 429 with retry_after). Small: 300 messages to 30 chats; full:
2,000 to 200 chats, queued interleaved (chat 1, 2, ..., 1, 2, ...).

* fieldbot: the rows in the outbox, the real application's continuous sender drains them.
* anchor: a bare PTB bot with ``AIORateLimiter()`` as PTB ships it sends the same messages through
  the same stand-in (all at once, as ``asyncio.gather`` of ``send_message``); its 429s are counted
  and those messages are lost (PTB's default ``max_retries=0``).

Figure: delivered messages per second; target >= 28.5 msg/s with 0 x 429.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import func, select
from telegram.error import RetryAfter
from telegram.ext import AIORateLimiter, ApplicationBuilder

from bot.clock import ManualClock
from bot.sandbox.botapi import FakeBotApi, FakeRequest
from bot.sandbox.harness import TOKEN, BotHarness, sandbox_settings
from bot.services import outbox
from bot.storage.models import OutboxMessage
from scheduler import jobs
from scheduler.outbox_sender import OutboxSender

TARGET = 28.5


def messages(count: int, chats: int) -> list[tuple[int, str]]:
    return [(50_000 + i % chats, f"notice {i}") for i in range(count)]


async def fieldbot(items: list[tuple[int, str]]) -> tuple[float, int, int]:
    with tempfile.TemporaryDirectory() as tmp:
        harness = BotHarness(sandbox_settings(Path(tmp)), ManualClock(datetime(2026, 11, 2, 1, tzinfo=UTC)))
        await harness.start()
        try:
            async with harness.db.write() as session:
                for chat, text in items:
                    await outbox.enqueue(session, chat_id=chat, text=text, kind="bench", now=harness.clock.now(),
                                         priority=outbox.Priority.BULK, flush=False)
            flood = harness.api.flood_control(rate=30, chat_rate=1.0)
            assert flood is not None
            sender = harness.app.bot_data[jobs.SENDER_KEY]
            assert isinstance(sender, OutboxSender)
            started = time.monotonic()
            sender.start()
            while True:
                async with harness.db.read() as session:
                    left = await session.scalar(select(func.count()).select_from(OutboxMessage)
                                                .where(OutboxMessage.sent_at.is_(None)))
                if not left:
                    break
                await asyncio.sleep(0.05)
            elapsed = time.monotonic() - started
            await sender.stop()
            return len(items) / elapsed, flood.refused, len(harness.api.sent())
        finally:
            await harness.close()


async def bare_ptb(items: list[tuple[int, str]]) -> tuple[float, int, int]:
    api = FakeBotApi()
    flood = api.flood_control(rate=30, chat_rate=1.0)
    assert flood is not None
    app = ApplicationBuilder().token(TOKEN).request(FakeRequest(api)).rate_limiter(AIORateLimiter()).build()
    await app.initialize()
    try:
        started = time.monotonic()
        results = await asyncio.gather(*(app.bot.send_message(chat, text) for chat, text in items),
                                       return_exceptions=True)
        elapsed = time.monotonic() - started
    finally:
        await app.shutdown()
    delivered = sum(1 for r in results if not isinstance(r, BaseException))
    limited = sum(1 for r in results if isinstance(r, RetryAfter))
    return delivered / elapsed, limited, delivered


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--full", action="store_true", help="2,000 messages to 200 chats (default: 300 to 30)")
    args = parser.parse_args()
    count, chats = (2000, 200) if args.full else (300, 30)
    items = messages(count, chats)
    anchor, anchor_429, anchor_delivered = await bare_ptb(items)
    print(f"bare PTB + AIORateLimiter: {anchor_delivered}/{count} delivered, {anchor:.1f} msg/s, {anchor_429} x 429")
    figure, refused, delivered = await fieldbot(items)
    print(f"fieldbot outbox sender:    {delivered}/{count} delivered, {figure:.1f} msg/s, {refused} x 429")
    met = figure >= TARGET and refused == 0 and delivered == count
    print(json.dumps({"bench": "outbox_throughput", "figure": round(figure, 2), "unit": "msg/s",
                      "anchor": round(anchor, 2),
                      "anchor_what": f"bare PTB AIORateLimiter through the same stand-in ({anchor_429} x 429, "
                                     f"{anchor_delivered}/{count} delivered); fieldbot had {refused} x 429",
                      "ratio": round(figure / anchor, 3) if anchor else None,
                      "target": ">= 28.5 msg/s, 0 x 429", "met": met, "size": "full" if args.full else "small"}))


if __name__ == "__main__":
    asyncio.run(main())

"""Handler latency on a big database, through the real Application, against a bare PTB Application.

    python bench/handler_latency.py [--full] [--rounds N]

Small: 50,000 cases; --full: 1,000,000 cases / 3,000,000 visits (bench/_bigdb.py; this bench writes,
so it works on a private copy of the cached file). One field collector walks ``--rounds`` of their
cases, one after the other: the visit list (/visits), the case card, check-in (the button, then the
location), the result (a disposition button) and a photo, each update fed to the real Application
(``BotHarness``: every handler, the access gate, the throttle, the rate limiter, the Bot API
stand-in). Each update is timed from ``process_update`` to its return. The anchor: a bare
python-telegram-bot Application with one handler that replies, through the same stand-in, in the
same run. Target: p99 <= 20 ms for each handler. Not a test.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import select
from telegram import Update
from telegram.ext import Application, ContextTypes, MessageHandler, filters

from bench._bigdb import NOW, TELEGRAM_BASE, big_database, open_collector, scratch_copy
from bot.buttons import CaseCard, CheckIn, VisitListPage
from bot.clock import ManualClock
from bot.sandbox.botapi import FakeBotApi, FakeRequest
from bot.sandbox.harness import TOKEN, BotHarness, sandbox_settings
from bot.sandbox.updates import FakeUser, UpdateFactory
from bot.storage.models import Case, Visit

TARGET_MS = 20.0
PHOTO = b"\xff\xd8\xff\xe0 front door " + bytes(range(200))
KINDS = ("visit list", "case card", "check-in", "result", "photo")


def pct(values: list[float], p: int) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[p - 1] if len(values) > 1 else values[0]


async def bare_ptb(runs: int) -> list[float]:
    """The anchor: python-telegram-bot with one trivial handler replying through the same stand-in."""
    api = FakeBotApi(clock=lambda: NOW.timestamp())
    updates = UpdateFactory(api)
    app = Application.builder().token(TOKEN).request(FakeRequest(api)).updater(None).build()

    async def reply(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.effective_message is not None
        await update.effective_message.reply_text("ok")

    app.add_handler(MessageHandler(filters.TEXT, reply))
    await app.initialize()
    user = FakeUser(1, "Anchor")
    times = []
    for _ in range(runs):
        update = Update.de_json(updates.text(user, "hello"), app.bot)
        started = time.perf_counter()
        await app.process_update(update)
        times.append((time.perf_counter() - started) * 1000)
    await app.shutdown()
    return times


async def walk(path: Path, cases: int, rounds: int) -> dict[str, list[float]]:
    clock = ManualClock(NOW)
    folder = path.parent
    harness = BotHarness(sandbox_settings(folder, database_url=f"sqlite+aiosqlite:///{path}"), clock)
    await harness.start()
    collector_id = open_collector(cases)
    user = FakeUser(TELEGRAM_BASE + collector_id, "Collector", language_code="zh-hans")
    times: dict[str, list[float]] = {kind: [] for kind in KINDS}

    async def timed(kind: str | None, data: dict[str, Any]) -> None:
        update = Update.de_json(data, harness.app.bot)
        started = time.perf_counter()
        await harness.app.process_update(update)
        if kind is not None:
            times[kind].append((time.perf_counter() - started) * 1000)
        clock.advance(seconds=20)

    def offered_cases() -> list[int]:
        """The case cards on the bot's latest message with buttons (the list page just shown)."""
        for message in reversed(harness.api.chat_messages(user.id)):
            rows = message.get("reply_markup", {}).get("inline_keyboard", [])
            if rows:
                return [int(b["callback_data"].rsplit(":", 1)[1]) for row in rows for b in row
                        if b.get("callback_data", "").startswith("v:card:")]
        return []

    visited: set[int] = set()
    for _ in range(rounds):
        await timed("visit list", harness.updates.command(user, "/visits"))
        async with harness.db.read() as session:  # a fresh visit each round: not one with a report open
            drafts = set(await session.scalars(select(Visit.case_id).where(
                Visit.collector_id == collector_id, Visit.status.in_(("draft", "returned")))))
        fresh = [case_id for case_id in offered_cases() if case_id not in visited | drafts]
        offset = 0
        while not fresh:  # the page holds only cases already walked: the next page
            offset += 8
            await timed(None, harness.updates.button(user, VisitListPage(offset=offset).pack()))
            fresh = [case_id for case_id in offered_cases() if case_id not in visited | drafts]
        case_id = fresh[0]
        visited.add(case_id)
        async with harness.db.read() as session:
            case = await session.get(Case, case_id)
            assert case is not None
        await timed("case card", harness.updates.button(user, CaseCard(case_id=case_id).pack()))
        await timed(None, harness.updates.button(user, CheckIn(case_id=case_id).pack()))  # the draft
        await timed("check-in", harness.updates.location(user, (case.lat or 31.2) + 0.0001, case.lon or 121.4))
        await timed(None, harness.updates.button(user, "v:dur:60"))
        await timed("result", harness.updates.button(user, "v:code:NOBODY"))
        await timed("photo", harness.photo_update(user, PHOTO + case.case_no.encode()))
    await harness.close()
    return times


async def run(source: Path, cases: int, rounds: int) -> tuple[dict[str, list[float]], list[float]]:
    with tempfile.TemporaryDirectory() as folder:
        path = scratch_copy(source, Path(folder))
        times = await walk(path, cases, rounds)
    anchor = await bare_ptb(max(100, rounds * 5))
    return times, anchor


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="1M cases / 3M visits (default: 50k cases)")
    parser.add_argument("--rounds", type=int, default=40)
    args = parser.parse_args()
    cases = 1_000_000 if args.full else 50_000
    times, anchor = asyncio.run(run(big_database(cases), cases, args.rounds))
    anchor_p99 = pct(anchor, 99)
    print(f"{cases:,} cases, {args.rounds} rounds of list, card, check-in, result, photo through the real Application")
    rows = []
    for kind in KINDS:
        values = times[kind]
        p99 = pct(values, 99)
        rows.append((kind, p99))
        print(f"{kind:>10}: p50 {statistics.median(values):6.2f} ms, p95 {pct(values, 95):6.2f} ms, "
              f"p99 {p99:6.2f} ms (n={len(values)})")
    print(f"bare PTB reply through the same stand-in: p50 {statistics.median(anchor):.2f} ms, p99 {anchor_p99:.2f} ms")
    worst_kind, worst = max(rows, key=lambda row: row[1])
    print(f"worst handler p99: {worst_kind} {worst:.2f} ms; target p99 <= {TARGET_MS:g} ms")
    size = "full" if args.full else "small"
    for kind, p99 in rows:
        print(json.dumps({"bench": f"handler_latency.{kind.replace(' ', '_').replace('-', '_')}",
                          "figure": round(p99, 3), "unit": "ms p99", "anchor": round(anchor_p99, 3),
                          "anchor_what": "bare PTB Application replying through the same stand-in, p99",
                          "ratio": round(p99 / anchor_p99, 2), "target": f"p99 <= {TARGET_MS:g} ms",
                          "met": p99 <= TARGET_MS, "size": size}))
    print(json.dumps({"bench": "handler_latency", "figure": round(worst, 3), "unit": "ms p99 (worst handler)",
                      "anchor": round(anchor_p99, 3),
                      "anchor_what": "bare PTB Application replying through the same stand-in, p99",
                      "ratio": round(worst / anchor_p99, 2), "target": f"p99 <= {TARGET_MS:g} ms",
                      "met": worst <= TARGET_MS, "size": size, "worst": worst_kind}))


if __name__ == "__main__":
    main()

"""Updates per second through the real Application for the visit-report steps.

    python bench/visit_steps.py [--full] [--collectors N]

Many collectors (20; 100 with ``--full``) each walk a whole visit at the same time through
``BotHarness`` (the real Application, the Bot API stand-in ``FakeBotApi`` behind ``FakeRequest``, a
migrated SQLite file): check in, location, planned duration, result code (promise to pay), amount,
date, a voice note (the file), evidence done, file the report. The anchor, measured in the same run:
a bare python-telegram-bot Application whose one handler replies to each update with one
``send_message`` through the same ``FakeRequest`` stand-in, fed the same number of updates the same
way. Target: >= 0.2x the anchor. Prints the figures and, last, one JSON line; it is not a test.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from telegram import Update
from telegram.ext import Application, ContextTypes, TypeHandler

from bot.clock import ManualClock
from bot.sandbox.botapi import FakeBotApi, FakeRequest
from bot.sandbox.harness import TOKEN, BotHarness, sandbox_settings
from bot.sandbox.updates import FakeUser, UpdateFactory
from bot.services import assignment
from bot.storage.models import Case, Role

TARGET = 0.2
VOICE = b"OggS voice of the visit " + bytes(300)

Make = Callable[[BotHarness, FakeUser, int], dict[str, Any]]
STEPS: list[tuple[str, Make]] = [
    ("check in", lambda h, u, case: h.updates.button(u, f"v:in:{case}")),
    ("location", lambda h, u, case: h.updates.location(u, 31.2306, 121.4739)),
    ("duration", lambda h, u, case: h.updates.button(u, "v:dur:60")),
    ("code", lambda h, u, case: h.updates.button(u, "v:code:PTP")),
    ("amount", lambda h, u, case: h.updates.text(u, "1,200元")),
    ("date", lambda h, u, case: h.updates.text(u, "12-3")),
    ("voice", lambda h, u, case: h.voice_update(u, VOICE + str(u.id).encode())),
    ("done", lambda h, u, case: h.updates.button(u, "v:done")),
    ("file", lambda h, u, case: h.updates.button(u, "v:file")),
]


async def office(harness: BotHarness, count: int) -> list[tuple[FakeUser, int]]:
    boss = FakeUser(9000, "Boss", language_code="en")
    boss_id = await harness.onboard(boss, "Boss", Role.SUPERVISOR, team="A")
    people = []
    for i in range(count):
        user = FakeUser(9100 + i, f"C{i}", language_code="en")
        staff_id = await harness.onboard(user, f"Collector {i}", Role.COLLECTOR, team="A", supervisor_id=boss_id)
        now = harness.clock.now()
        async with harness.db.write() as session:
            case = Case(bank="招商银行", case_no=f"VS-{i}", debtor_name="李四", address="上海市浦东新区世纪大道100号",
                        amount_due_fen=1234560, status="new", created_at=now, updated_at=now,
                        lat=31.2304, lon=121.4737)
            session.add(case)
            await session.flush()
            await assignment.assign_cases(session, [case.id], staff_id, actor=None, reason="bench", now=now,
                                          calendar=harness.runtime.calendar)
            people.append((user, case.id))
    await harness.deliver_outbox()
    harness.api.clear()
    return people


async def fieldbot_rate(folder: Path, count: int) -> tuple[float, int, dict[str, float]]:
    clock = ManualClock(datetime(2026, 11, 2, 9, 0, tzinfo=ZoneInfo("Asia/Shanghai")))
    harness = BotHarness(sandbox_settings(folder), clock)
    await harness.start()
    try:
        people = await office(harness, count)
        per_step: dict[str, float] = {}

        async def walk(user: FakeUser, case_id: int) -> None:
            for name, make in STEPS:
                started = time.perf_counter()
                await harness.send(make(harness, user, case_id))
                per_step[name] = per_step.get(name, 0.0) + time.perf_counter() - started

        started = time.perf_counter()
        await asyncio.gather(*(walk(user, case_id) for user, case_id in people))
        elapsed = time.perf_counter() - started
        filed = sum(1 for c in harness.api.calls if "filed" in str(c.params.get("text", "")).lower())
    finally:
        await harness.close()
    updates = count * len(STEPS)
    return updates / elapsed, filed, {k: v / count * 1000 for k, v in per_step.items()}


async def anchor_rate(count: int) -> float:
    """A bare PTB Application: one handler, one send_message per update, through the same FakeRequest."""
    api = FakeBotApi(clock=time.time)
    app = Application.builder().token(TOKEN).request(FakeRequest(api)).get_updates_request(FakeRequest(api)).build()

    async def reply(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.effective_chat is not None
        await context.bot.send_message(update.effective_chat.id, "ok")

    app.add_handler(TypeHandler(Update, reply))
    await app.initialize()
    factory = UpdateFactory(api)
    users = [FakeUser(9100 + i, f"C{i}", language_code="en") for i in range(count)]

    async def walk(user: FakeUser) -> None:
        for i in range(len(STEPS)):
            update = factory.text(user, f"step {i}")
            await app.process_update(Update.de_json(update, app.bot))

    started = time.perf_counter()
    await asyncio.gather(*(walk(u) for u in users))
    elapsed = time.perf_counter() - started
    await app.shutdown()
    return count * len(STEPS) / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--full", action="store_true", help="100 collectors (default 20)")
    parser.add_argument("--collectors", type=int, default=None)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    count = args.collectors or (100 if args.full else 20)
    with tempfile.TemporaryDirectory(prefix="fieldbot-visits-") as tmp:
        rate, filed, per_step = asyncio.run(fieldbot_rate(Path(tmp), count))
    anchor = asyncio.run(anchor_rate(count))
    ratio = rate / anchor
    print(f"{count} collectors x {len(STEPS)} steps = {count * len(STEPS)} updates ({filed} filing replies)")
    print("mean latency per step (ms, under concurrency): "
          + ", ".join(f"{k} {v:.0f}" for k, v in per_step.items()))
    print(f"fieldbot: {rate:,.1f} updates/s; anchor (bare PTB reply through the same FakeRequest): "
          f"{anchor:,.1f} updates/s; ratio {ratio:.3f}x (target >= {TARGET}x)")
    print(json.dumps({"bench": "visit_steps", "figure": round(rate, 1), "unit": "updates/s",
                      "anchor": round(anchor, 1), "anchor_what": "bare PTB Application replying with one "
                      "send_message per update through the same FakeRequest", "ratio": round(ratio, 4),
                      "target": f">= {TARGET}x", "met": ratio >= TARGET, "size": "full" if args.full else "small"}))


if __name__ == "__main__":
    main()

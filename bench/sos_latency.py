"""SOS to the alert at the collector's supervisor, with the Bot API stand-in enforcing Telegram's limits.

    python bench/sos_latency.py [--full]

The real application (handlers, outbox, continuous sender) against the stand-in with flood control
on (30 messages in any second, one a second per private chat; real time). Latency is from handing
the /sos update to the application to the stand-in accepting the sendMessage that carries that
collector's alert to their supervisor.

* during a broadcast: one SOS while a broadcast (small 300, full 2,000 messages) is being sent;
  target <= 1 s.
* at once: SOS from every collector at the same moment (small 10 collectors of 5 supervisors, full
  50 of 25), p99; target <= 2 s.
* anchor: a bare PTB bot's ``send_message`` latency (p99 of 20 sends to 20 chats) through the same
  stand-in.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import delete
from telegram.ext import AIORateLimiter, ApplicationBuilder

from bot.clock import ManualClock
from bot.sandbox.botapi import ApiReply, FakeBotApi, FakeRequest
from bot.sandbox.harness import TOKEN, BotHarness, sandbox_settings
from bot.sandbox.updates import FakeUser
from bot.services import outbox
from bot.storage.models import OutboxMessage, Role
from scheduler import jobs
from scheduler.outbox_sender import OutboxSender


class RealTimeClock(ManualClock):
    """The harness wants a settable clock; here it follows real time (a 429's retry falls due for real)."""

    def now(self) -> datetime:
        return datetime.now(UTC)


def p99(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]


class Arrivals:
    """When the stand-in accepted each sendMessage, with its chat and text."""

    def __init__(self, api: FakeBotApi) -> None:
        self.seen: list[tuple[float, int, str]] = []
        handle = api.handle

        def timed(method: str, params: Any, files: Any = None) -> ApiReply:
            reply = handle(method, params, files)
            if method == "sendMessage" and reply.status == 200:
                self.seen.append((time.monotonic(), int(params["chat_id"]), str(params["text"])))
            return reply

        api.handle = timed  # type: ignore[method-assign]

    def first(self, chat: int, needle: str, after: float) -> float | None:
        return next((at for at, c, text in self.seen if c == chat and needle in text and at >= after), None)


async def until(condition: Callable[[], bool], seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.005)
    return True


async def bare_ptb_latency() -> float:
    api = FakeBotApi()
    api.flood_control(rate=30, chat_rate=1.0)
    app = ApplicationBuilder().token(TOKEN).request(FakeRequest(api)).rate_limiter(AIORateLimiter()).build()
    await app.initialize()
    times = []
    try:
        for i in range(20):
            started = time.monotonic()
            await app.bot.send_message(70_000 + i, "hello")
            times.append(time.monotonic() - started)
    finally:
        await app.shutdown()
    return p99(times)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--full", action="store_true", help="50 collectors of 25 supervisors, 2,000-message broadcast")
    args = parser.parse_args()
    supervisors, broadcast = (25, 2000) if args.full else (5, 300)
    anchor = await bare_ptb_latency()
    print(f"anchor: bare PTB send_message p99 {anchor * 1000:.1f} ms")
    with tempfile.TemporaryDirectory() as tmp:
        harness = BotHarness(sandbox_settings(Path(tmp)), RealTimeClock(datetime.now(UTC)))
        await harness.start()
        try:
            team: list[tuple[FakeUser, str, FakeUser]] = []  # collector, their name, their supervisor
            for s in range(supervisors):
                boss = FakeUser(80_000 + s, f"Boss{s:02d}", language_code="en")
                boss_id = await harness.onboard(boss, boss.first_name, Role.SUPERVISOR, team=f"T{s}")
                for c in range(2):
                    name = f"Collector{s:02d}x{c}"
                    user = FakeUser(90_000 + 2 * s + c, name, language_code="en")
                    await harness.onboard(user, name, Role.COLLECTOR, team=f"T{s}", supervisor_id=boss_id)
                    team.append((user, name, boss))
                if s == 0:  # the one who raises the alarm during the broadcast (it stays open)
                    lone = FakeUser(89_999, "Lone00", language_code="en")
                    await harness.onboard(lone, "Lone00", Role.COLLECTOR, team="T0", supervisor_id=boss_id)
            seen = Arrivals(harness.api)
            flood = harness.api.flood_control(rate=30, chat_rate=1.0)
            assert flood is not None
            sender = harness.app.bot_data[jobs.SENDER_KEY]
            assert isinstance(sender, OutboxSender)

            # 1. one SOS while a broadcast is going out
            async with harness.db.write() as session:
                for i in range(broadcast):
                    await outbox.enqueue(session, chat_id=60_000 + i % 200, text=f"broadcast {i}", kind="bench",
                                         now=harness.clock.now(), priority=outbox.Priority.BULK, flush=False)
            sender.start()
            await until(lambda: len(seen.seen) >= 60, 10)
            user, name, boss = lone, "Lone00", team[0][2]
            started = time.monotonic()
            handled = asyncio.create_task(harness.send(harness.updates.command(user, "/sos")))
            await until(lambda: seen.first(boss.id, name, started) is not None, 10)
            arrived = seen.first(boss.id, name, started)
            one = (arrived - started) if arrived is not None else float("inf")
            await handled
            broadcast_sent = sum(1 for _, _, text in seen.seen if text.startswith("broadcast"))
            print(f"one SOS during a {broadcast}-message broadcast ({broadcast_sent} sent so far): "
                  f"alert at the supervisor after {one * 1000:.0f} ms")
            await sender.stop()
            async with harness.db.write() as session:
                await session.execute(delete(OutboxMessage).where(OutboxMessage.sent_at.is_(None)))
            await asyncio.sleep(1.1)  # the supervisors' chats are free again
            sender.start()

            # 2. every collector at once
            crowd = team
            started = time.monotonic()
            tasks = [asyncio.create_task(harness.send(harness.updates.command(user, "/sos")))
                     for user, _, _ in crowd]
            await until(lambda: all(seen.first(boss.id, name, started) for _, name, boss in crowd), 30)
            latencies = [((seen.first(boss.id, name, started) or float("inf")) - started) for _, name, boss in crowd]
            await asyncio.gather(*tasks)
            combined = sum(1 for at, chat, text in seen.seen if at >= started and text.count("Collector") > 1)
            print(f"{len(crowd)} SOS at once ({supervisors} supervisors): p50 {statistics.median(latencies):.2f} s, "
                  f"p99 {p99(latencies):.2f} s, max {max(latencies):.2f} s; {combined} combined messages; "
                  f"{flood.refused} x 429 in all (replies included)")
            await sender.stop()
        finally:
            await harness.close()
    size = "full" if args.full else "small"
    print(json.dumps({"bench": "sos_latency_during_broadcast", "figure": round(one, 3), "unit": "s",
                      "anchor": round(anchor, 4), "anchor_what": "bare PTB send_message p99 through the same stand-in",
                      "ratio": round(one / anchor, 1) if anchor else None, "target": "<= 1 s", "met": one <= 1.0,
                      "size": size}))
    worst = p99(latencies)
    print(json.dumps({"bench": "sos_latency_at_once", "figure": round(worst, 3), "unit": "s (p99)",
                      "anchor": round(anchor, 4), "anchor_what": "bare PTB send_message p99 through the same stand-in",
                      "ratio": round(worst / anchor, 1) if anchor else None,
                      "target": f"<= 2 s p99 ({len(crowd)} SOS at once from {len(team)} collectors of "
                                f"{supervisors} supervisors; full: 50 of 25)",
                      "met": worst <= 2.0, "size": size}))


if __name__ == "__main__":
    asyncio.run(main())

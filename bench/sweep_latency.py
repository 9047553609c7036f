"""How long the deadline sweep holds the event loop, over a database of a million open deadlines.

    python bench/sweep_latency.py [--rows 1000000] [--due 10000] [--batch 200]

Builds a SQLite database (migrated with Alembic) holding ``--rows`` pending reminders, of which
``--due`` are due now and point at real assigned cases (so each one is acted on: case and assignee
looked up, an outbox message queued, the row marked done). While the sweep runs, a ticker wakes
every millisecond and records how late it woke: the longest gap is the longest time the sweep kept
other updates waiting. The SOP target is under 50 ms. Prints the figures; it is not a test.
"""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.app import freeze_startup_heap
from bot.i18n import SUPPORTED_LOCALES, translator
from bot.services import deadlines
from bot.services.calendar import WorkCalendar
from bot.storage import migrate
from bot.storage.db import Database

NOW = datetime(2026, 11, 4, 1, 0, tzinfo=UTC)  # 09:00 in Shanghai


def _ts(moment: datetime) -> str:
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat(sep=" ")


def fill(path: Path, rows: int, due: int) -> None:
    """Raw inserts: the bench is about the sweep, not about building the data."""
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=OFF")
    now = _ts(NOW)
    collectors = 50
    conn.executemany(
        "INSERT INTO staff (id, telegram_user_id, name, role, team, active, locale, created_at) "
        "VALUES (?, ?, ?, 'collector', 'A', 1, 'zh_CN', ?)",
        [(i, 100_000 + i, f"collector{i}", now) for i in range(1, collectors + 1)])
    conn.executemany(
        "INSERT INTO cases (id, bank, case_no, debtor_name, address, amount_due_fen, status, visit_due_at, "
        "created_at, updated_at) VALUES (?, 'bank', ?, '李四', '上海', 100000, 'assigned', ?, ?, ?)",
        [(i, f"C{i:07d}", _ts(NOW + timedelta(hours=9)), now, now) for i in range(1, due + 1)])
    conn.executemany(
        "INSERT INTO assignments (case_id, staff_id, assigned_at) VALUES (?, ?, ?)",
        [(i, 1 + i % collectors, now) for i in range(1, due + 1)])
    batch: list[tuple[object, ...]] = []
    for i in range(rows):
        is_due = i < due
        due_at = NOW - timedelta(minutes=1) if is_due else NOW + timedelta(days=1 + i % 60, minutes=i % 600)
        batch.append((f"visit_morning:{i}", "visit_morning", (i + 1) if is_due else None, _ts(due_at), now))
        if len(batch) == 50_000:
            conn.executemany("INSERT INTO reminders (key, kind, case_id, due_at, created_at) VALUES (?, ?, ?, ?, ?)",
                             batch)
            batch.clear()
    if batch:
        conn.executemany("INSERT INTO reminders (key, kind, case_id, due_at, created_at) VALUES (?, ?, ?, ?, ?)",
                         batch)
    conn.commit()
    conn.close()


async def measure(url: str, batch: int) -> dict[str, float]:
    for locale in SUPPORTED_LOCALES:  # as build_application does at start-up
        translator(locale)
    database = Database(url)
    freeze_startup_heap()  # as the bot's post_init does
    gaps: list[float] = []
    done = asyncio.Event()

    async def ticker() -> None:
        last = time.perf_counter()
        while not done.is_set():
            await asyncio.sleep(0.001)
            now = time.perf_counter()
            gaps.append((now - last - 0.001) * 1000)
            last = now

    tick = asyncio.create_task(ticker())
    await asyncio.sleep(0.05)
    started = time.perf_counter()
    handled = await deadlines.run_due(database, now=NOW, calendar=WorkCalendar(), batch=batch)
    elapsed = time.perf_counter() - started
    done.set()
    await tick
    await database.dispose()
    return {"handled": handled, "seconds": elapsed, "max_stall_ms": max(gaps),
            "p99_stall_ms": statistics.quantiles(gaps, n=100)[98], "median_stall_ms": statistics.median(gaps)}


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--due", type=int, default=10_000)
    parser.add_argument("--batch", type=int, default=deadlines.BATCH)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "bench.db"
        url = f"sqlite+aiosqlite:///{path}"
        database = Database(url)
        await migrate.upgrade(database)
        await database.dispose()
        started = time.perf_counter()
        fill(path, args.rows, args.due)
        print(f"built {args.rows:,} open deadlines ({args.due:,} due now) in {time.perf_counter() - started:.1f} s")
        figures = await measure(url, args.batch)
    print(f"sweep handled {figures['handled']:,.0f} due reminders in {figures['seconds']:.2f} s "
          f"({figures['handled'] / figures['seconds']:,.0f}/s, batches of {args.batch})")
    print(f"event loop stall: max {figures['max_stall_ms']:.1f} ms, p99 {figures['p99_stall_ms']:.1f} ms, "
          f"median {figures['median_stall_ms']:.2f} ms (target: max under 50 ms)")
    print(f"ratio of the longest stall to the 50 ms budget: {figures['max_stall_ms'] / 50:.2f}")


if __name__ == "__main__":
    asyncio.run(main())

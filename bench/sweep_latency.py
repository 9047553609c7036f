"""How long the deadline sweep holds the event loop, over a database of a million open deadlines.

    python bench/sweep_latency.py [--full] [--rows N] [--due N] [--batch N]

Builds a SQLite database (migrated with Alembic) holding ``--rows`` pending reminders (50,000 at the
small size, 1,000,000 with ``--full``), of which ``--due`` (500 / 10,000) are due now and point at
real assigned cases (so each one is acted on: case and assignee looked up, an outbox message queued,
the row marked done). While the sweep runs, a ticker wakes every millisecond and records how late it
woke: the longest gap is the longest time the sweep kept other updates waiting (target <= 50 ms).

Select-due: the sweep's own query (``deadlines.due_query``) through the ORM and aiosqlite, asked for
every due row at once; the anchor is the same SQL through the sqlite3 module, in the same run
(target <= 1 s). Prints the figures and, last, one JSON line per row (bench/README.md); not a test.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
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

STALL_TARGET_MS = 50.0
SELECT_TARGET_S = 1.0

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
    busy: list[float] = []  # of each gap, the time the loop's own thread was running (not waiting for the CPU)
    done = asyncio.Event()

    async def ticker() -> None:
        last, last_cpu = time.perf_counter(), time.thread_time()
        while not done.is_set():
            await asyncio.sleep(0.001)
            now, cpu = time.perf_counter(), time.thread_time()
            gaps.append((now - last - 0.001) * 1000)
            busy.append((cpu - last_cpu) * 1000)
            last, last_cpu = now, cpu

    tick = asyncio.create_task(ticker())
    await asyncio.sleep(0.05)
    started = time.perf_counter()
    handled = await deadlines.run_due(database, now=NOW, calendar=WorkCalendar(), batch=batch)
    elapsed = time.perf_counter() - started
    done.set()
    await tick
    await database.dispose()
    return {"handled": handled, "seconds": elapsed, "max_stall_ms": max(gaps), "max_busy_ms": max(busy),
            "p99_stall_ms": statistics.quantiles(gaps, n=100)[98], "median_stall_ms": statistics.median(gaps)}


async def select_due(url: str, path: Path, limit: int, repeat: int = 3) -> tuple[float, float, int]:
    """(seconds through the ORM, seconds through sqlite3, rows): the best of ``repeat`` runs of each."""
    query = deadlines.due_query(NOW, limit)
    database = Database(url)
    orm_times: list[float] = []
    found = 0
    for _ in range(repeat):
        async with database.read() as session:
            started = time.perf_counter()
            found = len(list(await session.scalars(query)))
            orm_times.append(time.perf_counter() - started)
            session.expunge_all()
    await database.dispose()
    compiled = query.compile(dialect=database.engine.dialect, compile_kwargs={"literal_binds": True})
    conn = sqlite3.connect(path)
    raw_times: list[float] = []
    for _ in range(repeat):
        started = time.perf_counter()
        rows = conn.execute(str(compiled)).fetchall()
        raw_times.append(time.perf_counter() - started)
    conn.close()
    assert len(rows) == found, (len(rows), found)
    return min(orm_times), min(raw_times), found


def row(name: str, figure: float, unit: str, anchor: float, target: str, met: bool, size: str,
        **extra: float) -> str:
    return json.dumps({
        "bench": "sweep_latency", "row": name, "figure": round(figure, 4), "unit": unit, "anchor": round(anchor, 4),
        "anchor_what": "raw sqlite3 select-due (all due rows), same run", "ratio": round(figure / anchor, 2),
        "target": target, "met": met, "size": size, **{k: round(v, 2) for k, v in extra.items()}})


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="1,000,000 open deadlines, 10,000 due")
    parser.add_argument("--rows", type=int, default=None)
    parser.add_argument("--due", type=int, default=None)
    parser.add_argument("--batch", type=int, default=deadlines.BATCH)
    args = parser.parse_args()
    size = "full" if args.full else "small"
    rows = args.rows or (1_000_000 if args.full else 50_000)
    due = args.due or (10_000 if args.full else 500)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "bench.db"
        url = f"sqlite+aiosqlite:///{path}"
        database = Database(url)
        await migrate.upgrade(database)
        await database.dispose()
        started = time.perf_counter()
        fill(path, rows, due)
        print(f"built {rows:,} open deadlines ({due:,} due now) in {time.perf_counter() - started:.1f} s")
        orm_s, raw_s, found = await select_due(url, path, due)
        batch_s, raw_batch_s, _ = await select_due(url, path, args.batch)
        figures = await measure(url, args.batch)
    print(f"select-due, all {found:,} due rows: {orm_s * 1000:.1f} ms through the ORM, {raw_s * 1000:.1f} ms raw "
          f"sqlite3; one batch of {args.batch}: {batch_s * 1000:.2f} ms ({raw_batch_s * 1000:.2f} ms raw)")
    print(f"sweep handled {figures['handled']:,.0f} due reminders in {figures['seconds']:.2f} s "
          f"({figures['handled'] / figures['seconds']:,.0f}/s, batches of {args.batch})")
    print(f"event loop stall: max {figures['max_stall_ms']:.1f} ms, p99 {figures['p99_stall_ms']:.1f} ms, "
          f"median {figures['median_stall_ms']:.2f} ms (target: max <= {STALL_TARGET_MS:g} ms)")
    load = os.getloadavg()[0]
    print(f"of the longest gaps, the loop thread itself computed at most {figures['max_busy_ms']:.1f} ms "
          f"(the rest is waiting for a CPU: load average {load:.1f} on {os.cpu_count()} CPUs)")
    print(row("longest event-loop stall", figures["max_stall_ms"], "ms", raw_s * 1000, f"<= {STALL_TARGET_MS:g} ms",
              figures["max_stall_ms"] <= STALL_TARGET_MS, size, loop_busy_ms=figures["max_busy_ms"],
              load_average=load))
    print(row("select-due", orm_s, "s", raw_s, f"<= {SELECT_TARGET_S:g} s", orm_s <= SELECT_TARGET_S, size))


if __name__ == "__main__":
    asyncio.run(main())

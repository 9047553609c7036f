"""How long one prune batch (5,000 rows) holds the database, and how long the event loop is stalled.

    python bench/prune_batch.py [--full] [--pg postgresql+asyncpg://...]

The inbox and the outbox each get ``n`` rows, half of them older than the 30 days kept (the outbox's
old half: sent, given up and a few pending, which stay). Then prune sweep runs (4 batches of 5,000 per
table each) until nothing is left to prune, and once more on a database with nothing stale (the steady
state, every hour). Small: 40,000 rows a table; full: 1,000,000. With ``--pg`` the same on PostgreSQL
(an empty database of that URL's server, created and dropped).

* figure: the longest batch, in ms (one transaction: on SQLite the write lock is held that long).
* anchor: raw ``sqlite3`` deleting the same number of rows by primary key in one statement.

Target: a batch <= 100 ms, and the longest event-loop stall <= 50 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncSession

from bot.services import pruning
from bot.storage import migrate
from bot.storage.db import Database
from bot.storage.models import InboxEntry, OutboxMessage

NOW = datetime(2026, 11, 2, 1, tzinfo=UTC)
KEEP = timedelta(days=30)
TARGET_MS, STALL_MS = 100.0, 50.0


async def seed(database: Database, n: int) -> None:
    old, fresh = NOW - timedelta(days=40), NOW - timedelta(days=1)
    chunk = 5_000
    for start in range(0, n, chunk):
        inbox_rows, outbox_rows = [], []
        for i in range(start, min(n, start + chunk)):
            at = old if i < n // 2 else fresh
            inbox_rows.append({"key": f"update:{i}", "at": at})
            done = i % 50  # of every 50: 1 pending, 2 given up, 47 sent
            outbox_rows.append({"chat_id": 10_000 + i % 300, "kind": "bench", "priority": 5, "method": "sendMessage",
                                "payload": {"text": f"message {i}"}, "created_at": at, "next_attempt_at": at,
                                "attempts": 0 if done == 0 else 1,
                                "sent_at": at if done > 2 else None, "failed_at": at if done in (1, 2) else None})
        async with database.write() as session:
            await session.execute(insert(InboxEntry), inbox_rows)
            await session.execute(insert(OutboxMessage), outbox_rows)


class Stalls:
    """The longest gap between ticks of a 1 ms ticker while the sweep runs."""

    def __init__(self) -> None:
        self.longest = 0.0
        self._running = True

    async def tick(self) -> None:
        last = time.perf_counter()
        while self._running:
            await asyncio.sleep(0.001)
            now = time.perf_counter()
            self.longest = max(self.longest, now - last - 0.001)
            last = now

    def stop(self) -> None:
        self._running = False


async def measure(database: Database) -> tuple[list[float], float, float]:
    """Per-batch times (s), the longest loop stall (s), and the steady-state run (s)."""
    batches: list[float] = []
    original = database.write

    @asynccontextmanager
    async def timed_write() -> AsyncIterator[AsyncSession]:
        started = time.perf_counter()
        async with original() as session:
            yield session
        batches.append(time.perf_counter() - started)  # the batch's transaction, commit included

    database.write = timed_write  # type: ignore[method-assign]
    stalls = Stalls()
    ticker = asyncio.create_task(stalls.tick())
    while (await pruning.sweep(database, now=NOW, keep=KEEP)).total:
        pass
    stalls.stop()
    await ticker
    database.write = original  # type: ignore[method-assign]
    started = time.perf_counter()
    await pruning.sweep(database, now=NOW, keep=KEEP)
    return batches, stalls.longest, time.perf_counter() - started


def raw_anchor(n: int) -> float:
    """Raw sqlite3: delete ``pruning.BATCH`` rows of a table of ``n`` by primary key, one statement."""
    with tempfile.TemporaryDirectory() as tmp:
        con = sqlite3.connect(Path(tmp) / "raw.db", isolation_level=None)
        con.execute("PRAGMA journal_mode=WAL")
        con.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, at TEXT, body TEXT)")
        con.executemany("INSERT INTO t (at, body) VALUES (?, ?)", (("2026-10-01", f"x{i}") for i in range(n)))
        started = time.perf_counter()
        con.execute("BEGIN IMMEDIATE")
        con.execute("DELETE FROM t WHERE id IN (SELECT id FROM t LIMIT ?)", (pruning.BATCH,))
        con.execute("COMMIT")
        elapsed = time.perf_counter() - started
        con.close()
    return elapsed


async def run(url: str, n: int) -> tuple[list[float], float, float]:
    database = Database(url)
    try:
        await migrate.ensure_current(database)
        await seed(database, n)
        return await measure(database)
    finally:
        await database.dispose()


async def pg_database(base: str) -> tuple[str, str]:
    import asyncpg  # type: ignore[import-untyped]
    from sqlalchemy.engine import make_url

    url = make_url(base)
    name = f"fieldbot_bench_{uuid.uuid4().hex[:10]}"
    conn = await asyncpg.connect(user=url.username, password=url.password, host=url.host, port=url.port or 5432,
                                 database=url.database)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return url.set(database=name).render_as_string(hide_password=False), name


async def drop_pg(base: str, name: str) -> None:
    import asyncpg
    from sqlalchemy.engine import make_url

    url = make_url(base)
    conn = await asyncpg.connect(user=url.username, password=url.password, host=url.host, port=url.port or 5432,
                                 database=url.database)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


def report(label: str, n: int, batches: list[float], stall: float, steady: float) -> tuple[float, float]:
    worst = max(batches) * 1000
    print(f"{label}: {n:,} rows a table, half stale; {len(batches)} batches, median "
          f"{statistics.median(batches) * 1000:.1f} ms, longest {worst:.1f} ms; longest loop stall "
          f"{stall * 1000:.1f} ms; a run with nothing stale {steady * 1000:.1f} ms")
    return worst, stall * 1000


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--full", action="store_true", help="1,000,000 rows a table (default: 40,000)")
    parser.add_argument("--pg", help="also on the PostgreSQL server of this URL (a scratch database)")
    args = parser.parse_args()
    n = 1_000_000 if args.full else 40_000
    anchor = raw_anchor(n) * 1000
    print(f"raw sqlite3, {pruning.BATCH:,} rows deleted by primary key: {anchor:.1f} ms")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        worst, stall = report("fieldbot on SQLite", n, *await run(f"sqlite+aiosqlite:///{Path(tmp) / 'b.db'}", n))
    rows.append(("sqlite", worst, stall))
    if args.pg:
        url, name = await pg_database(args.pg)
        try:
            worst, stall = report("fieldbot on PostgreSQL", n, *await run(url, n))
        finally:
            await drop_pg(args.pg, name)
        rows.append(("postgres", worst, stall))
    for row, worst, stall in rows:
        print(json.dumps({"bench": "prune_batch", "row": row, "figure": round(worst, 2), "unit": "ms (longest batch)",
                          "anchor": round(anchor, 2), "anchor_what": "raw sqlite3 delete of one batch by id",
                          "ratio": round(worst / anchor, 2) if anchor else None,
                          "target": f"<= {TARGET_MS:.0f} ms a batch, loop stall <= {STALL_MS:.0f} ms "
                                    f"(was {stall:.1f} ms)",
                          "met": worst <= TARGET_MS and stall <= STALL_MS, "size": "full" if args.full else "small"}))


if __name__ == "__main__":
    asyncio.run(main())

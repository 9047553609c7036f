"""One collector's visit list on a big database: the service's latency against the same SQL run raw.

    python bench/visit_list.py [--full] [--runs N]

Small: 50,000 cases / 150,000 visits; --full: 1,000,000 cases / 3,000,000 visits (bench/_bigdb.py,
cached in the temp folder). Times ``visits.visit_list`` for one collector's first page (8 items, as
the list handler asks; with a location, so the distance ordering is in play) through the bot's own
``Database`` (SQLAlchemy async over aiosqlite), then, as the anchor, the very statement it runs
(``visits.visit_list_query``, rendered) executed with plain ``sqlite3`` on the same file in the same
run. Target: p95 <= 5 ms. Prints the query plan too. Not a test.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sqlite3
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy.dialects import sqlite

from bench._bigdb import NOW, big_database, open_collector
from bot.services import visits
from bot.services.actor import StaffView
from bot.services.calendar import WorkCalendar
from bot.storage.db import Database
from bot.storage.models import Staff

PAGE = 8
ORIGIN = (31.2, 121.45)
TARGET_MS = 5.0


def pct(values: list[float], p: int) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[p - 1]


async def service_times(path: Path, collector_id: int, runs: int) -> tuple[list[float], int]:
    database = Database(f"sqlite+aiosqlite:///{path}")
    calendar = WorkCalendar()
    async with database.read() as session:
        person = await session.get(Staff, collector_id)
        assert person is not None
        me = StaffView.of(person)
    times: list[float] = []
    total = 0
    for n in range(runs + 5):
        started = time.perf_counter()
        async with database.read() as session:
            listing = await visits.visit_list(session, me, now=NOW, calendar=calendar, origin=ORIGIN, limit=PAGE)
        if n >= 5:  # the first few warm the caches
            times.append((time.perf_counter() - started) * 1000)
        total = listing.total
    await database.dispose()
    return times, total


def raw_times(path: Path, collector_id: int, runs: int) -> tuple[list[float], str, list[str]]:
    statement = visits.visit_list_query(collector_id, now=NOW, today=WorkCalendar().working_date(NOW),
                                        origin=ORIGIN, limit=PAGE)
    sql = str(statement.compile(dialect=sqlite.dialect(), compile_kwargs={"literal_binds": True}))
    conn = sqlite3.connect(path)
    plan = [row[3] for row in conn.execute("EXPLAIN QUERY PLAN " + sql)]
    times: list[float] = []
    for n in range(runs + 5):
        started = time.perf_counter()
        conn.execute(sql).fetchall()
        if n >= 5:
            times.append((time.perf_counter() - started) * 1000)
    conn.close()
    return times, sql, plan


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="1M cases / 3M visits (default: 50k cases)")
    parser.add_argument("--runs", type=int, default=300)
    args = parser.parse_args()
    cases = 1_000_000 if args.full else 50_000
    path = big_database(cases)
    collector_id = open_collector(cases)
    raw, _, plan = raw_times(path, collector_id, args.runs)
    service, total = asyncio.run(service_times(path, collector_id, args.runs))
    print("plan: " + " | ".join(plan))
    print(f"{cases:,} cases: collector {collector_id}'s list has {total} cases; first page of {PAGE}, {args.runs} runs")
    print(f"service visit_list: p50 {statistics.median(service):.2f} ms, p95 {pct(service, 95):.2f} ms, "
          f"p99 {pct(service, 99):.2f} ms")
    print(f"raw sqlite3, same SQL: p50 {statistics.median(raw):.2f} ms, p95 {pct(raw, 95):.2f} ms, "
          f"p99 {pct(raw, 99):.2f} ms")
    figure, anchor = pct(service, 95), pct(raw, 95)
    print(f"ratio service/raw at p95: {figure / anchor:.2f}; target p95 <= {TARGET_MS} ms")
    print(json.dumps({"bench": "visit_list", "figure": round(figure, 3), "unit": "ms p95",
                      "anchor": round(anchor, 3), "anchor_what": "the same SQL through raw sqlite3, p95",
                      "ratio": round(figure / anchor, 2), "target": f"p95 <= {TARGET_MS:g} ms",
                      "met": figure <= TARGET_MS, "size": "full" if args.full else "small",
                      "p99_ms": round(pct(service, 99), 3), "raw_p99_ms": round(pct(raw, 99), 3)}))


if __name__ == "__main__":
    main()

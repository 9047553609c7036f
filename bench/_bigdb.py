"""A big fieldbot database for the benches: cases, visits, assignments and collectors, built fast.

    from bench._bigdb import big_database, NOW
    path = big_database(1_000_000)        # 1M cases, 3M visits, ~3,000 field collectors

The schema comes from the migrations (``migrate.upgrade``); the rows go in with raw ``sqlite3``
``executemany`` in batches (the benches measure reading them, not writing them). The file is cached
under the temp folder, keyed by its size, so a second run reuses it; a cached file is brought up to
the newest schema on reuse (a new migration's indexes get built once). The data is deterministic.

Shape, per case: one current assignment (a third also have an ended one, a former collector), three
visits on average (approved and filed history; about 5 % have an open draft or returned report by
the current collector), a visit deadline spread over a fortnight around ``NOW``, a next-action date
for visited ones, a point in Shanghai. About 5 % of the staff are phone collectors, each with a few
open requests for a field collector of their team to visit one of their cases. Field collector
``n`` (1-based) is staff id ``n`` and Telegram user ``TELEGRAM_BASE + n``.
"""

from __future__ import annotations

import asyncio
import functools
import os
import shutil
import sqlite3
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

NOW = datetime(2026, 11, 4, 1, 0, tzinfo=UTC)  # Wednesday 09:00 in Shanghai
TELEGRAM_BASE = 500_000
CASES_PER_COLLECTOR = 330
VISITS_PER_CASE = 3
BATCH = 50_000
TEAM_SIZE = 20  # field collectors per team (one supervisor each)


def _ts(moment: datetime) -> str:
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat(sep=" ")


@functools.cache
def _at(minutes: int) -> str:
    """``NOW`` plus ``minutes``, as SQLite stores it (the same few thousand moments recur: cached)."""
    return _ts(NOW + timedelta(minutes=minutes))


def shape(cases: int) -> dict[str, int]:
    collectors = max(2, cases // CASES_PER_COLLECTOR)
    phone = max(1, collectors // 20)
    supervisors = max(1, collectors // TEAM_SIZE)
    return {"cases": cases, "collectors": collectors, "phone_collectors": phone, "supervisors": supervisors,
            "visits": cases * VISITS_PER_CASE}


def collector_of(case_id: int, collectors: int) -> int:
    """The field collector currently holding ``case_id`` (scattered, as assignment over time leaves it)."""
    return 1 + (case_id * 7919) % collectors


def _batched(rows: Iterator[tuple[object, ...]], sql: str, conn: sqlite3.Connection) -> int:
    batch: list[tuple[object, ...]] = []
    count = 0
    for row in rows:
        batch.append(row)
        if len(batch) == BATCH:
            conn.executemany(sql, batch)
            count += len(batch)
            batch.clear()
    if batch:
        conn.executemany(sql, batch)
        count += len(batch)
    return count


def fill(path: Path, cases: int) -> dict[str, int]:
    """Raw inserts into a migrated, empty database at ``path``."""
    s = shape(cases)
    collectors, phone, supervisors = s["collectors"], s["phone_collectors"], s["supervisors"]
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode=OFF")
    conn.execute("PRAGMA synchronous=OFF")
    conn.execute("PRAGMA locking_mode=EXCLUSIVE")
    conn.execute("PRAGMA cache_size=-400000")
    # the secondary indexes are built after the rows are in (much faster than row by row), as the migrations made them
    indexes = conn.execute("SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL "
                           "AND tbl_name IN ('staff', 'cases', 'assignments', 'visits', 'field_requests')").fetchall()
    for name, _ in indexes:
        conn.execute(f'DROP INDEX "{name}"')
    now = _ts(NOW)
    today = NOW.date()
    # staff: field collectors 1..C, then phone collectors, then supervisors
    boss0 = collectors + phone
    staff_rows: list[tuple[object, ...]] = []
    for n in range(1, collectors + phone + supervisors + 1):
        if n <= collectors:
            role, team = "collector", (n - 1) // TEAM_SIZE
        elif n <= boss0:
            role, team = "phone_collector", (n - collectors - 1) % supervisors
        else:
            role, team = "supervisor", n - boss0 - 1
        boss = None if role == "supervisor" else boss0 + 1 + min(team, supervisors - 1)
        staff_rows.append((n, TELEGRAM_BASE + n, f"{role}{n}", role, f"T{min(team, supervisors - 1)}", boss, now))
    conn.executemany("INSERT INTO staff (id, telegram_user_id, name, role, team, supervisor_id, active, locale, "
                     "created_at) VALUES (?, ?, ?, ?, ?, ?, 1, 'zh_CN', ?)", staff_rows)

    statuses = ("assigned", "assigned", "visited", "visited", "promised", "visited", "paid", "closed", "assigned",
                "disputed")

    def case_rows() -> Iterator[tuple[object, ...]]:
        for i in range(1, cases + 1):
            holder = collector_of(i, collectors)
            status = statuses[(i * 31) % len(statuses)]
            due_minutes = ((i * 7727) % (14 * 24 * 60)) - 7 * 24 * 60
            due = _at(due_minutes)
            next_on = (today + timedelta(days=(i % 11) - 5)).isoformat() if status in ("visited", "promised") \
                else None
            lat = 31.0 + (i * 37 % 10_000) / 20_000
            lon = 121.2 + (i * 53 % 10_000) / 16_000
            done = due if status not in ("assigned", "new") else None
            overdue = due if done is None and due_minutes < 0 else None
            yield (i, "bank", f"C{i:08d}", "张三丰", "110101********1234", "13800138000", f"上海市 {i} 号",
                   lat, lon, 100_000 + i % 5_000_000, 30 + i % 300, status, f"T{(holder - 1) // TEAM_SIZE}",
                   due, next_on, "revisit" if next_on else None, done, overdue, now, now)

    _batched(case_rows(),
             "INSERT INTO cases (id, bank, case_no, debtor_name, id_number_masked, phone, address, lat, lon, "
             "amount_due_fen, overdue_days, status, team, visit_due_at, next_action_on, next_action, visit_done_at, "
             "visit_overdue_at, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, "
             "?, ?)", conn)

    before = _ts(NOW - timedelta(days=60))

    def assignment_rows() -> Iterator[tuple[object, ...]]:
        for i in range(1, cases + 1):
            holder = collector_of(i, collectors)
            if i % 3 == 0:
                yield (i, 1 + (holder % collectors), before, before, "moved")
            yield (i, holder, before, None, None)

    _batched(assignment_rows(), "INSERT INTO assignments (case_id, staff_id, assigned_at, ended_at, reason) "
             "VALUES (?, ?, ?, ?, ?)", conn)

    def visit_rows() -> Iterator[tuple[object, ...]]:
        for i in range(1, cases + 1):
            holder = collector_of(i, collectors)
            for k in range(VISITS_PER_CASE):
                started_minutes = -(30 - 10 * k) * 24 * 60 - i % 600
                started = _at(started_minutes)
                last = k == VISITS_PER_CASE - 1
                if last and i % 20 == 0:
                    status = "draft" if i % 40 == 0 else "returned"
                elif last and i % 7 == 0:
                    status = "filed"
                else:
                    status = "approved"
                filed = None if status == "draft" else _at(started_minutes + 60)
                yield (i, holder, status, started, started, started, 0, "NOBODY", '{"answers": {}}',
                       filed, 1)

    _batched(visit_rows(),
             "INSERT INTO visits (case_id, collector_id, status, started_at, updated_at, checkin_at, checkin_flagged, "
             "code, details, filed_at, revision) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", conn)

    def request_rows() -> Iterator[tuple[object, ...]]:
        for p in range(phone):
            for k in range(5):
                case_id = 1 + (p * 5 + k) * 97 % cases
                field = collector_of(case_id + 1, collectors)  # someone other than the holder, mostly
                yield (case_id, collectors + 1 + p, field, "please visit", now, None)

    _batched(request_rows(), "INSERT INTO field_requests (case_id, requested_by_id, field_collector_id, note, "
             "created_at, done_at) VALUES (?, ?, ?, ?, ?, ?)", conn)
    conn.commit()
    for _, sql in indexes:
        conn.execute(sql)
    conn.commit()
    conn.close()
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode=WAL")  # as the bot runs it
    conn.close()
    return s


async def _upgrade(path: Path) -> None:
    from bot.storage import migrate
    from bot.storage.db import Database

    database = Database(f"sqlite+aiosqlite:///{path}")
    try:
        await migrate.upgrade(database)
    finally:
        await database.dispose()


def cache_dir() -> Path:
    folder = Path(os.environ.get("FIELDBOT_BENCH_CACHE") or Path(tempfile.gettempdir()) / "fieldbot-bench")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def big_database(cases: int, *, quiet: bool = False) -> Path:
    """The path of a cached database of ``cases`` cases (built on first use), at the newest schema."""
    path = cache_dir() / f"bigdb-{cases}.db"
    if not path.exists():
        started = time.perf_counter()
        building = path.with_suffix(".building")
        for stale in (building, Path(f"{building}-wal"), Path(f"{building}-shm")):
            stale.unlink(missing_ok=True)
        asyncio.run(_upgrade(building))
        s = fill(building, cases)
        building.rename(path)
        if not quiet:
            print(f"built {path.name}: {s['cases']:,} cases, {s['visits']:,} visits, {s['collectors']:,} field "
                  f"collectors, {s['phone_collectors']:,} phone collectors in {time.perf_counter() - started:.1f} s")
    started = time.perf_counter()
    asyncio.run(_upgrade(path))  # a new migration since the file was built: its indexes are built once
    if not quiet and time.perf_counter() - started > 1:
        print(f"brought {path.name} to the newest schema in {time.perf_counter() - started:.1f} s")
    return path


def scratch_copy(source: Path, folder: Path) -> Path:
    """A private copy of a cached database (:func:`big_database`) for a bench that writes."""
    target = folder / source.name
    shutil.copyfile(source, target)
    return target


def open_collector(cases: int) -> int:
    """A field collector with a busy list: one who also has open field requests."""
    s = shape(cases)
    return collector_of(2, s["collectors"])  # phone collector 1's first request is case 1


def today() -> date:
    return NOW.date()


if __name__ == "__main__":
    size = int(sys.argv[1]) if len(sys.argv) > 1 else 50_000
    print(big_database(size))

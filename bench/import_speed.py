"""How fast `fieldbot import` takes in a bank's CSV file, and how much memory it needs.

    python bench/import_speed.py [--full] [--rows N] [--batch N]

Writes a CSV of 10,000 rows (100,000 with ``--full``) with every column a bank sends, then imports
it into a fresh, migrated SQLite database in a child process (the real ``intake.import_file``, as
``fieldbot import`` runs it), which reports its rows/s and its peak RSS (``ru_maxrss``). The anchor,
measured in the same run: raw ``sqlite3`` ``executemany`` of the same rows, already converted, into
the same ``cases`` table of an identical fresh database. Targets: >= 0.3x the anchor, RSS <= 150 MiB.
Prints the figures and, last, one JSON line per row; it is not a test.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import os
import random
import resource
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from datetime import UTC, date, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

HEADER = ["案件编号", "委托方", "客户姓名", "证件号码", "手机号码", "地址", "欠款金额", "逾期天数", "委托日期",
          "委托到期日", "纬度", "经度"]
NOW = datetime(2026, 11, 2, 1, 0, tzinfo=UTC)
RSS_TARGET_MIB = 150
RATIO_TARGET = 0.3


def make_rows(count: int) -> list[list[str]]:
    rng = random.Random(7)
    surnames, given = "王李张刘陈杨黄赵吴周", "伟芳娜敏静丽强磊军洋勇艳杰涛明超秀霞平刚"
    districts = ("南山区", "福田区", "罗湖区", "宝安区", "龙岗区")
    rows = []
    for i in range(count):
        rows.append([
            f"BX{i:08d}", "招商银行", rng.choice(surnames) + rng.choice(given) + rng.choice(given),
            f"44030519{rng.randint(70, 99)}0{rng.randint(1, 9)}1{rng.randint(0, 9)}{rng.randint(1000, 9999)}",
            f"13{rng.randint(100000000, 999999999)}",
            f"广东省深圳市{rng.choice(districts)}{rng.randint(1, 300)}号"
            f"{rng.randint(1, 30)}栋{rng.randint(101, 2808)}室",
            f"{rng.randint(1000, 500000)}.{rng.randint(0, 99):02d}", str(rng.randint(30, 720)),
            "2026-10-01", "2027-01-31",
            f"{22.5 + rng.random() / 10:.6f}", f"{113.9 + rng.random() / 10:.6f}",
        ])
    return rows


def write_csv(path: Path, rows: list[list[str]]) -> None:
    with path.open("w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(HEADER)
        writer.writerows(rows)


def anchor(db: Path, rows: list[list[str]]) -> float:
    """Raw sqlite3 executemany of the same rows (converted as the import stores them) into ``cases``."""
    ts = NOW.replace(tzinfo=None).isoformat(sep=" ")
    values = [
        (r[1], r[0], r[2], r[3][:6] + "********" + r[3][-4:], r[4], r[5], float(r[10]), float(r[11]),
         round(float(r[6]) * 100), int(r[7]), date.fromisoformat(r[8]).isoformat(),
         date.fromisoformat(r[9]).isoformat(), "new", None, ts, 1, ts, ts)
        for r in rows
    ]
    connection = sqlite3.connect(db, isolation_level=None)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA synchronous=NORMAL")
    started = time.perf_counter()
    connection.execute("BEGIN IMMEDIATE")
    connection.executemany(
        "INSERT INTO cases (bank, case_no, debtor_name, id_number_masked, phone, address, lat, lon, amount_due_fen,"
        " overdue_days, entrusted_on, contract_end, status, team, assign_due_at, import_id, created_at, updated_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", values)
    connection.execute("COMMIT")
    elapsed = time.perf_counter() - started
    connection.close()
    return elapsed


def child(db: Path, csv_path: Path | None, batch: int | None) -> None:
    """In a process of its own: migrate, or import ``csv_path`` and report time and peak RSS."""
    from bot.clock import ManualClock
    from bot.services import audit, intake
    from bot.services.calendar import WorkCalendar
    from bot.storage import keys, migrate
    from bot.storage.db import Database
    from bot.storage.media import MediaStore

    # the audit chain is keyed: this process loads (or makes) its key as the bot and the CLI do
    audit.use_key(keys.load_or_create(db.parent / "keys", keys.AUDIT_KEY))
    data = csv_path.read_bytes() if csv_path is not None else b""

    async def run() -> dict[str, object]:
        database = Database(f"sqlite+aiosqlite:///{db}")
        if csv_path is None:
            await migrate.upgrade(database)
            await database.dispose()
            return {}
        clock = ManualClock(NOW)
        started = time.perf_counter()
        kwargs = {"batch_size": batch} if batch else {}
        summary = await intake.import_file(database, data, csv_path.name, clock=clock, calendar=WorkCalendar(),
                                           media=MediaStore(db.parent / "data"), **kwargs)  # type: ignore[arg-type]
        elapsed = time.perf_counter() - started
        await database.dispose()
        return {"elapsed": elapsed, "imported": summary.imported, "rejected": summary.rejected,
                "maxrss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}

    print(json.dumps(asyncio.run(run())))


def run_child(*args: str) -> dict[str, object]:
    out = subprocess.run([sys.executable, __file__, "--child", *args], check=True, capture_output=True, text=True,
                         cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    result: dict[str, object] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--full", action="store_true", help="100,000 rows (default 10,000)")
    parser.add_argument("--rows", type=int, default=None)
    parser.add_argument("--batch", type=int, default=None, help="import batch size (default: the import's own)")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(Path(args.child[0]), Path(args.child[1]) if len(args.child) > 1 else None, args.batch)
        return
    count = args.rows or (100_000 if args.full else 10_000)
    with tempfile.TemporaryDirectory(prefix="fieldbot-import-") as tmp:
        folder = Path(tmp)
        rows = make_rows(count)
        csv_path = folder / "bank.csv"
        write_csv(csv_path, rows)
        template = folder / "template.db"
        run_child(str(template))
        shutil.copy(template, folder / "anchor.db")
        shutil.copy(template, folder / "import.db")
        anchor_s = anchor(folder / "anchor.db", rows)
        del rows
        extra = ["--batch", str(args.batch)] if args.batch else []
        result = run_child(str(folder / "import.db"), str(csv_path), *extra)
    elapsed = float(result["elapsed"])  # type: ignore[arg-type]
    rate, anchor_rate = count / elapsed, count / anchor_s
    rss_mib = int(result["maxrss_kib"]) / 1024  # type: ignore[call-overload]
    ratio = rate / anchor_rate
    size = "full" if args.full else "small"
    print(f"rows: {count:,} ({csv_path.name}, {result['imported']} imported, {result['rejected']} rejected)")
    print(f"fieldbot import: {elapsed:.2f} s = {rate:,.0f} rows/s, peak RSS {rss_mib:.0f} MiB")
    print(f"anchor (raw sqlite3 executemany into cases): {anchor_s:.3f} s = {anchor_rate:,.0f} rows/s")
    print(f"ratio {ratio:.3f}x (target >= {RATIO_TARGET}x); RSS target <= {RSS_TARGET_MIB} MiB")
    print(json.dumps({"bench": "import_speed", "figure": round(rate, 1), "unit": "rows/s",
                      "anchor": round(anchor_rate, 1), "anchor_what": "raw sqlite3 executemany of the same rows "
                      "into the same cases table", "ratio": round(ratio, 4), "target": f">= {RATIO_TARGET}x",
                      "met": ratio >= RATIO_TARGET, "size": size}))
    print(json.dumps({"bench": "import_speed.rss", "figure": round(rss_mib, 1), "unit": "MiB", "anchor": None,
                      "anchor_what": "peak RSS (ru_maxrss) of the importing process", "ratio": None,
                      "target": f"<= {RSS_TARGET_MIB} MiB", "met": rss_mib <= RSS_TARGET_MIB, "size": size}))


if __name__ == "__main__":
    main()

"""``fieldbot db copy``: move a team's database to another one (SQLite to PostgreSQL, or any pair).

Nothing heavy is imported at module level: ``fieldbot --help`` stays fast.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bot.config import Settings

EXIT_REFUSED = 2
PROGRESS_EVERY = 100_000  # rows of one table between two progress lines
RUNNING_WITHIN_S = 120  # a heartbeat this fresh in the source: a bot may still be writing to it


def cmd_db_copy(settings: Settings, args: argparse.Namespace) -> int:
    from bot.clock import SystemClock
    from bot.runtime import load_keys
    from bot.services import audit, audit_checkpoint
    from bot.storage import dbcopy
    from bot.storage.db import Database

    source_url: str = args.source or settings.database_url
    target_url: str = args.target
    shown: dict[str, int] = {}

    def progress(table: str, copied: int) -> None:
        if copied // PROGRESS_EVERY > shown.get(table, 0):
            shown[table] = copied // PROGRESS_EVERY
            print(f"  {table}: {copied:,} rows…", file=sys.stderr)

    async def main() -> int:
        load_keys(settings)  # the audit key: the copied chain is verified with it
        source, target = Database(source_url), Database(target_url)
        try:
            print(f"copying {dbcopy.display_url(source_url)} → {dbcopy.display_url(target_url)}")
            try:
                report = await dbcopy.copy_database(source, target, batch=args.batch, progress=progress)
            except dbcopy.CopyRefused as exc:
                print(f"fieldbot: {exc}", file=sys.stderr)
                return EXIT_REFUSED
            except dbcopy.CopyFailed as exc:
                print(f"fieldbot: {exc}", file=sys.stderr)
                return 1
            _print_counts(report)
            heartbeat = report.source_heartbeat
            if heartbeat is not None and (SystemClock().now() - heartbeat).total_seconds() < RUNNING_WITHIN_S:
                print("warning: a bot process was running on the source during the copy; what it wrote after the "
                      "copy began is not in the target: stop it, and copy again into a new database")
            heads = audit_checkpoint.known_heads(settings)
            if report.source_head is not None:
                seq, digest = report.source_head
                heads.append(audit.Head(seq=seq, hash=digest, source="the source database"))
            async with target.read() as session:
                verified = await audit.verify(session, checkpoints=heads)
            print(f"target: {verified.describe()}")
            if report.ok and verified.ok:
                print(f"copied {len(report.tables)} tables, {report.rows:,} rows in {report.seconds:.1f} s; "
                      "point FIELDBOT_DATABASE_URL at the target to use it")
                return 0
            print("fieldbot: the copy does not match the source (see above)", file=sys.stderr)
            return 1
        finally:
            await source.dispose()
            await target.dispose()

    return asyncio.run(main())


def _print_counts(report: Any) -> None:
    width = max(len(count.name) for count in report.tables)
    for count in report.tables:
        mark = "" if count.ok else "   MISMATCH"
        print(f"  {count.name:<{width}}  {count.source:>10,} → {count.target:>10,}{mark}")
    if report.sequences:
        print(f"sequences set after the highest id copied: {report.sequences}")
    if report.later:
        print(f"references to a row copied later, set afterwards: {report.later}")


def register(db_sub: Any) -> None:
    copy = db_sub.add_parser("copy", help="copy the whole database into a new, empty one (e.g. SQLite to "
                             "PostgreSQL); counts every table and verifies the audit log on the target")
    copy.add_argument("--from", dest="source", metavar="URL",
                      help="the database to copy (default: FIELDBOT_DATABASE_URL)")
    copy.add_argument("--to", dest="target", required=True, metavar="URL",
                      help="the new database, e.g. postgresql+asyncpg://fieldbot@db-host/fieldbot (must be empty)")
    copy.add_argument("--batch", type=int, default=1_000, help="rows per insert (default: %(default)s)")
    copy.set_defaults(func=cmd_db_copy)

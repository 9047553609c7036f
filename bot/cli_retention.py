"""``fieldbot hold``, ``fieldbot release`` and ``fieldbot purge``: legal holds and the retention purge.

Nothing heavy is imported at module level: ``fieldbot --help`` stays fast.
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bot.config import Settings
    from bot.storage.db import Database


def _os_user() -> str:
    import getpass

    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no login name (a container without a passwd entry)
        return "unknown"


def cmd_hold(settings: Settings, args: argparse.Namespace) -> int:
    from bot.cli import _run_db
    from bot.clock import SystemClock
    from bot.i18n import translator
    from bot.services import retention

    t = translator(settings.default_locale)

    async def work(database: Database) -> int:
        async with database.write() as session:
            case = await retention.find_case(session, args.case_no, args.bank)
            hold = await retention.place_hold(session, case, args.reason, args.by or _os_user(),
                                              SystemClock().now())
            bank, case_no, hold_id = case.bank, case.case_no, hold.id
        print(t("retention.hold.placed", hold_id=hold_id, bank=bank, case_no=case_no))
        return 0

    return _run_db(settings, work)


def cmd_release(settings: Settings, args: argparse.Namespace) -> int:
    from bot.cli import _run_db
    from bot.clock import SystemClock
    from bot.i18n import translator
    from bot.services import retention

    t = translator(settings.default_locale)

    async def work(database: Database) -> int:
        async with database.write() as session:
            case = await retention.find_case(session, args.case_no, args.bank)
            released = await retention.release_hold(session, case, args.reason, args.by or _os_user(),
                                                    SystemClock().now())
            bank, case_no = case.bank, case.case_no
        print(t("retention.hold.released", count=len(released), bank=bank, case_no=case_no))
        return 0

    return _run_db(settings, work)


def cmd_purge(settings: Settings, args: argparse.Namespace) -> int:
    from datetime import date

    from bot.cli import _print_rows, _run_db
    from bot.clock import SystemClock
    from bot.i18n import translator
    from bot.services import retention
    from bot.storage.media import MediaStore

    t = translator(settings.default_locale)
    now = SystemClock().now()
    if args.today:
        try:
            today = date.fromisoformat(args.today.strip())
        except ValueError:
            print(f"fieldbot: {t('retention.error.bad_date', value=args.today)}", file=sys.stderr)
            return 2
    else:
        today = retention.local_today(now, settings.timezone)

    async def work(database: Database) -> tuple[retention.PurgeResult, list[tuple[str, str]]]:
        media = MediaStore.from_settings(settings)
        try:
            result = await retention.purge(database, media, today=today, now=now, dry_run=args.dry_run)
        finally:
            await media.close()
        without_end: list[tuple[str, str]] = []
        if args.json:
            async with database.read() as session:
                without_end = await retention.undated(session)
        return result, without_end

    result, without_end = _run_db(settings, work)
    purged = {p.case_id: p for p in result.purged}
    rows: list[dict[str, Any]] = []
    for item in result.due:
        done = purged.get(item.case_id)
        action = "purged" if done else ("keep" if item.reasons else ("purge" if args.dry_run else "skipped"))
        rows.append({"bank": item.bank, "case_no": item.case_no, "contract_end": item.contract_end.isoformat(),
                     "keep_until": item.keep_until.isoformat(), "action": action, "reasons": list(item.reasons),
                     "rows": done.rows if done else None,
                     "files": done.files if done else None})
    rows += [{"bank": bank, "case_no": case_no, "contract_end": None, "keep_until": None, "action": "never",
              "reasons": ["no_contract_end"], "rows": None, "files": None} for bank, case_no in without_end]

    def line(row: dict[str, Any]) -> str:
        if row["action"] == "keep":
            reasons = "; ".join(t(retention.REASONS[code]) for code in row["reasons"])
            return t("retention.line.kept", bank=row["bank"], case_no=row["case_no"], keep_until=row["keep_until"],
                     reasons=reasons)
        if row["action"] == "purged":
            deleted = sum(1 for f in row["files"] if f["deleted"])
            return t("retention.line.purged", bank=row["bank"], case_no=row["case_no"],
                     contract_end=row["contract_end"], keep_until=row["keep_until"],
                     rows=sum(row["rows"].values()), files=deleted)
        return t("retention.line.would_purge", bank=row["bank"], case_no=row["case_no"],
                 contract_end=row["contract_end"], keep_until=row["keep_until"])

    _print_rows(rows, as_json=args.json, line=line)
    if not args.json:
        kept = len(result.kept)
        if args.dry_run:
            print(t("retention.summary.dry_run", today=today.isoformat(), purge=len(result.due) - kept, kept=kept))
        else:
            print(t("retention.summary.done", today=today.isoformat(), purged=len(result.purged), kept=kept))
        print(t("retention.undated", count=result.undated))
    return 0


def register(sub: Any) -> None:
    """Add this module's commands to the ``fieldbot`` parser's subcommands."""
    hold = sub.add_parser("hold", help="place a legal hold on a case: it is not purged until released")
    hold.add_argument("case_no")
    hold.add_argument("--reason", required=True, help="why the material must be kept (required)")
    hold.add_argument("--bank", help="needed when several banks use the same case number")
    hold.add_argument("--by", help="who places the hold (default: the OS user)")
    hold.set_defaults(func=cmd_hold)

    release = sub.add_parser("release", help="release a case's legal hold(s)")
    release.add_argument("case_no")
    release.add_argument("--reason", required=True, help="why the hold ends (required)")
    release.add_argument("--bank", help="needed when several banks use the same case number")
    release.add_argument("--by", help="who releases the hold (default: the OS user)")
    release.set_defaults(func=cmd_release)

    purge = sub.add_parser("purge", help="purge cases 5 years past their contract end (retention)")
    purge.add_argument("--dry-run", action="store_true", help="list what would go and what is kept; change nothing")
    purge.add_argument("--today", help="purge as if today were this date (YYYY-MM-DD)")
    purge.add_argument("--json", action="store_true")
    purge.set_defaults(func=cmd_purge)

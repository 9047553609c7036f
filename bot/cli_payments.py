"""``fieldbot import-payments``, ``fieldbot reconcile`` and ``fieldbot import --recall``: the bank's files.

Each command imports what it uses when it runs (``fieldbot --help`` stays light).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bot.config import Settings
    from bot.storage.db import Database


def _file_error(t: Any, summary: Any, path: Path) -> int:
    from bot.handlers.intake import FILE_ERRORS

    print(t(FILE_ERRORS.get(summary.error.code, "import.error.unreadable"), filename=path.name)
          + f" ({summary.error.detail})", file=sys.stderr)
    return int(summary.exit_code)


def _write_rejects(t: Any, summary: Any, path: Path) -> None:
    from bot.storage.private import write_private

    rejects = summary.rejects_csv(t)
    if rejects is not None:
        target = path.with_name(f"{path.stem}.rejects.csv")
        write_private(target, rejects)
        print(f"{t('import.rejects_caption', count=summary.rejected)} → {target}")


def cmd_import_payments(settings: Settings, args: argparse.Namespace) -> int:
    from bot.cli import _parse_moment, _run_db
    from bot.clock import SystemClock
    from bot.i18n import translator
    from bot.runtime import Runtime
    from bot.services import payments

    path = Path(args.file)
    if not path.is_file():
        print(f"fieldbot: no such file: {path}", file=sys.stderr)
        return payments.EXIT_NOTHING
    data = path.read_bytes()
    received = _parse_moment(args.received_at, settings) if args.received_at else None
    t = translator(settings.default_locale)

    async def work(database: Database) -> payments.PaymentSummary:
        runtime = Runtime(settings=settings, db=database, clock=SystemClock())
        return await payments.import_payments(
            database, data, path.name, clock=runtime.clock, calendar=runtime.calendar, media=runtime.media,
            backup_dirs=settings.backup_dirs, bank=args.bank, sheet=args.sheet, received_at=received)

    summary = _run_db(settings, work)
    if summary.error is not None:
        return _file_error(t, summary, path)
    print(payments.summary_text(t, summary))
    _write_rejects(t, summary, path)
    return summary.exit_code


def cmd_recall(settings: Settings, args: argparse.Namespace) -> int:
    from bot.cli import _parse_moment, _run_db
    from bot.clock import SystemClock
    from bot.i18n import translator
    from bot.runtime import Runtime
    from bot.services import intake

    path = Path(args.file)
    if not path.is_file():
        print(f"fieldbot: no such file: {path}", file=sys.stderr)
        return intake.EXIT_NOTHING
    data = path.read_bytes()
    received = _parse_moment(args.received_at, settings) if args.received_at else None
    t = translator(settings.default_locale)

    async def work(database: Database) -> intake.RecallSummary:
        runtime = Runtime(settings=settings, db=database, clock=SystemClock())
        return await intake.import_recall(database, data, path.name, clock=runtime.clock, media=runtime.media,
                                          backup_dirs=settings.backup_dirs, bank=args.bank, sheet=args.sheet,
                                          received_at=received)

    summary = _run_db(settings, work)
    if summary.error is not None:
        return _file_error(t, summary, path)
    print(recall_text(t, summary))
    _write_rejects(t, summary, path)
    return summary.exit_code


def recall_text(t: Any, summary: Any) -> str:
    text: str = t("recall.summary", filename=summary.filename, closed=len(summary.closed),
                  already=summary.already_closed, rejected=summary.rejected)
    return text


def cmd_reconcile(settings: Settings, args: argparse.Namespace) -> int:
    from bot.cli import _run_db
    from bot.i18n import translator
    from bot.runtime import calendar_from
    from bot.services import reconciliation

    try:
        month = reconciliation.parse_month(args.month)
    except reconciliation.BadMonth:
        print(f"fieldbot: --month {args.month!r} is not YYYY-MM", file=sys.stderr)
        return 2
    tz = calendar_from(settings).tz
    t = translator(settings.default_locale)

    async def work(database: Database) -> reconciliation.Reconciliation:
        async with database.read() as session:
            return await reconciliation.build(session, args.bank, month, tz=tz)

    recon = _run_db(settings, work)
    out = Path(args.out or f"reconciliation-{args.bank}-{month:%Y-%m}.xlsx")
    out.write_bytes(reconciliation.xlsx_bytes(t, recon, tz))
    print(reconciliation.summary_text(t, recon))
    print(f"→ {out}")
    return 0


def register(sub: Any) -> None:
    """Add this module's commands to the ``fieldbot`` parser's subcommands."""
    pay = sub.add_parser("import-payments", help="import the bank's repayment file (CSV in UTF-8 or GBK, or XLSX)")
    pay.add_argument("file")
    pay.add_argument("--bank", help="the bank, when the file has no bank column")
    pay.add_argument("--sheet", help="the XLSX worksheet (default: the first)")
    pay.add_argument("--received-at", help="when the bank's file was received (ISO time)")
    pay.set_defaults(func=cmd_import_payments)

    rec = sub.add_parser("reconcile", help="the monthly reconciliation with one bank, as XLSX")
    rec.add_argument("--bank", required=True)
    rec.add_argument("--month", required=True, help="YYYY-MM")
    rec.add_argument("--out", help="the XLSX to write (default reconciliation-BANK-YYYY-MM.xlsx)")
    rec.set_defaults(func=cmd_reconcile)

    imp = sub.choices.get("import")  # `fieldbot import FILE --recall`: the same command, a recall file
    if imp is not None:
        imp.add_argument("--recall", action="store_true",
                         help="the file is the bank's recall list: close the listed cases as recalled")
        cases = imp.get_default("func")

        def cmd_import_or_recall(settings: Settings, args: argparse.Namespace) -> int:
            if getattr(args, "recall", False):
                return cmd_recall(settings, args)
            result: int = cases(settings, args)
            return result

        imp.set_defaults(func=cmd_import_or_recall)

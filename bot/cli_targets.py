"""``fieldbot target set|list``: a portfolio's default-rate target, a collector's or team's monthly recovered amount.

    fieldbot target set --portfolio student_loan --default-rate 5
    fieldbot target set --collector 7 --month 2026-12 --recovered 50000
    fieldbot target set --team A --month 2026-12 --recovered 200000
    fieldbot target list

The monthly report shows progress against them (see ``bot/services/targets.py``); setting one again
replaces it, and every change is on the audit log.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bot.config import Settings
    from bot.storage.db import Database
    from bot.storage.models import Target


def _describe(t: Any, row: Target) -> str:
    from decimal import Decimal

    from bot.services import targets

    if row.portfolio is not None and row.default_rate_pct is not None:
        return str(t("target.shown_rate", portfolio=t(targets.PORTFOLIO_NAMES[row.portfolio]),
                     rate=f"{row.default_rate_pct.normalize():f}%"))
    whose = t("report.team_name", team=row.team) if row.team is not None else f"#{row.collector_id}"
    return str(t("target.shown_recovered", whose=whose, month=row.month or "-",
                 amount=t.money(Decimal(row.recovered_fen or 0) / 100)))


def cmd_target_set(settings: Settings, args: argparse.Namespace) -> int:
    from bot.cli import _run_db
    from bot.clock import SystemClock
    from bot.i18n import translator
    from bot.services import targets
    from bot.services.errors import DomainError

    t = translator(settings.default_locale)
    now = SystemClock().now()

    async def work(database: Database) -> str:
        async with database.write() as session:
            if args.portfolio is not None:
                if args.default_rate is None or args.collector is not None or args.team is not None:
                    raise DomainError("target.error.whose")
                rate = targets.parse_amount(args.default_rate, percent=True)
                row = await targets.set_default_rate(session, args.portfolio, rate, now=now)
            else:
                if args.recovered is None or args.month is None:
                    raise DomainError("target.error.whose")
                fen = int(targets.parse_amount(args.recovered) * 100)
                row = await targets.set_recovered(session, month=args.month, amount_fen=fen,
                                                  collector_id=args.collector, team=args.team, now=now)
            return _describe(t, row)

    print(t("target.saved", target=_run_db(settings, work)))
    return 0


def cmd_target_list(settings: Settings, args: argparse.Namespace) -> int:
    from bot.cli import _run_db
    from bot.i18n import translator
    from bot.services import targets

    t = translator(settings.default_locale)

    async def work(database: Database) -> list[str]:
        async with database.read() as session:
            return [_describe(t, row) for row in await targets.all_targets(session)]

    for line in _run_db(settings, work):
        print(line)
    return 0


def register(sub: Any) -> None:
    """Add ``target set`` and ``target list`` to the ``fieldbot`` parser's subcommands."""
    target = sub.add_parser("target", help="targets: a portfolio's default rate, a month's recovered amount")
    target_sub = target.add_subparsers(dest="target_command", required=True, metavar="ACTION")
    put = target_sub.add_parser("set", help="set (or replace) a target")
    put.add_argument("--portfolio", help="credit_card, student_loan or receivables (with --default-rate)")
    put.add_argument("--default-rate", help="the portfolio's highest acceptable default rate, in percent")
    put.add_argument("--collector", type=int, help="a collector's staff id (with --month and --recovered)")
    put.add_argument("--team", help="a team (with --month and --recovered)")
    put.add_argument("--month", help="YYYY-MM")
    put.add_argument("--recovered", help="the amount to recover in the month, in yuan")
    put.set_defaults(func=cmd_target_set)
    target_sub.add_parser("list", help="list the targets").set_defaults(func=cmd_target_list)

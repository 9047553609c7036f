"""``fieldbot bank add|list`` and ``fieldbot letter add``: the banks' agreements and registered letters.

Each command imports what it uses when it runs (``fieldbot --help`` stays light).
"""

from __future__ import annotations

import argparse
import json
from datetime import date
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bot.config import Settings
    from bot.storage.db import Database
    from bot.storage.models import Bank, Letter


def _day(text: str) -> date:
    from bot.services.parsing import parse_date

    day = parse_date(text)
    if day is None:
        raise argparse.ArgumentTypeError(f"not a date: {text!r} (write it as 2026-12-04)")
    return day


def cmd_bank_add(settings: Settings, args: argparse.Namespace) -> int:
    from bot.cli import _run_db
    from bot.clock import SystemClock
    from bot.services import banks

    async def work(database: Database) -> tuple[Bank, bool]:
        async with database.write() as session:
            return await banks.add_bank(session, name=args.name, agreement_no=args.agreement, start=args.start,
                                        end=args.end, routine_contact=args.routine_contact,
                                        emergency_contact=args.emergency_contact, now=SystemClock().now())

    bank, created = _run_db(settings, work)
    what = "registered" if created else "agreement replaced"
    print(f"{bank.name}: {what}, agreement {bank.agreement_no} {bank.agreement_start} – {bank.agreement_end}")
    return 0


def cmd_bank_list(settings: Settings, args: argparse.Namespace) -> int:
    from bot.cli import _run_db
    from bot.services import banks

    async def work(database: Database) -> list[Bank]:
        async with database.read() as session:
            return await banks.list_banks(session)

    found = _run_db(settings, work)
    if args.json:
        print(json.dumps([banks.describe(b) for b in found], ensure_ascii=False, indent=2))
        return 0
    for b in found:
        print(f"{b.name}\tagreement {b.agreement_no}\t{b.agreement_start} – {b.agreement_end}\t"
              f"routine: {b.routine_contact}\temergency: {b.emergency_contact}")
    if not found:
        print("no bank registered (fieldbot bank add)")
    return 0


def cmd_letter_add(settings: Settings, args: argparse.Namespace) -> int:
    from bot.cli import _run_db
    from bot.clock import SystemClock
    from bot.runtime import calendar_from
    from bot.services import banks, letters

    calendar = calendar_from(settings)

    async def work(database: Database) -> Letter:
        async with database.write() as session:
            case = await banks.find_case(session, args.case_no)
            return await letters.record(session, None, case.id, sent_on=args.sent, tracking=args.tracking,
                                        now=SystemClock().now(), calendar=calendar)

    letter = _run_db(settings, work)
    print(f"{args.case_no}: letter {letter.tracking_no} sent {letter.sent_on} recorded; "
          "mark its delivery in the bot (/letter CASE_NO)")
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    bank = sub.add_parser("bank", help="the banks, their agreements and contacts")
    bank_sub = bank.add_subparsers(dest="bank_command", required=True, metavar="ACTION")
    add = bank_sub.add_parser("add", help="register a bank and its agreement (again: replace the agreement)")
    add.add_argument("--name", required=True, help="the bank's name as its case files spell it")
    add.add_argument("--agreement", required=True, help="the agreement's number")
    add.add_argument("--start", required=True, type=_day, help="the agreement's first day (2026-01-01)")
    add.add_argument("--end", required=True, type=_day, help="the agreement's last day (2028-12-31)")
    add.add_argument("--routine-contact", required=True, help="whom to contact day to day")
    add.add_argument("--emergency-contact", required=True, help="whom to call or write in an emergency")
    add.set_defaults(func=cmd_bank_add)
    lst = bank_sub.add_parser("list", help="list the banks with their agreements and contacts")
    lst.add_argument("--json", action="store_true", help="as JSON")
    lst.set_defaults(func=cmd_bank_list)

    letter = sub.add_parser("letter", help="final notices by registered letter")
    letter_sub = letter.add_subparsers(dest="letter_command", required=True, metavar="ACTION")
    ladd = letter_sub.add_parser("add", help="record a registered letter sent for a case")
    ladd.add_argument("case_no")
    ladd.add_argument("--sent", required=True, type=_day, help="the day it was posted (2026-12-04)")
    ladd.add_argument("--tracking", required=True, help="its tracking number")
    ladd.set_defaults(func=cmd_letter_add)

"""``fieldbot staff import FILE``: register many people at once, each with an invite code.

The file is the admin office's staff list (CSV or XLSX, Chinese or English headers; see
``bot/services/staff_office.py``). Each registered person's invite code and link is printed; a row
naming someone already registered (same name and team) is reported and not added again; bad rows are
rejected with their row number and the reason (exit status 1), the good ones are registered.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bot.config import Settings
    from bot.storage.db import Database


def cmd_staff_import(settings: Settings, args: argparse.Namespace) -> int:
    from bot.cli import _run_db
    from bot.clock import SystemClock
    from bot.i18n import translator
    from bot.services import invites, staff_office
    from bot.services.errors import DomainError

    path = Path(args.file)
    if not path.is_file():
        print(f"fieldbot: no such file: {path}", file=sys.stderr)
        return 1
    data = path.read_bytes()
    t = translator(settings.default_locale)

    async def work(database: Database) -> staff_office.ImportResult:
        async with database.write() as session:
            return await staff_office.import_staff(session, None, data, path.name, now=SystemClock().now())

    try:
        result = _run_db(settings, work)
    except DomainError as error:
        print(f"fieldbot: {t(error.key, **error.params)}", file=sys.stderr)
        return 1
    for person in result.registered:
        print(t("staff_import.registered", row=person.row, id=person.staff_id, name=person.name,
                role=t(f"role.{person.role.value}"), team=person.team or "-", code=person.code,
                link=invites.deep_link(args.bot_username, person.code)))
    for known in result.skipped:
        print(t("staff_import.skipped", row=known.row, id=known.staff_id, name=known.name, team=known.team or "-"))
    for reject in result.rejected:
        print(t("staff_import.rejected", row=reject.row, reason=t(reject.key, **reject.params)), file=sys.stderr)
    print(t("staff_import.summary", registered=len(result.registered), skipped=len(result.skipped),
            rejected=len(result.rejected)))
    return 1 if result.rejected else 0


def register(sub: Any) -> None:
    """Add this module's commands to the ``fieldbot`` parser's subcommands: ``staff import``."""
    staff = sub.choices["staff"]
    staff_sub = next(a for a in staff._actions if isinstance(a, argparse._SubParsersAction))
    imp = staff_sub.add_parser("import", help="register many people from a CSV or XLSX staff list, each with an "
                                              "invite code (same name and team: reported, not added twice)")
    imp.add_argument("file")
    imp.add_argument("--bot-username", default="fieldbot_bot", help="the bot's @username, for the links")
    imp.set_defaults(func=cmd_staff_import)

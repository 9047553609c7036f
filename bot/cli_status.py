"""``fieldbot status [--json] [--check]``: the machine's health, for people, scripts and a cron job.

``--check`` prints one line and exits 1 when no process has been seen alive for two minutes, the
last successful backup is more than 26 hours old, or the audit log no longer holds what its checkpoint
file recorded (0 otherwise): run it from cron on another machine, so a supervisor hears of it while the
bot itself is down. The plain and ``--json`` forms also say when each sweep last ran. The database is
only read, never migrated.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bot.config import Settings
    from bot.services.health import Status
    from bot.storage.db import Database

EXIT_PROBLEM = 1


def register(sub: Any) -> None:
    """Add this module's commands to the ``fieldbot`` parser's subcommands."""
    parser = sub.add_parser("status", help="the bot's health: heartbeat, sweeps, backups, outbox, disk, audit, "
                                           "outages")
    parser.add_argument("--json", action="store_true", help="everything as JSON, for scripts")
    parser.add_argument("--check", action="store_true",
                        help="one line; exit 1 if the bot is down, the last good backup is over 26 hours old, "
                             "or the audit log lost what its checkpoint recorded")
    parser.set_defaults(func=cmd_status)


def cmd_status(settings: Settings, args: argparse.Namespace) -> int:
    from zoneinfo import ZoneInfo

    from sqlalchemy.exc import SQLAlchemyError

    from bot.cli import _run_db
    from bot.clock import SystemClock
    from bot.i18n import translator
    from bot.services import health

    t = translator(settings.default_locale)
    tz = ZoneInfo(settings.timezone)

    async def work(database: Database) -> Status:
        async with database.read() as session:
            return await health.status(session, settings, SystemClock().now())

    missing = health.missing_sqlite_file(settings.database_url)
    if missing is not None:  # opening it would create an empty database
        print(t("status.error.no_database", path=missing), file=sys.stdout if args.check else sys.stderr)
        return EXIT_PROBLEM
    try:
        state = _run_db(settings, work, upgrade=False)
    except (SQLAlchemyError, OSError) as exc:
        reason = str(getattr(exc, "orig", None) or exc).splitlines()[0] if str(exc) else type(exc).__name__
        print(t("status.error.database", error=reason), file=sys.stdout if args.check else sys.stderr)
        return EXIT_PROBLEM
    if args.check:
        print(health.problem_line(t, state, tz))
        return EXIT_PROBLEM if health.problems(state) else 0
    if args.json:
        print(json.dumps(state.as_json(), ensure_ascii=False, indent=1))
        return 0
    for line in health.lines(t, state, tz):
        print(line)
    return 0

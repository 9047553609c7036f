"""The ``fieldbot`` command: run the bot, manage the database and staff, verify the audit log, demo.

Each command imports what it uses when it runs: ``fieldbot --help`` loads no settings, database or
Telegram library, and ``fieldbot run`` none of the report, import or demo code (``python -X importtime``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
from collections.abc import Awaitable, Callable, Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from bot.config import Settings
    from bot.storage.db import Database

log = logging.getLogger("fieldbot")

EXIT_USAGE = 2
EXIT_START = 1  # the configuration reads fine, but the bot could not start with it
T = TypeVar("T")


def _setup_logging(settings: Settings) -> None:
    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("alembic").setLevel(logging.WARNING)


class _Roles:
    """The staff roles as ``--role`` choices, read from the models only when a role is checked or shown."""

    def _values(self) -> list[str]:
        from bot.storage.models import Role

        return [role.value for role in Role]

    def __contains__(self, value: object) -> bool:
        return value in self._values()

    def __iter__(self) -> Iterator[str]:
        return iter(self._values())


def _run_db(settings: Settings, work: Callable[[Database], Awaitable[T]], *, upgrade: bool = True) -> T:
    """Open the database (migrated to the newest schema), run ``work``, close it."""

    async def main() -> T:
        from bot.runtime import load_keys
        from bot.storage import migrate
        from bot.storage.db import Database

        load_keys(settings)
        database = Database(settings.database_url)
        try:
            if upgrade:
                await migrate.ensure_current(database)
            return await work(database)
        finally:
            await database.dispose()

    return asyncio.run(main())


def _print_rows(rows: list[dict[str, Any]], *, as_json: bool, line: Callable[[dict[str, Any]], str]) -> None:
    """A listing for scripts (``--json``) or for people (one formatted line a row)."""
    if as_json:
        print(json.dumps(rows, ensure_ascii=False, indent=1))
        return
    for row in rows:
        print(line(row))


def _api_root(settings: Settings) -> str:
    """The Bot API server as people write it (without the ``/bot`` the token is appended to)."""
    return settings.api_base_url.removesuffix("/").removesuffix("/bot")


def describe_start_failure(exc: BaseException, settings: Settings) -> str:
    """One line: why the bot could not start, and which setting to check. Never shows the token."""
    from sqlalchemy.exc import SQLAlchemyError
    from telegram.error import InvalidToken, NetworkError, TelegramError, TimedOut

    api = _api_root(settings)
    via = f" through the proxy {settings.proxy_for_display}" if settings.proxy else ""
    if isinstance(exc, InvalidToken):
        reason = str(exc.__cause__ or exc)  # Bot.initialize wraps the server's answer in a message with the token
        hint = " (and FIELDBOT_API_BASE_URL, which must end in /bot)" if "not found" in reason.lower() else ""
        line = f"the Bot API at {api} rejected the bot token ({reason}): check FIELDBOT_TOKEN{hint}"
    elif isinstance(exc, NetworkError):
        what = "timed out" if isinstance(exc, TimedOut) else exc.message
        check = ("FIELDBOT_PROXY and FIELDBOT_API_BASE_URL" if settings.proxy else
                 "FIELDBOT_API_BASE_URL, or set FIELDBOT_PROXY if this server reaches Telegram only through a proxy")
        line = f"cannot reach the Bot API at {api}{via} ({what}): check {check}"
    elif isinstance(exc, TelegramError):
        line = (f"the Bot API at {api} refused to start the bot ({exc.message}): "
                "check FIELDBOT_TOKEN and FIELDBOT_API_BASE_URL")
    elif isinstance(exc, SQLAlchemyError | OSError):
        first = str(getattr(exc, "orig", None) or exc).splitlines()[0] if str(exc) else type(exc).__name__
        line = f"cannot open the database {settings.database_url.split('@')[-1]} ({first}): check FIELDBOT_DATABASE_URL"
    else:
        line = f"could not start: {type(exc).__name__}: {exc}"
    token = settings.token.get_secret_value().strip() if settings.token is not None else ""
    return line.replace(token, "<FIELDBOT_TOKEN>") if token else line


def _serve(settings: Settings, application: Any, mode: str, run: Callable[[], None]) -> int:
    """Connect to the Bot API first (one clear line if that fails), then hand over to PTB's run loop.

    PTB's ``run_polling``/``run_webhook`` would log the failed connection with a traceback and go on
    to shut down what never started; initialising here, on the loop PTB then runs on, avoids both
    (PTB skips an application that is already initialised).
    """
    from sqlalchemy.exc import SQLAlchemyError
    from telegram.error import TelegramError

    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        loop.run_until_complete(application.initialize())
    except TelegramError as exc:
        print(f"fieldbot: {describe_start_failure(exc, settings)}", file=sys.stderr)
        loop.close()
        return EXIT_START
    log.info("fieldbot starting (%s) as @%s, database %s%s", mode, application.bot.username,
             settings.database_url.split("@")[-1], f", proxy {settings.proxy_for_display}" if settings.proxy else "")
    try:
        run()
    except (TelegramError, SQLAlchemyError, OSError) as exc:  # e.g. the database, opened in post_init
        print(f"fieldbot: {describe_start_failure(exc, settings)}", file=sys.stderr)
        return EXIT_START
    return 0


def cmd_run(settings: Settings, args: argparse.Namespace) -> int:
    from telegram import Update

    from bot.app import build_application

    settings.require_token()
    application = build_application(settings)
    return _serve(settings, application, "polling",
                  lambda: application.run_polling(allowed_updates=Update.ALL_TYPES))


def cmd_webhook(settings: Settings, args: argparse.Namespace) -> int:
    from telegram import Update

    from bot.app import build_application

    settings.require_token()
    application = build_application(settings)
    return _serve(settings, application, "webhook", lambda: application.run_webhook(
        listen=args.listen, port=args.port, url_path=args.path, webhook_url=args.url, secret_token=args.secret,
        allowed_updates=Update.ALL_TYPES))


def cmd_db_upgrade(settings: Settings, args: argparse.Namespace) -> int:
    async def work(database: Database) -> int:
        print(f"database is up to date: {settings.database_url.split('@')[-1]}")
        return 0

    return _run_db(settings, work)


def cmd_staff_add(settings: Settings, args: argparse.Namespace) -> int:
    from bot.clock import SystemClock
    from bot.services import invites, staff
    from bot.storage.models import Role

    async def work(database: Database) -> int:
        now = SystemClock().now()
        async with database.write() as session:
            member = await staff.add_staff(session, name=args.name, role=Role(args.role), team=args.team,
                                           supervisor_id=args.supervisor, phone=args.phone, now=now,
                                           branch=args.branch)
            code = await invites.create_invite(session, member.id, now=now)
        print(f"staff #{member.id} {member.name} ({member.role}) added")
        print(f"invite code (single use, valid 7 days): {code}")
        print(f"link: {invites.deep_link(args.bot_username, code)}")
        return 0

    return _run_db(settings, work)


def cmd_staff_invite(settings: Settings, args: argparse.Namespace) -> int:
    from bot.clock import SystemClock
    from bot.services import invites

    async def work(database: Database) -> int:
        async with database.write() as session:
            code = await invites.create_invite(session, args.id, now=SystemClock().now())
        print(f"invite code (single use, valid 7 days): {code}")
        print(f"link: {invites.deep_link(args.bot_username, code)}")
        return 0

    return _run_db(settings, work)


def cmd_staff_list(settings: Settings, args: argparse.Namespace) -> int:
    from bot.services import staff

    async def work(database: Database) -> int:
        async with database.read() as session:
            members = await staff.list_staff(session)
        rows = [
            {"id": m.id, "name": m.name, "role": m.role, "team": m.team, "supervisor_id": m.supervisor_id,
             "active": m.active, "registered": m.telegram_user_id is not None, "locale": m.locale}
            for m in members
        ]
        _print_rows(rows, as_json=args.json, line=lambda r: (
            f"#{r['id']:<5} {r['name']:<12} {r['role']:<16} team={r['team'] or '-':<8} "
            f"{'active' if r['active'] else 'inactive'} {'registered' if r['registered'] else 'invited'}"))
        return 0

    return _run_db(settings, work)


def cmd_staff_deactivate(settings: Settings, args: argparse.Namespace) -> int:
    from bot.clock import SystemClock
    from bot.services import staff

    async def work(database: Database) -> int:
        async with database.write() as session:
            member = await staff.deactivate(session, args.id, now=SystemClock().now())
        print(f"staff #{member.id} {member.name} deactivated")
        return 0

    return _run_db(settings, work)


def cmd_audit_verify(settings: Settings, args: argparse.Namespace) -> int:
    from bot.i18n import translator
    from bot.services import audit, audit_checkpoint

    async def work(database: Database) -> int:
        heads = audit_checkpoint.known_heads(settings, extra_dirs=tuple(args.against or ()))
        async with database.read() as session:
            result = await audit.verify(session, checkpoints=heads)
        print(result.describe())
        untrusted = audit_checkpoint.distrusted(settings)
        if untrusted is not None:
            print(translator(settings.default_locale)("audit.checkpoint_untrusted", reason=untrusted))
        return 0 if result.ok and untrusted is None else 1

    return _run_db(settings, work, upgrade=False)


def _parse_moment(text: str, settings: Settings) -> datetime:
    """An ISO time; without an offset it is read in the configured time zone."""
    from zoneinfo import ZoneInfo

    from bot.config import ConfigError

    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ConfigError(f"--received-at: {text!r} is not an ISO time such as 2026-11-03T09:30") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=ZoneInfo(settings.timezone))


def cmd_import(settings: Settings, args: argparse.Namespace) -> int:
    from bot.clock import SystemClock
    from bot.handlers.intake import FILE_ERRORS
    from bot.i18n import translator
    from bot.runtime import Runtime
    from bot.services import intake
    from bot.storage.private import write_private

    path = Path(args.file)
    if not path.is_file():
        print(f"fieldbot: no such file: {path}", file=sys.stderr)
        return intake.EXIT_NOTHING
    data = path.read_bytes()
    received = _parse_moment(args.received_at, settings) if args.received_at else None
    t = translator(settings.default_locale)

    async def progress(done: int, total: int) -> None:
        print(t("import.progress", filename=path.name, done=done, total=total), file=sys.stderr)

    async def work(database: Database) -> intake.ImportSummary:
        runtime = Runtime(settings=settings, db=database, clock=SystemClock())
        return await intake.import_file(
            database, data, path.name, clock=runtime.clock, calendar=runtime.calendar, media=runtime.media,
            backup_dirs=settings.backup_dirs, geocoder=runtime.geocoder, bank=args.bank, team=args.team,
            sheet=args.sheet, received_at=received, batch_size=settings.import_batch_size, progress=progress,
        )

    summary = _run_db(settings, work)
    if summary.error is not None:
        print(t(FILE_ERRORS.get(summary.error.code, "import.error.unreadable"), filename=path.name)
              + f" ({summary.error.detail})", file=sys.stderr)
        return summary.exit_code
    print(t("import.summary", filename=path.name, imported=summary.imported, updated=summary.updated,
            unchanged=summary.unchanged, rejected=summary.rejected))
    if summary.late:
        print(t("import.late", minutes=summary.minutes_taken))
    rejects = summary.rejects_csv(t)
    if rejects is not None:
        target = path.with_name(f"{path.stem}.rejects.csv")
        write_private(target, rejects)  # full names and phones: owner-only
        print(f"{t('import.rejects_caption', count=summary.rejected)} → {target}")
    return summary.exit_code


def cmd_assign(settings: Settings, args: argparse.Namespace) -> int:
    from bot.clock import SystemClock
    from bot.runtime import calendar_from
    from bot.services import assignment

    async def work(database: Database) -> int:
        async with database.write() as session:
            case = await assignment.find_case(session, args.case_no, args.bank)
            collector = await assignment.find_staff(session, args.to)
            moved = await assignment.assign_cases(session, [case.id], collector.id, actor=None, reason=args.reason,
                                                  now=SystemClock().now(), calendar=calendar_from(settings))
        state = "assigned to" if moved else "already with"
        print(f"{case.bank} {case.case_no} {state} #{collector.id} {collector.name}")
        return 0

    return _run_db(settings, work)


def cmd_cases(settings: Settings, args: argparse.Namespace) -> int:
    from bot.services.cases import list_cases

    async def work(database: Database) -> int:
        async with database.read() as session:
            rows = [r.as_dict() for r in await list_cases(session, status=args.status, assignee_id=args.assignee)]
        _print_rows(rows, as_json=args.json, line=lambda r: (
            f"{r['bank']:<10} {r['case_no']:<14} {r['debtor_name']:<8} {r['amount_due']:>12} "
            f"{r['status']:<9} {r['assignee'] or '-'}"))
        return 0

    return _run_db(settings, work)


def cmd_report(settings: Settings, args: argparse.Namespace) -> int:
    from bot.clock import SystemClock
    from bot.i18n import translator
    from bot.runtime import calendar_from
    from bot.services import reports

    calendar = calendar_from(settings)
    kind = reports.WEEKLY if args.kind == "weekly" else reports.MONTHLY
    today = _parse_moment(args.today, settings).date() if args.today else calendar.working_date(SystemClock().now())
    period = reports.last_period(kind, today)
    t = translator(settings.default_locale)

    async def work(database: Database) -> reports.Report:
        async with database.read() as session:
            return await reports.build(session, period, calendar=calendar, team=args.team)

    built = _run_db(settings, work)
    print(reports.report_text(t, built))
    if args.out:
        Path(args.out).write_bytes(reports.xlsx_bytes(t, built, calendar.tz))
        print(f"→ {args.out}")
    if args.chart:
        Path(args.chart).write_bytes(reports.chart_png(built))
        print(f"→ {args.chart}")
    return 0


def cmd_handover_start(settings: Settings, args: argparse.Namespace) -> int:
    from bot.clock import SystemClock
    from bot.runtime import calendar_from
    from bot.services import assignment, handover

    calendar = calendar_from(settings)
    last_day = _parse_moment(args.last_day, settings).date() if args.last_day else None

    async def work(database: Database) -> int:
        async with database.write() as session:
            departing = await assignment.find_staff(session, args.from_staff)
            successors = [(await assignment.find_staff(session, ref)).id for ref in args.to.split(",") if ref.strip()]
            started = await handover.start(session, actor=None, from_id=departing.id, successor_ids=successors,
                                           now=SystemClock().now(), calendar=calendar, last_day=last_day)
            count = len(await handover.items(session, started.id))
        print(f"handover #{started.id} of {departing.name} started: {count} open cases, "
              f"{len(successors)} successor(s)")
        return 0

    return _run_db(settings, work)


def cmd_check(settings: Settings, args: argparse.Namespace) -> int:
    from bot.services import handover

    async def work(database: Database) -> list[tuple[str, str, str]]:
        async with database.read() as session:
            return [(c.bank, c.case_no, c.status) for c in await handover.orphans(session)]

    found = _run_db(settings, work)
    for bank, case_no, status in found:
        print(f"orphan: {bank} {case_no} ({status}) has no active assignee")
    print(f"{len(found)} open case(s) without an active assignee")
    return 1 if found else 0


def cmd_demo(settings: Settings, args: argparse.Namespace) -> int:
    from bot.demo import run_demo

    logging.getLogger().setLevel(logging.ERROR)  # the transcript is the output
    return asyncio.run(run_demo(lang=args.lang, out=sys.stdout))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fieldbot", description="Telegram assistant for field debt collectors.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    sub.add_parser("run", help="run the bot (long polling); migrates the database first").set_defaults(func=cmd_run)

    hook = sub.add_parser("webhook", help="run the bot behind a webhook")
    hook.add_argument("--url", required=True, help="public HTTPS URL Telegram should call")
    hook.add_argument("--listen", default="127.0.0.1")
    hook.add_argument("--port", type=int, default=8443)
    hook.add_argument("--path", default="telegram")
    hook.add_argument("--secret", default=None, help="secret token Telegram sends back in a header")
    hook.set_defaults(func=cmd_webhook)

    db = sub.add_parser("db", help="database maintenance")
    db_sub = db.add_subparsers(dest="db_command", required=True, metavar="ACTION")
    db_sub.add_parser("upgrade", help="create or migrate the database").set_defaults(func=cmd_db_upgrade)
    from bot import cli_dbcopy

    cli_dbcopy.register(db_sub)

    staff = sub.add_parser("staff", help="register and manage staff")
    staff_sub = staff.add_subparsers(dest="staff_command", required=True, metavar="ACTION")
    add = staff_sub.add_parser("add", help="register a person and print their invite code and link")
    add.add_argument("--name", required=True)
    add.add_argument("--role", required=True, choices=_Roles(), metavar="ROLE", help="one of: %(choices)s")
    add.add_argument("--team")
    add.add_argument("--branch", help="their branch (分公司); a team's branch is its supervisor's")
    add.add_argument("--supervisor", type=int, help="staff id of their supervisor")
    add.add_argument("--phone")
    add.add_argument("--bot-username", default="fieldbot_bot", help="the bot's @username, for the link")
    add.set_defaults(func=cmd_staff_add)
    invite = staff_sub.add_parser("invite", help="issue a fresh invite code (the old ones stop working)")
    invite.add_argument("id", type=int)
    invite.add_argument("--bot-username", default="fieldbot_bot")
    invite.set_defaults(func=cmd_staff_invite)
    lst = staff_sub.add_parser("list", help="list staff")
    lst.add_argument("--json", action="store_true")
    lst.set_defaults(func=cmd_staff_list)
    deact = staff_sub.add_parser("deactivate", help="deactivate a person: they can no longer use the bot")
    deact.add_argument("id", type=int)
    deact.set_defaults(func=cmd_staff_deactivate)

    audit = sub.add_parser("audit", help="audit log")
    audit_sub = audit.add_subparsers(dest="audit_command", required=True, metavar="ACTION")
    verify = audit_sub.add_parser("verify", help="recompute the keyed chain and compare its head with the last "
                                  "checkpoint; names the first bad or missing entry")
    verify.add_argument("--against", type=Path, action="append", metavar="DIR",
                        help="also a backup folder whose newest manifest's head to compare with (repeatable)")
    verify.set_defaults(func=cmd_audit_verify)

    imp = sub.add_parser("import", help="import a bank case file (CSV in UTF-8 or GBK, or XLSX)")
    imp.add_argument("file")
    imp.add_argument("--bank", help="the bank, for files without a bank column")
    imp.add_argument("--team", help="the team whose supervisor assigns these cases")
    imp.add_argument("--sheet", help="the XLSX sheet (default: the first)")
    imp.add_argument("--received-at", help="when the bank's file arrived (ISO time; default: now)")
    imp.set_defaults(func=cmd_import)

    asg = sub.add_parser("assign", help="assign a case to a collector")
    asg.add_argument("case_no")
    asg.add_argument("--to", required=True, help="staff id or unique name")
    asg.add_argument("--bank", help="needed when several banks use the same case number")
    asg.add_argument("--reason", default="shell")
    asg.set_defaults(func=cmd_assign)

    cases = sub.add_parser("cases", help="list cases")
    cases.add_argument("--status")
    cases.add_argument("--assignee", type=int, help="current assignee's staff id")
    cases.add_argument("--json", action="store_true")
    cases.set_defaults(func=cmd_cases)

    rep = sub.add_parser("report", help="the last week's or month's report, as text and XLSX")
    rep.add_argument("kind", choices=["weekly", "monthly"])
    rep.add_argument("--team", help="one team (default: everyone)")
    rep.add_argument("--out", help="write the XLSX export here")
    rep.add_argument("--chart", help="write the PNG chart here")
    rep.add_argument("--today", help="report as if today were this date (ISO), for re-running old periods")
    rep.set_defaults(func=cmd_report)

    ho = sub.add_parser("handover", help="hand a departing collector's cases over")
    ho_sub = ho.add_subparsers(dest="handover_command", required=True, metavar="ACTION")
    ho_start = ho_sub.add_parser("start", help="start a departure: the checklist goes to the collector")
    ho_start.add_argument("--from", dest="from_staff", required=True, help="the departing collector (id or name)")
    ho_start.add_argument("--to", required=True, help="successors, comma-separated (ids or names)")
    ho_start.add_argument("--last-day", help="the departing collector's last day (ISO date)")
    ho_start.set_defaults(func=cmd_handover_start)

    sub.add_parser("check", help="list open cases without an active assignee (exit 1 if any)").set_defaults(
        func=cmd_check)

    demo = sub.add_parser("demo", help="show the whole product in one run, without a token")
    demo.add_argument("--lang", default="zh_CN", choices=["zh_CN", "en"])
    demo.set_defaults(func=cmd_demo)
    from bot.web import demo as console_demo  # fieldbot console-demo: the supervisor's console on demo data

    console_demo.register(sub)

    # custody of the record and the machine's health: commands kept in modules of their own
    from bot import (
        cli_backup,
        cli_evidence,
        cli_payments,
        cli_people,
        cli_procedure,
        cli_retention,
        cli_status,
        cli_targets,
        cli_worker,
    )

    for module in (cli_backup, cli_retention, cli_status, cli_payments, cli_people, cli_evidence, cli_worker,
                   cli_procedure, cli_targets):
        module.register(sub)
    from bot import cli_media

    cli_media.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    os.umask(0o077)  # whatever the bot or a library writes is the bot user's alone (bot/storage/private.py)
    from bot.config import ConfigError, load_settings
    from bot.runtime import calendar_from
    from bot.services.calendar import CalendarConfigError
    from bot.services.errors import DomainError

    try:
        settings = load_settings()
        calendar_from(settings)  # a broken company calendar file is a configuration error too
    except (ConfigError, CalendarConfigError) as exc:
        print(f"fieldbot: configuration error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    try:
        _setup_logging(settings)
        result: int = args.func(settings, args)
        return result
    except ConfigError as exc:
        print(f"fieldbot: configuration error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except DomainError as exc:
        from bot.i18n import translator

        print(f"fieldbot: {translator(settings.default_locale)(exc.key, **exc.params)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130




if __name__ == "__main__":
    sys.exit(main())

"""An admin sends the bank's file as a document: progress while it goes in, a summary, the rejects.

Which file it is (``intake.kind_of_upload``): a caption with 召回 / recall makes it a recall list; a
header with a case number, an amount paid and a date paid and no address makes it a repayment file;
anything else is a case file. The rest of the caption names the bank, and the team whose supervisor
assigns the cases (a team's name, or ``组:名`` / ``team:NAME``). A case file that names no team, while
several teams have a supervisor, waits (sealed, where the import keeps it anyway) for the admin to pick
the team with a button; the choice survives a restart in the flow state.
"""

from __future__ import annotations

import logging
from datetime import datetime
from pathlib import PurePath

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Message, Update
from telegram.error import TelegramError
from telegram.ext import BaseHandler, CallbackQueryHandler, CommandHandler, MessageHandler, filters

from bot.buttons import ImportTeam
from bot.context import FieldbotContext
from bot.handlers.common import ignore_replays, pressed, refuse, say, serves, write_once
from bot.handlers.routing import RoleIs
from bot.i18n import N_, all_translations
from bot.services import flows, inbox, intake, payments, policy
from bot.services.errors import AlreadyDone, DomainError
from bot.services.policy import Action
from bot.steps import IntakeStep

log = logging.getLogger(__name__)

BOT_API_DOWNLOAD_LIMIT = 20 * 1024 * 1024
TEAMS_OFFERED = 60  # buttons of teams to choose from (Telegram allows 100 in one keyboard)

FILE_ERRORS = {
    "unreadable": N_("import.error.unreadable"),
    "unknown_format": N_("import.error.unknown_format"),
    "no_header": N_("import.error.no_header"),
    "unknown_sheet": N_("import.error.unknown_sheet"),
    "empty": N_("import.error.empty"),
}


async def _edit(message: Message, text: str) -> None:
    try:
        await message.edit_text(text)
    except TelegramError as exc:  # "message is not modified" and the like must not stop an import
        log.info("progress edit skipped: %s", exc)


@serves(Action.CASE_IMPORT)
async def on_case_file(update: Update, context: FieldbotContext) -> None:
    message = update.effective_message
    staff = context.staff
    if message is None or message.document is None or staff is None:
        return
    runtime, t, document = context.runtime, context.t, message.document
    filename = document.file_name or "cases"
    if (document.file_size or 0) > BOT_API_DOWNLOAD_LIMIT and not runtime.settings.local_mode:
        log.info("case file %s too big to download: %s bytes", filename, document.file_size)
        await say(update, context, "import.too_big", mb=round((document.file_size or 0) / 1024 / 1024, 1))
        return
    try:
        async with runtime.db.write() as session:
            await inbox.claim(session, inbox.update_key(update.update_id), now=runtime.clock.now())
    except AlreadyDone:
        log.info("case file update %s delivered again: ignored", update.update_id)
        return
    progress = await message.reply_text(t("import.received", filename=filename))
    data = bytes(await (await document.get_file()).download_as_bytearray())
    kind, words = intake.kind_of_upload(data, filename, message.caption)
    if kind != "cases":
        await _other_file(message, progress, context, kind, data, filename, words)
        return
    async with runtime.db.read() as session:
        teams = await intake.upload_teams(session, staff)
    parts = intake.split_caption(words, teams)
    team = parts.team
    if team is None and parts.unknown_team is None and len(teams) == 1:
        team = teams[0]  # one team: its supervisor assigns the cases
    if team is None and (parts.unknown_team is not None or len(teams) > 1):
        problem = intake.file_problem(data, filename)
        if problem is not None:  # no question for a file that cannot be imported anyway
            log.warning("case file %s refused: %s (%s)", filename, problem.code, problem.detail)
            await _edit(progress, t(FILE_ERRORS.get(problem.code, "import.error.unreadable"), filename=filename))
            return
        await _ask_team(context, progress, data, filename, parts, teams, message.date)
        return
    await _import_cases(context, progress, data, filename, bank=parts.bank, team=team, received_at=message.date)


async def _ask_team(context: FieldbotContext, progress: Message, data: bytes, filename: str,
                    parts: intake.CaptionParts, teams: list[str], received_at: datetime) -> None:
    """Keep the file and ask which team's supervisor assigns its cases (the answer is :func:`team_pressed`)."""
    runtime, t, staff = context.runtime, context.t, context.staff
    assert staff is not None
    stored = await intake.park_upload(runtime.media, data, filename)
    offered = teams[:TEAMS_OFFERED]
    async with runtime.db.write() as session:
        await flows.enter(session, staff.id, IntakeStep.TEAM,
                          {"file": stored, "filename": filename, "bank": parts.bank,
                           "received_at": received_at.isoformat(), "teams": offered}, now=runtime.clock.now())
    lines = [t("import.unknown_team", team=parts.unknown_team)] if parts.unknown_team else []
    lines.append(t("import.ask_team", filename=filename))
    buttons = [[InlineKeyboardButton(team, callback_data=ImportTeam(n).pack())] for n, team in enumerate(offered, 1)]
    buttons.append([InlineKeyboardButton(t("import.no_team"), callback_data=ImportTeam(0).pack())])
    try:
        await progress.edit_text("\n".join(lines), reply_markup=InlineKeyboardMarkup(buttons))
    except TelegramError as exc:
        log.warning("could not ask for the team of %s: %s", filename, exc)


@serves(Action.CASE_IMPORT)
@ignore_replays
async def team_pressed(update: Update, context: FieldbotContext) -> None:
    """The admin picked the team of the waiting file: take it (once, also for a double tap), then import."""
    query, staff, runtime, t = update.callback_query, context.staff, context.runtime, context.t
    assert query is not None and staff is not None
    choice = pressed(update, ImportTeam).choice
    try:
        async with write_once(update, context) as session:
            waiting = await flows.current(session, staff.id)  # read afresh under the write lock
            if waiting is None or waiting.at is not IntakeStep.TEAM or choice > len(waiting.data.get("teams", [])):
                raise DomainError(N_("import.team_gone"))
            if waiting.data.get("taken"):
                raise DomainError(N_("import.team_taken"))
            await flows.enter(session, staff.id, IntakeStep.TEAM, {**waiting.data, "taken": update.update_id},
                              now=runtime.clock.now())
    except DomainError as error:
        await refuse(update, context, error, what="import.team")
        return
    pending = waiting.data
    teams = [str(x) for x in pending["teams"]]
    team = teams[choice - 1] if choice else None
    filename = str(pending["filename"])
    await query.answer()
    text = t("import.received", filename=filename)
    progress = query.message if isinstance(query.message, Message) else None
    if progress is not None:
        try:
            await progress.edit_text(text)
        except TelegramError as exc:
            log.info("could not edit the team question: %s", exc)
    else:
        progress = await context.bot.send_message(staff.telegram_user_id or query.from_user.id, text)
    data = await runtime.media.read(str(pending["file"]))
    await _import_cases(context, progress, data, filename, bank=pending.get("bank"), team=team,
                        received_at=datetime.fromisoformat(str(pending["received_at"])))
    async with runtime.db.write() as session:
        await flows.clear(session, staff.id, IntakeStep.FLOW)


async def _import_cases(context: FieldbotContext, progress: Message, data: bytes, filename: str, *,
                        bank: str | None, team: str | None, received_at: datetime) -> None:
    runtime, t, staff = context.runtime, context.t, context.staff
    assert staff is not None

    async def show_progress(done: int, total: int) -> None:
        await _edit(progress, t("import.progress", filename=filename, done=done, total=total))

    summary = await intake.import_file(
        runtime.db, data, filename, clock=runtime.clock, calendar=runtime.calendar, media=runtime.media,
        backup_dirs=runtime.settings.backup_dirs, geocoder=runtime.geocoder,
        bank=bank, team=team, received_at=received_at, actor_id=staff.id,
        batch_size=runtime.settings.import_batch_size, progress=show_progress,
    )
    if summary.error is not None:
        await _edit(progress, t(FILE_ERRORS.get(summary.error.code, "import.error.unreadable"), filename=filename))
        return
    await _edit(progress, summary_text(context, summary, team))
    rejects = summary.rejects_csv(t)
    if rejects is not None:
        await progress.reply_document(rejects, filename=f"{PurePath(filename).stem}.rejects.csv",
                                      caption=t("import.rejects_caption", count=summary.rejected))


async def _other_file(message: Message, progress: Message, context: FieldbotContext, kind: str, data: bytes,
                      filename: str, bank: str | None) -> None:
    """A repayment file or a recall list: import it, show the summary, send the rejects back."""
    runtime, t, staff = context.runtime, context.t, context.staff
    assert staff is not None
    summary: payments.PaymentSummary | intake.RecallSummary
    if kind == "payments":
        summary = await payments.import_payments(
            runtime.db, data, filename, clock=runtime.clock, calendar=runtime.calendar, media=runtime.media,
            backup_dirs=runtime.settings.backup_dirs, bank=bank, received_at=message.date, actor_id=staff.id)
    else:
        summary = await intake.import_recall(
            runtime.db, data, filename, clock=runtime.clock, media=runtime.media,
            backup_dirs=runtime.settings.backup_dirs, bank=bank, received_at=message.date, actor_id=staff.id)
    if summary.error is not None:
        await _edit(progress, t(FILE_ERRORS.get(summary.error.code, "import.error.unreadable"), filename=filename))
        return
    if isinstance(summary, payments.PaymentSummary):
        await _edit(progress, payments.summary_text(t, summary))
    else:
        await _edit(progress, t("recall.summary", filename=filename, closed=len(summary.closed),
                                already=summary.already_closed, rejected=summary.rejected))
    rejects = summary.rejects_csv(t)
    if rejects is not None:
        await message.reply_document(rejects, filename=f"{PurePath(filename).stem}.rejects.csv",
                                     caption=t("import.rejects_caption", count=summary.rejected))


def summary_text(context: FieldbotContext, summary: intake.ImportSummary, team: str | None = None) -> str:
    t = context.t
    lines = [t("import.summary", filename=summary.filename, imported=summary.imported, updated=summary.updated,
               unchanged=summary.unchanged, rejected=summary.rejected)]
    if team:
        lines.append(t("import.for_team", team=team))
    if summary.late:
        lines.append(t("import.late", minutes=summary.minutes_taken))
    if summary.recalled:
        lines.append(t("import.recalled", count=len(summary.recalled), cases=", ".join(summary.recalled[:20])))
    return "\n".join(lines)


async def refuse_file(update: Update, context: FieldbotContext) -> None:
    log.info("file from staff %s (may not import) refused", context.staff.id if context.staff else None)
    await say(update, context, "import.only_admin")


@serves(Action.CASE_IMPORT)
async def import_help(update: Update, context: FieldbotContext) -> None:
    await say(update, context, "import.how")


def handlers() -> list[BaseHandler[Update, FieldbotContext, object]]:
    private = filters.ChatType.PRIVATE
    return [
        MessageHandler(private & filters.Document.ALL & RoleIs(*policy.roles_for(Action.CASE_IMPORT)), on_case_file),
        CallbackQueryHandler(team_pressed, pattern=ImportTeam.pattern()),
        CommandHandler("import", import_help),
        MessageHandler(filters.Text(all_translations("menu.import")), import_help),
    ]


def fallback_handlers() -> list[BaseHandler[Update, FieldbotContext, object]]:
    """After every flow: a document nobody else took is refused with the reason."""
    return [MessageHandler(filters.ChatType.PRIVATE & filters.Document.ALL, refuse_file)]

"""An admin sends the bank's file as a document: progress while it goes in, a summary, the rejects.

Which file it is (``intake.kind_of_upload``): a caption with 召回 / recall makes it a recall list; a
header with a case number, an amount paid and a date paid and no address makes it a repayment file;
anything else is a case file. The rest of the caption names the bank.
"""

from __future__ import annotations

import logging
from pathlib import PurePath

from telegram import Message, Update
from telegram.error import TelegramError
from telegram.ext import BaseHandler, CommandHandler, MessageHandler, filters

from bot.context import FieldbotContext
from bot.handlers.common import say, serves
from bot.handlers.routing import RoleIs
from bot.i18n import N_, all_translations
from bot.services import inbox, intake, payments, policy
from bot.services.errors import AlreadyDone
from bot.services.policy import Action

log = logging.getLogger(__name__)

BOT_API_DOWNLOAD_LIMIT = 20 * 1024 * 1024

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
    kind, bank = intake.kind_of_upload(data, filename, message.caption)
    if kind != "cases":
        await _other_file(message, progress, context, kind, data, filename, bank)
        return

    async def show_progress(done: int, total: int) -> None:
        await _edit(progress, t("import.progress", filename=filename, done=done, total=total))

    summary = await intake.import_file(
        runtime.db, data, filename, clock=runtime.clock, calendar=runtime.calendar, media=runtime.media,
        backup_dirs=runtime.settings.backup_dirs, geocoder=runtime.geocoder,
        bank=bank, received_at=message.date, actor_id=staff.id,
        batch_size=runtime.settings.import_batch_size, progress=show_progress,
    )
    if summary.error is not None:
        await _edit(progress, t(FILE_ERRORS.get(summary.error.code, "import.error.unreadable"), filename=filename))
        return
    await _edit(progress, summary_text(context, summary))
    rejects = summary.rejects_csv(t)
    if rejects is not None:
        await message.reply_document(rejects, filename=f"{PurePath(filename).stem}.rejects.csv",
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


def summary_text(context: FieldbotContext, summary: intake.ImportSummary) -> str:
    t = context.t
    lines = [t("import.summary", filename=summary.filename, imported=summary.imported, updated=summary.updated,
               unchanged=summary.unchanged, rejected=summary.rejected)]
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
        CommandHandler("import", import_help),
        MessageHandler(filters.Text(all_translations("menu.import")), import_help),
    ]


def fallback_handlers() -> list[BaseHandler[Update, FieldbotContext, object]]:
    """After every flow: a document nobody else took is refused with the reason."""
    return [MessageHandler(filters.ChatType.PRIVATE & filters.Document.ALL, refuse_file)]

"""The supervisor's review of every visit report: approve, or return with a comment; listen to the evidence."""

from __future__ import annotations

import logging

from telegram import InputFile, Update
from telegram.ext import BaseHandler, CallbackQueryHandler, MessageHandler, filters

from bot.context import FieldbotContext
from bot.handlers.common import drop_buttons, ignore_replays, refuse, require_role, write_once
from bot.handlers.routing import InStep
from bot.services import flows, visits
from bot.services.errors import DomainError
from bot.storage.models import Role

log = logging.getLogger(__name__)

FLOW = "review"
REVIEWERS = (Role.SUPERVISOR, Role.ADMIN)


async def _done(update: Update, context: FieldbotContext, key: str, **params: object) -> None:
    if update.callback_query is not None:
        await update.callback_query.answer()
        await drop_buttons(update, context)  # the decision is made: no second press on the request
    if update.effective_chat is not None:
        await context.bot.send_message(update.effective_chat.id, context.t(key, **params))


@require_role(*REVIEWERS)
@ignore_replays
async def approve(update: Update, context: FieldbotContext) -> None:
    query = update.callback_query
    assert query is not None and query.data is not None and context.staff is not None
    try:
        async with write_once(update, context) as session:
            visit = await visits.review(session, context.staff, int(query.data.split(":")[2]), approve=True,
                                        comment=None, now=context.runtime.clock.now())
    except DomainError as error:
        await refuse(update, context, error, what="visit.review")
        return
    await _done(update, context, "review.approved_done", visit_id=visit.id)


@require_role(*REVIEWERS)
@ignore_replays
async def ask_comment(update: Update, context: FieldbotContext) -> None:
    query = update.callback_query
    assert query is not None and query.data is not None and context.staff is not None
    visit_id = int(query.data.split(":")[2])
    try:
        async with write_once(update, context) as session:
            visit, _, _ = await visits.reviewable_visit(session, context.staff, visit_id)
            if visit.status != "filed":
                raise DomainError("review.error.not_waiting")
            await flows.save(session, context.staff.id, FLOW, "comment", {"visit_id": visit_id},
                             now=context.runtime.clock.now())
    except DomainError as error:
        await refuse(update, context, error, what="visit.review")
        return
    await query.answer()
    assert update.effective_chat is not None
    await context.bot.send_message(update.effective_chat.id, context.t("review.ask_comment"))


@require_role(*REVIEWERS)
@ignore_replays
async def comment_typed(update: Update, context: FieldbotContext) -> None:
    message = update.effective_message
    flow = context.flow
    assert message is not None and message.text is not None and context.staff is not None and flow is not None
    comment = message.text.strip()[:1000]
    if not comment:
        await context.bot.send_message(message.chat.id, context.t("review.ask_comment"))
        return
    try:
        async with write_once(update, context) as session:
            await visits.review(session, context.staff, int(flow.data["visit_id"]), approve=False, comment=comment,
                                now=context.runtime.clock.now())
            await flows.clear(session, context.staff.id, FLOW)
    except DomainError as error:
        await refuse(update, context, error, what="visit.review")
        return
    await _done(update, context, "review.returned_done")


@require_role(*REVIEWERS)
async def send_files(update: Update, context: FieldbotContext) -> None:
    query = update.callback_query
    assert query is not None and query.data is not None and context.staff is not None
    runtime = context.runtime
    try:
        async with runtime.db.read() as session:
            visit, case, _ = await visits.reviewable_visit(session, context.staff, int(query.data.split(":")[2]))
            files = await visits.evidence_of(session, visit.id)
    except DomainError as error:
        await refuse(update, context, error, what="visit.files")
        return
    await query.answer()
    chat = update.effective_chat
    assert chat is not None
    stored = [f for f in files if f.status == "stored" and f.path]
    for n, item in enumerate(stored, start=1):
        assert item.path is not None and item.sha256 is not None
        data = runtime.media.read(item.path)
        caption = context.t("review.file_caption", n=n, total=len(stored), case_no=case.case_no,
                            time=context.t.datetime(item.sent_at, runtime.tz), sha=item.sha256[:12])
        name = item.path.rsplit("/", 1)[-1]
        await context.bot.send_document(chat.id, InputFile(data, filename=name), caption=caption, protect_content=True)
    missing = len(files) - len(stored)
    if not stored or missing:
        await context.bot.send_message(chat.id, context.t("review.files_missing", count=missing))


def handlers() -> list[BaseHandler[Update, FieldbotContext, object]]:
    return [
        CallbackQueryHandler(approve, pattern=r"^rv:ok:\d{1,9}$"),
        CallbackQueryHandler(ask_comment, pattern=r"^rv:ret:\d{1,9}$"),
        CallbackQueryHandler(send_files, pattern=r"^rv:files:\d{1,9}$"),
        MessageHandler(filters.TEXT & ~filters.COMMAND & InStep(FLOW, "comment"), comment_typed),
    ]

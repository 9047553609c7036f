"""The supervisor's review of every visit report: approve, or return with a comment; listen to the evidence."""

from __future__ import annotations

import logging

from telegram import InputFile, Update
from telegram.ext import BaseHandler, CallbackQueryHandler, MessageHandler, filters

from bot.buttons import ReviewApprove, ReviewFiles, ReviewReturn
from bot.context import FieldbotContext
from bot.handlers.common import drop_buttons, ignore_replays, pressed, refuse, serves, write_once
from bot.handlers.routing import AtStep
from bot.i18n import N_
from bot.services import evidence, flows, visits
from bot.services.errors import DomainError
from bot.services.policy import Action
from bot.steps import ReviewStep

log = logging.getLogger(__name__)

KIND_LABELS = {"photo": N_("evidence.kind.photo"), "voice": N_("evidence.kind.voice"),
               "audio": N_("evidence.kind.audio")}


async def _done(update: Update, context: FieldbotContext, key: str, **params: object) -> None:
    if update.callback_query is not None:
        await update.callback_query.answer()
        await drop_buttons(update, context)  # the decision is made: no second press on the request
    if update.effective_chat is not None:
        await context.bot.send_message(update.effective_chat.id, context.t(key, **params))


@serves(Action.VISIT_REVIEW)
@ignore_replays
async def approve(update: Update, context: FieldbotContext) -> None:
    assert context.staff is not None
    try:
        async with write_once(update, context) as session:
            visit = await visits.review(session, context.staff, pressed(update, ReviewApprove).visit_id, approve=True,
                                        comment=None, now=context.runtime.clock.now())
    except DomainError as error:
        await refuse(update, context, error, what="visit.review")
        return
    await _done(update, context, "review.approved_done", visit_id=visit.id)


@serves(Action.VISIT_REVIEW)
@ignore_replays
async def ask_comment(update: Update, context: FieldbotContext) -> None:
    query = update.callback_query
    assert query is not None and context.staff is not None
    visit_id = pressed(update, ReviewReturn).visit_id
    try:
        async with write_once(update, context) as session:
            await visits.start_return(session, context.staff, visit_id, now=context.runtime.clock.now())
    except DomainError as error:
        await refuse(update, context, error, what="visit.review")
        return
    await query.answer()
    assert update.effective_chat is not None
    await context.bot.send_message(update.effective_chat.id, context.t("review.ask_comment"))


@serves(Action.VISIT_REVIEW)
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
            await flows.clear(session, context.staff.id, ReviewStep.FLOW)
    except DomainError as error:
        await refuse(update, context, error, what="visit.review")
        return
    await _done(update, context, "review.returned_done")


@serves(Action.VISIT_REVIEW)
async def send_files(update: Update, context: FieldbotContext) -> None:
    query = update.callback_query
    assert query is not None and context.staff is not None
    runtime, t = context.runtime, context.t
    try:
        async with runtime.db.read() as session:
            visit_id = pressed(update, ReviewFiles).visit_id
            visit, case, _ = await visits.reviewable_visit(session, context.staff, visit_id)
            files = await visits.evidence_of(session, visit.id)
    except DomainError as error:
        await refuse(update, context, error, what="visit.files")
        return
    await query.answer()
    chat = update.effective_chat
    assert chat is not None
    found = await evidence.for_review(runtime.media, files)
    total = len(found.readable)
    for n, (item, data) in enumerate(found.readable, start=1):
        assert item.path is not None and item.sha256 is not None
        caption = t("review.file_caption", n=n, total=total, case_no=case.case_no,
                    time=t.datetime(item.sent_at, runtime.tz), sha=item.sha256[:12])
        name = item.path.rsplit("/", 1)[-1]
        await context.bot.send_document(chat.id, InputFile(data, filename=name), caption=caption, protect_content=True)
    if found.lost:
        lines = [t("review.file_lost_line", kind=t(KIND_LABELS.get(item.kind, N_("evidence.kind.audio"))),
                   time=t.datetime(item.sent_at, runtime.tz), sha=(item.sha256 or "-")[:12]) for item in found.lost]
        await context.bot.send_message(chat.id, t("review.files_lost", case_no=case.case_no, count=len(found.lost),
                                                  files="\n".join(lines)))
    missing = len(found.not_downloaded)
    if (not total and not found.lost) or missing:
        await context.bot.send_message(chat.id, t("review.files_missing", count=missing))


def handlers() -> list[BaseHandler[Update, FieldbotContext, object]]:
    return [
        CallbackQueryHandler(approve, pattern=ReviewApprove.pattern()),
        CallbackQueryHandler(ask_comment, pattern=ReviewReturn.pattern()),
        CallbackQueryHandler(send_files, pattern=ReviewFiles.pattern()),
        MessageHandler(filters.TEXT & ~filters.COMMAND & AtStep(ReviewStep.COMMENT), comment_typed),
    ]

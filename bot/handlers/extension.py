"""Asking for more time: reason and date from the collector, approve or reject from the supervisor."""

from __future__ import annotations

import logging
from datetime import date

from telegram import InlineKeyboardMarkup, Update
from telegram.ext import BaseHandler, CallbackQueryHandler, MessageHandler, filters

from bot.context import FieldbotContext
from bot.handlers.common import drop_buttons, ignore_replays, refuse, require_role, write_once
from bot.handlers.routing import InStep
from bot.keyboards import date_buttons, month_keyboard, month_shown
from bot.services import deadlines, extensions, flows, visits
from bot.services.errors import DomainError
from bot.services.parsing import parse_date
from bot.storage.models import Role

log = logging.getLogger(__name__)

FLOW = "extension"
COLLECTORS = (Role.COLLECTOR, Role.PHONE_COLLECTOR)
REVIEWERS = (Role.SUPERVISOR, Role.ADMIN)


@require_role(*COLLECTORS)
@ignore_replays
async def start(update: Update, context: FieldbotContext) -> None:
    query = update.callback_query
    assert query is not None and query.data is not None and context.staff is not None
    case_id = int(query.data.split(":")[2])
    runtime = context.runtime
    try:
        async with write_once(update, context) as session:
            case = await visits.own_case(session, context.staff, case_id)
            if case.visit_due_at is None or case.visit_done_at is not None:
                raise DomainError("extension.error.visit_done")
            if await deadlines.pending_extension(session, case_id) is not None:
                raise DomainError("extension.error.pending")
            await flows.save(session, context.staff.id, FLOW, "reason", {"case_id": case_id},
                             now=runtime.clock.now())
    except DomainError as error:
        await refuse(update, context, error, what="extension.start")
        return
    await query.answer()
    assert update.effective_chat is not None
    await context.bot.send_message(update.effective_chat.id, context.t("extension.ask_reason", case_no=case.case_no))


@require_role(*COLLECTORS)
@ignore_replays
async def reason_typed(update: Update, context: FieldbotContext) -> None:
    message, flow = update.effective_message, context.flow
    assert message is not None and message.text is not None and context.staff is not None and flow is not None
    reason = message.text.strip()
    if len(reason) < 2:
        await context.bot.send_message(message.chat.id, context.t("extension.ask_reason_again"))
        return
    runtime = context.runtime
    async with write_once(update, context) as session:
        await flows.save(session, context.staff.id, FLOW, "date", {**flow.data, "reason": reason[:500]},
                         now=runtime.clock.now())
    today = runtime.calendar.working_date(runtime.clock.now())
    await context.bot.send_message(
        message.chat.id, context.t("extension.ask_date", days=runtime.settings.max_extension_days),
        reply_markup=InlineKeyboardMarkup(date_buttons(context.t, today, prefix="x")))


async def _submit(update: Update, context: FieldbotContext, proposed: date) -> None:
    flow, runtime = context.flow, context.runtime
    assert flow is not None and context.staff is not None and update.effective_chat is not None
    try:
        async with write_once(update, context) as session:
            await extensions.request_extension(session, context.staff, int(flow.data["case_id"]),
                                               reason=str(flow.data["reason"]), proposed_on=proposed,
                                               now=runtime.clock.now(), calendar=runtime.calendar,
                                               max_days=runtime.settings.max_extension_days)
            await flows.clear(session, context.staff.id, FLOW)
    except DomainError as error:
        if error.key.startswith("extension.error.") and error.key != "extension.error.pending":
            await context.bot.send_message(update.effective_chat.id, context.t(error.key, **error.params))
            return  # the same question stays open: another date
        await refuse(update, context, error, what="extension.request")
        return
    if update.callback_query is not None:
        await update.callback_query.answer()
    await context.bot.send_message(update.effective_chat.id, context.t("extension.sent", date=context.t.date(proposed)))


@require_role(*COLLECTORS)
@ignore_replays
async def date_typed(update: Update, context: FieldbotContext) -> None:
    message = update.effective_message
    assert message is not None and message.text is not None
    proposed = parse_date(message.text, today=context.runtime.calendar.working_date(context.runtime.clock.now()))
    if proposed is None:
        await context.bot.send_message(message.chat.id, context.t("visit.hint.date"))
        return
    await _submit(update, context, proposed)


@require_role(*COLLECTORS)
@ignore_replays
async def date_pressed(update: Update, context: FieldbotContext) -> None:
    query = update.callback_query
    assert query is not None and query.data is not None
    if context.flow is None or context.flow.flow != FLOW or context.flow.step != "date":
        await refuse(update, context, DomainError("error.stale_button"), what="extension.date")
        return
    raw = query.data.split(":")[2]
    try:
        proposed = date(int(raw[:4]), int(raw[4:6]), int(raw[6:]))
    except ValueError:
        await refuse(update, context, DomainError("error.stale_button"), what="extension.date")
        return
    await _submit(update, context, proposed)


@require_role(*COLLECTORS)
async def calendar_page(update: Update, context: FieldbotContext) -> None:
    query = update.callback_query
    assert query is not None and query.data is not None and query.message is not None
    today = context.runtime.calendar.working_date(context.runtime.clock.now())
    year, month = month_shown(query.data.split(":")[2], today)
    await query.answer()
    await context.bot.edit_message_reply_markup(chat_id=query.message.chat.id, message_id=query.message.message_id,
                                                reply_markup=month_keyboard(context.t, year, month, today, prefix="x"))


@require_role(*REVIEWERS)
@ignore_replays
async def decide(update: Update, context: FieldbotContext) -> None:
    query = update.callback_query
    assert query is not None and query.data is not None and context.staff is not None
    _, verdict, request_id = query.data.split(":")
    runtime = context.runtime
    try:
        async with write_once(update, context) as session:
            request = await extensions.decide(session, context.staff, int(request_id), approve=verdict == "ok",
                                              now=runtime.clock.now(), calendar=runtime.calendar)
    except DomainError as error:
        await refuse(update, context, error, what="extension.decide")
        return
    await query.answer()
    await drop_buttons(update, context)
    assert update.effective_chat is not None
    key = "extension.approved_done" if request.status == "approved" else "extension.rejected_done"
    await context.bot.send_message(update.effective_chat.id, context.t(key))


def handlers() -> list[BaseHandler[Update, FieldbotContext, object]]:
    text = filters.TEXT & ~filters.COMMAND
    return [
        CallbackQueryHandler(start, pattern=r"^v:ext:\d{1,9}$"),
        MessageHandler(text & InStep(FLOW, "reason"), reason_typed),
        MessageHandler(text & InStep(FLOW, "date"), date_typed),
        CallbackQueryHandler(date_pressed, pattern=r"^x:d:\d{8}$"),
        CallbackQueryHandler(calendar_page, pattern=r"^x:cal:\d{6}$"),
        CallbackQueryHandler(decide, pattern=r"^ex:(ok|no):\d{1,9}$"),
    ]

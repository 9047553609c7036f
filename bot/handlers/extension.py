"""Asking for more time: reason and date from the collector, approve or reject from the supervisor."""

from __future__ import annotations

import logging
from datetime import date

from telegram import InlineKeyboardMarkup, Update
from telegram.ext import BaseHandler, CallbackQueryHandler, MessageHandler, filters

from bot.buttons import ExtensionApprove, ExtensionAsk, ExtensionCalendarPage, ExtensionDate, ExtensionReject
from bot.context import FieldbotContext
from bot.handlers.common import drop_buttons, ignore_replays, pressed, refuse, replace_buttons, serves, write_once
from bot.handlers.routing import AtStep
from bot.keyboards import date_buttons, month_keyboard, month_shown
from bot.services import extensions, flows
from bot.services.errors import DomainError
from bot.services.parsing import parse_date
from bot.services.policy import Action
from bot.steps import ExtensionStep

log = logging.getLogger(__name__)


@serves(Action.EXTENSION_ASK)
@ignore_replays
async def start(update: Update, context: FieldbotContext) -> None:
    query = update.callback_query
    assert query is not None and context.staff is not None
    case_id = pressed(update, ExtensionAsk).case_id
    runtime = context.runtime
    try:
        async with write_once(update, context) as session:
            case = await extensions.begin(session, context.staff, case_id, now=runtime.clock.now())
    except DomainError as error:
        await refuse(update, context, error, what="extension.start")
        return
    await query.answer()
    assert update.effective_chat is not None
    await context.bot.send_message(update.effective_chat.id, context.t("extension.ask_reason", case_no=case.case_no))


@serves(Action.EXTENSION_ASK)
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
        await flows.enter(session, context.staff.id, ExtensionStep.DATE, {**flow.data, "reason": reason[:500]},
                          now=runtime.clock.now())
    today = runtime.calendar.working_date(runtime.clock.now())
    await context.bot.send_message(
        message.chat.id, context.t("extension.ask_date", days=runtime.settings.max_extension_days),
        reply_markup=InlineKeyboardMarkup(date_buttons(context.t, today, day=ExtensionDate,
                                                       page=ExtensionCalendarPage)))


async def _submit(update: Update, context: FieldbotContext, proposed: date) -> None:
    flow, runtime = context.flow, context.runtime
    assert flow is not None and context.staff is not None and update.effective_chat is not None
    try:
        async with write_once(update, context) as session:
            await extensions.request_extension(session, context.staff, int(flow.data["case_id"]),
                                               reason=str(flow.data["reason"]), proposed_on=proposed,
                                               now=runtime.clock.now(), calendar=runtime.calendar,
                                               max_days=runtime.settings.max_extension_days)
            await flows.clear(session, context.staff.id, ExtensionStep.FLOW)
    except DomainError as error:
        if error.key.startswith("extension.error.") and error.key != "extension.error.pending":
            if update.callback_query is not None:
                await update.callback_query.answer()
            await context.bot.send_message(update.effective_chat.id, context.t(error.key, **error.params))
            return  # the same question stays open: another date
        await refuse(update, context, error, what="extension.request")
        return
    if update.callback_query is not None:
        await update.callback_query.answer()
    await context.bot.send_message(update.effective_chat.id, context.t("extension.sent", date=context.t.date(proposed)))


@serves(Action.EXTENSION_ASK)
@ignore_replays
async def date_typed(update: Update, context: FieldbotContext) -> None:
    message = update.effective_message
    assert message is not None and message.text is not None
    proposed = parse_date(message.text, today=context.runtime.calendar.working_date(context.runtime.clock.now()))
    if proposed is None:
        await context.bot.send_message(message.chat.id, context.t("visit.hint.date"))
        return
    await _submit(update, context, proposed)


@serves(Action.EXTENSION_ASK)
@ignore_replays
async def date_pressed(update: Update, context: FieldbotContext) -> None:
    if context.flow is None or context.flow.at is not ExtensionStep.DATE:
        await refuse(update, context, DomainError("error.stale_button"), what="extension.date")
        return
    try:
        proposed = pressed(update, ExtensionDate).day
    except ValueError:
        await refuse(update, context, DomainError("error.stale_button"), what="extension.date")
        return
    await _submit(update, context, proposed)


@serves(Action.EXTENSION_ASK)
async def calendar_page(update: Update, context: FieldbotContext) -> None:
    query = update.callback_query
    assert query is not None
    today = context.runtime.calendar.working_date(context.runtime.clock.now())
    year, month = month_shown(pressed(update, ExtensionCalendarPage).month, today)
    await query.answer()
    await replace_buttons(update, context, month_keyboard(context.t, year, month, today, day=ExtensionDate,
                                                          page=ExtensionCalendarPage))


@serves(Action.EXTENSION_DECIDE)
@ignore_replays
async def decide(update: Update, context: FieldbotContext) -> None:
    query = update.callback_query
    assert query is not None and context.staff is not None
    approve = ExtensionApprove.pattern().match(query.data or "") is not None
    pressed_button = pressed(update, ExtensionApprove) if approve else pressed(update, ExtensionReject)
    request_id = pressed_button.request_id
    runtime = context.runtime
    try:
        async with write_once(update, context) as session:
            request = await extensions.decide(session, context.staff, request_id, approve=approve,
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
        CallbackQueryHandler(start, pattern=ExtensionAsk.pattern()),
        MessageHandler(text & AtStep(ExtensionStep.REASON), reason_typed),
        MessageHandler(text & AtStep(ExtensionStep.DATE), date_typed),
        CallbackQueryHandler(date_pressed, pattern=ExtensionDate.pattern()),
        CallbackQueryHandler(calendar_page, pattern=ExtensionCalendarPage.pattern()),
        CallbackQueryHandler(decide, pattern=ExtensionApprove.pattern()),
        CallbackQueryHandler(decide, pattern=ExtensionReject.pattern()),
    ]

"""/tofield: a phone collector puts one of their cases on a field collector's visit list, with a note."""

from __future__ import annotations

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.ext import BaseHandler, CallbackQueryHandler, CommandHandler, MessageHandler, filters

from bot.buttons import ToFieldCase, ToFieldCollector
from bot.context import FieldbotContext
from bot.handlers.common import ask_for_text, ignore_replays, pressed, refuse, serves, show, write_once
from bot.handlers.routing import AtStep
from bot.services import field_requests, flows
from bot.services.cases import open_cases_of
from bot.services.errors import DomainError
from bot.services.policy import Action
from bot.steps import ToFieldStep


@serves(Action.CASE_TO_FIELD)
async def begin(update: Update, context: FieldbotContext) -> None:
    staff = context.staff
    assert staff is not None
    async with context.runtime.db.read() as session:
        cases = await open_cases_of(session, staff.id)
    if not cases:
        await show(update, context, context.t("tofield.no_cases"), edit=False)
        return
    buttons = [[InlineKeyboardButton(f"{c.case_no} {c.address}"[:60], callback_data=ToFieldCase(c.id).pack())]
               for c in cases[:30]]
    await show(update, context, context.t("tofield.pick_case"), InlineKeyboardMarkup(buttons), edit=False)


@serves(Action.CASE_TO_FIELD)
async def case_chosen(update: Update, context: FieldbotContext) -> None:
    staff = context.staff
    assert staff is not None
    case_id = pressed(update, ToFieldCase).case_id
    try:
        async with context.runtime.db.read() as session:
            people = await field_requests.field_collectors(session, staff, case_id)
    except DomainError as error:
        await refuse(update, context, error, what="case.to_field")
        return
    buttons = [[InlineKeyboardButton(p.name, callback_data=ToFieldCollector(case_id, p.id).pack())] for p in people]
    await show(update, context, context.t("tofield.pick_collector"), InlineKeyboardMarkup(buttons))


@serves(Action.CASE_TO_FIELD)
async def collector_chosen(update: Update, context: FieldbotContext) -> None:
    staff = context.staff
    assert staff is not None
    chosen = pressed(update, ToFieldCollector)
    await ask_for_text(update, context, ToFieldStep.NOTE, {"case": chosen.case_id, "to": chosen.collector_id},
                       "tofield.ask_note", what="case.to_field",
                       check=lambda session: field_requests.prepare(session, staff, chosen.case_id,
                                                                    chosen.collector_id))


@serves(Action.CASE_TO_FIELD)
@ignore_replays
async def note_typed(update: Update, context: FieldbotContext) -> None:
    message, flow, staff = update.effective_message, context.flow, context.staff
    assert message is not None and message.text is not None and flow is not None and staff is not None
    try:
        async with write_once(update, context) as session:
            await field_requests.create(session, staff, int(flow.data["case"]), int(flow.data["to"]), message.text,
                                        now=context.runtime.clock.now(), calendar=context.runtime.calendar)
            await flows.clear(session, staff.id, ToFieldStep.FLOW)
    except DomainError as error:
        await refuse(update, context, error, what="case.to_field")
        return
    await context.bot.send_message(message.chat.id, context.t("tofield.sent"))


def handlers() -> list[BaseHandler[Update, FieldbotContext, object]]:
    return [
        CommandHandler("tofield", begin),
        CallbackQueryHandler(case_chosen, pattern=ToFieldCase.pattern()),
        CallbackQueryHandler(collector_chosen, pattern=ToFieldCollector.pattern()),
        MessageHandler(filters.TEXT & ~filters.COMMAND & AtStep(ToFieldStep.NOTE), note_typed),
    ]

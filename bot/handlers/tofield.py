"""/tofield: a phone collector puts one of their cases on a field collector's visit list, with a note."""

from __future__ import annotations

from sqlalchemy import select
from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.ext import BaseHandler, CallbackQueryHandler, CommandHandler, MessageHandler, filters

from bot.context import FieldbotContext
from bot.handlers.common import ask_for_text, ignore_replays, refuse, require_role, show, write_once
from bot.handlers.routing import InStep
from bot.services import field_requests, flows
from bot.services.cases import open_cases_of
from bot.services.errors import DomainError
from bot.storage.models import Role, Staff

FLOW = "tofield"
SENDERS = (Role.PHONE_COLLECTOR, Role.SUPERVISOR)


@require_role(*SENDERS)
async def begin(update: Update, context: FieldbotContext) -> None:
    staff = context.staff
    assert staff is not None
    async with context.runtime.db.read() as session:
        cases = await open_cases_of(session, staff.id)
    if not cases:
        await show(update, context, context.t("tofield.no_cases"), edit=False)
        return
    buttons = [[InlineKeyboardButton(f"{c.case_no} {c.address}"[:60], callback_data=f"tf:c:{c.id}")]
               for c in cases[:30]]
    await show(update, context, context.t("tofield.pick_case"), InlineKeyboardMarkup(buttons), edit=False)


@require_role(*SENDERS)
async def case_chosen(update: Update, context: FieldbotContext) -> None:
    query, staff = update.callback_query, context.staff
    assert query is not None and query.data is not None and staff is not None
    case_id = int(query.data.split(":")[2])
    async with context.runtime.db.read() as session:
        people = list(await session.scalars(select(Staff).where(
            Staff.active.is_(True), Staff.role == Role.COLLECTOR.value, Staff.team == staff.team).order_by(Staff.name)))
    buttons = [[InlineKeyboardButton(p.name, callback_data=f"tf:to:{case_id}:{p.id}")] for p in people]
    await show(update, context, context.t("tofield.pick_collector"), InlineKeyboardMarkup(buttons))


@require_role(*SENDERS)
async def collector_chosen(update: Update, context: FieldbotContext) -> None:
    query = update.callback_query
    assert query is not None and query.data is not None
    _, _, case_id, collector_id = query.data.split(":")
    await ask_for_text(update, context, FLOW, "note", {"case": int(case_id), "to": int(collector_id)},
                       "tofield.ask_note")


@require_role(*SENDERS)
@ignore_replays
async def note_typed(update: Update, context: FieldbotContext) -> None:
    message, flow, staff = update.effective_message, context.flow, context.staff
    assert message is not None and message.text is not None and flow is not None and staff is not None
    try:
        async with write_once(update, context) as session:
            await field_requests.create(session, staff, int(flow.data["case"]), int(flow.data["to"]), message.text,
                                        now=context.runtime.clock.now())
            await flows.clear(session, staff.id, FLOW)
    except DomainError as error:
        await refuse(update, context, error, what="case.to_field")
        return
    await context.bot.send_message(message.chat.id, context.t("tofield.sent"))


def handlers() -> list[BaseHandler[Update, FieldbotContext, object]]:
    return [
        CommandHandler("tofield", begin),
        CallbackQueryHandler(case_chosen, pattern=r"^tf:c:\d{1,9}$"),
        CallbackQueryHandler(collector_chosen, pattern=r"^tf:to:\d{1,9}:\d{1,9}$"),
        MessageHandler(filters.TEXT & ~filters.COMMAND & InStep(FLOW, "note"), note_typed),
    ]

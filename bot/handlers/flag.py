"""/flag CASE_NO [reason]: a collector flags malicious default on their case; the supervisor is told."""

from __future__ import annotations

from telegram import Update
from telegram.ext import BaseHandler, CommandHandler, MessageHandler, filters

from bot.context import FieldbotContext
from bot.handlers.common import ask_for_text, ignore_replays, refuse, serves, show, write_once
from bot.handlers.routing import AtStep
from bot.services import flags, flows
from bot.services.errors import DomainError
from bot.services.policy import Action
from bot.steps import FlagStep


async def _flag(update: Update, context: FieldbotContext, case_id: int, reason: str) -> None:
    staff = context.staff
    assert staff is not None
    try:
        async with write_once(update, context) as session:
            await flags.flag_malicious(session, staff, case_id, reason, now=context.runtime.clock.now())
            await flows.clear(session, staff.id, FlagStep.FLOW)
    except DomainError as error:
        await refuse(update, context, error, what="case.flag")
        return
    await show(update, context, context.t("flag.sent"), edit=False)


@serves(Action.CASE_FLAG)
@ignore_replays
async def begin(update: Update, context: FieldbotContext) -> None:
    staff = context.staff
    assert staff is not None
    args = context.args or []
    if not args:
        await show(update, context, context.t("flag.usage"), edit=False)
        return
    try:
        async with context.runtime.db.read() as session:
            case = await flags.own_case(session, staff, args[0])
    except DomainError as error:
        await refuse(update, context, error, what="case.flag")
        return
    if len(args) > 1:
        await _flag(update, context, case.id, " ".join(args[1:]))
        return
    await ask_for_text(update, context, FlagStep.REASON, {"case": case.id}, "flag.ask_reason", what="case.flag")


@serves(Action.CASE_FLAG)
@ignore_replays
async def reason_typed(update: Update, context: FieldbotContext) -> None:
    message, flow = update.effective_message, context.flow
    assert message is not None and message.text is not None and flow is not None
    await _flag(update, context, int(flow.data["case"]), message.text)


def handlers() -> list[BaseHandler[Update, FieldbotContext, object]]:
    return [
        CommandHandler("flag", begin),
        MessageHandler(filters.TEXT & ~filters.COMMAND & AtStep(FlagStep.REASON), reason_typed),
    ]

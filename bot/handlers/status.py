"""/status: the machine's health for the admin office (heartbeat, when the sweeps last ran, backups, outbox,
disk, the audit log against its checkpoint, outages)."""

from __future__ import annotations

from telegram import Update
from telegram.ext import BaseHandler, CommandHandler

from bot.context import FieldbotContext
from bot.handlers.common import refuse, serves
from bot.services import health
from bot.services.errors import DomainError
from bot.services.policy import Action


@serves(Action.SYSTEM_STATUS)
async def status(update: Update, context: FieldbotContext) -> None:
    staff, runtime, t = context.staff, context.runtime, context.t
    chat = update.effective_chat
    assert staff is not None and chat is not None
    try:
        async with runtime.db.read() as session:
            state = await health.status_for(session, staff, runtime.settings, runtime.clock.now())
    except DomainError as error:
        await refuse(update, context, error, what="system.status")
        return
    await context.bot.send_message(chat.id, "\n".join([t("status.title"), *health.lines(t, state, runtime.tz)]))


def handlers() -> list[BaseHandler[Update, FieldbotContext, object]]:
    return [CommandHandler("status", status)]

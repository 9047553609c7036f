"""Group -1: find the staff member behind every update; strangers get a polite refusal and nothing else."""

from __future__ import annotations

import logging

from telegram import Update
from telegram.ext import ApplicationHandlerStop, TypeHandler

from bot.context import FieldbotContext
from bot.handlers.routing import Caller, remember
from bot.i18n import resolve_locale, translator
from bot.services import flows, incidents
from bot.services import staff as staff_service
from bot.services.actor import StaffView

log = logging.getLogger(__name__)

GROUP = -1


def _is_invite_attempt(update: Update) -> bool:
    message = update.message
    if message is None or not message.text:
        return False
    parts = message.text.split()
    return len(parts) == 2 and parts[0].split("@")[0] == "/start"


async def identify(update: Update, context: FieldbotContext) -> None:
    user = update.effective_user
    if user is None:
        raise ApplicationHandlerStop  # channel posts, polls and the like: nobody to serve
    runtime = context.runtime
    async with runtime.db.read() as session:
        staff = await staff_service.active_by_telegram_id(session, user.id)
        view = StaffView.of(staff) if staff is not None else None
        flow = await flows.current(session, view.id) if view is not None else None
        alarm = await incidents.open_for(session, view.id) if view is not None else None
    remember(update, Caller(view, flow, alarm.id if alarm is not None else None))
    if update.edited_message is not None and (alarm is None or update.edited_message.location is None):
        raise ApplicationHandlerStop  # an edited old message is not a new answer; live locations feed an alarm
    default = runtime.settings.default_locale
    context.staff = view
    context.flow = flow
    context.t = translator(resolve_locale(view.locale if view else None, user.language_code, default))
    if view is not None or _is_invite_attempt(update):
        return
    log.info("refused update %s from unregistered telegram user %s", update.update_id, user.id)
    text = context.t("access.refused")
    if update.callback_query is not None:
        await update.callback_query.answer(text, show_alert=True)
    elif update.message is not None and update.effective_chat is not None and update.effective_chat.type == "private":
        await context.bot.send_message(update.effective_chat.id, text)
    raise ApplicationHandlerStop


def handlers() -> list[TypeHandler[Update, FieldbotContext, None]]:
    return [TypeHandler(Update, identify)]

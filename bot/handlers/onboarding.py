"""/start with an invite code, /start for the menu, /help and /lang."""

from __future__ import annotations

import logging

from telegram import BotCommandScopeChat, Update
from telegram.ext import BaseHandler, CallbackQueryHandler, CommandHandler, MessageHandler, filters

from bot.buttons import Language
from bot.context import FieldbotContext
from bot.handlers.common import pressed, say, serves
from bot.i18n import N_, SUPPORTED_LOCALES, all_translations, translator
from bot.keyboards import ROLE_LABELS, commands_for, language_picker, main_keyboard
from bot.services import flows, invites
from bot.services import staff as staff_service
from bot.services.actor import StaffView
from bot.services.invites import RedeemOutcome
from bot.services.policy import Action
from bot.storage.models import Role

log = logging.getLogger(__name__)

REFUSALS = {
    RedeemOutcome.WRONG: N_("start.code_wrong"),
    RedeemOutcome.EXPIRED: N_("start.code_expired"),
    RedeemOutcome.USED: N_("start.code_used"),
    RedeemOutcome.LOCKED: N_("start.locked"),
}


async def show_menu(update: Update, context: FieldbotContext, staff: StaffView, key: str) -> None:
    """Greet ``staff`` with ``key``, the role's keyboard and the role's command menu in their language."""
    chat = update.effective_chat
    if chat is None:
        return
    t = context.t
    await context.bot.send_message(chat.id, t(key, name=staff.name, role=t(ROLE_LABELS[staff.role])),
                                   reply_markup=main_keyboard(t, staff.role,
                                                              console_url=context.runtime.settings.web_url))
    await context.bot.set_my_commands(commands_for(t, staff.role), scope=BotCommandScopeChat(chat.id))


async def start(update: Update, context: FieldbotContext) -> None:
    user = update.effective_user
    if user is None:
        return
    if not context.args:
        if context.staff is not None:
            await show_menu(update, context, context.staff, N_("start.welcome_back"))
        return
    runtime = context.runtime
    now = runtime.clock.now()
    async with runtime.db.write() as session:
        result = await invites.redeem(session, context.args[0], telegram_user_id=user.id,
                                      language_code=user.language_code, now=now)
        staff = StaffView.of(result.staff) if result.staff is not None else None
    if staff is not None:
        context.staff = staff
        context.t = translator(staff.locale or context.t.locale)
        key = N_("start.greeting") if result.outcome is RedeemOutcome.OK else N_("start.welcome_back")
        await show_menu(update, context, staff, key)
        if result.outcome is RedeemOutcome.OK and staff.role in (Role.COLLECTOR, Role.PHONE_COLLECTOR):
            await say(update, context, "pin.onboarding_hint")
        return
    log.info("invite refused for telegram user %s: %s", user.id, result.outcome.value)
    await say(update, context, REFUSALS[result.outcome])


@serves(Action.PROFILE_OWN)
async def help_command(update: Update, context: FieldbotContext) -> None:
    staff = context.staff
    if staff is None:
        return
    lines = [context.t("help.title")]
    lines += [f"/{cmd.command} - {cmd.description}" for cmd in commands_for(context.t, staff.role)]
    if update.effective_chat is not None:
        await context.bot.send_message(update.effective_chat.id, "\n".join(lines))


@serves(Action.PROFILE_OWN)
async def choose_language(update: Update, context: FieldbotContext) -> None:
    if update.effective_chat is not None:
        await context.bot.send_message(update.effective_chat.id, context.t("lang.choose"),
                                       reply_markup=language_picker(context.t.locale))


@serves(Action.PROFILE_OWN)
async def language_chosen(update: Update, context: FieldbotContext) -> None:
    query = update.callback_query
    staff = context.staff
    if query is None or staff is None:
        return
    locale = pressed(update, Language).locale
    if locale not in SUPPORTED_LOCALES:
        log.warning("bad language button %r from staff %s", query.data, staff.id)
        await query.answer(context.t("error.stale_button"), show_alert=True)
        return
    runtime = context.runtime
    async with runtime.db.write() as session:
        await staff_service.set_locale(session, staff.id, locale, now=runtime.clock.now())
    context.t = translator(locale)
    await query.answer()
    await show_menu(update, context, staff, N_("lang.changed"))


@serves(Action.PROFILE_OWN)
async def cancel(update: Update, context: FieldbotContext) -> None:
    """Leave whatever step the person is in; what was saved stays (a visit report stays a draft)."""
    staff, chat = context.staff, update.effective_chat
    if staff is None or chat is None:
        return
    flow = context.flow
    async with context.runtime.db.write() as session:
        await flows.clear(session, staff.id)
    key = N_("visit.cancelled") if flow is not None and flow.flow == "visit" else N_("flow.cancelled")
    await context.bot.send_message(chat.id, context.t(key), reply_markup=main_keyboard(context.t, staff.role))


def handlers() -> list[BaseHandler[Update, FieldbotContext, object]]:
    return [
        CommandHandler("cancel", cancel),
        CommandHandler("start", start),
        CommandHandler("help", help_command),
        MessageHandler(filters.Text(all_translations("menu.help")), help_command),
        CommandHandler("lang", choose_language),
        MessageHandler(filters.Text(all_translations("menu.language")), choose_language),
        CallbackQueryHandler(language_chosen, pattern=Language.pattern()),
    ]

"""Group -1: find the staff member behind every update; strangers get a polite refusal and nothing else.

Two rules live here so that no flow can forget them:

* **Private chats only.** An update from a group, supergroup or channel is dropped before anything is
  read or written, and nothing is answered. The one exception is the supervisors' alert group
  (``FIELDBOT_SUPERVISORS_CHAT_ID``): its members may press an alarm's acknowledge button there
  (callback data ``sos:ack:<id>``); the incident service then decides whether that person may.
* **Strangers' invite attempts are capped.** Beyond :data:`STRANGER_AUDIT_CAP` invite entries in the
  audit log for one Telegram account within :data:`~bot.services.invites.LOCKOUT_WINDOW` (the wrong
  codes, then the one lock-out notice), further ``/start <code>`` messages are dropped unanswered and
  write nothing.
"""

from __future__ import annotations

import logging

from telegram import Update
from telegram.ext import ApplicationHandlerStop, TypeHandler

from bot.context import FieldbotContext
from bot.handlers.routing import Caller, remember
from bot.i18n import resolve_locale, translator
from bot.services import audit, gate, invites

log = logging.getLogger(__name__)

GROUP = -1

ACK_PREFIX = "sos:ack:"
# The wrong codes the lock-out allows, plus the one "locked" answer; nothing is written after that.
STRANGER_AUDIT_CAP = invites.MAX_FAILURES + 1
INVITE_ACTIONS = ("invite.failed", "invite.locked")


def _is_invite_attempt(update: Update) -> bool:
    message = update.message
    if message is None or not message.text:
        return False
    parts = message.text.split()
    return len(parts) == 2 and parts[0].split("@")[0] == "/start"


def _allowed_chat(update: Update, context: FieldbotContext) -> bool:
    """A private chat, or an acknowledge button pressed in the configured alert group."""
    chat = update.effective_chat
    if chat is None or chat.type == "private":
        return True
    query = update.callback_query
    alert_chat = context.runtime.settings.supervisors_chat_id
    return (alert_chat is not None and chat.id == alert_chat and query is not None
            and (query.data or "").startswith(ACK_PREFIX))


async def _stranger_capped(context: FieldbotContext, telegram_user_id: int) -> bool:
    """This account has used up its invite attempts for now (see the module docstring)."""
    runtime = context.runtime
    since = runtime.clock.now() - invites.LOCKOUT_WINDOW
    async with runtime.db.read() as session:
        written = await audit.count_recent(session, actions=INVITE_ACTIONS, object_type="telegram_user",
                                           object_id=telegram_user_id, since=since)
    return written >= STRANGER_AUDIT_CAP


async def identify(update: Update, context: FieldbotContext) -> None:
    user = update.effective_user
    if user is None:
        raise ApplicationHandlerStop  # channel posts, polls and the like: nobody to serve
    if not _allowed_chat(update, context):
        log.debug("ignored update %s from a %s chat", update.update_id,
                  update.effective_chat.type if update.effective_chat else None)
        raise ApplicationHandlerStop  # groups and channels: no answer, no change
    runtime = context.runtime
    async with runtime.db.read() as session:
        found = await gate.caller(session, user.id)  # one statement: staff, flow step, open alarm
    view = found.staff if found is not None else None
    flow = found.flow if found is not None else None
    live_location = update.edited_message is not None and update.edited_message.location is not None
    # A live location feeds any open alarm, also one a duress PIN hid from the collector's screen.
    feeds_alarm = live_location and found is not None and found.any_alarm_id is not None
    remember(update, Caller(view, flow, found.alarm_id if found is not None else None))
    if update.edited_message is not None and not feeds_alarm:
        raise ApplicationHandlerStop  # an edited old message is not a new answer; live locations feed an alarm
    default = runtime.settings.default_locale
    context.staff = view
    context.flow = flow
    context.t = translator(resolve_locale(view.locale if view else None, user.language_code, default))
    if view is not None:
        return
    if _is_invite_attempt(update):
        if not await _stranger_capped(context, user.id):
            return
        log.info("dropped invite attempt %s from telegram user %s: over the cap", update.update_id, user.id)
        raise ApplicationHandlerStop
    log.info("refused update %s from unregistered telegram user %s", update.update_id, user.id)
    text = context.t("access.refused")
    if update.callback_query is not None:
        await update.callback_query.answer(text, show_alert=True)
    elif update.message is not None and update.effective_chat is not None and update.effective_chat.type == "private":
        await context.bot.send_message(update.effective_chat.id, text)
    raise ApplicationHandlerStop


def handlers() -> list[TypeHandler[Update, FieldbotContext, None]]:
    return [TypeHandler(Update, identify)]

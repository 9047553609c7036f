"""Small helpers every flow handler uses: replying with a translated template, role checks."""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from telegram import Update
from telegram.ext import ApplicationHandlerStop

from bot.context import FieldbotContext
from bot.services import audit
from bot.services.errors import DomainError, Forbidden
from bot.storage.models import Role

log = logging.getLogger(__name__)

Callback = Callable[[Update, FieldbotContext], Awaitable[Any]]
C = TypeVar("C", bound=Callback)


async def say(update: Update, context: FieldbotContext, key: str, /, **params: Any) -> None:
    """Answer the update's chat with the translated message ``key`` (and close a button's spinner)."""
    text = context.t(key, **params)
    if update.callback_query is not None:
        await update.callback_query.answer()
    if update.effective_chat is not None:
        await context.bot.send_message(update.effective_chat.id, text)


def _attempt(update: Update) -> dict[str, Any]:
    if update.callback_query is not None:
        return {"button": update.callback_query.data}
    message = update.effective_message
    return {"text": (message.text or "")[:100]} if message is not None else {}


async def refuse(update: Update, context: FieldbotContext, error: DomainError, *, what: str) -> None:
    """Tell the user why not (a pop-up for a button); a refused permission is also written to the audit log."""
    staff = context.staff
    log.info("refused %s for staff %s: %s", what, staff.id if staff else None, error)
    if isinstance(error, Forbidden):
        runtime = context.runtime
        await audit.record_refusal(runtime.db, actor_id=staff.id if staff else None, what=what,
                                   subject=error.subject, details=_attempt(update), at=runtime.clock.now())
    text = context.t(error.key, **error.params)
    if update.callback_query is not None:
        await update.callback_query.answer(text, show_alert=True)
    elif update.effective_chat is not None:
        await context.bot.send_message(update.effective_chat.id, text)


def require_role(*roles: Role) -> Callable[[C], C]:
    """Refuse the update unless the staff member's role (read from the database this update) is allowed."""

    def decorate(callback: C) -> C:
        @functools.wraps(callback)
        async def wrapper(update: Update, context: FieldbotContext) -> Any:
            staff = context.staff
            if staff is None or staff.role not in roles:
                log.warning("role refused: staff=%s role=%s wanted=%s handler=%s",
                            staff.id if staff else None, staff.role if staff else None,
                            [r.value for r in roles], callback.__name__)
                await refuse(update, context, Forbidden(), what=callback.__name__)
                raise ApplicationHandlerStop
            return await callback(update, context)

        return wrapper  # type: ignore[return-value]

    return decorate

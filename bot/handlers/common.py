"""Small helpers every flow handler uses: replying with a translated template, declaring the action served."""

from __future__ import annotations

import functools
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, TypeVar

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from telegram import InlineKeyboardMarkup, Update
from telegram.error import BadRequest, TelegramError
from telegram.ext import ApplicationHandlerStop

from bot.buttons import Button, parse
from bot.context import FieldbotContext
from bot.services import audit, flows, inbox, policy
from bot.services.errors import AlreadyDone, DomainError, Forbidden
from bot.steps import Step

log = logging.getLogger(__name__)

Callback = Callable[[Update, FieldbotContext], Awaitable[Any]]
C = TypeVar("C", bound=Callback)
B = TypeVar("B", bound=Button)
ACTION_ATTR = "__fieldbot_action__"


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
    """Tell the user why not (a pop-up for a button); a refused permission is also written to the audit log.

    :class:`AlreadyDone` (a second delivery of an update already applied, reaching a handler that
    answers every :class:`DomainError` here) is no refusal: the button's spinner is closed, nothing said.
    """
    if isinstance(error, AlreadyDone):
        log.info("update %s was already applied: ignored", update.update_id)
        if update.callback_query is not None:
            await update.callback_query.answer()
        return
    staff = context.staff
    log.info("refused %s for staff %s: %s", what, staff.id if staff else None, error)
    if isinstance(error, Forbidden):
        runtime = context.runtime
        await audit.record_refusal(runtime.db, actor_id=staff.id if staff else None, what=what,
                                   subject=error.subject, details=_attempt(update), at=runtime.clock.now())
    text = context.t(error.key, **error.params)
    if update.callback_query is not None:
        try:
            await update.callback_query.answer(text, show_alert=True)
            return
        except TelegramError as exc:  # the button was already answered: say it in the chat instead
            log.info("could not answer the button with the refusal: %s", exc)
    if update.effective_chat is not None:
        await context.bot.send_message(update.effective_chat.id, text)


def serves(action: policy.Action) -> Callable[[C], C]:
    """Declare the policy action a handler serves; refuse (audited) anyone whose role may never do it.

    The role rule comes from :data:`bot.services.policy.RULES`; whether this person may act on *this*
    object is decided by the service the handler calls (``policy.require``).
    """

    def decorate(callback: C) -> C:
        @functools.wraps(callback)
        async def wrapper(update: Update, context: FieldbotContext) -> Any:
            staff = context.staff
            if staff is None or not policy.allows(staff, action):
                log.warning("role refused: staff=%s role=%s action=%s handler=%s", staff.id if staff else None,
                            staff.role if staff else None, action.value, callback.__name__)
                target = _pressed_target(update)
                await refuse(update, context, Forbidden(subject=target), what=callback.__name__)
                raise ApplicationHandlerStop
            return await callback(update, context)

        setattr(wrapper, ACTION_ATTR, action)
        return wrapper  # type: ignore[return-value]

    return decorate


def _pressed_target(update: Update) -> tuple[str, object] | None:
    pressed = parse(update.callback_query.data) if update.callback_query is not None else None
    if pressed is None or pressed.kind is None or pressed.target_id is None:
        return None
    return pressed.kind, pressed.target_id


def pressed(update: Update, kind: type[B]) -> B:
    """The typed button behind this callback (the handler's pattern already matched ``kind``)."""
    assert update.callback_query is not None
    return kind.unpack(update.callback_query.data)


@asynccontextmanager
async def write_once(update: Update, context: FieldbotContext) -> AsyncIterator[AsyncSession]:
    """A write transaction that also records this update: a second delivery raises :class:`AlreadyDone`.

    That holds when the two deliveries run at the same moment in two processes too: the inbox insert
    of the second waits for the first and finds its key (``inbox.claim``). Should the clash surface as
    an integrity error anyway (at a flush inside the block, or at the commit), and this update's key is
    then recorded by a committed transaction, the other delivery did the work: AlreadyDone as well.
    """
    runtime = context.runtime
    key = inbox.update_key(update.update_id)
    try:
        async with runtime.db.write() as session:
            await inbox.claim(session, key, now=runtime.clock.now())
            yield session
    except IntegrityError:
        if not await inbox.applied(runtime.db, key):
            raise
        raise AlreadyDone() from None


def ignore_replays(callback: C) -> C:
    """Let a handler drop an update that was already applied (``write_once`` raised AlreadyDone)."""

    @functools.wraps(callback)
    async def wrapper(update: Update, context: FieldbotContext) -> Any:
        try:
            return await callback(update, context)
        except AlreadyDone:
            log.info("update %s was already applied: ignored", update.update_id)
            if update.callback_query is not None:
                await update.callback_query.answer()
            return None

    return wrapper  # type: ignore[return-value]


async def show(update: Update, context: FieldbotContext, text: str, markup: InlineKeyboardMarkup | None = None,
               *, edit: bool = True, protect: bool = True) -> None:
    """Answer a button by editing its message (or answer a message with a new one).

    Pressing the same button twice edits to the same content; Telegram refuses that with "message is
    not modified", which is no error for the person pressing.
    """
    query = update.callback_query
    if query is not None:
        await query.answer()
    if edit and query is not None and query.message is not None:
        try:
            await context.bot.edit_message_text(text, chat_id=query.message.chat.id,
                                                message_id=query.message.message_id, reply_markup=markup)
        except BadRequest as exc:
            if "not modified" not in str(exc).lower():
                raise
        return
    if update.effective_chat is not None:
        await context.bot.send_message(update.effective_chat.id, text, reply_markup=markup, protect_content=protect)


async def drop_buttons(update: Update, context: FieldbotContext) -> None:
    """Take the buttons off the pressed message (a decision was made); quietly if already gone."""
    await replace_buttons(update, context, None)


async def replace_buttons(update: Update, context: FieldbotContext, markup: InlineKeyboardMarkup | None) -> None:
    """Put ``markup`` on the pressed message (a calendar's next page, say).

    Two quick taps on the same button ask for the same keyboard twice; Telegram refuses the second
    edit with "message is not modified", which is no error for the person tapping.
    """
    query = update.callback_query
    if query is None or query.message is None:
        return
    try:
        await context.bot.edit_message_reply_markup(chat_id=query.message.chat.id,
                                                    message_id=query.message.message_id, reply_markup=markup)
    except BadRequest as exc:
        if "not modified" not in str(exc).lower():
            raise


async def ask_for_text(update: Update, context: FieldbotContext, step: Step, data: dict[str, Any],
                       prompt_key: str, *, check: Callable[[AsyncSession], Awaitable[object]] | None = None,
                       what: str = "") -> None:
    """Save the step that waits for a typed answer (so a restart keeps it), then ask the question.

    ``check`` runs first in the same transaction (the service's rule: may this person answer this?); a
    :class:`DomainError` from it is answered with :func:`refuse` (``what`` names the attempt) and
    nothing is saved. The transaction records the update (``write_once``): a second delivery of the
    same button, at once in another process or later, is dropped without asking again.
    """
    staff = context.staff
    assert staff is not None
    try:
        async with write_once(update, context) as session:  # two deliveries of the button: asked once
            if check is not None:
                await check(session)
            await flows.enter(session, staff.id, step, data, now=context.runtime.clock.now())
    except AlreadyDone:
        log.info("update %s was already applied: ignored", update.update_id)
        if update.callback_query is not None:
            await update.callback_query.answer()
        return
    except DomainError as error:
        await refuse(update, context, error, what=what or step.flow)
        return
    await show(update, context, context.t(prompt_key), edit=False)

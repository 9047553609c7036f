"""SOS, "I'm on it", staying with it until resolved, "I'm safe" with a PIN, live location, safety timer.

The SOS handlers come first in the handler list, so one tap works from any state: it interrupts
whatever conversation the collector is in (the draft stays). The alert is written to the outbox and
sent at once, before anything else is answered.

Who may acknowledge or close which alarm, and the PIN rules (wrong-try limit, lock, duress), are the
services' (``incidents``, ``safety_pins``); these handlers parse, call one of them and answer.
"""

from __future__ import annotations

import logging
from typing import Any, cast

from sqlalchemy import select
from telegram import InlineKeyboardButton, InlineKeyboardMarkup, KeyboardButton, ReplyKeyboardMarkup, Update
from telegram.error import TelegramError
from telegram.ext import Application, BaseHandler, CallbackQueryHandler, CommandHandler, MessageHandler, filters

from bot.buttons import (
    AlarmAcknowledge,
    AlarmResolution,
    AlarmResolve,
    ImSafe,
    SafetyDone,
    SafetyMoreTime,
    Word,
)
from bot.context import FieldbotContext
from bot.handlers.common import drop_buttons, ignore_replays, pressed, refuse, serves, write_once
from bot.handlers.routing import AtStep, HasOpenAlarm, RoleIs
from bot.i18n import N_, all_translations
from bot.keyboards import main_keyboard
from bot.services import inbox, incidents, outbox, policy, safety_pins
from bot.services.errors import AlreadyDone, DomainError
from bot.steps import PinStep, ResolveStep, SafeStep
from bot.storage.models import Role, Staff
from scheduler.outbox_sender import send_due, wake

log = logging.getLogger(__name__)

FIELD = (Role.COLLECTOR, Role.PHONE_COLLECTOR)
SAFETY = policy.Action.SAFETY_OWN


async def _send_alerts_now(context: FieldbotContext) -> None:
    """Alerts do not wait: wake the outbox sender, which sends them before anything else queued.

    Where no sender runs (tests driving the application by hand), one batch is sent here, claimed
    like any sender's: rows another sender is already sending are not sent again.
    """
    if wake(context.runtime):
        return
    try:
        await send_due(context.bot, context.runtime, max_priority=outbox.Priority.URGENT, batches=1)
    except Exception:  # the rows are safe in the outbox; the sweep sends them
        log.exception("immediate alert send failed; the outbox sweep will retry")


@serves(SAFETY)
@ignore_replays
async def sos(update: Update, context: FieldbotContext) -> None:
    staff, runtime, chat = context.staff, context.runtime, update.effective_chat
    assert staff is not None and chat is not None
    async with incidents.raising(), write_once(update, context) as session:
        incident, new = await incidents.raise_alarm(session, staff.id, reason="sos", now=runtime.clock.now(),
                                                    policy=incidents.Policy.of(runtime.settings))
    log.warning("SOS from staff %s: incident %s (%s)", staff.id, incident.id, "new" if new else "again")
    await _send_alerts_now(context)
    t = context.t
    keyboard = ReplyKeyboardMarkup([[KeyboardButton(t("sos.share_location"), request_location=True)],
                                    [KeyboardButton(t("menu.sos"))]], resize_keyboard=True)
    await context.bot.send_message(chat.id, t("sos.raised"), reply_markup=keyboard)
    await context.bot.send_message(chat.id, t("sos.safe_hint"),
                                   reply_markup=InlineKeyboardMarkup([[InlineKeyboardButton(
                                       t("sos.im_safe"), callback_data=ImSafe().pack())]]))


@serves(policy.Action.INCIDENT_ACK)
@ignore_replays
async def acknowledge(update: Update, context: FieldbotContext) -> None:
    query = update.callback_query
    assert query is not None and context.staff is not None
    runtime, incident_id = context.runtime, pressed(update, AlarmAcknowledge).incident_id
    try:
        async with write_once(update, context) as session:
            incident = await incidents.acknowledge(session, context.staff, incident_id, now=runtime.clock.now(),
                                                   policy=incidents.Policy.of(runtime.settings))
    except DomainError as error:
        await refuse(update, context, error, what="incident.acknowledge")
        return
    await query.answer()
    await drop_buttons(update, context)
    await _send_alerts_now(context)
    assert update.effective_chat is not None
    await context.bot.send_message(
        update.effective_chat.id, context.t("incident.you_own", id=incident.id),
        reply_markup=InlineKeyboardMarkup([[InlineKeyboardButton(
            context.t("incident.resolve"), callback_data=AlarmResolve(incident_id=incident.id).pack())]]))


@serves(policy.Action.INCIDENT_RESOLVE)
async def choose_resolution(update: Update, context: FieldbotContext) -> None:
    query = update.callback_query
    assert query is not None and context.staff is not None
    incident_id = pressed(update, AlarmResolve).incident_id
    try:
        async with context.runtime.db.read() as session:
            choices = await incidents.resolution_menu(session, context.staff, incident_id)
    except DomainError as error:
        await refuse(update, context, error, what="incident.resolve")
        return
    t = context.t
    buttons = [[InlineKeyboardButton(t(f"resolution.{r}"),
                                     callback_data=AlarmResolution(incident_id=incident_id,
                                                                                   resolution=Word(r)).pack())]
               for r in choices]
    await query.answer()
    assert update.effective_chat is not None
    await context.bot.send_message(update.effective_chat.id, t("incident.ask_resolution"),
                                   reply_markup=InlineKeyboardMarkup(buttons))


@serves(policy.Action.INCIDENT_RESOLVE)
@ignore_replays
async def resolution_chosen(update: Update, context: FieldbotContext) -> None:
    query = update.callback_query
    assert query is not None and context.staff is not None
    chosen = pressed(update, AlarmResolution)
    try:
        async with write_once(update, context) as session:
            await incidents.resolution_chosen(session, context.staff, chosen.incident_id, chosen.resolution,
                                              now=context.runtime.clock.now())
    except DomainError as error:
        await refuse(update, context, error, what="incident.resolve")
        return
    await query.answer()
    assert update.effective_chat is not None
    await context.bot.send_message(update.effective_chat.id, context.t("incident.ask_note"))


@serves(policy.Action.INCIDENT_RESOLVE)
@ignore_replays
async def note_typed(update: Update, context: FieldbotContext) -> None:
    message, flow, staff = update.effective_message, context.flow, context.staff
    assert message is not None and message.text is not None and flow is not None and staff is not None
    runtime = context.runtime
    try:
        async with write_once(update, context) as session:
            incident = await incidents.resolve(session, staff, int(flow.data["incident_id"]),
                                               resolution=str(flow.data["resolution"]),
                                               note=message.text.strip()[:1000], now=runtime.clock.now())
    except DomainError as error:
        await refuse(update, context, error, what="incident.resolve")
        return
    await _send_alerts_now(context)
    await context.bot.send_message(message.chat.id, context.t("incident.resolved_done", id=incident.id))


# ---- the collector's PINs ------------------------------------------------------------------------------


async def _delete_quietly(update: Update, context: FieldbotContext) -> None:
    """A PIN does not stay on the screen."""
    message = update.effective_message
    if message is None:
        return
    try:
        await context.bot.delete_message(message.chat.id, message.message_id)
    except TelegramError as exc:
        log.info("could not delete a PIN message: %s", exc)


async def _answer(update: Update, context: FieldbotContext, reply: safety_pins.Reply) -> None:
    """Say what the PIN service decided (after sending any alerts it queued)."""
    staff, chat = context.staff, update.effective_chat
    assert staff is not None and chat is not None
    if reply.alerts:
        await _send_alerts_now(context)
    await context.bot.send_message(chat.id, context.t(reply.key),
                                   reply_markup=main_keyboard(context.t, staff.role) if reply.menu else None)


@serves(SAFETY)
async def ask_safe_pin(update: Update, context: FieldbotContext) -> None:
    staff = context.staff
    assert staff is not None
    if update.callback_query is not None:
        await update.callback_query.answer()
    async with context.runtime.db.write() as session:
        reply = await safety_pins.open_safe_step(session, staff, now=context.runtime.clock.now())
    await _answer(update, context, reply)


@serves(SAFETY)
@ignore_replays
async def safe_pin_typed(update: Update, context: FieldbotContext) -> None:
    message, staff, runtime = update.effective_message, context.staff, context.runtime
    assert message is not None and message.text is not None and staff is not None
    await _delete_quietly(update, context)
    async with write_once(update, context) as session:
        # The same words and keyboard for the safety and the duress PIN: nothing on the phone tells them apart.
        reply = await safety_pins.check_safe_pin(session, staff, message.text.strip(), now=runtime.clock.now(),
                                                 policy=incidents.Policy.of(runtime.settings))
    await _answer(update, context, reply)


@serves(SAFETY)
async def pin_start(update: Update, context: FieldbotContext) -> None:
    """Set (or change) the PINs (the service says when not)."""
    staff = context.staff
    assert staff is not None
    async with context.runtime.db.write() as session:
        reply = await safety_pins.start_change(session, staff, now=context.runtime.clock.now())
    await _answer(update, context, reply)


@serves(SAFETY)
@ignore_replays
async def pin_typed(update: Update, context: FieldbotContext) -> None:
    message, staff, flow, runtime = update.effective_message, context.staff, context.flow, context.runtime
    assert message is not None and message.text is not None and staff is not None and flow is not None
    step = flow.at
    assert isinstance(step, PinStep)
    await _delete_quietly(update, context)
    async with write_once(update, context) as session:
        reply = await safety_pins.change_answer(session, staff, step, flow.data, message.text.strip(),
                                                now=runtime.clock.now(), policy=incidents.Policy.of(runtime.settings))
    await _answer(update, context, reply)


# ---- where the collector is ----------------------------------------------------------------------------


@serves(SAFETY)
@ignore_replays
async def location_for_alarm(update: Update, context: FieldbotContext) -> None:
    message, staff, runtime = update.effective_message, context.staff, context.runtime
    assert message is not None and message.location is not None and staff is not None
    live = update.edited_message is not None or message.location.live_period is not None
    async with write_once(update, context) as session:
        incident = await incidents.add_location(session, staff.id, lat=message.location.latitude,
                                                lon=message.location.longitude, now=runtime.clock.now(), live=live)
    if incident is not None and incident.owner_id is not None:
        await _send_alerts_now(context)  # the owner's copy of the live location
    if incident is not None and update.edited_message is None:
        await context.bot.send_message(message.chat.id, context.t("sos.location_received"))


@serves(SAFETY)
async def location_without_alarm(update: Update, context: FieldbotContext) -> None:
    """A location while the collector knows of no open alarm.

    If a duress PIN hid their alarm, the location still goes to it, silently; then the update is handled
    exactly as it would be without any alarm (a visit check-in, or whatever the next handler says).
    """
    message, staff, runtime = update.effective_message, context.staff, context.runtime
    assert message is not None and message.location is not None and staff is not None
    live = update.edited_message is not None or message.location.live_period is not None
    try:
        async with runtime.db.write() as session:  # its own key: the handler below records the update itself
            await inbox.claim(session, f"{inbox.update_key(update.update_id)}:alarm-location",
                              now=runtime.clock.now())
            incident = await incidents.add_location(session, staff.id, lat=message.location.latitude,
                                                    lon=message.location.longitude, now=runtime.clock.now(),
                                                    live=live)
        if incident is not None and incident.owner_id is not None:
            await _send_alerts_now(context)  # to the owner only: this phone shows nothing of it
    except AlreadyDone:
        pass
    if update.edited_message is None:  # an edited location without a (known) alarm is dropped, as at the gate
        await _as_without_alarm(update, context)


async def _as_without_alarm(update: Update, context: FieldbotContext) -> None:
    """Give the update to the handler that would have taken it had ``location_without_alarm`` not matched."""
    application = cast("Application[Any, FieldbotContext, Any, Any, Any, Any]", context.application)
    for handlers in application.handlers.values():
        mine = next((i for i, h in enumerate(handlers) if getattr(h, "callback", None) is location_without_alarm),
                    None)
        if mine is None:
            continue
        for handler in handlers[mine + 1:]:
            check = handler.check_update(update)
            if check is None or check is False:
                continue
            await handler.handle_update(update, application, check, context)
            return
        return


# ---- supervisors' view, and the visit safety timer -------------------------------------------------------


@serves(policy.Action.INCIDENT_VIEW)
async def list_open(update: Update, context: FieldbotContext) -> None:
    staff, chat, runtime, t = context.staff, update.effective_chat, context.runtime, context.t
    assert staff is not None and chat is not None
    async with runtime.db.read() as session:
        rows = await incidents.visible_open(session, staff)
        wanted = {i.collector_id for i in rows} | {i.owner_id for i in rows if i.owner_id is not None}
        names = {s.id: s.name for s in await session.scalars(select(Staff).where(Staff.id.in_(wanted)))}
    if not rows:
        await context.bot.send_message(chat.id, t("incident.none_open"))
        return
    lines = [t("incident.open_title", count=len(rows))]
    buttons = []
    for i in rows:
        owner = names.get(i.owner_id or 0) or t("incident.nobody")
        lines.append(t("incident.open_line", id=i.id, collector=names.get(i.collector_id, "?"),
                       time=t.datetime(i.raised_at, runtime.tz), owner=owner))
        if i.lat is not None and i.lon is not None and i.location_at is not None:
            lines.append(t("incident.open_where", lat=f"{i.lat:.5f}", lon=f"{i.lon:.5f}",
                           time=t.datetime(i.location_at, runtime.tz)))
        else:
            lines.append(t("incident.open_where_unknown"))
        if i.owner_location_message_id is not None:
            lines.append(t("incident.open_live", owner=owner))
        if i.owner_id is None:
            buttons.append([InlineKeyboardButton(t("incident.ack") + f" #{i.id}",
                                                 callback_data=AlarmAcknowledge(incident_id=i.id).pack())])
    await context.bot.send_message(chat.id, "\n".join(lines),
                                   reply_markup=InlineKeyboardMarkup(buttons) if buttons else None)


@serves(SAFETY)
@ignore_replays
async def safety_answer(update: Update, context: FieldbotContext) -> None:
    query = update.callback_query
    assert query is not None and query.data is not None and context.staff is not None
    more = SafetyMoreTime.pattern().match(query.data) is not None
    visit_id = pressed(update, SafetyMoreTime).visit_id if more else pressed(update, SafetyDone).visit_id
    try:
        async with write_once(update, context) as session:
            await incidents.safety_answer(session, context.staff, visit_id, more=more,
                                          now=context.runtime.clock.now())
    except DomainError as error:
        await refuse(update, context, error, what="visit.safety")
        return
    await query.answer()
    await drop_buttons(update, context)
    assert update.effective_chat is not None
    await context.bot.send_message(update.effective_chat.id,
                                   context.t(N_("safety.extended") if more else N_("safety.stopped")))


def first_handlers() -> list[BaseHandler[Update, FieldbotContext, object]]:
    """Before every flow: SOS from any state, and locations (to the open alarm, hidden from the collector or not)."""
    return [
        CommandHandler("sos", sos),
        MessageHandler(filters.Text(all_translations("menu.sos")), sos),
        MessageHandler(filters.LOCATION & HasOpenAlarm(), location_for_alarm),
        MessageHandler(filters.LOCATION & RoleIs(*FIELD), location_without_alarm),
    ]


def handlers() -> list[BaseHandler[Update, FieldbotContext, object]]:
    text = filters.TEXT & ~filters.COMMAND
    return [
        CallbackQueryHandler(acknowledge, pattern=AlarmAcknowledge.pattern()),
        CallbackQueryHandler(choose_resolution, pattern=AlarmResolve.pattern()),
        CallbackQueryHandler(resolution_chosen, pattern=AlarmResolution.pattern()),
        MessageHandler(text & AtStep(ResolveStep.NOTE), note_typed),
        CommandHandler("safe", ask_safe_pin),
        CallbackQueryHandler(ask_safe_pin, pattern=ImSafe.pattern()),
        MessageHandler(text & AtStep(SafeStep.PIN), safe_pin_typed),
        CommandHandler("pin", pin_start),
        MessageHandler(text & AtStep(flow=PinStep), pin_typed),
        CommandHandler("incidents", list_open),
        CallbackQueryHandler(safety_answer, pattern=SafetyMoreTime.pattern()),
        CallbackQueryHandler(safety_answer, pattern=SafetyDone.pattern()),
    ]

"""SOS, "I'm on it", staying with it until resolved, "I'm safe" with a PIN, live location, safety timer.

The SOS handlers come first in the handler list, so one tap works from any state: it interrupts
whatever conversation the collector is in (the draft stays). The alert is written to the outbox and
sent at once, before anything else is answered.
"""

from __future__ import annotations

import logging

from sqlalchemy import select
from telegram import InlineKeyboardButton, InlineKeyboardMarkup, KeyboardButton, ReplyKeyboardMarkup, Update
from telegram.error import TelegramError
from telegram.ext import BaseHandler, CallbackQueryHandler, CommandHandler, MessageHandler, filters

from bot.context import FieldbotContext
from bot.handlers.common import drop_buttons, ignore_replays, refuse, require_role, write_once
from bot.handlers.routing import HasOpenAlarm, InStep
from bot.i18n import N_, all_translations
from bot.keyboards import main_keyboard
from bot.services import audit, flows, incidents, outbox, pins
from bot.services.errors import DomainError
from bot.storage.models import Role, Staff
from scheduler.outbox_sender import send_due

log = logging.getLogger(__name__)

FIELD = (Role.COLLECTOR, Role.PHONE_COLLECTOR)
RESPONDERS = (Role.SUPERVISOR, Role.TEAM_LEAD, Role.ADMIN)
EVERYONE = tuple(Role)
MAX_WRONG_PINS = 5


async def _send_alerts_now(context: FieldbotContext) -> None:
    """Alerts do not wait for the next outbox tick: try them right away (the sweep retries failures)."""
    try:
        await send_due(context.bot, context.runtime, max_priority=outbox.Priority.URGENT)
    except Exception:  # the rows are safe in the outbox; the sweep sends them
        log.exception("immediate alert send failed; the outbox sweep will retry")


@require_role(*FIELD)
@ignore_replays
async def sos(update: Update, context: FieldbotContext) -> None:
    staff, runtime, chat = context.staff, context.runtime, update.effective_chat
    assert staff is not None and chat is not None
    policy = incidents.Policy.of(runtime.settings)
    async with write_once(update, context) as session:
        incident, new = await incidents.raise_alarm(session, staff.id, reason="sos", now=runtime.clock.now(),
                                                    policy=policy)
    log.warning("SOS from staff %s: incident %s (%s)", staff.id, incident.id, "new" if new else "again")
    await _send_alerts_now(context)
    t = context.t
    keyboard = ReplyKeyboardMarkup([[KeyboardButton(t("sos.share_location"), request_location=True)],
                                    [KeyboardButton(t("menu.sos"))]], resize_keyboard=True)
    await context.bot.send_message(chat.id, t("sos.raised"), reply_markup=keyboard)
    await context.bot.send_message(chat.id, t("sos.safe_hint"),
                                   reply_markup=InlineKeyboardMarkup([[InlineKeyboardButton(
                                       t("sos.im_safe"), callback_data="sos:safe")]]))


@require_role(*RESPONDERS)
@ignore_replays
async def acknowledge(update: Update, context: FieldbotContext) -> None:
    query = update.callback_query
    assert query is not None and query.data is not None and context.staff is not None
    runtime = context.runtime
    try:
        async with write_once(update, context) as session:
            incident = await incidents.acknowledge(session, context.staff, int(query.data.split(":")[2]),
                                                   now=runtime.clock.now(),
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
        reply_markup=InlineKeyboardMarkup([[InlineKeyboardButton(context.t("incident.resolve"),
                                                                 callback_data=f"sos:res:{incident.id}")]]))


@require_role(*RESPONDERS)
async def choose_resolution(update: Update, context: FieldbotContext) -> None:
    query = update.callback_query
    assert query is not None and query.data is not None
    incident_id = int(query.data.split(":")[2])
    t = context.t
    buttons = [[InlineKeyboardButton(t(f"resolution.{r}"), callback_data=f"sos:rr:{incident_id}:{r}")]
               for r in incidents.RESOLUTIONS]
    await query.answer()
    assert update.effective_chat is not None
    await context.bot.send_message(update.effective_chat.id, t("incident.ask_resolution"),
                                   reply_markup=InlineKeyboardMarkup(buttons))


@require_role(*RESPONDERS)
@ignore_replays
async def resolution_chosen(update: Update, context: FieldbotContext) -> None:
    query = update.callback_query
    assert query is not None and query.data is not None and context.staff is not None
    _, _, incident_id, resolution = query.data.split(":")
    if resolution not in incidents.RESOLUTIONS:
        await refuse(update, context, DomainError("error.stale_button"), what="incident.resolve")
        return
    async with write_once(update, context) as session:
        await flows.save(session, context.staff.id, "resolve", "note",
                         {"incident_id": int(incident_id), "resolution": resolution}, now=context.runtime.clock.now())
    await query.answer()
    assert update.effective_chat is not None
    await context.bot.send_message(update.effective_chat.id, context.t("incident.ask_note"))


@require_role(*RESPONDERS)
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
            await flows.clear(session, staff.id, "resolve")
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


@require_role(*FIELD)
async def ask_safe_pin(update: Update, context: FieldbotContext) -> None:
    staff, chat = context.staff, update.effective_chat
    assert staff is not None and chat is not None
    if update.callback_query is not None:
        await update.callback_query.answer()
    async with context.runtime.db.write() as session:
        person = await session.get(Staff, staff.id)
        has_pin = person is not None and person.safety_pin_hash is not None
        if has_pin:
            await flows.save(session, staff.id, "safe", "pin", {}, now=context.runtime.clock.now())
    await context.bot.send_message(chat.id, context.t(N_("safe.ask_pin") if has_pin else N_("safe.no_pin")))


@require_role(*FIELD)
@ignore_replays
async def safe_pin_typed(update: Update, context: FieldbotContext) -> None:
    message, staff, runtime = update.effective_message, context.staff, context.runtime
    assert message is not None and message.text is not None and staff is not None
    pin = message.text.strip()
    await _delete_quietly(update, context)
    async with runtime.db.read() as session:
        person = await session.get(Staff, staff.id)
    assert person is not None
    safe = await pins.matches(pin, person.safety_pin_hash)
    duress = not safe and await pins.matches(pin, person.duress_pin_hash)
    if not safe and not duress:
        await _wrong_pin(update, context, "safe")
        return
    async with write_once(update, context) as session:
        await incidents.collector_safe(session, staff, duress=duress, now=runtime.clock.now(),
                                       policy=incidents.Policy.of(runtime.settings))
        await flows.clear(session, staff.id, "safe")
    if duress:
        log.warning("duress PIN from staff %s", staff.id)
    await _send_alerts_now(context)
    # The same words and keyboard for both PINs: nothing on the phone tells them apart.
    await context.bot.send_message(message.chat.id, context.t("safe.thanks"),
                                   reply_markup=main_keyboard(context.t, staff.role))


async def _wrong_pin(update: Update, context: FieldbotContext, flow_name: str) -> None:
    """Count a wrong PIN (audited); after five the step ends: PINs are not to be guessed."""
    staff, flow, runtime, chat = context.staff, context.flow, context.runtime, update.effective_chat
    assert staff is not None and chat is not None
    wrong = int(flow.data.get("wrong", 0)) + 1 if flow is not None else 1
    log.info("wrong PIN from staff %s (%s)", staff.id, wrong)
    async with runtime.db.write() as session:
        await audit.record(session, action="staff.wrong_pin", object_type="staff", object_id=staff.id,
                           actor_id=staff.id, at=runtime.clock.now(), details={"step": flow_name, "count": wrong})
        if wrong >= MAX_WRONG_PINS:
            await flows.clear(session, staff.id, flow_name)
        elif flow is not None:
            await flows.save(session, staff.id, flow.flow, flow.step, {**flow.data, "wrong": wrong},
                             now=runtime.clock.now())
    key = N_("pin.too_many") if wrong >= MAX_WRONG_PINS else N_("safe.wrong_pin")
    await context.bot.send_message(chat.id, context.t(key))


@require_role(*FIELD)
async def pin_start(update: Update, context: FieldbotContext) -> None:
    """Set (or change) the PINs. Not while an alarm is open; changing needs the current safety PIN."""
    staff, chat = context.staff, update.effective_chat
    assert staff is not None and chat is not None
    async with context.runtime.db.write() as session:
        if await incidents.open_for(session, staff.id) is not None:
            await context.bot.send_message(chat.id, context.t("pin.error.alarm_open"))
            return
        person = await session.get(Staff, staff.id)
        step = "current" if person is not None and person.safety_pin_hash else "safety"
        await flows.save(session, staff.id, "pin", step, {}, now=context.runtime.clock.now())
    await context.bot.send_message(chat.id, context.t(N_("pin.ask_current") if step == "current"
                                                      else N_("pin.ask_safety")))


@require_role(*FIELD)
@ignore_replays
async def pin_typed(update: Update, context: FieldbotContext) -> None:
    message, staff, flow, runtime = update.effective_message, context.staff, context.flow, context.runtime
    assert message is not None and message.text is not None and staff is not None and flow is not None
    pin = message.text.strip()
    await _delete_quietly(update, context)
    if flow.step == "current":
        async with runtime.db.read() as session:
            person = await session.get(Staff, staff.id)
        if person is None or not await pins.matches(pin, person.safety_pin_hash):
            await _wrong_pin(update, context, "pin")
            return
        async with write_once(update, context) as session:
            await flows.save(session, staff.id, "pin", "safety", {}, now=runtime.clock.now())
        await context.bot.send_message(message.chat.id, context.t("pin.ask_safety"))
        return
    if not pins.valid_shape(pin):
        await context.bot.send_message(message.chat.id, context.t("pin.bad_shape"))
        return
    if flow.step == "safety":
        async with write_once(update, context) as session:
            await flows.save(session, staff.id, "pin", "duress", {"safety": await pins.hash_pin(pin)},
                             now=runtime.clock.now())
        await context.bot.send_message(message.chat.id, context.t("pin.ask_duress"))
        return
    if await pins.matches(pin, str(flow.data.get("safety"))):
        await context.bot.send_message(message.chat.id, context.t("pin.same"))
        return
    async with write_once(update, context) as session:
        person = await session.get(Staff, staff.id)
        assert person is not None
        person.safety_pin_hash, person.duress_pin_hash = str(flow.data["safety"]), await pins.hash_pin(pin)
        await flows.clear(session, staff.id, "pin")
        await audit.record(session, action="staff.pins_set", object_type="staff", object_id=staff.id,
                           actor_id=staff.id, at=runtime.clock.now())
    await context.bot.send_message(message.chat.id, context.t("pin.saved"),
                                   reply_markup=main_keyboard(context.t, staff.role))


# ---- where the collector is ----------------------------------------------------------------------------


@require_role(*FIELD)
@ignore_replays
async def location_for_alarm(update: Update, context: FieldbotContext) -> None:
    message, staff, runtime = update.effective_message, context.staff, context.runtime
    assert message is not None and message.location is not None and staff is not None
    live = update.edited_message is not None or message.location.live_period is not None
    async with write_once(update, context) as session:
        incident = await incidents.add_location(session, staff.id, lat=message.location.latitude,
                                                lon=message.location.longitude, now=runtime.clock.now(), live=live)
    if incident is not None and update.edited_message is None:
        await context.bot.send_message(message.chat.id, context.t("sos.location_received"))


# ---- supervisors' view, and the visit safety timer -------------------------------------------------------


@require_role(*RESPONDERS)
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
        if i.owner_id is None:
            buttons.append([InlineKeyboardButton(t("incident.ack") + f" #{i.id}", callback_data=f"sos:ack:{i.id}")])
    await context.bot.send_message(chat.id, "\n".join(lines),
                                   reply_markup=InlineKeyboardMarkup(buttons) if buttons else None)


@require_role(*FIELD)
@ignore_replays
async def safety_answer(update: Update, context: FieldbotContext) -> None:
    query = update.callback_query
    assert query is not None and query.data is not None and context.staff is not None
    _, choice, visit_id = query.data.split(":")
    try:
        async with write_once(update, context) as session:
            await incidents.safety_answer(session, context.staff, int(visit_id), more=choice == "more",
                                          now=context.runtime.clock.now())
    except DomainError as error:
        await refuse(update, context, error, what="visit.safety")
        return
    await query.answer()
    await drop_buttons(update, context)
    assert update.effective_chat is not None
    await context.bot.send_message(update.effective_chat.id,
                                   context.t(N_("safety.extended") if choice == "more" else N_("safety.stopped")))


def first_handlers() -> list[BaseHandler[Update, FieldbotContext, object]]:
    """Before every flow: SOS from any state, and locations while an alarm is open."""
    return [
        CommandHandler("sos", sos),
        MessageHandler(filters.Text(all_translations("menu.sos")), sos),
        MessageHandler(filters.LOCATION & HasOpenAlarm(), location_for_alarm),
    ]


def handlers() -> list[BaseHandler[Update, FieldbotContext, object]]:
    text = filters.TEXT & ~filters.COMMAND
    return [
        CallbackQueryHandler(acknowledge, pattern=r"^sos:ack:\d{1,9}$"),
        CallbackQueryHandler(choose_resolution, pattern=r"^sos:res:\d{1,9}$"),
        CallbackQueryHandler(resolution_chosen, pattern=r"^sos:rr:\d{1,9}:[a-z_]+$"),
        MessageHandler(text & InStep("resolve", "note"), note_typed),
        CommandHandler("safe", ask_safe_pin),
        CallbackQueryHandler(ask_safe_pin, pattern=r"^sos:safe$"),
        MessageHandler(text & InStep("safe", "pin"), safe_pin_typed),
        CommandHandler("pin", pin_start),
        MessageHandler(text & InStep("pin", "current", "safety", "duress"), pin_typed),
        CommandHandler("incidents", list_open),
        CallbackQueryHandler(safety_answer, pattern=r"^sf:(more|done):\d{1,9}$"),
    ]

"""/visits: the collector's visit list, the case card, the debtor's phone (audited) and today's route."""

from __future__ import annotations

import logging
from datetime import timedelta

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.ext import BaseHandler, CallbackQueryHandler, CommandHandler, MessageHandler, filters

from bot.buttons import CaseCard, CasePhone, CheckIn, DayPlanFile, ExtensionAsk, RoutePicture, VisitListPage
from bot.context import FieldbotContext
from bot.handlers.common import ignore_replays, pressed, refuse, serves, show, write_once
from bot.handlers.routing import RoleIs
from bot.i18n import all_translations
from bot.services import coords, day_plan, masking, visits
from bot.services.errors import DomainError
from bot.services.policy import Action
from bot.services.route import plan_route, render_route_png
from bot.storage.models import Role, Staff

log = logging.getLogger(__name__)

PAGE_SIZE = 8
FIELD_ROLES = (Role.COLLECTOR, Role.PHONE_COLLECTOR)
LOCATION_FRESH_FOR = timedelta(hours=12)


async def _send(update: Update, context: FieldbotContext, text: str,
                buttons: list[list[InlineKeyboardButton]] | None = None, *, edit: bool = True) -> None:
    """Debtor data: always with protect_content. A button press edits its own message."""
    await show(update, context, text, InlineKeyboardMarkup(buttons) if buttons else None, edit=edit)


async def _origin(context: FieldbotContext) -> tuple[float, float] | None:
    assert context.staff is not None
    runtime = context.runtime
    async with runtime.db.read() as session:
        me = await session.get(Staff, context.staff.id)
    if me is None or me.last_lat is None or me.last_lon is None or me.last_location_at is None:
        return None
    if runtime.clock.now() - me.last_location_at > LOCATION_FRESH_FOR:
        return None
    return me.last_lat, me.last_lon


@serves(Action.CASE_WORK)
async def show_list(update: Update, context: FieldbotContext) -> None:
    assert context.staff is not None
    t, runtime = context.t, context.runtime
    offset = pressed(update, VisitListPage).offset if update.callback_query is not None else 0
    origin = await _origin(context)
    now = runtime.clock.now()
    async with runtime.db.read() as session:
        listing = await visits.visit_list(session, context.staff, now=now, calendar=runtime.calendar,
                                          origin=origin, offset=offset, limit=PAGE_SIZE)
        plan_due = await day_plan.still_to_file(session, context.staff, now=now, calendar=runtime.calendar)
    if not listing.total:
        await _send(update, context, t("visits.none"))
        return
    filed = None
    if plan_due and update.callback_query is None:
        # The day's first look at the list files its plan, quietly (the list reads as it always does); the
        # day_plans row makes it once (no write_once: a shared location shows the list after its own).
        try:
            async with runtime.db.write() as session:
                filed = await day_plan.file_today(session, context.staff, now=now, calendar=runtime.calendar,
                                                  origin=origin)
        except DomainError:
            filed = None
    page = listing.items
    lines = [t("visits.title", count=listing.total, overdue=listing.overdue)]
    buttons = []
    for n, item in enumerate(page, start=offset + 1):
        case = item.case
        mark = "⚠️" if item.overdue else ("🔴" if item.due_today else "🟢")
        distance = f" · {item.distance_m / 1000:.1f} km" if item.distance_m is not None else ""
        due = t.datetime(case.visit_due_at, runtime.tz) if case.visit_due_at else "-"
        draft = " ✏️" if item.draft_visit_id else ""
        lines.append(t("visits.line", n=n, mark=mark, case_no=case.case_no, debtor=masking.mask_name(case.debtor_name),
                       amount=t.money(case.amount_due), due=due, distance=distance) + draft)
        buttons.append([InlineKeyboardButton(f"{mark} {case.case_no} {masking.mask_name(case.debtor_name)}",
                                             callback_data=CaseCard(case_id=case.id).pack())])
    nav = []
    if offset > 0:
        nav.append(InlineKeyboardButton("◀", callback_data=VisitListPage(offset=max(0, offset - PAGE_SIZE)).pack()))
    if offset + PAGE_SIZE < listing.total:
        nav.append(InlineKeyboardButton("▶", callback_data=VisitListPage(offset=offset + PAGE_SIZE).pack()))
    if nav:
        buttons.append(nav)
    buttons.append([InlineKeyboardButton(t("visits.route"), callback_data=RoutePicture().pack())])
    if plan_due and filed is None:
        buttons.append([InlineKeyboardButton(t("dayplan.button"), callback_data=DayPlanFile().pack())])
    if origin is None:
        lines.append(t("visits.share_location_hint"))
    await _send(update, context, "\n".join(lines), buttons)


@serves(Action.DAY_PLAN_FILE)
@ignore_replays
async def file_plan(update: Update, context: FieldbotContext) -> None:
    """📋 File today's plan: the list in route order goes to the supervisor, once a day."""
    assert context.staff is not None
    runtime, t = context.runtime, context.t
    origin = await _origin(context)
    try:
        async with write_once(update, context) as session:
            filed = await day_plan.file_today(session, context.staff, now=runtime.clock.now(),
                                              calendar=runtime.calendar, origin=origin)
    except DomainError as error:
        await refuse(update, context, error, what="dayplan.file")
        return
    text = (t("dayplan.filed", count=len(filed.plan.case_ids)) if filed.new
            else t("dayplan.already", time=t.datetime(filed.plan.filed_at, runtime.tz)))
    await show(update, context, text, edit=False)


@serves(Action.CASE_WORK)
async def show_card(update: Update, context: FieldbotContext) -> None:
    assert context.staff is not None
    case_id = pressed(update, CaseCard).case_id
    t, runtime = context.t, context.runtime
    try:
        async with runtime.db.read() as session:
            card = await visits.case_card(session, context.staff, case_id)
    except DomainError as error:
        await refuse(update, context, error, what="case.card")
        return
    case = card.case
    lines = [
        t("card.head", case_no=case.case_no, bank=case.bank),
        t("card.debtor", debtor=masking.mask_name(case.debtor_name), id=case.id_number_masked or "-",
          phone=masking.mask_phone(case.phone)),
        t("card.address", address=case.address),
        t("card.amount", amount=t.money(case.amount_due),
          days=case.overdue_days if case.overdue_days is not None else "-"),
        t("card.deadline", due=t.datetime(case.visit_due_at, runtime.tz) if case.visit_due_at else "-"),
    ]
    if case.next_action and case.next_action_on:
        lines.append(t("card.next", action=t(f"next.{case.next_action}"), date=t.date(case.next_action_on)))
    if card.visits:
        lines.append(t("card.history"))
        for v in card.visits[-5:]:
            when = t.datetime(v.filed_at or v.started_at, runtime.tz)
            code = t(f"code.{v.code}") if v.code else "-"
            lines.append(f"  · {when} {code} ({card.collector_names.get(v.collector_id, '')})")
    for p in card.promises[-3:]:
        lines.append(t("card.promise", amount=t.money(p.amount_fen / 100), date=t.date(p.due_on),
                       status=t(f"promise.{p.status}")))
    start_label = t("card.continue") if card.draft else t("card.checkin")
    buttons = [[InlineKeyboardButton(start_label, callback_data=CheckIn(case_id=case.id).pack())]]
    if case.visit_due_at is not None and case.visit_done_at is None:
        buttons.append([InlineKeyboardButton(t("card.extension"), callback_data=ExtensionAsk(case_id=case.id).pack())])
    if case.lat is not None and case.lon is not None:  # stored WGS-84; each map gets its own datum
        buttons.append([InlineKeyboardButton(t("card.nav_amap"), url=coords.amap_navigation(case.lat, case.lon,
                                                                                          case.case_no)),
                        InlineKeyboardButton(t("card.nav_baidu"), url=coords.baidu_navigation(case.lat, case.lon,
                                                                                            case.case_no))])
    buttons += [
        [InlineKeyboardButton(t("card.phone"), callback_data=CasePhone(case_id=case.id).pack())],
        [InlineKeyboardButton(t("card.back"), callback_data=VisitListPage(offset=0).pack())],
    ]
    await _send(update, context, "\n".join(lines), buttons)


@serves(Action.CASE_WORK)
async def show_phone(update: Update, context: FieldbotContext) -> None:
    assert context.staff is not None
    runtime, t = context.runtime, context.t
    try:
        async with runtime.db.write() as session:
            case = await visits.reveal_phone(session, context.staff, pressed(update, CasePhone).case_id,
                                             now=runtime.clock.now())
    except DomainError as error:
        await refuse(update, context, error, what="case.phone")
        return
    text = t("phone.show", case_no=case.case_no, phone=case.phone or t("phone.none"))
    if runtime.quiet_hours_now():
        text += "\n" + t("phone.quiet_hours", start=runtime.settings.quiet_start.strftime("%H:%M"),
                         end=runtime.settings.quiet_end.strftime("%H:%M"))
    text += "\n" + t("phone.respect")
    await _send(update, context, text, edit=False)


@serves(Action.CASE_WORK)
async def show_route(update: Update, context: FieldbotContext) -> None:
    assert context.staff is not None
    runtime, t = context.runtime, context.t
    origin = await _origin(context)
    async with runtime.db.read() as session:
        items = (await visits.visit_list(session, context.staff, now=runtime.clock.now(), calendar=runtime.calendar,
                                         origin=origin)).items
    stops = [i.case for i in items if i.case.lat is not None and i.case.lon is not None]
    if update.callback_query is not None:
        await update.callback_query.answer()
    chat = update.effective_chat
    if chat is None:
        return
    if len(stops) < 1:
        await context.bot.send_message(chat.id, t("route.none"))
        return
    points = [(c.lat, c.lon) for c in stops if c.lat is not None and c.lon is not None]
    route = plan_route(points, origin)
    lines = [t("route.title", count=len(stops), km=f"{route.total_m / 1000:.1f}")]
    for n, (i, leg) in enumerate(zip(route.order, route.legs_m if origin else [0.0, *route.legs_m], strict=True),
                                 start=1):
        case = stops[i]
        lines.append(t("route.stop", n=n, case_no=case.case_no, address=case.address, km=f"{leg / 1000:.1f}"))
    skipped = len(items) - len(stops)
    if skipped:
        lines.append(t("route.skipped", count=skipped))
    png = render_route_png(points, [c.case_no for c in stops], route, origin)
    await context.bot.send_photo(chat.id, png, caption="\n".join(lines)[:1024], protect_content=True)


@serves(Action.PROFILE_OWN)
@ignore_replays
async def position_shared(update: Update, context: FieldbotContext) -> None:
    """A location shared at any other time (the start of the day, on the road): the list, nearest first."""
    message, runtime = update.effective_message, context.runtime
    assert message is not None and message.location is not None and context.staff is not None
    try:
        async with write_once(update, context) as session:
            await visits.note_position(session, context.staff, lat=message.location.latitude,
                                       lon=message.location.longitude, sent_at=message.date,
                                       forwarded=message.forward_origin is not None, now=runtime.clock.now())
    except DomainError as error:
        await refuse(update, context, error, what="visits.position")
        return
    await context.bot.send_message(message.chat.id, context.t("visits.position_noted"))
    await show_list(update, context)


def fallback_handlers() -> list[BaseHandler[Update, FieldbotContext, object]]:
    """After every flow: a location no step asked for orders the collector's list by distance."""
    return [MessageHandler(filters.LOCATION & ~filters.UpdateType.EDITED & RoleIs(*FIELD_ROLES), position_shared)]


def handlers() -> list[BaseHandler[Update, FieldbotContext, object]]:
    return [
        CommandHandler("visits", show_list),
        MessageHandler(filters.Text(all_translations("menu.visits")), show_list),
        CallbackQueryHandler(show_list, pattern=VisitListPage.pattern()),
        CallbackQueryHandler(show_card, pattern=CaseCard.pattern()),
        CallbackQueryHandler(show_phone, pattern=CasePhone.pattern()),
        CallbackQueryHandler(show_route, pattern=RoutePicture.pattern()),
        CallbackQueryHandler(file_plan, pattern=DayPlanFile.pattern()),
    ]

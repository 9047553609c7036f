"""/assign: a supervisor puts unassigned cases of their team on collectors' lists, one by one or in bulk.

Button data carries only ids; every press is checked again on the server (role, team, case still
open), so a stale or forged button changes nothing. A bulk plan is shown first and saved in the
database with a one-time code; only the confirmation button carrying that code carries it out.
"""

from __future__ import annotations

import logging
import secrets

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.ext import BaseHandler, CallbackQueryHandler, CommandHandler, MessageHandler, filters

from bot.buttons import (
    AssignAreaTo,
    AssignByArea,
    AssignCancel,
    AssignConfirm,
    AssignNearest,
    AssignPage,
    AssignPickCase,
    AssignTo,
    Nonce,
)
from bot.context import FieldbotContext
from bot.handlers.common import pressed, refuse, say, serves, show
from bot.handlers.routing import AtStep
from bot.i18n import all_translations
from bot.keyboards import ROLE_LABELS
from bot.services import assignment, flows
from bot.services.assignment import PlannedAssignment
from bot.services.errors import DomainError
from bot.services.policy import Action
from bot.steps import AssignStep
from bot.storage.models import Case, Role

log = logging.getLogger(__name__)

PAGE_SIZE = 10


def _case_label(context: FieldbotContext, case: Case) -> str:
    return f"{case.case_no} {case.debtor_name} {context.t.money(case.amount_due)}"[:60]


async def _reply(update: Update, context: FieldbotContext, text: str,
                 buttons: list[list[InlineKeyboardButton]] | None = None) -> None:
    await show(update, context, text, InlineKeyboardMarkup(buttons) if buttons else None)


async def _refuse(update: Update, context: FieldbotContext, error: DomainError) -> None:
    await refuse(update, context, error, what="case.assign")


@serves(Action.CASE_ASSIGN)
async def show_page(update: Update, context: FieldbotContext) -> None:
    t, runtime = context.t, context.runtime
    offset = 0
    if update.callback_query is not None and update.callback_query.data:
        offset = pressed(update, AssignPage).offset
    try:
        async with runtime.db.read() as session:
            cases, total = await assignment.unassigned_cases(session, context.staff, offset=offset,
                                                             limit=PAGE_SIZE)
    except DomainError as error:
        await _refuse(update, context, error)
        return
    if total == 0:
        await _reply(update, context, t("assign.none"))
        return
    pages = (total + PAGE_SIZE - 1) // PAGE_SIZE
    lines = [t("assign.page", page=offset // PAGE_SIZE + 1, pages=pages, total=total)]
    lines += [f"{i}. {_case_label(context, c)} · {c.address}" for i, c in enumerate(cases, start=offset + 1)]
    buttons = [[InlineKeyboardButton(_case_label(context, c), callback_data=AssignPickCase(c.id).pack())]
               for c in cases]
    nav = []
    if offset > 0:
        nav.append(InlineKeyboardButton("◀", callback_data=AssignPage(max(0, offset - PAGE_SIZE)).pack()))
    if offset + PAGE_SIZE < total:
        nav.append(InlineKeyboardButton("▶", callback_data=AssignPage(offset + PAGE_SIZE).pack()))
    if nav:
        buttons.append(nav)
    buttons.append([InlineKeyboardButton(t("assign.bulk_nearest"), callback_data=AssignNearest().pack()),
                    InlineKeyboardButton(t("assign.bulk_area"), callback_data=AssignByArea().pack())])
    await _reply(update, context, "\n".join(lines), buttons)


@serves(Action.CASE_ASSIGN)
async def pick_case(update: Update, context: FieldbotContext) -> None:
    case_id = pressed(update, AssignPickCase).case_id
    runtime, t = context.runtime, context.t
    try:
        async with runtime.db.read() as session:
            case = await assignment.assignable_case(session, context.staff, case_id)
            collectors = await assignment.assignable_collectors(session, context.staff)
    except DomainError as error:
        await _refuse(update, context, error)
        return
    if case is None:
        await _refuse(update, context, DomainError("assign.error.not_available"))
        return
    buttons = [[InlineKeyboardButton(f"{c.name} ({t(ROLE_LABELS[Role(c.role)])})",
                                     callback_data=AssignTo(case.id, c.id).pack())] for c in collectors]
    buttons.append([InlineKeyboardButton(t("assign.back"), callback_data=AssignPage(0).pack())])
    await _reply(update, context, t("assign.pick_collector", case=_case_label(context, case), address=case.address),
                 buttons)


@serves(Action.CASE_ASSIGN)
async def assign_one(update: Update, context: FieldbotContext) -> None:
    assert context.staff is not None
    chosen = pressed(update, AssignTo)
    runtime = context.runtime
    try:
        async with runtime.db.write() as session:
            moved = await assignment.assign_cases(session, [chosen.case_id], chosen.collector_id, actor=context.staff,
                                                  reason="supervisor", now=runtime.clock.now(),
                                                  calendar=runtime.calendar)
            collector = await assignment.find_staff(session, str(chosen.collector_id))
    except DomainError as error:
        await _refuse(update, context, error)
        return
    text = context.t("assign.done", count=len(moved), name=collector.name,
                     cases=", ".join(c.case_no for c in moved) or "-")
    await _reply(update, context, text,
                 [[InlineKeyboardButton(context.t("assign.back"), callback_data=AssignPage(0).pack())]])


async def _offer_plan(update: Update, context: FieldbotContext, plan: list[PlannedAssignment], left_out: int) -> None:
    """Save the plan under a one-time code and show it with confirm / cancel buttons."""
    assert context.staff is not None
    runtime, t = context.runtime, context.t
    if not plan:
        await _reply(update, context, t("assign.plan_empty", left_out=left_out))
        return
    nonce = Nonce(secrets.token_hex(4))
    async with runtime.db.write() as session:
        await flows.enter(session, context.staff.id, AssignStep.CONFIRM,
                          {"nonce": nonce, "plan": [[p.case_id, p.staff_id, p.meters] for p in plan]},
                          now=runtime.clock.now())
        names = {s.id: s.name for s in await assignment.assignable_collectors(session, context.staff)}
    counts: dict[int, int] = {}
    for item in plan:
        counts[item.staff_id] = counts.get(item.staff_id, 0) + 1
    lines = [t("assign.plan", count=len(plan), left_out=left_out)]
    lines += [f"· {names.get(staff_id, staff_id)}: {count}" for staff_id, count in counts.items()]
    await _reply(update, context, "\n".join(lines), [[
        InlineKeyboardButton(t("assign.confirm"), callback_data=AssignConfirm(nonce).pack()),
        InlineKeyboardButton(t("assign.cancel"), callback_data=AssignCancel().pack()),
    ]])


@serves(Action.CASE_ASSIGN)
async def bulk_nearest(update: Update, context: FieldbotContext) -> None:
    async with context.runtime.db.read() as session:
        plan, left_out = await assignment.plan_nearest(session, context.staff)
    await _offer_plan(update, context, plan, left_out)


@serves(Action.CASE_ASSIGN)
async def bulk_area(update: Update, context: FieldbotContext) -> None:
    assert context.staff is not None
    runtime = context.runtime
    async with runtime.db.write() as session:
        await flows.enter(session, context.staff.id, AssignStep.AREA, {}, now=runtime.clock.now())
    await _reply(update, context, context.t("assign.ask_area"))


@serves(Action.CASE_ASSIGN)
async def area_entered(update: Update, context: FieldbotContext) -> None:
    message = update.effective_message
    assert message is not None and message.text is not None and context.staff is not None
    area = message.text.strip()[:50]
    runtime, t = context.runtime, context.t
    async with runtime.db.write() as session:
        cases, total = await assignment.unassigned_cases(session, context.staff, limit=10_000, address_contains=area)
        collectors = await assignment.assignable_collectors(session, context.staff)
        if total:
            await flows.enter(session, context.staff.id, AssignStep.AREA_COLLECTOR,
                              {"area": area, "cases": [c.id for c in cases]}, now=runtime.clock.now())
    if not total:
        await say(update, context, "assign.area_none", area=area)
        return
    buttons = [[InlineKeyboardButton(c.name, callback_data=AssignAreaTo(c.id).pack())] for c in collectors]
    buttons.append([InlineKeyboardButton(t("assign.cancel"), callback_data=AssignCancel().pack())])
    await _reply(update, context, t("assign.area_found", area=area, count=total), buttons)


@serves(Action.CASE_ASSIGN)
async def area_collector(update: Update, context: FieldbotContext) -> None:
    flow = context.flow
    current = flow is not None and flow.at is AssignStep.AREA_COLLECTOR
    try:
        async with context.runtime.db.read() as session:
            plan = await assignment.plan_for(session, context.staff, flow.data["cases"] if flow and current else [],
                                             pressed(update, AssignAreaTo).collector_id)
    except DomainError as error:
        await _refuse(update, context, error)
        return
    if not current:
        await _refuse(update, context, DomainError("error.stale_button"))
        return
    await _offer_plan(update, context, plan, 0)


@serves(Action.CASE_ASSIGN)
async def confirm_plan(update: Update, context: FieldbotContext) -> None:
    assert context.staff is not None
    flow = context.flow
    nonce = pressed(update, AssignConfirm).nonce
    if flow is None or flow.at is not AssignStep.CONFIRM or flow.data.get("nonce") != nonce:
        await _refuse(update, context, DomainError("error.stale_button"))
        return
    plan = [PlannedAssignment(int(c), int(s), m) for c, s, m in flow.data["plan"]]
    runtime = context.runtime
    try:
        async with runtime.db.write() as session:
            moved = await assignment.execute_plan(session, plan, actor=context.staff, reason="bulk",
                                                  now=runtime.clock.now(), calendar=runtime.calendar)
            await flows.clear(session, context.staff.id, AssignStep.FLOW)
    except DomainError as error:
        await _refuse(update, context, error)
        return
    await _reply(update, context, context.t("assign.bulk_done", count=len(moved)))


@serves(Action.CASE_ASSIGN)
async def cancel_plan(update: Update, context: FieldbotContext) -> None:
    assert context.staff is not None
    async with context.runtime.db.write() as session:
        await flows.clear(session, context.staff.id, AssignStep.FLOW)
    await _reply(update, context, context.t("assign.cancelled"))


def handlers() -> list[BaseHandler[Update, FieldbotContext, object]]:
    return [
        CommandHandler("assign", show_page),
        MessageHandler(filters.Text(all_translations("menu.assign")), show_page),
        CallbackQueryHandler(show_page, pattern=AssignPage.pattern()),
        CallbackQueryHandler(pick_case, pattern=AssignPickCase.pattern()),
        CallbackQueryHandler(assign_one, pattern=AssignTo.pattern()),
        CallbackQueryHandler(bulk_nearest, pattern=AssignNearest.pattern()),
        CallbackQueryHandler(bulk_area, pattern=AssignByArea.pattern()),
        CallbackQueryHandler(area_collector, pattern=AssignAreaTo.pattern()),
        CallbackQueryHandler(confirm_plan, pattern=AssignConfirm.pattern()),
        CallbackQueryHandler(cancel_plan, pattern=AssignCancel.pattern()),
        MessageHandler(filters.TEXT & ~filters.COMMAND & AtStep(AssignStep.AREA), area_entered),
    ]

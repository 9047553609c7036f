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

from bot.context import FieldbotContext
from bot.handlers.common import refuse, require_role, say, show
from bot.handlers.routing import InStep
from bot.i18n import all_translations
from bot.keyboards import ROLE_LABELS
from bot.services import assignment, flows
from bot.services.assignment import PlannedAssignment
from bot.services.errors import DomainError
from bot.storage.models import Case, Role

log = logging.getLogger(__name__)

PAGE_SIZE = 10
FLOW = "assign"
MANAGERS = (Role.SUPERVISOR, Role.ADMIN)


def _case_label(context: FieldbotContext, case: Case) -> str:
    return f"{case.case_no} {case.debtor_name} {context.t.money(case.amount_due)}"[:60]


async def _reply(update: Update, context: FieldbotContext, text: str,
                 buttons: list[list[InlineKeyboardButton]] | None = None) -> None:
    await show(update, context, text, InlineKeyboardMarkup(buttons) if buttons else None)


async def _refuse(update: Update, context: FieldbotContext, error: DomainError) -> None:
    await refuse(update, context, error, what="case.assign")


@require_role(*MANAGERS)
async def show_page(update: Update, context: FieldbotContext) -> None:
    t, runtime = context.t, context.runtime
    offset = 0
    if update.callback_query is not None and update.callback_query.data:
        offset = max(0, int(update.callback_query.data.split(":")[2]))
    async with runtime.db.read() as session:
        cases, total = await assignment.unassigned_cases(session, context.staff, offset=offset, limit=PAGE_SIZE)
    if total == 0:
        await _reply(update, context, t("assign.none"))
        return
    pages = (total + PAGE_SIZE - 1) // PAGE_SIZE
    lines = [t("assign.page", page=offset // PAGE_SIZE + 1, pages=pages, total=total)]
    lines += [f"{i}. {_case_label(context, c)} · {c.address}" for i, c in enumerate(cases, start=offset + 1)]
    buttons = [[InlineKeyboardButton(_case_label(context, c), callback_data=f"asg:c:{c.id}")] for c in cases]
    nav = []
    if offset > 0:
        nav.append(InlineKeyboardButton("◀", callback_data=f"asg:p:{max(0, offset - PAGE_SIZE)}"))
    if offset + PAGE_SIZE < total:
        nav.append(InlineKeyboardButton("▶", callback_data=f"asg:p:{offset + PAGE_SIZE}"))
    if nav:
        buttons.append(nav)
    buttons.append([InlineKeyboardButton(t("assign.bulk_nearest"), callback_data="asg:near"),
                    InlineKeyboardButton(t("assign.bulk_area"), callback_data="asg:area")])
    await _reply(update, context, "\n".join(lines), buttons)


@require_role(*MANAGERS)
async def pick_case(update: Update, context: FieldbotContext) -> None:
    query = update.callback_query
    assert query is not None and query.data is not None
    case_id = int(query.data.split(":")[2])
    runtime, t = context.runtime, context.t
    async with runtime.db.read() as session:
        case = await assignment.assignable_case(session, context.staff, case_id)
        collectors = await assignment.assignable_collectors(session, context.staff)
    if case is None:
        await _refuse(update, context, DomainError("assign.error.not_available"))
        return
    buttons = [[InlineKeyboardButton(f"{c.name} ({t(ROLE_LABELS[Role(c.role)])})",
                                     callback_data=f"asg:to:{case.id}:{c.id}")] for c in collectors]
    buttons.append([InlineKeyboardButton(t("assign.back"), callback_data="asg:p:0")])
    await _reply(update, context, t("assign.pick_collector", case=_case_label(context, case), address=case.address),
                 buttons)


@require_role(*MANAGERS)
async def assign_one(update: Update, context: FieldbotContext) -> None:
    query = update.callback_query
    assert query is not None and query.data is not None and context.staff is not None
    _, _, case_id, staff_id = query.data.split(":")
    runtime = context.runtime
    try:
        async with runtime.db.write() as session:
            moved = await assignment.assign_cases(session, [int(case_id)], int(staff_id), actor=context.staff,
                                                  reason="supervisor", now=runtime.clock.now(),
                                                  calendar=runtime.calendar)
            collector = await assignment.find_staff(session, staff_id)
    except DomainError as error:
        await _refuse(update, context, error)
        return
    text = context.t("assign.done", count=len(moved), name=collector.name,
                     cases=", ".join(c.case_no for c in moved) or "-")
    await _reply(update, context, text, [[InlineKeyboardButton(context.t("assign.back"), callback_data="asg:p:0")]])


async def _offer_plan(update: Update, context: FieldbotContext, plan: list[PlannedAssignment], left_out: int) -> None:
    """Save the plan under a one-time code and show it with confirm / cancel buttons."""
    assert context.staff is not None
    runtime, t = context.runtime, context.t
    if not plan:
        await _reply(update, context, t("assign.plan_empty", left_out=left_out))
        return
    nonce = secrets.token_hex(4)
    async with runtime.db.write() as session:
        await flows.save(session, context.staff.id, FLOW, "confirm",
                         {"nonce": nonce, "plan": [[p.case_id, p.staff_id, p.meters] for p in plan]},
                         now=runtime.clock.now())
        names = {s.id: s.name for s in await assignment.assignable_collectors(session, context.staff)}
    counts: dict[int, int] = {}
    for item in plan:
        counts[item.staff_id] = counts.get(item.staff_id, 0) + 1
    lines = [t("assign.plan", count=len(plan), left_out=left_out)]
    lines += [f"· {names.get(staff_id, staff_id)}: {count}" for staff_id, count in counts.items()]
    await _reply(update, context, "\n".join(lines), [[
        InlineKeyboardButton(t("assign.confirm"), callback_data=f"asg:ok:{nonce}"),
        InlineKeyboardButton(t("assign.cancel"), callback_data="asg:no"),
    ]])


@require_role(*MANAGERS)
async def bulk_nearest(update: Update, context: FieldbotContext) -> None:
    async with context.runtime.db.read() as session:
        plan, left_out = await assignment.plan_nearest(session, context.staff)
    await _offer_plan(update, context, plan, left_out)


@require_role(*MANAGERS)
async def bulk_area(update: Update, context: FieldbotContext) -> None:
    assert context.staff is not None
    runtime = context.runtime
    async with runtime.db.write() as session:
        await flows.save(session, context.staff.id, FLOW, "area", {}, now=runtime.clock.now())
    await _reply(update, context, context.t("assign.ask_area"))


@require_role(*MANAGERS)
async def area_entered(update: Update, context: FieldbotContext) -> None:
    message = update.effective_message
    assert message is not None and message.text is not None and context.staff is not None
    area = message.text.strip()[:50]
    runtime, t = context.runtime, context.t
    async with runtime.db.write() as session:
        cases, total = await assignment.unassigned_cases(session, context.staff, limit=10_000, address_contains=area)
        collectors = await assignment.assignable_collectors(session, context.staff)
        if total:
            await flows.save(session, context.staff.id, FLOW, "area_collector",
                             {"area": area, "cases": [c.id for c in cases]}, now=runtime.clock.now())
    if not total:
        await say(update, context, "assign.area_none", area=area)
        return
    buttons = [[InlineKeyboardButton(c.name, callback_data=f"asg:areato:{c.id}")] for c in collectors]
    buttons.append([InlineKeyboardButton(t("assign.cancel"), callback_data="asg:no")])
    await _reply(update, context, t("assign.area_found", area=area, count=total), buttons)


@require_role(*MANAGERS)
async def area_collector(update: Update, context: FieldbotContext) -> None:
    query = update.callback_query
    assert query is not None and query.data is not None
    flow = context.flow
    if flow is None or flow.flow != FLOW or flow.step != "area_collector":
        await _refuse(update, context, DomainError("error.stale_button"))
        return
    staff_id = int(query.data.split(":")[2])
    plan = [PlannedAssignment(case_id, staff_id) for case_id in flow.data["cases"]]
    await _offer_plan(update, context, plan, 0)


@require_role(*MANAGERS)
async def confirm_plan(update: Update, context: FieldbotContext) -> None:
    query = update.callback_query
    assert query is not None and query.data is not None and context.staff is not None
    flow = context.flow
    nonce = query.data.split(":")[2]
    if flow is None or flow.flow != FLOW or flow.step != "confirm" or flow.data.get("nonce") != nonce:
        await _refuse(update, context, DomainError("error.stale_button"))
        return
    plan = [PlannedAssignment(int(c), int(s), m) for c, s, m in flow.data["plan"]]
    runtime = context.runtime
    try:
        async with runtime.db.write() as session:
            moved = await assignment.execute_plan(session, plan, actor=context.staff, reason="bulk",
                                                  now=runtime.clock.now(), calendar=runtime.calendar)
            await flows.clear(session, context.staff.id, FLOW)
    except DomainError as error:
        await _refuse(update, context, error)
        return
    await _reply(update, context, context.t("assign.bulk_done", count=len(moved)))


@require_role(*MANAGERS)
async def cancel_plan(update: Update, context: FieldbotContext) -> None:
    assert context.staff is not None
    async with context.runtime.db.write() as session:
        await flows.clear(session, context.staff.id, FLOW)
    await _reply(update, context, context.t("assign.cancelled"))


def handlers() -> list[BaseHandler[Update, FieldbotContext, object]]:
    return [
        CommandHandler("assign", show_page),
        MessageHandler(filters.Text(all_translations("menu.assign")), show_page),
        CallbackQueryHandler(show_page, pattern=r"^asg:p:\d{1,9}$"),
        CallbackQueryHandler(pick_case, pattern=r"^asg:c:\d{1,9}$"),
        CallbackQueryHandler(assign_one, pattern=r"^asg:to:\d{1,9}:\d{1,9}$"),
        CallbackQueryHandler(bulk_nearest, pattern=r"^asg:near$"),
        CallbackQueryHandler(bulk_area, pattern=r"^asg:area$"),
        CallbackQueryHandler(area_collector, pattern=r"^asg:areato:\d{1,9}$"),
        CallbackQueryHandler(confirm_plan, pattern=r"^asg:ok:[0-9a-f]+$"),
        CallbackQueryHandler(cancel_plan, pattern=r"^asg:no$"),
        MessageHandler(filters.TEXT & ~filters.COMMAND & InStep(FLOW, "area"), area_entered),
    ]

"""/case: a supervisor, team lead or admin finds a case and reads its card; supervisors and admins act on it.

``/case ZS-1`` (a number, or its beginning) or ``/case 李四`` (any part of the debtor's name): one hit
opens the card, several give a paged list of buttons (the query is kept in the flow state). The card's
buttons (reassign, hold, close, reopen) ask for the reason as text; every press and every answer is
checked again on the server (bot/services/case_desk.py), so a stale or forged button changes nothing.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession
from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.ext import BaseHandler, CallbackQueryHandler, CommandHandler, MessageHandler, filters

from bot.buttons import (
    DeskBulkReassign,
    DeskBulkTo,
    DeskClose,
    DeskHold,
    DeskOpen,
    DeskPage,
    DeskReassign,
    DeskReassignTo,
    DeskReopen,
)
from bot.context import FieldbotContext
from bot.handlers.common import ask_for_text, ignore_replays, pressed, refuse, say, serves, show, write_once
from bot.handlers.routing import AtStep
from bot.i18n import N_, all_translations
from bot.services import assignment, case_desk, flows, masking, policy
from bot.services.case_desk import CaseCard, StatusChange
from bot.services.cases import CLOSED_STATUSES, current_assignee
from bot.services.errors import DomainError
from bot.services.payments import PAID_IN_FULL, RECALLED
from bot.services.policy import Action
from bot.steps import DeskStep
from bot.storage.models import Case, CaseStatus

log = logging.getLogger(__name__)

PAGE_SIZE = 8
# reasons the bot writes itself (a repayment file, a recall list), shown in the reader's language
SYSTEM_REASONS = {PAID_IN_FULL: N_("desk.reason.paid_in_full"), RECALLED: N_("desk.reason.recalled")}
Rows = list[list[InlineKeyboardButton]]
ASK = {StatusChange.HOLD: N_("desk.ask_reason.hold"), StatusChange.CLOSE: N_("desk.ask_reason.close"),
       StatusChange.REOPEN: N_("desk.ask_reason.reopen")}
DONE = {StatusChange.HOLD: N_("desk.done.hold"), StatusChange.CLOSE: N_("desk.done.close"),
        StatusChange.REOPEN: N_("desk.done.reopen")}


def _query_of(context: FieldbotContext) -> str | None:
    flow = context.flow
    if flow is None or flow.flow != DeskStep.FLOW:
        return None
    query = flow.data.get("query")
    return str(query) if query else None


def _label(context: FieldbotContext, case: Case) -> str:
    t = context.t
    return f"{case.case_no} {masking.mask_name(case.debtor_name)} {t.money(case.amount_due)} · " \
           f"{t('desk.status.' + case.status)}"[:60]


async def _refuse(update: Update, context: FieldbotContext, error: DomainError) -> None:
    await refuse(update, context, error, what="case.desk")


# ---- finding -------------------------------------------------------------------------------------------------


@serves(Action.CASE_VIEW)
async def find(update: Update, context: FieldbotContext) -> None:
    query = " ".join(context.args or []).strip()
    if not query:
        await say(update, context, "desk.usage")
        return
    await _results(update, context, query[:50], 0)


@serves(Action.CASE_VIEW)
async def page(update: Update, context: FieldbotContext) -> None:
    query = _query_of(context)
    if query is None:
        await _refuse(update, context, DomainError(N_("desk.error.search_gone")))
        return
    await _results(update, context, query, pressed(update, DeskPage).offset)


async def _results(update: Update, context: FieldbotContext, query: str, offset: int) -> None:
    staff, runtime, t = context.staff, context.runtime, context.t
    assert staff is not None
    try:
        async with runtime.db.write() as session:
            hits, total = await case_desk.search(session, staff, query, offset=offset, limit=PAGE_SIZE)
            if total > 1:
                await flows.enter(session, staff.id, DeskStep.RESULTS, {"query": query}, now=runtime.clock.now())
    except DomainError as error:
        await _refuse(update, context, error)
        return
    if total == 0:
        await say(update, context, "desk.none", query=query)
        return
    if total == 1 and offset == 0:
        await _show_card(update, context, hits[0].id)
        return
    pages = (total + PAGE_SIZE - 1) // PAGE_SIZE
    lines = [t("desk.hits", query=query, total=total, page=offset // PAGE_SIZE + 1, pages=pages)]
    buttons: Rows = [[InlineKeyboardButton(_label(context, c), callback_data=DeskOpen(case_id=c.id).pack())]
                     for c in hits]
    nav = []
    if offset > 0:
        nav.append(InlineKeyboardButton("◀", callback_data=DeskPage(offset=max(0, offset - PAGE_SIZE)).pack()))
    if offset + PAGE_SIZE < total:
        nav.append(InlineKeyboardButton("▶", callback_data=DeskPage(offset=offset + PAGE_SIZE).pack()))
    if nav:
        buttons.append(nav)
    if policy.allows(staff, Action.CASE_ASSIGN):
        buttons.append([InlineKeyboardButton(t("desk.btn.bulk"), callback_data=DeskBulkReassign().pack())])
    await show(update, context, "\n".join(lines), InlineKeyboardMarkup(buttons))


# ---- the card ------------------------------------------------------------------------------------------------


@serves(Action.CASE_VIEW)
async def open_card(update: Update, context: FieldbotContext) -> None:
    await _show_card(update, context, pressed(update, DeskOpen).case_id)


def render(context: FieldbotContext, card: CaseCard) -> str:
    t, tz = context.t, context.runtime.tz
    case = card.case
    head = [
        t("desk.head", case_no=case.case_no, bank=case.bank, status=t("desk.status." + case.status)),
        t("card.debtor", debtor=masking.mask_name(case.debtor_name), id=case.id_number_masked or "-",
          phone=masking.mask_phone(case.phone)),
        t("card.address", address=case.address),
        t("card.amount", amount=t.money(case.amount_due),
          days=case.overdue_days if case.overdue_days is not None else "-"),
        t("desk.assignee", name=card.assignee.name if card.assignee else "-", team=case.team or "-"),
    ]
    if case.visit_due_at is not None and case.status not in CLOSED_STATUSES:
        head.append(t("card.deadline", due=t.datetime(case.visit_due_at, tz)))
    if case.status_reason:
        reason = t(SYSTEM_REASONS[case.status_reason]) if case.status_reason in SYSTEM_REASONS else case.status_reason
        head.append(t("desk.reason", reason=reason, by=card.changed_by or "-",
                      at=t.datetime(case.status_changed_at, tz) if case.status_changed_at else "-"))
    head.append(t("desk.timeline"))
    lines = [entry.render(t, tz) for entry in card.timeline] or [t("desk.timeline_empty")]
    return case_desk.fit(head, lines, lambda n: t("desk.hidden", count=n))


def card_buttons(context: FieldbotContext, card: CaseCard) -> Rows:
    t, case = context.t, card.case
    rows: Rows = []
    is_open = case.status not in CLOSED_STATUSES
    if card.may_assign and is_open:
        rows.append([InlineKeyboardButton(t("desk.btn.reassign"), callback_data=DeskReassign(case_id=case.id).pack())])
    if card.may_change_status:
        row = []
        if is_open:
            row.append(InlineKeyboardButton(t("desk.btn.hold"), callback_data=DeskHold(case_id=case.id).pack()))
        if case.status in (CaseStatus.ON_HOLD.value, CaseStatus.CLOSED.value):
            row.append(InlineKeyboardButton(t("desk.btn.reopen"), callback_data=DeskReopen(case_id=case.id).pack()))
        if case.status != CaseStatus.CLOSED.value:
            row.append(InlineKeyboardButton(t("desk.btn.close"), callback_data=DeskClose(case_id=case.id).pack()))
        if row:
            rows.append(row)
    return rows


async def _show_card(update: Update, context: FieldbotContext, case_id: int) -> None:
    runtime = context.runtime
    try:
        async with runtime.db.read() as session:
            card = await case_desk.card(session, context.staff, case_id, runtime.calendar)
    except DomainError as error:
        await _refuse(update, context, error)
        return
    buttons = card_buttons(context, card)
    await show(update, context, render(context, card), InlineKeyboardMarkup(buttons) if buttons else None)


# ---- reassigning ---------------------------------------------------------------------------------------------


@serves(Action.CASE_ASSIGN)
async def reassign(update: Update, context: FieldbotContext) -> None:
    case_id = pressed(update, DeskReassign).case_id
    t = context.t
    try:
        async with context.runtime.db.read() as session:
            case = (await case_desk.check_reassign(session, context.staff, [case_id]))[0]
            holder = await current_assignee(session, case_id)
            collectors = [c for c in await assignment.assignable_collectors(session, context.staff)
                          if (case.team is None or c.team == case.team) and (holder is None or c.id != holder.id)]
    except DomainError as error:
        await _refuse(update, context, error)
        return
    if not collectors:
        await say(update, context, "desk.no_collectors")
        return
    buttons: Rows = [[InlineKeyboardButton(c.name, callback_data=DeskReassignTo(case_id=case_id,
                                                                                collector_id=c.id).pack())]
                     for c in collectors[:30]]
    buttons.append([InlineKeyboardButton(t("desk.btn.back"), callback_data=DeskOpen(case_id=case_id).pack())])
    await show(update, context, t("desk.pick_collector", case_no=case.case_no), InlineKeyboardMarkup(buttons))


@serves(Action.CASE_ASSIGN)
async def reassign_to(update: Update, context: FieldbotContext) -> None:
    chosen = pressed(update, DeskReassignTo)

    async def check(session: AsyncSession) -> object:
        return await case_desk.check_reassign(session, context.staff, [chosen.case_id], chosen.collector_id)

    await ask_for_text(update, context, DeskStep.REASSIGN_REASON,
                       {"case_ids": [chosen.case_id], "to": chosen.collector_id, "query": _query_of(context)},
                       "desk.ask_reason.reassign", check=check, what="case.desk")


@serves(Action.CASE_ASSIGN)
async def bulk(update: Update, context: FieldbotContext) -> None:
    staff, t = context.staff, context.t
    assert staff is not None
    query = _query_of(context)
    if query is None:
        await _refuse(update, context, DomainError(N_("desk.error.search_gone")))
        return
    runtime = context.runtime
    try:
        async with runtime.db.write() as session:
            ids = await case_desk.reassignable(session, staff, query)
            collectors = await assignment.assignable_collectors(session, staff)
            await flows.enter(session, staff.id, DeskStep.RESULTS, {"query": query, "ids": ids},
                              now=runtime.clock.now())
    except DomainError as error:
        await _refuse(update, context, error)
        return
    if not ids:
        await say(update, context, "desk.bulk_none")
        return
    buttons: Rows = [[InlineKeyboardButton(f"{c.name} ({c.team or '-'})",
                                           callback_data=DeskBulkTo(collector_id=c.id).pack())]
                     for c in collectors[:30]]
    await show(update, context, t("desk.bulk_pick", count=len(ids), query=query), InlineKeyboardMarkup(buttons))


@serves(Action.CASE_ASSIGN)
async def bulk_to(update: Update, context: FieldbotContext) -> None:
    collector_id = pressed(update, DeskBulkTo).collector_id
    flow = context.flow
    ids = [int(i) for i in flow.data.get("ids", [])] if flow is not None and flow.at is DeskStep.RESULTS else []

    async def check(session: AsyncSession) -> object:
        await assignment.plan_for(session, context.staff, [], collector_id)  # may they give cases to them?
        if not ids:
            raise DomainError(N_("desk.error.search_gone"))
        return await case_desk.check_reassign(session, context.staff, ids, collector_id)

    await ask_for_text(update, context, DeskStep.REASSIGN_REASON,
                       {"case_ids": ids, "to": collector_id, "query": _query_of(context)},
                       "desk.ask_reason.reassign", check=check, what="case.desk")


@serves(Action.CASE_ASSIGN)
@ignore_replays
async def reassign_reason(update: Update, context: FieldbotContext) -> None:
    message, flow, staff = update.effective_message, context.flow, context.staff
    assert message is not None and message.text is not None and flow is not None and staff is not None
    runtime, t = context.runtime, context.t
    case_ids = [int(i) for i in flow.data.get("case_ids", [])]
    try:
        async with write_once(update, context) as session:
            moved = await case_desk.reassign(session, staff, case_ids, int(flow.data["to"]), reason=message.text,
                                             now=runtime.clock.now(), calendar=runtime.calendar)
            collector = await assignment.find_staff(session, str(flow.data["to"]))
            await flows.clear(session, staff.id, DeskStep.FLOW)
    except DomainError as error:
        await _refuse(update, context, error)
        return
    buttons = [[InlineKeyboardButton(c.case_no, callback_data=DeskOpen(case_id=c.id).pack())] for c in moved[:8]]
    text = t("desk.reassigned", count=len(moved), name=collector.name,
             cases=", ".join(c.case_no for c in moved) or "-")
    await show(update, context, text, InlineKeyboardMarkup(buttons) if buttons else None)


# ---- hold, close, reopen -------------------------------------------------------------------------------------


async def _ask_reason(update: Update, context: FieldbotContext, case_id: int, change: StatusChange) -> None:
    async def check(session: AsyncSession) -> object:
        return await case_desk.check_status_change(session, context.staff, case_id, change)

    await ask_for_text(update, context, DeskStep.STATUS_REASON,
                       {"case_id": case_id, "change": change.value, "query": _query_of(context)},
                       ASK[change], check=check, what="case.desk")


@serves(Action.CASE_STATUS)
async def ask_hold(update: Update, context: FieldbotContext) -> None:
    await _ask_reason(update, context, pressed(update, DeskHold).case_id, StatusChange.HOLD)


@serves(Action.CASE_STATUS)
async def ask_close(update: Update, context: FieldbotContext) -> None:
    await _ask_reason(update, context, pressed(update, DeskClose).case_id, StatusChange.CLOSE)


@serves(Action.CASE_STATUS)
async def ask_reopen(update: Update, context: FieldbotContext) -> None:
    await _ask_reason(update, context, pressed(update, DeskReopen).case_id, StatusChange.REOPEN)


@serves(Action.CASE_STATUS)
@ignore_replays
async def status_reason(update: Update, context: FieldbotContext) -> None:
    message, flow, staff = update.effective_message, context.flow, context.staff
    assert message is not None and message.text is not None and flow is not None and staff is not None
    runtime, t = context.runtime, context.t
    change = StatusChange(str(flow.data["change"]))
    try:
        async with write_once(update, context) as session:
            case = await case_desk.change_status(session, staff, int(flow.data["case_id"]), change,
                                                 reason=message.text, now=runtime.clock.now(),
                                                 calendar=runtime.calendar)
            await flows.clear(session, staff.id, DeskStep.FLOW)
    except DomainError as error:
        await _refuse(update, context, error)
        return
    due = t.datetime(case.visit_due_at, runtime.tz) if case.visit_due_at else "-"
    await show(update, context, t(DONE[change], case_no=case.case_no, due=due),
               InlineKeyboardMarkup([[InlineKeyboardButton(t("desk.btn.open"),
                                                           callback_data=DeskOpen(case_id=case.id).pack())]]))


def handlers() -> list[BaseHandler[Update, FieldbotContext, Any]]:
    return [
        CommandHandler("case", find),
        MessageHandler(filters.Text(all_translations("menu.case")), find),
        CallbackQueryHandler(page, pattern=DeskPage.pattern()),
        CallbackQueryHandler(open_card, pattern=DeskOpen.pattern()),
        CallbackQueryHandler(reassign, pattern=DeskReassign.pattern()),
        CallbackQueryHandler(reassign_to, pattern=DeskReassignTo.pattern()),
        CallbackQueryHandler(bulk, pattern=DeskBulkReassign.pattern()),
        CallbackQueryHandler(bulk_to, pattern=DeskBulkTo.pattern()),
        CallbackQueryHandler(ask_hold, pattern=DeskHold.pattern()),
        CallbackQueryHandler(ask_close, pattern=DeskClose.pattern()),
        CallbackQueryHandler(ask_reopen, pattern=DeskReopen.pattern()),
        MessageHandler(filters.TEXT & ~filters.COMMAND & AtStep(DeskStep.REASSIGN_REASON), reassign_reason),
        MessageHandler(filters.TEXT & ~filters.COMMAND & AtStep(DeskStep.STATUS_REASON), status_reason),
    ]

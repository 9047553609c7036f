"""/handover: a departing collector's cases pass to successors, with the team lead's confirmation."""

from __future__ import annotations

import logging

from sqlalchemy import select
from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.ext import BaseHandler, CallbackQueryHandler, CommandHandler, MessageHandler, filters

from bot.buttons import (
    Decision,
    HandoverCancel,
    HandoverChecklist,
    HandoverDecide,
    HandoverFlag,
    HandoverFrom,
    HandoverGo,
    HandoverItemDone,
    HandoverItemNote,
    HandoverLeadOk,
    HandoverOpen,
    HandoverReassign,
    HandoverReassignTo,
    HandoverReceive,
    HandoverReview,
    HandoverStandIn,
    HandoverStandInAll,
    HandoverStandInItem,
    HandoverSuccessor,
)
from bot.context import FieldbotContext
from bot.handlers.common import ask_for_text, drop_buttons, ignore_replays, pressed, refuse, serves, show, write_once
from bot.handlers.routing import AtStep
from bot.i18n import N_, all_translations
from bot.services import flows, handover
from bot.services.errors import DomainError
from bot.services.policy import Action
from bot.steps import HandoverStep
from bot.storage.models import Case, HandoverItem, Staff

log = logging.getLogger(__name__)


def _facts_line(context: FieldbotContext, item: HandoverItem) -> str:
    t, facts = context.t, item.facts
    parts = [str(facts.get("case_no"))]
    if facts.get("promises"):
        parts.append(t("handover.fact.promises", count=len(facts["promises"])))
    if facts.get("unfiled_reports"):
        parts.append(t("handover.fact.unfiled", count=len(facts["unfiled_reports"])))
    if facts.get("pending_extensions"):
        parts.append(t("handover.fact.extensions", count=facts["pending_extensions"]))
    if facts.get("missing_evidence"):
        parts.append(t("handover.fact.missing", count=facts["missing_evidence"]))
    if item.departing_note:
        parts.append(t("handover.fact.note", note=item.departing_note))
    return " · ".join(parts)


async def _reply(update: Update, context: FieldbotContext, text: str,
                 buttons: list[list[InlineKeyboardButton]] | None = None) -> None:
    await show(update, context, text, InlineKeyboardMarkup(buttons) if buttons else None, edit=False)


# ---- starting -------------------------------------------------------------------------------------------


@serves(Action.HANDOVER_RUN)
async def begin(update: Update, context: FieldbotContext) -> None:
    try:
        async with context.runtime.db.read() as session:
            people = await handover.departing_choices(session, context.staff)
    except DomainError as error:
        await refuse(update, context, error, what="handover.start")
        return
    buttons = [[InlineKeyboardButton(p.name, callback_data=HandoverFrom(p.id).pack())] for p in people]
    await _reply(update, context, context.t("handover.pick_departing"), buttons)


@serves(Action.HANDOVER_RUN)
async def departing_chosen(update: Update, context: FieldbotContext) -> None:
    assert context.staff is not None
    from_id = pressed(update, HandoverFrom).staff_id
    try:
        async with context.runtime.db.write() as session:
            people = await handover.successor_candidates(session, context.staff, from_id)
            await flows.enter(session, context.staff.id, HandoverStep.SUCCESSORS, {"from": from_id, "to": []},
                              now=context.runtime.clock.now())
    except DomainError as error:
        await refuse(update, context, error, what="handover.start")
        return
    await _successor_picker(update, context, people, [])


async def _successor_picker(update: Update, context: FieldbotContext, people: list[Staff], chosen: list[int]) -> None:
    buttons = [[InlineKeyboardButton(("✓ " if p.id in chosen else "") + p.name,
                                     callback_data=HandoverSuccessor(p.id).pack())] for p in people]
    if chosen:
        buttons.append([InlineKeyboardButton(context.t("handover.start"), callback_data=HandoverGo().pack())])
    await show(update, context, context.t("handover.pick_successors"), InlineKeyboardMarkup(buttons))


@serves(Action.HANDOVER_RUN)
@ignore_replays
async def successor_toggled(update: Update, context: FieldbotContext) -> None:
    flow, staff = context.flow, context.staff
    assert staff is not None
    sid = pressed(update, HandoverSuccessor).staff_id
    try:
        async with write_once(update, context) as session:
            await handover.check_person(session, staff, sid)
            if flow is None or flow.at is not HandoverStep.SUCCESSORS:
                raise DomainError("error.stale_button")
            chosen = [int(x) for x in flow.data["to"]]
            chosen = [x for x in chosen if x != sid] if sid in chosen else [*chosen, sid]
            await flows.enter(session, staff.id, HandoverStep.SUCCESSORS, {**flow.data, "to": chosen},
                              now=context.runtime.clock.now())
            people = await handover.successor_candidates(session, staff, int(flow.data["from"]))
    except DomainError as error:
        await refuse(update, context, error, what="handover.successor")
        return
    await _successor_picker(update, context, people, chosen)


@serves(Action.HANDOVER_RUN)
@ignore_replays
async def go(update: Update, context: FieldbotContext) -> None:
    flow, staff, runtime = context.flow, context.staff, context.runtime
    assert staff is not None
    if flow is None or flow.at is not HandoverStep.SUCCESSORS or not flow.data.get("to"):
        await refuse(update, context, DomainError("error.stale_button"), what="handover.start")
        return
    try:
        async with write_once(update, context) as session:
            started = await handover.start(session, actor=staff, from_id=int(flow.data["from"]),
                                           successor_ids=[int(x) for x in flow.data["to"]], now=runtime.clock.now(),
                                           calendar=runtime.calendar)
            await flows.clear(session, staff.id, HandoverStep.FLOW)
            count = len(await handover.items(session, started.id))
    except DomainError as error:
        await refuse(update, context, error, what="handover.start")
        return
    await show(update, context, context.t("handover.started", id=started.id, count=count),
               InlineKeyboardMarkup([[InlineKeyboardButton(context.t("handover.cancel"),
                                                           callback_data=HandoverCancel(started.id).pack())]]))


# ---- the departing collector ----------------------------------------------------------------------------


@serves(Action.HANDOVER_DEPART)
async def checklist(update: Update, context: FieldbotContext) -> None:
    """The departing collector's list: each case with its open matters, to confirm or annotate."""
    staff = context.staff
    assert staff is not None
    async with context.runtime.db.read() as session:
        running, rows = await handover.collecting_for(session, staff)
    if running is None:
        await _reply(update, context, context.t("handover.nothing"))
        return
    t = context.t
    lines = [t("handover.checklist", id=running.id)]
    buttons = []
    for item in rows:
        mark = {"pending": "⬜", "done": "✅", "noted": "📝"}[item.departing_status]
        lines.append(f"{mark} {_facts_line(context, item)}")
        if item.departing_status == "pending":
            buttons.append([
                InlineKeyboardButton(f"✅ {item.facts.get('case_no')}", callback_data=HandoverItemDone(item.id).pack()),
                InlineKeyboardButton(t("handover.add_note"), callback_data=HandoverItemNote(item.id).pack())])
    await _reply(update, context, "\n".join(lines), buttons)


async def _mark(update: Update, context: FieldbotContext, item_id: int, note: str | None) -> None:
    """Record the departing collector's answer for one item, then show what is left (or hand it on)."""
    staff = context.staff
    assert staff is not None
    try:
        async with write_once(update, context) as session:
            _, all_done = await handover.departing_mark(session, staff, item_id, note=note,
                                                        now=context.runtime.clock.now(),
                                                        calendar=context.runtime.calendar)
            await flows.clear(session, staff.id, HandoverStep.FLOW)
    except DomainError as error:
        await refuse(update, context, error, what="handover.item")
        return
    if all_done:
        await _reply(update, context, context.t("handover.departing_done"))
    else:
        await checklist(update, context)


@serves(Action.HANDOVER_DEPART)
@ignore_replays
async def item_done(update: Update, context: FieldbotContext) -> None:
    await _mark(update, context, pressed(update, HandoverItemDone).item_id, None)


@serves(Action.HANDOVER_DEPART)
async def ask_note(update: Update, context: FieldbotContext) -> None:
    staff = context.staff
    assert staff is not None
    item_id = pressed(update, HandoverItemNote).item_id
    await ask_for_text(update, context, HandoverStep.NOTE, {"item": item_id}, "handover.ask_note",
                       what="handover.item", check=lambda session: handover.item_to_answer(session, staff, item_id))


@serves(Action.HANDOVER_DEPART)
@ignore_replays
async def note_typed(update: Update, context: FieldbotContext) -> None:
    message, flow = update.effective_message, context.flow
    assert message is not None and message.text is not None and flow is not None
    await _mark(update, context, int(flow.data["item"]), message.text.strip()[:500])


# ---- the team lead --------------------------------------------------------------------------------------


@serves(Action.HANDOVER_LEAD)
async def review(update: Update, context: FieldbotContext) -> None:
    handover_id = pressed(update, HandoverReview).handover_id
    t = context.t
    assert context.staff is not None
    try:
        async with context.runtime.db.read() as session:
            rows = await handover.review_items(session, context.staff, handover_id)
            names = {s.id: s.name for s in await session.scalars(select(Staff).where(
                Staff.id.in_({i.successor_id for i in rows})))}
    except DomainError as error:
        await refuse(update, context, error, what="handover.review")
        return
    lines = [t("handover.review_title", id=handover_id)]
    lines += [f"{_facts_line(context, i)} → {names.get(i.successor_id, '?')}" for i in rows]
    buttons = [[InlineKeyboardButton(t("handover.confirm_all"), callback_data=HandoverLeadOk(handover_id).pack())],
               [InlineKeyboardButton(t("handover.flag"), callback_data=HandoverFlag(handover_id).pack())]]
    buttons += [[InlineKeyboardButton(f"↪ {i.facts.get('case_no')}", callback_data=HandoverReassign(i.id).pack())]
                for i in rows]
    await _reply(update, context, "\n".join(lines), buttons)


@serves(Action.HANDOVER_LEAD)
async def pick_new_successor(update: Update, context: FieldbotContext) -> None:
    item_id = pressed(update, HandoverReassign).item_id
    assert context.staff is not None
    try:
        async with context.runtime.db.read() as session:
            people = await handover.successor_choices(session, context.staff, item_id)
    except DomainError as error:
        await refuse(update, context, error, what="handover.review")
        return
    buttons = [[InlineKeyboardButton(p.name, callback_data=HandoverReassignTo(item_id, p.id).pack())] for p in people]
    await _reply(update, context, context.t("handover.pick_one_successor"), buttons)


@serves(Action.HANDOVER_LEAD)
@ignore_replays
async def reassigned(update: Update, context: FieldbotContext) -> None:
    staff = context.staff
    assert staff is not None
    chosen = pressed(update, HandoverReassignTo)
    try:
        async with write_once(update, context) as session:
            item = await handover.reassign_item(session, staff, chosen.item_id, chosen.staff_id,
                                                now=context.runtime.clock.now())
            case = await session.get(Case, item.case_id)
            person = await session.get(Staff, chosen.staff_id)
    except DomainError as error:
        await refuse(update, context, error, what="handover.reassign")
        return
    await show(update, context, context.t("handover.reassigned", case_no=case.case_no if case else "?",
                                          name=person.name if person else "?"))


@serves(Action.HANDOVER_LEAD)
@ignore_replays
async def lead_ok(update: Update, context: FieldbotContext) -> None:
    staff = context.staff
    assert staff is not None
    try:
        async with write_once(update, context) as session:
            done = await handover.lead_confirm(session, staff, pressed(update, HandoverLeadOk).handover_id,
                                               now=context.runtime.clock.now(), calendar=context.runtime.calendar)
    except DomainError as error:
        await refuse(update, context, error, what="handover.confirm")
        return
    await drop_buttons(update, context)
    await _reply(update, context, context.t("handover.lead_done", id=done.id))


@serves(Action.HANDOVER_LEAD)
async def ask_flag(update: Update, context: FieldbotContext) -> None:
    staff = context.staff
    assert staff is not None
    handover_id = pressed(update, HandoverFlag).handover_id
    await ask_for_text(update, context, HandoverStep.FLAG, {"handover": handover_id}, "handover.ask_flag",
                       what="handover.flag", check=lambda session: handover.check_lead(session, staff, handover_id))


@serves(Action.HANDOVER_LEAD)
@ignore_replays
async def flag_typed(update: Update, context: FieldbotContext) -> None:
    message, flow, staff = update.effective_message, context.flow, context.staff
    assert message is not None and message.text is not None and flow is not None and staff is not None
    try:
        async with write_once(update, context) as session:
            await handover.flag(session, staff, int(flow.data["handover"]), message.text,
                                now=context.runtime.clock.now())
            await flows.clear(session, staff.id, HandoverStep.FLOW)
    except DomainError as error:
        await refuse(update, context, error, what="handover.flag")
        return
    await _reply(update, context, context.t("handover.flag_sent"))


@serves(Action.HANDOVER_DECIDE)
@ignore_replays
async def decided(update: Update, context: FieldbotContext) -> None:
    staff, runtime = context.staff, context.runtime
    assert staff is not None
    chosen = pressed(update, HandoverDecide)
    go_on = chosen.decision is Decision.GO
    try:
        async with write_once(update, context) as session:
            await handover.decide(session, staff, chosen.issue_id, go=go_on, now=runtime.clock.now(),
                                  calendar=runtime.calendar)
    except DomainError as error:
        await refuse(update, context, error, what="handover.decide")
        return
    await drop_buttons(update, context)
    await _reply(update, context,
                 context.t(N_("handover.decided_go") if go_on else N_("handover.decided_cancel")))


# ---- the successors, and cancelling ---------------------------------------------------------------------


@serves(Action.HANDOVER_RECEIVE)
@ignore_replays
async def received(update: Update, context: FieldbotContext) -> None:
    staff, runtime = context.staff, context.runtime
    assert staff is not None
    try:
        async with write_once(update, context) as session:
            moved, _ = await handover.receive(session, staff, pressed(update, HandoverReceive).handover_id,
                                              now=runtime.clock.now(), calendar=runtime.calendar)
    except DomainError as error:
        await refuse(update, context, error, what="handover.receive")
        return
    await drop_buttons(update, context)
    await _reply(update, context, context.t("handover.received", count=len(moved),
                                            cases=", ".join(c.case_no for c in moved) or "-"))


@serves(Action.HANDOVER_RUN)
@ignore_replays
async def cancelled(update: Update, context: FieldbotContext) -> None:
    staff, runtime = context.staff, context.runtime
    assert staff is not None
    try:
        async with write_once(update, context) as session:
            await handover.cancel(session, staff, pressed(update, HandoverCancel).handover_id,
                                  now=runtime.clock.now(), calendar=runtime.calendar)
    except DomainError as error:
        await refuse(update, context, error, what="handover.cancel")
        return
    await drop_buttons(update, context)
    await _reply(update, context, context.t("handover.cancel_done"))


# ---- the office: pending handovers, standing in for a silent departing collector ----------------------------


@serves(Action.HANDOVER_VIEW)
async def pending_list(update: Update, context: FieldbotContext) -> None:
    """/handovers: the running handovers of the team (every team, for the admin office), to open."""
    assert context.staff is not None
    t = context.t
    try:
        async with context.runtime.db.read() as session:
            found = await handover.pending(session, context.staff)
    except DomainError as error:
        await refuse(update, context, error, what="handover.list")
        return
    if not found:
        await _reply(update, context, t("handover.pending_none"))
        return
    lines = [t("handover.pending_title", count=len(found))]
    buttons = []
    for p in found:
        lines.append(t("handover.pending_line", id=p.handover.id, name=p.departing.name,
                       status=t(STATUS_LABELS[p.handover.status]), answered=p.answered, received=p.received,
                       count=p.items))
        buttons.append([InlineKeyboardButton(t("handover.pending_open", id=p.handover.id, name=p.departing.name),
                                             callback_data=HandoverOpen(p.handover.id).pack())])
    await _reply(update, context, "\n".join(lines), buttons)


STATUS_LABELS = {"collecting": N_("handover.status.collecting"), "lead_review": N_("handover.status.lead_review"),
                 "receiving": N_("handover.status.receiving"), "completed": N_("handover.status.completed"),
                 "cancelled": N_("handover.status.cancelled")}


@serves(Action.HANDOVER_VIEW)
async def opened(update: Update, context: FieldbotContext) -> None:
    """One handover: where it stands, each case and its successor, and the buttons the viewer may use."""
    assert context.staff is not None
    t = context.t
    handover_id = pressed(update, HandoverOpen).handover_id
    try:
        async with context.runtime.db.read() as session:
            view = await handover.overview(session, context.staff, handover_id)
    except DomainError as error:
        await refuse(update, context, error, what="handover.open")
        return
    p = view.pending
    lines = [t("handover.pending_line", id=p.handover.id, name=p.departing.name,
               status=t(STATUS_LABELS[p.handover.status]), answered=p.answered, received=p.received, count=p.items)]
    lines += [f"{_facts_line(context, i)} → {view.successors.get(i.successor_id, '?')}" for i in view.rows]
    offered = [(view.may_stand_in, N_("handover.stand_in"), HandoverStandIn(handover_id).pack()),
               (view.may_review, N_("handover.open_review"), HandoverReview(handover_id).pack()),
               (view.may_cancel, N_("handover.cancel"), HandoverCancel(handover_id).pack())]
    buttons = [[InlineKeyboardButton(t(label), callback_data=data)] for may, label, data in offered if may]
    await _reply(update, context, "\n".join(lines), buttons)


@serves(Action.HANDOVER_STAND_IN)
async def stand_in_list(update: Update, context: FieldbotContext) -> None:
    """The departing collector's checklist, for a supervisor or team lead to answer in their place."""
    assert context.staff is not None
    t = context.t
    handover_id = pressed(update, HandoverStandIn).handover_id
    try:
        async with context.runtime.db.read() as session:
            running, departing, rows = await handover.stand_in_items(session, context.staff, handover_id)
    except DomainError as error:
        await refuse(update, context, error, what="handover.stand_in")
        return
    lines = [t("handover.stand_in_title", id=running.id, name=departing.name)]
    buttons = []
    for item in rows:
        mark = {"pending": "⬜", "done": "✅", "noted": "📝"}[item.departing_status]
        lines.append(f"{mark} {_facts_line(context, item)}")
        if item.departing_status == "pending":
            buttons.append([InlineKeyboardButton(f"📝 {item.facts.get('case_no')}",
                                                 callback_data=HandoverStandInItem(item.id).pack())])
    if buttons:
        buttons.append([InlineKeyboardButton(t("handover.stand_in_all"),
                                             callback_data=HandoverStandInAll(handover_id).pack())])
    await _reply(update, context, "\n".join(lines), buttons)


@serves(Action.HANDOVER_STAND_IN)
async def stand_in_ask_one(update: Update, context: FieldbotContext) -> None:
    """One item: the note comes next, typed."""
    await _ask_stand_in_note(update, context, None, pressed(update, HandoverStandInItem).item_id)


@serves(Action.HANDOVER_STAND_IN)
async def stand_in_ask_all(update: Update, context: FieldbotContext) -> None:
    """Every item still pending: the note comes next, typed."""
    await _ask_stand_in_note(update, context, pressed(update, HandoverStandInAll).handover_id, None)


async def _ask_stand_in_note(update: Update, context: FieldbotContext, handover_id: int | None,
                             item_id: int | None) -> None:
    staff = context.staff
    assert staff is not None
    await ask_for_text(update, context, HandoverStep.STAND_IN_NOTE, {"handover": handover_id, "item": item_id},
                       "handover.ask_stand_in_note", what="handover.stand_in",
                       check=lambda session: handover.check_stand_in(session, staff, handover_id=handover_id,
                                                                     item_id=item_id))


@serves(Action.HANDOVER_STAND_IN)
@ignore_replays
async def stand_in_note_typed(update: Update, context: FieldbotContext) -> None:
    message, flow, staff, runtime = update.effective_message, context.flow, context.staff, context.runtime
    assert message is not None and message.text is not None and flow is not None and staff is not None
    handover_id, item_id = flow.data.get("handover"), flow.data.get("item")
    try:
        async with write_once(update, context) as session:
            chosen, all_done = await handover.stand_in(
                session, staff, note=message.text, now=runtime.clock.now(), calendar=runtime.calendar,
                handover_id=int(handover_id) if handover_id is not None else None,
                item_id=int(item_id) if item_id is not None else None)
            await flows.clear(session, staff.id, HandoverStep.FLOW)
    except DomainError as error:
        await refuse(update, context, error, what="handover.stand_in")
        return
    key = N_("handover.stood_in_all_done") if all_done else N_("handover.stood_in")
    await _reply(update, context, context.t(key, count=len(chosen)))


def handlers() -> list[BaseHandler[Update, FieldbotContext, object]]:
    text = filters.TEXT & ~filters.COMMAND
    return [
        CommandHandler("handover", begin),
        CallbackQueryHandler(departing_chosen, pattern=HandoverFrom.pattern()),
        CallbackQueryHandler(successor_toggled, pattern=HandoverSuccessor.pattern()),
        CallbackQueryHandler(go, pattern=HandoverGo.pattern()),
        CommandHandler("checklist", checklist),
        CallbackQueryHandler(checklist, pattern=HandoverChecklist.pattern()),
        CallbackQueryHandler(item_done, pattern=HandoverItemDone.pattern()),
        CallbackQueryHandler(ask_note, pattern=HandoverItemNote.pattern()),
        MessageHandler(text & AtStep(HandoverStep.NOTE), note_typed),
        CallbackQueryHandler(review, pattern=HandoverReview.pattern()),
        CallbackQueryHandler(pick_new_successor, pattern=HandoverReassign.pattern()),
        CallbackQueryHandler(reassigned, pattern=HandoverReassignTo.pattern()),
        CallbackQueryHandler(lead_ok, pattern=HandoverLeadOk.pattern()),
        CallbackQueryHandler(ask_flag, pattern=HandoverFlag.pattern()),
        MessageHandler(text & AtStep(HandoverStep.FLAG), flag_typed),
        CallbackQueryHandler(decided, pattern=HandoverDecide.pattern()),
        CallbackQueryHandler(received, pattern=HandoverReceive.pattern()),
        CallbackQueryHandler(cancelled, pattern=HandoverCancel.pattern()),
        CommandHandler("handovers", pending_list),
        MessageHandler(filters.Text(all_translations("menu.handovers")), pending_list),
        CallbackQueryHandler(opened, pattern=HandoverOpen.pattern()),
        CallbackQueryHandler(stand_in_list, pattern=HandoverStandIn.pattern()),
        CallbackQueryHandler(stand_in_ask_one, pattern=HandoverStandInItem.pattern()),
        CallbackQueryHandler(stand_in_ask_all, pattern=HandoverStandInAll.pattern()),
        MessageHandler(text & AtStep(HandoverStep.STAND_IN_NOTE), stand_in_note_typed),
    ]

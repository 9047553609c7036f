"""/handover: a departing collector's cases pass to successors, with the team lead's confirmation."""

from __future__ import annotations

import logging

from sqlalchemy import select
from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.ext import BaseHandler, CallbackQueryHandler, CommandHandler, MessageHandler, filters

from bot.context import FieldbotContext
from bot.handlers.common import ask_for_text, drop_buttons, ignore_replays, refuse, require_role, show, write_once
from bot.handlers.routing import InStep
from bot.i18n import N_
from bot.services import flows, handover
from bot.services.errors import DomainError
from bot.storage.models import Case, Handover, HandoverItem, HandoverStatus, Role, Staff

log = logging.getLogger(__name__)

FLOW = "handover"
STARTERS = (Role.SUPERVISOR, Role.ADMIN)
LEADS = (Role.TEAM_LEAD, Role.SUPERVISOR, Role.ADMIN)
FIELD = (Role.COLLECTOR, Role.PHONE_COLLECTOR)


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


@require_role(*STARTERS)
async def begin(update: Update, context: FieldbotContext) -> None:
    staff = context.staff
    assert staff is not None
    async with context.runtime.db.read() as session:
        query = select(Staff).where(Staff.active.is_(True), Staff.role.in_([r.value for r in FIELD]))
        if staff.role is Role.SUPERVISOR:
            query = query.where(Staff.team == staff.team)
        people = list(await session.scalars(query.order_by(Staff.name)))
    buttons = [[InlineKeyboardButton(p.name, callback_data=f"ho:from:{p.id}")] for p in people]
    await _reply(update, context, context.t("handover.pick_departing"), buttons)


@require_role(*STARTERS)
async def departing_chosen(update: Update, context: FieldbotContext) -> None:
    query = update.callback_query
    assert query is not None and query.data is not None and context.staff is not None
    from_id = int(query.data.split(":")[2])
    async with context.runtime.db.write() as session:
        await flows.save(session, context.staff.id, FLOW, "successors", {"from": from_id, "to": []},
                         now=context.runtime.clock.now())
    await _successor_picker(update, context, from_id, [])


async def _successor_picker(update: Update, context: FieldbotContext, from_id: int, chosen: list[int]) -> None:
    staff = context.staff
    assert staff is not None
    async with context.runtime.db.read() as session:
        departing = await session.get(Staff, from_id)
        query = select(Staff).where(Staff.active.is_(True), Staff.role.in_([r.value for r in FIELD]),
                                    Staff.id != from_id)
        if departing is not None:
            query = query.where(Staff.team == departing.team)
        people = list(await session.scalars(query.order_by(Staff.name)))
    buttons = [[InlineKeyboardButton(("✓ " if p.id in chosen else "") + p.name, callback_data=f"ho:succ:{p.id}")]
               for p in people]
    if chosen:
        buttons.append([InlineKeyboardButton(context.t("handover.start"), callback_data="ho:go")])
    await show(update, context, context.t("handover.pick_successors"), InlineKeyboardMarkup(buttons))


@require_role(*STARTERS)
@ignore_replays
async def successor_toggled(update: Update, context: FieldbotContext) -> None:
    query, flow, staff = update.callback_query, context.flow, context.staff
    assert query is not None and query.data is not None and staff is not None
    if flow is None or flow.flow != FLOW or flow.step != "successors":
        await refuse(update, context, DomainError("error.stale_button"), what="handover.successor")
        return
    sid = int(query.data.split(":")[2])
    chosen = [int(x) for x in flow.data["to"]]
    chosen = [x for x in chosen if x != sid] if sid in chosen else [*chosen, sid]
    async with write_once(update, context) as session:
        await flows.save(session, staff.id, FLOW, "successors", {**flow.data, "to": chosen},
                         now=context.runtime.clock.now())
    await _successor_picker(update, context, int(flow.data["from"]), chosen)


@require_role(*STARTERS)
@ignore_replays
async def go(update: Update, context: FieldbotContext) -> None:
    flow, staff, runtime = context.flow, context.staff, context.runtime
    assert staff is not None
    if flow is None or flow.flow != FLOW or not flow.data.get("to"):
        await refuse(update, context, DomainError("error.stale_button"), what="handover.start")
        return
    try:
        async with write_once(update, context) as session:
            started = await handover.start(session, actor=staff, from_id=int(flow.data["from"]),
                                           successor_ids=[int(x) for x in flow.data["to"]], now=runtime.clock.now(),
                                           calendar=runtime.calendar)
            await flows.clear(session, staff.id, FLOW)
            count = len(await handover.items(session, started.id))
    except DomainError as error:
        await refuse(update, context, error, what="handover.start")
        return
    await show(update, context, context.t("handover.started", id=started.id, count=count))


# ---- the departing collector ----------------------------------------------------------------------------


@require_role(*FIELD)
async def checklist(update: Update, context: FieldbotContext) -> None:
    """The departing collector's list: each case with its open matters, to confirm or annotate."""
    staff = context.staff
    assert staff is not None
    async with context.runtime.db.read() as session:
        running = await session.scalar(select(Handover).where(
            Handover.from_staff_id == staff.id,
            Handover.status == HandoverStatus.COLLECTING.value))
        rows = await handover.items(session, running.id) if running else []
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
            buttons.append([InlineKeyboardButton(f"✅ {item.facts.get('case_no')}", callback_data=f"ho:ok:{item.id}"),
                            InlineKeyboardButton(t("handover.add_note"), callback_data=f"ho:note:{item.id}")])
    await _reply(update, context, "\n".join(lines), buttons)


async def _mark(update: Update, context: FieldbotContext, item_id: int, note: str | None) -> None:
    """Record the departing collector's answer for one item, then show what is left (or hand it on)."""
    staff = context.staff
    assert staff is not None
    try:
        async with write_once(update, context) as session:
            _, all_done = await handover.departing_mark(session, staff, item_id, note=note,
                                                        now=context.runtime.clock.now())
            await flows.clear(session, staff.id, FLOW)
    except DomainError as error:
        await refuse(update, context, error, what="handover.item")
        return
    if all_done:
        await _reply(update, context, context.t("handover.departing_done"))
    else:
        await checklist(update, context)


@require_role(*FIELD)
@ignore_replays
async def item_done(update: Update, context: FieldbotContext) -> None:
    query = update.callback_query
    assert query is not None and query.data is not None
    await _mark(update, context, int(query.data.split(":")[2]), None)


@require_role(*FIELD)
async def ask_note(update: Update, context: FieldbotContext) -> None:
    query = update.callback_query
    assert query is not None and query.data is not None
    await ask_for_text(update, context, FLOW, "note", {"item": int(query.data.split(":")[2])}, "handover.ask_note")


@require_role(*FIELD)
@ignore_replays
async def note_typed(update: Update, context: FieldbotContext) -> None:
    message, flow = update.effective_message, context.flow
    assert message is not None and message.text is not None and flow is not None
    await _mark(update, context, int(flow.data["item"]), message.text.strip()[:500])


# ---- the team lead --------------------------------------------------------------------------------------


@require_role(*LEADS)
async def review(update: Update, context: FieldbotContext) -> None:
    query = update.callback_query
    assert query is not None and query.data is not None
    handover_id = int(query.data.split(":")[2])
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
    buttons = [[InlineKeyboardButton(t("handover.confirm_all"), callback_data=f"ho:lok:{handover_id}")],
               [InlineKeyboardButton(t("handover.flag"), callback_data=f"ho:flag:{handover_id}")]]
    buttons += [[InlineKeyboardButton(f"↪ {i.facts.get('case_no')}", callback_data=f"ho:re:{i.id}")] for i in rows]
    await _reply(update, context, "\n".join(lines), buttons)


@require_role(*LEADS)
async def pick_new_successor(update: Update, context: FieldbotContext) -> None:
    query = update.callback_query
    assert query is not None and query.data is not None
    item_id = int(query.data.split(":")[2])
    assert context.staff is not None
    try:
        async with context.runtime.db.read() as session:
            people = await handover.successor_choices(session, context.staff, item_id)
    except DomainError as error:
        await refuse(update, context, error, what="handover.review")
        return
    buttons = [[InlineKeyboardButton(p.name, callback_data=f"ho:to:{item_id}:{p.id}")] for p in people]
    await _reply(update, context, context.t("handover.pick_one_successor"), buttons)


@require_role(*LEADS)
@ignore_replays
async def reassigned(update: Update, context: FieldbotContext) -> None:
    query, staff = update.callback_query, context.staff
    assert query is not None and query.data is not None and staff is not None
    _, _, item_id, successor_id = query.data.split(":")
    try:
        async with write_once(update, context) as session:
            item = await handover.reassign_item(session, staff, int(item_id), int(successor_id),
                                                now=context.runtime.clock.now())
            case = await session.get(Case, item.case_id)
            person = await session.get(Staff, int(successor_id))
    except DomainError as error:
        await refuse(update, context, error, what="handover.reassign")
        return
    await show(update, context, context.t("handover.reassigned", case_no=case.case_no if case else "?",
                                          name=person.name if person else "?"))


@require_role(*LEADS)
@ignore_replays
async def lead_ok(update: Update, context: FieldbotContext) -> None:
    query, staff = update.callback_query, context.staff
    assert query is not None and query.data is not None and staff is not None
    try:
        async with write_once(update, context) as session:
            done = await handover.lead_confirm(session, staff, int(query.data.split(":")[2]),
                                               now=context.runtime.clock.now())
    except DomainError as error:
        await refuse(update, context, error, what="handover.confirm")
        return
    await drop_buttons(update, context)
    await _reply(update, context, context.t("handover.lead_done", id=done.id))


@require_role(*LEADS)
async def ask_flag(update: Update, context: FieldbotContext) -> None:
    query = update.callback_query
    assert query is not None and query.data is not None
    await ask_for_text(update, context, FLOW, "flag", {"handover": int(query.data.split(":")[2])},
                       "handover.ask_flag")


@require_role(*LEADS)
@ignore_replays
async def flag_typed(update: Update, context: FieldbotContext) -> None:
    message, flow, staff = update.effective_message, context.flow, context.staff
    assert message is not None and message.text is not None and flow is not None and staff is not None
    try:
        async with write_once(update, context) as session:
            await handover.flag(session, staff, int(flow.data["handover"]), message.text,
                                now=context.runtime.clock.now())
            await flows.clear(session, staff.id, FLOW)
    except DomainError as error:
        await refuse(update, context, error, what="handover.flag")
        return
    await _reply(update, context, context.t("handover.flag_sent"))


@require_role(Role.SUPERVISOR, Role.ADMIN)
@ignore_replays
async def decided(update: Update, context: FieldbotContext) -> None:
    query, staff, runtime = update.callback_query, context.staff, context.runtime
    assert query is not None and query.data is not None and staff is not None
    _, _, issue_id, verdict = query.data.split(":")
    try:
        async with write_once(update, context) as session:
            await handover.decide(session, staff, int(issue_id), go=verdict == "go", now=runtime.clock.now(),
                                  calendar=runtime.calendar)
    except DomainError as error:
        await refuse(update, context, error, what="handover.decide")
        return
    await drop_buttons(update, context)
    await _reply(update, context,
                 context.t(N_("handover.decided_go") if verdict == "go" else N_("handover.decided_cancel")))


# ---- the successors, and cancelling ---------------------------------------------------------------------


@require_role(*FIELD)
@ignore_replays
async def received(update: Update, context: FieldbotContext) -> None:
    query, staff, runtime = update.callback_query, context.staff, context.runtime
    assert query is not None and query.data is not None and staff is not None
    try:
        async with write_once(update, context) as session:
            moved, _ = await handover.receive(session, staff, int(query.data.split(":")[2]), now=runtime.clock.now(),
                                              calendar=runtime.calendar)
    except DomainError as error:
        await refuse(update, context, error, what="handover.receive")
        return
    await drop_buttons(update, context)
    await _reply(update, context, context.t("handover.received", count=len(moved),
                                            cases=", ".join(c.case_no for c in moved) or "-"))


@require_role(*STARTERS)
@ignore_replays
async def cancelled(update: Update, context: FieldbotContext) -> None:
    query, staff, runtime = update.callback_query, context.staff, context.runtime
    assert query is not None and query.data is not None and staff is not None
    try:
        async with write_once(update, context) as session:
            await handover.cancel(session, staff, int(query.data.split(":")[2]), now=runtime.clock.now(),
                                  calendar=runtime.calendar)
    except DomainError as error:
        await refuse(update, context, error, what="handover.cancel")
        return
    await _reply(update, context, context.t("handover.cancel_done"))


def handlers() -> list[BaseHandler[Update, FieldbotContext, object]]:
    text = filters.TEXT & ~filters.COMMAND
    return [
        CommandHandler("handover", begin),
        CallbackQueryHandler(departing_chosen, pattern=r"^ho:from:\d{1,9}$"),
        CallbackQueryHandler(successor_toggled, pattern=r"^ho:succ:\d{1,9}$"),
        CallbackQueryHandler(go, pattern=r"^ho:go$"),
        CommandHandler("checklist", checklist),
        CallbackQueryHandler(checklist, pattern=r"^ho:list$"),
        CallbackQueryHandler(item_done, pattern=r"^ho:ok:\d{1,9}$"),
        CallbackQueryHandler(ask_note, pattern=r"^ho:note:\d{1,9}$"),
        MessageHandler(text & InStep(FLOW, "note"), note_typed),
        CallbackQueryHandler(review, pattern=r"^ho:rev:\d{1,9}$"),
        CallbackQueryHandler(pick_new_successor, pattern=r"^ho:re:\d{1,9}$"),
        CallbackQueryHandler(reassigned, pattern=r"^ho:to:\d{1,9}:\d{1,9}$"),
        CallbackQueryHandler(lead_ok, pattern=r"^ho:lok:\d{1,9}$"),
        CallbackQueryHandler(ask_flag, pattern=r"^ho:flag:\d{1,9}$"),
        MessageHandler(text & InStep(FLOW, "flag"), flag_typed),
        CallbackQueryHandler(decided, pattern=r"^ho:dec:\d{1,9}:(go|cancel)$"),
        CallbackQueryHandler(received, pattern=r"^ho:rcv:\d{1,9}$"),
        CallbackQueryHandler(cancelled, pattern=r"^ho:cancel:\d{1,9}$"),
    ]

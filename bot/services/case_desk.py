"""The supervisor's desk: find a case, read its whole story, and move it (reassign, hold, close, reopen).

Finding (:func:`search`) looks at case numbers (exact, or the beginning) and debtor names (any part)
of the cases the policy lets the person read (``CASE_VIEW``: a supervisor's or team lead's team, every
team for the admin office). :func:`card` gathers the timeline: assignments, visits with their
evidence, promises, payments, extension requests, handovers and status changes, oldest first;
:func:`fit` keeps the rendered card within Telegram's 4,096 characters by dropping the oldest lines.

Every change takes the case row's lock first, so two taps or two supervisors at once are applied one
after the other and the second sees what the first did. A status change writes the reason, when and
by whom on the case, an audit entry, cancels or plans the visit reminders, and tells the collector.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time
from enum import StrEnum
from typing import Any

from sqlalchemy import case as sql_case
from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.i18n import N_, Translator
from bot.services import assignment, audit, case_events, deadlines, outbox, policy
from bot.services.actor import StaffView
from bot.services.calendar import WorkCalendar
from bot.services.cases import CLOSED_STATUSES, current_assignee
from bot.services.errors import DomainError, NotFound
from bot.services.people import t_for
from bot.storage.models import (
    Assignment,
    AuditEntry,
    Case,
    CaseStatus,
    Evidence,
    ExtensionRequest,
    Handover,
    HandoverItem,
    Payment,
    Promise,
    Staff,
    Visit,
)

TELEGRAM_LIMIT = 4096
MAX_REASON = 500
BULK_LIMIT = 50  # cases moved at once from a list of hits
STATUS_AUDIT = ("case.hold", "case.close", "case.reopen")
ADDRESS_AUDIT = "case.address_changed"  # a MOVED visit's new address (bot/services/visits.py)
# Labels looked up by value (``desk.status.<status>`` and the like), for the catalogs' completeness test.
LABELS = (
    N_("desk.status.new"), N_("desk.status.assigned"), N_("desk.status.visited"), N_("desk.status.promised"),
    N_("desk.status.paid"), N_("desk.status.disputed"), N_("desk.status.on_hold"), N_("desk.status.closed"),
    N_("desk.visit_status.draft"), N_("desk.visit_status.filed"), N_("desk.visit_status.returned"),
    N_("desk.visit_status.approved"), N_("desk.extension_status.pending"), N_("desk.extension_status.approved"),
    N_("desk.extension_status.rejected"), N_("desk.handover_status.collecting"),
    N_("desk.handover_status.lead_review"), N_("desk.handover_status.receiving"),
    N_("desk.handover_status.completed"), N_("desk.handover_status.cancelled"),
)

Param = str | int | Callable[[Translator], str]


class StatusChange(StrEnum):
    HOLD = "hold"
    CLOSE = "close"
    REOPEN = "reopen"


# ---- finding a case ------------------------------------------------------------------------------------------


def _like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


async def search(session: AsyncSession, actor: StaffView | None, query: str, *, offset: int = 0,
                 limit: int = 8) -> tuple[list[Case], int]:
    """A page of the cases ``actor`` may read whose number is ``query`` or starts with it, or whose debtor's
    name contains it; exact numbers first. (page, total)."""
    team = policy.team_filter(actor, policy.Action.CASE_VIEW)
    text = query.strip()
    if not text:
        raise DomainError(N_("desk.error.empty_query"))
    pattern = _like(text)
    where = [or_(Case.case_no == text, Case.case_no.like(pattern + "%", escape="\\"),
                 Case.debtor_name.like("%" + pattern + "%", escape="\\"))]
    if team is not None:
        where.append(Case.team.in_(team))
    total = int(await session.scalar(select(func.count()).select_from(Case).where(*where)) or 0)
    exact_first = sql_case((Case.case_no == text, 0), else_=1)
    cases = await session.scalars(select(Case).where(*where).order_by(exact_first, Case.case_no, Case.id)
                                  .offset(offset).limit(limit))
    return list(cases), total


# ---- the card ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Entry:
    """One line of a case's timeline: when, a message id and its parameters (callables take the reader's
    translator: money, dates, labels)."""

    at: datetime
    key: str
    params: dict[str, Param] = field(default_factory=dict)

    def render(self, t: Translator, tz: Any) -> str:
        values = {k: (v(t) if callable(v) else v) for k, v in self.params.items()}
        return t(N_("desk.tl.line"), at=t.datetime(self.at, tz), what=t(self.key, **values))


@dataclass(frozen=True)
class CaseCard:
    case: Case
    assignee: Staff | None
    changed_by: str | None
    timeline: list[Entry]
    may_assign: bool
    may_change_status: bool


async def _names(session: AsyncSession, ids: set[int | None]) -> dict[int, str]:
    wanted = {i for i in ids if i is not None}
    if not wanted:
        return {}
    return {i: n for i, n in (await session.execute(select(Staff.id, Staff.name).where(Staff.id.in_(wanted)))).all()}


def _money(fen: int) -> Callable[[Translator], str]:
    return lambda t: t.money(fen / 100)


def _label(key: str) -> Callable[[Translator], str]:
    return lambda t: t(key)


def _day(day: date) -> Callable[[Translator], str]:
    return lambda t: t.date(day)


def _evidence(counted: Counter[str]) -> Callable[[Translator], str]:
    return lambda t: ", ".join(f"{t('evidence.kind.' + kind)} ×{n}" for kind, n in sorted(counted.items()))


async def payments_of(session: AsyncSession, case_id: int) -> list[Payment]:
    """The bank's repayment records of the case, oldest first."""
    return list(await session.scalars(select(Payment).where(Payment.case_id == case_id)
                                      .order_by(Payment.paid_on, Payment.id)))


# the reasons the bot's own assignment paths write (bot/handlers/assign.py, bot/services/intake.py)
ASSIGNMENT_REASONS = {"supervisor": N_("desk.reason.assign"), "bulk": N_("desk.reason.bulk"),
                      "import": N_("desk.reason.import")}
HANDOVER_REASON = re.compile(r"^handover:(\d+)(:cancelled)?$")


def _assignment_reason(reason: str | None) -> Param:
    """An assignment's reason as people read it: the handover's own words for ``handover:7`` (bot/services/
    handover.py writes those), the supervisor's text as it is."""
    if reason in ASSIGNMENT_REASONS:
        return _label(ASSIGNMENT_REASONS[reason])
    found = HANDOVER_REASON.match(reason or "")
    if found is None:
        return reason or "-"
    key = N_("desk.reason.handover_cancelled") if found.group(2) else N_("desk.reason.handover")
    number = found.group(1)
    return lambda t: t(key, id=number)


async def timeline(session: AsyncSession, case: Case, calendar: WorkCalendar) -> list[Entry]:
    """Everything that happened to the case, oldest first."""
    assignments = list(await session.scalars(select(Assignment).where(Assignment.case_id == case.id)
                                             .order_by(Assignment.assigned_at, Assignment.id)))
    visits = list(await session.scalars(select(Visit).where(Visit.case_id == case.id).order_by(Visit.id)))
    kinds: dict[int, Counter[str]] = {}
    if visits:
        for visit_id, kind in (await session.execute(select(Evidence.visit_id, Evidence.kind).where(
                Evidence.visit_id.in_([v.id for v in visits])))).all():
            kinds.setdefault(visit_id, Counter())[kind] += 1
    promises = list(await session.scalars(select(Promise).where(Promise.case_id == case.id).order_by(Promise.id)))
    extensions = list(await session.scalars(select(ExtensionRequest).where(ExtensionRequest.case_id == case.id)
                                            .order_by(ExtensionRequest.id)))
    handovers = (await session.execute(select(HandoverItem, Handover).join(Handover, Handover.id ==
                                                                           HandoverItem.handover_id)
                                       .where(HandoverItem.case_id == case.id).order_by(Handover.id))).all()
    changes = list(await session.scalars(select(AuditEntry).where(
        AuditEntry.object_type == "case", AuditEntry.object_id == str(case.id),
        AuditEntry.action.in_((*STATUS_AUDIT, ADDRESS_AUDIT, *case_events.TIMELINE))).order_by(AuditEntry.seq)))
    payments = await payments_of(session, case.id)
    names = await _names(session, {a.staff_id for a in assignments} | {a.assigned_by_id for a in assignments}
                         | {v.collector_id for v in visits} | {e.decided_by_id for e in extensions}
                         | {e.collector_id for e in extensions}
                         | {h.from_staff_id for _, h in handovers} | {i.successor_id for i, _ in handovers}
                         | {c.actor_id for c in changes})

    def who(staff_id: int | None) -> str:
        return names.get(staff_id, "-") if staff_id is not None else "-"

    entries: list[Entry] = []
    for a in assignments:
        entries.append(Entry(a.assigned_at, N_("desk.tl.assigned"), {
            "name": who(a.staff_id), "by": who(a.assigned_by_id) if a.assigned_by_id else _label(N_("desk.system")),
            "reason": _assignment_reason(a.reason)}))
    for v in visits:
        counted = kinds.get(v.id, Counter())
        entries.append(Entry(v.filed_at or v.started_at, N_("desk.tl.visit"), {
            "name": who(v.collector_id), "code": _label(f"code.{v.code}") if v.code else "-",
            "status": _label(f"desk.visit_status.{v.status}"), "evidence": _evidence(counted) if counted else "-",
            "count": sum(counted.values())}))
    for p in promises:
        entries.append(Entry(p.created_at, N_("desk.tl.promise"), {
            "amount": _money(p.amount_fen), "due": _day(p.due_on),
            "status": _label(f"promise.{p.status}"), "paid": _money(p.paid_fen)}))
    for pay in payments:
        entries.append(Entry(datetime.combine(pay.paid_on, time(0), calendar.tz), N_("desk.tl.payment"), {
            "amount": _money(pay.amount_fen), "channel": pay.channel or "-"}))
    for x in extensions:
        entries.append(Entry(x.created_at, N_("desk.tl.extension"), {
            "name": who(x.collector_id), "reason": x.reason,
            "day": _day(x.proposed_on), "status": _label(f"desk.extension_status.{x.status}"),
            "by": who(x.decided_by_id)}))
    for item, handover in handovers:
        entries.append(Entry(handover.started_at, N_("desk.tl.handover"), {
            "name": who(handover.from_staff_id), "to": who(item.successor_id),
            "status": _label(f"desk.handover_status.{handover.status}")}))
    for change in changes:
        details = json.loads(change.details or "{}")
        if change.action in case_events.TIMELINE:  # a bank report, a registered letter, a special procedure
            entries.append(Entry(change.at, case_events.TIMELINE[change.action], {
                **case_events.params(details),
                "by": who(change.actor_id) if change.actor_id else _label(N_("desk.system"))}))
            continue
        if change.action == ADDRESS_AUDIT:
            entries.append(Entry(change.at, N_("desk.tl.address"), {
                "by": who(change.actor_id), "old": str((details.get("from") or {}).get("address") or "-"),
                "new": str((details.get("to") or {}).get("address") or "-")}))
            continue
        entries.append(Entry(change.at, N_("desk.tl.status"), {
            "status": _label(f"desk.status.{details.get('to', '')}"), "by": who(change.actor_id),
            "reason": str(details.get("reason") or "-")}))
    entries.sort(key=lambda e: e.at)
    return entries


async def card(session: AsyncSession, actor: StaffView | None, case_id: int, calendar: WorkCalendar) -> CaseCard:
    """The case and its timeline, if ``actor`` may read it; and which actions the card offers them."""
    subject = await policy.require(session, actor, policy.Action.CASE_VIEW, case_id)
    case = await session.get(Case, case_id)
    assert case is not None  # the policy found it
    changed_by = None
    if case.status_changed_by_id is not None:
        changed_by = (await _names(session, {case.status_changed_by_id})).get(case.status_changed_by_id)
    return CaseCard(case=case, assignee=await current_assignee(session, case_id), changed_by=changed_by,
                    timeline=await timeline(session, case, calendar),
                    may_assign=policy.allows(actor, policy.Action.CASE_ASSIGN, subject),
                    may_change_status=policy.allows(actor, policy.Action.CASE_STATUS, subject))


def text_length(text: str) -> int:
    """Telegram counts a message's length in UTF-16 code units."""
    return len(text.encode("utf-16-le")) // 2


def fit(head: Sequence[str], lines: Sequence[str], hidden: Callable[[int], str],
        limit: int = TELEGRAM_LIMIT) -> str:
    """``head`` and as many of the newest ``lines`` as fit within ``limit``; the dropped (oldest) ones are
    counted on a line of their own (``hidden(n)``)."""
    kept = list(lines)
    dropped = 0
    while True:
        body = list(head)
        if dropped:
            body.append(hidden(dropped))
        text = "\n".join(body + kept)
        if text_length(text) <= limit or not kept:
            return text if text_length(text) <= limit else text[:limit]
        kept.pop(0)
        dropped += 1


# ---- changes -------------------------------------------------------------------------------------------------


def clean_reason(text: str) -> str:
    reason = " ".join(text.split())[:MAX_REASON]
    if not reason:
        raise DomainError(N_("desk.error.no_reason"))
    return reason


async def _locked(session: AsyncSession, case_id: int) -> Case:
    """The case row, locked for the rest of the transaction and read afresh (a change waits for another)."""
    case: Case | None = await session.scalar(select(Case).where(Case.id == case_id).with_for_update()
                                             .execution_options(populate_existing=True))
    if case is None:
        raise NotFound()
    return case


async def check_reassign(session: AsyncSession, actor: StaffView | None, case_ids: Sequence[int],
                         collector_id: int | None = None) -> list[Case]:
    """The cases, if ``actor`` may move them (to ``collector_id``) and they are open; else a refusal."""
    cases = []
    for case_id in case_ids:
        await policy.require_assignment(session, actor, case_id, collector_id)
        case = await session.get(Case, case_id)
        assert case is not None
        if case.status in CLOSED_STATUSES:
            raise DomainError(N_("desk.error.not_open"), case_no=case.case_no)
        cases.append(case)
    return cases


async def reassign(session: AsyncSession, actor: StaffView | None, case_ids: Sequence[int], collector_id: int, *,
                   reason: str, now: datetime, calendar: WorkCalendar) -> list[Case]:
    """Move open cases to one collector, with the reason (history, notices and a fresh visit window by
    :func:`bot.services.assignment.assign_cases`); the cases that moved."""
    reason = clean_reason(reason)
    ids = sorted(set(case_ids))[:BULK_LIMIT]
    for case_id in ids:  # always in id order: two bulk moves lock their rows in the same order
        await _locked(session, case_id)
    await check_reassign(session, actor, ids, collector_id)
    return await assignment.assign_cases(session, ids, collector_id, actor=actor, reason=reason, now=now,
                                         calendar=calendar)


ALLOWED_FROM: dict[StatusChange, tuple[str, ...]] = {
    StatusChange.HOLD: tuple(s.value for s in CaseStatus if s.value not in CLOSED_STATUSES),
    StatusChange.CLOSE: tuple(s.value for s in CaseStatus if s is not CaseStatus.CLOSED),
    StatusChange.REOPEN: (CaseStatus.ON_HOLD.value, CaseStatus.CLOSED.value),
}
REFUSAL = {StatusChange.HOLD: N_("desk.error.cannot_hold"), StatusChange.CLOSE: N_("desk.error.already_closed"),
           StatusChange.REOPEN: N_("desk.error.not_closed")}
NOTICE = {StatusChange.HOLD: N_("desk.notice.hold"), StatusChange.CLOSE: N_("desk.notice.close"),
          StatusChange.REOPEN: N_("desk.notice.reopen")}


async def check_status_change(session: AsyncSession, actor: StaffView | None, case_id: int,
                              change: StatusChange) -> Case:
    """The case, if ``actor`` may make ``change`` to it now; else a refusal."""
    await policy.require(session, actor, policy.Action.CASE_STATUS, case_id)
    case = await session.get(Case, case_id)
    assert case is not None
    if case.status not in ALLOWED_FROM[change]:
        raise DomainError(REFUSAL[change], case_no=case.case_no)
    return case


async def change_status(session: AsyncSession, actor: StaffView | None, case_id: int, change: StatusChange, *,
                        reason: str, now: datetime, calendar: WorkCalendar) -> Case:
    """Put the case on hold, close it, or reopen it; the second of two at once is refused as done already."""
    reason = clean_reason(reason)
    await _locked(session, case_id)
    case = await check_status_change(session, actor, case_id, change)
    before = case.status
    holder = await current_assignee(session, case.id)
    if change is StatusChange.REOPEN:
        if holder is not None and not holder.active:  # whoever held it has left: it waits for a new collector
            await _end_assignment(session, case.id, now)
            holder = None
        if holder is None:
            case.status = CaseStatus.NEW.value
            case.assign_due_at = calendar.deadline_after(now, 1)
            case.unassigned_reported_at = None
            case.visit_due_at = None
        else:
            case.status = CaseStatus.ASSIGNED.value
            case.visit_due_at = calendar.deadline_after(now, assignment.VISIT_WITHIN_WORKING_DAYS)
        case.visit_done_at = case.visit_overdue_at = None
    else:
        case.status = CaseStatus.ON_HOLD.value if change is StatusChange.HOLD else CaseStatus.CLOSED.value
    case.status_reason, case.status_changed_at = reason, now
    case.status_changed_by_id = actor.id if actor is not None else None
    case.updated_at = now
    await session.flush()
    if change is StatusChange.REOPEN:
        await deadlines.schedule_visit(session, case, now=now, calendar=calendar)
    else:
        await deadlines.cancel_visit_reminders(session, case.id, now=now)
    await audit.record(session, action=f"case.{change.value}", object_type="case", object_id=case.id,
                       actor_id=actor.id if actor else None, at=now,
                       details={"from": before, "to": case.status, "reason": reason,
                                "visit_due_at": case.visit_due_at.isoformat() if case.visit_due_at else None})
    if holder is not None and holder.active and holder.telegram_user_id is not None:
        t = t_for(holder)
        due = t.datetime(case.visit_due_at, calendar.tz) if case.visit_due_at else "-"
        await outbox.enqueue(session, chat_id=holder.telegram_user_id, kind=f"desk.{change.value}", now=now,
                             text=t(NOTICE[change], case_no=case.case_no, reason=reason, due=due),
                             protect_content=True)
    return case


async def _end_assignment(session: AsyncSession, case_id: int, now: datetime) -> None:
    current = await session.scalar(select(Assignment).where(Assignment.case_id == case_id,
                                                            Assignment.ended_at.is_(None)))
    if current is not None:
        current.ended_at = now
        await session.flush()


async def reassignable(session: AsyncSession, actor: StaffView | None, query: str) -> list[int]:
    """Of a search's hits, the open cases ``actor`` may move (at most :data:`BULK_LIMIT`)."""
    hits, _ = await search(session, actor, query, limit=BULK_LIMIT)
    movable = []
    for case in hits:
        if case.status in CLOSED_STATUSES:
            continue
        if policy.allows(actor, policy.Action.CASE_ASSIGN, await policy.case_subject(session, case.id)):
            movable.append(case.id)
    return movable

"""A collector leaves: their open cases pass to successors, item by item, under the team lead's eye.

The steps: the supervisor (or admin) starts it and the list is built from the database; the
departing collector confirms each item or notes what is pending (reminded until they do); the team
lead confirms all, reassigns a case, or flags a problem that the supervisor must decide; each
successor acknowledges receipt, and their cases move to them then, with a new 2-working-day visit
window from that moment. When every case is received the departing account is deactivated.
Until then the handover can be cancelled and every assignment is as it was. No open case is ever
without an active assignee: the departing collector keeps each case until its successor has it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import Select, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.buttons import (
    Decision,
    HandoverChecklist,
    HandoverDecide,
    HandoverReceive,
    HandoverReview,
    HandoverStandIn,
)
from bot.i18n import N_
from bot.services import audit, deadlines, outbox, policy
from bot.services.actor import StaffView
from bot.services.assignment import assign_in_session
from bot.services.calendar import WorkCalendar
from bot.services.cases import CLOSED_STATUSES, open_cases_of
from bot.services.errors import DomainError, NotFound
from bot.services.people import RUNNING, t_for
from bot.services.policy import Action
from bot.services.staff import deactivate
from bot.storage.models import (
    Assignment,
    Case,
    Evidence,
    ExtensionRequest,
    ExtensionStatus,
    Handover,
    HandoverIssue,
    HandoverItem,
    HandoverStatus,
    Incident,
    IncidentStatus,
    Promise,
    PromiseStatus,
    Role,
    Staff,
    Visit,
    VisitStatus,
)

FIELD_ROLES = (Role.COLLECTOR.value, Role.PHONE_COLLECTOR.value)
REMIND_EVERY_WORKING_HOURS = 4.0


async def _case_facts(session: AsyncSession, case: Case, departing_id: int) -> dict[str, object]:
    promises = list(await session.scalars(select(Promise).where(Promise.case_id == case.id,
                                                                Promise.status == PromiseStatus.OPEN.value)))
    unfiled = list(await session.scalars(select(Visit).where(
        Visit.case_id == case.id, Visit.collector_id == departing_id,
        Visit.status.in_((VisitStatus.DRAFT.value, VisitStatus.RETURNED.value)))))
    extensions = await session.scalar(select(func.count()).select_from(ExtensionRequest).where(
        ExtensionRequest.case_id == case.id, ExtensionRequest.status == ExtensionStatus.PENDING.value))
    missing = await session.scalar(select(func.count()).select_from(Evidence).join(Visit, Visit.id == Evidence.visit_id)
                                   .where(Visit.case_id == case.id, Evidence.status != "stored"))
    return {
        "case_no": case.case_no,
        "due": case.visit_due_at.isoformat() if case.visit_due_at else None,
        "promises": [{"amount_fen": p.amount_fen, "due_on": p.due_on.isoformat()} for p in promises],
        "unfiled_reports": [{"visit_id": v.id, "status": v.status} for v in unfiled],
        "pending_extensions": int(extensions or 0),
        "missing_evidence": int(missing or 0),
    }


async def _leads(session: AsyncSession, team: str | None) -> list[Staff]:
    """The team lead(s) who confirm a handover of ``team`` (its supervisors when it has none): the people
    the policy names for HANDOVER_LEAD."""
    ids = await policy.handover_leads(session, team)
    return list(await session.scalars(select(Staff).where(Staff.id.in_(ids)).order_by(Staff.id)))


async def check_person(session: AsyncSession, actor: StaffView | None, staff_id: int) -> None:
    """Refuse unless ``actor`` may run a handover involving ``staff_id`` (leaving, or taking cases over)."""
    policy.check(actor, Action.HANDOVER_RUN, await policy.staff_subject(session, staff_id, Action.HANDOVER_RUN))


async def departing_choices(session: AsyncSession, actor: StaffView | None) -> list[Staff]:
    """The collectors whose handover ``actor`` may start (their own team's, for a supervisor)."""
    team = policy.team_filter(actor, Action.HANDOVER_RUN)
    query = select(Staff).where(Staff.active.is_(True), Staff.role.in_(FIELD_ROLES))
    if team is not None:
        query = query.where(Staff.team.in_(team))
    return list(await session.scalars(query.order_by(Staff.name)))


async def successor_candidates(session: AsyncSession, actor: StaffView | None, from_id: int) -> list[Staff]:
    """Who may take ``from_id``'s cases over (their teammates), once ``actor`` may run that handover."""
    await check_person(session, actor, from_id)
    departing = await session.get(Staff, from_id)
    assert departing is not None
    return list(await session.scalars(select(Staff).where(
        Staff.active.is_(True), Staff.role.in_(FIELD_ROLES), Staff.id != from_id,
        Staff.team == departing.team, Staff.id.not_in(_leaving())).order_by(Staff.name)))


def _leaving() -> Select[tuple[int]]:
    """Who is leaving: the departing person of a running handover (never a successor)."""
    return select(Handover.from_staff_id).where(Handover.status.in_(RUNNING))


def _taking_over() -> Select[tuple[int]]:
    """Who is named a successor in a running handover (cannot start leaving until it is over)."""
    return select(HandoverItem.successor_id).join(Handover, Handover.id == HandoverItem.handover_id).where(
        Handover.status.in_(RUNNING))


async def _refuse_blocking(session: AsyncSession, from_id: int, successor_ids: Sequence[int]) -> None:
    """No pair of handovers may wait on each other: a successor is not leaving, and someone leaving is
    nobody's successor. The people involved are locked (in id order) so two starts at once see each other."""
    await session.execute(select(Staff.id).where(Staff.id.in_([from_id, *successor_ids]))
                          .order_by(Staff.id).with_for_update())
    if await session.scalar(select(func.count()).where(Staff.id.in_(successor_ids), Staff.id.in_(_leaving()))):
        raise DomainError(N_("handover.error.successor_leaving"))
    if await session.scalar(select(func.count()).select_from(Staff).where(Staff.id == from_id,
                                                                          Staff.id.in_(_taking_over()))):
        raise DomainError(N_("handover.error.departing_is_successor"))


async def _notify(session: AsyncSession, people: Sequence[Staff], key: str, *, now: datetime, kind: str,
                  buttons: list[list[tuple[str, str]]] | None = None, **params: object) -> None:
    for person in people:
        if person.telegram_user_id is None or not person.active:
            continue
        t = t_for(person)
        await outbox.enqueue(session, chat_id=person.telegram_user_id, kind=kind, now=now, text=t(key, **params),
                             priority=outbox.Priority.REVIEW, protect_content=True,
                             buttons=[[(t(label), data) for label, data in row] for row in buttons] if buttons
                             else None)


async def start(session: AsyncSession, *, actor: StaffView | None, from_id: int, successor_ids: Sequence[int],
                now: datetime, calendar: WorkCalendar, last_day: date | None = None) -> Handover:
    departing = await session.get(Staff, from_id)
    if departing is None or not departing.active or departing.role not in FIELD_ROLES:
        raise DomainError(N_("handover.error.not_collector"))
    await check_person(session, actor, from_id)
    await _refuse_blocking(session, from_id, list(dict.fromkeys(successor_ids)))
    if await session.scalar(select(Handover.id).where(Handover.from_staff_id == from_id,
                                                      Handover.status.in_(RUNNING))):
        raise DomainError(N_("handover.error.running"))
    successors = [await session.get(Staff, sid) for sid in dict.fromkeys(successor_ids)]
    if not successors or any(s is None or not s.active or s.role not in FIELD_ROLES or s.id == from_id
                             or s.team != departing.team for s in successors):
        raise DomainError(N_("handover.error.bad_successor"))
    cases = await open_cases_of(session, from_id)
    incidents = list(await session.scalars(select(Incident.id).where(
        Incident.collector_id == from_id, Incident.status != IncidentStatus.RESOLVED.value)))
    handover = Handover(from_staff_id=from_id, started_by_id=actor.id if actor else None,
                        status=HandoverStatus.COLLECTING.value, started_at=now, last_day=last_day,
                        facts={"open_incidents": incidents},
                        next_reminder_at=calendar.add_working_hours(now, REMIND_EVERY_WORKING_HOURS))
    session.add(handover)
    await session.flush()
    for n, case in enumerate(cases):
        successor = successors[n % len(successors)]
        assert successor is not None
        session.add(HandoverItem(handover_id=handover.id, case_id=case.id, successor_id=successor.id,
                                 facts=await _case_facts(session, case, from_id), departing_status="pending",
                                 previous_due_at=case.visit_due_at))
    await session.flush()
    await audit.record(session, action="handover.started", object_type="handover", object_id=handover.id,
                       actor_id=actor.id if actor else None, at=now,
                       details={"from": from_id, "to": [s.id for s in successors if s], "cases": len(cases),
                                "last_day": last_day.isoformat() if last_day else None,
                                "open_incidents": incidents})
    await _notify(session, [departing], N_("handover.to_departing"), now=now, kind="handover.list",
                  count=len(cases), id=handover.id,
                  buttons=[[(N_("handover.open_list"), HandoverChecklist().pack())]])
    return handover


async def collecting_for(session: AsyncSession, departing: StaffView) -> tuple[Handover | None, list[HandoverItem]]:
    """The handover waiting for ``departing``'s checklist answers (their own), with its items."""
    policy.require_role(departing, Action.HANDOVER_DEPART)
    running = await session.scalar(select(Handover).where(Handover.from_staff_id == departing.id,
                                                          Handover.status == HandoverStatus.COLLECTING.value))
    return running, await items(session, running.id) if running is not None else []


async def items(session: AsyncSession, handover_id: int) -> list[HandoverItem]:
    return list(await session.scalars(select(HandoverItem).where(HandoverItem.handover_id == handover_id)
                                      .order_by(HandoverItem.id)))


async def _handover(session: AsyncSession, handover_id: int, *, status: str | None = None) -> Handover:
    # Locked for the transaction: two successors receiving at once must see each other's receipt.
    handover = await session.get(Handover, handover_id, with_for_update=True)
    if handover is None:
        raise NotFound()
    if status is not None and handover.status != status:
        raise DomainError(N_("handover.error.wrong_step"))
    return handover


async def departing_mark(session: AsyncSession, departing: StaffView, item_id: int, *, note: str | None,
                         now: datetime, calendar: WorkCalendar | None = None) -> tuple[HandoverItem, bool]:
    """The departing collector marks an item done (or notes what is pending); True once all are answered."""
    item = await item_to_answer(session, departing, item_id)
    handover = await _handover(session, item.handover_id, status=HandoverStatus.COLLECTING.value)
    if item.departing_status != "pending":
        raise DomainError(N_("handover.error.answered"))
    item.departing_status = "noted" if note else "done"
    item.departing_note = note
    await audit.record(session, action="handover.item_confirmed", object_type="handover", object_id=handover.id,
                       actor_id=departing.id, at=now, details={"case_id": item.case_id, "note": note})
    return item, await _after_answer(session, handover, actor_id=departing.id, now=now, calendar=calendar)


async def _after_answer(session: AsyncSession, handover: Handover, *, actor_id: int, now: datetime,
                        calendar: WorkCalendar | None = None) -> bool:
    """Once every item is answered the list goes to the team lead (reminded until they confirm)."""
    if any(i.departing_status == "pending" for i in await items(session, handover.id)):
        return False
    handover.status, handover.departing_confirmed_at = HandoverStatus.LEAD_REVIEW.value, now
    handover.next_reminder_at = calendar.add_working_hours(now, REMIND_EVERY_WORKING_HOURS) if calendar else None
    person = await _departing(session, handover)
    await audit.record(session, action="handover.departing_confirmed", object_type="handover",
                       object_id=handover.id, actor_id=actor_id, at=now)
    await _notify(session, await _leads(session, person.team), N_("handover.to_lead"), now=now,
                  kind="handover.review", name=person.name, id=handover.id,
                  buttons=[[(N_("handover.open_review"), HandoverReview(handover.id).pack())]])
    return True


async def item_to_answer(session: AsyncSession, departing: StaffView, item_id: int) -> HandoverItem:
    """One item of the departing collector's own checklist (refused for anyone else's)."""
    await policy.require(session, departing, Action.HANDOVER_DEPART, item_id)
    item = await session.get(HandoverItem, item_id)
    assert item is not None
    return item


async def _departing(session: AsyncSession, handover: Handover) -> Staff:
    departing = await session.get(Staff, handover.from_staff_id)
    assert departing is not None
    return departing


async def _lead_item(session: AsyncSession, lead: StaffView, item_id: int) -> HandoverItem:
    """An item of a handover ``lead`` reviews (the departing collector's own team lead, or an admin)."""
    policy.check(lead, Action.HANDOVER_LEAD, await policy.handover_item_subject(session, item_id, Action.HANDOVER_LEAD))
    item = await session.get(HandoverItem, item_id)
    assert item is not None
    return item


async def check_lead(session: AsyncSession, lead: StaffView, handover_id: int) -> None:
    """Refuse unless ``lead`` reviews this handover (the departing collector's own team lead, or an admin)."""
    await policy.require(session, lead, Action.HANDOVER_LEAD, handover_id)


async def review_items(session: AsyncSession, lead: StaffView, handover_id: int) -> list[HandoverItem]:
    """The list as the team lead sees it (only the departing collector's own lead, or an admin)."""
    await check_lead(session, lead, handover_id)
    return await items(session, handover_id)


async def successor_choices(session: AsyncSession, lead: StaffView, item_id: int) -> list[Staff]:
    item = await _lead_item(session, lead, item_id)
    departing = await _departing(session, await _handover(session, item.handover_id))
    return list(await session.scalars(select(Staff).where(
        Staff.active.is_(True), Staff.role.in_(FIELD_ROLES), Staff.team == departing.team,
        Staff.id != departing.id, Staff.id.not_in(_leaving())).order_by(Staff.name)))


async def reassign_item(session: AsyncSession, lead: StaffView, item_id: int, successor_id: int, *,
                        now: datetime) -> HandoverItem:
    item = await _lead_item(session, lead, item_id)
    handover = await _handover(session, item.handover_id, status=HandoverStatus.LEAD_REVIEW.value)
    departing = await _departing(session, handover)
    successor = await session.get(Staff, successor_id)
    if (successor is None or not successor.active or successor.role not in FIELD_ROLES
            or successor.id == departing.id or successor.team != departing.team):
        raise DomainError(N_("handover.error.bad_successor"))
    await _refuse_blocking(session, departing.id, [successor_id])
    before = item.successor_id
    item.successor_id = successor_id
    await audit.record(session, action="handover.item_reassigned", object_type="handover", object_id=handover.id,
                       actor_id=lead.id, at=now, details={"case_id": item.case_id, "from": before, "to": successor_id})
    return item


async def flag(session: AsyncSession, lead: StaffView, handover_id: int, note: str, *, now: datetime) -> HandoverIssue:
    await check_lead(session, lead, handover_id)
    handover = await _handover(session, handover_id, status=HandoverStatus.LEAD_REVIEW.value)
    departing = await _departing(session, handover)
    issue = HandoverIssue(handover_id=handover_id, raised_by_id=lead.id, note=note.strip()[:1000], raised_at=now)
    session.add(issue)
    await session.flush()
    await audit.record(session, action="handover.flagged", object_type="handover", object_id=handover_id,
                       actor_id=lead.id, at=now, details={"issue_id": issue.id, "note": issue.note})
    bosses = list(await session.scalars(select(Staff).where(Staff.role == Role.SUPERVISOR.value,
                                                            Staff.team == departing.team, Staff.active.is_(True))))
    await _notify(session, bosses, N_("handover.issue_to_supervisor"), now=now, kind="handover.issue",
                  name=lead.name, departing=departing.name, note=issue.note, id=handover_id,
                  buttons=[[(N_("handover.decide_continue"), HandoverDecide(issue.id, Decision.GO).pack()),
                            (N_("handover.decide_cancel"), HandoverDecide(issue.id, Decision.CANCEL).pack())]])
    return issue


async def decide(session: AsyncSession, supervisor: StaffView, issue_id: int, *, go: bool, now: datetime,
                 calendar: WorkCalendar) -> HandoverIssue:
    await policy.require(session, supervisor, Action.HANDOVER_DECIDE, issue_id)
    issue = await session.get(HandoverIssue, issue_id)
    assert issue is not None
    handover = await _handover(session, issue.handover_id)
    departing = await _departing(session, handover)
    if issue.decided_at is not None:
        raise DomainError(N_("handover.error.decided"))
    issue.decided_by_id, issue.decided_at, issue.decision = supervisor.id, now, "continue" if go else "cancel"
    await audit.record(session, action="handover.issue_decided", object_type="handover", object_id=handover.id,
                       actor_id=supervisor.id, at=now, details={"issue_id": issue.id, "decision": issue.decision})
    if not go:
        await cancel(session, supervisor, handover.id, now=now, calendar=calendar)
    else:
        await _notify(session, await _leads(session, departing.team), N_("handover.issue_cleared"), now=now,
                      kind="handover.issue", id=handover.id)
    return issue


async def lead_confirm(session: AsyncSession, lead: StaffView, handover_id: int, *, now: datetime,
                       calendar: WorkCalendar | None = None) -> Handover:
    await check_lead(session, lead, handover_id)
    handover = await _handover(session, handover_id, status=HandoverStatus.LEAD_REVIEW.value)
    departing = await _departing(session, handover)
    if await session.scalar(select(HandoverIssue.id).where(HandoverIssue.handover_id == handover_id,
                                                           HandoverIssue.decided_at.is_(None))):
        raise DomainError(N_("handover.error.open_issue"))
    handover.status, handover.lead_confirmed_by_id, handover.lead_confirmed_at = (
        HandoverStatus.RECEIVING.value, lead.id, now)
    handover.next_reminder_at = calendar.add_working_hours(now, REMIND_EVERY_WORKING_HOURS) if calendar else None
    await audit.record(session, action="handover.lead_confirmed", object_type="handover", object_id=handover_id,
                       actor_id=lead.id, at=now)
    by_successor: dict[int, int] = {}
    for item in await items(session, handover_id):
        by_successor[item.successor_id] = by_successor.get(item.successor_id, 0) + 1
    for successor_id, count in by_successor.items():
        successor = await session.get(Staff, successor_id)
        if successor is not None:
            await _notify(session, [successor], N_("handover.to_successor"), now=now, kind="handover.receive",
                          name=departing.name, count=count, id=handover_id,
                          buttons=[[(N_("handover.receive"), HandoverReceive(handover_id).pack())]])
    return handover


async def receive(session: AsyncSession, successor: StaffView, handover_id: int, *, now: datetime,
                  calendar: WorkCalendar) -> tuple[list[Case], bool]:
    """The successor acknowledges: their cases move to them now, each with a new visit window."""
    await policy.require(session, successor, Action.HANDOVER_RECEIVE, handover_id)
    handover = await _handover(session, handover_id, status=HandoverStatus.RECEIVING.value)
    mine = [i for i in await items(session, handover_id) if i.successor_id == successor.id]
    person = await session.get(Staff, successor.id)
    assert person is not None
    moved = []
    for item in mine:
        if item.received_at is not None:
            continue
        case = await session.get(Case, item.case_id)
        assert case is not None
        item.facts = {**item.facts, "before": {  # what cancelling puts back
            "due": case.visit_due_at.isoformat() if case.visit_due_at else None,
            "done": case.visit_done_at.isoformat() if case.visit_done_at else None,
            "overdue": case.visit_overdue_at.isoformat() if case.visit_overdue_at else None}}
        await assign_in_session(session, case, person, actor_id=successor.id, reason=f"handover:{handover_id}",
                                now=now, calendar=calendar)
        item.received_at = now
        moved.append(case)
    await audit.record(session, action="handover.received", object_type="handover", object_id=handover_id,
                       actor_id=successor.id, at=now, details={"cases": [c.id for c in moved]})
    done = all(i.received_at is not None for i in await items(session, handover_id))
    if done:
        await _complete(session, handover, now=now)
    return moved, done


async def _complete(session: AsyncSession, handover: Handover, *, now: datetime) -> None:
    handover.status, handover.completed_at, handover.next_reminder_at = HandoverStatus.COMPLETED.value, now, None
    departing = await session.get(Staff, handover.from_staff_id)
    assert departing is not None
    await deactivate(session, departing.id, now=now, actor_id=None, allow_open_cases=False)
    await audit.record(session, action="handover.completed", object_type="handover", object_id=handover.id,
                       at=now, details={"deactivated": departing.id})
    people = await _leads(session, departing.team)
    starter = await session.get(Staff, handover.started_by_id) if handover.started_by_id else None
    if starter is not None and starter.id not in {p.id for p in people}:
        people.append(starter)
    await _notify(session, people, N_("handover.completed"), now=now, kind="handover.done", name=departing.name,
                  id=handover.id)


async def cancel(session: AsyncSession, actor: StaffView | None, handover_id: int, *, now: datetime,
                 calendar: WorkCalendar) -> Handover:
    """Stop the handover; cases already received go back to the departing collector as they were."""
    await policy.require(session, actor, Action.HANDOVER_RUN, handover_id)
    handover = await _handover(session, handover_id)
    if handover.status not in RUNNING:
        raise DomainError(N_("handover.error.wrong_step"))
    departing = await _departing(session, handover)
    for item in await items(session, handover_id):
        if item.received_at is None:
            continue
        case = await session.get(Case, item.case_id)
        assert case is not None
        await assign_in_session(session, case, departing, actor_id=actor.id if actor else None,
                                reason=f"handover:{handover_id}:cancelled", now=now, calendar=calendar)
        before = item.facts.get("before", {})
        case.visit_due_at, case.visit_done_at, case.visit_overdue_at = (  # the visit clock as it was
            _moment(before.get("due")), _moment(before.get("done")), _moment(before.get("overdue")))
        await deadlines.schedule_visit(session, case, now=now, calendar=calendar)
        item.received_at = None
    handover.status, handover.cancelled_at, handover.next_reminder_at = HandoverStatus.CANCELLED.value, now, None
    await audit.record(session, action="handover.cancelled", object_type="handover", object_id=handover_id,
                       actor_id=actor.id if actor else None, at=now)
    await _notify(session, [departing, *await _leads(session, departing.team)], N_("handover.cancelled"), now=now,
                  kind="handover.cancelled", id=handover_id)
    return handover


def _moment(text: object) -> datetime | None:
    return datetime.fromisoformat(str(text)) if text else None


async def remind_due(session: AsyncSession, *, now: datetime, calendar: WorkCalendar) -> int:
    """Whoever a running handover waits for is reminded every few working hours until they act: the
    departing collector (and their team lead, who may answer for them), then the team lead, then each
    successor who has not yet received their cases."""
    due = list(await session.scalars(select(Handover).where(Handover.status.in_(RUNNING),
                                                            Handover.next_reminder_at <= now)
                                     .order_by(Handover.id).with_for_update()))
    for handover in due:
        handover.next_reminder_at = calendar.add_working_hours(now, REMIND_EVERY_WORKING_HOURS)
        departing = await _departing(session, handover)
        rows = await items(session, handover.id)
        if handover.status == HandoverStatus.COLLECTING.value:
            pending = sum(i.departing_status == "pending" for i in rows)
            await _notify(session, [departing], N_("handover.reminder"), now=now, kind="handover.reminder",
                          id=handover.id, count=pending,
                          buttons=[[(N_("handover.open_list"), HandoverChecklist().pack())]])
            await _notify(session, await _leads(session, departing.team), N_("handover.reminder_lead_collecting"),
                          now=now, kind="handover.reminder", id=handover.id, count=pending, name=departing.name,
                          buttons=[[(N_("handover.stand_in"), HandoverStandIn(handover.id).pack())]])
        elif handover.status == HandoverStatus.LEAD_REVIEW.value:
            await _notify(session, await _leads(session, departing.team), N_("handover.reminder_lead"), now=now,
                          kind="handover.reminder", id=handover.id, name=departing.name,
                          buttons=[[(N_("handover.open_review"), HandoverReview(handover.id).pack())]])
        else:
            waiting: dict[int, int] = {}
            for item in rows:
                if item.received_at is None:
                    waiting[item.successor_id] = waiting.get(item.successor_id, 0) + 1
            for successor in await session.scalars(select(Staff).where(Staff.id.in_(waiting)).order_by(Staff.id)):
                await _notify(session, [successor], N_("handover.reminder_successor"), now=now,
                              kind="handover.reminder", id=handover.id, name=departing.name,
                              count=waiting[successor.id],
                              buttons=[[(N_("handover.receive"), HandoverReceive(handover.id).pack())]])
    return len(due)


# ---- the office's view: pending handovers, standing in for a silent departing collector ----------------------


@dataclass(frozen=True)
class Pending:
    """A running handover as the office lists it."""

    handover: Handover
    departing: Staff
    items: int
    answered: int
    received: int


async def pending(session: AsyncSession, actor: StaffView) -> list[Pending]:
    """The running handovers ``actor`` oversees: their team's (supervisor, team lead), every team's (admin)."""
    team = policy.team_filter(actor, Action.HANDOVER_VIEW)
    query = (select(Handover, Staff).join(Staff, Staff.id == Handover.from_staff_id)
             .where(Handover.status.in_(RUNNING)).order_by(Handover.started_at, Handover.id))
    if team is not None:
        query = query.where(Staff.team.in_(team))
    found = []
    for handover, departing in (await session.execute(query)).tuples():
        rows = await items(session, handover.id)
        found.append(Pending(handover, departing, len(rows), sum(i.departing_status != "pending" for i in rows),
                             sum(i.received_at is not None for i in rows)))
    return found


@dataclass(frozen=True)
class Overview:
    """One handover as someone overseeing it sees it, with what they may do next."""

    pending: Pending
    rows: list[HandoverItem]
    successors: dict[int, str]
    may_stand_in: bool
    may_review: bool
    may_cancel: bool


async def overview(session: AsyncSession, actor: StaffView, handover_id: int) -> Overview:
    subject = await policy.require(session, actor, Action.HANDOVER_VIEW, handover_id)
    handover = await _handover(session, handover_id)
    departing = await _departing(session, handover)
    rows = await items(session, handover_id)
    names = {s.id: s.name for s in await session.scalars(select(Staff).where(
        Staff.id.in_({i.successor_id for i in rows})))}
    running = handover.status in RUNNING
    status = handover.status
    leads = await policy.handover_leads(session, departing.team)
    lead_subject = policy.Subject(subject.kind, subject.id, subject.owner_ids, subject.team, leads)
    return Overview(
        Pending(handover, departing, len(rows), sum(i.departing_status != "pending" for i in rows),
                sum(i.received_at is not None for i in rows)),
        rows, names,
        may_stand_in=status == HandoverStatus.COLLECTING.value and policy.allows(actor, Action.HANDOVER_STAND_IN,
                                                                                 subject),
        may_review=status == HandoverStatus.LEAD_REVIEW.value and policy.allows(actor, Action.HANDOVER_LEAD,
                                                                                lead_subject),
        may_cancel=running and policy.allows(actor, Action.HANDOVER_RUN, subject))


async def stand_in_items(session: AsyncSession, actor: StaffView, handover_id: int) -> tuple[Handover, Staff,
                                                                                             list[HandoverItem]]:
    """The departing collector's checklist as someone standing in for them sees it."""
    await policy.require(session, actor, Action.HANDOVER_STAND_IN, handover_id)
    handover = await _handover(session, handover_id, status=HandoverStatus.COLLECTING.value)
    return handover, await _departing(session, handover), await items(session, handover_id)


async def check_stand_in(session: AsyncSession, actor: StaffView, *, handover_id: int | None = None,
                         item_id: int | None = None) -> None:
    """Refuse unless ``actor`` may answer this checklist (or this item of it) for the departing collector."""
    if item_id is not None:
        policy.check(actor, Action.HANDOVER_STAND_IN,
                     await policy.handover_item_subject(session, item_id, Action.HANDOVER_STAND_IN))
        item = await session.get(HandoverItem, item_id)
        assert item is not None
        handover_id = item.handover_id
    assert handover_id is not None
    await stand_in_items(session, actor, handover_id)


async def stand_in(session: AsyncSession, actor: StaffView, *, note: str, now: datetime, calendar: WorkCalendar,
                   handover_id: int | None = None, item_id: int | None = None) -> tuple[list[HandoverItem], bool]:
    """A supervisor or team lead answers the departing collector's checklist for them (one item, or every
    item still pending), with a note saying why; audited as done by whom for whom. True once all are answered."""
    note = " ".join(note.split())[:500]
    if not note:
        raise DomainError(N_("handover.error.note_required"))
    await check_stand_in(session, actor, handover_id=handover_id, item_id=item_id)
    if item_id is not None:
        item = await session.get(HandoverItem, item_id)
        assert item is not None
        handover_id = item.handover_id
    assert handover_id is not None
    handover = await _handover(session, handover_id, status=HandoverStatus.COLLECTING.value)
    departing = await _departing(session, handover)
    chosen = [i for i in await items(session, handover_id)
              if i.departing_status == "pending" and (item_id is None or i.id == item_id)]
    if not chosen:
        raise DomainError(N_("handover.error.answered"))
    for item in chosen:
        item.departing_status, item.departing_note = "noted", note
        await audit.record(session, action="handover.item_stood_in", object_type="handover", object_id=handover.id,
                           actor_id=actor.id, at=now,
                           details={"case_id": item.case_id, "for": departing.id, "by": actor.id, "note": note})
    await _notify(session, [departing], N_("handover.stood_in_to_departing"), now=now, kind="handover.list",
                  id=handover.id, name=actor.name, count=len(chosen), note=note)
    return chosen, await _after_answer(session, handover, actor_id=actor.id, now=now, calendar=calendar)


async def orphans(session: AsyncSession) -> list[Case]:
    """Open cases (assigned once) whose current assignee is missing or no longer active."""
    active_current = select(Assignment.case_id).join(Staff, Staff.id == Assignment.staff_id).where(
        Assignment.ended_at.is_(None), Staff.active.is_(True))
    return list(await session.scalars(select(Case).where(
        Case.status.not_in((*CLOSED_STATUSES, "new")), Case.id.not_in(active_current)).order_by(Case.id)))


async def report_orphans(session: AsyncSession, *, now: datetime) -> int:
    found = await orphans(session)
    if not found:
        return 0
    bosses = list(await session.scalars(select(Staff).where(Staff.role == Role.SUPERVISOR.value,
                                                            Staff.active.is_(True))))
    await _notify(session, bosses, N_("handover.orphans"), now=now, kind="handover.orphans", count=len(found),
                  cases=", ".join(c.case_no for c in found[:20]))
    await audit.record(session, action="case.orphans_found", object_type="case", at=now,
                       details={"cases": [c.id for c in found]})
    return len(found)

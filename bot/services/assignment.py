"""Putting cases on collectors' lists: who may assign what, the history, the notices, the 1-day clock.

Every (re)assignment ends the current row and adds a new one (who, when, why), so the history is
complete. A supervisor works the unassigned cases of their own team (and those imported without a
team); an admin, or the shell, works all. The collector is told of new cases through the outbox.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.i18n import N_
from bot.services import audit, deadlines, outbox, policy
from bot.services.actor import StaffView
from bot.services.calendar import WorkCalendar
from bot.services.cases import current_assignee
from bot.services.errors import DomainError, NotFound
from bot.services.geo import geodesic
from bot.services.people import running_for, t_for
from bot.storage.models import Assignment, Case, CaseStatus, Role, Staff

VISIT_WITHIN_WORKING_DAYS = deadlines.VISIT_WITHIN_WORKING_DAYS  # SOP: a field visit within 2 working days
ASSIGNABLE_ROLES = (Role.COLLECTOR.value, Role.PHONE_COLLECTOR.value)
NOTICE_LIST_LIMIT = 10


@dataclass(frozen=True)
class PlannedAssignment:
    case_id: int
    staff_id: int
    meters: float | None = None


def _visible_cases(actor: StaffView | None) -> list[object]:
    """WHERE clauses limiting cases to those the policy lets ``actor`` assign: their team's, and those no
    team holds yet (nothing extra for whoever reaches every team)."""
    team = policy.team_filter(actor, policy.Action.CASE_ASSIGN)
    return [] if team is None else [or_(Case.team.in_(team), Case.team.is_(None))]


async def assign_in_session(
    session: AsyncSession,
    case: Case,
    collector: Staff,
    *,
    actor_id: int | None,
    reason: str,
    now: datetime,
    calendar: WorkCalendar,
) -> Assignment | None:
    """The assignment itself, for callers that already checked who may do it. None if nothing changes.

    The case row is locked first: two (re)assignments of one case at once run one after the other, and the
    second ends the assignment the first made (PostgreSQL; SQLite's write transactions are serial anyway).
    """
    await session.execute(select(Case.id).where(Case.id == case.id).with_for_update())
    previous = await session.scalar(
        select(Assignment).where(Assignment.case_id == case.id, Assignment.ended_at.is_(None)).with_for_update()
    )
    if previous is not None and previous.staff_id == collector.id:
        return None
    if previous is not None:
        previous.ended_at = now
        await session.flush()
    row = Assignment(case_id=case.id, staff_id=collector.id, assigned_by_id=actor_id, assigned_at=now, reason=reason)
    session.add(row)
    if case.status == CaseStatus.NEW.value:
        case.status = CaseStatus.ASSIGNED.value
    case.team = collector.team
    # A new handover starts a new 2-working-day visit window, with its reminders.
    case.visit_due_at = calendar.deadline_after(now, VISIT_WITHIN_WORKING_DAYS)
    case.visit_done_at = case.visit_overdue_at = None
    case.updated_at = now
    await session.flush()
    await deadlines.schedule_visit(session, case, now=now, calendar=calendar)
    await audit.record(session, action="case.assign", object_type="case", object_id=case.id, actor_id=actor_id, at=now,
                       details={"to": collector.id, "from": previous.staff_id if previous else None, "reason": reason,
                                "visit_due_at": case.visit_due_at.isoformat()})
    return row


async def notify_assignments(session: AsyncSession, assigned: Iterable[tuple[Case, Staff, int | None]], *,
                             now: datetime, calendar: WorkCalendar) -> None:
    """One notice per collector listing their new cases; one to each collector who lost a case."""
    gained: dict[int, list[Case]] = defaultdict(list)
    lost: dict[int, list[Case]] = defaultdict(list)
    people: dict[int, Staff] = {}
    for case, collector, previous_id in assigned:
        gained[collector.id].append(case)
        people[collector.id] = collector
        if previous_id is not None and previous_id != collector.id:
            lost[previous_id].append(case)
    for staff_id in lost:
        if staff_id not in people:
            found = await session.get(Staff, staff_id)
            if found is not None:
                people[staff_id] = found
    for staff_id, cases in gained.items():
        await _notice(session, people[staff_id], "assign.notice.new", cases, now=now, calendar=calendar)
    for staff_id, cases in lost.items():
        if staff_id in people:
            await _notice(session, people[staff_id], "assign.notice.removed", cases, now=now, calendar=calendar)


async def _notice(session: AsyncSession, person: Staff, key: str, cases: Sequence[Case], *, now: datetime,
                  calendar: WorkCalendar) -> None:
    if person.telegram_user_id is None or not person.active:
        return
    t = t_for(person)
    lines = [t("assign.notice.line", case_no=c.case_no, debtor=c.debtor_name, address=c.address,
               due=t.datetime(c.visit_due_at, calendar.tz) if c.visit_due_at else "-")
             for c in cases[:NOTICE_LIST_LIMIT]]
    if len(cases) > NOTICE_LIST_LIMIT:
        lines.append(t("assign.notice.more", count=len(cases) - NOTICE_LIST_LIMIT))
    await outbox.enqueue(session, chat_id=person.telegram_user_id, kind=key, now=now,
                         text=t(key, count=len(cases)) + "\n" + "\n".join(lines), protect_content=True)


async def assign_cases(
    session: AsyncSession,
    case_ids: Sequence[int],
    to_staff_id: int,
    *,
    actor: StaffView | None,
    reason: str,
    now: datetime,
    calendar: WorkCalendar,
) -> list[Case]:
    """Assign ``case_ids`` to one collector after checking the actor may; returns the cases that moved."""
    policy.require_role(actor, policy.Action.CASE_ASSIGN)
    collector = await session.get(Staff, to_staff_id)
    if collector is None or not collector.active or collector.role not in ASSIGNABLE_ROLES:
        raise DomainError("assign.error.bad_collector")
    if await running_for(session, collector.id) is not None:
        raise DomainError(N_("assign.error.leaving"), name=collector.name)
    moved: list[tuple[Case, Staff, int | None]] = []
    for case_id in case_ids:
        case = await session.get(Case, case_id)
        if case is None:
            raise NotFound()
        if case.status == CaseStatus.CLOSED.value:
            raise DomainError("assign.error.closed", case_no=case.case_no)
        await policy.require_assignment(session, actor, case.id, collector.id)
        before = await current_assignee(session, case.id)
        if await assign_in_session(session, case, collector, actor_id=actor.id if actor else None, reason=reason,
                                   now=now, calendar=calendar) is not None:
            moved.append((case, collector, before.id if before else None))
    await notify_assignments(session, moved, now=now, calendar=calendar)
    return [case for case, _, _ in moved]


async def unassigned_cases(session: AsyncSession, actor: StaffView | None, *, offset: int = 0,
                           limit: int = 10, address_contains: str | None = None) -> tuple[list[Case], int]:
    """A page of open cases with no collector that ``actor`` may assign, oldest deadline first."""
    where = [Case.status == CaseStatus.NEW.value, *_visible_cases(actor)]
    if address_contains:
        where.append(Case.address.contains(address_contains.strip()))
    total = await session.scalar(select(func.count()).select_from(Case).where(*where))  # type: ignore[arg-type]
    cases = await session.scalars(
        select(Case).where(*where).order_by(Case.assign_due_at, Case.id).offset(offset).limit(limit)  # type: ignore[arg-type]
    )
    return list(cases), int(total or 0)


async def assignable_collectors(session: AsyncSession, actor: StaffView | None) -> list[Staff]:
    """The collectors ``actor`` may give cases to (their own team's, for a supervisor)."""
    team = policy.team_filter(actor, policy.Action.CASE_ASSIGN)
    query = select(Staff).where(Staff.active.is_(True), Staff.role.in_(ASSIGNABLE_ROLES)).order_by(Staff.name)
    if team is not None:
        query = query.where(Staff.team.in_(team))
    return list(await session.scalars(query))


async def plan_for(session: AsyncSession, actor: StaffView | None, case_ids: Sequence[int],
                   collector_id: int) -> list[PlannedAssignment]:
    """A plan giving ``case_ids`` to one collector, once ``actor`` may give cases to that collector."""
    policy.check(actor, policy.Action.CASE_ASSIGN,
                 await policy.staff_subject(session, collector_id, policy.Action.CASE_ASSIGN))
    return [PlannedAssignment(case_id, collector_id) for case_id in case_ids]


async def plan_nearest(session: AsyncSession, actor: StaffView | None) -> tuple[list[PlannedAssignment], int]:
    """Each unassigned case with coordinates to the field collector last seen nearest; (plan, cases left out)."""
    collectors = [c for c in await assignable_collectors(session, actor)
                  if c.role == Role.COLLECTOR.value and c.last_lat is not None and c.last_lon is not None]
    cases, total = await unassigned_cases(session, actor, limit=10_000)
    plan: list[PlannedAssignment] = []
    for case in cases:
        if case.lat is None or case.lon is None or not collectors:
            continue
        best = min(collectors, key=lambda c: geodesic((case.lat, case.lon), (c.last_lat, c.last_lon)).meters)
        meters = geodesic((case.lat, case.lon), (best.last_lat, best.last_lon)).meters
        plan.append(PlannedAssignment(case.id, best.id, round(meters, 1)))
    return plan, total - len(plan)


async def report_unassigned(session: AsyncSession, *, now: datetime, limit: int = 500) -> int:
    """Tell supervisors about cases not assigned within 1 working day of import; each case once."""
    cases = list(await session.scalars(
        select(Case).where(Case.status == CaseStatus.NEW.value, Case.assign_due_at <= now,
                           Case.unassigned_reported_at.is_(None)).order_by(Case.id).limit(limit)))
    if not cases:
        return 0
    supervisors = list(await session.scalars(select(Staff).where(
        Staff.active.is_(True), Staff.role == Role.SUPERVISOR.value, Staff.telegram_user_id.is_not(None))))
    by_team: dict[str | None, list[Case]] = defaultdict(list)
    for case in cases:
        by_team[case.team].append(case)
        case.unassigned_reported_at = now
    for team, team_cases in by_team.items():
        for boss in supervisors:
            if team is not None and boss.team != team:
                continue
            t = t_for(boss)
            numbers = ", ".join(c.case_no for c in team_cases[:NOTICE_LIST_LIMIT])
            more = len(team_cases) - NOTICE_LIST_LIMIT
            assert boss.telegram_user_id is not None
            await outbox.enqueue(session, chat_id=boss.telegram_user_id, kind="assign.overdue", now=now,
                                 priority=outbox.Priority.NORMAL,
                                 text=t("assign.overdue", count=len(team_cases), cases=numbers)
                                 + (t("assign.notice.more", count=more) if more > 0 else ""))
    await audit.record(session, action="case.unassigned_overdue", object_type="case", at=now,
                       details={"cases": [c.id for c in cases]})
    return len(cases)


async def find_case(session: AsyncSession, case_no: str, bank: str | None = None) -> Case:
    query = select(Case).where(Case.case_no == case_no.strip())
    if bank:
        query = query.where(Case.bank == bank)
    found = list(await session.scalars(query.limit(2)))
    if len(found) != 1:
        key = N_("assign.error.case_ambiguous") if found else N_("assign.error.no_case")
        raise NotFound(key, case_no=case_no)
    return found[0]


async def find_staff(session: AsyncSession, ref: str) -> Staff:
    ref = ref.strip().lstrip("#")
    if ref.isdigit():
        staff = await session.get(Staff, int(ref))
        if staff is not None:
            return staff
    found = list(await session.scalars(select(Staff).where(Staff.name == ref, Staff.active.is_(True)).limit(2)))
    if len(found) != 1:
        raise NotFound("staff.error.unknown", id=ref)
    return found[0]


async def execute_plan(session: AsyncSession, plan: Sequence[PlannedAssignment], *, actor: StaffView | None,
                       reason: str, now: datetime, calendar: WorkCalendar) -> list[Case]:
    """Carry out a confirmed bulk plan in one transaction; cases assigned meanwhile are left alone."""
    still_open = set(await session.scalars(select(Case.id).where(
        Case.id.in_([p.case_id for p in plan]), Case.status == CaseStatus.NEW.value)))
    by_collector: dict[int, list[int]] = defaultdict(list)
    for item in plan:
        if item.case_id in still_open:
            by_collector[item.staff_id].append(item.case_id)
    moved: list[Case] = []
    for staff_id, case_ids in by_collector.items():
        moved += await assign_cases(session, case_ids, staff_id, actor=actor, reason=reason, now=now,
                                    calendar=calendar)
    return moved


async def assignable_case(session: AsyncSession, actor: StaffView | None, case_id: int) -> Case | None:
    """The case if it is still unassigned, else None; :class:`Forbidden` unless ``actor`` may assign it."""
    await policy.require_assignment(session, actor, case_id)
    case: Case | None = await session.scalar(
        select(Case).where(Case.id == case_id, Case.status == CaseStatus.NEW.value))
    return case

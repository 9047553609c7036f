"""The supervisor's console (a Telegram Mini App, ``bot/web``): what each of its pages reads, as the policy allows.

Who may use it at all is the policy's: the roles that may see a team's day (``TEAM_VIEW``: supervisors, team
leads, the admin office); a deactivated or unknown person is refused like a collector. Every page then asks
the policy again for its own objects, as the chat does: cases (``CASE_VIEW``, own team only; another team's
case is not found), files of a visit (``CASE_VIEW`` on its case), reviews (``VISIT_REVIEW``), alarms
(``INCIDENT_VIEW``), reports (``REPORT_VIEW``). Changes go through the chat's own services
(``case_desk.reassign`` / ``change_status``, ``visits.review``), so a change made here is the same change,
with the same audit entries and notices, as one made in the chat.

Coordinates are stored as WGS-84; :func:`to_map` gives them in the datum of the configured map tiles.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any

from sqlalchemy import and_, exists, func, or_, select
from sqlalchemy import case as sql_case
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased
from sqlalchemy.sql.elements import ColumnElement

from bot.services import assignment, case_desk, incidents, policy, reports, team_view, visits
from bot.services import staff as staff_service
from bot.services.actor import StaffView, load
from bot.services.calendar import WorkCalendar
from bot.services.case_desk import CaseCard
from bot.services.cases import CLOSED_STATUSES
from bot.services.coords import wgs84_to_gcj02
from bot.services.errors import Forbidden, NotFound
from bot.services.masking import mask_name, mask_phone
from bot.services.team_view import Waiting
from bot.storage.models import (
    Assignment,
    Case,
    CaseStatus,
    Evidence,
    Incident,
    IncidentEvent,
    IncidentStatus,
    Promise,
    PromiseStatus,
    Role,
    Staff,
    Visit,
)

USE = policy.Action.TEAM_VIEW  # the console is for whoever may see a team's day
PAGE_LIMIT = 50
MAP_LIMIT = 500
RECENT_DAYS = 30
FIELD_ROLES = (Role.COLLECTOR.value, Role.PHONE_COLLECTOR.value)
# BS 8484: 80% of alarms delivered within 10 s, 98.5% within 40 s.
TARGETS = ((0.80, 10.0), (0.985, 40.0))


async def sign_in(session: AsyncSession, telegram_user_id: int) -> StaffView:
    """The console's viewer: an active member of staff whose role may use it; else :class:`Forbidden`."""
    person = await staff_service.active_by_telegram_id(session, telegram_user_id)
    if person is None:
        raise Forbidden(subject=("telegram_user", telegram_user_id))
    viewer = await load(session, person)
    policy.require_role(viewer, USE, subject=("staff", viewer.id))
    return viewer


def to_map(lat: float, lon: float, datum: str) -> tuple[float, float]:
    """A stored WGS-84 point in the datum the map is drawn in (``gcj02`` for Amap and Tencent tiles)."""
    if datum == "gcj02":
        return wgs84_to_gcj02(lat, lon)
    return lat, lon


def _day(now: datetime, calendar: WorkCalendar) -> tuple[date, datetime, datetime]:
    today = calendar.working_date(now)
    start = datetime.combine(today, time(0), calendar.tz)
    return today, start, start + timedelta(days=1)


# ---- cases ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CaseFilter:
    text: str = ""
    status: str | None = None
    collector_id: int | None = None
    bank: str | None = None
    overdue: bool = False
    promise_due: bool = False


@dataclass(frozen=True)
class CaseRow:
    id: int
    case_no: str
    bank: str
    debtor: str  # masked, as in the chat's lists
    amount_due_fen: int
    status: str
    collector: str | None
    visit_due_at: datetime | None
    overdue: bool
    promise_due_on: date | None


@dataclass(frozen=True)
class Filters:
    statuses: list[str]
    collectors: list[tuple[int, str]]
    banks: list[str]


def _like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


async def filters(session: AsyncSession, viewer: StaffView) -> Filters:
    """What the case search can be narrowed by: statuses, the team's collectors, the banks of its cases."""
    team = policy.team_filter(viewer, policy.Action.CASE_VIEW)
    people = select(Staff.id, Staff.name).where(Staff.role.in_(FIELD_ROLES)).order_by(Staff.name, Staff.id)
    banks = select(Case.bank).distinct().order_by(Case.bank)
    if team is not None:
        people, banks = people.where(Staff.team.in_(team)), banks.where(Case.team.in_(team))
    return Filters(statuses=[s.value for s in CaseStatus],
                   collectors=[(i, n) for i, n in (await session.execute(people)).all()],
                   banks=list(await session.scalars(banks)))


async def find_cases(session: AsyncSession, viewer: StaffView, wanted: CaseFilter, *, now: datetime,
                     calendar: WorkCalendar, offset: int = 0, limit: int = 20) -> tuple[list[CaseRow], int]:
    """A page of the cases ``viewer`` may read that match ``wanted`` (a number or its beginning, or part of the
    debtor's name, as the chat's /case; exact numbers first), and how many match in all."""
    team = policy.team_filter(viewer, policy.Action.CASE_VIEW)
    today, _, _ = _day(now, calendar)
    where: list[ColumnElement[bool]] = []
    text = wanted.text.strip()[:50]
    if team is not None:
        where.append(Case.team.in_(team))
    if text:
        pattern = _like(text)
        where.append(or_(Case.case_no == text, Case.case_no.like(pattern + "%", escape="\\"),
                         Case.debtor_name.like("%" + pattern + "%", escape="\\")))
    if wanted.status:
        where.append(Case.status == wanted.status)
    if wanted.bank:
        where.append(Case.bank == wanted.bank)
    if wanted.collector_id is not None:
        held = aliased(Assignment)  # not the listing's own join of the current assignment
        where.append(exists().where(held.case_id == Case.id, held.ended_at.is_(None),
                                    held.staff_id == wanted.collector_id))
    overdue = and_(Case.status.not_in(CLOSED_STATUSES), Case.visit_done_at.is_(None),
                   Case.visit_due_at.is_not(None), Case.visit_due_at < now)
    if wanted.overdue:
        where.append(overdue)
    promise_due = (select(func.min(Promise.due_on)).where(Promise.case_id == Case.id,
                                                          Promise.status == PromiseStatus.OPEN.value)
                   .scalar_subquery())
    if wanted.promise_due:
        where.append(exists().where(Promise.case_id == Case.id, Promise.status == PromiseStatus.OPEN.value,
                                    Promise.due_on <= today))
    total = int(await session.scalar(select(func.count()).select_from(Case).where(*where)) or 0)
    exact_first = sql_case((Case.case_no == text, 0), else_=1) if text else sql_case((Case.id > 0, 1), else_=1)
    rows = (await session.execute(
        select(Case, Staff.name, promise_due.label("promise_due"))
        .outerjoin(Assignment, and_(Assignment.case_id == Case.id, Assignment.ended_at.is_(None)))
        .outerjoin(Staff, Staff.id == Assignment.staff_id)
        .where(*where).order_by(exact_first, Case.case_no, Case.id)
        .offset(max(0, offset)).limit(max(1, min(limit, PAGE_LIMIT))))).all()
    return [CaseRow(id=c.id, case_no=c.case_no, bank=c.bank, debtor=mask_name(c.debtor_name),
                    amount_due_fen=c.amount_due_fen, status=c.status, collector=name, visit_due_at=c.visit_due_at,
                    overdue=c.status not in CLOSED_STATUSES and c.visit_done_at is None
                    and c.visit_due_at is not None and c.visit_due_at < now,
                    promise_due_on=due) for c, name, due in rows], total


@dataclass(frozen=True)
class EvidenceItem:
    id: int
    kind: str  # photo | voice | audio
    status: str  # stored | too_big
    sent_at: datetime
    sha256: str | None
    size: int | None


@dataclass(frozen=True)
class VisitItem:
    id: int
    collector: str
    status: str
    code: str | None
    started_at: datetime
    checkin_at: datetime | None
    checkin_distance_m: float | None
    checkin_flagged: bool
    filed_at: datetime | None
    review_comment: str | None
    evidence: list[EvidenceItem]


@dataclass(frozen=True)
class AssignmentItem:
    collector: str
    by: str | None
    at: datetime
    ended_at: datetime | None
    reason: str | None


@dataclass(frozen=True)
class CasePage:
    card: CaseCard
    debtor: str
    phone: str
    visits: list[VisitItem]
    promises: list[Promise]
    payments: list[Any]
    assignments: list[AssignmentItem]
    collectors: list[tuple[int, str]]  # whom the viewer may move it to (empty: they may not)
    may_review: bool


async def _names(session: AsyncSession, ids: Iterable[int | None]) -> dict[int, str]:
    wanted = {i for i in ids if i is not None}
    if not wanted:
        return {}
    return {i: n for i, n in (await session.execute(select(Staff.id, Staff.name).where(Staff.id.in_(wanted)))).all()}


async def case_page(session: AsyncSession, viewer: StaffView, case_id: int, calendar: WorkCalendar) -> CasePage:
    """The case's card and timeline (``case_desk.card``: the policy first), its visits with their files, promises,
    payments and assignment history, and what the viewer may do with it."""
    card = await case_desk.card(session, viewer, case_id, calendar)
    case = card.case
    visit_rows = list(await session.scalars(select(Visit).where(Visit.case_id == case_id).order_by(Visit.id)))
    files: dict[int, list[EvidenceItem]] = {}
    if visit_rows:
        for item in await session.scalars(select(Evidence).where(Evidence.visit_id.in_([v.id for v in visit_rows]))
                                          .order_by(Evidence.id)):
            files.setdefault(item.visit_id, []).append(EvidenceItem(item.id, item.kind, item.status, item.sent_at,
                                                                    item.sha256, item.size))
    history = list(await session.scalars(select(Assignment).where(Assignment.case_id == case_id)
                                         .order_by(Assignment.assigned_at, Assignment.id)))
    names = await _names(session, [*(v.collector_id for v in visit_rows), *(a.staff_id for a in history),
                                   *(a.assigned_by_id for a in history)])
    promises = list(await session.scalars(select(Promise).where(Promise.case_id == case_id).order_by(Promise.id)))
    collectors: list[tuple[int, str]] = []
    if card.may_assign and case.status not in CLOSED_STATUSES:  # whom the chat's reassign button offers
        collectors = [(c.id, c.name) for c in await assignment.assignable_collectors(session, viewer)
                      if (case.team is None or c.team == case.team)
                      and (card.assignee is None or c.id != card.assignee.id)]
    return CasePage(
        card=card, debtor=mask_name(case.debtor_name), phone=mask_phone(case.phone),
        visits=[VisitItem(v.id, names.get(v.collector_id, "-"), v.status, v.code, v.started_at, v.checkin_at,
                          v.checkin_distance_m, v.checkin_flagged, v.filed_at, v.review_comment, files.get(v.id, []))
                for v in visit_rows],
        promises=promises, payments=await case_desk.payments_of(session, case_id),
        assignments=[AssignmentItem(names.get(a.staff_id, "-"), names.get(a.assigned_by_id) if a.assigned_by_id
                                    else None, a.assigned_at, a.ended_at, a.reason) for a in history],
        collectors=collectors,
        may_review=policy.allows(viewer, policy.Action.VISIT_REVIEW),
    )


async def evidence_file(session: AsyncSession, viewer: StaffView, evidence_id: int) -> Evidence:
    """A visit's photo or recording, if ``viewer`` may read the case it was taken for."""
    item = await session.get(Evidence, evidence_id)
    if item is None:
        raise NotFound()
    visit = await session.get(Visit, item.visit_id)
    if visit is None:
        raise NotFound()
    await policy.require(session, viewer, policy.Action.CASE_VIEW, visit.case_id)
    if item.status != "stored" or not item.path:
        raise NotFound()
    return item


# ---- reviews -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReviewQueue:
    waiting: list[Waiting]  # oldest first
    may_review: bool


async def review_queue(session: AsyncSession, viewer: StaffView, *, now: datetime,
                       calendar: WorkCalendar) -> ReviewQueue:
    """The reports waiting for review, oldest first, as /team finds them (the viewer's team, or every team)."""
    day = await team_view.team_day(session, viewer, now=now, calendar=calendar)
    return ReviewQueue(waiting=day.waiting, may_review=day.may_review)


@dataclass(frozen=True)
class ReviewItem:
    visit: Visit
    case: Case
    collector: Staff
    evidence: list[Evidence]


async def review_item(session: AsyncSession, viewer: StaffView, visit_id: int) -> ReviewItem:
    """One report as its reviewer reads it (``VISIT_REVIEW``: the policy first)."""
    visit, case, collector = await visits.reviewable_visit(session, viewer, visit_id)
    return ReviewItem(visit, case, collector, await visits.evidence_of(session, visit_id))


# ---- the map -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MapPoint:
    lat: float
    lon: float
    label: str
    at: datetime | None = None
    kind: str = ""
    ref: int | None = None  # the case, visit, collector or incident id


@dataclass(frozen=True)
class MapIncident:
    id: int
    collector: str
    reason: str
    status: str
    raised_at: datetime
    trail: list[MapPoint]


@dataclass(frozen=True)
class TeamMap:
    team: str | None
    datum: str
    cases: list[MapPoint] = field(default_factory=list)
    visits: list[MapPoint] = field(default_factory=list)
    collectors: list[MapPoint] = field(default_factory=list)
    incidents: list[MapIncident] = field(default_factory=list)


def _trail(events: Sequence[IncidentEvent], incident: Incident, datum: str) -> list[MapPoint]:
    points = []
    for e in events:
        lat, lon = e.details.get("lat"), e.details.get("lon")
        if isinstance(lat, int | float) and isinstance(lon, int | float):
            points.append(MapPoint(*to_map(float(lat), float(lon), datum), label=e.kind, at=e.at, kind="trail",
                                   ref=incident.id))
    if not points and incident.lat is not None and incident.lon is not None:
        points.append(MapPoint(*to_map(incident.lat, incident.lon, datum), label="incident", at=incident.location_at,
                               kind="trail", ref=incident.id))
    return points


async def team_map(session: AsyncSession, viewer: StaffView, *, now: datetime, calendar: WorkCalendar,
                   datum: str = "wgs84") -> TeamMap:
    """Today on the map: the cases due today or overdue, with a next step due, or visited today; today's check-ins, each
    collector's last position and the open alarms with their location trail; points in ``datum``."""
    team = policy.team_filter(viewer, USE)
    _, start, end = _day(now, calendar)
    result = TeamMap(team=", ".join(sorted(team)) if team is not None else None, datum=datum)
    today = calendar.working_date(now)
    cases = select(Case).where(Case.lat.is_not(None), Case.lon.is_not(None), or_(
        and_(Case.status.not_in(CLOSED_STATUSES), Case.visit_done_at.is_(None), Case.visit_due_at < end),
        and_(Case.status.not_in(CLOSED_STATUSES), Case.next_action_on <= today),
        and_(Case.visit_done_at >= start, Case.visit_done_at < end)))
    if team is not None:
        cases = cases.where(Case.team.in_(team))
    for case in await session.scalars(cases.order_by(Case.visit_due_at, Case.id).limit(MAP_LIMIT)):
        assert case.lat is not None and case.lon is not None
        done = case.visit_done_at is not None
        late = not done and case.visit_due_at is not None and case.visit_due_at < now
        result.cases.append(MapPoint(*to_map(case.lat, case.lon, datum), label=case.case_no, at=case.visit_due_at,
                                     kind="done" if done else "overdue" if late else "due", ref=case.id))
    people = select(Staff).where(Staff.role.in_(FIELD_ROLES), Staff.active.is_(True))
    if team is not None:
        people = people.where(Staff.team.in_(team))
    for visit, name, case_no in (await session.execute(
            select(Visit, Staff.name, Case.case_no).join(Staff, Staff.id == Visit.collector_id)
            .join(Case, Case.id == Visit.case_id)
            .where(Visit.collector_id.in_(people.with_only_columns(Staff.id)), Visit.checkin_at >= start,
                   Visit.checkin_at < end, Visit.checkin_lat.is_not(None), Visit.checkin_lon.is_not(None))
            .order_by(Visit.checkin_at).limit(MAP_LIMIT))).all():
        assert visit.checkin_lat is not None and visit.checkin_lon is not None
        result.visits.append(MapPoint(*to_map(visit.checkin_lat, visit.checkin_lon, datum),
                                      label=f"{case_no} · {name}", at=visit.checkin_at,
                                      kind="flagged" if visit.checkin_flagged else visit.status, ref=visit.case_id))
    for person in await session.scalars(people.where(Staff.last_lat.is_not(None), Staff.last_lon.is_not(None))
                                        .order_by(Staff.name)):
        assert person.last_lat is not None and person.last_lon is not None
        result.collectors.append(MapPoint(*to_map(person.last_lat, person.last_lon, datum), label=person.name,
                                          at=person.last_location_at, kind="collector", ref=person.id))
    alarms = await incidents.visible_open(session, viewer)
    names = await _names(session, {i.collector_id for i in alarms})
    for incident in alarms:
        result.incidents.append(MapIncident(incident.id, names.get(incident.collector_id, "-"), incident.reason,
                                            incident.status, incident.raised_at,
                                            _trail(await incidents.timeline(session, incident.id), incident, datum)))
    return result


# ---- alarms --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AlarmRow:
    incident: Incident
    collector: str
    owner: str | None


@dataclass(frozen=True)
class Target:
    share: float  # of alarms ...
    within_s: float  # ... delivered within this many seconds
    percentile_s: float | None  # the measured percentile at that share
    met: bool | None  # None: no alarm was delivered this month


@dataclass(frozen=True)
class AlarmFigures:
    month: date
    count: int
    delivery: tuple[float, float, float] | None  # median, 80th, 98.5th percentile, seconds
    acknowledgement: tuple[float, float, float] | None
    targets: list[Target]


@dataclass(frozen=True)
class AlarmBoard:
    open: list[AlarmRow]
    recent: list[AlarmRow]
    figures: AlarmFigures


async def _alarm_rows(session: AsyncSession, found: Sequence[Incident]) -> list[AlarmRow]:
    names = await _names(session, [*(i.collector_id for i in found), *(i.owner_id for i in found)])
    return [AlarmRow(i, names.get(i.collector_id, "-"), names.get(i.owner_id) if i.owner_id else None)
            for i in found]


async def alarm_board(session: AsyncSession, viewer: StaffView, *, now: datetime,
                      calendar: WorkCalendar) -> AlarmBoard:
    """Open alarms (``incidents.visible_open``), those resolved in the last 30 days, and this month's delivery
    and acknowledgement times (``incidents.response_figures``) against the BS 8484 targets."""
    team = policy.team_filter(viewer, policy.Action.INCIDENT_VIEW)
    opened = await incidents.visible_open(session, viewer)
    recent = select(Incident).join(Staff, Staff.id == Incident.collector_id).where(
        Incident.status == IncidentStatus.RESOLVED.value, Incident.resolved_at >= now - timedelta(days=RECENT_DAYS))
    if team is not None:
        recent = recent.where(Staff.team.in_(team))
    resolved = list(await session.scalars(recent.order_by(Incident.resolved_at.desc()).limit(100)))
    today = calendar.working_date(now)
    month = today.replace(day=1)
    start = datetime.combine(month, time(0), calendar.tz)
    end = datetime.combine((month + timedelta(days=32)).replace(day=1), time(0), calendar.tz)
    figures = await incidents.response_figures(session, start, end, team=team)
    targets = []
    for (share, within), measured in zip(TARGETS, (figures.delivery[1], figures.delivery[2]) if figures.delivery
                                         else (None, None), strict=True):
        targets.append(Target(share, within, measured, None if measured is None else measured <= within))
    return AlarmBoard(open=await _alarm_rows(session, opened), recent=await _alarm_rows(session, resolved),
                      figures=AlarmFigures(month, figures.count, figures.delivery, figures.acknowledgement, targets))


@dataclass(frozen=True)
class AlarmDetail:
    row: AlarmRow
    events: list[IncidentEvent]
    names: dict[int, str]


async def alarm_detail(session: AsyncSession, viewer: StaffView, incident_id: int) -> AlarmDetail:
    """One alarm and its whole timeline (``INCIDENT_VIEW``: the policy first)."""
    await policy.require(session, viewer, policy.Action.INCIDENT_VIEW, incident_id)
    incident = await session.get(Incident, incident_id)
    assert incident is not None
    events = await incidents.timeline(session, incident_id)
    rows = await _alarm_rows(session, [incident])
    return AlarmDetail(rows[0], events, await _names(session, {e.staff_id for e in events}))


# ---- reports -------------------------------------------------------------------------------------------------


async def report(session: AsyncSession, viewer: StaffView, kind: str, *, now: datetime,
                 calendar: WorkCalendar) -> reports.Report:
    """Last week's or last month's report, as the chat's /report gives it to the viewer."""
    period = reports.last_period(reports.MONTHLY if kind == reports.MONTHLY else reports.WEEKLY,
                                 calendar.working_date(now))
    built, scope = await reports.build_for(session, viewer, period, calendar=calendar)
    if scope.personal:  # the console's roles always see a team; a personal report is not the console's
        raise Forbidden(subject=("report", kind))
    return built

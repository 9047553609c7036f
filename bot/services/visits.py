"""The field visit: the collector's list and case card, check-in, the result, filing and review.

Every function checks that the actor may touch the case or visit (a collector only their own cases,
a supervisor only their team's) before anything else, so a forged or stale button changes nothing.
Each answer is saved as it arrives; the report is filed in one transaction with its audit entry.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import Date, Float, Integer, Select, and_, bindparam, func, literal_column, not_, or_, select, union_all
from sqlalchemy import case as sql_case
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute
from sqlalchemy.sql.elements import ColumnElement

from bot.buttons import ReviewApprove, ReviewFiles, ReviewReturn, VisitAmend, VisitResume
from bot.i18n import N_
from bot.services import audit, deadlines, dispositions, field_requests, flows, outbox, policy
from bot.services.actor import StaffView
from bot.services.calendar import WorkCalendar
from bot.services.cases import CLOSED_STATUSES
from bot.services.errors import DomainError
from bot.services.geo import approx_meters, geodesic
from bot.services.geocoding import GeocoderLike, locate_many, normalize_address
from bot.services.people import reviewers_of, t_for
from bot.services.visit_summary import summary_text
from bot.steps import ReviewStep
from bot.storage.db import Database
from bot.storage.models import (
    Assignment,
    Case,
    CaseStatus,
    Evidence,
    Promise,
    PromiseStatus,
    Staff,
    Visit,
    VisitStatus,
)

OPEN_VISIT = (VisitStatus.DRAFT.value, VisitStatus.RETURNED.value)
LOCATION_MAX_AGE = timedelta(minutes=5)
RECORDING_KINDS = ("voice", "audio")


@dataclass(frozen=True, slots=True)
class ListedCase:
    """What the visit list shows of a case: read as plain rows, not loaded as ORM objects."""

    id: int
    case_no: str
    debtor_name: str
    address: str
    amount_due_fen: int
    lat: float | None
    lon: float | None
    visit_due_at: datetime | None
    visit_done_at: datetime | None
    visit_overdue_at: datetime | None

    @property
    def amount_due(self) -> Decimal:
        return (Decimal(self.amount_due_fen) / 100).quantize(Decimal("0.01"))


LISTED_COLUMNS = (Case.id, Case.case_no, Case.debtor_name, Case.address, Case.amount_due_fen, Case.lat, Case.lon,
                  Case.visit_due_at, Case.visit_done_at, Case.visit_overdue_at)
_LISTED = len(LISTED_COLUMNS)


@dataclass(frozen=True)
class ListItem:
    case: ListedCase
    distance_m: float | None
    overdue: bool
    due_today: bool
    draft_visit_id: int | None


@dataclass(frozen=True)
class CaseCard:
    case: Case
    visits: list[Visit]
    promises: list[Promise]
    draft: Visit | None
    collector_names: dict[int, str]


# ---- who may see what: the policy decides (bot/services/policy.py) -------------------------------------------


async def own_case(session: AsyncSession, collector: StaffView, case_id: int) -> Case:
    """The case, if the collector may work on it (theirs, or asked of them by a phone collector)."""
    await policy.require(session, collector, policy.Action.CASE_WORK, case_id)
    case = await session.get(Case, case_id)
    assert case is not None  # the policy found it
    return case


async def own_open_visit(session: AsyncSession, collector: StaffView, visit_id: int) -> Visit:
    await policy.require(session, collector, policy.Action.VISIT_WRITE, visit_id)
    visit = await session.get(Visit, visit_id)
    assert visit is not None
    if visit.status not in OPEN_VISIT:
        raise DomainError(N_("visit.error.already_filed"))
    return visit


async def reviewable_visit(session: AsyncSession, reviewer: StaffView, visit_id: int) -> tuple[Visit, Case, Staff]:
    await policy.require(session, reviewer, policy.Action.VISIT_REVIEW, visit_id)
    visit = await session.get(Visit, visit_id)
    assert visit is not None
    case = await session.get(Case, visit.case_id)
    collector = await session.get(Staff, visit.collector_id)
    assert case is not None and collector is not None
    return visit, case, collector


# ---- the list and the card ---------------------------------------------------------------------------------


def _literals(values: Sequence[str]) -> list[ColumnElement[str]]:
    """Constant strings written into the SQL (not bound), so a partial index whose WHERE names them applies."""
    return [literal_column("'" + value.replace("'", "''") + "'") for value in values]


def open_visit_of(collector_id: int | ColumnElement[int]) -> ColumnElement[bool]:
    """The join to the collector's open (draft or returned) visit of the case: uq_visits_open_per_case."""
    return and_(Visit.case_id == Case.id, Visit.collector_id == collector_id,
                Visit.status.in_(_literals(OPEN_VISIT)))


def visit_list_query(collector_id: int, *, now: datetime, today: date, origin: tuple[float, float] | None = None,
                     offset: int = 0, limit: int | None = None) -> Select[Any]:
    """The one statement behind the visit list: a page of (the case's listed columns (:data:`LISTED_COLUMNS`),
    open visit id, list length, overdue count).

    Two indexed branches, UNION ALL (an OR between them would scan every current assignment):

    * the cases currently assigned to the collector (``ix_assignments_current_staff``: staff_id, case_id
      WHERE ended_at IS NULL) that wait for a visit: never visited, a revisit or follow-up due by
      ``today``, or a report of theirs still open;
    * the cases a phone collector asked them to visit (``ix_field_requests_open``: field_collector_id,
      case_id WHERE done_at IS NULL), unless the first branch already has them.

    The open visit comes from ``uq_visits_open_per_case``, the status filter written as literals so that
    partial index applies. The order is the deadline (none last), then the distance from ``origin``,
    then the id, all in SQL, so LIMIT/OFFSET page through one stable order. The distance in the ORDER BY
    is the equirectangular approximation (degrees, the longitude scaled by cos(latitude) of the origin):
    within a city it orders like the geodesic distance the list shows (they differ by well under 1 %,
    which can only swap two cases at almost the same distance), and it needs no SQL function, so
    SQLite and PostgreSQL order alike. Cases without coordinates come after those with. The length and
    the overdue count are window aggregates over the whole list, computed before LIMIT: one round trip.
    """
    statement = _visit_list_shape(origin is not None, limit is not None, offset > 0)
    return statement.params(_visit_list_params(collector_id, now=now, today=today, origin=origin, offset=offset,
                                               limit=limit))


def _visit_list_params(collector_id: int, *, now: datetime, today: date, origin: tuple[float, float] | None,
                       offset: int, limit: int | None) -> dict[str, Any]:
    values: dict[str, Any] = {"collector_id": collector_id, "now": now, "today": today, "offset": offset,
                              "limit": limit}
    if origin is not None:
        values.update(lat0=origin[0], lon0=origin[1], scale=math.cos(math.radians(origin[0])))
    return values


@functools.cache
def _visit_list_shape(with_origin: bool, with_limit: bool, with_offset: bool) -> Select[Any]:
    """The statement of :func:`visit_list_query` with bound parameters, built once per shape (building it
    costs more than running it)."""
    collector_id = bindparam("collector_id", type_=Integer)
    today = bindparam("today", type_=Date)
    now = bindparam("now", type_=Case.visit_due_at.type)
    not_closed = Case.status.not_in(_literals(CLOSED_STATUSES))
    open_visit = open_visit_of(collector_id)
    waiting = or_(Case.status == literal_column(f"'{CaseStatus.ASSIGNED.value}'"), Case.next_action_on <= today,
                  Visit.id.is_not(None))
    assigned = (
        select(Case.id.label("case_id"), Visit.id.label("draft_id"))
        .select_from(Assignment)
        .join(Case, Case.id == Assignment.case_id)
        .outerjoin(Visit, open_visit)
        .where(Assignment.staff_id == collector_id, Assignment.ended_at.is_(None), not_closed, waiting)
    )
    asked = (
        select(Case.id.label("case_id"), Visit.id.label("draft_id"))
        .select_from(Case)
        .join(Assignment, (Assignment.case_id == Case.id) & Assignment.ended_at.is_(None))
        .outerjoin(Visit, open_visit)
        .where(Case.id.in_(field_requests.open_request_case_ids(collector_id)), not_closed,
               not_(and_(Assignment.staff_id == collector_id, waiting)))
    )
    listed = union_all(assigned, asked).subquery("listed")
    overdue = sql_case((and_(Case.visit_done_at.is_(None),
                         or_(Case.visit_overdue_at.is_not(None), Case.visit_due_at <= now)), 1), else_=0)
    order: list[ColumnElement[Any] | InstrumentedAttribute[Any]] = [Case.visit_due_at.is_(None), Case.visit_due_at]
    if with_origin:
        north = Case.lat - bindparam("lat0", type_=Float)
        east = (Case.lon - bindparam("lon0", type_=Float)) * bindparam("scale", type_=Float)
        order += [or_(Case.lat.is_(None), Case.lon.is_(None)), north * north + east * east]
    order.append(Case.id)
    statement = (
        select(*LISTED_COLUMNS, listed.c.draft_id, func.count().over().label("total"),
               func.sum(overdue).over().label("overdue"))
        .join_from(listed, Case, Case.id == listed.c.case_id)
        .order_by(*order)
    )
    if with_limit:
        statement = statement.limit(bindparam("limit", type_=Integer))
    if with_offset:
        statement = statement.offset(bindparam("offset", type_=Integer))
    return statement


@dataclass(frozen=True)
class VisitList:
    """One page of the collector's visit list, and the whole list's length and overdue count."""

    items: list[ListItem]
    total: int
    overdue: int
    offset: int = 0


async def visit_list(session: AsyncSession, collector: StaffView, *, now: datetime, calendar: WorkCalendar,
                     origin: tuple[float, float] | None, offset: int = 0, limit: int | None = None) -> VisitList:
    """Cases waiting for a visit: never visited, or a revisit / follow-up due by today. Deadline first.

    ``limit`` items from ``offset`` (all of them without a limit), in one indexed query
    (:func:`visit_list_query`); the geodesic distance is computed for the items returned only.
    """
    today = calendar.working_date(now)
    end_of_today = datetime.combine(today, calendar.work_end, calendar.tz)
    shape = _visit_list_shape(origin is not None, limit is not None, offset > 0)
    # Core execution on the session's connection: plain rows, no ORM statement compilation or objects
    connection = await session.connection()
    rows = (await connection.execute(shape, _visit_list_params(collector.id, now=now, today=today, origin=origin,
                                                               offset=offset, limit=limit))).all()
    if not rows and offset > 0:  # a page past the end (the list got shorter): the counts from the top
        first = (await connection.execute(_visit_list_shape(False, True, False), _visit_list_params(
            collector.id, now=now, today=today, origin=None, offset=0, limit=1))).first()
        return (VisitList([], int(first[_LISTED + 1]), int(first[_LISTED + 2] or 0), offset) if first
                else VisitList([], 0, 0, offset))
    items = []
    for row in rows:
        case = ListedCase(*row[:_LISTED])
        draft_id = row[_LISTED]
        distance = None
        if origin is not None and case.lat is not None and case.lon is not None:
            distance = approx_meters(origin, (case.lat, case.lon))
        due = case.visit_due_at
        overdue = case.visit_done_at is None and (case.visit_overdue_at is not None or (due is not None and due <= now))
        items.append(ListItem(case, distance, overdue=overdue,
                              due_today=due is not None and now < due <= end_of_today, draft_visit_id=draft_id))
    total, overdue_count = (int(rows[0][_LISTED + 1]), int(rows[0][_LISTED + 2] or 0)) if rows else (0, 0)
    return VisitList(items, total, overdue_count, offset)


def case_card_queries(case_id: int) -> tuple[Select[tuple[Visit, str]], Select[tuple[Promise]]]:
    """The card's two reads after the policy's: the case's visits with their collectors' names, its promises."""
    visits = (select(Visit, Staff.name).join(Staff, Staff.id == Visit.collector_id)
              .where(Visit.case_id == case_id).order_by(Visit.started_at, Visit.id))
    promises = select(Promise).where(Promise.case_id == case_id).order_by(Promise.created_at, Promise.id)
    return visits, promises


async def case_card(session: AsyncSession, collector: StaffView, case_id: int) -> CaseCard:
    case = await own_case(session, collector, case_id)
    visits_query, promises_query = case_card_queries(case_id)
    visits: list[Visit] = []
    names: dict[int, str] = {}
    for visit, name in (await session.execute(visits_query)).all():
        visits.append(visit)
        names[visit.collector_id] = name
    promises = list(await session.scalars(promises_query))
    draft = next((v for v in visits if v.collector_id == collector.id and v.status in OPEN_VISIT), None)
    past = [v for v in visits if v.status not in OPEN_VISIT]
    return CaseCard(case, past, promises, draft, names)


async def reveal_phone(session: AsyncSession, collector: StaffView, case_id: int, *, now: datetime) -> Case:
    """The debtor's phone, for this collector's own case; every look is in the audit log."""
    case = await own_case(session, collector, case_id)
    await audit.record(session, action="case.phone_shown", object_type="case", object_id=case_id,
                       actor_id=collector.id, at=now)
    return case


# ---- the visit, step by step -------------------------------------------------------------------------------


async def start(session: AsyncSession, collector: StaffView, case_id: int, *, now: datetime) -> Visit:
    """Begin a visit to one of the collector's cases, or carry on the draft already there."""
    case = await own_case(session, collector, case_id)
    if case.status in CLOSED_STATUSES:
        raise DomainError(N_("visit.error.case_closed"))
    draft = await session.scalar(select(Visit).where(Visit.case_id == case_id, Visit.collector_id == collector.id,
                                                     Visit.status.in_(OPEN_VISIT)))
    if draft is not None:
        return draft
    visit = Visit(case_id=case_id, collector_id=collector.id, status=VisitStatus.DRAFT.value, started_at=now,
                  updated_at=now, details={"answers": {}}, revision=0, checkin_flagged=False)
    session.add(visit)
    await session.flush()
    await audit.record(session, action="visit.start", object_type="visit", object_id=visit.id, actor_id=collector.id,
                       details={"case_id": case_id}, at=now)
    return visit


async def note_position(session: AsyncSession, collector: StaffView, *, lat: float, lon: float, sent_at: datetime,
                        forwarded: bool, now: datetime) -> None:
    """A location shared outside a check-in: where the collector stands now, to order their list by distance.
    Forwarded or old locations are refused as at a check-in (someone else's place, or yesterday's)."""
    await policy.require(session, collector, policy.Action.PROFILE_OWN, collector.id)
    if forwarded:
        raise DomainError(N_("visit.error.location_forwarded"))
    if now - sent_at > LOCATION_MAX_AGE:
        raise DomainError(N_("visit.error.location_old"))
    me = await session.get(Staff, collector.id)
    assert me is not None
    me.last_lat, me.last_lon, me.last_location_at = lat, lon, now


async def check_in(session: AsyncSession, collector: StaffView, visit_id: int, *, lat: float, lon: float,
                   sent_at: datetime, forwarded: bool, now: datetime, radius_m: float) -> Visit:
    """Record where the collector is. Forwarded or old locations are refused; far ones are flagged."""
    if forwarded:
        raise DomainError(N_("visit.error.location_forwarded"))
    if now - sent_at > LOCATION_MAX_AGE:
        raise DomainError(N_("visit.error.location_old"))
    visit = await own_open_visit(session, collector, visit_id)
    case = await session.get(Case, visit.case_id)
    assert case is not None
    distance = geodesic((lat, lon), (case.lat, case.lon)).meters if case.lat is not None and case.lon is not None \
        else None
    visit.checkin_at, visit.checkin_lat, visit.checkin_lon = now, lat, lon
    visit.checkin_distance_m = round(distance, 1) if distance is not None else None
    visit.checkin_flagged = distance is not None and distance > radius_m
    visit.updated_at = now
    me = await session.get(Staff, collector.id)
    assert me is not None
    me.last_lat, me.last_lon, me.last_location_at = lat, lon, now
    await audit.record(session, action="visit.checkin", object_type="visit", object_id=visit.id,
                       actor_id=collector.id, at=now,
                       details={"lat": lat, "lon": lon, "distance_m": visit.checkin_distance_m,
                                "flagged": visit.checkin_flagged})
    return visit


async def set_duration(session: AsyncSession, collector: StaffView, visit_id: int, minutes: int, *,
                       now: datetime) -> Visit:
    if not 5 <= minutes <= 8 * 60:
        raise DomainError(N_("visit.hint.duration"))
    visit = await own_open_visit(session, collector, visit_id)
    visit.planned_minutes = minutes
    visit.safety_due_at = now + timedelta(minutes=minutes)
    visit.updated_at = now
    return visit


async def set_code(session: AsyncSession, collector: StaffView, visit_id: int, code: str, *, now: datetime) -> Visit:
    if code not in dispositions.DISPOSITIONS:
        raise DomainError("error.stale_button")
    visit = await own_open_visit(session, collector, visit_id)
    if visit.code != code:
        visit.code = code
        visit.details = {**visit.details, "answers": {}}
    visit.updated_at = now
    return visit


async def answer(session: AsyncSession, collector: StaffView, visit_id: int, name: str, value: object, *,
                 now: datetime, located: tuple[float, float] | None = None) -> Visit:
    """Save one checked answer to the current result's question ``name``; an address with its coordinates
    (``located``: from :func:`locate_address`, None when the map does not know it or it is unknown)."""
    visit = await own_open_visit(session, collector, visit_id)
    if visit.code is None or name not in {f.name for f in dispositions.DISPOSITIONS[visit.code]}:
        raise DomainError("error.stale_button")
    answers = dict(visit.details.get("answers", {}))
    answers[name] = value
    details = {**visit.details, "answers": answers}
    if dispositions.field(visit.code, name).kind is dispositions.Kind.ADDRESS:
        details["located"] = {**details.get("located", {}), name: list(located) if located else None}
    visit.details = details
    visit.updated_at = now
    return visit


async def locate_address(database: Database, geocoder: GeocoderLike | None, address: str, *,
                         now: datetime) -> tuple[float, float] | None:
    """The coordinates of an address a collector typed: the geocode cache, else the runtime's geocoder (which
    caches the answer). None when the geocoder is off or does not know the address."""
    if not address.strip():
        return None
    found = await locate_many(database, geocoder, [address], now=now)
    return found.get(normalize_address(address))


def located(visit: Visit, name: str) -> tuple[float, float] | None:
    """The coordinates saved with the visit's address answer ``name``, if it was found on the map."""
    point = visit.details.get("located", {}).get(name)
    return (float(point[0]), float(point[1])) if point else None


def takes_evidence(visit: Visit) -> bool:
    """Photos and recordings are taken once checked in, or at once for a result that needs no check-in."""
    return visit.checkin_at is not None or not dispositions.evidence_rule(visit.code).checkin


async def evidence_of(session: AsyncSession, visit_id: int) -> list[Evidence]:
    return list(await session.scalars(select(Evidence).where(Evidence.visit_id == visit_id).order_by(Evidence.id)))


def has_recording(visit: Visit, evidence: Sequence[Evidence]) -> bool:
    """At least one voice note or audio file, received during the visit, is stored (the SOP's rule; which codes
    need it: :data:`bot.services.dispositions.EVIDENCE`)."""
    since = visit.checkin_at or visit.started_at
    return any(e.kind in RECORDING_KINDS and e.status == "stored" and e.sent_at >= since for e in evidence)


async def file_report(session: AsyncSession, collector: StaffView, visit_id: int, *, now: datetime,
                      calendar: WorkCalendar) -> Visit:
    """File the report: checks, case status and next action, promise, audit, review request. One transaction.

    What evidence the report needs (a check-in, a recording) is its code's rule in
    :data:`bot.services.dispositions.EVIDENCE`; a recording or check-in made anyway is kept either way.
    """
    visit = await own_open_visit(session, collector, visit_id)
    rule = dispositions.evidence_rule(visit.code)
    if rule.checkin and visit.checkin_at is None:
        raise DomainError(N_("visit.error.no_checkin"))
    if visit.code is None or not dispositions.complete(visit.code, visit.details.get("answers", {})):
        raise DomainError(N_("visit.error.incomplete"))
    evidence = await evidence_of(session, visit_id)
    if rule.recording and not has_recording(visit, evidence):
        raise DomainError(N_("visit.error.no_recording"))
    case = await own_case(session, collector, visit.case_id)
    answers = visit.details["answers"]
    outcome = dispositions.OUTCOMES[visit.code]
    amount = answers.get("amount")
    visit.amount_fen = int(Decimal(str(amount)) * 100) if amount is not None else None
    visit.action_date = date.fromisoformat(str(answers[outcome.date_field])) \
        if outcome.date_field and outcome.date_field in answers \
        else calendar.add_working_days(calendar.working_date(now), outcome.due_after) if outcome.due_at_once \
        else None  # a locate task: on the list at once; a visit aborted for safety: the next working day
    resubmission = visit.status == VisitStatus.RETURNED.value
    visit.status = VisitStatus.FILED.value
    visit.filed_at = now
    visit.safety_due_at = visit.safety_prompted_at = None  # filing stops the safety timer
    visit.updated_at = now
    visit.revision += 1
    if outcome.status is not None:
        case.status = outcome.status.value
    if visit.code != "NOT_VISITED" and case.visit_done_at is None:
        case.visit_done_at = now  # the SOP's visit happened: its deadline reminders stop
        await deadlines.cancel_visit_reminders(session, case.id, now=now)
    case.next_action = outcome.next_action
    case.next_action_on = visit.action_date
    case.updated_at = now
    new_address = str(answers.get(outcome.relocate) or "") if outcome.relocate else ""
    await _relocate(session, collector, visit, case, new_address,
                    located(visit, outcome.relocate) if outcome.relocate else None, now=now)
    existing = await session.scalar(select(Promise).where(Promise.visit_id == visit.id))
    if visit.code == "PTP" and visit.amount_fen is not None and visit.action_date is not None:
        if existing is None:
            session.add(Promise(case_id=case.id, visit_id=visit.id, collector_id=collector.id,
                                amount_fen=visit.amount_fen, due_on=visit.action_date,
                                status=PromiseStatus.OPEN.value, created_at=now))
        else:
            existing.amount_fen, existing.due_on = visit.amount_fen, visit.action_date
    elif existing is not None:  # amended away from a promise
        await session.delete(existing)
    await session.flush()
    await audit.record(session, action="visit.refiled" if resubmission else "visit.filed", object_type="visit",
                       object_id=visit.id, actor_id=collector.id, at=now,
                       details={"case_id": case.id, "code": visit.code, "answers": answers,
                                "revision": visit.revision,
                                "evidence": [e.sha256 for e in evidence if e.sha256],
                                "missing_evidence": [e.file_unique_id for e in evidence if e.status != "stored"]})
    await _request_review(session, visit, case, evidence, now=now, calendar=calendar,
                          urgent=outcome.to_supervisor)
    await field_requests.report_back(session, visit, case, evidence, now=now, tz=calendar.tz)
    return visit


async def _relocate(session: AsyncSession, collector: StaffView, visit: Visit, case: Case, new_address: str,
                    point: tuple[float, float] | None, *, now: datetime) -> None:
    """The debtor moved and the new address is known: the case's address and coordinates become the new ones
    (none when the map does not know it). Where the case was is kept on the visit (``details["relocation"]``)
    and in the audit log (``case.address_changed``). A returned report amended to another result or an
    unknown address puts the case back where it was, if nothing else moved it since."""
    before: dict[str, Any] | None = visit.details.get("relocation")
    here: dict[str, Any] = {"address": case.address, "lat": case.lat, "lon": case.lon}
    there: dict[str, Any]
    if new_address:
        there = {"address": new_address, "lat": point[0] if point else None, "lon": point[1] if point else None}
        relocation = {"from": before["from"] if before else here, "to": there}
    elif before is not None and here == before["to"]:
        there, relocation = before["from"], None
    else:
        return
    if there != here:
        case.address, case.lat, case.lon = there["address"], there["lat"], there["lon"]
        await audit.record(session, action="case.address_changed", object_type="case", object_id=case.id,
                           actor_id=collector.id, at=now,
                           details={"visit_id": visit.id, "code": visit.code, "from": here, "to": there})
    details = {k: v for k, v in visit.details.items() if k != "relocation"}
    visit.details = {**details, "relocation": relocation} if relocation else details


async def _request_review(session: AsyncSession, visit: Visit, case: Case, evidence: Sequence[Evidence], *,
                          now: datetime, calendar: WorkCalendar, urgent: bool) -> None:
    collector = await session.get(Staff, visit.collector_id)
    assert collector is not None
    for boss in await reviewers_of(session, visit.collector_id):
        t = t_for(boss)
        head = t(N_("review.request_urgent") if urgent else N_("review.request"), name=collector.name)
        assert boss.telegram_user_id is not None
        await outbox.enqueue(
            session, chat_id=boss.telegram_user_id, kind="review.request", now=now, protect_content=True,
            priority=outbox.Priority.REVIEW,
            text=head + "\n\n" + summary_text(t, case, visit, evidence, tz=calendar.tz),
            buttons=[[(t("review.approve"), ReviewApprove(visit_id=visit.id).pack()),
                      (t("review.return"), ReviewReturn(visit_id=visit.id).pack())],
                     [(t("review.files"), ReviewFiles(visit_id=visit.id).pack())]],
            dedupe_key=f"review:{visit.id}:{visit.revision}:{boss.id}",
        )


async def start_return(session: AsyncSession, reviewer: StaffView, visit_id: int, *, now: datetime) -> Visit:
    """The reviewer pressed "return": the comment they type next goes back with the report."""
    visit, _, _ = await reviewable_visit(session, reviewer, visit_id)
    if visit.status != VisitStatus.FILED.value:
        raise DomainError(N_("review.error.not_waiting"))
    await flows.enter(session, reviewer.id, ReviewStep.COMMENT, {"visit_id": visit_id}, now=now)
    return visit


async def review(session: AsyncSession, reviewer: StaffView, visit_id: int, *, approve: bool, comment: str | None,
                 now: datetime) -> Visit:
    visit, case, collector = await reviewable_visit(session, reviewer, visit_id)
    if visit.status != VisitStatus.FILED.value:
        raise DomainError(N_("review.error.not_waiting"))
    visit.reviewed_by_id, visit.reviewed_at, visit.review_comment = reviewer.id, now, comment
    visit.status = VisitStatus.APPROVED.value if approve else VisitStatus.RETURNED.value
    visit.updated_at = now
    await audit.record(session, action="visit.approved" if approve else "visit.returned", object_type="visit",
                       object_id=visit.id, actor_id=reviewer.id, at=now, details={"comment": comment})
    if collector.telegram_user_id is not None:
        t = t_for(collector)
        if approve:
            await outbox.enqueue(session, chat_id=collector.telegram_user_id, kind="review.approved", now=now,
                                 text=t("review.approved_notice", case_no=case.case_no, name=reviewer.name))
        else:
            await outbox.enqueue(session, chat_id=collector.telegram_user_id, kind="review.returned", now=now,
                                 priority=outbox.Priority.REVIEW,
                                 text=t("review.returned_notice", case_no=case.case_no, name=reviewer.name,
                                        comment=comment or "-"),
                                 buttons=[[(t("visit.amend"), VisitAmend(visit_id=visit.id).pack())]])
    return visit


async def open_drafts(session: AsyncSession) -> list[tuple[Visit, Staff, Case]]:
    rows = await session.execute(
        select(Visit, Staff, Case).join(Staff, Staff.id == Visit.collector_id).join(Case, Case.id == Visit.case_id)
        .where(Visit.status == VisitStatus.DRAFT.value, Staff.active.is_(True), Staff.telegram_user_id.is_not(None)))
    return [(v, s, c) for v, s, c in rows.all()]


async def offer_resume(session: AsyncSession, *, now: datetime) -> int:
    """After a restart: offer each collector with an unfinished report to carry on (once per draft state)."""
    count = 0
    for visit, person, case in await open_drafts(session):
        t = t_for(person)
        assert person.telegram_user_id is not None
        queued = await outbox.enqueue(
            session, chat_id=person.telegram_user_id, kind="visit.resume", now=now,
            text=t("visit.resume_offer", case_no=case.case_no),
            buttons=[[(t("visit.resume"), VisitResume(visit_id=visit.id).pack())]],
            dedupe_key=f"resume:{visit.id}:{visit.updated_at.isoformat()}")
        count += queued is not None
    return count


async def count_by_status(session: AsyncSession, collector_id: int) -> dict[str, int]:
    rows = await session.execute(select(Visit.status, func.count()).where(Visit.collector_id == collector_id)
                                 .group_by(Visit.status))
    return {status: int(n) for status, n in rows.all()}


def answers_of(visit: Visit) -> dict[str, Any]:
    return dict(visit.details.get("answers", {}))

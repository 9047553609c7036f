"""Phone-to-field handover: a phone collector puts a case on a field collector's visit list.

The case stays the phone collector's; the field collector may visit and report on it until the
request is done, and their filed result goes back to the phone collector. The hand-off starts the
field visit's 2-working-day window (SOP: 外访催收应当在电话催收交接案件时起两个工作日内完成), with the
same reminders and overdue notices as an assignment (:func:`deadlines.schedule_field_request`).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from bot.i18n import N_
from bot.services import audit, deadlines, outbox, policy
from bot.services.actor import StaffView
from bot.services.calendar import WorkCalendar
from bot.services.errors import DomainError
from bot.services.people import t_for
from bot.services.visit_summary import summary_text
from bot.storage.models import Case, Evidence, FieldRequest, Role, Staff, Visit


async def open_request(session: AsyncSession, case_id: int, field_collector_id: int) -> FieldRequest | None:
    request: FieldRequest | None = await session.scalar(select(FieldRequest).where(
        FieldRequest.case_id == case_id, FieldRequest.field_collector_id == field_collector_id,
        FieldRequest.done_at.is_(None)))
    return request


def open_request_case_ids(field_collector_id: int | ColumnElement[int]) -> Select[tuple[int]]:
    """The cases phone collectors asked this field collector to visit, still open (ix_field_requests_open)."""
    return select(FieldRequest.case_id).where(FieldRequest.field_collector_id == field_collector_id,
                                              FieldRequest.done_at.is_(None))


async def requested_case_ids(session: AsyncSession, field_collector_id: int) -> Sequence[int]:
    return list(await session.scalars(open_request_case_ids(field_collector_id)))


async def _case(session: AsyncSession, actor: StaffView, case_id: int) -> tuple[Case, str | None]:
    """The case ``actor`` may send to the field (CASE_TO_FIELD), and the team whose collectors may visit it."""
    await policy.require(session, actor, policy.Action.CASE_TO_FIELD, case_id)
    case = await session.get(Case, case_id)
    assert case is not None
    requester = await session.get(Staff, actor.id)
    return case, case.team or (requester.team if requester else None)


async def field_collectors(session: AsyncSession, actor: StaffView, case_id: int) -> list[Staff]:
    """The field collectors ``actor`` may send this case to (its team's)."""
    _, team = await _case(session, actor, case_id)
    return list(await session.scalars(select(Staff).where(
        Staff.active.is_(True), Staff.role == Role.COLLECTOR.value, Staff.team == team).order_by(Staff.name)))


async def prepare(session: AsyncSession, actor: StaffView, case_id: int, field_collector_id: int) -> tuple[Case, Staff]:
    """Check that ``actor`` may send this case to this field collector; the case and the collector."""
    case, team = await _case(session, actor, case_id)
    collector = await session.get(Staff, field_collector_id)
    if collector is None or not collector.active or collector.role != Role.COLLECTOR.value or collector.team != team:
        raise DomainError(N_("tofield.error.not_field"))
    return case, collector


async def create(session: AsyncSession, actor: StaffView, case_id: int, field_collector_id: int, note: str, *,
                 now: datetime, calendar: WorkCalendar) -> FieldRequest:
    case, collector = await prepare(session, actor, case_id, field_collector_id)
    if await open_request(session, case_id, field_collector_id) is not None:
        raise DomainError(N_("tofield.error.pending"))
    request = FieldRequest(case_id=case_id, requested_by_id=actor.id, field_collector_id=field_collector_id,
                           note=note.strip()[:500], created_at=now)
    session.add(request)
    await session.flush()
    await deadlines.schedule_field_request(session, request, now=now, calendar=calendar)
    assert request.visit_due_at is not None
    await audit.record(session, action="case.to_field", object_type="case", object_id=case_id, actor_id=actor.id,
                       at=now, details={"to": field_collector_id, "note": request.note,
                                        "visit_due_at": request.visit_due_at.isoformat()})
    if collector.telegram_user_id is not None:
        t = t_for(collector)
        await outbox.enqueue(session, chat_id=collector.telegram_user_id, kind="tofield.request", now=now,
                             protect_content=True, text=t(N_("tofield.notice"), name=actor.name, case_no=case.case_no,
                                                          address=case.address, note=request.note,
                                                          due=t.datetime(request.visit_due_at, calendar.tz)))
    return request


async def report_back(session: AsyncSession, visit: Visit, case: Case, evidence: Sequence[Evidence], *,
                      now: datetime, tz: ZoneInfo) -> None:
    """A filed visit answers the field request it was made for: the phone collector gets the result."""
    request = await open_request(session, case.id, visit.collector_id)
    if request is None:
        return
    request.done_at, request.visit_id = now, visit.id
    await deadlines.cancel_visit_reminders(session, case.id, now=now, field_request_id=request.id)
    requester = await session.get(Staff, request.requested_by_id)
    collector = await session.get(Staff, visit.collector_id)
    if requester is not None and requester.telegram_user_id is not None and collector is not None:
        t = t_for(requester)
        await outbox.enqueue(session, chat_id=requester.telegram_user_id, kind="tofield.result", now=now,
                             protect_content=True, priority=outbox.Priority.REVIEW,
                             text=t(N_("tofield.result"), name=collector.name, case_no=case.case_no) + "\n\n"
                             + summary_text(t, case, visit, evidence, tz=tz))

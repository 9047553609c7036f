"""Phone-to-field handover: a phone collector puts a case on a field collector's visit list.

The case stays the phone collector's; the field collector may visit and report on it until the
request is done, and their filed result goes back to the phone collector.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.i18n import N_
from bot.services import audit, outbox
from bot.services.actor import StaffView
from bot.services.errors import DomainError, Forbidden, NotFound
from bot.services.people import t_for
from bot.services.visit_summary import summary_text
from bot.storage.models import Assignment, Case, Evidence, FieldRequest, Role, Staff, Visit


async def open_request(session: AsyncSession, case_id: int, field_collector_id: int) -> FieldRequest | None:
    request: FieldRequest | None = await session.scalar(select(FieldRequest).where(
        FieldRequest.case_id == case_id, FieldRequest.field_collector_id == field_collector_id,
        FieldRequest.done_at.is_(None)))
    return request


async def requested_case_ids(session: AsyncSession, field_collector_id: int) -> Sequence[int]:
    return list(await session.scalars(select(FieldRequest.case_id).where(
        FieldRequest.field_collector_id == field_collector_id, FieldRequest.done_at.is_(None))))


async def create(session: AsyncSession, actor: StaffView, case_id: int, field_collector_id: int, note: str, *,
                 now: datetime) -> FieldRequest:
    case = await session.get(Case, case_id)
    if case is None:
        raise NotFound()
    current = await session.scalar(select(Assignment.staff_id).where(Assignment.case_id == case_id,
                                                                     Assignment.ended_at.is_(None)))
    allowed = (actor.role is Role.PHONE_COLLECTOR and current == actor.id) or (
        actor.role is Role.SUPERVISOR and case.team == actor.team) or actor.role is Role.ADMIN
    if not allowed:
        raise Forbidden(subject=("case", case_id))
    collector = await session.get(Staff, field_collector_id)
    requester = await session.get(Staff, actor.id)
    team = case.team or (requester.team if requester else None)
    if collector is None or not collector.active or collector.role != Role.COLLECTOR.value or collector.team != team:
        raise DomainError(N_("tofield.error.not_field"))
    if await open_request(session, case_id, field_collector_id) is not None:
        raise DomainError(N_("tofield.error.pending"))
    request = FieldRequest(case_id=case_id, requested_by_id=actor.id, field_collector_id=field_collector_id,
                           note=note.strip()[:500], created_at=now)
    session.add(request)
    await session.flush()
    await audit.record(session, action="case.to_field", object_type="case", object_id=case_id, actor_id=actor.id,
                       at=now, details={"to": field_collector_id, "note": request.note})
    if collector.telegram_user_id is not None:
        t = t_for(collector)
        await outbox.enqueue(session, chat_id=collector.telegram_user_id, kind="tofield.request", now=now,
                             protect_content=True, text=t(N_("tofield.notice"), name=actor.name, case_no=case.case_no,
                                                          address=case.address, note=request.note))
    return request


async def report_back(session: AsyncSession, visit: Visit, case: Case, evidence: Sequence[Evidence], *,
                      now: datetime, tz: ZoneInfo) -> None:
    """A filed visit answers the field request it was made for: the phone collector gets the result."""
    request = await open_request(session, case.id, visit.collector_id)
    if request is None:
        return
    request.done_at, request.visit_id = now, visit.id
    requester = await session.get(Staff, request.requested_by_id)
    collector = await session.get(Staff, visit.collector_id)
    if requester is not None and requester.telegram_user_id is not None and collector is not None:
        t = t_for(requester)
        await outbox.enqueue(session, chat_id=requester.telegram_user_id, kind="tofield.result", now=now,
                             protect_content=True, priority=outbox.Priority.REVIEW,
                             text=t(N_("tofield.result"), name=collector.name, case_no=case.case_no) + "\n\n"
                             + summary_text(t, case, visit, evidence, tz=tz))

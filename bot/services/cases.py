"""Reading cases: who holds a case now, a collector's open cases, listings for scripts and checks.

Every service reads cases through these; nothing here imports another service with business logic.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.storage.models import Assignment, Case, CaseStatus, Staff

FINISHED_STATUSES = (CaseStatus.CLOSED.value, CaseStatus.PAID.value)
# Off the visit lists and the deadline reminders: finished, or parked on hold by a supervisor. A case on hold
# is reopened by the supervisor (bot/services/case_desk.py), which gives it a fresh visit window.
CLOSED_STATUSES = (*FINISHED_STATUSES, CaseStatus.ON_HOLD.value)


@dataclass(frozen=True)
class CaseListing:
    case: Case
    assignee_id: int | None
    assignee_name: str | None

    def as_dict(self) -> dict[str, object]:
        c = self.case
        return {
            "id": c.id, "bank": c.bank, "case_no": c.case_no, "debtor_name": c.debtor_name,
            "id_number_masked": c.id_number_masked, "phone": c.phone, "address": c.address,
            "lat": c.lat, "lon": c.lon, "amount_due": str(c.amount_due), "overdue_days": c.overdue_days,
            "entrusted_on": c.entrusted_on.isoformat() if c.entrusted_on else None,
            "contract_end": c.contract_end.isoformat() if c.contract_end else None,
            "status": c.status, "team": c.team, "assignee_id": self.assignee_id, "assignee": self.assignee_name,
            "visit_due_at": _iso(c.visit_due_at), "assign_due_at": _iso(c.assign_due_at),
        }


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


async def list_cases(session: AsyncSession, *, status: str | None = None,
                     assignee_id: int | None = None) -> list[CaseListing]:
    query = (
        select(Case, Staff.id, Staff.name)
        .outerjoin(Assignment, (Assignment.case_id == Case.id) & Assignment.ended_at.is_(None))
        .outerjoin(Staff, Staff.id == Assignment.staff_id)
        .order_by(Case.bank, Case.case_no)
    )
    if status:
        query = query.where(Case.status == status)
    if assignee_id is not None:
        query = query.where(Assignment.staff_id == assignee_id)
    return [CaseListing(case, sid, name) for case, sid, name in (await session.execute(query)).all()]


async def current_assignee(session: AsyncSession, case_id: int) -> Staff | None:
    staff: Staff | None = await session.scalar(
        select(Staff).join(Assignment, Assignment.staff_id == Staff.id)
        .where(Assignment.case_id == case_id, Assignment.ended_at.is_(None))
    )
    return staff


async def current_assignee_id(session: AsyncSession, case_id: int) -> int | None:
    staff_id: int | None = await session.scalar(select(Assignment.staff_id).where(
        Assignment.case_id == case_id, Assignment.ended_at.is_(None)))
    return staff_id


async def active_assignees(session: AsyncSession, case_ids: Collection[int]) -> dict[int, Staff]:
    """Case id to its current assignee, for the cases whose assignee is still active."""
    rows = await session.execute(
        select(Assignment.case_id, Staff).join(Staff, Staff.id == Assignment.staff_id)
        .where(Assignment.case_id.in_(case_ids), Assignment.ended_at.is_(None), Staff.active.is_(True)))
    return {case_id: staff for case_id, staff in rows.all()}


async def open_cases_of(session: AsyncSession, staff_id: int) -> list[Case]:
    return list(await session.scalars(
        select(Case).join(Assignment, (Assignment.case_id == Case.id) & Assignment.ended_at.is_(None))
        .where(Assignment.staff_id == staff_id, Case.status.not_in(CLOSED_STATUSES)).order_by(Case.id)))

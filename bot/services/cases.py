"""Reading cases for scripts and checks: filters by status and current assignee."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.storage.models import Assignment, Case, Staff


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

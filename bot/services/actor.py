"""Who is acting: a snapshot of the person behind an update, shared by handlers and every service."""

from __future__ import annotations

from dataclasses import dataclass, replace

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.storage.models import Role, Staff


@dataclass(frozen=True)
class StaffView:
    """What handlers know about the person behind an update (a snapshot, not a live row)."""

    id: int
    name: str
    role: Role
    team: str | None
    locale: str | None
    telegram_user_id: int | None
    supervisor_id: int | None
    branch: str | None = None
    # the teams of the person's branch (those whose supervisor works for it); filled by :func:`load`
    branch_teams: frozenset[str] = frozenset()

    @classmethod
    def of(cls, staff: Staff) -> StaffView:
        return cls(
            id=staff.id, name=staff.name, role=Role(staff.role), team=staff.team, locale=staff.locale,
            telegram_user_id=staff.telegram_user_id, supervisor_id=staff.supervisor_id, branch=staff.branch,
        )


async def branch_teams(session: AsyncSession, branch: str | None) -> frozenset[str]:
    """The teams of ``branch``: a team's branch is its supervisor's."""
    if branch is None:
        return frozenset()
    return frozenset(t for t in await session.scalars(select(Staff.team).distinct().where(
        Staff.branch == branch, Staff.role == Role.SUPERVISOR.value, Staff.team.is_not(None))) if t is not None)


async def load(session: AsyncSession, staff: Staff) -> StaffView:
    """:meth:`StaffView.of` with the teams of the person's branch (one query, only for someone with a branch)."""
    view = StaffView.of(staff)
    if staff.branch is None:
        return view
    return replace(view, branch_teams=await branch_teams(session, staff.branch))

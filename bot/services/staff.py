"""Staff records: register, list, deactivate, and look up who is talking to the bot."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.i18n import N_
from bot.services import audit
from bot.services.cases import open_cases_of
from bot.services.errors import DomainError, NotFound
from bot.storage.models import Role, Staff


async def add_staff(
    session: AsyncSession,
    *,
    name: str,
    role: Role,
    now: datetime,
    team: str | None = None,
    supervisor_id: int | None = None,
    phone: str | None = None,
    locale: str | None = None,
    actor_id: int | None = None,
    branch: str | None = None,
) -> Staff:
    name = name.strip()
    if not name:
        raise DomainError("staff.error.name_required")
    if supervisor_id is not None:
        boss = await session.get(Staff, supervisor_id)
        if boss is None or not boss.active or boss.role not in (Role.SUPERVISOR, Role.ADMIN):
            raise DomainError("staff.error.bad_supervisor", id=supervisor_id)
    branch = branch.strip() or None if branch is not None else None
    staff = Staff(name=name, role=role.value, team=team, supervisor_id=supervisor_id, phone=phone,
                  locale=locale, active=True, created_at=now, branch=branch)
    session.add(staff)
    await session.flush()
    await audit.record(session, action="staff.add", object_type="staff", object_id=staff.id, actor_id=actor_id,
                       details={"name": name, "role": role.value, "team": team, "supervisor_id": supervisor_id,
                                **({"branch": branch} if branch else {})}, at=now)
    return staff


async def list_staff(session: AsyncSession, *, include_inactive: bool = True) -> list[Staff]:
    query = select(Staff).order_by(Staff.id)
    if not include_inactive:
        query = query.where(Staff.active.is_(True))
    return list((await session.scalars(query)).all())


async def deactivate(session: AsyncSession, staff_id: int, *, now: datetime, actor_id: int | None = None,
                     allow_open_cases: bool = False) -> Staff:
    """Switch an account off at once. A collector with open cases needs a handover first (no orphans)."""
    staff = await session.get(Staff, staff_id)
    if staff is None:
        raise NotFound("staff.error.unknown", id=staff_id)
    if not allow_open_cases:
        open_cases = await open_cases_of(session, staff_id)
        if open_cases:
            raise DomainError(N_("staff.error.open_cases"), count=len(open_cases), id=staff_id)
    if staff.active:
        staff.active = False
        await audit.record(session, action="staff.deactivate", object_type="staff", object_id=staff.id,
                           actor_id=actor_id, at=now)
    return staff


async def active_by_telegram_id(session: AsyncSession, telegram_user_id: int) -> Staff | None:
    staff: Staff | None = await session.scalar(
        select(Staff).where(Staff.telegram_user_id == telegram_user_id, Staff.active.is_(True))
    )
    return staff


async def set_locale(session: AsyncSession, staff_id: int, locale: str, *, now: datetime) -> None:
    staff = await session.get(Staff, staff_id)
    if staff is None:
        raise NotFound("staff.error.unknown", id=staff_id)
    staff.locale = locale
    await audit.record(session, action="staff.locale", object_type="staff", object_id=staff_id,
                       actor_id=staff_id, details={"locale": locale}, at=now)

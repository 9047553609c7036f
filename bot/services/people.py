"""Per-person lookups every service shares: a person's language, who answers for them, whether they are leaving.

Reads only; nothing here imports another service.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.i18n import DEFAULT_LOCALE, Translator, resolve_locale, translator
from bot.storage.models import Handover, HandoverStatus, Role, Staff

RUNNING = (HandoverStatus.COLLECTING.value, HandoverStatus.LEAD_REVIEW.value, HandoverStatus.RECEIVING.value)


def t_for(person: Staff) -> Translator:
    """The translator of ``person``'s own language."""
    return translator(resolve_locale(person.locale, None, DEFAULT_LOCALE))


async def reviewers_of(session: AsyncSession, collector_id: int) -> list[Staff]:
    """The collector's own supervisor, else the supervisors of their team."""
    collector = await session.get(Staff, collector_id)
    assert collector is not None
    if collector.supervisor_id is not None:
        boss = await session.get(Staff, collector.supervisor_id)
        if boss is not None and boss.active and boss.telegram_user_id is not None:
            return [boss]
    return list(await session.scalars(select(Staff).where(
        Staff.role == Role.SUPERVISOR.value, Staff.team == collector.team, Staff.active.is_(True),
        Staff.telegram_user_id.is_not(None))))


async def running_for(session: AsyncSession, staff_id: int) -> Handover | None:
    """The handover under way for ``staff_id`` leaving, if any."""
    running: Handover | None = await session.scalar(select(Handover).where(
        Handover.from_staff_id == staff_id, Handover.status.in_(RUNNING)))
    return running

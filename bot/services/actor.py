"""Who is acting: a snapshot of the person behind an update, shared by handlers and every service."""

from __future__ import annotations

from dataclasses import dataclass

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

    @classmethod
    def of(cls, staff: Staff) -> StaffView:
        return cls(
            id=staff.id, name=staff.name, role=Role(staff.role), team=staff.team, locale=staff.locale,
            telegram_user_id=staff.telegram_user_id, supervisor_id=staff.supervisor_id,
        )

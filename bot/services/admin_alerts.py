"""An urgent message to every active admin (the custody sweeps' alerts: backups, the audit checkpoint)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select

from bot.services import outbox
from bot.services.people import t_for
from bot.storage.db import Database
from bot.storage.models import Role, Staff


async def tell_admins(database: Database, *, key: str, kind: str, now: datetime, dedupe: str,
                      **params: object) -> int:
    """Queue message ``key`` (in each admin's language) to every active admin, once per ``dedupe`` key and
    admin, in one transaction; how many messages were queued."""
    async with database.write() as session:
        admins = list(await session.scalars(select(Staff).where(
            Staff.role == Role.ADMIN.value, Staff.active.is_(True), Staff.telegram_user_id.is_not(None))))
        sent = 0
        for admin in admins:
            assert admin.telegram_user_id is not None
            row = await outbox.enqueue(session, chat_id=admin.telegram_user_id, text=t_for(admin)(key, **params),
                                       kind=kind, now=now, priority=outbox.Priority.URGENT,
                                       dedupe_key=f"{dedupe}:{admin.id}")
            sent += row is not None
    return sent

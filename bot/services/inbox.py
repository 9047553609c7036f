"""Exactly-once effects: record the update (or file) that caused a change, in the change's transaction."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from bot.services.errors import AlreadyDone
from bot.storage.models import InboxEntry


async def claim(session: AsyncSession, key: str, *, now: datetime) -> None:
    """Raise :class:`AlreadyDone` if ``key`` was processed; otherwise record it in this transaction.

    One statement: an insert that does nothing when the key is there. Write transactions hold the
    database's write lock (SQLite ``BEGIN IMMEDIATE``); on PostgreSQL a second delivery waits on the
    first one's uncommitted key and then finds it, so two deliveries of one update cannot both pass.
    """
    dialect = session.bind.dialect.name if session.bind is not None else "sqlite"
    insert: Any = postgresql.insert if dialect == "postgresql" else sqlite.insert
    result = await session.execute(insert(InboxEntry).values(key=key, at=now).on_conflict_do_nothing())
    if result.rowcount != 1:  # type: ignore[attr-defined]
        raise AlreadyDone()


def update_key(update_id: int) -> str:
    return f"update:{update_id}"

"""Exactly-once effects: record the update (or file) that caused a change, in the change's transaction.

The rows are kept ``FIELDBOT_PRUNE_AFTER_DAYS`` (30 by default) and then deleted by the prune sweep
(``bot/services/pruning.py``). An update older than that could in theory be applied again, but Telegram
keeps an undelivered update for 24 hours at most and never delivers one again after that.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from bot.services.errors import AlreadyDone
from bot.storage.db import Database
from bot.storage.models import InboxEntry


async def claim(session: AsyncSession, key: str, *, now: datetime) -> None:
    """Raise :class:`AlreadyDone` if ``key`` was processed; otherwise record it in this transaction.

    One statement: an insert that does nothing when the key is there (``INSERT ... ON CONFLICT DO
    NOTHING`` on both databases), so the clash of two deliveries is never an integrity error. Write
    transactions hold the database's write lock (SQLite ``BEGIN IMMEDIATE``); on PostgreSQL a second
    delivery waits on the first one's uncommitted key and then finds it (no row inserted: AlreadyDone),
    or inserts it if the first one rolled back, so two deliveries of one update cannot both pass.
    """
    dialect = session.bind.dialect.name if session.bind is not None else "sqlite"
    insert: Any = postgresql.insert if dialect == "postgresql" else sqlite.insert
    result = await session.execute(insert(InboxEntry).values(key=key, at=now).on_conflict_do_nothing())
    if result.rowcount != 1:  # type: ignore[attr-defined]
        raise AlreadyDone()


def update_key(update_id: int) -> str:
    return f"update:{update_id}"


async def applied(database: Database, key: str) -> bool:
    """Whether ``key`` is recorded by a committed transaction (read in a transaction of its own)."""
    async with database.read() as session:
        return await session.get(InboxEntry, key) is not None

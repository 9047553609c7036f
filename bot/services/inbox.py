"""Exactly-once effects: record the update (or file) that caused a change, in the change's transaction."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.services.errors import AlreadyDone
from bot.storage.models import InboxEntry


async def claim(session: AsyncSession, key: str, *, now: datetime) -> None:
    """Raise :class:`AlreadyDone` if ``key`` was processed; otherwise record it in this transaction.

    Write transactions hold the database's write lock (SQLite ``BEGIN IMMEDIATE``) or fail on the
    primary key (PostgreSQL), so two deliveries of one update cannot both pass.
    """
    if await session.scalar(select(InboxEntry.key).where(InboxEntry.key == key)) is not None:
        raise AlreadyDone()
    session.add(InboxEntry(key=key, at=now))
    await session.flush()


def update_key(update_id: int) -> str:
    return f"update:{update_id}"

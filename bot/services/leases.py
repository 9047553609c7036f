"""Exactly one process runs the sweeps: a lease row in the database, renewed by its holder.

Two processes started against one database both try to take the lease; the one that holds it
runs the sweeps, the other waits until the holder stops renewing (it crashed or was stopped) and
then takes over. Rows are also claimed inside the sweeps' own transactions, so even a lapse in
the lease cannot send anything twice.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import or_, update
from sqlalchemy.exc import IntegrityError

from bot.storage.db import Database
from bot.storage.models import SweepLease

SWEEPS = "sweeps"
TTL = timedelta(seconds=30)


async def acquire(database: Database, holder: str, *, now: datetime, name: str = SWEEPS, ttl: timedelta = TTL) -> bool:
    """Take or renew the lease for ``holder``; False while another holder's lease is still valid."""
    async with database.write() as session:
        result = await session.execute(
            update(SweepLease).where(SweepLease.name == name,
                                     or_(SweepLease.holder == holder, SweepLease.expires_at <= now))
            .values(holder=holder, expires_at=now + ttl))
        if result.rowcount:  # type: ignore[attr-defined]
            return True
        if await session.get(SweepLease, name) is not None:
            return False
    try:
        async with database.write() as session:
            session.add(SweepLease(name=name, holder=holder, expires_at=now + ttl))
        return True
    except IntegrityError:
        return False


async def release(database: Database, holder: str, *, name: str = SWEEPS) -> None:
    async with database.write() as session:
        lease = await session.get(SweepLease, name)
        if lease is not None and lease.holder == holder:
            await session.delete(lease)

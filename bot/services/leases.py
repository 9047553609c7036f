"""Which process runs the sweeps, and which processes are alive: two short leases renewed every second.

**The sweep lease.** Exactly one process runs the sweeps: it holds the ``sweeps`` row of
``sweep_leases`` for :data:`TTL` (3 s) and renews it every second (the ``heartbeat`` job in
``scheduler/jobs.py``, and every sweep run). Two processes started against one database both try to
take it; the other one waits until the holder stops renewing it. A holder killed with ``kill -9``
cannot release it, so the next process takes over at most :data:`TTL` after the last renewal (the
restarted or second process is sweeping again within about 4 s). A clean shutdown releases it at once.

**The instance heartbeat.** Every process (holder or not: handlers send alerts too) keeps a row in
``instances`` whose ``heartbeat_at`` it writes every second. An outbox claim is valid while its
owner's heartbeat is fresh (:data:`HEARTBEAT_TTL`, 5 s): the rows a dead process had claimed are
taken over by the others seconds after its death, while a live process keeps its claims however
long a send takes (a slow upload). See ``bot/services/outbox.py``.

Rows are also claimed inside the senders' own transactions, so even a lapse in the sweep lease
(two processes sweeping at once for a moment) cannot send anything twice.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy import delete, or_, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession

from bot.storage.db import Database
from bot.storage.models import Instance, SweepLease

log = logging.getLogger(__name__)

SWEEPS = "sweeps"
TTL = timedelta(seconds=3)
RENEW_EVERY = 1.0  # seconds between renewals: two can be missed before the lease lapses
HEARTBEAT_TTL = timedelta(seconds=5)
FORGET_AFTER = timedelta(days=1)  # instance rows of processes long gone are deleted


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


async def beat(session: AsyncSession, instance_id: str, *, now: datetime) -> None:
    """Write ``instance_id``'s heartbeat (insert or update) in the caller's transaction."""
    dialect = session.bind.dialect.name if session.bind is not None else ""
    values = {"id": instance_id, "started_at": now, "heartbeat_at": now}
    if dialect == "postgresql":
        pg = postgresql.insert(Instance).values(**values)
        await session.execute(pg.on_conflict_do_update(index_elements=[Instance.id],
                                                       set_={"heartbeat_at": pg.excluded.heartbeat_at}))
    elif dialect == "sqlite":
        lite = sqlite.insert(Instance).values(**values)
        await session.execute(lite.on_conflict_do_update(index_elements=[Instance.id],
                                                         set_={"heartbeat_at": lite.excluded.heartbeat_at}))
    else:  # pragma: no cover - only SQLite and PostgreSQL are supported
        row = await session.get(Instance, instance_id)
        if row is None:
            session.add(Instance(**values))
        else:
            row.heartbeat_at = now


async def heartbeat(database: Database, instance_id: str, *, now: datetime, take_lease: bool = True) -> bool:
    """One beat of a running process: its own heartbeat, then the sweep lease (taken or renewed), unless
    ``take_lease`` is false (a process that only answers updates: the sweeps are a worker's).

    Returns whether this process holds the sweep lease.
    """
    async with database.write() as session:
        await beat(session, instance_id, now=now)
        await session.execute(delete(Instance).where(Instance.heartbeat_at < now - FORGET_AFTER))
    return await acquire(database, instance_id, now=now) if take_lease else False


async def release(database: Database, holder: str, *, name: str = SWEEPS) -> None:
    """On a clean shutdown: give up the sweep lease and the heartbeat, so others take over at once.

    Never raises: a database that was never migrated (or is gone) is logged in one line.
    """
    try:
        async with database.write() as session:
            await session.execute(delete(SweepLease).where(SweepLease.name == name, SweepLease.holder == holder))
            await session.execute(delete(Instance).where(Instance.id == holder))
    except (SQLAlchemyError, OSError) as exc:
        log.warning("could not release the sweep lease of %s: %s", holder, str(exc).splitlines()[0] if str(exc)
                    else type(exc).__name__)

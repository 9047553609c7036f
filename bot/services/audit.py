"""The append-only audit log, hash-chained so that an edited or removed entry is found.

Each entry's hash covers its sequence number, time, actor, action, object, details and the hash of
the entry before it. :func:`verify` recomputes the chain and names the first entry that does not fit.
A transaction reads the chain's head once (under the chain lock) and links its own entries in memory.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import event, func, insert, select, text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session, SessionTransaction

from bot.storage.db import Database
from bot.storage.models import AuditEntry

GENESIS = "0" * 64
_PG_AUDIT_LOCK = 0x46_42_41_55  # "FBAU": serialises appends on PostgreSQL


def canonical_details(details: dict[str, Any] | None) -> str:
    return json.dumps(details or {}, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)


def entry_hash(
    *,
    seq: int,
    at: datetime,
    actor_id: int | None,
    action: str,
    object_type: str,
    object_id: str | None,
    details: str,
    prev_hash: str,
) -> str:
    body = json.dumps(
        [seq, at.astimezone(UTC).isoformat(timespec="microseconds"), actor_id, action, object_type,
         object_id, details, prev_hash],
        ensure_ascii=False,
        separators=(",", ":"),
    )
    return hashlib.sha256(body.encode("utf-8")).hexdigest()


_HEAD = "fieldbot_audit_head"  # session.info: (seq, hash) of the newest entry, this transaction included


@event.listens_for(Session, "after_transaction_end")
def _forget_head(session: Session, _transaction: SessionTransaction) -> None:
    """The in-memory chain head lives as long as the transaction (a savepoint included) that read it."""
    session.info.pop(_HEAD, None)


async def _head(session: AsyncSession) -> tuple[int, str]:
    """The chain's head for this transaction: read (under the chain lock) once, then kept in memory.

    SQLite write transactions already hold the database's write lock (``BEGIN IMMEDIATE``); on
    PostgreSQL a transaction-scoped advisory lock serialises appenders until commit or rollback.
    """
    head: tuple[int, str] | None = session.info.get(_HEAD)
    if head is not None:
        return head
    if session.bind is not None and session.bind.dialect.name == "postgresql":
        await session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_AUDIT_LOCK})
    last = (
        await session.execute(select(AuditEntry.seq, AuditEntry.hash).order_by(AuditEntry.seq.desc()).limit(1))
    ).first()
    return (int(last[0]), str(last[1])) if last else (0, GENESIS)


def _chained(head: tuple[int, str], *, action: str, object_type: str, object_id: object | None,
             actor_id: int | None, details: dict[str, Any] | None, at: datetime) -> dict[str, Any]:
    seq, prev = head[0] + 1, head[1]
    at = at.astimezone(UTC)
    oid = None if object_id is None else str(object_id)
    body = canonical_details(details)
    return {"seq": seq, "at": at, "actor_id": actor_id, "action": action, "object_type": object_type,
            "object_id": oid, "details": body, "prev_hash": prev,
            "hash": entry_hash(seq=seq, at=at, actor_id=actor_id, action=action, object_type=object_type,
                               object_id=oid, details=body, prev_hash=prev)}


async def record(
    session: AsyncSession,
    *,
    action: str,
    object_type: str,
    object_id: object | None = None,
    actor_id: int | None = None,
    details: dict[str, Any] | None = None,
    at: datetime,
) -> AuditEntry:
    """Append one entry in the caller's transaction.

    The head is read once per transaction and the chain continued in memory; the entry is written
    with the transaction's next flush (the inserts of one flush go out together).
    """
    values = _chained(await _head(session), action=action, object_type=object_type, object_id=object_id,
                      actor_id=actor_id, details=details, at=at)
    entry = AuditEntry(**values)
    session.add(entry)
    session.info[_HEAD] = (values["seq"], values["hash"])
    return entry


@dataclass(frozen=True)
class Pending:
    """One entry for :func:`record_many`."""

    action: str
    object_type: str
    object_id: object | None = None
    actor_id: int | None = None
    details: dict[str, Any] | None = None


async def record_many(session: AsyncSession, entries: Iterable[Pending], *, at: datetime) -> int:
    """Append many entries in the caller's transaction with one multi-row insert; returns how many."""
    head = await _head(session)
    rows = []
    for e in entries:
        values = _chained(head, action=e.action, object_type=e.object_type, object_id=e.object_id,
                          actor_id=e.actor_id, details=e.details, at=at)
        rows.append(values)
        head = (values["seq"], values["hash"])
    if rows:
        await session.execute(insert(AuditEntry), rows)
        session.info[_HEAD] = head
    return len(rows)


@dataclass(frozen=True)
class VerifyResult:
    ok: bool
    checked: int
    bad_seq: int | None = None
    problem: str | None = None  # "altered" | "removed"

    def describe(self) -> str:
        if self.ok:
            return f"audit log intact: {self.checked} entries"
        if self.problem == "removed":
            return f"audit log broken before entry #{self.bad_seq}: an earlier entry was removed or rewritten"
        return f"audit log broken: entry #{self.bad_seq} was altered"


async def verify(session: AsyncSession, *, batch: int = 5000) -> VerifyResult:
    """Walk the chain in order; stop at the first entry that was altered or follows a removed one."""
    prev_hash, expected_seq, checked, after = GENESIS, 1, 0, 0
    while True:
        rows = (
            await session.execute(
                select(AuditEntry).where(AuditEntry.seq > after).order_by(AuditEntry.seq).limit(batch)
            )
        ).scalars().all()
        if not rows:
            return VerifyResult(ok=True, checked=checked)
        for entry in rows:
            recomputed = entry_hash(
                seq=entry.seq, at=entry.at, actor_id=entry.actor_id, action=entry.action,
                object_type=entry.object_type, object_id=entry.object_id, details=entry.details,
                prev_hash=entry.prev_hash,
            )
            if recomputed != entry.hash:
                return VerifyResult(ok=False, checked=checked, bad_seq=entry.seq, problem="altered")
            if entry.seq != expected_seq or entry.prev_hash != prev_hash:
                return VerifyResult(ok=False, checked=checked, bad_seq=entry.seq, problem="removed")
            prev_hash, expected_seq, checked, after = entry.hash, entry.seq + 1, checked + 1, entry.seq
        session.expunge_all()


async def record_refusal(database: Database, *, actor_id: int | None, what: str, at: datetime,
                         subject: tuple[str, object] | None = None, details: dict[str, Any] | None = None) -> None:
    """Log a refused attempt in a transaction of its own (the refused work itself was rolled back)."""
    object_type, object_id = subject if subject is not None else ("action", what)
    async with database.write() as session:
        await record(session, action=f"refused.{what}", object_type=object_type, object_id=object_id,
                     actor_id=actor_id, details=details, at=at)


async def count_recent(session: AsyncSession, *, actions: tuple[str, ...], object_type: str, object_id: object,
                       since: datetime) -> int:
    """How many entries with one of ``actions`` about this object were written after ``since``."""
    count = await session.scalar(
        select(func.count()).select_from(AuditEntry).where(
            AuditEntry.action.in_(actions), AuditEntry.object_type == object_type,
            AuditEntry.object_id == str(object_id), AuditEntry.at > since.astimezone(UTC),
        )
    )
    return int(count or 0)

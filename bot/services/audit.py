"""The append-only audit log, chained and keyed so that an edited, forged or removed entry is found.

Each entry's hash is an HMAC-SHA-256, under the audit key (``bot/storage/keys.py``, a file outside
the database), of its sequence number, time, actor, action, object, details and the hash of the entry
before it. :func:`verify` recomputes the chain and names the first entry that does not fit, then
compares the head with the latest checkpoints (``audit_checkpoint.py``: a file beside the database,
written every minute, and every backup's manifest), so a tail cut off is named too.
A transaction reads the chain's head once (under the chain lock) and links its own entries in memory.

Entries written before the log was keyed (plain SHA-256) still verify, but only as a prefix: once a
keyed entry has been seen, an unkeyed one after it is reported as altered.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterable, Sequence
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


class AuditKeyMissing(RuntimeError):
    """The audit key was not loaded (:func:`use_key`) before the log was written or verified."""


_key: bytes | None = None


def use_key(key: bytes) -> None:
    """The key every entry of this process is keyed with (loaded from the keys folder at start-up)."""
    global _key
    _key = key


def current_key() -> bytes:
    if _key is None:
        raise AuditKeyMissing("the audit key is not loaded: call audit.use_key (Runtime and the CLI do)")
    return _key


def _body(seq: int, at: datetime, actor_id: int | None, action: str, object_type: str, object_id: str | None,
          details: str, prev_hash: str) -> bytes:
    return json.dumps(
        [seq, at.astimezone(UTC).isoformat(timespec="microseconds"), actor_id, action, object_type,
         object_id, details, prev_hash],
        ensure_ascii=False,
        separators=(",", ":"),
    ).encode("utf-8")


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
    key: bytes | None = None,
) -> str:
    """The entry's keyed hash: HMAC-SHA-256 under ``key`` (default: the process's audit key)."""
    body = _body(seq, at, actor_id, action, object_type, object_id, details, prev_hash)
    return hmac.new(key if key is not None else current_key(), body, hashlib.sha256).hexdigest()


def legacy_hash(*, seq: int, at: datetime, actor_id: int | None, action: str, object_type: str,
                object_id: str | None, details: str, prev_hash: str) -> str:
    """How entries were hashed before the log was keyed (plain SHA-256): verified only as a prefix."""
    return hashlib.sha256(_body(seq, at, actor_id, action, object_type, object_id, details, prev_hash)).hexdigest()


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
class Head:
    """The newest entry of the log at some moment: kept outside the database to catch a cut-off tail."""

    seq: int
    hash: str
    at: datetime | None = None
    source: str = ""  # where this head was kept (a checkpoint file, a backup's manifest)


@dataclass(frozen=True)
class VerifyResult:
    ok: bool
    checked: int
    bad_seq: int | None = None
    problem: str | None = None  # "altered" | "removed" | "missing" | "diverged"
    missing_to: int | None = None  # with "missing": entries bad_seq..missing_to are gone
    checkpoint: Head | None = None  # the checkpoint the tail was compared with
    legacy: int = 0  # entries written before the log was keyed

    def describe(self) -> str:
        cp = self.checkpoint
        parts = [cp.source, cp.at.isoformat(timespec="seconds") if cp.at else ""] if cp else []
        where = f" ({', '.join(p for p in parts if p)})" if any(parts) else ""
        if self.ok:
            against = f", head matches the checkpoint at #{cp.seq}{where}" if cp else ", no checkpoint to compare with"
            return f"audit log intact: {self.checked} entries{against}"
        if self.problem == "missing":
            span = (f"entry #{self.bad_seq} is" if self.bad_seq == self.missing_to
                    else f"entries #{self.bad_seq} to #{self.missing_to} are")
            return (f"audit log cut short: {span} missing; the checkpoint{where} recorded {cp.seq if cp else '?'} "
                    f"entries and the database has {self.checked}")
        if self.problem == "diverged":
            return (f"audit log rewritten: entry #{self.bad_seq} is not the one the checkpoint{where} recorded")
        if self.problem == "removed":
            return f"audit log broken before entry #{self.bad_seq}: an earlier entry was removed or rewritten"
        return f"audit log broken: entry #{self.bad_seq} was altered or forged (its keyed hash does not match)"


async def verify(session: AsyncSession, *, batch: int = 5000, checkpoints: Sequence[Head] = (),
                 key: bytes | None = None) -> VerifyResult:
    """Walk the chain in order; stop at the first entry that was altered, forged or follows a removed one.

    Then hold the head against the newest of ``checkpoints``: the entry it names must be there, with
    the hash it recorded; entries up to it that are gone are named.
    """
    key = key if key is not None else current_key()
    prev_hash, expected_seq, checked, after, legacy, keyed = GENESIS, 1, 0, 0, 0, False
    hashes: dict[int, str] = {}
    wanted = {cp.seq for cp in checkpoints}
    while True:
        rows = (
            await session.execute(
                select(AuditEntry).where(AuditEntry.seq > after).order_by(AuditEntry.seq).limit(batch)
            )
        ).scalars().all()
        if not rows:
            break
        for entry in rows:
            fields: dict[str, Any] = dict(
                seq=entry.seq, at=entry.at, actor_id=entry.actor_id, action=entry.action,
                object_type=entry.object_type, object_id=entry.object_id, details=entry.details,
                prev_hash=entry.prev_hash,
            )
            if hmac.compare_digest(entry_hash(**fields, key=key), entry.hash):
                keyed = True
            elif not keyed and legacy_hash(**fields) == entry.hash:
                legacy += 1
            else:
                return VerifyResult(ok=False, checked=checked, bad_seq=entry.seq, problem="altered", legacy=legacy)
            if entry.seq != expected_seq or entry.prev_hash != prev_hash:
                return VerifyResult(ok=False, checked=checked, bad_seq=entry.seq, problem="removed", legacy=legacy)
            if entry.seq in wanted:
                hashes[entry.seq] = entry.hash
            prev_hash, expected_seq, checked, after = entry.hash, entry.seq + 1, checked + 1, entry.seq
        session.expunge_all()
    newest = max(checkpoints, key=lambda cp: cp.seq, default=None)
    if newest is not None:
        if checked < newest.seq:
            return VerifyResult(ok=False, checked=checked, bad_seq=checked + 1, problem="missing",
                                missing_to=newest.seq, checkpoint=newest, legacy=legacy)
        if newest.seq > 0 and hashes.get(newest.seq) != newest.hash:
            return VerifyResult(ok=False, checked=checked, bad_seq=newest.seq, problem="diverged",
                                checkpoint=newest, legacy=legacy)
    return VerifyResult(ok=True, checked=checked, checkpoint=newest, legacy=legacy)


async def head(session: AsyncSession) -> Head:
    """The log's newest entry now (seq 0 and the genesis hash when it is empty)."""
    last = (await session.execute(select(AuditEntry.seq, AuditEntry.hash).order_by(AuditEntry.seq.desc()).limit(1))
            ).first()
    return Head(seq=int(last[0]), hash=str(last[1])) if last else Head(seq=0, hash=GENESIS)


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

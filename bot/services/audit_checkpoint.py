"""The audit log's head kept outside the database, so that a tail cut off or rewritten is caught.

Every minute (the ``checkpoint`` sweep) the head of the log (count and last keyed hash) is written to
``<data dir>/audit-checkpoint.json``, signed with the audit key; every backup's manifest carries the
head of its snapshot too (``backup.py``). ``fieldbot audit verify`` holds the log against the newest
(highest count) of all of them (:func:`known_heads`: the checkpoint file and every manifest in every
backup folder): entries that were there when a head was recorded and are gone now are named.

The checkpoint never moves backwards. Before it writes, the sweep holds the log against every known
head, the backups' included: if the newest one names an entry the log no longer holds, with the hash
it recorded, nothing lower is written. The sweep logs an error, tells the admins through the outbox
(once a day while it lasts) and, if the file is missing or older than that head, writes the head it
knows (so the cut stays recorded after the backup holding it is pruned). A deleted or an old
checkpoint file put back therefore hides nothing a backup recorded; the cut stays visible until an
approved restore writes a new checkpoint.

**After an approved restore** the heads recorded before it belong to the history the restore replaced
(an older backup restored while newer snapshots are still in the folders): they are no longer held
against the log. The restore writes the checkpoint with ``restored_at`` and every later write carries
it; if the file is lost, the sweep finds the restore's own ``system.restore`` entry in the log (only
one whose keyed hash verifies) and writes the mark again. Until it has, ``audit verify`` holds the log
against those older heads too and reports a cut: an error on the side of caution.

The sweep also sets the file's modification time to the moment it ran, written or not: ``fieldbot
status`` shows it as the sweep's last run.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.config import Settings
from bot.i18n import N_
from bot.runtime import Runtime
from bot.services import audit, backup_manifest
from bot.services.admin_alerts import tell_admins
from bot.storage.db import Database
from bot.storage.models import AuditEntry
from bot.storage.private import write_private

log = logging.getLogger(__name__)

FILE_NAME = "audit-checkpoint.json"
ALERT_KIND = "audit_alert"


class CheckpointError(Exception):
    """A checkpoint file that cannot be trusted: unreadable, or its signature does not match."""


@dataclass(frozen=True)
class Checkpoint:
    """What the checkpoint file holds: the head, and when an approved restore started its history."""

    head: audit.Head
    restored_at: datetime | None = None


def checkpoint_path(settings: Settings) -> Path:
    return settings.data_dir / FILE_NAME


def sign(fields: dict[str, Any], key: bytes) -> str:
    body = json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    return hmac.new(key, body, hashlib.sha256).hexdigest()


def head_fields(head: audit.Head) -> dict[str, Any]:
    return {"seq": head.seq, "hash": head.hash, "at": head.at.isoformat() if head.at else None}


def head_from(fields: dict[str, Any], *, source: str) -> audit.Head:
    at = fields.get("at")
    return audit.Head(seq=int(fields["seq"]), hash=str(fields["hash"]),
                      at=datetime.fromisoformat(at) if at else None, source=source)


def load(path: Path, *, key: bytes | None = None) -> Checkpoint | None:
    """The checkpoint in ``path`` (None if there is none); :class:`CheckpointError` if it was tampered with."""
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        mac = data.pop("mac")
        fields = {k: data[k] for k in ("seq", "hash", "at")}
        if "restored_at" in data:  # signed with the rest; files written before it existed have none
            fields["restored_at"] = data["restored_at"]
        head = head_from(fields, source=str(path))
        restored = datetime.fromisoformat(fields["restored_at"]) if fields.get("restored_at") else None
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise CheckpointError(f"{path} is not a checkpoint file") from exc
    if not hmac.compare_digest(str(mac), sign(fields, key if key is not None else audit.current_key())):
        raise CheckpointError(f"{path} was not written with this deployment's audit key (altered?)")
    return Checkpoint(head=head, restored_at=restored)


def read(path: Path, *, key: bytes | None = None) -> audit.Head | None:
    """The head of the checkpoint in ``path`` (None if there is none); :class:`CheckpointError` if tampered."""
    found = load(path, key=key)
    return found.head if found is not None else None


def write(path: Path, head: audit.Head, *, key: bytes | None = None, restored_at: datetime | None = None) -> None:
    """Write ``head`` to the checkpoint file. ``restored_at`` (an approved restore, carried by every later
    write) says the heads recorded before it belong to the history the restore replaced."""
    fields = head_fields(head)
    if restored_at is not None:
        fields["restored_at"] = restored_at.isoformat()
    fields["mac"] = sign(dict(fields), key if key is not None else audit.current_key())
    write_private(path, (json.dumps(fields, indent=1) + "\n").encode("utf-8"), sync=True)


def distrusted(settings: Settings) -> str | None:
    """Why the checkpoint file beside the database cannot be trusted (None: it is sound, or there is none).
    ``audit verify`` fails on it: a file edited without the key is a sign someone tried to hide a cut."""
    try:
        read(checkpoint_path(settings))
    except CheckpointError as exc:
        return str(exc)
    return None


# A manifest does not change once written; its head is kept by (path, mtime, size, key) so the minute
# sweep does not parse every snapshot's manifest (thousands of file entries each) every minute.
_manifest_heads: dict[tuple[str, int, int, bytes], audit.Head] = {}
_CACHE_LIMIT = 4096


def _manifest_head(snapshot: Path, key: bytes) -> audit.Head:
    stat = (snapshot / backup_manifest.MANIFEST).stat()
    cache_key = (str(snapshot), stat.st_mtime_ns, stat.st_size, hashlib.sha256(key).digest())
    head = _manifest_heads.get(cache_key)
    if head is None:
        head = backup_manifest.load(snapshot, key=key).audit_head
        if len(_manifest_heads) >= _CACHE_LIMIT:
            _manifest_heads.clear()
        _manifest_heads[cache_key] = head
    return head


def backup_heads(folders: Sequence[Path], *, since: datetime | None = None) -> list[audit.Head]:
    """The audit head of every snapshot's manifest in ``folders`` (those made before ``since``, an approved
    restore, are left out). A manifest that cannot be read or trusted is skipped with an error in the log."""
    key = audit.current_key()
    heads: list[audit.Head] = []
    for folder in folders:
        try:
            snapshots = backup_manifest.snapshot_folders(folder)
        except OSError as exc:  # a mount that is gone: its heads are not known this time
            log.error("backup folder %s not read for its audit heads: %s", folder, exc)
            continue
        for snapshot in snapshots:
            try:
                head = _manifest_head(snapshot, key)
            except (backup_manifest.ManifestError, OSError) as exc:
                log.error("backup manifest ignored: %s", exc)
                continue
            if since is not None and head.at is not None and head.at < since:
                continue
            heads.append(head)
    return heads


def _own(settings: Settings) -> Checkpoint | None:
    try:
        return load(checkpoint_path(settings))
    except CheckpointError as exc:
        log.error("audit checkpoint ignored: %s", exc)
        return None


def _heads(settings: Settings, own: Checkpoint | None, extra_dirs: tuple[Path, ...] = (), *,
           since: datetime | None = None) -> list[audit.Head]:
    marks = [m for m in (since, own.restored_at if own is not None else None) if m is not None]
    found = backup_heads((*settings.backup_dirs, *extra_dirs), since=max(marks) if marks else None)
    return [own.head, *found] if own is not None else found


def known_heads(settings: Settings, *, extra_dirs: tuple[Path, ...] = ()) -> list[audit.Head]:
    """Every trusted head to hold the log against: the checkpoint file beside the database (written every
    minute, and by an approved restore) and the manifest of every snapshot in every backup folder
    (``FIELDBOT_BACKUP_DIRS`` and ``extra_dirs``). :func:`audit.verify` takes the newest (highest count),
    so neither a deleted checkpoint file nor an old one put back hides a cut a backup recorded. A file
    that cannot be trusted is skipped with an error in the log."""
    return _heads(settings, _own(settings), extra_dirs)


def newest(heads: list[audit.Head]) -> audit.Head | None:
    return max(heads, key=lambda head: head.seq, default=None)


RESTORE_ACTION = "system.restore"  # the entry an approved restore writes (``backup.restore``)


async def last_restore(session: AsyncSession) -> datetime | None:
    """When the latest approved restore ran, from its entry in the log (one indexed read), if that entry's
    keyed hash verifies: an entry added without the audit key cannot retire the backups' heads."""
    entry = await session.scalar(select(AuditEntry).where(AuditEntry.action == RESTORE_ACTION)
                                 .order_by(AuditEntry.seq.desc()).limit(1))
    if entry is None:
        return None
    digest = audit.entry_hash(seq=entry.seq, at=entry.at, actor_id=entry.actor_id, action=entry.action,
                              object_type=entry.object_type, object_id=entry.object_id, details=entry.details,
                              prev_hash=entry.prev_hash)
    if not hmac.compare_digest(digest, entry.hash):
        log.error("audit entry #%s (%s) does not verify: not taken as a restore", entry.seq, RESTORE_ACTION)
        return None
    return entry.at


async def _tell_admins(database: Database, *, key: str, now: datetime, dedupe: str, **params: object) -> int:
    """An urgent message to every active admin through the outbox, once per ``dedupe`` key."""
    return await tell_admins(database, key=key, kind=ALERT_KIND, now=now, dedupe=dedupe, **params)


def _ran(path: Path, now: datetime) -> None:
    """Set the file's modification time to this run (``fieldbot status`` shows it)."""
    try:
        os.utime(path, (now.timestamp(), now.timestamp()))
    except OSError as exc:  # the file went meanwhile: the next run writes or reports it
        log.warning("audit checkpoint %s not touched: %s", path, exc)


async def sweep(runtime: Runtime) -> int:
    """Write the current head to the checkpoint file, unless the log lost what a known head recorded
    (the checkpoint file's or a backup's): then keep the newest known head, alert and write nothing lower.
    Returns 1 when it wrote the current head."""
    path, now = checkpoint_path(runtime.settings), runtime.clock.now()
    day = now.astimezone(runtime.tz).date().isoformat()
    try:
        previous = load(path)
    except CheckpointError as exc:
        log.error("audit checkpoint not updated: %s", exc)
        await _tell_admins(runtime.db, key=N_("audit.alert_untrusted"), now=now, dedupe=f"audit-untrusted:{day}",
                           reason=str(exc)[:300])
        return 0
    async with runtime.db.read() as session:
        # heads recorded before an approved restore belong to the history it replaced; the checkpoint file
        # says when (restored_at), and so does the restore's own entry if the file was lost since
        marks = [m for m in (previous.restored_at if previous is not None else None, await last_restore(session))
                 if m is not None]
    restored_at = max(marks) if marks else None
    known = newest(await asyncio.to_thread(_heads, runtime.settings, previous, since=restored_at))
    async with runtime.db.read() as session:
        head = await audit.head(session)
        kept = (await session.scalar(select(AuditEntry.hash).where(AuditEntry.seq == known.seq))
                if known is not None and 0 < known.seq <= head.seq else None)
    if known is not None and known.seq > 0 and (known.seq > head.seq or kept != known.hash):
        where = f"{known.source or 'a checkpoint'} ({known.at.isoformat(timespec='seconds') if known.at else '?'})"
        log.error("audit log no longer holds entry #%s as recorded by %s (the log has %s entries): checkpoint "
                  "not moved back; run 'fieldbot audit verify'", known.seq, where, head.seq)
        if previous is None or previous.head.seq < known.seq:  # missing or older: it records the known head
            write(path, audit.Head(seq=known.seq, hash=known.hash, at=known.at), restored_at=restored_at)
        _ran(path, now)
        if known.seq > head.seq:
            await _tell_admins(runtime.db, key=N_("audit.alert_cut"), now=now, dedupe=f"audit-cut:{day}:{known.seq}",
                               first=head.seq + 1, last=known.seq, source=where, have=head.seq)
        else:
            await _tell_admins(runtime.db, key=N_("audit.alert_diverged"), now=now,
                               dedupe=f"audit-diverged:{day}:{known.seq}", seq=known.seq, source=where)
        return 0
    if (previous is not None and (previous.head.seq, previous.head.hash) == (head.seq, head.hash)
            and previous.restored_at == restored_at):  # (a file of before a restore's mark was kept gets it)
        _ran(path, now)
        return 0
    write(path, audit.Head(seq=head.seq, hash=head.hash, at=now), restored_at=restored_at)
    _ran(path, now)
    return 1

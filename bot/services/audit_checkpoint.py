"""The audit log's head kept outside the database, so that a tail cut off or rewritten is caught.

Every minute (the ``checkpoint`` sweep) the head of the log (count and last keyed hash) is written to
``<data dir>/audit-checkpoint.json``, signed with the audit key; every backup's manifest carries the
head of its snapshot too (``backup.py``). ``fieldbot audit verify`` holds the log against the newest of
them (:func:`known_heads`): entries that were there when the checkpoint was written and are gone now
are named.

The checkpoint never moves backwards: if the entry it names is no longer in the log, with the hash it
recorded, the sweep leaves it as it is (and logs an error), so a cut-off tail stays visible until an
approved restore writes a new one (:func:`write` with ``force``).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select

from bot.config import Settings
from bot.runtime import Runtime
from bot.services import audit, backup_manifest
from bot.storage.models import AuditEntry
from bot.storage.private import write_private

log = logging.getLogger(__name__)

FILE_NAME = "audit-checkpoint.json"


class CheckpointError(Exception):
    """A checkpoint file that cannot be trusted: unreadable, or its signature does not match."""


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


def read(path: Path, *, key: bytes | None = None) -> audit.Head | None:
    """The checkpoint in ``path`` (None if there is none); :class:`CheckpointError` if it was tampered with."""
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        mac = data.pop("mac")
        fields = {k: data[k] for k in ("seq", "hash", "at")}
    except (ValueError, KeyError, TypeError) as exc:
        raise CheckpointError(f"{path} is not a checkpoint file") from exc
    if not hmac.compare_digest(str(mac), sign(fields, key if key is not None else audit.current_key())):
        raise CheckpointError(f"{path} was not written with this deployment's audit key (altered?)")
    return head_from(fields, source=str(path))


def write(path: Path, head: audit.Head, *, key: bytes | None = None) -> None:
    fields = head_fields(head)
    fields["mac"] = sign(head_fields(head), key if key is not None else audit.current_key())
    write_private(path, (json.dumps(fields, indent=1) + "\n").encode("utf-8"), sync=True)


def distrusted(settings: Settings) -> str | None:
    """Why the checkpoint file beside the database cannot be trusted (None: it is sound, or there is none).
    ``audit verify`` fails on it: a file edited without the key is a sign someone tried to hide a cut."""
    try:
        read(checkpoint_path(settings))
    except CheckpointError as exc:
        return str(exc)
    return None


def known_heads(settings: Settings, *, extra_dirs: tuple[Path, ...] = ()) -> list[audit.Head]:
    """The head to hold the log against: the checkpoint file beside the database (written every minute,
    and by an approved restore); without it, the newest manifest of each backup folder (a deleted
    checkpoint file is then caught up to the last backup). A file that cannot be trusted is skipped
    with an error in the log."""
    try:
        own = read(checkpoint_path(settings))
    except CheckpointError as exc:
        log.error("audit checkpoint ignored: %s", exc)
        own = None
    if own is not None:
        return [own]
    heads: list[audit.Head] = []
    for folder in (*settings.backup_dirs, *extra_dirs):
        try:
            newest = backup_manifest.newest(folder)
        except backup_manifest.ManifestError as exc:
            log.error("backup manifest ignored: %s", exc)
            continue
        if newest is not None:
            heads.append(newest.audit_head)
    return heads


async def sweep(runtime: Runtime) -> int:
    """Write the current head to the checkpoint file, unless the log lost what the last one recorded."""
    path = checkpoint_path(runtime.settings)
    async with runtime.db.read() as session:
        head = await audit.head(session)
        try:
            previous = read(path)
        except CheckpointError as exc:
            log.error("audit checkpoint not updated: %s", exc)
            return 0
        if previous is not None:
            if previous.seq == head.seq and previous.hash == head.hash:
                return 0
            kept = await session.scalar(select(AuditEntry.hash).where(AuditEntry.seq == previous.seq))
            if previous.seq > head.seq or (previous.seq > 0 and kept != previous.hash):
                log.error("audit log no longer holds entry #%s as checkpointed at %s: checkpoint kept; run "
                          "'fieldbot audit verify'", previous.seq, previous.at)
                return 0
    write(path, audit.Head(seq=head.seq, hash=head.hash, at=runtime.clock.now()))
    return 1

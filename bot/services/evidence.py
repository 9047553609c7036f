"""Photos and recordings sent during a visit: downloaded into the media store by SHA-256, never dropped.

The same file sent twice is stored once (by Telegram's ``file_unique_id`` and by content hash).
Forwarded media are refused. A file above the Bot API's download limit is recorded as missing
evidence with its file id, so it shows in the report and can be fetched later through a local Bot
API server, instead of vanishing.
"""

from __future__ import annotations

import logging
import mimetypes
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.i18n import N_
from bot.services import audit
from bot.services.actor import StaffView
from bot.services.errors import DomainError
from bot.services.visits import own_open_visit
from bot.storage.db import Database
from bot.storage.media import MediaCorrupt, MediaStore
from bot.storage.models import Evidence

log = logging.getLogger(__name__)

BOT_API_DOWNLOAD_LIMIT = 20 * 1024 * 1024


class Stored(StrEnum):
    STORED = "stored"
    DUPLICATE = "duplicate"
    TOO_BIG = "too_big"


@dataclass(frozen=True)
class Incoming:
    kind: str  # photo | voice | audio
    file_id: str
    file_unique_id: str
    size: int | None
    mime_type: str | None
    sent_at: datetime
    forwarded: bool


@dataclass(frozen=True)
class ForReview:
    """A visit's evidence as the reviewer gets it: the files read from the media store, and the rest."""

    readable: list[tuple[Evidence, bytes]] = field(default_factory=list)
    not_downloaded: list[Evidence] = field(default_factory=list)  # too big for the Bot API: never stored
    lost: list[Evidence] = field(default_factory=list)  # stored once, but gone from the media folder now


async def for_review(media: MediaStore, files: Sequence[Evidence]) -> ForReview:
    """Read each stored file; one that can no longer be read is listed as lost instead of stopping the rest."""
    result = ForReview()
    for item in files:
        if item.status != Stored.STORED.value or not item.path:
            result.not_downloaded.append(item)
            continue
        try:
            result.readable.append((item, await media.read(item.path)))
        except (OSError, MediaCorrupt) as exc:
            log.error("evidence %s of visit %s is missing from the media store (%s): %s", item.id, item.visit_id,
                      item.path, exc)
            result.lost.append(item)
    return result


def _suffix(kind: str, mime_type: str | None) -> str:
    if kind == "photo" and mime_type is None:
        return ".jpg"
    if kind == "voice" and mime_type is None:
        return ".ogg"
    guessed = mimetypes.guess_extension(mime_type or "") or ""
    return {".jpe": ".jpg", ".oga": ".ogg"}.get(guessed, guessed)


async def _known(session: AsyncSession, visit_id: int, file_unique_id: str, sha256: str | None = None) -> bool:
    clauses = [Evidence.file_unique_id == file_unique_id]
    if sha256 is not None:
        clauses = [Evidence.sha256 == sha256]
    found = await session.scalar(select(Evidence.id).where(Evidence.visit_id == visit_id, *clauses))
    return found is not None


async def add(database: Database, media: MediaStore, collector: StaffView, visit_id: int, item: Incoming, *,
              download: Callable[[], Awaitable[bytes]], now: datetime, local_mode: bool = False) -> Stored:
    """Store one file for the collector's open visit. ``download`` fetches its bytes (from Telegram)."""
    if item.forwarded:
        raise DomainError(N_("evidence.error.forwarded"))
    async with database.read() as session:
        await own_open_visit(session, collector, visit_id)
        if await _known(session, visit_id, item.file_unique_id):
            return Stored.DUPLICATE
    too_big = (item.size or 0) > BOT_API_DOWNLOAD_LIMIT and not local_mode
    blob = None
    if not too_big:
        data = await download()
        blob = await media.put(data, kind="evidence", suffix=_suffix(item.kind, item.mime_type))
    async with database.write() as session:
        await own_open_visit(session, collector, visit_id)
        if await _known(session, visit_id, item.file_unique_id) or (
                blob is not None and await _known(session, visit_id, item.file_unique_id, blob.sha256)):
            return Stored.DUPLICATE
        status = Stored.TOO_BIG if too_big else Stored.STORED
        row = Evidence(visit_id=visit_id, kind=item.kind, status=status.value,
                       sha256=blob.sha256 if blob else None, path=blob.path if blob else None,
                       size=blob.size if blob else item.size, mime_type=item.mime_type, file_id=item.file_id,
                       file_unique_id=item.file_unique_id, sender_id=collector.id, sent_at=item.sent_at,
                       stored_at=now)
        session.add(row)
        await session.flush()
        await audit.record(session, action="evidence.missing" if too_big else "evidence.stored",
                           object_type="visit", object_id=visit_id, actor_id=collector.id, at=now,
                           details={"kind": item.kind, "sha256": row.sha256, "size": row.size,
                                    "file_unique_id": item.file_unique_id})
    return Stored.TOO_BIG if too_big else Stored.STORED

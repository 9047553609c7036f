"""Backups and restores: the SOP's two copies of everything (branch and head office) and the way back.

**Backup** (:func:`make_backup`, ``fieldbot backup``, and the daily ``backup`` sweep):

1. An online, consistent snapshot of the database while the bot keeps working: SQLite's backup API
   (one read transaction: the copy is the database as of one instant, whatever is written meanwhile),
   or ``pg_dump`` on PostgreSQL, run inside a repeatable-read transaction that exported its snapshot,
   so the dump, the row counts and the list of files all describe the same instant.
2. Every media file not yet in the folder (photos, recordings, the sealed bank files, reports):
   the store is content-addressed, so a file already there is not copied again (incremental). Each
   copy is hashed as it lands, and a copy already there is hashed again at every backup: a damaged one
   (same size or not) is copied again, logged, and the admins are told (:func:`_copy_media`). With the
   media in an object store (``FIELDBOT_MEDIA_URL=s3://...``) the files are listed and read through it,
   each checked against its name (:func:`_copy_from_store`).
3. A manifest (``backup_manifest.py``): SHA-256 of every file, the row counts and the audit head,
   signed with the audit key. It goes last: a snapshot folder without a manifest is not a backup.

This goes to each folder of ``FIELDBOT_BACKUP_DIRS`` (e.g. a branch disk and a head-office mount).
Each run is a ``backups`` row (running, ok or failed) and an audit entry. The keys folder is not
copied (``keys.py``).

**Restore** (:func:`restore`, ``fieldbot restore``): checks the manifest's signature and every file's
hash and refuses a damaged backup naming the files; restores only into an empty database and media
folder unless ``confirm`` repeats the backup's id (the SOP: restoring needs head office's approval,
and the audit entry it writes names who ran it and the approval); then checks the row counts against
the manifest and the audit log against the manifest's head. With the media in an object store, the
files are uploaded to it (each read back and checked); its objects are content-addressed, so a restore
over a store that holds files only adds the backup's files and repairs damaged ones.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import secrets
import shutil
import sqlite3
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import func, select, table
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from bot.config import Settings
from bot.i18n import N_
from bot.runtime import Runtime
from bot.services import audit, audit_checkpoint
from bot.services.admin_alerts import tell_admins
from bot.services.backup_manifest import (
    FileEntry,
    Manifest,
    ManifestError,
    load,
    media_root,
    resolve,
    snapshot_folders,
)
from bot.storage import keys
from bot.storage.blobs import LocalBackend, MediaError, content_hash
from bot.storage.db import Database
from bot.storage.media import SEALED, MediaStore, sha256_file
from bot.storage.models import Backup
from bot.storage.private import copy_private, private_dir, write_private

log = logging.getLogger(__name__)

SQLITE_FILE = "database.sqlite3"
PG_FILE = "database.pgdump"
DAILY = timedelta(hours=23)  # a backup older than this is due (the daily sweep)
RETRY_AFTER = timedelta(hours=1)  # after a failed run
STALE = timedelta(hours=6)  # a staging copy or manifest-less snapshot this old was left by a crashed run
MISSING_AFTER = timedelta(hours=26)  # no good backup for this long: the admins are told


class BackupError(Exception):
    """The backup could not be made; the message says why."""


class RestoreRefused(Exception):
    """The restore was refused before anything was written; ``problems`` names what is wrong."""

    def __init__(self, reason: str, problems: Sequence[str] = ()) -> None:
        super().__init__(reason if not problems else f"{reason}: {'; '.join(problems)}")
        self.reason = reason
        self.problems = list(problems)


@dataclass
class BackupResult:
    backup_id: str
    folders: list[Path]
    manifest: Manifest
    copied: int = 0  # media files copied this time, counted once per folder
    bytes_copied: int = 0
    repaired: list[str] = field(default_factory=list)  # damaged copies found in a folder and copied again
    pruned: Pruned | None = None


@dataclass
class Snapshot:
    """What a database snapshot holds, read from the snapshot itself."""

    counts: dict[str, int]
    head: audit.Head
    referenced: list[str] = field(default_factory=list)  # media paths rows point at


def new_backup_id(now: datetime) -> str:
    return f"{now.astimezone(UTC).strftime('%Y%m%dT%H%M%SZ')}-{secrets.token_hex(3)}"


def _tables(names: Sequence[str]) -> list[str]:
    return sorted(n for n in names if not n.startswith("sqlite_") and n != "alembic_version")


# -- the database snapshot ---------------------------------------------------------------------------------

def _sqlite_path(url: str) -> Path:
    database = make_url(url).database
    if not database or database == ":memory:":
        raise BackupError(f"cannot back up the SQLite database {url!r}: it is not a file")
    return Path(database).expanduser()


def _read_sqlite_snapshot(path: Path) -> Snapshot:
    con = sqlite3.connect(path)
    try:
        names = [r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        counts = {t: int(con.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0]) for t in _tables(names)}
        last = con.execute("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1").fetchone()
        referenced = [r[0] for r in con.execute("SELECT path FROM evidence WHERE path IS NOT NULL "
                                                "UNION SELECT stored_path FROM imports")]
    finally:
        con.close()
    head = audit.Head(seq=int(last[0]), hash=str(last[1])) if last else audit.Head(seq=0, hash=audit.GENESIS)
    return Snapshot(counts=counts, head=head, referenced=referenced)


def _sqlite_snapshot(source: Path, target: Path) -> Snapshot:
    """Copy the live database with SQLite's backup API (one step: one consistent read) into ``target``."""
    private_dir(target.parent)
    src = sqlite3.connect(source, timeout=30)
    dst = sqlite3.connect(target)
    try:
        src.backup(dst)
        dst.execute("PRAGMA journal_mode=DELETE")  # a single self-contained file
    finally:
        dst.close()
        src.close()
    os.chmod(target, 0o600)
    return _read_sqlite_snapshot(target)


def libpq_url(url: str) -> str:
    """The SQLAlchemy URL as pg_dump / pg_restore / asyncpg take it."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


async def _run(*argv: str) -> None:
    proc = await asyncio.create_subprocess_exec(*argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    _, err = await proc.communicate()
    if proc.returncode != 0:
        first = err.decode("utf-8", "replace").strip().splitlines()
        raise BackupError(f"{argv[0]} failed ({proc.returncode}): {first[0] if first else 'no message'}")


async def _pg_snapshot(url: str, target: Path) -> Snapshot:
    """pg_dump of the snapshot a repeatable-read transaction exported; counts and files from the same one."""
    import asyncpg  # type: ignore[import-untyped]

    if shutil.which("pg_dump") is None:
        raise BackupError("pg_dump is not installed (Debian/Ubuntu: apt-get install postgresql-client)")
    private_dir(target.parent)
    conn = await asyncpg.connect(libpq_url(url))
    try:
        async with conn.transaction(isolation="repeatable_read", readonly=True):
            snapshot_id = await conn.fetchval("SELECT pg_export_snapshot()")
            await _run("pg_dump", "--format=custom", "--no-owner", "--no-privileges", f"--snapshot={snapshot_id}",
                       f"--file={target}", f"--dbname={libpq_url(url)}")
            names = [r[0] for r in await conn.fetch(
                "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")]
            counts = {t: int(await conn.fetchval(f'SELECT count(*) FROM "{t}"')) for t in _tables(names)}
            last = await conn.fetchrow("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1")
            referenced = [r[0] for r in await conn.fetch("SELECT path FROM evidence WHERE path IS NOT NULL "
                                                         "UNION SELECT stored_path FROM imports")]
    finally:
        await conn.close()
    os.chmod(target, 0o600)
    head = audit.Head(seq=int(last[0]), hash=str(last[1])) if last else audit.Head(seq=0, hash=audit.GENESIS)
    return Snapshot(counts=counts, head=head, referenced=referenced)


# -- media ------------------------------------------------------------------------------------------------

def _media_files(data_dir: Path, referenced: Sequence[str]) -> list[Path]:
    """Every file of the media store (relative to the data dir); a file a row points at must be there."""
    root = data_dir / "media"
    found = sorted(p.relative_to(data_dir) for p in root.rglob("*")
                   if p.is_file() and not p.name.startswith(".incoming-")) if root.is_dir() else []
    have = {p.as_posix() for p in found}
    missing = sorted(set(referenced) - have)
    if missing:
        raise BackupError(f"{len(missing)} file(s) the database points at are not in the media store, "
                          f"e.g. {missing[0]}")
    return found


def _content_hash(relative: Path, data_dir: Path) -> str:
    """A content-addressed file's SHA-256 is its name (plain files); a sealed or other file is hashed."""
    name = relative.name
    if _is_content_addressed(name) and not name.endswith(".sealed"):
        return name[:64]
    return sha256_file(data_dir / relative)


@dataclass
class Copied:
    """What :func:`_copy_media` did in one folder."""

    entries: list[FileEntry] = field(default_factory=list)
    copied: int = 0
    bytes_copied: int = 0
    repaired: list[str] = field(default_factory=list)  # copies found damaged and copied again (their paths)


def _copy_media(data_dir: Path, files: Sequence[Path], folder: Path) -> Copied:
    """Copy to ``folder`` every file not yet there, and every copy there that is damaged.

    A copy already in the folder is hashed every time, not trusted for its size: a same-size change (bit
    rot, a bad sector, an overwrite) would otherwise stay, and every later backup would say ok and not
    restore. The cost: each backup reads every media copy of each folder once (the media store's size,
    per folder, per day); only new or damaged files are written. A damaged copy is replaced, logged, and
    counted in :attr:`BackupResult.repaired`, the audit entry and a notice to the admins."""
    done = Copied()
    for relative in files:
        source = data_dir / relative
        digest = _content_hash(relative, data_dir)
        size = source.stat().st_size
        entry = FileEntry(path=relative.as_posix(), sha256=digest, size=size)
        target = entry.in_folder(folder)
        present = target.exists()
        if present and target.stat().st_size == size and sha256_file(target) == digest:
            done.entries.append(entry)
            continue
        if present:
            log.warning("backup folder %s: the copy of %s was damaged (its SHA-256 or size does not match); "
                        "copied again", folder, relative)
            done.repaired.append(str(target))
        copy_private(source, target)
        if sha256_file(target) != digest:
            target.unlink(missing_ok=True)
            raise BackupError(f"{relative}: its copy in {folder} does not match its SHA-256 (changed on disk?)")
        done.copied += 1
        done.bytes_copied += size
        done.entries.append(entry)
    return done


async def _store_files(media: MediaStore, referenced: Sequence[str]) -> list[str]:
    """Every key of an object store's media; a file a row points at must be there."""
    found = await media.keys("media/")
    missing = sorted(set(referenced) - set(found))
    if missing:
        raise BackupError(f"{len(missing)} file(s) the database points at are not in the media store "
                          f"{media.url}, e.g. {missing[0]}")
    return found


def _copy_matches(target: Path, digest: str) -> int | None:
    """The size of the copy in a backup folder when it has ``digest``; None when it is missing or damaged."""
    if target.exists() and sha256_file(target) == digest:
        return target.stat().st_size
    return None


async def _copy_from_store(media: MediaStore, files: Sequence[str], folder: Path) -> Copied:
    """:func:`_copy_media` for an object store: each file is read through the store (checked against its
    name) unless the folder's copy already has the SHA-256 its name says; a sealed file, whose name is the
    hash of its plain bytes, is read every time, as it is hashed every time from the local folder."""
    done = Copied()
    for key in files:
        entry_path = Path(key).relative_to("media")
        target = folder / entry_path
        digest = content_hash(key)
        if digest is not None and (size := await asyncio.to_thread(_copy_matches, target, digest)) is not None:
            done.entries.append(FileEntry(path=key, sha256=digest, size=size))
            continue
        try:
            data = await media.stored(key)
        except MediaError as exc:
            raise BackupError(f"the media store {media.url} refused {exc}") from exc
        digest = digest or hashlib.sha256(data).hexdigest()
        entry = FileEntry(path=key, sha256=digest, size=len(data))
        present = target.exists()
        if present and await asyncio.to_thread(_copy_matches, target, digest) is not None:
            done.entries.append(entry)
            continue
        if present:
            log.warning("backup folder %s: the copy of %s was damaged (its SHA-256 or size does not match); "
                        "copied again", folder, key)
            done.repaired.append(str(target))
        await asyncio.to_thread(write_private, target, data)
        if await asyncio.to_thread(_copy_matches, target, digest) is None:
            target.unlink(missing_ok=True)
            raise BackupError(f"{key}: its copy in {folder} does not match its SHA-256")
        done.copied += 1
        done.bytes_copied += len(data)
        done.entries.append(entry)
    return done


# -- pruning ----------------------------------------------------------------------------------------------

@dataclass
class Pruned:
    snapshots: list[str] = field(default_factory=list)
    files: int = 0


def _is_content_addressed(name: str) -> bool:
    stem = name.split(".", 1)[0]
    return len(stem) == 64 and all(c in "0123456789abcdef" for c in stem)


def _older_than(path: Path, age: timedelta) -> bool:
    return time.time() - path.stat().st_mtime > age.total_seconds()


def clear_leftovers(data_dir: Path, folders: Sequence[Path]) -> int:
    """What a run killed half-way left: its staging copy in the data dir and its snapshot folder without a
    manifest (not a backup: restore and prune never read it). Only leftovers older than :data:`STALE`,
    so a run going on in another process is left alone."""
    removed = 0
    leftovers = list(data_dir.glob(".backup-*"))
    for folder in folders:
        root = folder / "snapshots"
        if root.is_dir():
            leftovers += [p for p in root.iterdir() if p.is_dir() and not (p / "manifest.json").exists()]
    for path in leftovers:
        if path.is_dir() and _older_than(path, STALE):
            shutil.rmtree(path, ignore_errors=True)
            removed += 1
    return removed


def prune(folder: Path, *, keep_days: int, now: datetime, written_before: float) -> Pruned:
    """Remove the snapshots older than ``keep_days`` (never the newest) and the media files no kept snapshot
    lists. A media file written after ``written_before`` (a Unix time: the start of the backup that just
    finished) is left alone: it may be a bank file's copy made since. If any kept manifest cannot be
    read, no media is removed."""
    result = Pruned()
    folders = snapshot_folders(folder)
    limit = now - timedelta(days=keep_days)
    kept: list[Manifest] = []
    for index, snapshot in enumerate(folders):
        try:
            manifest = load(snapshot)
        except ManifestError as exc:
            log.error("backup folder %s: %s; nothing is pruned from its media", folder, exc)
            return result
        if index < len(folders) - 1 and manifest.created_at < limit:
            shutil.rmtree(snapshot)
            result.snapshots.append(manifest.backup_id)
        else:
            kept.append(manifest)
    listed = {Path(entry.path).relative_to("media") for manifest in kept for entry in manifest.files}
    for path in folder.rglob("*"):
        relative = path.relative_to(folder)
        if (not path.is_file() or relative.parts[0] == "snapshots" or not _is_content_addressed(path.name)
                or relative in listed or path.stat().st_mtime >= written_before):
            continue
        path.unlink()
        result.files += 1
    return result


# -- backup -----------------------------------------------------------------------------------------------

async def make_backup(database: Database, settings: Settings, *, now: datetime,
                      folders: Sequence[Path] | None = None, actor: str | None = None) -> BackupResult:
    """Snapshot the database and copy the media and a manifest to every backup folder."""
    folders = [f.absolute() for f in (folders if folders is not None else settings.backup_dirs)]
    if not folders:
        raise BackupError("no backup folder: set FIELDBOT_BACKUP_DIRS (branch and head office) or pass --to")
    backup_id = new_backup_id(now)
    await asyncio.to_thread(clear_leftovers, settings.data_dir, folders)
    async with database.write() as session:
        row = Backup(backup_id=backup_id, started_at=now, status="running", targets=[str(f) for f in folders],
                     files=0, bytes_copied=0)
        session.add(row)
        await session.flush()
        row_id = row.id
    staging = private_dir(settings.data_dir / f".backup-{backup_id}")
    started = time.time()
    pruned = Pruned()
    media = MediaStore.from_settings(settings)
    try:
        if database.sqlite:
            db_file = staging / SQLITE_FILE
            snap = await asyncio.to_thread(_sqlite_snapshot, _sqlite_path(database.url), db_file)
        else:
            db_file = staging / PG_FILE
            snap = await _pg_snapshot(database.url, db_file)
        local = isinstance(media.backend, LocalBackend)
        files: Sequence[Path | str] = (await asyncio.to_thread(_media_files, settings.data_dir, snap.referenced)
                                       if local else await _store_files(media, snap.referenced))
        manifest = Manifest(
            backup_id=backup_id, created_at=now, database_kind="sqlite" if database.sqlite else "postgresql",
            database_file=db_file.name, database_sha256=await asyncio.to_thread(sha256_file, db_file),
            database_size=db_file.stat().st_size, counts=snap.counts,
            audit_head=audit.Head(seq=snap.head.seq, hash=snap.head.hash, at=now, source=f"backup {backup_id}"))
        result = BackupResult(backup_id=backup_id, folders=folders, manifest=manifest)
        for folder in folders:
            done_in = (await asyncio.to_thread(_copy_media, settings.data_dir, [Path(f) for f in files], folder)
                       if local else await _copy_from_store(media, [str(f) for f in files], folder))
            manifest.files = done_in.entries
            result.copied += done_in.copied
            result.bytes_copied += done_in.bytes_copied
            result.repaired += done_in.repaired
            target = folder / "snapshots" / backup_id
            await asyncio.to_thread(copy_private, db_file, target / db_file.name)
            if await asyncio.to_thread(sha256_file, target / db_file.name) != manifest.database_sha256:
                raise BackupError(f"the database copy in {target} does not match its SHA-256")
            write_private(target / "manifest.json", manifest.dumps())
            manifest.folder = target
        for folder in folders:
            done_here = await asyncio.to_thread(prune, folder, keep_days=settings.backup_keep_days, now=now,
                                                written_before=started)
            pruned.snapshots += done_here.snapshots
            pruned.files += done_here.files
    except (BackupError, OSError, sqlite3.Error) as exc:
        reason = str(exc) if isinstance(exc, BackupError) else f"{type(exc).__name__}: {exc}"
        log.error("backup %s failed: %s", backup_id, reason)
        async with database.write() as session:
            failed = await session.get(Backup, row_id)
            assert failed is not None
            failed.status, failed.finished_at, failed.error = "failed", now, reason[:2000]
            await audit.record(session, action="backup.failed", object_type="backup", object_id=backup_id,
                               details={"reason": reason[:500], "by": actor}, at=now)
        raise BackupError(reason) from exc
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        await media.close()
    result.pruned = pruned
    finished = now
    async with database.write() as session:
        done = await session.get(Backup, row_id)
        assert done is not None
        done.status, done.finished_at = "ok", finished
        done.manifest_sha256 = sha256_file(folders[0] / "snapshots" / backup_id / "manifest.json")
        done.audit_seq, done.files, done.bytes_copied = snap.head.seq, len(files), result.bytes_copied
        await audit.record(session, action="backup.made", object_type="backup", object_id=backup_id,
                           details={"folders": [str(f) for f in folders], "files": len(files),
                                    "copied": result.copied, "audit_seq": snap.head.seq, "by": actor,
                                    "repaired": result.repaired,
                                    "pruned_snapshots": pruned.snapshots, "pruned_files": pruned.files}, at=now)
    if result.repaired:
        await _tell_admins(database, key=N_("backup.alert_repaired"), what="backup_alert", now=now,
                           dedupe=f"backup-repaired:{backup_id}", count=len(result.repaired),
                           example=result.repaired[0])
    return result


async def last_backups(database: Database) -> tuple[Backup | None, Backup | None]:
    """The newest successful backup and the newest run of any outcome."""
    async with database.read() as session:
        ok = await session.scalar(select(Backup).where(Backup.status == "ok").order_by(Backup.finished_at.desc())
                                  .limit(1))
        last = await session.scalar(select(Backup).order_by(Backup.started_at.desc()).limit(1))
    return ok, last


async def _tell_admins(database: Database, *, key: str, what: str, now: datetime, dedupe: str, **params: object) -> int:
    return await tell_admins(database, key=key, kind=what, now=now, dedupe=dedupe, **params)


async def daily_sweep(runtime: Runtime) -> int:
    """Back up once a day; tell the admins when a run fails, when there are no backup folders, and when
    there has been no good backup for more than a day. Returns 1 when it made a backup."""
    now, settings = runtime.clock.now(), runtime.settings
    day = now.astimezone(runtime.tz).date().isoformat()
    if not settings.backup_dirs:
        await _tell_admins(runtime.db, key="backup.alert_no_folders", what="backup_alert", now=now,
                           dedupe=f"backup-no-folders:{day}")
        return 0
    ok, last = await last_backups(runtime.db)
    if ok is not None and ok.finished_at is not None and now - ok.finished_at < DAILY:
        return 0
    if last is not None and last.status != "ok" and now - last.started_at < RETRY_AFTER:
        return 0
    try:
        await make_backup(runtime.db, settings, now=now, actor="daily sweep")
    except BackupError as exc:
        await _tell_admins(runtime.db, key="backup.alert_failed", what="backup_alert", now=now,
                           dedupe=f"backup-failed:{day}", reason=str(exc)[:300])
        if ok is None or ok.finished_at is None or now - ok.finished_at > MISSING_AFTER:
            since = ok.finished_at.astimezone(runtime.tz).strftime("%Y-%m-%d %H:%M") if ok and ok.finished_at else "—"
            await _tell_admins(runtime.db, key="backup.alert_missing", what="backup_alert", now=now,
                               dedupe=f"backup-missing:{day}", since=since)
        return 0
    return 1


# -- restore ----------------------------------------------------------------------------------------------

@dataclass
class RestoreResult:
    manifest: Manifest
    verify: audit.VerifyResult
    counts: dict[str, int]
    files: int
    kept_aside: list[str] = field(default_factory=list)  # what an overwritten target held, moved or copied aside


def check_backup(manifest: Manifest) -> list[str]:
    """Every file the manifest lists, hashed: the problems found (empty when the backup is whole)."""
    assert manifest.folder is not None
    problems = []
    db_file = manifest.folder / manifest.database_file
    if not db_file.exists():
        problems.append(f"{db_file}: missing")
    elif sha256_file(db_file) != manifest.database_sha256:
        problems.append(f"{db_file}: changed (its SHA-256 does not match the manifest)")
    root = media_root(manifest)
    for entry in manifest.files:
        path = entry.in_folder(root)
        if not path.exists():
            problems.append(f"{path}: missing")
        elif sha256_file(path) != entry.sha256:
            problems.append(f"{path}: changed (its SHA-256 does not match the manifest)")
    return problems


async def _target_rows(url: str) -> int:
    """How many rows the target database holds in all (0 for a missing or empty one)."""
    if make_url(url).get_backend_name() == "sqlite":
        path = _sqlite_path(url)
        if not path.exists() or path.stat().st_size == 0:
            return 0
        con = sqlite3.connect(path)
        try:
            names = [r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
            return sum(int(con.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0]) for t in _tables(names))
        finally:
            con.close()
    import asyncpg

    conn = await asyncpg.connect(libpq_url(url))
    try:
        names = [r[0] for r in await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")]
        total = 0
        for name in _tables(names):
            total += int(await conn.fetchval(f'SELECT count(*) FROM "{name}"'))
        return total
    finally:
        await conn.close()


def _media_present(data_dir: Path) -> bool:
    root = data_dir / "media"
    return root.is_dir() and any(p.is_file() for p in root.rglob("*"))


RUNNING_WITHIN = timedelta(minutes=2)  # a heartbeat this fresh in the target: a bot is running on it


async def _target_heartbeat(url: str) -> datetime | None:
    """The newest heartbeat of a bot process in the target database (None: no table, no process)."""
    if make_url(url).get_backend_name() == "sqlite":
        path = _sqlite_path(url)
        if not path.exists() or path.stat().st_size == 0:
            return None
        con = sqlite3.connect(path)
        try:
            if not con.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'instances'").fetchone():
                return None
            value = con.execute("SELECT max(heartbeat_at) FROM instances").fetchone()[0]
        finally:
            con.close()
        return datetime.fromisoformat(value).replace(tzinfo=UTC) if value else None
    import asyncpg

    conn = await asyncpg.connect(libpq_url(url))
    try:
        if not await conn.fetchval("SELECT to_regclass('instances') IS NOT NULL"):
            return None
        moment = await conn.fetchval("SELECT max(heartbeat_at) FROM instances")
    finally:
        await conn.close()
    return moment if isinstance(moment, datetime) else None


async def _keep_aside(url: str, data_dir: Path, aside: Path) -> list[str]:
    """Before an approved restore overwrites a target that holds data, copy its database and move its media
    to ``aside``: a restore confirmed by mistake loses nothing."""
    kept = []
    private_dir(aside)
    if make_url(url).get_backend_name() == "sqlite":
        path = _sqlite_path(url)
        if path.exists() and path.stat().st_size:
            await asyncio.to_thread(_sqlite_snapshot, path, aside / SQLITE_FILE)
            kept.append(str(aside / SQLITE_FILE))
    elif await _target_rows(url):
        if shutil.which("pg_dump") is None:
            raise RestoreRefused("pg_dump is not installed: the database to be overwritten cannot be kept aside")
        await _run("pg_dump", "--format=custom", "--no-owner", "--no-privileges", f"--file={aside / PG_FILE}",
                   f"--dbname={libpq_url(url)}")
        kept.append(str(aside / PG_FILE))
    media = data_dir / "media"
    if media.is_dir():
        os.replace(media, aside / "media")
        kept.append(str(aside / "media"))
    return kept


def _restore_sqlite(source: Path, url: str) -> None:
    target = _sqlite_path(url)
    private_dir(target.parent)
    tmp = target.with_name(f".restore-{target.name}")
    copy_private(source, tmp)
    for suffix in ("-wal", "-shm", "-journal"):
        Path(f"{target}{suffix}").unlink(missing_ok=True)
    os.replace(tmp, target)


async def _restore_pg(source: Path, url: str) -> None:
    """pg_restore into the target's schema, emptied first when it holds anything: rows the restore was
    confirmed for, or the empty tables of a bot started once before the restore."""
    import asyncpg

    if shutil.which("pg_restore") is None:
        raise RestoreRefused("pg_restore is not installed (Debian/Ubuntu: apt-get install postgresql-client)")
    conn = await asyncpg.connect(libpq_url(url))
    try:
        schema = await conn.fetchval("SELECT current_schema()")
        used = await conn.fetchval(
            "SELECT EXISTS (SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = $1) OR EXISTS (SELECT 1 FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace "
            "WHERE n.nspname = $1 AND t.typtype IN ('e', 'd'))", schema)
        if used:
            await conn.execute(f'DROP SCHEMA "{schema}" CASCADE; CREATE SCHEMA "{schema}"')
    finally:
        await conn.close()
    await _run("pg_restore", "--no-owner", "--no-privileges", "--exit-on-error", f"--dbname={libpq_url(url)}",
               str(source))


async def _restore_to_store(manifest: Manifest, media: MediaStore) -> int:
    root = media_root(manifest)
    for entry in manifest.files:
        data = await asyncio.to_thread(entry.in_folder(root).read_bytes)
        if hashlib.sha256(data).hexdigest() != entry.sha256:
            raise RestoreRefused("a backup file does not match the manifest", [str(entry.in_folder(root))])
        try:
            await media.backend.put(entry.path, data)
            await media.backend.get(entry.path, sha256=entry.sha256)
        except MediaError as exc:
            raise RestoreRefused(f"the media store {media.url} did not take a file", [str(exc)]) from exc
    return len(manifest.files)


def _restore_media(manifest: Manifest, data_dir: Path) -> int:
    root = media_root(manifest)
    for entry in manifest.files:
        target = data_dir / entry.path
        copy_private(entry.in_folder(root), target)
        if sha256_file(target) != entry.sha256:
            raise RestoreRefused("a restored file does not match the manifest", [str(target)])
    return len(manifest.files)


async def restore(settings: Settings, *, source: Path, target_url: str | None = None,
                  data_dir: Path | None = None, confirm: str | None = None, by: str, approval: str | None = None,
                  now: datetime) -> RestoreResult:
    """Restore a backup into ``target_url`` and ``data_dir`` (default: the configured ones)."""
    target_url = target_url or settings.database_url
    # the configured object store, unless the restore goes to a data dir of its own
    store = MediaStore.from_settings(settings) if data_dir is None and settings.media_url.startswith("s3://") else None
    data_dir = data_dir or settings.data_dir
    try:
        return await _restore(settings, source=source, target_url=target_url, data_dir=data_dir, store=store,
                              confirm=confirm, by=by, approval=approval, now=now)
    finally:
        if store is not None:
            await store.close()


async def _restore(settings: Settings, *, source: Path, target_url: str, data_dir: Path, store: MediaStore | None,
                   confirm: str | None, by: str, approval: str | None, now: datetime) -> RestoreResult:
    try:
        make_url(target_url)
    except ArgumentError as exc:
        raise RestoreRefused(f"{target_url!r} is not a database URL (e.g. sqlite+aiosqlite:////srv/fieldbot/"
                             f"fieldbot.db or postgresql+asyncpg://user@host/db)") from exc
    try:
        manifest = resolve(source)
    except ManifestError as exc:
        raise RestoreRefused(str(exc)) from exc
    target_kind = "sqlite" if make_url(target_url).get_backend_name() == "sqlite" else "postgresql"
    if manifest.database_kind != target_kind:
        raise RestoreRefused(f"backup {manifest.backup_id} holds a {manifest.database_kind} database and the "
                             f"target is {target_kind}")
    problems = await asyncio.to_thread(check_backup, manifest)
    if problems:
        raise RestoreRefused(f"backup {manifest.backup_id} is damaged", problems)
    file_key = settings.keys_path / keys.FILE_KEY
    if any(entry.path.endswith(SEALED) for entry in manifest.files) and not file_key.exists():
        raise RestoreRefused(f"the backup holds sealed bank files and {file_key} is missing: copy the keys folder "
                             "kept apart from the backups back first (without it they cannot be opened)")
    beat = await _target_heartbeat(target_url)
    if beat is not None and now - beat < RUNNING_WITHIN:
        raise RestoreRefused(f"a bot process is running on the target database (its last heartbeat was "
                             f"{int((now - beat).total_seconds())} s ago): stop every fieldbot process first")
    occupied = []
    if await _target_rows(target_url):
        occupied.append(f"the database {make_url(target_url).render_as_string(hide_password=True)} holds rows")
    if store is None and _media_present(data_dir):
        occupied.append(f"{data_dir / 'media'} holds files")
    if occupied and confirm != manifest.backup_id:
        raise RestoreRefused(f"the target is not empty; to overwrite it, confirm with --confirm {manifest.backup_id}",
                             occupied)
    assert manifest.folder is not None
    kept_aside: list[str] = []
    if occupied:
        stamp = now.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
        kept_aside = await _keep_aside(target_url, data_dir, data_dir / f"replaced-{stamp}")
    db_file = manifest.folder / manifest.database_file
    if target_kind == "sqlite":
        await asyncio.to_thread(_restore_sqlite, db_file, target_url)
    else:
        await _restore_pg(db_file, target_url)
    files = (await asyncio.to_thread(_restore_media, manifest, data_dir) if store is None
             else await _restore_to_store(manifest, store))
    database = Database(target_url)
    try:
        async with database.read() as session:
            names = await session.run_sync(lambda s: s.connection().dialect.get_table_names(s.connection()))
            counts = {}
            for name in _tables(names):
                counts[name] = int(await session.scalar(select(func.count()).select_from(table(name))) or 0)
        differ = [f"{t}: {counts.get(t)} rows, the manifest says {n}"
                  for t, n in manifest.counts.items() if counts.get(t) != n]
        if differ:
            raise RestoreRefused("the restored database does not hold what the manifest lists", differ)
        async with database.read() as session:
            result = await audit.verify(session, checkpoints=[manifest.audit_head])
        if not result.ok:
            raise RestoreRefused("the restored audit log does not verify", [result.describe()])
        async with database.write() as session:
            await audit.record(session, action=audit_checkpoint.RESTORE_ACTION, object_type="backup",
                               object_id=manifest.backup_id,
                               details={"by": by, "approval": approval, "source": str(manifest.folder),
                                        "overwrote": occupied, "kept_aside": kept_aside, "files": files,
                                        "audit_seq": manifest.audit_head.seq}, at=now)
            head = await audit.head(session)
        audit_checkpoint.write(data_dir / audit_checkpoint.FILE_NAME, audit.Head(seq=head.seq, hash=head.hash, at=now),
                               restored_at=now)  # the heads of backups made before it are another history
    finally:
        await database.dispose()
    return RestoreResult(manifest=manifest, verify=result, counts=counts, files=files, kept_aside=kept_aside)

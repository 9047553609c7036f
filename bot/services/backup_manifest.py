"""A backup's manifest: what the snapshot holds, every file's SHA-256, the row counts and the audit head.

A backup folder (one of ``FIELDBOT_BACKUP_DIRS``) looks like this::

    <folder>/<kind>/<aa>/<sha256><suffix>          media, content-addressed, shared by every snapshot
    <folder>/snapshots/<backup id>/manifest.json   this module
    <folder>/snapshots/<backup id>/database.sqlite3 (SQLite) or database.pgdump (pg_dump's custom format)

The manifest is signed with the audit key (HMAC-SHA-256), so a manifest edited to match a damaged file
is refused like the file itself. Media paths are relative to the data dir (``media/<kind>/...``), as
the database stores them; in the folder they live under the part after ``media/``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path, PurePosixPath
from typing import Any

from bot.services import audit

FORMAT = 1
MANIFEST = "manifest.json"
SNAPSHOTS = "snapshots"


class ManifestError(Exception):
    """A manifest that is missing, unreadable or not signed with this deployment's audit key."""


@dataclass(frozen=True)
class FileEntry:
    path: str  # relative to the data dir: media/<kind>/<aa>/<name>
    sha256: str
    size: int

    def in_folder(self, folder: Path) -> Path:
        return folder / Path(self.path).relative_to("media")


@dataclass
class Manifest:
    backup_id: str
    created_at: datetime
    database_kind: str  # sqlite | postgresql
    database_file: str  # the snapshot's file name beside the manifest
    database_sha256: str
    database_size: int
    counts: dict[str, int]
    audit_head: audit.Head
    files: list[FileEntry] = field(default_factory=list)
    folder: Path | None = None  # the snapshot folder it was read from

    def fields(self) -> dict[str, Any]:
        return {
            "format": FORMAT, "backup_id": self.backup_id, "created_at": self.created_at.isoformat(),
            "database": {"kind": self.database_kind, "file": self.database_file, "sha256": self.database_sha256,
                         "size": self.database_size},
            "counts": dict(sorted(self.counts.items())),
            "audit_head": {"seq": self.audit_head.seq, "hash": self.audit_head.hash},
            "files": [{"path": f.path, "sha256": f.sha256, "size": f.size} for f in self.files],
        }

    def dumps(self, key: bytes | None = None) -> bytes:
        fields = self.fields()
        fields["mac"] = _mac(fields, key)
        return (json.dumps(fields, ensure_ascii=False, indent=1) + "\n").encode("utf-8")


def _mac(fields: dict[str, Any], key: bytes | None) -> str:
    body = json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    return hmac.new(key if key is not None else audit.current_key(), body, hashlib.sha256).hexdigest()


def _media_path(path: str) -> str:
    """A file entry's path as the media store writes it: ``media/...``, relative, no ``..``."""
    parts = PurePosixPath(path).parts
    if len(parts) < 2 or parts[0] != "media" or any(p in ("", ".", "..") for p in parts) or "\\" in path:
        raise ManifestError(f"{path!r} is not a media path (media/<kind>/...): nothing is restored outside "
                            f"the media folder")
    return path


def _file_name(name: str) -> str:
    if not name or name in (".", "..") or "/" in name or "\\" in name:
        raise ManifestError(f"{name!r} is not a file name beside the manifest")
    return name


def load(folder: Path, *, key: bytes | None = None) -> Manifest:
    """The manifest of the snapshot in ``folder``, its signature checked."""
    path = folder / MANIFEST
    try:
        data = json.loads(path.read_bytes())
        mac = str(data.pop("mac"))
    except FileNotFoundError as exc:
        raise ManifestError(f"{path}: no manifest (not a backup snapshot folder)") from exc
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ManifestError(f"{path}: not a readable manifest") from exc
    if not hmac.compare_digest(mac, _mac(data, key)):
        raise ManifestError(f"{path}: the manifest was altered or was not written with this deployment's audit key")
    if data.get("format") != FORMAT:
        raise ManifestError(f"{path}: manifest format {data.get('format')!r} is not {FORMAT}")
    try:
        db = data["database"]
        created = datetime.fromisoformat(data["created_at"])
        return Manifest(
            backup_id=str(data["backup_id"]), created_at=created, database_kind=str(db["kind"]),
            database_file=_file_name(str(db["file"])), database_sha256=str(db["sha256"]),
            database_size=int(db["size"]), counts={str(k): int(v) for k, v in data["counts"].items()},
            audit_head=audit.Head(seq=int(data["audit_head"]["seq"]), hash=str(data["audit_head"]["hash"]),
                                  at=created, source=f"backup {data['backup_id']}"),
            files=[FileEntry(path=_media_path(str(f["path"])), sha256=str(f["sha256"]), size=int(f["size"]))
                   for f in data["files"]],
            folder=folder,
        )
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ManifestError(f"{path}: not a readable manifest ({type(exc).__name__}: {exc})") from exc


def snapshot_folders(folder: Path) -> list[Path]:
    """The snapshot folders in a backup folder, oldest first (backup ids sort by time)."""
    root = folder / SNAPSHOTS
    if not root.is_dir():
        return []
    return sorted((p for p in root.iterdir() if p.is_dir() and (p / MANIFEST).exists()), key=lambda p: p.name)


def newest(folder: Path, *, key: bytes | None = None) -> Manifest | None:
    """The newest snapshot's manifest in a backup folder (None if it holds none)."""
    folders = snapshot_folders(folder)
    return load(folders[-1], key=key) if folders else None


def resolve(source: Path, *, key: bytes | None = None) -> Manifest:
    """``source`` is a snapshot folder, or a backup folder (then its newest snapshot)."""
    if (source / MANIFEST).exists():
        return load(source, key=key)
    found = newest(source, key=key)
    if found is None:
        raise ManifestError(f"{source}: no backup snapshot here (no {SNAPSHOTS}/<id>/{MANIFEST})")
    return found


def media_root(manifest: Manifest) -> Path:
    """The backup folder whose content-addressed media the snapshot's files are in."""
    assert manifest.folder is not None
    return manifest.folder.parent.parent

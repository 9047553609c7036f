"""``fieldbot media migrate --to s3://bucket/prefix``: copy the media folder into an object store.

Every file under ``<data dir>/media`` is read (a plain file is checked against its name), uploaded
under the same key and read back: the copy counts only when the store returns the same SHA-256. A key
already in the store with the right SHA-256 is skipped, so a second run copies nothing and a run that
stopped half-way goes on where it stopped. A file whose bytes no longer match its name is not copied:
it is listed and the command exits 1. The folder is left as it is; the operator then sets
``FIELDBOT_MEDIA_URL`` to the same URL and restarts.

Nothing heavy is imported at module level: ``fieldbot --help`` stays fast.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import sys
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bot.config import Settings
    from bot.storage.blobs import Backend

PARALLEL = 8  # uploads at once


@dataclass
class Migrated:
    copied: int = 0
    skipped: int = 0  # already in the store with the right SHA-256
    bytes_copied: int = 0
    refused: list[str] = field(default_factory=list)  # why each refused file was not copied


async def _one(source: Backend, target: Backend, key: str, done: Migrated) -> None:
    from bot.storage.blobs import MediaCorrupt, MediaMissing

    try:
        data = await source.get(key)
    except (MediaCorrupt, MediaMissing) as exc:
        done.refused.append(str(exc))
        return
    digest = hashlib.sha256(data).hexdigest()
    if await target.size(key) == len(data):
        try:
            await target.get(key, sha256=digest)
        except MediaCorrupt:
            pass  # a damaged or different copy: uploaded again
        else:
            done.skipped += 1
            return
    await target.put(key, data)
    await target.get(key, sha256=digest)  # read back: MediaCorrupt stops the run, naming the key
    done.copied += 1
    done.bytes_copied += len(data)


async def migrate(source: Backend, target: Backend, *, prefix: str = "media/") -> Migrated:
    """Copy every key under ``prefix`` from ``source`` to ``target``, each checked after its upload."""
    done = Migrated()
    slots = asyncio.Semaphore(PARALLEL)

    async def guarded(key: str) -> None:
        async with slots:
            await _one(source, target, key, done)

    keys = await source.keys(prefix)
    await asyncio.gather(*(guarded(key) for key in keys))
    done.refused.sort()
    return done


def cmd_migrate(settings: Settings, args: argparse.Namespace) -> int:
    from bot.i18n import translator
    from bot.storage.blobs import LocalBackend, MediaError, backend_for

    t = translator(settings.default_locale)
    if not str(args.to).startswith("s3://"):
        print("fieldbot: " + t("media.migrate.error.target", value=args.to), file=sys.stderr)
        return 2
    try:
        target = backend_for(args.to, settings)
    except ValueError as exc:
        print(f"fieldbot: {exc}", file=sys.stderr)
        return 2

    async def work() -> Migrated:
        source = LocalBackend(settings.data_dir)
        try:
            return await migrate(source, target)
        finally:
            await target.close()

    try:
        done = asyncio.run(work())
    except (MediaError, OSError) as exc:
        print("fieldbot: " + t("media.migrate.error.failed", url=target.url, error=str(exc)), file=sys.stderr)
        return 1
    for reason in done.refused:
        print(t("media.migrate.refused", error=reason), file=sys.stderr)
    print(t("media.migrate.done", url=target.url, copied=done.copied, skipped=done.skipped,
            refused=len(done.refused), megabytes=f"{done.bytes_copied / 1_000_000:.1f}"))
    if done.refused:
        return 1
    print(t("media.migrate.next", url=target.url))
    return 0


def register(sub: Any) -> None:
    """Add this module's commands to the ``fieldbot`` parser's subcommands."""
    media = sub.add_parser("media", help="the media store (photos, recordings, bank files, reports)")
    media_sub = media.add_subparsers(dest="media_command", required=True, metavar="ACTION")
    move = media_sub.add_parser("migrate", help="copy the media folder to an S3-compatible object store")
    move.add_argument("--to", required=True, metavar="s3://BUCKET/PREFIX",
                      help="the store (endpoint and keys from FIELDBOT_S3_*)")
    move.set_defaults(func=cmd_migrate)

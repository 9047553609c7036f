"""``fieldbot backup`` and ``fieldbot restore`` (``bot/services/backup.py`` does the work)."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bot.config import Settings
    from bot.storage.db import Database


def _who(args: argparse.Namespace) -> str:
    """Who ran the command: ``--by`` as given, with the operating-system user it ran as."""
    user = getpass.getuser()
    return f"{args.by} ({user})" if args.by else user


def cmd_backup(settings: Settings, args: argparse.Namespace) -> int:
    from bot.cli import _run_db
    from bot.clock import SystemClock
    from bot.i18n import translator
    from bot.services import backup

    t = translator(settings.default_locale)

    async def work(database: Database) -> int:
        try:
            result = await backup.make_backup(database, settings, now=SystemClock().now(),
                                              folders=args.to or None, actor=_who(args))
        except backup.BackupError as exc:
            print(f"fieldbot: {t('backup.failed', reason=str(exc))}", file=sys.stderr)
            return 1
        manifest = result.manifest
        print(t("backup.done", id=result.backup_id, files=len(manifest.files), copied=result.copied,
                folders=len(result.folders), entries=manifest.audit_head.seq))
        for folder in result.folders:
            print(f"  → {folder / 'snapshots' / result.backup_id}")
        return 0

    return _run_db(settings, work)


def cmd_restore(settings: Settings, args: argparse.Namespace) -> int:
    from bot.clock import SystemClock
    from bot.i18n import translator
    from bot.runtime import load_keys
    from bot.services import backup
    from bot.storage import keys

    t = translator(settings.default_locale)
    key_file = settings.keys_path / keys.AUDIT_KEY
    if not key_file.exists():  # a new key would not open the backup: make none, say what is missing
        print(f"fieldbot: {t('restore.refused', reason=t('restore.no_key', path=str(key_file)))}", file=sys.stderr)
        return 1
    load_keys(settings)
    try:
        result = asyncio.run(backup.restore(
            settings, source=args.source, target_url=args.to, data_dir=args.media, confirm=args.confirm,
            by=_who(args), approval=args.approval, now=SystemClock().now()))
    except backup.RestoreRefused as exc:
        print(f"fieldbot: {t('restore.refused', reason=exc.reason)}", file=sys.stderr)
        for problem in exc.problems:
            print(f"  - {problem}", file=sys.stderr)
        return 1
    except backup.BackupError as exc:
        print(f"fieldbot: {t('restore.refused', reason=str(exc))}", file=sys.stderr)
        return 1
    print(t("restore.done", id=result.manifest.backup_id, rows=sum(result.counts.values()), files=result.files,
            entries=result.verify.checked))
    return 0


def register(sub: Any) -> None:
    """Add ``backup`` and ``restore`` to the ``fieldbot`` parser's subcommands."""
    back = sub.add_parser("backup", help="snapshot the database and copy new media and a manifest to every "
                          "backup folder (FIELDBOT_BACKUP_DIRS)")
    back.add_argument("--to", type=Path, action="append", metavar="DIR",
                      help="back up to this folder instead (repeatable)")
    back.add_argument("--by", help="who runs it (written to the audit log with the system user)")
    back.set_defaults(func=cmd_backup)

    rest = sub.add_parser("restore", help="verify a backup and restore it into an empty database and media folder")
    rest.add_argument("--from", dest="source", type=Path, required=True, metavar="DIR",
                      help="a backup folder (its newest snapshot) or one snapshot folder")
    rest.add_argument("--to", metavar="URL", help="the database to restore into (default FIELDBOT_DATABASE_URL)")
    rest.add_argument("--media", type=Path, metavar="DIR",
                      help="the data folder for the media (default FIELDBOT_DATA_DIR)")
    rest.add_argument("--confirm", metavar="BACKUP_ID",
                      help="overwrite a target that is not empty: repeat the backup's id (head office's approval)")
    rest.add_argument("--by", help="who runs it (written to the audit log with the system user)")
    rest.add_argument("--approval", metavar="REF", help="head office's approval reference, for the audit log")
    rest.set_defaults(func=cmd_restore)

"""``fieldbot evidence CASE_NO --out FILE.zip``: a case's evidence bundle for the bank or a court.

The bundle (``bot/services/evidence_bundle.py``) is built in a read transaction into a 0600 file beside
the target, then the download's audit entry is written and the file put in place in one write
transaction: the bundle appears only with its audit entry. Nothing heavy is imported at module level:
``fieldbot --help`` stays fast.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bot.config import Settings
    from bot.services.evidence_bundle import Built
    from bot.storage.db import Database


def _unwritable(target: Path) -> str | None:
    """Why ``target`` cannot be written, or None (the write may still fail; that is reported too)."""
    if target.is_dir():
        return "it is a folder"
    folder = target.parent
    if not folder.is_dir():
        return f"there is no folder {folder}"
    if not os.access(folder, os.W_OK | os.X_OK):
        return f"the folder {folder} is not writable"
    return None


class _Progress:
    """How far a bundle got on its way to the target, to undo on failure."""

    part: str | None = None  # the 0600 file being written beside the target
    placed = False  # renamed into place, its audit entry not committed yet

    def undo(self, target: Path) -> None:
        if self.placed:  # the audit entry did not commit: no bundle without its entry
            target.unlink(missing_ok=True)
        if self.part is not None:
            Path(self.part).unlink(missing_ok=True)


def _os_user() -> str:
    import getpass

    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no login name (a container without a passwd entry)
        return "unknown"


def cmd_evidence(settings: Settings, args: argparse.Namespace) -> int:
    from bot.cli import EXIT_USAGE, _run_db
    from bot.clock import SystemClock
    from bot.i18n import translator
    from bot.runtime import calendar_from
    from bot.services import evidence_bundle, retention
    from bot.services.errors import NotFound
    from bot.storage.media import MediaStore

    t = translator(settings.default_locale)
    target = Path(args.out).expanduser()
    problem = _unwritable(target)
    if problem is not None:
        print("fieldbot: " + t("bundle.error.not_writable", path=target, reason=problem), file=sys.stderr)
        return EXIT_USAGE
    media = MediaStore.from_settings(settings)
    calendar = calendar_from(settings)
    now = SystemClock().now()
    by = args.by or _os_user()

    progress = _Progress()

    async def work(database: Database) -> Built:
        try:
            return await write(database)
        finally:
            await media.close()  # an object store's client

    async def write(database: Database) -> Built:
        fd, progress.part = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")  # 0600
        with os.fdopen(fd, "w+b") as handle:
            async with database.read() as session:
                case = await retention.find_case(session, args.case_no, args.bank)
                built = await evidence_bundle.write_bundle(session, media, None, case.id, handle, now=now,
                                                           lang=args.lang, calendar=calendar)
            handle.flush()
            os.fsync(handle.fileno())
        async with database.write() as session:
            await evidence_bundle.record_download(session, None, built, now=now, by=by)
            os.replace(progress.part, target)  # within the transaction: a failed rename writes no audit entry
            progress.placed = True
        progress.part, progress.placed = None, False  # committed: the bundle and its entry stay
        return built

    try:
        try:
            built = _run_db(settings, work)
        except BaseException:
            progress.undo(target)
            raise
    except NotFound as exc:
        print(f"fieldbot: {t(exc.key, **exc.params)}", file=sys.stderr)
        return EXIT_USAGE
    except OSError as exc:
        reason = exc.strerror or str(exc)
        if exc.filename is not None and Path(exc.filename).parent != target.parent:
            reason += f" ({exc.filename})"  # not the target's folder: say which file
        print("fieldbot: " + t("bundle.error.not_writable", path=target, reason=reason), file=sys.stderr)
        return EXIT_USAGE
    print(t("bundle.written", case_no=built.case_no, bank=built.bank, path=target, files=len(built.files),
            sha256=built.sha256))
    if built.missing:
        print(t("bundle.written_missing", count=len(built.missing)), file=sys.stderr)
    if built.altered:
        print(t("bundle.written_altered", count=len(built.altered)), file=sys.stderr)
    return 0


def register(sub: Any) -> None:
    """Add this module's command to the ``fieldbot`` parser's subcommands."""
    evidence = sub.add_parser("evidence", help="write a case's evidence bundle (ZIP: summary, photos, recordings, "
                              "manifest, SHA256SUMS, audit entries) for the bank or a court")
    evidence.add_argument("case_no", help="the case number")
    evidence.add_argument("--out", required=True, metavar="FILE.zip", help="the ZIP file to write (owner-only, 0600)")
    evidence.add_argument("--lang", default="zh_CN", choices=["zh_CN", "en"], help="the summary's language")
    evidence.add_argument("--bank", help="needed when several banks use the same case number")
    evidence.add_argument("--by", help="who asks for the bundle, for the audit entry (default: the OS user)")
    evidence.set_defaults(func=cmd_evidence)

"""Backups and restores: a consistent snapshot under write load, a damaged backup refused, the approval rule."""

from __future__ import annotations

import asyncio
import hashlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import delete, func, select

from bot.clock import ManualClock
from bot.config import Settings
from bot.runtime import Runtime
from bot.services import audit, backup, backup_manifest
from bot.storage import migrate
from bot.storage.db import Database
from bot.storage.media import MediaStore
from bot.storage.models import AuditEntry, Backup, Case, Evidence, Instance, OutboxMessage, Role, Staff, Visit
from tests.conftest import PG_ENV, TestDatabases, _drop_pg_database, _fresh_pg_database


def settings_for(database: Database, data_dir: Path, *folders: Path) -> Settings:
    return Settings(_env_file=None, database_url=database.url, data_dir=data_dir, backup_dirs=list(folders))


async def seed(database: Database, now: datetime, *, user: int = 8801, prefix: str = "B") -> tuple[int, list[int]]:
    """One collector and five cases, each with a draft visit."""
    async with database.write() as session:
        person = Staff(name="王磊", role=Role.COLLECTOR, team="A", active=True, created_at=now, telegram_user_id=user)
        session.add(person)
        await session.flush()
        visits = []
        for i in range(5):
            case = Case(bank="招商银行", case_no=f"{prefix}-{i}", debtor_name="李四", address="上海市",
                        amount_due_fen=100, status="assigned", created_at=now, updated_at=now, contract_end=None)
            session.add(case)
            await session.flush()
            visit = Visit(case_id=case.id, collector_id=person.id, status="draft", started_at=now, updated_at=now,
                          details={})
            session.add(visit)
            await session.flush()
            visits.append(visit.id)
        await audit.record(session, action="test.seed", object_type="staff", object_id=person.id, at=now)
        return person.id, visits


async def file_evidence(database: Database, media: MediaStore, person: int, visit_id: int, n: int,
                        now: datetime, size: int = 50_000) -> None:
    """A recording lands and the visit is filed: the file first, then its row, the visit and the audit entry."""
    blob = await media.put(os.urandom(size), kind="evidence", suffix=".ogg")
    async with database.write() as session:
        session.add(Evidence(visit_id=visit_id, kind="voice", status="stored", sha256=blob.sha256, path=blob.path,
                             size=blob.size, mime_type="audio/ogg", file_id=f"f{n}", file_unique_id=f"u{n}",
                             sender_id=person, sent_at=now, stored_at=now))
        visit = await session.get(Visit, visit_id)
        assert visit is not None
        visit.status, visit.filed_at, visit.revision = "filed", now, visit.revision + 1
        await audit.record(session, action="visit.filed", object_type="visit", object_id=visit_id, actor_id=person,
                           at=now, details={"n": n})


async def counts_of(database: Database) -> dict[str, int]:
    async with database.read() as session:
        return {model.__tablename__: int(await session.scalar(select(func.count()).select_from(model)) or 0)
                for model in (AuditEntry, Evidence, Visit, Case, Staff)}


@pytest.fixture
async def target_url(any_database: Database, tmp_path: Path) -> AsyncIterator[str]:
    """An empty database of the same kind as ``any_database`` to restore into."""
    if any_database.sqlite:
        yield f"sqlite+aiosqlite:///{tmp_path / 'restored' / 'fieldbot.db'}"
        return
    base = os.environ[PG_ENV]
    url, name = await _fresh_pg_database(base)
    yield url
    await _drop_pg_database(base, name)


async def test_backup_under_write_load_restores_equal(any_database: Database, target_url: str, tmp_path: Path,
                                                      clock: ManualClock) -> None:
    data = tmp_path / "data"
    media = MediaStore(data)
    settings = settings_for(any_database, data, tmp_path / "branch", tmp_path / "hq")
    person, visits = await seed(any_database, clock.now())
    for n in range(20):  # a few MB of recordings already there
        await file_evidence(any_database, media, person, visits[n % 5], n, clock.now(), size=200_000)

    # A collector keeps filing while the snapshot runs.
    stop, during, started, finished = asyncio.Event(), [], [0.0], [0.0]

    async def keep_filing() -> None:
        n = 100
        while not stop.is_set():
            await file_evidence(any_database, media, person, visits[n % 5], n, clock.now())
            during.append(time.monotonic())
            n += 1
            await asyncio.sleep(0)

    async def back_up() -> backup.BackupResult:
        started[0] = time.monotonic()
        try:
            return await backup.make_backup(any_database, settings, now=clock.now(), actor="test")
        finally:
            finished[0] = time.monotonic()
            stop.set()

    writer = asyncio.create_task(keep_filing())
    result = await back_up()
    await writer
    assert any(started[0] < at < finished[0] for at in during), "nothing was written while the backup ran"

    manifest = result.manifest
    live = await counts_of(any_database)
    assert manifest.counts["evidence"] >= 20 and live["evidence"] >= manifest.counts["evidence"]
    assert manifest.counts["audit_log"] == manifest.audit_head.seq
    for folder in (tmp_path / "branch", tmp_path / "hq"):
        assert backup_manifest.newest(folder) is not None
        assert backup.check_backup(backup_manifest.newest(folder)) == []  # type: ignore[arg-type]

    restored_data = tmp_path / "restored-data"
    restored = await backup.restore(settings, source=tmp_path / "hq", target_url=target_url, data_dir=restored_data,
                                    by="Admin Wang (root)", approval="HQ-2026-118", now=clock.now())
    assert restored.verify.ok and restored.counts == manifest.counts

    target = Database(target_url)
    try:
        async with target.read() as session:
            rows = (await session.scalars(select(Evidence))).all()
            assert len(rows) == manifest.counts["evidence"]
            for row in rows:  # every recording the restored rows point at is there, with its hash
                assert row.path is not None
                assert hashlib.sha256((restored_data / row.path).read_bytes()).hexdigest() == row.sha256
            entry = await session.scalar(select(AuditEntry).where(AuditEntry.action == "system.restore"))
            assert entry is not None and "Admin Wang" in entry.details and "HQ-2026-118" in entry.details
            assert (await audit.verify(session)).ok
        restored_counts = await counts_of(target)
    finally:
        await target.dispose()
    assert restored_counts["evidence"] == manifest.counts["evidence"]
    assert restored_counts["audit_log"] == manifest.counts["audit_log"] + 1  # the restore's own entry
    for entry in manifest.files:
        assert hashlib.sha256((restored_data / entry.path).read_bytes()).hexdigest() == entry.sha256

    async with any_database.read() as session:
        made = await session.scalar(select(Backup))
    assert made is not None and made.status == "ok" and made.audit_seq == manifest.audit_head.seq


async def test_second_backup_copies_only_new_files(database: Database, tmp_path: Path, clock: ManualClock) -> None:
    data = tmp_path / "data"
    media = MediaStore(data)
    settings = settings_for(database, data, tmp_path / "branch")
    person, visits = await seed(database, clock.now())
    for n in range(3):
        await file_evidence(database, media, person, visits[n], n, clock.now())
    first = await backup.make_backup(database, settings, now=clock.now())
    await file_evidence(database, media, person, visits[3], 3, clock.now())
    clock.advance(timedelta(hours=1))
    second = await backup.make_backup(database, settings, now=clock.now())
    assert first.copied == 3 and second.copied == 1
    assert len(second.manifest.files) == 4 and second.backup_id != first.backup_id
    assert backup_manifest.newest(tmp_path / "branch").backup_id == second.backup_id  # type: ignore[union-attr]


async def make_one(database: Database, tmp_path: Path, clock: ManualClock) -> tuple[Settings, backup.BackupResult]:
    data = tmp_path / "data"
    settings = settings_for(database, data, tmp_path / "hq")
    person, visits = await seed(database, clock.now())
    for n in range(3):
        await file_evidence(database, MediaStore(data), person, visits[n], n, clock.now())
    return settings, await backup.make_backup(database, settings, now=clock.now())


async def test_a_damaged_backup_is_refused_naming_the_file(database: Database, db_urls: TestDatabases, tmp_path: Path,
                                                           clock: ManualClock) -> None:
    settings, result = await make_one(database, tmp_path, clock)
    damaged = result.manifest.files[1].in_folder(tmp_path / "hq")
    damaged.write_bytes(damaged.read_bytes()[:-1] + b"!")
    target = db_urls.url(tmp_path / "restored" / "fieldbot.db", empty=True)
    with pytest.raises(backup.RestoreRefused) as refused:
        await backup.restore(settings, source=tmp_path / "hq", target_url=target, data_dir=tmp_path / "restored",
                             by="test", now=clock.now())
    assert refused.value.problems == [f"{damaged}: changed (its SHA-256 does not match the manifest)"]
    assert not (tmp_path / "restored" / "fieldbot.db").exists() and not (tmp_path / "restored" / "media").exists()
    if db_urls.postgres:
        assert db_urls.fetch(target, "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'") == [(0,)]

    damaged.unlink()
    with pytest.raises(backup.RestoreRefused) as missing:
        await backup.restore(settings, source=tmp_path / "hq", target_url=target, data_dir=tmp_path / "restored",
                             by="test", now=clock.now())
    assert missing.value.problems == [f"{damaged}: missing"]


async def test_an_edited_manifest_is_refused(database: Database, db_urls: TestDatabases, tmp_path: Path,
                                             clock: ManualClock) -> None:
    settings, result = await make_one(database, tmp_path, clock)
    assert result.manifest.folder is not None
    path = result.manifest.folder / "manifest.json"
    path.write_text(path.read_text().replace('"evidence": 3', '"evidence": 2'))
    with pytest.raises(backup.RestoreRefused, match="altered"):
        await backup.restore(settings, source=result.manifest.folder, by="test", now=clock.now(),
                             target_url=db_urls.url(tmp_path / "r" / "f.db", empty=True), data_dir=tmp_path / "r")


@pytest.mark.sqlite_only("the replaced database is kept aside as a SQLite file")
async def test_restore_over_data_needs_the_backup_id(database: Database, tmp_path: Path, clock: ManualClock) -> None:
    settings, result = await make_one(database, tmp_path, clock)
    await seed(database, clock.now(), user=8802, prefix="C")  # work done after the backup
    with pytest.raises(backup.RestoreRefused) as refused:
        await backup.restore(settings, source=tmp_path / "hq", by="test", now=clock.now())
    assert f"--confirm {result.backup_id}" in refused.value.reason
    assert any("holds rows" in p for p in refused.value.problems)
    with pytest.raises(backup.RestoreRefused):
        await backup.restore(settings, source=tmp_path / "hq", by="test", now=clock.now(), confirm="20260101T000000-x")
    assert (await counts_of(database))["cases"] == 10

    newer = await MediaStore(settings.data_dir).put(b"a photo taken after the backup", kind="evidence", suffix=".jpg")

    await database.dispose()
    done = await backup.restore(settings, source=tmp_path / "hq", by="Li (admin)", approval="HQ-7", now=clock.now(),
                                confirm=result.backup_id)
    assert done.counts["cases"] == 5
    reopened = Database(settings.database_url)
    try:
        assert (await counts_of(reopened))["cases"] == 5
        async with reopened.read() as session:
            entry = await session.scalar(select(AuditEntry).where(AuditEntry.action == "system.restore"))
        assert entry is not None and '"approval":"HQ-7"' in entry.details and "holds rows" in entry.details
    finally:
        await reopened.dispose()
    # what the restore overwrote is kept aside, not lost: the database as it was, and the media folder
    aside = Path(done.kept_aside[0]).parent
    assert aside.parent == settings.data_dir and aside.name.startswith("replaced-")
    kept = Database(f"sqlite+aiosqlite:///{aside / 'database.sqlite3'}")
    try:
        assert (await counts_of(kept))["cases"] == 10
    finally:
        await kept.dispose()
    assert (aside / newer.path).read_bytes() == b"a photo taken after the backup"
    assert not (settings.data_dir / newer.path).exists()  # the restored media folder holds the backup's files only
    assert str(aside / "database.sqlite3") in entry.details


async def test_restore_needs_the_file_key_for_sealed_files(database: Database, db_urls: TestDatabases, tmp_path: Path,
                                                          clock: ManualClock) -> None:
    data = tmp_path / "data"
    await MediaStore(data).put(b"the bank's file", kind="imports", suffix=".csv", sealed=True)
    settings, _ = await make_one(database, tmp_path, clock)
    elsewhere = settings.model_copy(update={"keys_dir": tmp_path / "new-machine-keys"})
    with pytest.raises(backup.RestoreRefused, match=r"files\.key is missing"):
        await backup.restore(elsewhere, source=tmp_path / "hq", by="test", now=clock.now(),
                             target_url=db_urls.url(tmp_path / "r" / "f.db", empty=True), data_dir=tmp_path / "r")
    assert not (tmp_path / "new-machine-keys").exists() and not (tmp_path / "r").exists()


async def test_restore_refuses_while_a_bot_runs_on_the_target(database: Database, tmp_path: Path,
                                                             clock: ManualClock) -> None:
    settings, result = await make_one(database, tmp_path, clock)
    async with database.write() as session:
        session.add(Instance(id="live", started_at=clock.now(), heartbeat_at=clock.now() - timedelta(seconds=3)))
    with pytest.raises(backup.RestoreRefused, match="a bot process is running on the target database"):
        await backup.restore(settings, source=tmp_path / "hq", by="test", now=clock.now(), confirm=result.backup_id)
    clock.advance(timedelta(minutes=5))  # the process stopped: its heartbeat is old
    await database.dispose()
    done = await backup.restore(settings, source=tmp_path / "hq", by="test", now=clock.now(), confirm=result.backup_id)
    assert done.verify.ok


async def test_backup_folders_are_recorded_absolute(database: Database, tmp_path: Path, clock: ManualClock,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    settings = settings_for(database, tmp_path / "data")
    made = await backup.make_backup(database, settings, now=clock.now(), folders=[Path("usb")])
    assert made.folders == [tmp_path / "usb"]
    async with database.read() as session:
        row = await session.scalar(select(Backup))
    assert row is not None and row.targets == [str(tmp_path / "usb")]


@pytest.mark.sqlite_only("backs up a SQLite database to restore it into PostgreSQL")
async def test_restore_refuses_another_kind_of_database(database: Database, tmp_path: Path,
                                                        clock: ManualClock) -> None:
    settings, _ = await make_one(database, tmp_path, clock)
    with pytest.raises(backup.RestoreRefused, match="holds a sqlite database and the target is postgresql"):
        await backup.restore(settings, source=tmp_path / "hq", target_url="postgresql+asyncpg://x@127.0.0.1/none",
                             by="test", now=clock.now())


async def test_no_folder_is_a_clear_error(database: Database, tmp_path: Path, clock: ManualClock) -> None:
    with pytest.raises(backup.BackupError, match="FIELDBOT_BACKUP_DIRS"):
        await backup.make_backup(database, settings_for(database, tmp_path / "data"), now=clock.now())


async def test_a_failed_backup_is_recorded(database: Database, tmp_path: Path, clock: ManualClock) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the backup folder should be")
    await seed(database, clock.now())
    with pytest.raises(backup.BackupError):
        await backup.make_backup(database, settings_for(database, tmp_path / "data", blocker), now=clock.now())
    async with database.read() as session:
        row = await session.scalar(select(Backup))
        failed = await session.scalar(select(AuditEntry).where(AuditEntry.action == "backup.failed"))
    assert row is not None and row.status == "failed" and row.error and failed is not None
    assert not list((tmp_path / "data").glob(".backup-*"))  # the staging copy is gone


# -- the daily sweep ---------------------------------------------------------------------------------------

async def runtime_with(database: Database, tmp_path: Path, clock: ManualClock, *folders: Path) -> Runtime:
    await migrate.ensure_current(database)
    settings = settings_for(database, tmp_path / "data", *folders)
    runtime = Runtime(settings=settings, db=database, clock=clock)
    async with database.write() as session:
        session.add(Staff(name="Admin", role=Role.ADMIN, active=True, created_at=clock.now(), telegram_user_id=9901,
                          locale="en"))
    return runtime


async def admin_alerts(database: Database) -> list[str]:
    async with database.read() as session:
        rows = (await session.scalars(select(OutboxMessage).where(OutboxMessage.chat_id == 9901)
                                      .order_by(OutboxMessage.id))).all()
    return [str(r.payload["text"]) for r in rows]


async def test_daily_sweep_backs_up_once_a_day(database: Database, tmp_path: Path, clock: ManualClock) -> None:
    runtime = await runtime_with(database, tmp_path, clock, tmp_path / "hq")
    assert await backup.daily_sweep(runtime) == 1
    clock.advance(timedelta(hours=5))
    assert await backup.daily_sweep(runtime) == 0
    clock.advance(timedelta(hours=19))
    assert await backup.daily_sweep(runtime) == 1
    async with database.read() as session:
        assert await session.scalar(select(func.count()).select_from(Backup).where(Backup.status == "ok")) == 2
    assert await admin_alerts(database) == []


async def test_daily_sweep_tells_the_admins(database: Database, tmp_path: Path, clock: ManualClock) -> None:
    runtime = await runtime_with(database, tmp_path, clock)
    await backup.daily_sweep(runtime)
    await backup.daily_sweep(runtime)
    assert [t[:30] for t in await admin_alerts(database)] == ["⚠️ No backups are being made: "]

    blocker = tmp_path / "blocked"
    blocker.write_text("x")
    runtime.settings.backup_dirs = [blocker]
    clock.advance(timedelta(days=1))
    assert await backup.daily_sweep(runtime) == 0
    clock.advance(timedelta(minutes=10))
    assert await backup.daily_sweep(runtime) == 0  # no retry within the hour, no second alert
    texts = await admin_alerts(database)
    assert len(texts) == 3  # no folders (day 1); failed, and no good backup for over a day (day 2)
    assert texts[1].startswith("⚠️ Today's backup failed") and texts[2].startswith("⚠️ There has been no good backup")
    async with database.read() as session:
        assert await session.scalar(select(func.count()).select_from(Backup)) == 1


async def test_old_snapshots_and_the_media_only_they_held_are_pruned(database: Database, tmp_path: Path,
                                                                     clock: ManualClock) -> None:
    data, hq = tmp_path / "data", tmp_path / "hq"
    media = MediaStore(data)
    settings = settings_for(database, data, hq)
    person, visits = await seed(database, clock.now())
    for n in range(2):
        await file_evidence(database, media, person, visits[n], n, clock.now())
    first = await backup.make_backup(database, settings, now=clock.now())
    gone, stays = first.manifest.files
    # retention purges the first recording's case: its row and file leave the live store
    async with database.write() as session:
        await session.execute(delete(Evidence).where(Evidence.path == gone.path))
    (data / gone.path).unlink()
    notes = hq / "README.txt"
    notes.write_text("branch backup disk")
    fresh = hq / "imports" / "ab" / f"{'ab' * 32}.csv.sealed"  # a bank file's copy landing during the run
    fresh.parent.mkdir(parents=True)
    fresh.write_bytes(b"sealed")
    os.utime(fresh, (time.time() + 60, time.time() + 60))

    clock.advance(timedelta(days=30))
    second = await backup.make_backup(database, settings, now=clock.now())
    assert second.pruned is not None and second.pruned.snapshots == [] and gone.in_folder(hq).exists()

    clock.advance(timedelta(days=61))  # the first snapshot is now 91 days old
    third = await backup.make_backup(database, settings, now=clock.now())
    assert third.pruned is not None and third.pruned.snapshots == [first.backup_id]
    assert not (hq / "snapshots" / first.backup_id).exists() and (hq / "snapshots" / second.backup_id).exists()
    assert not gone.in_folder(hq).exists() and stays.in_folder(hq).exists()
    assert notes.exists() and fresh.exists()
    assert backup.check_backup(backup_manifest.load(hq / "snapshots" / second.backup_id)) == []


async def test_two_backups_at_once_both_hold(database: Database, tmp_path: Path, clock: ManualClock) -> None:
    """The daily sweep and an admin's `fieldbot backup` at the same moment, into the same folders."""
    data = tmp_path / "data"
    settings = settings_for(database, data, tmp_path / "branch", tmp_path / "hq")
    person, visits = await seed(database, clock.now())
    for n in range(10):
        await file_evidence(database, MediaStore(data), person, visits[n % 5], n, clock.now(), size=100_000)
    one, two = await asyncio.gather(backup.make_backup(database, settings, now=clock.now(), actor="sweep"),
                                    backup.make_backup(database, settings, now=clock.now(), actor="admin"))
    assert one.backup_id != two.backup_id
    for folder in (tmp_path / "branch", tmp_path / "hq"):
        for result in (one, two):
            assert backup.check_backup(backup_manifest.load(folder / "snapshots" / result.backup_id)) == []
    async with database.read() as session:
        assert await session.scalar(select(func.count()).select_from(Backup).where(Backup.status == "ok")) == 2


async def test_what_a_killed_run_left_is_cleared(database: Database, tmp_path: Path, clock: ManualClock) -> None:
    """A run killed half-way leaves a staging copy and a snapshot folder without a manifest; the next run,
    hours later, removes both (a young one may be another process's run in progress and stays)."""
    data, hq = tmp_path / "data", tmp_path / "hq"
    settings = settings_for(database, data, hq)
    await seed(database, clock.now())
    old_staging, young_staging = data / ".backup-20261101T000000Z-dead01", data / ".backup-20261102T000000Z-live01"
    half_snapshot = hq / "snapshots" / "20261101T000000Z-dead01"
    for folder in (old_staging, young_staging, half_snapshot):
        folder.mkdir(parents=True)
        (folder / "database.sqlite3").write_bytes(b"half a copy")
    long_ago = time.time() - 7 * 3600
    for folder in (old_staging, half_snapshot):
        os.utime(folder, (long_ago, long_ago))
    result = await backup.make_backup(database, settings, now=clock.now())
    assert not old_staging.exists() and not half_snapshot.exists() and young_staging.exists()
    assert [p.name for p in backup_manifest.snapshot_folders(hq)] == [result.backup_id]


FIELDBOT = [sys.executable, "-c", "import sys; from bot.cli import main; sys.exit(main(sys.argv[1:]))"]


def test_kill_9_during_a_backup_leaves_the_last_good_one(tmp_path: Path, db_urls: TestDatabases) -> None:
    """`fieldbot backup` killed while it copies: the half-done snapshot is no backup (restore takes the
    last whole one), and the next run makes a whole one."""
    data, hq = tmp_path / "data", tmp_path / "hq"
    env = {**os.environ, "FIELDBOT_DATABASE_URL": db_urls.url(data / "fieldbot.db", empty=True),
           "FIELDBOT_DATA_DIR": str(data), "FIELDBOT_BACKUP_DIRS": str(hq)}

    def fieldbot(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*FIELDBOT, *args], env=env, capture_output=True, text=True, timeout=120)

    assert fieldbot("staff", "add", "--name", "Li", "--role", "admin").returncode == 0
    assert fieldbot("backup").returncode == 0
    good = backup_manifest.newest(hq)
    assert good is not None
    media = MediaStore(data)
    for _ in range(120):  # 120 MB of new recordings to copy
        asyncio.run(media.put(os.urandom(1_000_000), kind="evidence", suffix=".ogg"))

    run = subprocess.Popen([*FIELDBOT, "backup"], env=env, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    copying = hq / "evidence"
    while not copying.exists() and time.monotonic() < deadline and run.poll() is None:
        time.sleep(0.002)
    run.send_signal(signal.SIGKILL)
    run.wait()
    assert run.returncode == -signal.SIGKILL, "the backup finished before it could be killed"
    assert backup_manifest.newest(hq).backup_id == good.backup_id  # type: ignore[union-attr]

    restored = tmp_path / "restored"
    result = fieldbot("restore", "--from", str(hq), "--to", db_urls.url(restored / "fieldbot.db", empty=True),
                      "--media", str(restored))
    assert result.returncode == 0, result.stderr
    assert good.backup_id in result.stdout

    assert fieldbot("backup").returncode == 0
    newest = backup_manifest.newest(hq)
    assert newest is not None and newest.backup_id != good.backup_id and len(newest.files) == 120
    assert backup.check_backup(newest) == []


async def test_restore_into_a_migrated_empty_database(any_database: Database, target_url: str, tmp_path: Path,
                                                      clock: ManualClock) -> None:
    """The usual disaster: the bot was installed again and started once (tables, no rows), then restored."""
    settings, result = await make_one(any_database, tmp_path, clock)
    fresh = Database(target_url)
    try:
        await migrate.upgrade(fresh)
    finally:
        await fresh.dispose()
    done = await backup.restore(settings, source=tmp_path / "hq", target_url=target_url,
                                data_dir=tmp_path / "restored-data", by="test", now=clock.now())
    assert done.verify.ok and done.counts == result.manifest.counts


async def test_a_manifest_naming_a_path_outside_the_folder_is_refused(database: Database, db_urls: TestDatabases,
                                                                      tmp_path: Path, clock: ManualClock) -> None:
    """A manifest signed with the key but naming ``..`` paths writes nothing outside the data dir."""
    settings, result = await make_one(database, tmp_path, clock)
    manifest, folder = result.manifest, result.manifest.folder
    assert folder is not None
    outside = tmp_path / "escaped.ogg"
    first = manifest.files[0]
    for bad in ("media/../../escaped.ogg", "/etc/passwd", "evidence/x.ogg"):
        manifest.files = [backup_manifest.FileEntry(path=bad, sha256=first.sha256, size=first.size),
                          *manifest.files[1:]]
        (folder / "manifest.json").write_bytes(manifest.dumps())
        with pytest.raises(backup.RestoreRefused, match="not a media path"):
            await backup.restore(settings, source=folder, by="test", now=clock.now(),
                                 target_url=db_urls.url(tmp_path / "r" / "f.db", empty=True), data_dir=tmp_path / "r")
    manifest.files = [first, *manifest.files[1:]]
    manifest.database_file = "../../../fieldbot.db"
    (folder / "manifest.json").write_bytes(manifest.dumps())
    with pytest.raises(backup.RestoreRefused, match="not a file name"):
        await backup.restore(settings, source=folder, by="test", now=clock.now(),
                             target_url=db_urls.url(tmp_path / "r" / "f.db", empty=True), data_dir=tmp_path / "r")
    assert not outside.exists() and not (tmp_path / "r").exists()


def test_cli_restore_bad_input_is_one_clear_line(tmp_path: Path, db_urls: TestDatabases) -> None:
    """No keys folder (a new machine), a bad --to URL, a missing folder: one line each, no traceback."""
    data, hq = tmp_path / "data", tmp_path / "hq"
    env = {**os.environ, "FIELDBOT_DATABASE_URL": db_urls.url(data / "fieldbot.db", empty=True),
           "FIELDBOT_DATA_DIR": str(data), "FIELDBOT_BACKUP_DIRS": str(hq)}

    def fieldbot(*args: str, **extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*FIELDBOT, *args], env={**env, **extra}, capture_output=True, text=True, timeout=120,
                              cwd=tmp_path)

    assert fieldbot("staff", "add", "--name", "Li", "--role", "admin").returncode == 0
    assert fieldbot("backup").returncode == 0
    new_keys = tmp_path / "new-machine" / "keys"
    elsewhere = db_urls.url(tmp_path / "new-machine" / "fieldbot.db", empty=True)
    for args, extra, said in [
        (("restore", "--from", str(hq), "--to", elsewhere), {"FIELDBOT_KEYS_DIR": str(new_keys)},
         str(new_keys / "audit.key")),
        (("restore", "--from", str(hq), "--to", "not a url"), {}, "not a url"),
        (("restore", "--from", str(tmp_path / "nowhere")), {}, "nowhere"),
    ]:
        result = fieldbot(*args, **extra)
        assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
        assert said in result.stderr and result.stdout == ""
    assert not new_keys.exists()  # a new key would not open the backup: none is made

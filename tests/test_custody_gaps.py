"""Custody of the record, the points the other custody tests leave loose.

* A visit filed while the database snapshot itself runs (not only while media are copied): on SQLite a
  filing transaction is open across the backup-API copy; on PostgreSQL a filing commits after the
  snapshot was exported and before pg_dump reads it. Either way the backup is the database as of one
  instant: its counts and audit head leave the filing out, the restore matches them, and the next
  backup has it.
* The database, media, rejects file and backup are owner-only on their own, with the usual umask 022
  kept for the whole command (``fieldbot`` normally sets 077, which would hide a file made 0644).
* ``fieldbot audit verify`` exits 1 naming what is missing or altered for each of the five tamperings.
* The holes a review found, closed: a cut hidden by deleting the checkpoint file (and the minute sweep
  writing a fresh one at the cut head) or by putting an old one back; a damaged copy in a backup folder
  kept by every later backup. With them: the sweep's alerts, an approved restore of an older backup
  not taken for a cut, and ``status`` showing when the sweeps last ran.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import json
import os
import secrets
import stat
import threading
from collections.abc import AsyncIterator, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import delete, func, select

from bot import cli
from bot.clock import ManualClock
from bot.config import Settings
from bot.i18n import translator
from bot.runtime import Runtime
from bot.sandbox.harness import BotHarness
from bot.services import audit, audit_checkpoint, backup, backup_manifest, health, retention
from bot.storage.db import Database
from bot.storage.media import MediaStore
from bot.storage.models import AuditEntry, Case, Evidence, OutboxMessage, Role, Staff, Visit
from tests.case_files import sample_cases, write_cases_csv
from tests.conftest import PG_ENV, TestDatabases, _drop_pg_database, _fresh_pg_database
from tests.field_office import ADMIN


def settings_for(database: Database, data_dir: Path, *folders: Path) -> Settings:
    return Settings(_env_file=None, database_url=database.url, data_dir=data_dir, backup_dirs=list(folders))


async def seed(database: Database, now: datetime) -> tuple[int, list[int]]:
    async with database.write() as session:
        person = Staff(name="王磊", role=Role.COLLECTOR, team="A", active=True, created_at=now, telegram_user_id=8811)
        session.add(person)
        await session.flush()
        visits = []
        for i in range(3):
            case = Case(bank="招商银行", case_no=f"G-{i}", debtor_name="李四", address="上海市", amount_due_fen=100,
                        status="assigned", created_at=now, updated_at=now, contract_end=None)
            session.add(case)
            await session.flush()
            visit = Visit(case_id=case.id, collector_id=person.id, status="draft", started_at=now, updated_at=now,
                          details={})
            session.add(visit)
            await session.flush()
            visits.append(visit.id)
        await audit.record(session, action="test.seed", object_type="staff", object_id=person.id, at=now)
        return person.id, visits


async def add_filing(session: Any, media: MediaStore, person: int, visit_id: int, n: int, now: datetime) -> None:
    """A recording lands (file first), then its row, the visit filed and the audit entry, in ``session``."""
    blob = await media.put(os.urandom(20_000), kind="evidence", suffix=".ogg")
    session.add(Evidence(visit_id=visit_id, kind="voice", status="stored", sha256=blob.sha256, path=blob.path,
                         size=blob.size, mime_type="audio/ogg", file_id=f"f{n}", file_unique_id=f"u{n}",
                         sender_id=person, sent_at=now, stored_at=now))
    visit = await session.get(Visit, visit_id)
    visit.status, visit.filed_at, visit.revision = "filed", now, visit.revision + 1
    await audit.record(session, action="visit.filed", object_type="visit", object_id=visit_id, actor_id=person,
                       at=now, details={"n": n})


async def evidence_count(database: Database) -> int:
    async with database.read() as session:
        return int(await session.scalar(select(func.count()).select_from(Evidence)) or 0)


@pytest.fixture
async def target_url(any_database: Database, tmp_path: Path) -> AsyncIterator[str]:
    if any_database.sqlite:
        yield f"sqlite+aiosqlite:///{tmp_path / 'restored' / 'fieldbot.db'}"
        return
    base = os.environ[PG_ENV]
    url, name = await _fresh_pg_database(base)
    yield url
    await _drop_pg_database(base, name)


# -- 1. a visit filed while the snapshot itself runs -------------------------------------------------------

async def test_a_visit_filed_while_the_snapshot_itself_runs(any_database: Database, target_url: str, tmp_path: Path,
                                                           clock: ManualClock,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    data = tmp_path / "data"
    media = MediaStore(data)
    settings = settings_for(any_database, data, tmp_path / "hq")
    person, visits = await seed(any_database, clock.now())
    for n in range(4):
        async with any_database.write() as session:
            await add_filing(session, media, person, visits[n % 3], n, clock.now())
    before = await evidence_count(any_database)
    async with any_database.read() as session:
        head_before = await audit.head(session)

    loop = asyncio.get_running_loop()
    during: list[str] = []
    pending: list[Any] = []
    if any_database.sqlite:
        real_snapshot = backup._sqlite_snapshot
        flushed, release = threading.Event(), asyncio.Event()

        async def filing() -> None:  # the collector's transaction: written and flushed, not yet committed
            async with any_database.write() as session:
                await add_filing(session, media, person, visits[0], 999, clock.now())
                await session.flush()
                flushed.set()
                await release.wait()

        def snapshot_with_a_filing_open(source: Path, target: Path) -> backup.Snapshot:
            pending.append(asyncio.run_coroutine_threadsafe(filing(), loop))
            assert flushed.wait(30), "the filing transaction did not start"
            try:
                return real_snapshot(source, target)
            finally:
                during.append("sqlite backup API ran with the filing open")
                loop.call_soon_threadsafe(release.set)

        monkeypatch.setattr(backup, "_sqlite_snapshot", snapshot_with_a_filing_open)
    else:
        real_run = backup._run

        async def pg_dump_after_a_filing(*argv: str) -> None:
            if argv[0] == "pg_dump" and any(a.startswith("--snapshot=") for a in argv):
                async with any_database.write() as session:  # committed after the export, before the dump
                    await add_filing(session, media, person, visits[0], 999, clock.now())
                during.append("filed between pg_export_snapshot and pg_dump")
            await real_run(*argv)

        monkeypatch.setattr(backup, "_run", pg_dump_after_a_filing)

    made = await backup.make_backup(any_database, settings, now=clock.now())
    for future in pending:
        await asyncio.wrap_future(future)
    monkeypatch.undo()
    assert len(during) == 1
    assert await evidence_count(any_database) == before + 1  # the filing went in

    manifest = made.manifest
    assert manifest.counts["evidence"] == before  # ... after the instant the backup is of
    assert (manifest.audit_head.seq, manifest.audit_head.hash) == (head_before.seq, head_before.hash)

    restored_data = tmp_path / "restored-data"
    done = await backup.restore(settings, source=tmp_path / "hq", target_url=target_url, data_dir=restored_data,
                                by="test", now=clock.now())
    assert done.verify.ok and done.counts == manifest.counts
    target = Database(target_url)
    try:
        async with target.read() as session:
            rows = (await session.scalars(select(Evidence))).all()
            assert len(rows) == before and all(r.file_id != "f999" for r in rows)
            for row in rows:
                assert row.path is not None
                assert hashlib.sha256((restored_data / row.path).read_bytes()).hexdigest() == row.sha256
            assert (await audit.verify(session, checkpoints=[manifest.audit_head])).ok
    finally:
        await target.dispose()

    clock.advance(timedelta(days=1))
    second = await backup.make_backup(any_database, settings, now=clock.now())
    assert second.manifest.counts["evidence"] == before + 1
    assert backup.check_backup(backup_manifest.newest(tmp_path / "hq")) == []  # type: ignore[arg-type]


# -- 5. owner-only on their own ----------------------------------------------------------------------------

def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def umask_022_throughout(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The umask stays 022 even through ``fieldbot``'s own os.umask(0o077)."""
    real_umask = os.umask
    old = real_umask(0o022)
    monkeypatch.setattr(os, "umask", lambda mask: 0o022)
    try:
        yield
    finally:
        monkeypatch.setattr(os, "umask", real_umask)
        real_umask(old)


def test_database_media_rejects_and_backup_owner_only_without_the_cli_umask(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, umask_022_throughout: None, db_urls: TestDatabases) -> None:
    data, hq = tmp_path / "data", tmp_path / "hq"
    monkeypatch.setenv("FIELDBOT_DATABASE_URL", db_urls.url(data / "fieldbot.db", empty=True))
    monkeypatch.setenv("FIELDBOT_DATA_DIR", str(data))
    monkeypatch.setenv("FIELDBOT_BACKUP_DIRS", str(hq))
    rows = sample_cases()
    rows[0] = dataclasses.replace(rows[0], phone="not a phone")  # one reject
    source = write_cases_csv(tmp_path / "bank.csv", rows)
    assert cli.main(["import", str(source), "--bank", "招商银行"]) == 3
    assert cli.main(["backup"]) == 0

    control = tmp_path / "control.txt"
    control.write_text("made with open()")
    assert mode(control) == 0o644  # the umask really was 022: a file not made private is readable by others

    assert mode(tmp_path / "bank.rejects.csv") == 0o600
    if not db_urls.postgres:  # a SQLite file; PostgreSQL keeps its files itself
        assert mode(data / "fieldbot.db") == 0o600
    media = list((data / "media").rglob("*"))
    assert any(p.name.endswith(".sealed") for p in media)  # the bank's original, sealed
    for root in (data, hq):
        written = [root, *root.rglob("*")]
        wrong = [(str(p), oct(mode(p))) for p in written if mode(p) != (0o700 if p.is_dir() else 0o600)]
        assert wrong == []


# -- 4. the command names each tampering -------------------------------------------------------------------

async def _tamper(url: str, how: str, n: int) -> None:
    database = Database(url)
    try:
        async with database.write() as session:
            if how == "last":
                await session.execute(delete(AuditEntry).where(AuditEntry.seq == n))
            elif how == "last3":
                await session.execute(delete(AuditEntry).where(AuditEntry.seq >= n - 2))
            elif how == "all":
                await session.execute(delete(AuditEntry))
            elif how == "rewritten":  # the last two re-chained with a key of the attacker's own
                rows = (await session.scalars(select(AuditEntry).where(AuditEntry.seq >= n - 1)
                                              .order_by(AuditEntry.seq))).all()
                prev = str(await session.scalar(select(AuditEntry.hash).where(AuditEntry.seq == n - 2)))
                planned = []
                for row in rows:
                    details = json.dumps({"rewritten": True})
                    digest = audit.entry_hash(seq=row.seq, at=row.at, actor_id=row.actor_id, action=row.action,
                                              object_type=row.object_type, object_id=row.object_id, details=details,
                                              prev_hash=prev, key=b"attacker" * 4)
                    planned.append((row, details, prev, digest))
                    prev = digest
                for row, *_ in planned:
                    row.hash, row.prev_hash = secrets.token_hex(32), secrets.token_hex(32)
                await session.flush()
                for row, details, prev_hash, digest in planned:
                    row.details, row.prev_hash, row.hash = details, prev_hash, digest
            elif how == "forged":
                last = await session.scalar(select(AuditEntry).where(AuditEntry.seq == n))
                assert last is not None
                fields: dict[str, Any] = dict(seq=n + 1, at=last.at, actor_id=None, action="visit.approved",
                                              object_type="visit", object_id="1", details="{}", prev_hash=last.hash)
                session.add(AuditEntry(**fields, hash=audit.entry_hash(**fields, key=secrets.token_bytes(32))))
    finally:
        await database.dispose()


@pytest.mark.parametrize(("how", "named"), [
    ("last", "entry #{n} is missing"),
    ("last3", "entries #{n2} to #{n} are missing"),
    ("all", "entries #1 to #{n} are missing"),
    ("rewritten", "entry #{n1} was altered or forged"),
    ("forged", "entry #{n_next} was altered or forged"),
])
def test_cli_audit_verify_names_each_tampering(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                               capsys: pytest.CaptureFixture[str], how: str, named: str,
                                               db_urls: TestDatabases) -> None:
    data = tmp_path / "data"
    url = db_urls.url(data / "fieldbot.db", empty=True)
    monkeypatch.setenv("FIELDBOT_DATABASE_URL", url)
    monkeypatch.setenv("FIELDBOT_DATA_DIR", str(data))
    monkeypatch.setenv("FIELDBOT_DEFAULT_LOCALE", "en")
    monkeypatch.delenv("FIELDBOT_BACKUP_DIRS", raising=False)
    for name in ("Li", "Wu", "Zhao", "Qian", "Sun"):
        assert cli.main(["staff", "add", "--name", name, "--role", "admin"]) == 0

    async def checkpoint() -> int:  # what the minute sweep of the running bot leaves
        database = Database(url)
        try:
            settings = Settings(_env_file=None, database_url=url, data_dir=data)
            assert await audit_checkpoint.sweep(Runtime(settings=settings, db=database,
                                                        clock=ManualClock(datetime.now().astimezone()))) == 1
            async with database.read() as session:
                return (await audit.head(session)).seq
        finally:
            await database.dispose()

    n = asyncio.run(checkpoint())
    assert n >= 5
    capsys.readouterr()
    assert cli.main(["audit", "verify"]) == 0
    assert f"head matches the checkpoint at #{n}" in capsys.readouterr().out

    asyncio.run(_tamper(url, how, n))
    assert cli.main(["audit", "verify"]) == 1
    out = capsys.readouterr().out
    assert named.format(n=n, n1=n - 1, n2=n - 2, n_next=n + 1) in out, out


# -- the holes the review found (strict xfails until they were fixed) -------------------------------------

async def _ten_entries(database: Database, clock: ManualClock, tmp_path: Path) -> Runtime:
    settings = settings_for(database, tmp_path / "data", tmp_path / "hq")
    runtime = Runtime(settings=settings, db=database, clock=clock)
    async with database.write() as session:
        for i in range(10):
            await audit.record(session, action="visit.filed", object_type="visit", object_id=i, at=clock.now())
    return runtime


async def _verify(runtime: Runtime) -> audit.VerifyResult:
    async with runtime.db.read() as session:
        return await audit.verify(session, checkpoints=audit_checkpoint.known_heads(runtime.settings))


async def test_a_cut_stays_caught_after_the_checkpoint_file_is_deleted_and_the_minute_sweep_runs(
        database: Database, clock: ManualClock, tmp_path: Path) -> None:
    runtime = await _ten_entries(database, clock, tmp_path)
    assert await audit_checkpoint.sweep(runtime) == 1
    await backup.make_backup(database, runtime.settings, now=clock.now())  # its manifest records head #10
    async with database.write() as session:
        await session.execute(delete(AuditEntry).where(AuditEntry.seq >= 5))
    audit_checkpoint.checkpoint_path(runtime.settings).unlink()
    assert not (await _verify(runtime)).ok  # caught against the backup, as the README says
    clock.advance(timedelta(minutes=1))
    await audit_checkpoint.sweep(runtime)  # the running bot's next minute
    result = await _verify(runtime)
    assert not result.ok and result.problem == "missing" and (result.bad_seq, result.missing_to) == (5, 10)


async def test_an_old_checkpoint_put_back_does_not_hide_a_cut_a_newer_backup_recorded(
        database: Database, clock: ManualClock, tmp_path: Path) -> None:
    runtime = await _ten_entries(database, clock, tmp_path)
    assert await audit_checkpoint.sweep(runtime) == 1
    saved = audit_checkpoint.checkpoint_path(runtime.settings).read_bytes()  # a genuine checkpoint at #10
    async with database.write() as session:
        for i in range(5):
            await audit.record(session, action="visit.approved", object_type="visit", object_id=i, at=clock.now())
    clock.advance(timedelta(minutes=1))
    await audit_checkpoint.sweep(runtime)
    made = await backup.make_backup(database, runtime.settings, now=clock.now())
    assert made.manifest.audit_head.seq == 15
    async with database.write() as session:
        await session.execute(delete(AuditEntry).where(AuditEntry.seq > 10))
    audit_checkpoint.checkpoint_path(runtime.settings).write_bytes(saved)
    result = await _verify(runtime)
    assert not result.ok and (result.bad_seq, result.missing_to) == (11, 15)


async def test_the_next_backup_repairs_or_reports_a_damaged_copy(database: Database, clock: ManualClock,
                                                                 tmp_path: Path) -> None:
    data, hq = tmp_path / "data", tmp_path / "hq"
    settings = settings_for(database, data, hq)
    await MediaStore(data).put(os.urandom(5000), kind="evidence", suffix=".ogg")
    first = await backup.make_backup(database, settings, now=clock.now())
    damaged = first.manifest.files[0].in_folder(hq)
    damaged.write_bytes(damaged.read_bytes()[:-1] + b"!")  # bit rot on the backup disk, same size
    clock.advance(timedelta(days=1))
    try:
        second = await backup.make_backup(database, settings, now=clock.now())
    except backup.BackupError:
        return  # reported as a failed backup: the admins hear of it
    assert backup.check_backup(second.manifest) == []  # or copied again: the new backup is whole


# -- what the fixes bring along ----------------------------------------------------------------------------

ADMIN_CHAT = 9901


async def _admin(database: Database, clock: ManualClock) -> None:
    async with database.write() as session:
        session.add(Staff(name="Admin", role=Role.ADMIN, active=True, created_at=clock.now(),
                          telegram_user_id=ADMIN_CHAT, locale="en"))


async def _alerts(database: Database, kind: str) -> list[str]:
    async with database.read() as session:
        rows = (await session.scalars(select(OutboxMessage).where(
            OutboxMessage.chat_id == ADMIN_CHAT, OutboxMessage.kind == kind).order_by(OutboxMessage.id))).all()
    return [str(r.payload["text"]) for r in rows]


async def _record(database: Database, clock: ManualClock, n: int, action: str = "visit.approved") -> None:
    async with database.write() as session:
        for i in range(n):
            await audit.record(session, action=action, object_type="visit", object_id=i, at=clock.now())


async def test_the_sweep_keeps_the_known_head_alerts_once_a_day_and_never_moves_back(
        database: Database, clock: ManualClock, tmp_path: Path) -> None:
    runtime = await _ten_entries(database, clock, tmp_path)
    await _admin(database, clock)
    await backup.make_backup(database, runtime.settings, now=clock.now())  # head #10, and no checkpoint file yet
    path = audit_checkpoint.checkpoint_path(runtime.settings)
    assert not path.exists()
    async with database.write() as session:
        await session.execute(delete(AuditEntry).where(AuditEntry.seq >= 5))

    for _ in range(3):  # three minutes: one alert that day
        clock.advance(timedelta(minutes=1))
        assert await audit_checkpoint.sweep(runtime) == 0
    kept = audit_checkpoint.read(path)
    assert kept is not None and kept.seq == 10  # the backup's head, recorded beside the database
    alerts = await _alerts(database, audit_checkpoint.ALERT_KIND)
    assert len(alerts) == 1 and "entries #5 to #10 are gone" in alerts[0] and "the database now has 4" in alerts[0]

    await _record(database, clock, 8)  # the bot writes on: #5 to #12, not the entries the backup recorded
    clock.advance(timedelta(minutes=1))
    assert await audit_checkpoint.sweep(runtime) == 0
    assert audit_checkpoint.read(path) == kept  # not moved to #12
    alerts = await _alerts(database, audit_checkpoint.ALERT_KIND)
    assert len(alerts) == 2 and alerts[1].startswith("⚠️ The audit log was rewritten: entry #10 is not the one")

    for snapshot in backup_manifest.snapshot_folders(tmp_path / "hq"):  # the backup pruned, or taken away
        for item in snapshot.iterdir():
            item.unlink()
        snapshot.rmdir()
    result = await _verify(runtime)
    assert not result.ok and (result.problem, result.bad_seq) == ("diverged", 10)  # the file still knows

    clock.advance(timedelta(days=1))
    assert await audit_checkpoint.sweep(runtime) == 0
    assert len(await _alerts(database, audit_checkpoint.ALERT_KIND)) == 3  # told again the next day


async def test_an_approved_restore_of_an_older_backup_is_no_cut(database: Database, clock: ManualClock,
                                                               tmp_path: Path, db_urls: TestDatabases) -> None:
    runtime = await _ten_entries(database, clock, tmp_path)
    older = await backup.make_backup(database, runtime.settings, now=clock.now())  # head #10 (its entry: #11)
    clock.advance(timedelta(hours=1))
    await _record(database, clock, 5)
    newer = await backup.make_backup(database, runtime.settings, now=clock.now())  # head #16, same folder
    assert (older.manifest.audit_head.seq, newer.manifest.audit_head.seq) == (10, 16)

    clock.advance(timedelta(hours=1))  # head office approves going back to the older one
    target_url = db_urls.url(tmp_path / "restored" / "fieldbot.db", empty=True)
    restored = tmp_path / "restored-data"
    await backup.restore(runtime.settings, source=tmp_path / "hq" / "snapshots" / older.backup_id,
                         target_url=target_url, data_dir=restored, by="test", now=clock.now())
    target = Database(target_url)
    try:
        again = Runtime(settings=settings_for(target, restored, tmp_path / "hq"), db=target, clock=clock)
        result = await _verify(again)  # #11 (the restore's entry): backup #16 belongs to the history replaced
        assert result.ok and result.checkpoint is not None and result.checkpoint.seq == 11
        await _record(target, clock, 2)
        clock.advance(timedelta(minutes=1))
        assert await audit_checkpoint.sweep(again) == 1
        clock.advance(timedelta(minutes=1))
        await backup.make_backup(target, again.settings, now=clock.now())  # head #13, made after the restore
        await _record(target, clock, 1)
        clock.advance(timedelta(minutes=1))
        assert await audit_checkpoint.sweep(again) == 1
        result = await _verify(again)
        assert result.ok and result.checkpoint is not None and result.checkpoint.seq == 15

        path = audit_checkpoint.checkpoint_path(again.settings)
        path.unlink()  # the restore's mark goes with the file: verify errs on the side of a cut ...
        result = await _verify(again)
        assert not result.ok and (result.bad_seq, result.missing_to) == (16, 16)
        clock.advance(timedelta(minutes=1))
        assert await audit_checkpoint.sweep(again) == 1  # ... until the sweep finds the restore's entry
        result = await _verify(again)
        assert result.ok and result.checkpoint is not None and result.checkpoint.seq == 15

        async with target.write() as session:  # a cut after the restore is still caught
            await session.execute(delete(AuditEntry).where(AuditEntry.seq >= 14))
        clock.advance(timedelta(minutes=1))
        assert await audit_checkpoint.sweep(again) == 0
        result = await _verify(again)
        assert not result.ok and (result.bad_seq, result.missing_to) == (14, 15)
    finally:
        await target.dispose()


async def test_a_restore_entry_added_without_the_key_retires_no_backup(database: Database, clock: ManualClock,
                                                                      tmp_path: Path) -> None:
    runtime = await _ten_entries(database, clock, tmp_path)
    await backup.make_backup(database, runtime.settings, now=clock.now())  # head #10
    clock.advance(timedelta(hours=1))
    async with database.write() as session:
        await session.execute(delete(AuditEntry).where(AuditEntry.seq >= 5))
        last = await session.scalar(select(AuditEntry).where(AuditEntry.seq == 4))
        assert last is not None
        fields: dict[str, Any] = dict(seq=5, at=clock.now(), actor_id=None, action=audit_checkpoint.RESTORE_ACTION,
                                      object_type="backup", object_id="x", details="{}", prev_hash=last.hash)
        session.add(AuditEntry(**fields, hash=audit.entry_hash(**fields, key=secrets.token_bytes(32))))
    assert await audit_checkpoint.sweep(runtime) == 0
    kept = audit_checkpoint.read(audit_checkpoint.checkpoint_path(runtime.settings))
    assert kept is not None and kept.seq == 10


async def test_a_damaged_copy_is_replaced_counted_and_the_admins_told(database: Database, clock: ManualClock,
                                                                      tmp_path: Path) -> None:
    data, hq = tmp_path / "data", tmp_path / "hq"
    settings = settings_for(database, data, hq)
    await _admin(database, clock)
    media = MediaStore(data)
    for _ in range(3):
        await media.put(os.urandom(5000), kind="evidence", suffix=".ogg")
    first = await backup.make_backup(database, settings, now=clock.now())
    assert first.repaired == [] and first.copied == 3
    rotten, short = (entry.in_folder(hq) for entry in first.manifest.files[:2])
    body = rotten.read_bytes()
    rotten.write_bytes(body[:-1] + bytes([body[-1] ^ 1]))  # one bit, same size
    short.write_bytes(short.read_bytes()[:100])

    clock.advance(timedelta(days=1))
    second = await backup.make_backup(database, settings, now=clock.now())
    assert sorted(second.repaired) == sorted([str(rotten), str(short)]) and second.copied == 2
    assert backup.check_backup(second.manifest) == []
    async with database.read() as session:
        made = await session.scalar(select(AuditEntry).where(AuditEntry.action == "backup.made")
                                    .order_by(AuditEntry.seq.desc()).limit(1))
    assert made is not None and sorted(json.loads(made.details)["repaired"]) == sorted([str(rotten), str(short)])
    alerts = await _alerts(database, "backup_alert")
    assert len(alerts) == 1 and "found 2 damaged file copies" in alerts[0]

    clock.advance(timedelta(days=1))
    third = await backup.make_backup(database, settings, now=clock.now())  # whole again: nothing to say
    assert (third.repaired, third.copied) == ([], 0)
    assert len(await _alerts(database, "backup_alert")) == 1


async def test_status_shows_when_the_sweeps_last_ran_and_a_cut(database: Database, clock: ManualClock,
                                                               tmp_path: Path) -> None:
    en, tz = translator("en"), ZoneInfo("Asia/Shanghai")
    runtime = await _ten_entries(database, clock, tmp_path)
    async with database.read() as session:
        state = await health.status(session, runtime.settings, clock.now())
    assert state.sweeps == health.SweepRuns(None, None, None, None) and state.last_sweep_at is None
    shown = health.lines(en, state, tz)
    assert "Sweeps: no run recorded yet" in shown and "· backup (daily): not run yet" in shown

    start = clock.now()
    await retention.sweep(runtime)  # the month's run (nothing due)
    clock.advance(timedelta(minutes=2))
    await backup.make_backup(database, runtime.settings, now=clock.now())
    clock.advance(timedelta(minutes=3))
    await health.sweep(runtime)
    clock.advance(timedelta(minutes=1))
    assert await audit_checkpoint.sweep(runtime) == 1
    clock.advance(timedelta(minutes=1))
    assert await audit_checkpoint.sweep(runtime) == 0  # nothing new to write: it ran all the same
    clock.advance(timedelta(seconds=30))
    now = clock.now()
    async with database.read() as session:
        state = await health.status(session, runtime.settings, now)
    runs = state.sweeps
    assert (runs.retention, runs.backup, runs.health) == (start, start + timedelta(minutes=2),
                                                           start + timedelta(minutes=5))
    assert runs.checkpoint is not None and abs(runs.checkpoint - (start + timedelta(minutes=7))) < timedelta(seconds=1)
    assert state.last_sweep_at == runs.checkpoint
    assert (state.audit_head, state.audit_checkpoint, state.audit_checkpoint_problem) == (11, 11, None)
    assert [key for key, _ in health.problems(state) if key.startswith("status.check.audit")] == []
    shown = health.lines(en, state, tz)
    assert any(line.startswith("Sweeps: last run") and "30 seconds ago" in line for line in shown), shown
    assert any(line.startswith("· retention purge (monthly): last ran") and "8 minutes ago" in line
               for line in shown), shown
    assert any(line.startswith("· audit checkpoint (every minute): last ran") for line in shown), shown
    assert "Audit log: head at entry 11; checkpoint at entry 11" in shown
    assert state.as_json()["sweeps"]["backup"] == (start + timedelta(minutes=2)).isoformat()

    async with database.write() as session:  # a cut while the bot runs: status --check says so
        await session.execute(delete(AuditEntry).where(AuditEntry.seq >= 9))
    async with database.read() as session:
        state = await health.status(session, runtime.settings, now)
    assert state.audit_checkpoint_problem == "cut"
    line = health.problem_line(en, state, tz)
    assert "the audit log has 8 entries but its checkpoint recorded 11" in line, line


async def test_a_checkpoint_it_cannot_trust_is_told_to_the_admins_once_a_day(database: Database, clock: ManualClock,
                                                                             tmp_path: Path) -> None:
    runtime = await _ten_entries(database, clock, tmp_path)
    await _admin(database, clock)
    assert await audit_checkpoint.sweep(runtime) == 1
    path = audit_checkpoint.checkpoint_path(runtime.settings)
    data = json.loads(path.read_text())
    data["seq"] = 3
    path.write_text(json.dumps(data))
    for _ in range(2):
        clock.advance(timedelta(minutes=1))
        assert await audit_checkpoint.sweep(runtime) == 0
    alerts = await _alerts(database, audit_checkpoint.ALERT_KIND)
    assert len(alerts) == 1 and alerts[0].startswith("⚠️ The audit checkpoint file cannot be trusted")
    async with database.read() as session:
        state = await health.status(session, runtime.settings, clock.now())
    assert state.audit_checkpoint_problem == "untrusted" and state.audit_checkpoint is None


async def test_the_status_command_says_when_the_sweeps_last_ran(harness: BotHarness, office: dict[str, int]) -> None:
    runtime = harness.runtime
    await health.sweep(runtime)
    assert await audit_checkpoint.sweep(runtime) == 1
    harness.clock.advance(timedelta(minutes=2))
    reply = harness.replies(await harness.send(harness.updates.command(ADMIN, "/status")), ADMIN.id)
    assert len(reply) == 1
    lines = reply[0].splitlines()
    assert any(line.startswith("Sweeps: last run") and "2 minutes ago" in line for line in lines), lines
    assert any(line.startswith("· health check (every minute): last ran") for line in lines), lines
    assert any(line.startswith("· audit checkpoint (every minute): last ran") for line in lines), lines
    assert "· backup (daily): not run yet" in lines and "· retention purge (monthly): not run yet" in lines

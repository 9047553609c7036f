"""The keyed audit chain and its checkpoint: a cut-off tail, a rewritten tail and a forged entry are named."""

from __future__ import annotations

import json
import secrets
from pathlib import Path

import pytest
from sqlalchemy import delete, select

from bot import cli
from bot.clock import ManualClock
from bot.config import Settings
from bot.runtime import Runtime
from bot.services import audit, audit_checkpoint, backup, backup_manifest
from bot.storage.db import Database
from bot.storage.models import AuditEntry
from tests.conftest import TestDatabases

ENTRIES = 10


@pytest.fixture
async def logged(any_database: Database, tmp_path: Path, clock: ManualClock) -> Runtime:
    """Ten entries and a checkpoint of them beside the database (what the minute sweep leaves)."""
    settings = Settings(_env_file=None, database_url=any_database.url, data_dir=tmp_path / "data")
    runtime = Runtime(settings=settings, db=any_database, clock=clock)
    async with any_database.write() as session:
        for i in range(ENTRIES):
            await audit.record(session, action="visit.filed", object_type="visit", object_id=i, actor_id=1,
                               details={"n": i}, at=clock.now())
    assert await audit_checkpoint.sweep(runtime) == 1
    return runtime


async def verify(runtime: Runtime) -> audit.VerifyResult:
    async with runtime.db.read() as session:
        return await audit.verify(session, checkpoints=audit_checkpoint.known_heads(runtime.settings))


async def drop_from(runtime: Runtime, seq: int) -> None:
    async with runtime.db.write() as session:
        await session.execute(delete(AuditEntry).where(AuditEntry.seq >= seq))


async def test_intact_log_matches_its_checkpoint(logged: Runtime) -> None:
    result = await verify(logged)
    assert result.ok and result.checked == ENTRIES and result.checkpoint is not None
    assert result.checkpoint.seq == ENTRIES and "head matches the checkpoint at #10" in result.describe()


@pytest.mark.parametrize(("first_gone", "named"), [
    (ENTRIES, "entry #10 is missing"),
    (ENTRIES - 2, "entries #8 to #10 are missing"),
    (1, "entries #1 to #10 are missing"),
])
async def test_a_cut_off_tail_is_named(logged: Runtime, first_gone: int, named: str) -> None:
    await drop_from(logged, first_gone)
    result = await verify(logged)
    assert not result.ok and result.problem == "missing"
    assert (result.bad_seq, result.missing_to) == (first_gone, ENTRIES)
    assert named in result.describe() and "recorded 10 entries" in result.describe()


async def rewrite(runtime: Runtime, from_seq: int, key: bytes | None) -> None:
    """Someone with the database but not the audit key rewrites the tail and re-chains it consistently
    (with a key of their own, or with plain SHA-256 as before the log was keyed)."""
    async with runtime.db.write() as session:
        rows = (await session.scalars(select(AuditEntry).where(AuditEntry.seq >= from_seq)
                                      .order_by(AuditEntry.seq))).all()
        prev = (await session.scalar(select(AuditEntry.hash).where(AuditEntry.seq == from_seq - 1))) or audit.GENESIS
        new_hashes = []
        for row in rows:
            row.details = json.dumps({"n": "rewritten"})
            fields = dict(seq=row.seq, at=row.at, actor_id=row.actor_id, action=row.action,
                          object_type=row.object_type, object_id=row.object_id, details=row.details, prev_hash=prev)
            prev = audit.entry_hash(**fields, key=key) if key else audit.legacy_hash(**fields)
            new_hashes.append((row, fields["prev_hash"], prev))
        for row, _, _ in new_hashes:  # free the unique hashes first
            row.hash, row.prev_hash = secrets.token_hex(32), secrets.token_hex(32)
        await session.flush()
        for row, prev_hash, digest in new_hashes:
            row.prev_hash, row.hash = prev_hash, digest


@pytest.mark.parametrize("attacker_key", [b"k" * 32, None], ids=["own-key", "plain-sha256"])
async def test_a_rewritten_tail_is_caught(logged: Runtime, attacker_key: bytes | None) -> None:
    await rewrite(logged, 8, attacker_key)
    result = await verify(logged)
    assert not result.ok and result.problem == "altered" and result.bad_seq == 8
    assert "entry #8 was altered or forged" in result.describe()


async def test_a_forged_entry_appended_is_caught(logged: Runtime, clock: ManualClock) -> None:
    async with logged.db.write() as session:
        last = await session.scalar(select(AuditEntry).order_by(AuditEntry.seq.desc()).limit(1))
        assert last is not None
        fields = dict(seq=last.seq + 1, at=clock.now(), actor_id=None, action="visit.approved", object_type="visit",
                      object_id="3", details="{}", prev_hash=last.hash)
        session.add(AuditEntry(**fields, hash=audit.entry_hash(**fields, key=secrets.token_bytes(32))))
    result = await verify(logged)
    assert not result.ok and result.problem == "altered" and result.bad_seq == ENTRIES + 1


async def test_the_checkpoint_does_not_follow_a_cut(logged: Runtime) -> None:
    """After a cut the minute sweep keeps the old checkpoint, so the cut stays visible."""
    await drop_from(logged, ENTRIES - 2)
    assert await audit_checkpoint.sweep(logged) == 0
    kept = audit_checkpoint.read(audit_checkpoint.checkpoint_path(logged.settings))
    assert kept is not None and kept.seq == ENTRIES
    assert not (await verify(logged)).ok


async def test_an_edited_checkpoint_is_not_trusted(logged: Runtime, caplog: pytest.LogCaptureFixture) -> None:
    path = audit_checkpoint.checkpoint_path(logged.settings)
    data = json.loads(path.read_text())
    data["seq"] = 3  # to hide a cut of entries 4 to 10
    path.write_text(json.dumps(data))
    with pytest.raises(audit_checkpoint.CheckpointError):
        audit_checkpoint.read(path)
    assert audit_checkpoint.known_heads(logged.settings) == []
    assert "audit checkpoint ignored" in caplog.text


async def test_a_deleted_checkpoint_falls_back_to_the_backups(logged: Runtime, tmp_path: Path,
                                                              clock: ManualClock) -> None:
    logged.settings.backup_dirs = [tmp_path / "hq"]
    await backup.make_backup(logged.db, logged.settings, now=clock.now())  # its manifest keeps head #10
    audit_checkpoint.checkpoint_path(logged.settings).unlink()
    await drop_from(logged, 6)
    result = await verify(logged)
    assert not result.ok and (result.bad_seq, result.missing_to) == (6, ENTRIES)
    assert result.checkpoint is not None and result.checkpoint.source.startswith("backup ")


async def test_a_log_written_before_it_was_keyed_still_verifies(database: Database, clock: ManualClock) -> None:
    async with database.write() as session:
        prev = audit.GENESIS
        for seq in (1, 2):  # as the unkeyed log wrote them
            fields = dict(seq=seq, at=clock.now(), actor_id=None, action="old", object_type="x", object_id=None,
                          details="{}", prev_hash=prev)
            prev = audit.legacy_hash(**fields)
            session.add(AuditEntry(**fields, hash=prev))
        await session.flush()
        await audit.record(session, action="new", object_type="x", at=clock.now())
    async with database.read() as session:
        result = await audit.verify(session)
    assert result.ok and result.checked == 3 and result.legacy == 2


def test_cli_names_the_missing_entries(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, db_urls: TestDatabases,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "data"
    url = db_urls.url(data / "fieldbot.db", empty=True)
    monkeypatch.setenv("FIELDBOT_DATABASE_URL", url)
    monkeypatch.setenv("FIELDBOT_DATA_DIR", str(data))
    monkeypatch.setenv("FIELDBOT_BACKUP_DIRS", str(tmp_path / "hq"))
    assert cli.main(["staff", "add", "--name", "Li", "--role", "admin"]) == 0
    assert cli.main(["staff", "add", "--name", "Wu", "--role", "collector", "--team", "A"]) == 0
    assert cli.main(["backup"]) == 0
    kept = backup_manifest.newest(tmp_path / "hq")
    assert kept is not None and kept.audit_head.seq >= 2
    head = kept.audit_head.seq
    capsys.readouterr()
    assert cli.main(["audit", "verify"]) == 0  # no checkpoint file yet: the backup's manifest is the checkpoint
    assert f"head matches the checkpoint at #{head} (backup {kept.backup_id}" in capsys.readouterr().out

    db_urls.fetch(url, "DELETE FROM audit_log WHERE seq >= ?", head)
    assert cli.main(["audit", "verify"]) == 1
    assert f"entry #{head} is missing" in capsys.readouterr().out


def test_cli_fails_on_a_checkpoint_it_cannot_trust(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                   db_urls: TestDatabases,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    """Cutting the tail and spoiling the checkpoint file (without the key) does not make verify say intact."""
    data = tmp_path / "data"
    url = db_urls.url(data / "fieldbot.db", empty=True)
    monkeypatch.setenv("FIELDBOT_DATABASE_URL", url)
    monkeypatch.setenv("FIELDBOT_DATA_DIR", str(data))
    monkeypatch.setenv("FIELDBOT_DEFAULT_LOCALE", "en")
    for name in ("Li", "Wu", "Zhao"):
        assert cli.main(["staff", "add", "--name", name, "--role", "admin"]) == 0
    path = data / audit_checkpoint.FILE_NAME
    audit_checkpoint.write(path, audit.Head(seq=3, hash=db_urls.fetch(
        url, "SELECT hash FROM audit_log WHERE seq = 3")[0][0]))
    capsys.readouterr()
    assert cli.main(["audit", "verify"]) == 0
    assert "head matches the checkpoint at #3" in capsys.readouterr().out

    db_urls.fetch(url, "DELETE FROM audit_log WHERE seq >= 2")
    for spoiled in ('{"seq": 1, "hash": "x", "at": null, "mac": "y"}', "not json"):
        path.write_text(spoiled)
        assert cli.main(["audit", "verify"]) == 1
        out = capsys.readouterr().out
        assert "checkpoint cannot be trusted" in out and str(path) in out

"""Everything fieldbot writes is its own user's alone: 0600 files, 0700 folders, whatever the umask."""

from __future__ import annotations

import dataclasses
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot import cli
from bot.storage import keys
from bot.storage.db import Database
from bot.storage.media import MediaStore
from bot.storage.private import write_private
from tests.case_files import sample_cases, write_cases_csv
from tests.conftest import TestDatabases


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture(autouse=True)
def usual_umask() -> Iterator[None]:
    """The usual umask (022) makes new files 0644 and folders 0755 unless the code says otherwise."""
    old = os.umask(0o022)
    yield
    os.umask(old)


@pytest.mark.sqlite_only("the SQLite database file and its WAL file's modes")
async def test_database_file_and_its_wal_are_owner_only(tmp_path: Path) -> None:
    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'new' / 'fieldbot.db'}")
    try:
        async with database.write() as session:
            await session.connection()
        async with database.engine.begin() as conn:
            await conn.exec_driver_sql("CREATE TABLE t (x)")
            await conn.exec_driver_sql("INSERT INTO t VALUES (1)")
        assert mode(tmp_path / "new") == 0o700
        assert mode(tmp_path / "new" / "fieldbot.db") == 0o600
        assert mode(tmp_path / "new" / "fieldbot.db-wal") == 0o600
    finally:
        await database.dispose()


async def test_media_files_and_folders_are_owner_only(tmp_path: Path) -> None:
    store = MediaStore(tmp_path / "data")
    plain = await store.put(b"photo bytes", kind="evidence", suffix=".jpg")
    sealed = await store.put(b"bank file bytes", kind="imports", suffix=".csv", sealed=True)
    for blob in (plain, sealed):
        path = store.path(blob.path)
        assert mode(path) == 0o600
        assert mode(path.parent) == 0o700 and mode(path.parent.parent) == 0o700
    assert mode(tmp_path / "data" / "keys" / keys.FILE_KEY) == 0o600 and mode(tmp_path / "data" / "keys") == 0o700
    copy = await store.copy_to(plain, tmp_path / "nas")
    assert mode(copy) == 0o600 and mode(copy.parent) == 0o700


def test_a_new_key_is_owner_only_and_kept(tmp_path: Path) -> None:
    first = keys.load_or_create(tmp_path / "keys", keys.AUDIT_KEY)
    assert mode(tmp_path / "keys" / keys.AUDIT_KEY) == 0o600
    assert keys.load_or_create(tmp_path / "keys", keys.AUDIT_KEY) == first and len(first) == 32


def test_write_private_replaces_atomically(tmp_path: Path) -> None:
    target = tmp_path / "out" / "report.xlsx"
    write_private(target, b"one")
    write_private(target, b"two")
    assert target.read_bytes() == b"two" and mode(target) == 0o600
    assert [p.name for p in target.parent.iterdir()] == ["report.xlsx"]


def test_import_rejects_file_and_backup_are_owner_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                      db_urls: TestDatabases) -> None:
    data = tmp_path / "data"
    monkeypatch.setenv("FIELDBOT_DATABASE_URL", db_urls.url(data / "fieldbot.db", empty=True))
    monkeypatch.setenv("FIELDBOT_DATA_DIR", str(data))
    monkeypatch.setenv("FIELDBOT_BACKUP_DIRS", str(tmp_path / "hq"))
    rows = sample_cases()
    rows[0] = dataclasses.replace(rows[0], phone="not a phone")  # one reject
    source = write_cases_csv(tmp_path / "bank.csv", rows)
    assert cli.main(["import", str(source), "--bank", "招商银行"]) == 3
    os.umask(0o022)  # the command set 077 for the process; the files below must be 0600 on their own
    assert mode(tmp_path / "bank.rejects.csv") == 0o600
    if not db_urls.postgres:  # a SQLite file; PostgreSQL keeps its files itself
        assert mode(data / "fieldbot.db") == 0o600
    assert cli.main(["backup"]) == 0
    written = [p for p in (tmp_path / "hq").rglob("*")]
    assert written and all(mode(p) == (0o700 if p.is_dir() else 0o600) for p in written)
    assert all(mode(p) == (0o700 if p.is_dir() else 0o600) for p in (data / "media").rglob("*"))

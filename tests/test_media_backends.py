"""The media store on both backends: the local folder and an S3-compatible object store.

The object store is moto's server mode, started by these tests on 127.0.0.1 and a free port: it stands
in for a real store (MinIO, Ceph, Alibaba OSS, Tencent COS), spoken to over HTTP through aiobotocore
exactly as a real one would be.
"""

from __future__ import annotations

import hashlib
import socket
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from bot import cli
from bot.clock import ManualClock
from bot.config import Settings
from bot.sandbox.harness import BotHarness
from bot.services import backup, backup_manifest, outbox
from bot.storage.blobs import (
    Backend,
    LocalBackend,
    MediaCorrupt,
    MediaMissing,
    MediaUnavailable,
    S3Backend,
    S3Config,
    S3Location,
)
from bot.storage.db import Database
from bot.storage.media import MediaStore
from bot.storage.models import Evidence, OutboxMessage, Visit
from tests.field_office import BOSS, PHOTO_1, PHOTO_2, VOICE
from tests.test_visit_flow import walk

boto3 = pytest.importorskip("boto3")
moto_server = pytest.importorskip("moto.server")

REGION = "us-east-1"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    port = _free_port()
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


def _client(endpoint: str) -> Any:
    return boto3.client("s3", endpoint_url=endpoint, region_name=REGION, aws_access_key_id="testing",
                        aws_secret_access_key="testing")


@pytest.fixture
def bucket(s3_endpoint: str) -> str:
    name = f"fieldbot-{uuid.uuid4().hex[:12]}"
    _client(s3_endpoint).create_bucket(Bucket=name)
    return name


@pytest.fixture
def s3_env(monkeypatch: pytest.MonkeyPatch, s3_endpoint: str, bucket: str) -> str:
    url = f"s3://{bucket}/office-1"
    for name, value in {"FIELDBOT_MEDIA_URL": url, "FIELDBOT_S3_ENDPOINT": s3_endpoint,
                        "FIELDBOT_S3_REGION": REGION, "FIELDBOT_S3_ACCESS_KEY": "testing",
                        "FIELDBOT_S3_SECRET_KEY": "testing"}.items():
        monkeypatch.setenv(name, value)
    return url


def _s3(endpoint: str, bucket: str) -> S3Backend:
    return S3Backend(S3Location.parse(f"s3://{bucket}/office-1"),
                     S3Config(endpoint=endpoint, region=REGION, access_key="testing", secret_key="testing"))


@pytest.fixture(params=["local", "s3"])
async def backend(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Backend]:
    if request.param == "local":
        yield LocalBackend(tmp_path)
        return
    endpoint = request.getfixturevalue("s3_endpoint")
    store = _s3(endpoint, request.getfixturevalue("bucket"))
    try:
        yield store
    finally:
        await store.close()


def _overwrite(backend: Backend, key: str, data: bytes) -> None:
    """Change a stored file behind the store's back (bit rot, a hand edit, a bad restore)."""
    if isinstance(backend, LocalBackend):
        backend.path(key).write_bytes(data)
    else:
        assert isinstance(backend, S3Backend) and backend.config.endpoint is not None
        _client(backend.config.endpoint).put_object(Bucket=backend.location.bucket,
                                                    Key=backend.location.prefix + key, Body=data)


async def test_put_get_list_size_delete_and_missing(backend: Backend) -> None:
    data = b"a photo of the door"
    key = f"media/evidence/{hashlib.sha256(data).hexdigest()[:2]}/{hashlib.sha256(data).hexdigest()}.jpg"
    assert not await backend.exists(key) and await backend.size(key) is None
    await backend.put(key, data)
    assert await backend.get(key) == data
    assert await backend.exists(key) and await backend.size(key) == len(data)
    await backend.put("media/reports/00/other.png", b"chart")
    assert await backend.keys("media/evidence/") == [key]
    assert await backend.keys("media/") == sorted([key, "media/reports/00/other.png"])
    await backend.delete(key)
    await backend.delete(key)  # not there: nothing happens
    with pytest.raises(MediaMissing) as missing:
        await backend.get(key)
    assert key in str(missing.value) and isinstance(missing.value, FileNotFoundError)
    with pytest.raises(ValueError):
        await backend.get("media/../keys/files.key")


async def test_a_changed_file_is_refused_naming_its_key(backend: Backend, tmp_path: Path) -> None:
    store = MediaStore(tmp_path, keys_dir=tmp_path / "keys", backend=backend)
    plain = await store.put(b"recording", kind="evidence", suffix=".ogg")
    sealed = await store.put(b"bank file with full ID numbers", kind="imports", suffix=".csv", sealed=True)
    assert await store.read(plain.path) == b"recording"
    assert await store.read(sealed.path) == b"bank file with full ID numbers"
    assert await store.put(b"recording", kind="evidence", suffix=".ogg") == plain  # content-addressed: once
    assert (await store.put(b"bank file with full ID numbers", kind="imports", suffix=".csv", sealed=True)
            ).stored_sha256 == sealed.stored_sha256  # kept as it was, not sealed again under a new nonce

    _overwrite(backend, plain.path, b"recordinG")  # same size, other bytes
    with pytest.raises(MediaCorrupt) as changed:
        await store.read(plain.path)
    assert plain.path in str(changed.value) and changed.value.actual == hashlib.sha256(b"recordinG").hexdigest()
    _overwrite(backend, sealed.path, b"\x00" * 40)
    with pytest.raises(MediaCorrupt) as broken:
        await store.read(sealed.path)
    assert sealed.path in str(broken.value)


async def test_local_files_stay_owner_only(tmp_path: Path) -> None:
    store = MediaStore(tmp_path)
    blob = await store.put(b"photo", kind="evidence", suffix=".jpg")
    assert store.path(blob.path).stat().st_mode & 0o777 == 0o600
    assert store.path(blob.path).parent.stat().st_mode & 0o777 == 0o700


@pytest.fixture
def harness(s3_env: str, harness: BotHarness) -> BotHarness:
    """The usual harness, its media in the bucket (FIELDBOT_MEDIA_URL is set before it starts)."""
    return harness


async def test_a_visit_on_the_object_store_and_the_supervisors_files_button(
        harness: BotHarness, field: dict[str, int], tmp_path: Path, s3_endpoint: str, bucket: str) -> None:
    media = harness.runtime.media
    assert isinstance(media.backend, S3Backend) and media.url == f"s3://{bucket}/office-1"
    await walk(harness, field)
    async with harness.db.read() as session:
        visit_id = (await session.scalars(select(Visit.id))).one()
        evidence = list(await session.scalars(select(Evidence).order_by(Evidence.id)))
    contents = [PHOTO_1, PHOTO_2, VOICE]
    assert [e.sha256 for e in evidence] == [hashlib.sha256(c).hexdigest() for c in contents]
    # the files are in the bucket, under the prefix, and not in the data dir
    names = {o["Key"] for o in _client(s3_endpoint).list_objects_v2(Bucket=bucket)["Contents"]}
    assert {f"office-1/{e.path}" for e in evidence} <= names
    assert not (tmp_path / "media" / "evidence").exists()

    assert await harness.deliver_outbox() >= 1  # the review request
    calls = await harness.send(harness.updates.button(BOSS, f"rv:files:{visit_id}"))
    sent = [c.params["document"] for c in calls if c.method == "sendDocument"]
    assert [d["sha256"] for d in sent] == [e.sha256 for e in evidence]  # photo, photo, voice: the very bytes

    # the recording changed in the bucket: refused, named, and the supervisor is told it is lost
    voice = evidence[2]
    assert voice.path is not None
    _client(s3_endpoint).put_object(Bucket=bucket, Key=f"office-1/{voice.path}", Body=b"OggS not the recording")
    with pytest.raises(MediaCorrupt) as refused:
        await media.read(voice.path)
    assert voice.path in str(refused.value)
    calls = await harness.send(harness.updates.button(BOSS, f"rv:files:{visit_id}"))
    assert [c.params["document"]["sha256"] for c in calls if c.method == "sendDocument"] == [
        e.sha256 for e in evidence[:2]]
    assert any("1" in text for text in harness.replies(calls, BOSS.id))
    await media.close()


def test_migrate_copies_the_folder_once_and_checks_every_copy(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, s3_endpoint: str, bucket: str,
        capsys: pytest.CaptureFixture[str]) -> None:
    import asyncio

    data = tmp_path / "data"
    local = MediaStore(data)
    blobs = [asyncio.run(local.put(f"photo {n}".encode(), kind="evidence", suffix=".jpg")) for n in range(5)]
    blobs.append(asyncio.run(local.put(b"the bank's file", kind="imports", suffix=".csv", sealed=True)))
    for name, value in {"FIELDBOT_DATA_DIR": str(data),  # the command opens no database
                        "FIELDBOT_TOKEN": "1:x", "FIELDBOT_S3_ENDPOINT": s3_endpoint,
                        "FIELDBOT_S3_ACCESS_KEY": "testing", "FIELDBOT_S3_SECRET_KEY": "testing",
                        "FIELDBOT_DEFAULT_LOCALE": "en"}.items():
        monkeypatch.setenv(name, value)
    target = f"s3://{bucket}/moved"

    assert cli.main(["media", "migrate", "--to", target]) == 0
    out = capsys.readouterr().out
    assert "Copied 6 file(s)" in out and "0 already there" in out and f"FIELDBOT_MEDIA_URL={target}" in out
    client = _client(s3_endpoint)
    for blob in blobs:
        body = client.get_object(Bucket=bucket, Key=f"moved/{blob.path}")["Body"].read()
        assert hashlib.sha256(body).hexdigest() == blob.disk_sha256

    assert cli.main(["media", "migrate", "--to", target]) == 0  # again: nothing to copy
    assert "Copied 0 file(s)" in capsys.readouterr().out

    # a copy damaged in the store is copied again; a file damaged in the folder is refused, named
    client.put_object(Bucket=bucket, Key=f"moved/{blobs[0].path}", Body=b"photo X")
    local.path(blobs[1].path).write_bytes(b"photo Y")
    assert cli.main(["media", "migrate", "--to", target]) == 1
    captured = capsys.readouterr()
    assert "Copied 1 file(s)" in captured.out and "1 refused" in captured.out
    assert blobs[1].path in captured.err
    body = client.get_object(Bucket=bucket, Key=f"moved/{blobs[0].path}")["Body"].read()
    assert body == b"photo 0"
    assert cli.main(["media", "migrate", "--to", "/somewhere/else"]) == 2


async def test_backup_reads_the_object_store_and_restore_puts_the_files_back(
        database: Database, tmp_path: Path, clock: ManualClock, s3_endpoint: str, bucket: str) -> None:
    if not database.sqlite:
        pytest.skip("restores into a SQLite file")
    hq = tmp_path / "hq"
    settings = Settings(_env_file=None, database_url=database.url, data_dir=tmp_path / "data", backup_dirs=[hq],
                        media_url=f"s3://{bucket}/office-1", s3_endpoint=s3_endpoint, s3_access_key="testing",
                        s3_secret_key="testing")
    store = MediaStore.from_settings(settings)
    photo = await store.put(b"a photo of the door", kind="evidence", suffix=".jpg")
    sealed = await store.put(b"the bank's file", kind="imports", suffix=".csv", sealed=True)
    first = await backup.make_backup(database, settings, now=clock.now(), actor="test")
    assert first.copied == 2 and not (tmp_path / "data" / "media").exists()
    newest = backup_manifest.newest(hq)
    assert newest is not None and backup.check_backup(newest) == []
    assert {e.path for e in newest.files} == {photo.path, sealed.path}

    (hq / photo.path.removeprefix("media/")).write_bytes(b"a photo of the doom")  # the backup copy rots
    clock.advance(minutes=1)
    second = await backup.make_backup(database, settings, now=clock.now(), actor="test")
    assert second.copied == 1 and len(second.repaired) == 1

    voice = await store.put(b"OggS a recording", kind="evidence", suffix=".ogg")
    _client(s3_endpoint).put_object(Bucket=bucket, Key=f"office-1/{voice.path}", Body=b"OggS changed")
    clock.advance(minutes=1)
    with pytest.raises(backup.BackupError) as refused:
        await backup.make_backup(database, settings, now=clock.now(), actor="test")
    assert voice.path in str(refused.value)

    elsewhere = settings.model_copy(update={"media_url": f"s3://{bucket}/restored"})
    restored = await backup.restore(elsewhere, source=hq, target_url=f"sqlite+aiosqlite:///{tmp_path / 'r' / 'f.db'}",
                                    by="Admin Wang (root)", approval="HQ-1", now=clock.now())
    assert restored.verify.ok
    again = MediaStore.from_settings(elsewhere)
    assert await again.read(photo.path) == b"a photo of the door"
    assert await again.read(sealed.path) == b"the bank's file"
    await again.close()
    await store.close()


async def test_report_attachments_from_the_object_store_and_a_missing_one_fails_at_once(
        harness: BotHarness, field: dict[str, int], s3_endpoint: str, bucket: str) -> None:
    media, now = harness.runtime.media, harness.clock.now()
    chart = await media.put(b"\x89PNG a chart", kind="reports", suffix=".png")
    gone = await media.put(b"PK a workbook", kind="reports", suffix=".xlsx")
    changed = await media.put(b"PK another workbook", kind="reports", suffix=".xlsx")
    await media.delete(gone.path)
    _client(s3_endpoint).put_object(Bucket=bucket, Key=f"office-1/{changed.path}", Body=b"PK tampered")
    async with harness.db.write() as session:
        for n, blob in enumerate((chart, gone, changed)):
            await outbox.enqueue(session, chat_id=BOSS.id, text=f"report {n}", kind="report", now=now,
                                 attachment=outbox.Attachment(blob.path, f"report-{n}{Path(blob.path).suffix}"))
    assert await harness.deliver_outbox() == 1
    [photo] = [c for c in harness.api.calls if c.method == "sendDocument" and not c.failed]
    assert photo.params["document"]["sha256"] == chart.sha256
    async with harness.db.read() as session:
        rows = {r.payload["text"]: r for r in await session.scalars(select(OutboxMessage))
                if r.kind == "report"}
    assert rows["report 0"].sent_at is not None
    for text, blob, error in (("report 1", gone, "MediaMissing"), ("report 2", changed, "MediaCorrupt")):
        row = rows[text]
        assert row.failed_at is not None and row.attempts == 1, text  # given up at once, not retried
        assert row.last_error is not None and error in row.last_error and blob.path in row.last_error
    await media.close()


async def test_a_store_out_of_reach_is_unavailable_not_missing(tmp_path: Path) -> None:
    """Nothing listens on the port: an OSError worth retrying (the outbox retries it), never 'missing'."""
    store = S3Backend(S3Location.parse("s3://fieldbot/office-1"),
                      S3Config(endpoint=f"http://127.0.0.1:{_free_port()}", region=REGION, access_key="testing",
                               secret_key="testing"))
    try:
        with pytest.raises(MediaUnavailable) as down:
            await store.get("media/evidence/00/" + "0" * 64 + ".jpg")
        assert not isinstance(down.value, MediaMissing) and isinstance(down.value, OSError)
        assert "media/evidence/00/" in str(down.value)
    finally:
        await store.close()

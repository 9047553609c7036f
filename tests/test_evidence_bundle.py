"""The evidence bundle of a case: a whole visit with a photo and a voice note, then the ZIP for the bank or a court.

The ZIP opens; SHA256SUMS (checked by ``sha256sum -c`` too) matches every file; the photo and recording are the
bytes sent; the summary names the case and the visit; the audit entries are there and recompute under the
office's key; the download itself is audited. Another team's supervisor, a team lead and a collector are
refused; a file gone from the media store or never downloaded is listed as missing. ``fieldbot evidence``
writes a 0600 file; an unknown case or an unwritable path is one line and exit code 2.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import shutil
import stat
import subprocess
import zipfile
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from bot.cli import main
from bot.sandbox.harness import BotHarness
from bot.services import audit
from bot.services.actor import StaffView
from bot.services.errors import Forbidden, NotFound
from bot.services.evidence_bundle import AUDIT_ACTION, build_bundle
from bot.storage.models import AuditEntry, Evidence, Staff, Visit
from tests.field_office import ANN, BOSS, PHOTO_1, VOICE

WALK = [
    lambda h, ids: h.updates.command(ANN, "/visits"),
    lambda h, ids: h.updates.button(ANN, f"v:card:{ids['case']}"),
    lambda h, ids: h.updates.button(ANN, f"v:in:{ids['case']}"),
    lambda h, ids: h.updates.location(ANN, 31.2306, 121.4739),
    lambda h, ids: h.updates.button(ANN, "v:dur:60"),
    lambda h, ids: h.updates.button(ANN, "v:code:PTP"),
    lambda h, ids: h.updates.text(ANN, "1,200元"),
    lambda h, ids: h.updates.text(ANN, "12-3"),
    lambda h, ids: h.photo_update(ANN, PHOTO_1),
    lambda h, ids: h.voice_update(ANN, VOICE),
    lambda h, ids: h.updates.button(ANN, "v:done"),
    lambda h, ids: h.updates.button(ANN, "v:file"),
]


async def visit_filed_and_approved(harness: BotHarness, ids: dict[str, int]) -> int:
    """Ann visits case ZS-1 (check-in, PTP, a photo, a voice note, filed); Boss approves. The visit id."""
    for make in WALK:
        await harness.send(make(harness, ids))
        harness.clock.advance(minutes=1)
    async with harness.db.read() as session:
        visit_id = (await session.scalars(select(Visit.id).where(Visit.case_id == ids["case"]))).one()
    await harness.send(harness.updates.button(BOSS, f"rv:ok:{visit_id}"))
    harness.clock.advance(minutes=1)
    return visit_id


async def view(harness: BotHarness, staff_id: int) -> StaffView:
    async with harness.db.read() as session:
        person = await session.get(Staff, staff_id)
        assert person is not None
        return StaffView.of(person)


async def bundle(harness: BotHarness, actor: StaffView | None, case_id: int, lang: str = "en") -> bytes:
    runtime = harness.runtime
    async with harness.db.write() as session:
        return await build_bundle(session, runtime.media, actor, case_id, now=harness.clock.now(), lang=lang,
                                  calendar=runtime.calendar)


def opened(data: bytes) -> tuple[zipfile.ZipFile, str]:
    zf = zipfile.ZipFile(io.BytesIO(data))
    assert zf.testzip() is None
    roots = {name.split("/", 1)[0] for name in zf.namelist()}
    assert len(roots) == 1
    return zf, roots.pop()


def sums_of(zf: zipfile.ZipFile, root: str) -> dict[str, str]:
    lines = zf.read(f"{root}/SHA256SUMS").decode().splitlines()
    return {name: digest for digest, name in (line.split("  ", 1) for line in lines)}


async def bundle_entries(harness: BotHarness) -> list[AuditEntry]:
    async with harness.db.read() as session:
        return list(await session.scalars(select(AuditEntry).where(AuditEntry.action == AUDIT_ACTION)
                                          .order_by(AuditEntry.seq)))


async def test_the_bundle_of_a_visit_holds_what_was_sent_and_proves_it(
        harness: BotHarness, field: dict[str, int], tmp_path: Path, audit_key: bytes) -> None:
    visit_id = await visit_filed_and_approved(harness, field)
    boss = await view(harness, field["boss"])
    data = await bundle(harness, boss, field["case"])
    zf, root = opened(data)
    assert root == "evidence-ZS-1"

    # every file but SHA256SUMS is listed in it, with the SHA-256 of its bytes
    sums = sums_of(zf, root)
    inside = {name.removeprefix(f"{root}/") for name in zf.namelist() if not name.endswith("/")}
    assert set(sums) == inside - {"SHA256SUMS"}
    assert {"summary.html", "audit.jsonl", "README.txt", "manifest.json"} <= set(sums)
    for name, digest in sums.items():
        assert hashlib.sha256(zf.read(f"{root}/{name}")).hexdigest() == digest, name
    for info in zf.infolist():  # unzipped, the files and folders are the reader's alone
        assert stat.S_IMODE(info.external_attr >> 16) == (0o700 if info.is_dir() else 0o600)

    # the photo and the voice note are the bytes Ann sent, named by visit and kind
    assert zf.read(f"{root}/evidence/visit-{visit_id}/photo-1.jpg") == PHOTO_1
    assert zf.read(f"{root}/evidence/visit-{visit_id}/voice-1.ogg") == VOICE

    # the manifest: every file's hash; per photo and recording the hash at receipt, Telegram ids, sender, times
    manifest = json.loads(zf.read(f"{root}/manifest.json"))
    assert manifest["case"]["case_no"] == "ZS-1" and manifest["made_by"]["name"] == "Boss"
    assert {f["path"]: f["sha256"] for f in manifest["files"]} == {k: v for k, v in sums.items()
                                                                    if k != "manifest.json"}
    async with harness.db.read() as session:
        rows = list(await session.scalars(select(Evidence).where(Evidence.visit_id == visit_id)
                                          .order_by(Evidence.id)))
    listed = manifest["evidence"]
    assert [(e["kind"], e["status"], e["matches_receipt"]) for e in listed] == [
        ("photo", "included", True), ("voice", "included", True)]
    for entry, row, sent in zip(listed, rows, (PHOTO_1, VOICE), strict=True):
        assert entry["sha256"] == entry["sha256_at_receipt"] == row.sha256 == hashlib.sha256(sent).hexdigest()
        assert sums[entry["file"]] == row.sha256
        assert entry["telegram_file_id"] == row.file_id and entry["telegram_file_unique_id"] == row.file_unique_id
        assert entry["sender"] == {"staff_id": field["ann"], "name": "Ann"}
        assert datetime.fromisoformat(entry["received_at"]) == row.stored_at
        assert datetime.fromisoformat(entry["sent_at"]) == row.sent_at

    # the summary names the case, the visit, its result, the check-in, the review and the files
    summary = zf.read(f"{root}/summary.html").decode()
    assert "ZS-1" in summary and "招商银行" in summary and f"Visit #{visit_id}" in summary
    assert "Promise to pay" in summary and "CN¥1,200.00" in summary and "m from the address" in summary
    assert "31.230600, 121.473900" in summary and "approved by Boss on" in summary
    assert f'href="evidence/visit-{visit_id}/photo-1.jpg"' in summary and "李*" in summary and "李四" not in summary
    assert "<script" not in summary and "http" not in summary.replace("http-equiv", "")

    # the audit entries of the case and its visit, each recomputing under the office's key
    lines = [json.loads(line) for line in zf.read(f"{root}/audit.jsonl").decode().splitlines()]
    actions = [line["action"] for line in lines]
    assert actions[0] == "case.assign"
    for wanted in ("visit.start", "visit.checkin", "evidence.stored", "visit.filed", "visit.approved"):
        assert wanted in actions
    assert AUDIT_ACTION not in actions  # its own entry names the bundle's hash: it comes after
    for line in lines:
        assert audit.entry_hash(seq=line["seq"], at=datetime.fromisoformat(line["at"]), actor_id=line["actor_id"],
                                action=line["action"], object_type=line["object_type"],
                                object_id=line["object_id"], details=line["details"], prev_hash=line["prev_hash"],
                                key=audit_key) == line["hash"]
    readme = zf.read(f"{root}/README.txt").decode()
    assert "sha256sum -c SHA256SUMS" in readme and "fieldbot audit verify" in readme

    # the download is audited: who, which case, the bundle's own SHA-256
    [entry] = await bundle_entries(harness)
    details = json.loads(entry.details)
    assert (entry.actor_id, entry.object_type, entry.object_id) == (field["boss"], "case", str(field["case"]))
    assert details["sha256"] == hashlib.sha256(data).hexdigest() and details["case_no"] == "ZS-1"
    async with harness.db.read() as session:
        assert (await audit.verify(session)).ok

    # and sha256sum itself agrees, once unzipped
    if shutil.which("sha256sum"):
        zf.extractall(tmp_path / "out")
        checked = await asyncio.to_thread(subprocess.run, ["sha256sum", "-c", "SHA256SUMS"],
                                          cwd=tmp_path / "out" / root, capture_output=True, text=True, check=False)
        assert checked.returncode == 0, checked.stdout + checked.stderr
        assert checked.stdout.count(": OK") == len(sums)


async def test_the_summary_is_in_chinese_by_default_and_a_second_bundle_lists_the_first(
        harness: BotHarness, field: dict[str, int]) -> None:
    visit_id = await visit_filed_and_approved(harness, field)
    first = await bundle(harness, None, field["case"], lang="zh_CN")
    zf, root = opened(first)
    summary = zf.read(f"{root}/summary.html").decode()
    assert f"外访 #{visit_id}" in summary and "承诺还款" in summary and 'lang="zh-CN"' in summary
    assert "命令行" in summary
    assert "sha256sum -c SHA256SUMS" in zf.read(f"{root}/README.txt").decode()
    second, root = opened(await bundle(harness, None, field["case"], lang="zh_CN"))
    actions = [json.loads(line)["action"] for line in second.read(f"{root}/audit.jsonl").decode().splitlines()]
    assert actions.count(AUDIT_ACTION) == 1  # the first download is part of the case's record
    entries = await bundle_entries(harness)
    assert [e.actor_id for e in entries] == [None, None]


async def test_only_the_team_s_supervisors_and_the_admin_office_get_a_bundle(
        harness: BotHarness, office: dict[str, int]) -> None:
    await visit_filed_and_approved(harness, office)
    for who in ("zed", "lead", "ann"):  # another team's supervisor; a team lead (no visit files); a collector
        with pytest.raises(Forbidden):
            await bundle(harness, await view(harness, office[who]), office["case"])
    with pytest.raises(NotFound):
        await bundle(harness, await view(harness, office["admin"]), 999_999)
    assert await bundle_entries(harness) == []
    admin = await bundle(harness, await view(harness, office["admin"]), office["case"])
    assert opened(admin)[1] == "evidence-ZS-1"
    assert [e.actor_id for e in await bundle_entries(harness)] == [office["admin"]]


async def test_a_file_gone_never_downloaded_or_changed_is_listed_so(
        harness: BotHarness, field: dict[str, int], tmp_path: Path) -> None:
    visit_id = await visit_filed_and_approved(harness, field)
    now = harness.clock.now()
    async with harness.db.write() as session:
        photo = (await session.scalars(select(Evidence).where(Evidence.kind == "photo"))).one()
        session.add(Evidence(visit_id=visit_id, kind="audio", status="too_big", sha256=None, path=None,
                             size=25 * 1024 * 1024, mime_type="audio/mpeg", file_id="big-file-id",
                             file_unique_id="big-unique", sender_id=field["ann"], sent_at=now, stored_at=now))
        voice = (await session.scalars(select(Evidence).where(Evidence.kind == "voice"))).one()
        photo_path, voice_path = photo.path, voice.path
    assert photo_path is not None and voice_path is not None
    (tmp_path / photo_path).unlink()
    (tmp_path / voice_path).write_bytes(b"OggS something else")  # changed on disk since it was received

    zf, root = opened(await bundle(harness, None, field["case"]))
    manifest = json.loads(zf.read(f"{root}/manifest.json"))
    by_kind = {e["kind"]: e for e in manifest["evidence"]}
    assert (by_kind["photo"]["status"], by_kind["photo"]["reason"], by_kind["photo"]["file"]) == (
        "missing", "not_in_media_store", None)
    assert by_kind["photo"]["sha256_at_receipt"] == hashlib.sha256(PHOTO_1).hexdigest()
    assert (by_kind["audio"]["status"], by_kind["audio"]["reason"], by_kind["audio"]["telegram_file_id"]) == (
        "missing", "not_downloaded", "big-file-id")
    # bytes that no longer hash to their name are refused by the media store: listed, never put in the bundle
    assert (by_kind["voice"]["status"], by_kind["voice"]["reason"], by_kind["voice"]["matches_receipt"]) == (
        "missing", "unreadable", False)
    assert by_kind["voice"]["sha256"] == hashlib.sha256(b"OggS something else").hexdigest()
    assert by_kind["voice"]["sha256_at_receipt"] == hashlib.sha256(VOICE).hexdigest()
    sums = sums_of(zf, root)
    assert not any(name.endswith((".jpg", ".ogg")) for name in sums)
    for name, digest in sums.items():
        assert hashlib.sha256(zf.read(f"{root}/{name}")).hexdigest() == digest
    summary = zf.read(f"{root}/summary.html").decode()
    assert "no longer in the media store" in summary and "20 MB download limit" in summary
    assert "differs from the one recorded at receipt" in summary
    [entry] = await bundle_entries(harness)
    details = json.loads(entry.details)
    assert len(details["missing"]) == 3 and details["altered"] == [by_kind["voice"]["evidence_id"]]


# ---- fieldbot evidence ---------------------------------------------------------------------------------------


@pytest.fixture
def shell(harness: BotHarness, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``fieldbot`` run on the harness's database and data folder."""
    for key in ("FIELDBOT_TOKEN", "FIELDBOT_DEFAULT_LOCALE"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("FIELDBOT_DATABASE_URL", harness.settings.database_url)
    monkeypatch.setenv("FIELDBOT_DATA_DIR", str(tmp_path))
    monkeypatch.chdir(tmp_path)  # no stray .env is read


async def fieldbot(*argv: str) -> int:
    return await asyncio.to_thread(main, list(argv))  # main runs its own event loop


async def test_fieldbot_evidence_writes_an_owner_only_bundle(
        harness: BotHarness, field: dict[str, int], shell: None, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    visit_id = await visit_filed_and_approved(harness, field)
    out = tmp_path / "bundles" / "ZS-1.zip"
    out.parent.mkdir(mode=0o755)
    assert await fieldbot("evidence", "ZS-1", "--out", str(out), "--lang", "en", "--by", "王主管") == 0
    printed = capsys.readouterr().out
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    data = out.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    assert digest in printed and str(out) in printed
    zf, root = opened(data)
    assert zf.read(f"{root}/evidence/visit-{visit_id}/voice-1.ogg") == VOICE
    assert "Visit #" in zf.read(f"{root}/summary.html").decode()
    assert [p.name for p in out.parent.iterdir()] == ["ZS-1.zip"]  # no part file left behind
    [entry] = await bundle_entries(harness)
    details: dict[str, Any] = json.loads(entry.details)
    assert entry.actor_id is None and details["by"] == "王主管" and details["sha256"] == digest


async def test_fieldbot_evidence_refuses_an_unknown_case_or_an_unwritable_path(
        harness: BotHarness, field: dict[str, int], shell: None, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    assert await fieldbot("evidence", "NOPE-9", "--out", str(tmp_path / "nope.zip")) == 2
    err = capsys.readouterr().err.strip()
    assert err == "fieldbot: 没有案件 NOPE-9。"
    assert not (tmp_path / "nope.zip").exists()
    assert not list(tmp_path.glob(".nope.zip.*"))

    assert await fieldbot("evidence", "ZS-1", "--out", str(tmp_path / "no" / "such" / "b.zip")) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("fieldbot: 无法写入") and "there is no folder" in err and "\n" not in err
    assert await fieldbot("evidence", "ZS-1", "--out", str(tmp_path)) == 2
    assert "it is a folder" in capsys.readouterr().err
    assert await bundle_entries(harness) == []


async def test_no_bundle_is_left_without_its_audit_entry(
        harness: BotHarness, field: dict[str, int], shell: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    await visit_filed_and_approved(harness, field)

    def refuse(source: str, target: str) -> None:
        raise PermissionError(13, "Permission denied", target)

    monkeypatch.setattr("bot.cli_evidence.os.replace", refuse)
    assert await fieldbot("evidence", "ZS-1", "--out", str(tmp_path / "b.zip")) == 2
    assert "Permission denied" in capsys.readouterr().err
    assert not (tmp_path / "b.zip").exists() and not list(tmp_path.glob(".b.zip.*"))
    assert await bundle_entries(harness) == []  # the rename failed: the audit entry was rolled back

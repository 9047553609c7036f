"""Retention: case material purged 5 years after the contract's end, legal holds, tombstones, the sweep."""

from __future__ import annotations

import asyncio
import hashlib
import json
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from bot.cli import main
from bot.clock import ManualClock
from bot.runtime import Runtime
from bot.sandbox.harness import sandbox_settings
from bot.services import audit, intake, retention
from bot.services.errors import DomainError, NotFound
from bot.storage import migrate
from bot.storage.db import Database
from bot.storage.media import MediaStore
from bot.storage.models import (
    Assignment,
    AuditEntry,
    Base,
    Case,
    CaseImport,
    CaseStatus,
    Evidence,
    ExtensionRequest,
    FieldRequest,
    FlowState,
    GeocodeResult,
    Handover,
    HandoverIssue,
    HandoverItem,
    Incident,
    IncidentStatus,
    LegalHold,
    Promise,
    PurgedCase,
    Reminder,
    ReportRun,
    Staff,
    Visit,
    VisitStatus,
)
from tests.conftest import SHANGHAI, TestDatabases

NOW = datetime(2026, 11, 2, 9, 0, tzinfo=SHANGHAI)
TODAY = NOW.date()
ENDED = date(2021, 11, 2)  # due on TODAY exactly


def runtime_for(database: Database, tmp_path: Path, clock: ManualClock, **overrides: Any) -> Runtime:
    settings = sandbox_settings(tmp_path, database_url=database.url, **overrides)
    return Runtime(settings=settings, db=database, clock=clock)


@dataclass
class Seeded:
    case_id: int
    visit_id: int
    incident_id: int
    photo: str  # path relative to the data dir


async def staff_ids(database: Database) -> tuple[int, int]:
    async with database.write() as session:
        found = list(await session.scalars(select(Staff.id).order_by(Staff.id)))
        if found:
            return found[0], found[1]
        people = [Staff(name=name, role=role, team="A", created_at=NOW) for name, role in
                  (("张三", "collector"), ("王主管", "supervisor"))]
        session.add_all(people)
        await session.flush()
        return people[0].id, people[1].id


async def seed_case(database: Database, media: MediaStore, case_no: str, contract_end: date | None, *,
                    photo: bytes | None = None, status: str = CaseStatus.CLOSED, visit_status: str = "approved",
                    assigned: bool = True, incident_status: str = IncidentStatus.RESOLVED,
                    import_id: int | None = None, bank: str = "招商银行") -> Seeded:
    """A case with one of every kind of row that belongs to it (and a resolved incident on it)."""
    collector, boss = await staff_ids(database)
    blob = await media.put(photo if photo is not None else f"photo of {case_no}".encode(), kind="evidence",
                           suffix=".jpg")
    async with database.write() as session:
        case = Case(bank=bank, case_no=case_no, debtor_name="李四", address="上海市浦东新区", amount_due_fen=120000,
                    contract_end=contract_end, entrusted_on=date(2020, 1, 1), status=status, team="A",
                    import_id=import_id, created_at=NOW - timedelta(days=2000), updated_at=NOW)
        session.add(case)
        await session.flush()
        session.add(Assignment(case_id=case.id, staff_id=collector, assigned_at=NOW - timedelta(days=1900),
                               ended_at=None if assigned else NOW - timedelta(days=1800)))
        visit = Visit(case_id=case.id, collector_id=collector, status=visit_status, started_at=NOW, updated_at=NOW,
                      details={})
        session.add(visit)
        await session.flush()
        session.add(Evidence(visit_id=visit.id, kind="photo", status="stored", sha256=blob.sha256, path=blob.path,
                             size=blob.size, file_id=f"f-{case_no}", file_unique_id=f"u-{bank}-{case_no}",
                             sender_id=collector, sent_at=NOW, stored_at=NOW))
        session.add(Promise(case_id=case.id, visit_id=visit.id, collector_id=collector, amount_fen=5000,
                            due_on=date(2021, 1, 1), status="kept", created_at=NOW))
        extension = ExtensionRequest(case_id=case.id, collector_id=collector, reason="雨", proposed_on=date(2021, 1, 2),
                                     status="approved", created_at=NOW)
        session.add(extension)
        await session.flush()
        session.add(Reminder(key=f"r-{bank}-{case_no}", kind="visit.morning", case_id=case.id, due_at=NOW,
                             created_at=NOW))
        session.add(Reminder(key=f"x-{bank}-{case_no}", kind="extension.resend", extension_id=extension.id, due_at=NOW,
                             created_at=NOW))
        session.add(FieldRequest(case_id=case.id, requested_by_id=boss, field_collector_id=collector, note="请外访",
                                 created_at=NOW, visit_id=visit.id))
        handover = Handover(from_staff_id=collector, started_at=NOW, status="completed", facts={})
        session.add(handover)
        await session.flush()
        session.add(HandoverItem(handover_id=handover.id, case_id=case.id, successor_id=boss, facts={}))
        session.add(HandoverIssue(handover_id=handover.id, raised_by_id=boss, note="录音还在录音笔里", raised_at=NOW))
        incident = Incident(collector_id=collector, case_id=case.id, visit_id=visit.id, reason="sos",
                            status=incident_status, raised_at=NOW, updated_at=NOW)
        session.add(incident)
        await session.flush()
        return Seeded(case.id, visit.id, incident.id, blob.path)


async def count(database: Database, model: type[Base], *where: Any) -> int:
    async with database.read() as session:
        return int(await session.scalar(select(func.count()).select_from(model).where(*where)) or 0)


async def purge(runtime: Runtime, today: date, *, dry_run: bool = False) -> retention.PurgeResult:
    return await retention.purge(runtime.db, runtime.media, today=today, now=runtime.clock.now(),
                                 dry_run=dry_run)


def test_keep_until_is_five_years_and_29_february_becomes_28() -> None:
    assert retention.keep_until(date(2021, 11, 2)) == date(2026, 11, 2)
    assert retention.keep_until(date(2024, 2, 29)) == date(2029, 2, 28)
    assert retention.keep_until(date(2023, 2, 28)) == date(2028, 2, 28)


async def test_purged_exactly_five_years_after_the_contract_end(any_database: Database, tmp_path: Path,
                                                              clock: ManualClock) -> None:
    runtime = runtime_for(any_database, tmp_path, clock)
    seeded = await seed_case(any_database, runtime.media, "C-1", ENDED, assigned=False)
    other = await seed_case(any_database, runtime.media, "C-2", date(2021, 11, 3))
    async with any_database.write() as session:  # someone's flow was left pointing at the case's visit
        session.add(FlowState(staff_id=(await staff_ids(any_database))[1], flow="review", step="comment",
                              data={"visit_id": seeded.visit_id}, updated_at=NOW))
        session.add(GeocodeResult(query="上海市 黄浦区", lat=31.2, lon=121.5, provider="test", at=NOW))
        case = await session.get(Case, seeded.case_id)
        assert case is not None
        case.address = "上海市\u3000黄浦区"

    day_before = await purge(runtime, TODAY - timedelta(days=1))
    assert day_before.due == [] and day_before.purged == []
    assert await count(any_database, Case) == 2 and runtime.media.path(seeded.photo).exists()

    result = await purge(runtime, TODAY)
    assert [(p.case_no, p.keep_until) for p in result.purged] == [("C-1", TODAY)]
    assert [c.case_no for c in result.kept] == []
    assert await count(any_database, Evidence, Evidence.visit_id == seeded.visit_id) == 0
    for gone in (Visit.case_id, Promise.case_id, ExtensionRequest.case_id, FieldRequest.case_id,
                 HandoverItem.case_id, Assignment.case_id):
        assert await count(any_database, gone.class_, gone == seeded.case_id) == 0, gone
    assert await count(any_database, Reminder) == 2  # only C-2's two remain
    assert await count(any_database, HandoverIssue) == 1  # C-1's handover lost its only item, and its issue
    assert await count(any_database, FlowState) == 0
    assert await count(any_database, GeocodeResult) == 0  # the address was only C-1's
    assert await count(any_database, Case, Case.id == other.case_id) == 1
    assert not runtime.media.path(seeded.photo).exists()
    assert runtime.media.path(other.photo).exists()

    async with any_database.read() as session:
        incident = await session.get(Incident, seeded.incident_id)
        assert incident is not None and incident.case_id is None and incident.visit_id is None
        tombstone = (await session.scalars(select(PurgedCase))).one()
        entry = (await session.scalars(select(AuditEntry).where(AuditEntry.action == "retention.purged"))).one()
        assert (await audit.verify(session)).ok
    assert (tombstone.bank, tombstone.case_no, tombstone.contract_end, tombstone.keep_until) == (
        "招商银行", "C-1", ENDED, TODAY)
    assert tombstone.entrusted_on == date(2020, 1, 1) and tombstone.case_created_at is not None
    assert tombstone.rows["cases"] == 1 and tombstone.rows["evidence"] == 1 and tombstone.rows["reminders"] == 2
    assert tombstone.rows["incidents_unlinked"] == 2 and tombstone.rows["flow_states"] == 1
    assert tombstone.rows["geocode_cache"] == 1
    assert tombstone.files == [{"sha256": hashlib.sha256(b"photo of C-1").hexdigest(), "kind": "photo",
                                "path": seeded.photo, "deleted": True}]
    details = json.loads(entry.details)
    assert entry.object_type == "case" and entry.object_id == str(seeded.case_id)
    assert details["case_no"] == "C-1" and details["keep_until"] == TODAY.isoformat()
    assert details["files"][0]["sha256"] == tombstone.files[0]["sha256"] and details["rows"]["cases"] == 1

    again = await purge(runtime, TODAY + timedelta(days=1))
    assert [p.case_no for p in again.purged] == ["C-2"]
    assert await count(any_database, Case) == 0 and await count(any_database, Incident) == 2


async def test_active_cases_are_kept_with_their_reasons(any_database: Database, tmp_path: Path,
                                                        clock: ManualClock) -> None:
    runtime = runtime_for(any_database, tmp_path, clock)
    await seed_case(any_database, runtime.media, "ASSIGNED", ENDED, status=CaseStatus.VISITED)
    await seed_case(any_database, runtime.media, "DRAFT", ENDED, visit_status=VisitStatus.DRAFT, assigned=False,
                    status=CaseStatus.VISITED)
    await seed_case(any_database, runtime.media, "SOS", ENDED, incident_status=IncidentStatus.ACKNOWLEDGED)
    await seed_case(any_database, runtime.media, "CLOSED", ENDED)  # a current assignment, but closed: it goes
    await seed_case(any_database, runtime.media, "UNDATED", None)

    result = await purge(runtime, date(2040, 1, 1))
    assert [p.case_no for p in result.purged] == ["CLOSED"]
    assert {d.case_no: d.reasons for d in result.kept} == {
        "ASSIGNED": (retention.ASSIGNED,), "DRAFT": (retention.OPEN_VISIT,), "SOS": (retention.OPEN_INCIDENT,)}
    assert result.undated == 1
    assert await count(any_database, Case) == 4


async def test_a_hold_keeps_the_case_until_it_is_released(any_database: Database, tmp_path: Path,
                                                          clock: ManualClock) -> None:
    runtime = runtime_for(any_database, tmp_path, clock)
    seeded = await seed_case(any_database, runtime.media, "H-1", ENDED)
    async with any_database.write() as session:
        case = await retention.find_case(session, "H-1")
        with pytest.raises(DomainError) as no_reason:
            await retention.place_hold(session, case, "  ", "legal", NOW)
        assert no_reason.value.key == "retention.error.reason_required"
        with pytest.raises(NotFound):
            await retention.release_hold(session, case, "nothing to release", "legal", NOW)
        await retention.place_hold(session, case, "诉讼中（(2026)沪0115民初123号）", "法务部 陈", NOW)

    held = await purge(runtime, TODAY)
    assert held.purged == [] and [(d.case_no, d.reasons) for d in held.kept] == [("H-1", (retention.HOLD,))]
    assert await count(any_database, Case) == 1 and runtime.media.path(seeded.photo).exists()

    async with any_database.write() as session:
        case = await retention.find_case(session, "H-1", "招商银行")
        released = await retention.release_hold(session, case, "判决已生效", "法务部 陈", NOW + timedelta(days=1))
        assert [h.release_reason for h in released] == ["判决已生效"]
    assert await count(any_database, LegalHold, LegalHold.released_at.is_(None)) == 0

    after = await purge(runtime, TODAY + timedelta(days=1))
    assert [p.case_no for p in after.purged] == ["H-1"] and after.purged[0].rows["legal_holds"] == 1
    assert not runtime.media.path(seeded.photo).exists()
    async with any_database.read() as session:
        actions = list(await session.scalars(select(AuditEntry.action).where(
            AuditEntry.action.like("retention.%")).order_by(AuditEntry.seq)))
        assert (await audit.verify(session)).ok
        with pytest.raises(NotFound) as gone:
            await retention.find_case(session, "H-1")
        assert gone.value.key == "retention.error.case_purged"
    assert actions == ["retention.hold", "retention.release", "retention.purged"]


async def test_a_failed_purge_leaves_the_case_and_its_files(database: Database, tmp_path: Path, clock: ManualClock,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """Files go only after the commit: a transaction that fails keeps every row and every file."""
    runtime = runtime_for(database, tmp_path, clock)
    seeded = await seed_case(database, runtime.media, "F-1", ENDED)

    async def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("disk full")

    monkeypatch.setattr(retention.audit, "record", broken)
    with pytest.raises(RuntimeError):
        await purge(runtime, TODAY)
    assert await count(database, Case) == 1 and await count(database, Evidence) == 1
    assert await count(database, PurgedCase) == 0 and runtime.media.path(seeded.photo).exists()
    monkeypatch.undo()
    assert [p.case_no for p in (await purge(runtime, TODAY)).purged] == ["F-1"]
    assert not runtime.media.path(seeded.photo).exists()


async def test_shared_media_stay_until_both_cases_are_purged(any_database: Database, tmp_path: Path,
                                                             clock: ManualClock) -> None:
    runtime = runtime_for(any_database, tmp_path, clock)
    first = await seed_case(any_database, runtime.media, "S-1", ENDED, photo=b"the same doorway")
    second = await seed_case(any_database, runtime.media, "S-2", ENDED + timedelta(days=30), photo=b"the same doorway")
    assert first.photo == second.photo

    one = await purge(runtime, TODAY)
    assert [p.case_no for p in one.purged] == ["S-1"]
    assert [f["deleted"] for f in one.purged[0].files] == [False]
    assert runtime.media.path(first.photo).exists()

    two = await purge(runtime, TODAY + timedelta(days=30))
    assert [p.case_no for p in two.purged] == ["S-2"]
    assert [f["deleted"] for f in two.purged[0].files] == [True]
    assert not runtime.media.path(first.photo).exists()
    async with any_database.read() as session:
        tombstones = {t.case_no: t.files[0] for t in await session.scalars(select(PurgedCase))}
    assert tombstones["S-1"]["sha256"] == tombstones["S-2"]["sha256"]
    assert (tombstones["S-1"]["deleted"], tombstones["S-2"]["deleted"]) == (False, True)


async def test_the_bank_file_goes_with_its_last_case(any_database: Database, tmp_path: Path,
                                                     clock: ManualClock) -> None:
    backup = tmp_path / "second-copy"
    runtime = runtime_for(any_database, tmp_path, clock, backup_dirs=[backup])
    csv = ("案件编号,委托方,客户姓名,地址,欠款金额,委托日期,委托到期日\n"
           "B-1,工商银行,赵六,北京市朝阳区,800.00,2020-01-01,2021-11-02\n"
           "B-2,工商银行,钱七,北京市海淀区,900.00,2020-01-01,2021-12-02\n").encode()
    summary = await intake.import_file(any_database, csv, "icbc.csv", clock=clock, calendar=runtime.calendar,
                                       media=runtime.media, backup_dirs=[backup])
    assert summary.imported == 2 and summary.error is None
    async with any_database.read() as session:
        stored = (await session.scalars(select(CaseImport.stored_path))).one()
    original, copy = runtime.media.path(stored), backup / Path(stored).relative_to("media")
    assert original.exists() and copy.exists()

    first = await purge(runtime, TODAY)
    assert [p.case_no for p in first.purged] == ["B-1"]
    assert original.exists() and copy.exists() and await count(any_database, CaseImport) == 1
    assert {f["kind"]: f["deleted"] for f in first.purged[0].files} == {"import": False}

    last = await purge(runtime, date(2026, 12, 2))
    assert [p.case_no for p in last.purged] == ["B-2"]
    assert not original.exists() and await count(any_database, CaseImport) == 0
    assert copy.exists()  # backup folders keep it until the last snapshot holding it is pruned (test_backup_restore)
    async with any_database.read() as session:
        tombstone = (await session.scalars(select(PurgedCase).where(PurgedCase.case_no == "B-2"))).one()
        assert (await audit.verify(session)).ok
    assert {(f["kind"], f["path"], f["deleted"]) for f in tombstone.files} == {("import", stored, True)}
    assert tombstone.files[0]["sha256"] == summary.sha256


async def test_the_monthly_sweep_runs_once_even_twice_at_once(any_database: Database, tmp_path: Path,
                                                             clock: ManualClock) -> None:
    clock.set(NOW)
    for n in range(3):
        await seed_case(any_database, MediaStore(tmp_path), f"M-{n}", ENDED - timedelta(days=n))
    second = Database(any_database.url)
    try:
        runtimes = [runtime_for(any_database, tmp_path, clock), runtime_for(second, tmp_path, clock)]
        results = await asyncio.gather(*(retention.sweep(r) for r in runtimes))
        assert sorted(results) == [0, 3]
        assert await count(any_database, PurgedCase) == 3
        async with any_database.read() as session:
            runs = [(r.kind, r.period_start, r.period_end) for r in await session.scalars(select(ReportRun))]
        assert runs == [("retention", date(2026, 11, 1), date(2026, 11, 30))]

        await seed_case(any_database, MediaStore(tmp_path), "M-late", ENDED)
        clock.advance(days=20)  # same month: nothing more
        assert await retention.sweep(runtimes[0]) == 0
        assert await count(any_database, Case) == 1
        clock.set(datetime(2026, 12, 1, 0, 30, tzinfo=SHANGHAI))  # 1 December in Shanghai, 30 November in UTC
        assert await retention.sweep(runtimes[1]) == 1
        assert await retention.sweep(runtimes[0]) == 0
        assert await count(any_database, Case) == 0
    finally:
        await second.dispose()


def _snapshot(db_urls: TestDatabases, url: str, data_dir: Path) -> tuple[dict[str, list[Any]], set[Path]]:
    if db_urls.postgres:
        tables = [r[0] for r in db_urls.fetch(url, "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")]
    else:
        tables = [r[0] for r in db_urls.fetch(url, "SELECT name FROM sqlite_master WHERE type='table'")]
    rows = {t: sorted(map(repr, db_urls.fetch(url, f'SELECT * FROM "{t}"'))) for t in tables}
    return rows, {p for p in data_dir.rglob("*") if p.is_file()}


async def test_dry_run_changes_nothing(database: Database, tmp_path: Path, clock: ManualClock,
                                       db_urls: TestDatabases) -> None:
    runtime = runtime_for(database, tmp_path, clock)
    await seed_case(database, runtime.media, "D-1", ENDED)
    await seed_case(database, runtime.media, "D-2", ENDED, status=CaseStatus.ASSIGNED)
    await seed_case(database, runtime.media, "D-3", None)
    before = _snapshot(db_urls, database.url, tmp_path / "media")
    result = await purge(runtime, TODAY, dry_run=True)
    assert [(d.case_no, d.purgeable) for d in result.due] == [("D-1", True), ("D-2", False)]
    assert result.purged == [] and result.undated == 1
    assert _snapshot(db_urls, database.url, tmp_path / "media") == before


# --- the commands ----------------------------------------------------------------------------------


@pytest.fixture
def db_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, db_urls: TestDatabases) -> str:
    """The database URL the commands use."""
    for key in ("FIELDBOT_TOKEN", "FIELDBOT_DATABASE_URL", "FIELDBOT_DATA_DIR", "FIELDBOT_BACKUP_DIRS"):
        monkeypatch.delenv(key, raising=False)
    path = db_urls.url(tmp_path / "fieldbot.db")
    monkeypatch.setenv("FIELDBOT_DATABASE_URL", path)
    monkeypatch.setenv("FIELDBOT_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("FIELDBOT_DEFAULT_LOCALE", "en")
    monkeypatch.chdir(tmp_path)
    return path


def _seed_cli(db_file: str, tmp_path: Path) -> None:
    async def seed() -> None:
        database = Database(db_file)
        try:
            await migrate.upgrade(database)
            media = MediaStore(tmp_path / "data")
            await seed_case(database, media, "K-1", ENDED)
            await seed_case(database, media, "K-2", ENDED, status=CaseStatus.ASSIGNED)
            await seed_case(database, media, "TWIN", ENDED, bank="工商银行")
            await seed_case(database, media, "TWIN", ENDED, bank="建设银行")
            await seed_case(database, media, "NO-END", None)
        finally:
            await database.dispose()

    asyncio.run(seed())


def test_cli_hold_release_and_purge(db_file: str, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                    db_urls: TestDatabases) -> None:
    _seed_cli(db_file, tmp_path)
    assert main(["hold", "K-1", "--reason", "court order 17", "--by", "legal"]) == 0
    assert "Legal hold #1 placed on 招商银行 K-1" in capsys.readouterr().out
    assert main(["hold", "TWIN", "--bank", "建设银行", "--reason", "regulator asked"]) == 0
    capsys.readouterr()

    assert main(["purge", "--dry-run", "--today", TODAY.isoformat()]) == 0
    out = capsys.readouterr().out
    assert "due but kept: 招商银行 K-1 (kept until 2026-11-02): under a legal hold" in out
    assert "due but kept: 招商银行 K-2 (kept until 2026-11-02): still assigned and not closed" in out
    assert "would purge: 工商银行 TWIN (contract ended 2021-11-02, kept until 2026-11-02)" in out
    assert "Dry run for 2026-11-02: 1 case(s) would be purged, 3 due but kept. Nothing was changed." in out
    assert "1 case(s) have no contract end date and are never purged." in out

    assert main(["release", "K-1", "--reason", "case settled"]) == 0
    assert "Legal hold on 招商银行 K-1 released (1 hold(s))." in capsys.readouterr().out
    assert main(["purge", "--today", TODAY.isoformat(), "--json"]) == 0
    rows = {(r["bank"], r["case_no"]): r for r in json.loads(capsys.readouterr().out)}
    assert {key: r["action"] for key, r in rows.items()} == {
        ("招商银行", "K-1"): "purged", ("招商银行", "K-2"): "keep", ("工商银行", "TWIN"): "purged",
        ("建设银行", "TWIN"): "keep", ("招商银行", "NO-END"): "never"}
    assert rows[("建设银行", "TWIN")]["reasons"] == ["legal_hold"]
    assert rows[("招商银行", "K-1")]["rows"]["cases"] == 1
    holds = db_urls.fetch(db_file, "SELECT placed_by, released_by FROM legal_holds")
    purged = sorted(r[0] for r in db_urls.fetch(db_file, "SELECT case_no FROM purged_cases"))
    assert purged == ["K-1", "TWIN"]
    assert len(holds) == 1 and holds[0][0]  # the 建设银行 hold, placed by the OS user by default
    assert main(["audit", "verify"]) == 0


@pytest.mark.parametrize(("argv", "message"), [
    (["hold", "NOPE", "--reason", "x"], "fieldbot: There is no case NOPE."),
    (["hold", "TWIN", "--reason", "x"], "fieldbot: Several banks have a case TWIN; name the bank with --bank."),
    (["hold", "K-1", "--reason", "   "], "fieldbot: A reason is required (--reason)."),
    (["release", "K-1", "--reason", "done"], "fieldbot: Case K-1 has no legal hold to release."),
])
def test_cli_bad_case_or_reason_is_one_clear_line(db_file: str, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                  argv: list[str], message: str, db_urls: TestDatabases) -> None:
    _seed_cli(db_file, tmp_path)
    capsys.readouterr()
    assert main(argv) == 1
    captured = capsys.readouterr()
    assert captured.err.strip() == message and "Traceback" not in captured.err
    assert db_urls.fetch(db_file, "SELECT count(*) FROM legal_holds")[0][0] == 0


def test_cli_purge_with_a_bad_date(db_file: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["purge", "--today", "2031-13-01"]) == 2
    err = capsys.readouterr().err
    assert err.strip() == "fieldbot: --today: 2031-13-01 is not a date such as 2031-12-31."


async def test_a_hold_placed_while_the_purge_runs(any_database: Database, tmp_path: Path, clock: ManualClock) -> None:
    """Hold first (not yet committed when the purge starts): the case stays. Purge first (the case locked
    when the hold comes): the hold is refused as for a purged case, not a database error."""
    runtime = runtime_for(any_database, tmp_path, clock)
    await seed_case(any_database, runtime.media, "R-1", ENDED, assigned=False)
    await seed_case(any_database, runtime.media, "R-2", ENDED, assigned=False)

    async with any_database.write() as session:
        case = await retention.find_case(session, "R-1")
        await retention.place_hold(session, case, "诉讼中", "法务部 陈", NOW)
        purging = asyncio.create_task(purge(runtime, TODAY))
        await asyncio.sleep(0.3)  # the purge waits for this transaction
    result = await purging
    assert [p.case_no for p in result.purged] == ["R-2"]
    assert await count(any_database, Case) == 1 and await count(any_database, LegalHold) == 1

    async with any_database.write() as session:
        await retention.release_hold(session, await retention.find_case(session, "R-1"), "结案", "法务部 陈", NOW)
    locked, go_on = asyncio.Event(), asyncio.Event()
    reasons, calls = retention._reasons, []

    async def paused(session: Any, cases: Any) -> dict[int, set[str]]:
        found = await reasons(session, cases)
        calls.append(len(cases))
        if len(calls) == 2:  # the first lists what is due; the second is in _purge_case, the case row locked
            locked.set()
            await go_on.wait()
        return found

    retention._reasons = paused  # type: ignore[assignment]
    try:
        purging = asyncio.create_task(purge(runtime, TODAY))
        await locked.wait()

        async def hold() -> None:
            async with any_database.write() as session:
                await retention.place_hold(session, await retention.find_case(session, "R-1"), "再审", "法务部 陈", NOW)

        holding = asyncio.create_task(hold())
        await asyncio.sleep(0.3)
        go_on.set()
        assert [p.case_no for p in (await purging).purged] == ["R-1"]
        with pytest.raises(NotFound) as refused:
            await holding
        assert refused.value.key == "retention.error.case_purged"
    finally:
        retention._reasons = reasons  # type: ignore[assignment]
    assert await count(any_database, Case) == 0 and await count(any_database, LegalHold) == 0

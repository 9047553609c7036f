"""Importing bank files into the database: exact rows, rejects, idempotence, batches, backups, the 2-hour clock."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from bot.clock import ManualClock
from bot.i18n import Translator
from bot.sandbox.geocoder import OfflineGeocoder
from bot.services import intake, staff
from bot.services.calendar import WorkCalendar
from bot.services.masking import mask_id_number
from bot.services.parsing import normalize_mobile
from bot.storage.db import Database
from bot.storage.media import MediaStore
from bot.storage.models import Assignment, AuditEntry, Case, CaseImport, OutboxMessage, Role, Staff
from tests.case_files import (
    BAD_ROWS,
    LAST_BAD,
    BankCase,
    gb18030_case,
    sample_cases,
    write_cases_csv,
    write_cases_xlsx,
    write_mixed,
)

CALENDAR = WorkCalendar()
Importer = Callable[..., Awaitable[intake.ImportSummary]]


@pytest.fixture
async def collectors(any_database: Database, clock: ManualClock) -> dict[str, int]:
    ids = {}
    async with any_database.write() as session:
        for i, name in enumerate(("王磊", "陈静")):
            member = await staff.add_staff(session, name=name, role=Role.COLLECTOR, team="A", now=clock.now())
            member.telegram_user_id = 7100 + i
            member.locale = "zh_CN"
            ids[name] = member.id
    return ids


@pytest.fixture
def run_import(any_database: Database, clock: ManualClock, tmp_path: Path) -> Importer:
    media = MediaStore(tmp_path / "data")

    async def run(path: Path, **kwargs: Any) -> intake.ImportSummary:
        kwargs.setdefault("batch_size", 7)
        return await intake.import_file(any_database, path.read_bytes(), path.name, clock=clock, calendar=CALENDAR,
                                        media=media, **kwargs)

    return run


def expected_row(case: BankCase) -> dict[str, Any]:
    return {
        "case_no": case.case_no, "bank": case.bank, "debtor_name": case.debtor_name,
        "id_number_masked": mask_id_number(case.id_number),
        "phone": normalize_mobile(case.phone) if case.phone else None,
        "address": " ".join(case.address.split()), "amount_due_fen": int(case.amount_due * 100),
        "overdue_days": case.overdue_days, "entrusted_on": case.entrusted_on, "contract_end": case.contract_end,
        "lat": case.lat, "lon": case.lon,
    }


async def stored_rows(database: Database) -> list[dict[str, Any]]:
    async with database.read() as session:
        cases = (await session.scalars(select(Case).order_by(Case.case_no))).all()
    keys = ("case_no", "bank", "debtor_name", "id_number_masked", "phone", "address", "amount_due_fen",
            "overdue_days", "entrusted_on", "contract_end", "lat", "lon")
    return [{k: getattr(c, k) for k in keys} for c in cases]


async def current_assignees(database: Database) -> dict[str, str]:
    async with database.read() as session:
        rows = await session.execute(
            select(Case.case_no, Staff.name).join(Assignment, Assignment.case_id == Case.id)
            .join(Staff, Staff.id == Assignment.staff_id).where(Assignment.ended_at.is_(None)))
    return dict(rows.all())


@pytest.mark.parametrize(
    ("fmt", "lang", "encoding"),
    [("csv", "zh", "utf-8"), ("csv", "en", "utf-8-sig"), ("csv", "zh", "gbk"), ("csv", "en", "gb18030"),
     ("xlsx", "zh", None), ("xlsx", "en", None)],
)
async def test_each_format_imports_the_exact_rows(any_database: Database, collectors: dict[str, int],
                                                  run_import: Importer, tmp_path: Path, fmt: str, lang: str,
                                                  encoding: str | None) -> None:
    cases = sample_cases() + ([gb18030_case()] if encoding != "gbk" else [])
    path = (write_cases_csv(tmp_path / f"bank.{fmt}", cases, lang=lang, encoding=encoding or "utf-8")  # type: ignore[arg-type]
            if fmt == "csv" else write_cases_xlsx(tmp_path / "bank.xlsx", cases, lang=lang))  # type: ignore[arg-type]
    summary = await run_import(path)
    assert (summary.imported, summary.updated, summary.unchanged, summary.rejected) == (len(cases), 0, 0, 0)
    assert summary.exit_code == intake.EXIT_OK
    assert await stored_rows(any_database) == sorted((expected_row(c) for c in cases), key=lambda r: r["case_no"])
    assert await current_assignees(any_database) == {c.case_no: c.assignee for c in cases if c.assignee}


async def test_mixed_file_imports_good_rows_and_rejects_each_bad_one(
    any_database: Database, collectors: dict[str, int], run_import: Importer, tmp_path: Path
) -> None:
    path = write_mixed(tmp_path, "csv")
    summary = await run_import(path)
    async with any_database.read() as session:
        numbers = (await session.scalars(select(Case.case_no).order_by(Case.case_no))).all()
    assert numbers == [f"HX{i:04d}" for i in range(1, 21)]
    assert (summary.imported, summary.rejected, summary.exit_code) == (20, 21, intake.EXIT_SOME_REJECTED)
    expected = [(n, reason) for _, n, reason, _ in [*BAD_ROWS, LAST_BAD]]
    assert [(r.row_number, r.reason) for r in summary.rejects] == expected

    t = Translator("zh_CN")
    by_row = {r.row_number: intake.reject_reason(t, r) for r in summary.rejects}
    assert by_row[11] == "欠款金额“abc”不是正数"
    assert by_row[19] == "委托日期“2026-02-30”无法识别为日期"
    assert by_row[25] == "案件编号 HX0001 在本文件中重复（首次出现在第 2 行）"
    assert by_row[27] == "外访员“赵六”不是在职的催收员"
    assert intake.reject_reason(Translator("en"), summary.rejects[4]) == 'amount due "abc" is not a positive number'

    rejects = summary.rejects_csv(t)
    assert rejects is not None and rejects.startswith("\ufeff".encode())
    lines = rejects.decode("utf-8-sig").splitlines()
    assert len(lines) == 1 + 21
    assert lines[0].endswith("行号/row,原因/reason")
    assert lines[1].split(",")[-2:] == ["3", "缺少案件编号"]


async def test_reimport_changes_nothing_and_a_correction_updates_one_field(
    any_database: Database, collectors: dict[str, int], run_import: Importer, tmp_path: Path
) -> None:
    cases = sample_cases()
    first = await run_import(write_cases_csv(tmp_path / "a.csv", cases))
    again = await run_import(write_cases_csv(tmp_path / "a.csv", cases))
    assert (first.imported, again.imported, again.updated, again.unchanged) == (3, 0, 0, 3)

    from dataclasses import replace
    cases[1] = replace(cases[1], amount_due=cases[1].amount_due + 100)
    corrected = await run_import(write_cases_csv(tmp_path / "b.csv", cases))
    assert (corrected.imported, corrected.updated, corrected.unchanged) == (0, 1, 2)
    async with any_database.read() as session:
        assert await session.scalar(select(func.count()).select_from(Case)) == 3
        update = (await session.scalars(select(AuditEntry).where(AuditEntry.action == "case.import.update"))).all()
    assert len(update) == 1
    assert json.loads(update[0].details)["changes"] == {"amount_due_fen": [800000, 810000]}


async def test_unreadable_file_writes_nothing(any_database: Database, run_import: Importer, tmp_path: Path) -> None:
    path = tmp_path / "junk.xlsx"
    path.write_bytes(b"PK\x03\x04 this is not really a workbook")
    summary = await run_import(path)
    assert summary.error is not None and summary.exit_code == intake.EXIT_NOTHING
    async with any_database.read() as session:
        assert await session.scalar(select(func.count()).select_from(CaseImport)) == 0
        assert await session.scalar(select(func.count()).select_from(AuditEntry)) == 0
    assert not (tmp_path / "data").exists()


async def test_two_backups_with_the_files_hash(any_database: Database, run_import: Importer, tmp_path: Path) -> None:
    path = write_cases_csv(tmp_path / "bank.csv", sample_cases())
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    summary = await run_import(path, backup_dirs=[tmp_path / "nas"], bank=None)
    assert summary.sha256 == digest
    kept = tmp_path / "data" / "media" / "imports" / digest[:2] / f"{digest}.csv.sealed"
    copy = Path(summary.backups[0])
    assert kept.read_bytes() == copy.read_bytes()
    assert copy.is_relative_to(tmp_path / "nas")
    async with any_database.read() as session:
        record = await session.scalar(select(CaseImport))
    assert record is not None and record.sha256 == digest and record.stored_path.endswith(f"{digest}.csv.sealed")
    # sealed: neither copy holds the bank's full ID numbers or phones; the store opens it to the original
    full_ids = [case.id_number for case in sample_cases()]
    for stored in (kept.read_bytes(), copy.read_bytes()):
        assert not any(number.encode() in stored for number in full_ids)
        assert "证件号码".encode() not in stored and "证件号码".encode("gbk") not in stored
    assert await MediaStore(tmp_path / "data").read(record.stored_path) == path.read_bytes()


async def test_import_finishing_over_two_hours_after_receipt_is_flagged(
    any_database: Database, run_import: Importer, clock: ManualClock, tmp_path: Path
) -> None:
    path = write_cases_csv(tmp_path / "bank.csv", sample_cases())
    on_time = await run_import(path, received_at=clock.now() - timedelta(minutes=119))
    late = await run_import(path, received_at=clock.now() - timedelta(hours=3))
    assert not on_time.late and late.late and late.minutes_taken == 180
    async with any_database.read() as session:
        finished = (await session.scalars(select(AuditEntry).where(AuditEntry.action == "import.finished")
                                          .order_by(AuditEntry.seq))).all()
        records = (await session.scalars(select(CaseImport).order_by(CaseImport.id))).all()
    assert [json.loads(e.details)["late"] for e in finished] == [False, True]
    assert [r.late for r in records] == [False, True]


async def test_crash_halfway_keeps_whole_batches_and_a_rerun_finishes(
    any_database: Database, collectors: dict[str, int], run_import: Importer, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_mixed(tmp_path, "xlsx")  # 20 good rows → batches of 7, 7, 6
    real = intake._upsert_batch
    calls = {"n": 0}

    async def failing(*args: Any, **kwargs: Any) -> tuple[int, int, int]:
        calls["n"] += 1
        result = await real(*args, **kwargs)
        if calls["n"] == 2:
            raise OSError("disk gone")  # after the rows were written, before the commit
        return result

    monkeypatch.setattr(intake, "_upsert_batch", failing)
    with pytest.raises(OSError):
        await run_import(path)
    async with any_database.read() as session:
        assert await session.scalar(select(func.count()).select_from(Case)) == 7
    monkeypatch.setattr(intake, "_upsert_batch", real)
    rerun = await run_import(path)
    assert (rerun.imported, rerun.unchanged) == (13, 7)
    async with any_database.read() as session:
        assert await session.scalar(select(func.count()).select_from(Case)) == 20


async def test_addresses_are_geocoded_once_and_cached(any_database: Database, collectors: dict[str, int],
                                                      run_import: Importer, tmp_path: Path) -> None:
    geocoder = OfflineGeocoder({"深圳市南山区": (22.5405, 113.9346)})
    path = write_cases_csv(tmp_path / "bank.csv", sample_cases())
    await run_import(path, geocoder=geocoder)
    await run_import(path, geocoder=geocoder)
    assert geocoder.queries == ["广东省深圳市南山区深南大道10000号腾讯大厦"]  # the only case without coordinates
    async with any_database.read() as session:
        case = await session.scalar(select(Case).where(Case.case_no == "CS2026110002"))
    assert case is not None and (case.lat, case.lon) == (22.5405, 113.9346)


async def test_without_a_geocoder_a_case_simply_has_no_coordinates(
    any_database: Database, collectors: dict[str, int], run_import: Importer, tmp_path: Path
) -> None:
    await run_import(write_cases_csv(tmp_path / "bank.csv", sample_cases()))
    async with any_database.read() as session:
        case = await session.scalar(select(Case).where(Case.case_no == "CS2026110002"))
    assert case is not None and case.lat is None and case.status == "assigned"


async def test_assignees_in_the_file_are_assigned_and_told(any_database: Database, collectors: dict[str, int],
                                                           run_import: Importer, clock: ManualClock,
                                                           tmp_path: Path) -> None:
    await run_import(write_cases_csv(tmp_path / "bank.csv", sample_cases()))
    async with any_database.read() as session:
        notices = (await session.scalars(select(OutboxMessage).order_by(OutboxMessage.chat_id))).all()
        unassigned = await session.scalar(select(Case).where(Case.case_no == "CS2026110003"))
        assigned = await session.scalar(select(Case).where(Case.case_no == "CS2026110001"))
    assert [n.chat_id for n in notices] == [7100, 7101]
    assert "CS2026110001" in notices[0].payload["text"] and notices[0].payload["protect_content"] is True
    # Monday 09:00: visit due end of Wednesday; the unassigned case must be assigned by end of Tuesday.
    assert assigned is not None and assigned.visit_due_at == datetime.fromisoformat("2026-11-04T18:00+08:00")
    assert unassigned is not None and unassigned.assign_due_at == datetime.fromisoformat("2026-11-03T18:00+08:00")
    assert unassigned.status == "new"

"""Portfolios and targets: the monthly report's default rate and recovered amounts against them; /team; /flag."""

from __future__ import annotations

import json
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select, update

from bot.sandbox.harness import BotHarness
from bot.services import targets
from bot.services.case_file import RawTable, validate_rows
from bot.storage.models import AuditEntry, Case, Payment, Promise, PromiseStatus
from tests.field_office import ANN, BOB, BOSS, add_case, file_visit

SH = ZoneInfo("Asia/Shanghai")


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=SH)


async def _student_loans(harness: BotHarness, field: dict[str, int]) -> None:
    """Four student-loan cases of Ann's: one 120 days overdue, one with a promise broken in November, two fine."""
    for case_no, days in (("SL-1", 120), ("SL-2", 30), ("SL-3", 30), ("SL-4", 10)):
        case_id = await add_case(harness, case_no, field["ann"], (31.22, 121.47))
        async with harness.db.write() as session:
            await session.execute(update(Case).where(Case.id == case_id).values(portfolio="student_loan",
                                                                                overdue_days=days))
        if case_no == "SL-2":
            await file_visit(harness, field["ann"], case_id, "PTP", {"amount": "500", "promise_date": "2026-11-10"})
            async with harness.db.write() as session:
                await session.execute(update(Promise).where(Promise.case_id == case_id).values(
                    status=PromiseStatus.BROKEN.value, resolved_at=at("2026-11-11T09:00")))


async def _payments(harness: BotHarness, field: dict[str, int]) -> None:
    async with harness.db.write() as session:
        for n, (case_id, paid_on, yuan) in enumerate([(field["case"], date(2026, 11, 12), 30000),
                                                      (field["bobs_case"], date(2026, 11, 20), 60000),
                                                      (field["case"], date(2026, 12, 1), 9999)]):  # December
            session.add(Payment(case_id=case_id, amount_fen=yuan * 100, paid_on=paid_on, channel="转账",
                                reference=f"T{n}", row_key=f"{n:064d}", created_at=harness.clock.now()))


async def _targets(harness: BotHarness, field: dict[str, int]) -> None:
    now = harness.clock.now()
    async with harness.db.write() as session:
        await targets.set_default_rate(session, "student_loan", Decimal("5"), now=now)
        await targets.set_recovered(session, month="2026-11", amount_fen=5000000, collector_id=field["ann"], now=now)
        await targets.set_recovered(session, month="2026-11", amount_fen=5000000, collector_id=field["bob"], now=now)
        await targets.set_recovered(session, month="2026-11", amount_fen=20000000, team="A", now=now)
        # set again: replaced, not added
        await targets.set_recovered(session, month="2026-11", amount_fen=5000000, collector_id=field["bob"], now=now)


async def test_the_monthly_report_shows_the_default_rate_and_recovered_against_targets(
        harness: BotHarness, field: dict[str, int]) -> None:
    await _student_loans(harness, field)
    await _payments(harness, field)
    await _targets(harness, field)
    harness.clock.set(at("2026-12-01T09:00"))
    await harness.tick()
    [monthly] = [t for t in harness.api.texts(BOSS.id) if t.startswith("📊 Monthly report Nov 1, 2026")]
    assert "🎯 Ann: recovered CN¥30,000.00 of the target CN¥50,000.00 (60%)" in monthly
    assert "🎯 Bob: recovered CN¥60,000.00 of the target CN¥50,000.00 (120%)" in monthly
    assert "🎯 Team A: recovered CN¥90,000.00 of the target CN¥200,000.00 (45%)" in monthly
    assert ("⚠️ Student loan default rate 50.0% (2 of 4 cases open at the month's end over 90 days overdue or with "
            "a broken promise); target at most 5%") in monthly
    # each collector's own monthly report has their own target
    [ann_report] = [t for t in harness.api.texts(ANN.id) if t.startswith("📊 Monthly report")]
    assert "🎯 Ann: recovered CN¥30,000.00 of the target CN¥50,000.00 (60%)" in ann_report
    assert "Bob" not in ann_report and "Team A" not in ann_report
    async with harness.db.read() as session:
        audited = list(await session.scalars(select(AuditEntry).where(AuditEntry.action == "target.set")))
    assert len(audited) == 5


async def test_a_closed_case_leaves_the_rate_and_team_shows_the_month_so_far(harness: BotHarness,
                                                                             field: dict[str, int]) -> None:
    await _student_loans(harness, field)
    await _payments(harness, field)
    await _targets(harness, field)
    async with harness.db.write() as session:  # SL-1 closed in October: not open at November's end
        await session.execute(update(Case).where(Case.case_no == "SL-1").values(
            status="closed", status_changed_at=at("2026-10-30T10:00")))
    async with harness.db.read() as session:
        rate = await targets.default_rate(session, "student_loan", start=at("2026-11-01T00:00"),
                                          end=at("2026-12-01T00:00"))
    assert (rate.defaulted, rate.cases, rate.rate_pct, rate.within_target) == (1, 3, Decimal("33.3"), False)
    harness.clock.set(at("2026-11-25T10:00"))
    calls = await harness.send(harness.updates.command(BOSS, "/team"))
    text = harness.replies(calls)[-1]
    assert "🎯 Recovered this month CN¥90,000.00 of the target CN¥200,000.00" in text
    assert "🎯 Student loan default rate 33.3%; target at most 5%" in text


def test_the_import_reads_the_portfolio_column() -> None:
    base = {"案件编号": "", "委托方": "招商银行", "客户姓名": "李四", "地址": "上海", "欠款金额": "100", "产品": ""}
    rows = [{**base, "案件编号": f"A-{n}", "产品": word}
            for n, word in ((1, "助学贷款"), (2, ""), (3, "应收账款"), (4, "房贷"))]
    headers = list(rows[0])
    table = RawTable(headers=headers, rows=[(i + 2, r) for i, r in enumerate(rows)], format="csv", encoding="utf-8",
                     column_map={"case_no": "案件编号", "bank": "委托方", "debtor_name": "客户姓名", "address": "地址",
                                 "amount_due": "欠款金额", "portfolio": "产品"})
    result = validate_rows(table, default_bank=None)
    assert [(r.case_no, r.portfolio) for r in result.good] == [("A-1", "student_loan"), ("A-2", None),
                                                                ("A-3", "receivables")]
    assert [(r.row_number, r.reason) for r in result.rejects] == [(5, "bad_portfolio")]


def test_fieldbot_target_set_and_list(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    from bot.cli import main

    monkeypatch.setenv("FIELDBOT_DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path / 't.db'}")
    monkeypatch.setenv("FIELDBOT_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("FIELDBOT_DEFAULT_LOCALE", "en")
    monkeypatch.chdir(tmp_path)
    assert main(["staff", "add", "--name", "Ann", "--role", "collector", "--team", "A"]) == 0
    capsys.readouterr()
    assert main(["target", "set", "--portfolio", "student_loan", "--default-rate", "5"]) == 0
    assert capsys.readouterr().out.strip() == "Target saved: Student loan: default rate at most 5%"
    assert main(["target", "set", "--collector", "1", "--month", "2026-12", "--recovered", "50000"]) == 0
    assert capsys.readouterr().out.strip() == "Target saved: #1 2026-12: recover CN¥50,000.00"
    assert main(["target", "set", "--team", "A", "--month", "2026-12", "--recovered", "200000"]) == 0
    assert main(["target", "set", "--team", "A", "--month", "2026-13", "--recovered", "1"]) == 1
    assert 'The month "2026-13" should be written YYYY-MM.' in capsys.readouterr().err
    assert main(["target", "set", "--portfolio", "mortgage", "--default-rate", "5"]) == 1
    assert main(["target", "list"]) == 0
    listed = capsys.readouterr().out.splitlines()
    assert "Student loan: default rate at most 5%" in listed and "Team A 2026-12: recover CN¥200,000.00" in listed


async def test_a_collector_flags_malicious_default_for_the_supervisor(harness: BotHarness,
                                                                      field: dict[str, int]) -> None:
    calls = await harness.send(harness.updates.command(ANN, "/flag", "ZS-1"))
    assert harness.replies(calls)[-1] == "Why does the default look malicious, and what do you suggest?"
    calls = await harness.send(harness.updates.text(ANN, "Drives a new car, refuses every call; suggest a letter"))
    assert harness.replies(calls)[-1].startswith("🚩 Flagged as malicious default")
    calls = await harness.send(harness.updates.command(ANN, "/flag", "zs-1 Moved money to his wife's account"))
    assert harness.replies(calls)[-1].startswith("🚩 Flagged as malicious default")
    await harness.deliver_outbox()
    flagged = [t for t in harness.api.texts(BOSS.id) if t.startswith("🚩 Ann flags case ZS-1")]
    assert len(flagged) == 2 and flagged[0].endswith("Drives a new car, refuses every call; suggest a letter")
    # Bob does not hold ZS-1; the supervisor is no collector
    calls = await harness.send(harness.updates.command(BOB, "/flag", "ZS-1 nothing"))
    assert harness.replies(calls)[-1] == "You hold no open case ZS-1."
    calls = await harness.send(harness.updates.command(BOSS, "/flag", "ZS-1 nothing"))
    assert harness.replies(calls)[-1] == "You are not allowed to do that."
    async with harness.db.read() as session:
        rows = list(await session.scalars(select(AuditEntry).where(AuditEntry.action == "case.flag_malicious")))
    assert len(rows) == 2 and rows[0].object_id == str(field["case"])
    details = rows[0].details if isinstance(rows[0].details, dict) else json.loads(rows[0].details)
    assert details["reason"] == "Drives a new car, refuses every call; suggest a letter"

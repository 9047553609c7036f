"""Promise follow-up (kept or broken the working day after) and the weekly and monthly reports."""

from __future__ import annotations

import io
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from openpyxl import load_workbook
from sqlalchemy import select

from bot.sandbox.harness import BotHarness
from bot.services import reports
from bot.storage.models import AuditEntry, Case, Promise
from tests.conftest import TestDatabases
from tests.field_office import ANN, BOB, BOSS, file_visit

SH = ZoneInfo("Asia/Shanghai")


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=SH)


async def _promise(harness: BotHarness) -> Promise:
    async with harness.db.read() as session:
        return (await session.scalars(select(Promise))).one()


async def test_unpaid_promise_is_broken_the_working_day_after_and_back_on_the_list(
    harness: BotHarness, field: dict[str, int]
) -> None:
    # promised for Friday 6 Nov; the working day after is Monday 9 Nov
    await file_visit(harness, field["ann"], field["case"], "PTP", {"amount": "800.00", "promise_date": "2026-11-06"})
    for moment in ("2026-11-06T20:00", "2026-11-07T10:00", "2026-11-09T08:59"):
        harness.clock.set(at(moment))
        await harness.tick()
        assert (await _promise(harness)).status == "open"
    harness.clock.set(at("2026-11-09T09:00"))
    await harness.tick()
    promise = await _promise(harness)
    assert promise.status == "broken" and promise.resolved_at == at("2026-11-09T09:00")
    assert any(t.startswith("❗ Case ZS-1 (李*) promised CN¥800.00 by Nov 6, 2026") for t in harness.api.texts(ANN.id))
    assert any("back on Ann's visit list" in t for t in harness.api.texts(BOSS.id))
    calls = await harness.send(harness.updates.command(ANN, "/visits"))
    assert "ZS-1" in calls[-1].params["text"]
    async with harness.db.read() as session:
        case = await session.get(Case, field["case"])
        actions = (await session.scalars(select(AuditEntry.action).where(AuditEntry.action.like("promise.%")))).all()
    assert case is not None and (case.status, case.next_action) == ("visited", "revisit")
    assert actions == ["promise.broken"]
    await harness.tick()
    assert len([t for t in harness.api.texts(ANN.id) if t.startswith("❗")]) == 1


async def test_promise_paid_in_full_is_kept(harness: BotHarness, field: dict[str, int]) -> None:
    await file_visit(harness, field["ann"], field["case"], "PTP", {"amount": "800.00", "promise_date": "2026-11-04"})
    harness.clock.set(at("2026-11-04T15:00"))
    await file_visit(harness, field["ann"], field["case"], "PAID", {"amount": "800.00", "channel": "wechat"})
    harness.clock.set(at("2026-11-05T09:30"))
    await harness.tick()
    assert (await _promise(harness)).status == "kept"
    assert not any(t.startswith("❗") for t in harness.api.texts(ANN.id))


async def _a_week_of_work(harness: BotHarness, field: dict[str, int]) -> None:
    harness.clock.set(at("2026-11-03T10:00"))
    await file_visit(harness, field["ann"], field["case"], "PTP", {"amount": "800.00", "promise_date": "2026-11-05"})
    harness.clock.set(at("2026-11-04T11:00"))
    await file_visit(harness, field["bob"], field["bobs_case"], "NOBODY", {"revisit_date": "2026-11-10"})
    harness.clock.set(at("2026-11-06T10:00"))
    await harness.tick()  # Friday: the promise of Thursday is broken (no payment)
    harness.clock.set(at("2026-11-06T16:00"))
    await file_visit(harness, field["bob"], field["bobs_case"], "PART", {"amount": "300.00",
                                                                          "next_date": "2026-11-20"})


async def test_weekly_reports_go_out_monday_at_nine_once(harness: BotHarness, field: dict[str, int]) -> None:
    await _a_week_of_work(harness, field)
    harness.clock.set(at("2026-11-09T08:59"))
    await harness.tick()
    assert not any(t.startswith("📊") for t in harness.api.texts(ANN.id))
    harness.clock.set(at("2026-11-09T09:00"))
    await harness.tick()
    await harness.tick()
    ann = [t for t in harness.api.texts(ANN.id) if t.startswith("📊")]
    assert ann == ["📊 Weekly report Nov 2, 2026 – Nov 8, 2026 (A)\nAnn: 1 visits (Promise to pay 1); "
                   "promises 1 made, 0 kept, 1 broken; promised CN¥800.00, paid CN¥0.00; overdue 0; "
                   "extensions 0 (0 approved)"]
    bob = [t for t in harness.api.texts(BOB.id) if t.startswith("📊")]
    assert "Bob: 2 visits (Nobody home 1, Part-paid 1)" in bob[0] and "paid CN¥300.00" in bob[0]
    team = [t for t in harness.api.texts(BOSS.id) if t.startswith("📊")]
    assert len(team) == 1 and "(A)" in team[0] and "Total: 3 visits" in team[0]
    photos = harness.api.sent("sendPhoto", BOSS.id)
    documents = harness.api.sent("sendDocument", BOSS.id)
    assert len(photos) == 1 and photos[0].params["photo"]["size"] > 1000
    assert len(documents) == 1 and documents[0].params["document"]["filename"] == "weekly-A-20261102.xlsx"
    await harness.restart()
    harness.clock.advance(hours=3)
    await harness.tick()
    assert len([t for t in harness.api.texts(BOSS.id) if t.startswith("📊")]) == 1


async def test_monthly_report_on_the_first(harness: BotHarness, field: dict[str, int]) -> None:
    await _a_week_of_work(harness, field)
    harness.clock.set(at("2026-12-01T09:00"))
    await harness.tick()
    monthly = [t for t in harness.api.texts(BOSS.id) if t.startswith("📊 Monthly report Nov 1, 2026 – Nov 30, 2026")]
    assert len(monthly) == 1 and "Total: 3 visits" in monthly[0]
    documents = [c.params["document"]["filename"] for c in harness.api.sent("sendDocument", BOSS.id)]
    photos = [c.params["photo"]["filename"] for c in harness.api.sent("sendPhoto", BOSS.id)]
    assert "monthly-A-20261101.xlsx" in documents and "monthly-A-20261101.png" in photos


async def test_report_on_demand_with_chart_and_workbook(harness: BotHarness, field: dict[str, int]) -> None:
    await _a_week_of_work(harness, field)
    harness.clock.set(at("2026-11-10T15:00"))
    calls = await harness.send(harness.updates.command(BOSS, "/report", "week"))
    assert [c.method for c in calls if c.method.startswith("send")] == ["sendMessage", "sendPhoto", "sendDocument"]
    calls = await harness.send(harness.updates.command(ANN, "/report"))
    assert [c.method for c in calls if c.method.startswith("send")] == ["sendMessage"]
    assert calls[-1].params["text"].startswith("📊 Weekly report Nov 2, 2026 – Nov 8, 2026")


async def test_xlsx_export_holds_the_figures(harness: BotHarness, field: dict[str, int]) -> None:
    from bot.i18n import Translator

    await _a_week_of_work(harness, field)
    async with harness.db.read() as session:
        built = await reports.build(session, reports.Period(reports.WEEKLY, at("2026-11-02T00:00").date(),
                                                            at("2026-11-09T00:00").date()),
                                    calendar=harness.runtime.calendar, team="A")
    book = load_workbook(io.BytesIO(reports.xlsx_bytes(Translator("en"), built, SH)))
    summary = [list(r) for r in book["Summary"].iter_rows(values_only=True)]
    assert summary[0][:7] == ["Collector", "Visits", "Promises made", "Kept", "Broken",
                              "Amount promised", "Amount paid"]
    assert summary[1][:7] == ["Ann", 1, 1, 0, 1, 800, 0]
    assert summary[2][:7] == ["Bob", 2, 0, 0, 0, 0, 300]
    assert summary[3][:2] == ["Total", 3]
    visits = [list(r) for r in book["Visits"].iter_rows(values_only=True)]
    assert [row[2] for row in visits[1:]] == ["ZS-1", "ZS-2", "ZS-2"]
    assert visits[1][3] == datetime(2026, 11, 3, 10, 0)


def test_report_from_the_shell(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                               capsys: pytest.CaptureFixture[str], db_urls: TestDatabases) -> None:
    from bot.cli import main

    monkeypatch.setenv("FIELDBOT_DATABASE_URL", db_urls.url(tmp_path / "r.db"))
    monkeypatch.setenv("FIELDBOT_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("FIELDBOT_DEFAULT_LOCALE", "en")
    monkeypatch.chdir(tmp_path)
    assert main(["staff", "add", "--name", "Ann", "--role", "collector", "--team", "A"]) == 0
    out = tmp_path / "week.xlsx"
    assert main(["report", "weekly", "--team", "A", "--out", str(out), "--chart", str(tmp_path / "c.png"),
                 "--today", "2026-11-09"]) == 0
    printed = capsys.readouterr().out
    assert "Weekly report Nov 2, 2026 – Nov 8, 2026 (A)" in printed and "Ann: 0 visits" in printed
    assert load_workbook(out)["Summary"]["A2"].value == "Ann"
    assert (tmp_path / "c.png").read_bytes().startswith(b"\x89PNG")

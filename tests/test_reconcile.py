"""The monthly reconciliation XLSX per bank, and reports that read in Chinese and count the bank's payments."""

from __future__ import annotations

import io
import warnings
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from openpyxl import load_workbook
from sqlalchemy import func, select

from bot.i18n import Translator
from bot.sandbox.harness import BotHarness
from bot.services import reconciliation, reports
from bot.services.calendar import WorkCalendar
from bot.storage.db import Database
from bot.storage.models import Assignment, Case, Payment, Promise, Staff, Visit
from tests.field_office import ADMIN, ANN, BOSS, LEAD, file_visit

SH = ZoneInfo("Asia/Shanghai")
BANK = "招商银行"


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=SH)


async def _seed(database: Database) -> dict[str, int]:
    """Two collectors, three cases of the bank and one of another, visits, promises and payments in and
    around November 2026."""
    t0 = at("2026-10-20T09:00")
    async with database.write() as session:
        wang = Staff(name="王磊", role="collector", team="A", active=True, created_at=t0)
        chen = Staff(name="陈静", role="collector", team="A", active=True, created_at=t0)
        session.add_all([wang, chen])
        await session.flush()
        cases = []
        for n, (bank, due, who) in enumerate([(BANK, 500000, wang), (BANK, 300000, chen), (BANK, 100000, wang),
                                              ("中信银行", 900000, chen)], start=1):
            case = Case(bank=bank, case_no=f"C-{n}", debtor_name=f"客户{n}", address="上海", amount_due_fen=due,
                        status="assigned", created_at=t0, updated_at=t0)
            session.add(case)
            await session.flush()
            session.add(Assignment(case_id=case.id, staff_id=who.id, assigned_at=t0, reason="test"))
            cases.append(case)
        for case, who, filed, code, amount in [
                (cases[0], wang, at("2026-10-30T10:00"), "NOBODY", None),  # October: not in the month
                (cases[0], wang, at("2026-11-03T10:00"), "PTP", 200000),
                (cases[1], chen, at("2026-11-04T15:00"), "PART", 50000),
                (cases[3], chen, at("2026-11-05T15:00"), "PTP", 100000)]:  # another bank
            visit = Visit(case_id=case.id, collector_id=who.id, status="filed", started_at=filed, updated_at=filed,
                          filed_at=filed, code=code, amount_fen=amount, details={}, revision=0, checkin_flagged=False)
            session.add(visit)
            await session.flush()
            if code == "PTP":
                session.add(Promise(case_id=case.id, visit_id=visit.id, collector_id=who.id, amount_fen=amount or 0,
                                    due_on=date(2026, 11, 10), status="kept" if case is cases[0] else "open",
                                    paid_fen=200000 if case is cases[0] else 0, created_at=filed))
        for n, (case, paid_on, amount) in enumerate([
                (cases[0], date(2026, 10, 28), 10000),  # before the month: in the total only
                (cases[0], date(2026, 11, 8), 200000),
                (cases[1], date(2026, 11, 4), 50000),
                (cases[2], date(2026, 11, 30), 100000),
                (cases[2], date(2026, 12, 1), 7000),  # after the month: nowhere
                (cases[3], date(2026, 11, 9), 30000)]):  # another bank
            session.add(Payment(case_id=case.id, amount_fen=amount, paid_on=paid_on, channel="微信",
                                reference=f"R{n}", row_key=f"{n:064d}", created_at=t0))
    return {"wang": wang.id, "chen": chen.id}


async def test_reconciliation_workbook_opens_and_its_totals_match_the_database(any_database: Database) -> None:
    await _seed(any_database)
    async with any_database.read() as session:
        recon = await reconciliation.build(session, BANK, date(2026, 11, 1), tz=SH)
        in_month = await session.scalar(select(func.sum(Payment.amount_fen)).join(Case).where(
            Case.bank == BANK, Payment.paid_on >= date(2026, 11, 1), Payment.paid_on < date(2026, 12, 1)))
        due = await session.scalar(select(func.sum(Case.amount_due_fen)).where(Case.bank == BANK))
        visits = await session.scalar(select(func.count()).select_from(Visit).join(Case).where(
            Case.bank == BANK, Visit.filed_at >= at("2026-11-01T00:00"), Visit.filed_at < at("2026-12-01T00:00")))
        promised = await session.scalar(select(func.sum(Promise.amount_fen)).join(Case).where(Case.bank == BANK))
    book = load_workbook(io.BytesIO(reconciliation.xlsx_bytes(Translator("zh_CN"), recon, SH)))
    assert book.sheetnames == ["案件", "本月外访", "还款承诺", "本月还款"]
    cases = [list(r) for r in book["案件"].iter_rows(values_only=True)]
    assert cases[0] == ["案件编号", "客户姓名", "状态", "原因", "外访员", "欠款金额", "本月还款", "累计还款"]
    assert [r[0] for r in cases[1:-1]] == ["C-1", "C-2", "C-3"]
    assert cases[1][4] == "王磊" and cases[2][4] == "陈静"
    total = cases[-1]
    assert total[0] == "合计" and total[1] == 3
    assert round(total[5] * 100) == due == 900000
    assert round(total[6] * 100) == in_month == 350000
    assert round(total[7] * 100) == 360000  # October's 100 counts in the total paid, December's 70 nowhere
    visit_rows = list(book["本月外访"].iter_rows(values_only=True))
    assert visit_rows[-1][:2] == ("合计", visits) and visits == 2
    assert visit_rows[1][1:4] == ("王磊", "C-1", "PTP 承诺还款")
    promise_rows = list(book["还款承诺"].iter_rows(values_only=True))
    assert promise_rows[-1][:3] == ("合计", 1, promised / 100) and promise_rows[1][5] == "已履行"
    payment_rows = list(book["本月还款"].iter_rows(values_only=True))
    assert payment_rows[-1][:3] == ("合计", 3, in_month / 100)
    assert [r[0] for r in payment_rows[1:-1]] == ["C-2", "C-1", "C-3"]


async def test_reconcile_command_for_admins_only(harness: BotHarness, office: dict[str, int]) -> None:
    harness.clock.set(at("2026-12-02T10:00"))
    calls = await harness.send(harness.updates.command(ADMIN, "/reconcile", f"{BANK} 2026-11"))
    documents = [c for c in calls if c.method == "sendDocument"]
    assert len(documents) == 1 and documents[0].params["document"]["filename"] == "reconciliation-2026-11.xlsx"
    assert documents[0].params["caption"].startswith(f"📒 Reconciliation with {BANK} for 2026-11: 2 cases")
    calls = await harness.send(harness.updates.command(ADMIN, "/reconcile"))
    assert calls[-1].params["text"].startswith("Usage: /reconcile BANK") and BANK in calls[-1].params["text"]
    calls = await harness.send(harness.updates.command(BOSS, "/reconcile", BANK))
    assert not [c for c in calls if c.method == "sendDocument"]


# ---- reports -----------------------------------------------------------------------------------------------


async def test_chart_writes_chinese_names_and_a_translated_legend(any_database: Database) -> None:
    await _seed(any_database)
    period = reports.Period(reports.MONTHLY, date(2026, 11, 1), date(2026, 12, 1))
    async with any_database.read() as session:
        built = await reports.build(session, period, calendar=WorkCalendar(tz=SH), team="A")
    assert reports.cjk_font() is not None
    labels, legend = reports.chart_labels(built, Translator("zh_CN"))
    assert labels == ["王磊", "陈静"] and not any(label.startswith("#") for label in labels)
    assert set(legend) == {"PART", "PTP"} and legend["PTP"] == "承诺还款"
    assert all(not name.isascii() for name in legend.values())
    _, english = reports.chart_labels(built, Translator("en"))
    assert english == {"PART": "Part-paid", "PTP": "Promise to pay"}
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # matplotlib warns "Glyph ... missing from font" for what it cannot draw
        png = reports.chart_png(built, Translator("zh_CN"))
    assert png.startswith(b"\x89PNG")
    # every bank's payments count for whoever held the case that day: 2000 + 1000 for 王磊, 500 + 300 for 陈静
    recovered = {row.name: row.recovered_fen for row in built.rows}
    assert recovered == {"王磊": 300000, "陈静": 80000}
    text = reports.report_text(Translator("en"), built)
    assert "recovered per the bank CN¥3,000.00" in text


async def test_team_lead_and_admin_get_their_reports(harness: BotHarness, office: dict[str, int],
                                                     tmp_path: Path) -> None:
    harness.clock.set(at("2026-11-03T10:00"))
    await file_visit(harness, office["ann"], office["case"], "PTP", {"amount": "800.00", "promise_date": "2026-11-05"})
    harness.clock.set(at("2026-11-09T09:00"))
    await harness.tick()
    await harness.tick()
    lead = [t for t in harness.api.texts(LEAD.id) if t.startswith("📊")]
    admin = [t for t in harness.api.texts(ADMIN.id) if t.startswith("📊")]
    assert len(lead) == 1 and "(A)" in lead[0] and "Ann: 1 visits" in lead[0]
    assert len(admin) == 1 and "Team A: 1 visits, recovered CN¥0.00" in admin[0]
    assert len(harness.api.sent("sendPhoto", LEAD.id)) == 1 and len(harness.api.sent("sendPhoto", ADMIN.id)) == 1
    assert [t for t in harness.api.texts(ANN.id) if t.startswith("📊")]

"""Repayments from the bank: the file goes in once, settles promises, closes paid cases; recall files close cases."""

from __future__ import annotations

import asyncio
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from bot.clock import ManualClock
from bot.i18n import Translator
from bot.sandbox.harness import BotHarness
from bot.services import case_file, intake, payments
from bot.services.calendar import WorkCalendar
from bot.storage.db import Database
from bot.storage.media import MediaStore
from bot.storage.models import AuditEntry, Case, CaseImport, Payment, Promise, Reminder, Staff
from tests.field_office import ADMIN, ANN, BOB, BOSS, add_case, file_visit

SH = ZoneInfo("Asia/Shanghai")
BANK = "招商银行"


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=SH)


# Ten rows: eight payments, row 10 repeats row 2, row 7 has no amount that reads.
REPAYMENTS = "\n".join([
    "案件编号,委托方,还款金额,还款日期,还款渠道,流水号",
    f"ZS-1,{BANK},500.00,2026-11-03,微信,A1",
    f"ZS-1,{BANK},300.00,2026-11-05,支付宝,A2",
    f"ZS-2,{BANK},400,2026/11/04,银行转账,B1",
    f"ZS-3,{BANK},\"10,000.00\",2026-11-03,银行转账,C1",
    f"ZS-3,{BANK},2345.60,2026-11-04,银行转账,C2",
    f"ZS-4,{BANK},100,2026-11-02,现金,D1",
    f"ZS-4,{BANK},一百元,2026-11-03,现金,D2",
    f"ZS-4,{BANK},200,2026-11-03,现金,D3",
    f"ZS-1,{BANK},50,2026-11-04,微信,A3",
    f"ZS-1,{BANK},500.00,2026-11-03,微信,A1",
]).encode("utf-8-sig")


async def _import(harness: BotHarness, data: bytes = REPAYMENTS, name: str = "repay.csv") -> payments.PaymentSummary:
    runtime = harness.runtime
    return await payments.import_payments(harness.db, data, name, clock=runtime.clock, calendar=runtime.calendar,
                                          media=runtime.media)


@pytest.fixture
async def cases(harness: BotHarness, field: dict[str, int]) -> dict[str, int]:
    ids = {"ZS-1": field["case"], "ZS-2": field["bobs_case"]}
    ids["ZS-3"] = await add_case(harness, "ZS-3", field["ann"], (31.21, 121.45))
    ids["ZS-4"] = await add_case(harness, "ZS-4", field["bob"], (31.22, 121.46))
    # promises made on Monday 2 Nov: Ann's 800 by Friday, Bob's 1000 by Wednesday
    await file_visit(harness, field["ann"], ids["ZS-1"], "PTP", {"amount": "800.00", "promise_date": "2026-11-06"})
    await file_visit(harness, field["bob"], ids["ZS-2"], "PTP", {"amount": "1000.00", "promise_date": "2026-11-04"})
    await harness.deliver_outbox()
    harness.api.clear()
    return ids


async def _snapshot(harness: BotHarness) -> tuple[object, ...]:
    async with harness.db.read() as session:
        pays = (await session.execute(select(Payment.case_id, Payment.amount_fen, Payment.paid_on, Payment.row_key)
                                      .order_by(Payment.id))).all()
        cases = (await session.execute(select(Case.case_no, Case.status, Case.status_reason).order_by(Case.id))).all()
        promises = (await session.execute(select(Promise.id, Promise.status, Promise.paid_fen, Promise.resolved_at)
                                          .order_by(Promise.id))).all()
    return tuple(pays), tuple(cases), tuple(promises)


async def test_repayment_file_settles_promises_closes_a_paid_case_and_goes_in_once(
        harness: BotHarness, field: dict[str, int], cases: dict[str, int]) -> None:
    harness.clock.set(at("2026-11-05T18:00"))
    summary = await _import(harness)
    assert (summary.rows_total, summary.imported, summary.duplicate, summary.rejected) == (10, 8, 1, 1)
    assert summary.exit_code == payments.EXIT_SOME_REJECTED
    assert [(r.row_number, r.reason) for r in summary.rejects] == [(8, "bad_amount")]
    rejects = summary.rejects_csv(Translator("en"))
    assert rejects is not None and 'amount paid ""一百元"" is not a positive number' in rejects.decode("utf-8-sig")
    assert summary.closed == ["ZS-3"]

    async with harness.db.read() as session:
        assert await session.scalar(select(func.count()).select_from(Payment)) == 8
        zs3 = await session.get(Case, cases["ZS-3"])
        assert zs3 is not None and (zs3.status, zs3.status_reason) == ("paid", "paid_in_full")
        assert zs3.status_changed_at == at("2026-11-05T18:00")
        ann_promise = await session.scalar(select(Promise).where(Promise.case_id == cases["ZS-1"]))
        bob_promise = await session.scalar(select(Promise).where(Promise.case_id == cases["ZS-2"]))
        # Ann's 800 by Friday: 500 + 300 + 50 paid by the bank from Monday on: kept at once
        assert ann_promise is not None and (ann_promise.status, ann_promise.paid_fen) == ("kept", 85000)
        # Bob's 1000 by Wednesday: 400 paid so far; open until its follow-up day
        assert bob_promise is not None and (bob_promise.status, bob_promise.paid_fen) == ("open", 40000)
        record = await session.scalar(select(CaseImport).where(CaseImport.kind == "payments"))
        assert record is not None and (record.imported, record.unchanged, record.rejected) == (8, 1, 1)
        actions = list(await session.scalars(select(AuditEntry.action).order_by(AuditEntry.seq)))
    assert actions.count("payment.new") == 8 and "case.closed.paid_in_full" in actions and "promise.kept" in actions
    assert record.stored_path and await harness.runtime.media.read(record.stored_path) == REPAYMENTS

    await harness.deliver_outbox()
    assert any("ZS-3" in t and "paid in full" in t for t in harness.api.texts(ANN.id))
    assert any("ZS-3" in t and "paid in full" in t and "Ann" in t for t in harness.api.texts(BOSS.id))
    calls = await harness.send(harness.updates.command(ANN, "/visits"))
    assert "ZS-3" not in calls[-1].params["text"]

    # The follow-up the working day after Wednesday: Bob's promise is partly kept (400 of 1000), not broken.
    harness.clock.set(at("2026-11-05T18:30"))
    await harness.tick()
    async with harness.db.read() as session:
        bob_promise = await session.scalar(select(Promise).where(Promise.case_id == cases["ZS-2"]))
    assert bob_promise is not None and (bob_promise.status, bob_promise.paid_fen) == ("partial", 40000)
    assert any("paid only CN¥400.00" in t for t in harness.api.texts(BOB.id))

    before = await _snapshot(harness)
    harness.clock.set(at("2026-11-06T10:00"))
    again = await _import(harness)
    assert (again.imported, again.duplicate, again.rejected, again.closed, again.settled) == (0, 9, 1, [], 0)
    assert await _snapshot(harness) == before


async def test_late_bank_file_turns_a_broken_promise_kept(harness: BotHarness, field: dict[str, int],
                                                        cases: dict[str, int]) -> None:
    harness.clock.set(at("2026-11-05T09:30"))
    await harness.tick()  # Bob's promise of Wednesday: nothing known paid yet, broken
    async with harness.db.read() as session:
        assert (await session.scalar(select(Promise.status).where(Promise.case_id == cases["ZS-2"]))) == "broken"
    harness.clock.set(at("2026-11-06T10:00"))
    data = "案件编号,还款金额,还款日期\nZS-2,1000,2026-11-04\n".encode()
    summary = await payments.import_payments(harness.db, data, "late.csv", clock=harness.clock,
                                             calendar=harness.runtime.calendar, media=harness.runtime.media,
                                             bank=BANK)
    assert (summary.imported, summary.settled, summary.exit_code) == (1, 1, 0)
    async with harness.db.read() as session:
        promise = await session.scalar(select(Promise).where(Promise.case_id == cases["ZS-2"]))
    assert promise is not None and (promise.status, promise.paid_fen) == ("kept", 100000)


async def test_unknown_cases_and_bad_dates_are_rejected_with_reasons(harness: BotHarness, field: dict[str, int],
                                                                     cases: dict[str, int]) -> None:
    data = ("case_no,bank,amount,paid_on\nZS-99,招商银行,10,2026-11-01\nZS-1,招商银行,10,someday\n"
            ",招商银行,1,2026-11-01\n")
    summary = await _import(harness, data.encode(), "en.csv")
    assert [(r.row_number, r.reason) for r in summary.rejects] == [
        (2, "unknown_case"), (3, "bad_date"), (4, "missing_case_no")]
    assert summary.exit_code == payments.EXIT_NOTHING
    t = Translator("zh_CN")
    assert payments.reject_reason(t, summary.rejects[0]) == "系统中没有 招商银行 的案件 ZS-99"


async def test_admin_sends_the_repayment_file_to_the_bot(harness: BotHarness, office: dict[str, int],
                                                         cases: dict[str, int]) -> None:
    harness.clock.set(at("2026-11-05T18:00"))
    calls = await harness.send(harness.document_update(ADMIN, REPAYMENTS, "还款0105.csv"))
    edits = [c.params["text"] for c in calls if c.method == "editMessageText"]
    assert edits[-1].startswith('Repayment file "还款0105.csv" imported:\n8 new payments, 1 duplicates')
    assert "1 cases paid in full and closed: ZS-3" in edits[-1]
    documents = [c for c in calls if c.method == "sendDocument"]
    assert len(documents) == 1 and documents[0].params["document"]["filename"] == "还款0105.rejects.csv"
    async with harness.db.read() as session:
        assert await session.scalar(select(func.count()).select_from(Payment)) == 8
        assert await session.scalar(select(func.count()).select_from(Case).where(Case.case_no.like("ZS-%"))) == 4
        record = await session.scalar(select(CaseImport))
    assert record is not None and (record.kind, record.actor_id) == ("payments", office["admin"])


async def test_a_supervisor_sending_a_repayment_file_is_refused(harness: BotHarness, office: dict[str, int],
                                                                cases: dict[str, int]) -> None:
    calls = await harness.send(harness.document_update(BOSS, REPAYMENTS, "repay.csv"))
    assert [c.method for c in calls] == ["sendMessage"]
    assert "admin" in calls[0].params["text"].lower()
    async with harness.db.read() as session:
        assert await session.scalar(select(func.count()).select_from(Payment)) == 0


async def test_recall_file_closes_cases_and_tells_people(harness: BotHarness, office: dict[str, int],
                                                         cases: dict[str, int]) -> None:
    async with harness.db.read() as session:
        pending = await session.scalar(select(func.count()).select_from(Reminder).where(
            Reminder.case_id == cases["ZS-3"], Reminder.done_at.is_(None)))
    assert pending  # ZS-3 has its visit reminders
    data = "案件编号\nZS-3\nZS-4\nZS-404\n".encode("gbk")
    calls = await harness.send(harness.document_update(ADMIN, data, "召回.csv", caption=f"召回 {BANK}"))
    edits = [c.params["text"] for c in calls if c.method == "editMessageText"]
    assert edits[-1] == 'Recall file "召回.csv" done:\n2 cases closed as recalled, 0 already closed, 1 rejected.'
    async with harness.db.read() as session:
        closed = (await session.execute(select(Case.case_no, Case.status, Case.status_reason)
                                        .where(Case.case_no.in_(["ZS-3", "ZS-4"])).order_by(Case.case_no))).all()
        pending = await session.scalar(select(func.count()).select_from(Reminder).where(
            Reminder.case_id == cases["ZS-3"], Reminder.done_at.is_(None)))
        actions = list(await session.scalars(select(AuditEntry.action).where(
            AuditEntry.action == "case.closed.recalled")))
    assert [tuple(r) for r in closed] == [("ZS-3", "closed", "recalled"), ("ZS-4", "closed", "recalled")]
    assert pending == 0 and len(actions) == 2
    await harness.deliver_outbox()
    assert any("ZS-3" in t and "recalled by 招商银行" in t for t in harness.api.texts(ANN.id))
    assert any("ZS-4" in t and "recalled" in t for t in harness.api.texts(BOB.id))
    assert len([t for t in harness.api.texts(BOSS.id) if "recalled" in t]) == 2


async def test_recall_column_in_a_case_file(harness: BotHarness, field: dict[str, int],
                                            cases: dict[str, int]) -> None:
    data = ("案件编号,委托方,客户姓名,地址,欠款金额,召回\n"
            f"ZS-1,{BANK},李四,上海市浦东新区世纪大道100号,12345.60,是\n"
            f"ZS-9,{BANK},王五,上海市黄浦区南京东路1号,800,\n").encode()
    runtime = harness.runtime
    summary = await intake.import_file(harness.db, data, "cases.csv", clock=runtime.clock, calendar=runtime.calendar,
                                       media=runtime.media)
    assert summary.recalled == ["ZS-1"] and summary.imported == 1
    async with harness.db.read() as session:
        case = await session.get(Case, cases["ZS-1"])
    assert case is not None and (case.status, case.status_reason) == ("closed", "recalled")


def test_the_bot_tells_a_repayment_file_from_a_case_file() -> None:
    assert case_file.sniff_kind(REPAYMENTS, "r.csv") == "payments"
    assert case_file.sniff_kind("案件编号,客户姓名,地址,欠款金额,还款金额,还款日期\n1,a,b,1,1,2026-01-01\n".encode(),
                                "c.csv") == "cases"
    assert intake.kind_of_upload(b"case_no\n1\n", "x.csv", "recall 中信银行") == ("recall", "中信银行")
    assert intake.kind_of_upload(REPAYMENTS, "x.csv", "中信银行") == ("payments", "中信银行")


# ---- on both databases ----------------------------------------------------------------------------------


async def _small_office(database: Database) -> None:
    now = at("2026-11-02T09:00")
    async with database.write() as session:
        session.add(Staff(name="王磊", role="collector", team="A", active=True, created_at=now))
        for n in range(1, 6):
            session.add(Case(bank=BANK, case_no=f"ZS-{n}", debtor_name="李四", address="上海", amount_due_fen=1234560,
                             status="new", created_at=now, updated_at=now))


async def test_two_imports_of_one_file_at_once_record_each_payment_once(any_database: Database, tmp_path) -> None:
    await _small_office(any_database)
    clock = ManualClock(at("2026-11-05T18:00"))
    calendar = WorkCalendar(tz=SH)

    async def one(n: int) -> payments.PaymentSummary:
        return await payments.import_payments(any_database, REPAYMENTS, f"r{n}.csv", clock=clock, calendar=calendar,
                                              media=MediaStore(tmp_path / "media"))

    first, second = await asyncio.gather(one(1), one(2))
    assert first.imported + second.imported == 8
    assert first.duplicate + second.duplicate == 1 + 9
    async with any_database.read() as session:
        assert await session.scalar(select(func.count()).select_from(Payment)) == 8
        assert await session.scalar(select(func.count()).select_from(AuditEntry).where(
            AuditEntry.action == "payment.new")) == 8
        assert await session.scalar(select(func.count()).select_from(AuditEntry).where(
            AuditEntry.action == "case.closed.paid_in_full")) == 1
        assert (await session.scalar(select(Case.status).where(Case.case_no == "ZS-3"))) == "paid"


async def test_a_paid_case_with_its_payments_is_purged_when_its_time_comes(harness: BotHarness, field: dict[str, int],
                                                                          cases: dict[str, int]) -> None:
    from datetime import date

    from bot.services import retention

    harness.clock.set(at("2026-11-05T18:00"))
    await _import(harness)
    async with harness.db.write() as session:
        case = await session.get(Case, cases["ZS-3"])
        assert case is not None and case.status == "paid"
        case.contract_end = date(2020, 6, 30)
    runtime = harness.runtime
    result = await retention.purge(runtime.db, runtime.media, today=date(2026, 11, 6), now=runtime.clock.now())
    assert [p.case_no for p in result.purged] == ["ZS-3"]
    assert result.purged[0].rows["payments"] == 2
    async with harness.db.read() as session:
        assert await session.scalar(select(func.count()).select_from(Payment).where(
            Payment.case_id == cases["ZS-3"])) == 0
        assert await session.scalar(select(func.count()).select_from(Payment)) == 6
        record = await session.scalar(select(CaseImport).where(CaseImport.kind == "payments"))
    assert record is not None  # the repayment file still holds the other cases' payments

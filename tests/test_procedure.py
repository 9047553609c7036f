"""The rest of the procedure: banks and their agreements (and retention by the agreement's end), reports to a
bank's emergency contact, final notices by registered letter with their 10-day term, special procedures."""

from __future__ import annotations

import asyncio
import json
from datetime import date, datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select

from bot.cli import main
from bot.clock import ManualClock
from bot.runtime import Runtime
from bot.sandbox.harness import BotHarness, sandbox_settings
from bot.services import banks, letters, retention
from bot.services.calendar import WorkCalendar
from bot.storage import migrate
from bot.storage.db import Database
from bot.storage.models import (
    AuditEntry,
    BankAlert,
    Case,
    Letter,
    LetterStatus,
    PurgedCase,
    SpecialProcedure,
    SpecialStatus,
)
from tests.conftest import SHANGHAI
from tests.field_office import ADMIN, ANN, BOSS, ZED

FORBIDDEN = "You are not allowed to do that."
CALENDAR = WorkCalendar()


async def _audit_actions(harness: BotHarness, case_id: int) -> list[str]:
    async with harness.db.read() as session:
        return list(await session.scalars(select(AuditEntry.action).where(
            AuditEntry.object_type == "case", AuditEntry.object_id == str(case_id),
            AuditEntry.action.like("bank.%") | AuditEntry.action.like("letter.%")
            | AuditEntry.action.like("special.%")).order_by(AuditEntry.seq)))


async def _set_team(harness: BotHarness, case_id: int, team: str) -> None:
    async with harness.db.write() as session:
        case = await session.get(Case, case_id)
        assert case is not None
        case.team = team


async def _card(harness: BotHarness, user: object, case_no: str) -> str:
    calls = await harness.send(harness.updates.command(user, "/case", case_no))  # type: ignore[arg-type]
    return harness.replies(calls)[-1]


# ---- the 10-day term ------------------------------------------------------------------------------------------


def test_a_letter_signed_on_a_friday_ends_at_the_end_of_its_tenth_calendar_day() -> None:
    friday = date(2026, 12, 4)
    assert friday.weekday() == 4
    start, end = letters.term("signed", sent_on=date(2026, 12, 1), signed_on=friday)
    assert (start, end) == (friday, date(2026, 12, 13))  # day 1 is the signing day; Sunday the 13th is day 10
    assert letters.ends_at(end, CALENDAR) == datetime(2026, 12, 14, 0, 0, tzinfo=SHANGHAI)
    assert letters.remind_at(end, CALENDAR) == datetime(2026, 12, 11, 9, 0, tzinfo=SHANGHAI)
    # calendar days: a term running over the National Day holiday is not made longer
    assert letters.term("signed", sent_on=date(2026, 9, 28), signed_on=date(2026, 9, 30))[1] == date(2026, 10, 9)


def test_a_refused_or_undeliverable_letter_counts_from_sending_plus_3_days() -> None:
    monday = date(2026, 11, 30)
    for outcome in ("refused", "undeliverable"):
        start, end = letters.term(outcome, sent_on=monday)
        assert (start, end) == (date(2026, 12, 3), date(2026, 12, 12))


async def test_a_letter_in_chat_its_term_on_the_card_the_reminder_the_expiry_and_the_teams_day(
        harness: BotHarness, office: dict[str, int]) -> None:
    case_id = office["case"]
    await _set_team(harness, case_id, "A")
    calls = await harness.send(harness.updates.command(BOSS, "/letter", "ZS-1"))
    assert "on which day was the registered letter sent" in harness.replies(calls)[-1]
    await harness.send(harness.updates.text(BOSS, "2026-11-02"))
    calls = await harness.send(harness.updates.text(BOSS, "XA123456789CN"))
    assert harness.replies(calls)[-1].startswith("✉️ Letter recorded: tracking XA123456789CN")
    # another team's supervisor cannot record or mark this case's letter
    calls = await harness.send(harness.updates.command(ZED, "/letter", "ZS-1"))
    assert FORBIDDEN in harness.replies(calls)[-1]
    calls = await harness.send(harness.updates.button(ZED, f"lt:mark:{case_id}:refused", forge=True))
    assert await _letter(harness, case_id) == (LetterStatus.SENT.value, None)

    harness.clock.set(datetime(2026, 11, 6, 15, 0, tzinfo=SHANGHAI))  # Friday
    calls = await harness.send(harness.updates.button(BOSS, f"lt:mark:{case_id}:signed"))
    assert "did the debtor sign for it" in harness.replies(calls)[-1]
    calls = await harness.send(harness.updates.text(BOSS, "today"))
    assert "ends at the end of Nov 15, 2026 (calendar days)" in harness.replies(calls)[-1]
    assert await _letter(harness, case_id) == (LetterStatus.SIGNED.value, date(2026, 11, 15))
    card = await _card(harness, BOSS, "ZS-1")
    assert "Registered letter sent (Boss): Nov 2, 2026, tracking XA123456789CN" in card
    assert "Letter signed for on Nov 6, 2026 (recorded by Boss): the 10-day term ends at the end of Nov 15" in card

    harness.api.clear()
    harness.clock.set(datetime(2026, 11, 13, 8, 59, tzinfo=SHANGHAI))
    await harness.tick()
    assert not [t for t in harness.api.texts(BOSS.id) if "2 days left" in t]
    harness.clock.advance(minutes=1)  # 09:00 two days before the last day
    await harness.tick()
    await harness.tick()  # a second run sends nothing again
    assert len([t for t in harness.api.texts(BOSS.id) if "2 days left" in t]) == 1

    harness.clock.set(datetime(2026, 11, 16, 0, 0, tzinfo=SHANGHAI))  # the end of the 15th
    await harness.tick()  # expired now; the notice waits for the end of the quiet hours
    harness.clock.set(datetime(2026, 11, 16, 9, 0, tzinfo=SHANGHAI))
    await harness.tick()
    await harness.tick()
    expired = [t for t in harness.api.texts(BOSS.id) if "ended with" in t]
    assert len(expired) == 1 and "Case ZS-1" in expired[0]
    calls = await harness.send(harness.updates.command(BOSS, "/team"))
    day = harness.replies(calls)[-1]
    assert "waiting for the next step: 1" in day and "ZS-1: term ended with Nov 15, 2026" in day
    assert await _audit_actions(harness, case_id) == ["letter.sent", "letter.signed", "letter.expired"]


async def _letter(harness: BotHarness, case_id: int) -> tuple[str, date | None]:
    async with harness.db.read() as session:
        letter = await letters.latest(session, case_id)
        assert letter is not None
        return letter.status, letter.term_end


async def test_a_refused_letter_marked_in_chat_counts_from_sending_plus_3_days(
        harness: BotHarness, office: dict[str, int]) -> None:
    case_id = office["case"]
    async with harness.db.write() as session:
        await letters.record(session, None, case_id, sent_on=date(2026, 10, 30), tracking="XA1",
                             now=harness.clock.now(), calendar=CALENDAR)
    calls = await harness.send(harness.updates.command(ADMIN, "/letter", "ZS-1"))
    assert "waits for its delivery result" in harness.replies(calls)[-1]
    update = harness.updates.button(ADMIN, f"lt:mark:{case_id}:refused")
    calls = await harness.send(update)
    assert "from the sending date plus 3 days, Nov 2, 2026, and ends at the end of Nov 11, 2026" in \
        harness.replies(calls)[-1]
    await harness.replay(update)  # a second delivery changes nothing
    assert await _letter(harness, case_id) == (LetterStatus.REFUSED.value, date(2026, 11, 11))
    assert (await _audit_actions(harness, case_id)).count("letter.refused") == 1


# ---- banks, agreements and the emergency contact ----------------------------------------------------------------


async def test_banks_and_a_report_to_the_banks_emergency_contact(harness: BotHarness, office: dict[str, int]) -> None:
    case_id = office["case"]
    async with harness.db.write() as session:
        await banks.add_bank(session, name="招商银行", agreement_no="CMB-2026-07", start=date(2026, 1, 1),
                             end=date(2028, 12, 31), routine_contact="王经理 021-5555 0101",
                             emergency_contact="风险部 张主任 139 0000 1111", now=harness.clock.now())
    calls = await harness.send(harness.updates.command(ADMIN, "/banks"))
    listing = harness.replies(calls)[-1]
    assert "招商银行 · agreement CMB-2026-07: Jan 1, 2026 to Dec 31, 2028" in listing
    assert "Routine contact: 王经理 021-5555 0101" in listing and "Emergency contact: 风险部 张主任" in listing
    calls = await harness.send(harness.updates.command(BOSS, "/banks"))
    assert FORBIDDEN in harness.replies(calls)[-1]

    calls = await harness.send(harness.updates.command(ADMIN, "/bankalert", "ZS-1"))
    assert "why report it to the bank's emergency contact" in harness.replies(calls)[-1]
    await harness.send(harness.updates.button(ADMIN, f"bk:why:{case_id}:against_interest"))
    calls = await harness.send(harness.updates.text(ADMIN, "债务人正在转移抵押车辆"))
    assert harness.replies(calls)[-1] == ("🏦 The report is recorded. Call or write to 招商银行's emergency contact "
                                          "now: 风险部 张主任 139 0000 1111")
    async with harness.db.read() as session:
        alert = (await session.scalars(select(BankAlert))).one()
    assert (alert.case_id, alert.reason, alert.note) == (case_id, "against_interest", "债务人正在转移抵押车辆")
    assert await _audit_actions(harness, case_id) == ["bank.alert"]
    assert "Reported to the bank's emergency contact by Admin: The debtor is acting against the bank's interests " \
           "— 债务人正在转移抵押车辆" in await _card(harness, ADMIN, "ZS-1")


@pytest.fixture
def cli_db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    for key in ("FIELDBOT_TOKEN", "FIELDBOT_DATABASE_URL", "FIELDBOT_DATA_DIR"):
        monkeypatch.delenv(key, raising=False)
    url = f"sqlite+aiosqlite:///{tmp_path / 'fieldbot.db'}"
    monkeypatch.setenv("FIELDBOT_DATABASE_URL", url)
    monkeypatch.setenv("FIELDBOT_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.chdir(tmp_path)
    return url


def test_the_bank_and_letter_commands(cli_db: str, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["bank", "add", "--name", "工商银行", "--agreement", "ICBC-9", "--start", "2025-01-01", "--end",
            "2027-06-30", "--routine-contact", "李经理 010-1", "--emergency-contact", "值班室 010-2"]
    assert main(args) == 0
    assert main([*args[:9], "2029-06-30", *args[10:]]) == 0  # renewed: the agreement is replaced
    capsys.readouterr()
    assert main(["bank", "list", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert listed == [{"name": "工商银行", "agreement": "ICBC-9", "start": "2025-01-01", "end": "2029-06-30",
                       "routine_contact": "李经理 010-1", "emergency_contact": "值班室 010-2"}]
    assert main([*args[:7], "2026-01-01", "--end", "2025-01-01", *args[10:]]) == 1  # ends before it starts

    async def add_case() -> None:
        database = Database(cli_db)
        now = datetime.now(SHANGHAI)
        async with database.write() as session:
            session.add(Case(bank="工商银行", case_no="GH-1", debtor_name="王五", address="北京", amount_due_fen=100,
                             status="new", created_at=now, updated_at=now))
        await database.dispose()

    asyncio.run(add_case())
    assert main(["letter", "add", "GH-1", "--sent", "2026-11-02", "--tracking", "XA9"]) == 0
    assert main(["letter", "add", "NOPE", "--sent", "2026-11-02", "--tracking", "XA9"]) == 1
    assert "letter XA9 sent 2026-11-02 recorded" in capsys.readouterr().out


async def test_retention_keeps_a_case_until_five_years_after_its_banks_agreement_ends(
        database: Database, tmp_path: Path) -> None:
    clock = ManualClock(datetime(2026, 11, 2, 9, 0, tzinfo=SHANGHAI))
    runtime = Runtime(settings=sandbox_settings(tmp_path, database_url=database.url), db=database, clock=clock)
    await migrate.upgrade(database)
    now = clock.now()
    async with database.write() as session:
        for bank, case_no in (("招商银行", "OLD-1"), ("无协议银行", "OLD-2")):
            session.add(Case(bank=bank, case_no=case_no, debtor_name="赵六", address="上海", amount_due_fen=100,
                             status="closed", contract_end=date(2021, 6, 30), created_at=now, updated_at=now))
        await banks.add_bank(session, name="招商银行", agreement_no="CMB-1", start=date(2019, 1, 1),
                             end=date(2023, 12, 31), routine_contact="a", emergency_contact="b", now=now)

    today = retention.local_today(clock.now(), "Asia/Shanghai")
    result = await retention.purge(runtime.db, runtime.media, today=today, now=clock.now())
    assert [p.case_no for p in result.purged] == ["OLD-2"]  # its contract ended over 5 years ago, no agreement
    async with database.read() as session:
        assert await session.scalar(select(func.count()).select_from(Case).where(Case.case_no == "OLD-1")) == 1

    clock.set(datetime(2028, 12, 30, 9, 0, tzinfo=SHANGHAI))  # the day before five years after the agreement
    result = await retention.purge(runtime.db, runtime.media, today=retention.local_today(clock.now(), "Asia/Shanghai"),
                                   now=clock.now())
    assert result.purged == []
    clock.advance(days=1)
    result = await retention.purge(runtime.db, runtime.media, today=retention.local_today(clock.now(), "Asia/Shanghai"),
                                   now=clock.now())
    assert [(p.case_no, p.keep_until) for p in result.purged] == [("OLD-1", date(2028, 12, 31))]
    async with database.read() as session:
        tomb = (await session.scalars(select(PurgedCase).where(PurgedCase.case_no == "OLD-1"))).one()
    assert tomb.keep_until == date(2028, 12, 31)


# ---- special procedures -----------------------------------------------------------------------------------------


async def test_a_special_procedure_applied_approved_arranged_and_closed(harness: BotHarness,
                                                                       office: dict[str, int]) -> None:
    case_id = office["case"]
    calls = await harness.send(harness.updates.command(ANN, "/special", "ZS-1"))
    assert "which special procedure?" in harness.replies(calls)[-1]
    await harness.send(harness.updates.button(ANN, f"sp:kind:{case_id}:legal"))
    calls = await harness.send(harness.updates.text(ANN, "债务人有能力还款但拒绝，建议起诉"))
    assert harness.replies(calls)[-1] == "⚖️ The application went to your supervisor."
    await harness.deliver_outbox()
    assert any("Ann applies for a special procedure on case ZS-1: Legal action" in t
               for t in harness.api.texts(BOSS.id))

    calls = await harness.send(harness.updates.button(ZED, f"sp:ok:{case_id}", forge=True))  # another team's supervisor
    assert any(FORBIDDEN in str(c.params.get("text")) for c in calls)
    calls = await harness.send(harness.updates.button(ANN, f"sp:arr:{case_id}", forge=True))  # not the admin
    assert any(FORBIDDEN in str(c.params.get("text")) for c in calls)
    assert await _special(harness, case_id) == SpecialStatus.PENDING.value

    approve = harness.updates.button(BOSS, f"sp:ok:{case_id}")
    await harness.send(approve)
    await harness.replay(approve)
    assert await _special(harness, case_id) == SpecialStatus.APPROVED.value
    await harness.deliver_outbox()
    assert any("Arrange the resources for a special procedure on case ZS-1" in t for t in harness.api.texts(ADMIN.id))
    assert any("was approved by Boss" in t for t in harness.api.texts(ANN.id))

    await harness.send(harness.updates.button(ADMIN, f"sp:arr:{case_id}"))
    assert await _special(harness, case_id) == SpecialStatus.ARRANGED.value
    await harness.deliver_outbox()  # the applicant is told, with the button to close it
    calls = await harness.send(harness.updates.button(ANN, f"sp:close:{case_id}"))
    assert harness.replies(calls)[-1] == "Write the special procedure's result:"
    await harness.send(harness.updates.text(ANN, "法院已立案，案号(2026)沪0115民初123号"))
    assert await _special(harness, case_id) == SpecialStatus.CLOSED.value
    await harness.deliver_outbox()
    assert any("was closed by Ann: 法院已立案" in t for t in harness.api.texts(BOSS.id))

    assert await _audit_actions(harness, case_id) == ["special.applied", "special.approved", "special.arranged",
                                                      "special.closed"]
    card = await _card(harness, BOSS, "ZS-1")
    for line in ("Ann applied for a special procedure: Legal action — 债务人有能力还款但拒绝",
                 "Special procedure (Legal action) approved by Boss",
                 "Resources for the special procedure arranged by Admin",
                 "Special procedure closed by Ann: 法院已立案"):
        assert line in card
    # once closed, another may be applied for; a reject is recorded as such
    await harness.send(harness.updates.command(ANN, "/special", "ZS-1"))
    await harness.send(harness.updates.button(ANN, f"sp:kind:{case_id}:bank_request"))
    await harness.send(harness.updates.text(ANN, "银行要求暂停催收"))
    await harness.deliver_outbox()
    await harness.send(harness.updates.button(BOSS, f"sp:no:{case_id}"))
    assert await _special(harness, case_id) == SpecialStatus.REJECTED.value


async def _special(harness: BotHarness, case_id: int) -> str:
    async with harness.db.read() as session:
        return str(await session.scalar(select(SpecialProcedure.status).where(SpecialProcedure.case_id == case_id)
                                        .order_by(SpecialProcedure.id.desc()).limit(1)))


async def test_only_the_cases_own_collector_applies(harness: BotHarness, office: dict[str, int]) -> None:
    calls = await harness.send(harness.updates.command(ANN, "/special", "ZS-2"))  # Bob's case
    assert FORBIDDEN in harness.replies(calls)[-1]
    async with harness.db.read() as session:
        assert await session.scalar(select(func.count()).select_from(SpecialProcedure)) == 0
        assert await session.scalar(select(func.count()).select_from(Letter)) == 0


async def test_two_deciders_at_once_one_decision(harness: BotHarness, office: dict[str, int]) -> None:
    case_id = office["case"]
    await harness.send(harness.updates.command(ANN, "/special", "ZS-1"))
    await harness.send(harness.updates.button(ANN, f"sp:kind:{case_id}:third_party"))
    await harness.send(harness.updates.text(ANN, "需要村委会协助联系债务人"))
    results = await asyncio.gather(harness.send(harness.updates.button(BOSS, f"sp:ok:{case_id}", forge=True)),
                                   harness.send(harness.updates.button(ADMIN, f"sp:no:{case_id}", forge=True)))
    shown = [str(c.params.get("text")) for calls in results for c in calls if c.params.get("text")]
    assert sum("no special procedure waiting for a decision" in s for s in shown) == 1
    decisions = [a for a in await _audit_actions(harness, case_id) if a in ("special.approved", "special.rejected")]
    assert len(decisions) == 1
    assert await _special(harness, case_id) == ("approved" if decisions == ["special.approved"] else "rejected")

"""The supervisor's desk (/case): find a case by number or debtor name, read its timeline, reassign it with a
reason, put it on hold, close and reopen it; another team's supervisor finds and changes nothing."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from sqlalchemy import func, select, update

from bot.clock import ManualClock
from bot.sandbox.harness import BotHarness
from bot.services import assignment, case_desk, staff
from bot.services.actor import StaffView
from bot.services.calendar import WorkCalendar
from bot.services.case_desk import StatusChange
from bot.services.errors import DomainError
from bot.storage.db import Database
from bot.storage.models import Assignment, AuditEntry, Case, OutboxMessage, Reminder, Role, Staff
from tests.field_office import ADMIN, ANN, BOB, BOSS, LEAD, ZED

FORBIDDEN = "You are not allowed to do that."
CALENDAR = WorkCalendar()


async def _name_case(harness: BotHarness, case_id: int, debtor: str) -> None:
    async with harness.db.write() as session:
        case = await session.get(Case, case_id)
        assert case is not None
        case.debtor_name = debtor


async def _state(harness: BotHarness, case_id: int) -> tuple[str, list[tuple[int, str | None, bool]]]:
    async with harness.db.read() as session:
        case = await session.get(Case, case_id)
        assert case is not None
        rows = (await session.scalars(select(Assignment).where(Assignment.case_id == case_id)
                                      .order_by(Assignment.id))).all()
        return case.status, [(a.staff_id, a.reason, a.ended_at is None) for a in rows]


async def test_a_supervisor_finds_a_case_by_name_reassigns_it_and_the_history_shows_both(
        harness: BotHarness, office: dict[str, int]) -> None:
    case_id = office["case"]
    await _name_case(harness, case_id, "欧阳娜娜")
    calls = await harness.send(harness.updates.command(BOSS, "/case", "娜娜"))
    card = harness.replies(calls)[-1]
    assert card.startswith("📁 Case ZS-1")
    assert "欧阳**" in card and "欧阳娜娜" not in card  # the name masked, as on the collector's card
    assert "138****8000" in card and "310115********0011" in card
    assert "assigned to Ann" in card
    calls = await harness.send(harness.updates.button(BOSS, f"dk:re:{case_id}"))
    assert harness.replies(calls)[-1] == "Who takes case ZS-1?"
    calls = await harness.send(harness.updates.button(BOSS, f"dk:to:{case_id}:{office['bob']}"))
    assert harness.replies(calls)[-1] == "Write the reason for the reassignment:"
    harness.clock.advance(minutes=5)
    calls = await harness.send(harness.updates.text(BOSS, "Ann is on leave this week"))
    assert harness.replies(calls)[-1].startswith("🔁 1 case(s) reassigned to Bob: ZS-1")

    status, history = await _state(harness, case_id)
    assert status == "assigned"
    assert history == [(office["ann"], "test", False), (office["bob"], "Ann is on leave this week", True)]
    async with harness.db.read() as session:
        case = await session.get(Case, case_id)
        assert case is not None and case.visit_due_at == CALENDAR.deadline_after(harness.clock.now(), 2)
        kinds = {(m.chat_id, m.kind) for m in (await session.scalars(select(OutboxMessage))).all()}
    assert {(ANN.id, "assign.notice.removed"), (BOB.id, "assign.notice.new")} <= kinds
    await harness.deliver_outbox()
    assert any("ZS-1" in t for t in harness.api.texts(BOB.id))
    assert any("ZS-1" in t for t in harness.api.texts(ANN.id))

    calls = await harness.send(harness.updates.command(BOB, "/visits"))
    assert "ZS-1" in "\n".join(harness.replies(calls))
    calls = await harness.send(harness.updates.command(ANN, "/visits"))
    assert "ZS-1" not in "\n".join(harness.replies(calls))

    calls = await harness.send(harness.updates.command(BOSS, "/case", "ZS-1"))
    card = harness.replies(calls)[-1]
    assert "assigned to Ann by the system: test" in card
    assert "assigned to Bob by Boss: Ann is on leave this week" in card
    assert card.index("assigned to Ann") < card.index("assigned to Bob")


async def test_another_teams_supervisor_cannot_find_or_change_the_case(harness: BotHarness,
                                                                        office: dict[str, int]) -> None:
    case_id = office["case"]
    await _name_case(harness, case_id, "欧阳娜娜")
    before = await _state(harness, case_id)
    for query in ("娜娜", "ZS-1", "ZS"):
        calls = await harness.send(harness.updates.command(ZED, "/case", query))
        assert harness.replies(calls) == [f"No case found for “{query}”."]
    for data in (f"dk:c:{case_id}", f"dk:re:{case_id}", f"dk:to:{case_id}:{office['bob']}", f"dk:hold:{case_id}",
                 f"dk:close:{case_id}", f"dk:open:{case_id}"):
        calls = await harness.send(harness.updates.button(ZED, data, forge=True))
        shown = harness.replies(calls)
        assert shown == [FORBIDDEN], (data, shown)
    calls = await harness.send(harness.updates.text(ZED, "trying anyway"))
    assert await _state(harness, case_id) == before
    async with harness.db.read() as session:
        refused = await session.scalar(select(func.count()).select_from(AuditEntry).where(
            AuditEntry.actor_id == office["zed"], AuditEntry.action.like("refused.%")))
    assert refused == 6


async def test_the_team_lead_reads_the_card_but_does_not_act(harness: BotHarness, office: dict[str, int]) -> None:
    case_id = office["case"]
    calls = await harness.send(harness.updates.command(LEAD, "/case", "ZS-1"))
    assert harness.replies(calls)[-1].startswith("📁 Case ZS-1")
    assert "reply_markup" not in calls[-1].params  # no action buttons
    calls = await harness.send(harness.updates.button(LEAD, f"dk:hold:{case_id}", forge=True))
    assert harness.replies(calls) == [FORBIDDEN]
    assert (await _state(harness, case_id))[0] == "assigned"


async def test_several_hits_give_a_paged_list_of_buttons(harness: BotHarness, office: dict[str, int]) -> None:
    calls = await harness.send(harness.updates.command(BOSS, "/case", "李四"))  # ZS-1 and ZS-2
    assert harness.replies(calls)[-1].startswith("Cases for “李四”: 2")
    markup = calls[-1].params["reply_markup"]
    data = [b["callback_data"] for row in markup["inline_keyboard"] for b in row]
    assert f"dk:c:{office['case']}" in data and f"dk:c:{office['bobs_case']}" in data
    calls = await harness.send(harness.updates.button(BOSS, f"dk:c:{office['bobs_case']}"))
    assert harness.replies(calls)[-1].startswith("📁 Case ZS-2")
    calls = await harness.send(harness.updates.command(BOSS, "/case", "ZS-"))  # a prefix
    assert harness.replies(calls)[-1].startswith("Cases for “ZS-”: 2")
    calls = await harness.send(harness.updates.command(BOSS, "/case"))
    assert harness.replies(calls)[-1].startswith("Send /case with a case number")


async def _pending_visit_reminders(harness: BotHarness, case_id: int) -> int:
    async with harness.db.read() as session:
        return int(await session.scalar(select(func.count()).select_from(Reminder).where(
            Reminder.case_id == case_id, Reminder.done_at.is_(None))) or 0)


async def _change(harness: BotHarness, button: str, reason: str) -> str:
    await harness.send(harness.updates.button(BOSS, button, forge=True))
    return harness.replies(await harness.send(harness.updates.text(BOSS, reason)))[-1]


async def test_hold_close_and_reopen(harness: BotHarness, office: dict[str, int]) -> None:
    case_id = office["case"]
    assert await _pending_visit_reminders(harness, case_id) > 0
    assert (await _change(harness, f"dk:hold:{case_id}", "debtor in hospital")).startswith("⏸ Case ZS-1 is on hold")
    async with harness.db.read() as session:
        case = await session.get(Case, case_id)
        assert case is not None
        assert (case.status, case.status_reason, case.status_changed_by_id) == (
            "on_hold", "debtor in hospital", office["boss"])
    assert await _pending_visit_reminders(harness, case_id) == 0
    await harness.deliver_outbox()
    assert any(t.startswith("⏸ Case ZS-1 is on hold: debtor in hospital") for t in harness.api.texts(ANN.id))
    calls = await harness.send(harness.updates.command(ANN, "/visits"))
    assert "ZS-1" not in "\n".join(harness.replies(calls))
    # past the old deadline: no overdue notice for a case on hold
    harness.clock.advance(days=5)
    await harness.tick()
    await harness.deliver_outbox()
    assert not [t for t in harness.api.texts(BOSS.id) + harness.api.texts(ANN.id) if "ZS-1" in t and "overdue" in t]
    # on hold: no reassignment until it is reopened
    calls = await harness.send(harness.updates.button(BOSS, f"dk:re:{case_id}", forge=True))
    assert harness.replies(calls) == ["Case ZS-1 is on hold or closed; reopen it first."]

    text = await _change(harness, f"dk:open:{case_id}", "back from hospital")
    assert text.startswith("▶️ Case ZS-1 is open again; visit due")
    async with harness.db.read() as session:
        case = await session.get(Case, case_id)
        assert case is not None and case.status == "assigned"
        assert case.visit_due_at == CALENDAR.deadline_after(harness.clock.now(), 2)
    assert await _pending_visit_reminders(harness, case_id) > 0
    calls = await harness.send(harness.updates.command(ANN, "/visits"))
    assert "ZS-1" in "\n".join(harness.replies(calls))

    assert (await _change(harness, f"dk:close:{case_id}", "settled with the bank")).startswith(
        "🗄 Case ZS-1 is closed")
    calls = await harness.send(harness.updates.command(BOSS, "/case", "ZS-1"))
    card = harness.replies(calls)[-1]
    assert "Why: settled with the bank (Boss" in card
    assert "on hold by Boss: debtor in hospital" in card and "closed by Boss: settled with the bank" in card
    data = [b["callback_data"] for row in calls[-1].params["reply_markup"]["inline_keyboard"] for b in row]
    assert data == [f"dk:open:{case_id}"]
    # closing twice is refused with the reason, nothing written
    calls = await harness.send(harness.updates.button(BOSS, f"dk:close:{case_id}", forge=True))
    assert harness.replies(calls) == ["Case ZS-1 is already closed."]


async def test_an_empty_reason_is_asked_again_and_nothing_is_lost(harness: BotHarness,
                                                                   office: dict[str, int]) -> None:
    case_id = office["case"]
    await harness.send(harness.updates.button(BOSS, f"dk:hold:{case_id}", forge=True))
    calls = await harness.send(harness.updates.text(BOSS, "   "))
    assert harness.replies(calls) == ["Please write the reason."]
    assert (await _state(harness, case_id))[0] == "assigned"
    calls = await harness.send(harness.updates.text(BOSS, "lawyer asked for a pause"))
    assert harness.replies(calls)[-1].startswith("⏸ Case ZS-1 is on hold")


async def test_two_supervisors_at_once_end_in_one_state(harness: BotHarness, office: dict[str, int]) -> None:
    case_id = office["case"]
    for user in (BOSS, ADMIN):
        await harness.send(harness.updates.button(user, f"dk:hold:{case_id}", forge=True))
    results = await asyncio.gather(harness.send(harness.updates.text(BOSS, "first")),
                                   harness.send(harness.updates.text(ADMIN, "second")))
    shown = sorted(harness.replies(calls)[-1] for calls in results)
    assert sum(s.startswith("⏸ Case ZS-1 is on hold") for s in shown) == 1
    assert "Case ZS-1 is already on hold or closed." in shown
    async with harness.db.read() as session:
        holds = await session.scalar(select(func.count()).select_from(AuditEntry).where(
            AuditEntry.action == "case.hold"))
        notices = await session.scalar(select(func.count()).select_from(OutboxMessage).where(
            OutboxMessage.kind == "desk.hold"))
    assert (holds, notices) == (1, 1)


async def test_a_double_tap_on_the_reason_applies_once(harness: BotHarness, office: dict[str, int]) -> None:
    case_id = office["case"]
    await harness.send(harness.updates.button(BOSS, f"dk:re:{case_id}", forge=True))
    await harness.send(harness.updates.button(BOSS, f"dk:to:{case_id}:{office['bob']}", forge=True))
    update = harness.updates.text(BOSS, "rebalancing")
    await asyncio.gather(harness.send(update), harness.replay(update))
    _, history = await _state(harness, case_id)
    assert [h[0] for h in history] == [office["ann"], office["bob"]]
    assert [h[2] for h in history] == [False, True]


# ---- on both databases, through the service ----------------------------------------------------------------


async def _people(db: Database, clock: ManualClock) -> dict[str, StaffView]:
    views: dict[str, StaffView] = {}
    async with db.write() as session:
        for name, role, team, tg in (("Boss", Role.SUPERVISOR, "A", 801), ("Admin", Role.ADMIN, None, 802),
                                     ("Ann", Role.COLLECTOR, "A", 803), ("Bob", Role.COLLECTOR, "A", 804),
                                     ("Cat", Role.COLLECTOR, "A", 805), ("Zed", Role.SUPERVISOR, "B", 806)):
            person = await staff.add_staff(session, name=name, role=role, team=team, now=clock.now())
            person.telegram_user_id, person.locale = tg, "en"
            await session.flush()
            views[name] = StaffView.of(person)
    return views


async def _case(db: Database, clock: ManualClock, people: dict[str, StaffView], case_no: str,
                debtor: str = "欧阳娜娜") -> int:
    now = clock.now()
    async with db.write() as session:
        case = Case(bank="招商银行", case_no=case_no, debtor_name=debtor, address="上海市", amount_due_fen=100,
                    status="new", created_at=now, updated_at=now)
        session.add(case)
        await session.flush()
        await assignment.assign_cases(session, [case.id], people["Ann"].id, actor=people["Boss"],
                                      reason="first", now=now, calendar=CALENDAR)
        return case.id


async def test_search_and_concurrent_changes_on_both_databases(any_database: Database, clock: ManualClock) -> None:
    people = await _people(any_database, clock)
    case_id = await _case(any_database, clock, people, "ZS-100")
    await _case(any_database, clock, people, "ZS-1001", debtor="王五")
    await _case(any_database, clock, people, "X_%1", debtor="50%_张三")
    async with any_database.read() as session:
        hits, total = await case_desk.search(session, people["Boss"], "ZS-100")
        assert [c.case_no for c in hits] == ["ZS-100", "ZS-1001"] and total == 2  # the exact number first
        assert [c.case_no for c in (await case_desk.search(session, people["Boss"], "娜娜"))[0]] == ["ZS-100"]
        assert [c.case_no for c in (await case_desk.search(session, people["Boss"], "%_"))[0]] == ["X_%1"]
        assert (await case_desk.search(session, people["Zed"], "ZS"))[1] == 0
        assert (await case_desk.search(session, people["Admin"], "ZS"))[1] == 2

    async def reassign(actor: str, to: str) -> str:
        try:
            async with any_database.write() as session:
                await case_desk.reassign(session, people[actor], [case_id], people[to].id, reason=f"to {to}",
                                         now=clock.now(), calendar=CALENDAR)
            return "ok"
        except DomainError as error:
            return error.key

    assert list(await asyncio.gather(reassign("Boss", "Bob"), reassign("Admin", "Cat"))) == ["ok", "ok"]
    async with any_database.read() as session:
        rows = (await session.scalars(select(Assignment).where(Assignment.case_id == case_id)
                                      .order_by(Assignment.id))).all()
    assert [r.ended_at is None for r in rows] == [False, False, True]  # one current assignment, the history whole
    assert {rows[1].staff_id, rows[2].staff_id} == {people["Bob"].id, people["Cat"].id}

    async def change(actor: str, what: StatusChange) -> str:
        try:
            async with any_database.write() as session:
                await case_desk.change_status(session, people[actor], case_id, what, reason=actor,
                                              now=clock.now(), calendar=CALENDAR)
            return "ok"
        except DomainError as error:
            return error.key

    results = await asyncio.gather(change("Boss", StatusChange.CLOSE), change("Admin", StatusChange.CLOSE))
    assert sorted(results) == ["desk.error.already_closed", "ok"]
    assert await change("Zed", StatusChange.REOPEN) == "error.forbidden"
    results = await asyncio.gather(change("Boss", StatusChange.REOPEN), change("Admin", StatusChange.REOPEN))
    assert sorted(results) == ["desk.error.not_closed", "ok"]
    async with any_database.read() as session:
        case = await session.get(Case, case_id)
        assert case is not None and case.status == "assigned"
        counts = {action: int(n) for action, n in (await session.execute(
            select(AuditEntry.action, func.count()).where(AuditEntry.action.in_(case_desk.STATUS_AUDIT))
            .group_by(AuditEntry.action))).all()}
    assert counts == {"case.close": 1, "case.reopen": 1}


async def test_reopening_a_case_whose_collector_left_makes_it_unassigned(any_database: Database,
                                                                         clock: ManualClock) -> None:
    people = await _people(any_database, clock)
    case_id = await _case(any_database, clock, people, "ZS-7")
    async with any_database.write() as session:
        await case_desk.change_status(session, people["Boss"], case_id, StatusChange.HOLD, reason="pause",
                                      now=clock.now(), calendar=CALENDAR)
        ann = await session.get(Staff, people["Ann"].id)
        assert ann is not None
        ann.active = False
    clock.advance(hours=1)
    async with any_database.write() as session:
        case = await case_desk.change_status(session, people["Boss"], case_id, StatusChange.REOPEN, reason="go",
                                             now=clock.now(), calendar=CALENDAR)
        assert (case.status, case.visit_due_at) == ("new", None)
        assert case.assign_due_at == CALENDAR.deadline_after(clock.now(), 1)
        current = await session.scalar(select(func.count()).select_from(Assignment).where(
            Assignment.case_id == case_id, Assignment.ended_at.is_(None)))
    assert current == 0


# ---- the card's length --------------------------------------------------------------------------------------


def test_fit_drops_the_oldest_lines_and_says_how_many() -> None:
    head = ["head"]
    lines = [f"line {i:04d} " + "x" * 80 for i in range(200)]
    text = case_desk.fit(head, lines, lambda n: f"{n} hidden")
    assert case_desk.text_length(text) <= 4096
    shown = text.splitlines()
    hidden = int(shown[1].split()[0])
    assert shown[0] == "head" and shown[-1] == lines[-1] and len(shown) == 2 + 200 - hidden
    assert shown[2] == lines[hidden]  # exactly the oldest ones are gone
    assert case_desk.fit(head, lines[:3], lambda n: f"{n} hidden") == "\n".join(head + lines[:3])
    # Chinese text counts in UTF-16 units as Telegram does
    wide = ["𠀀" * 100 for _ in range(100)]
    assert case_desk.text_length(case_desk.fit(head, wide, lambda n: f"{n} hidden")) <= 4096


async def test_a_long_history_keeps_the_card_within_telegrams_limit(harness: BotHarness,
                                                                    office: dict[str, int]) -> None:
    case_id = office["case"]
    now = harness.clock.now()
    async with harness.db.write() as session:
        await session.execute(update(Assignment).where(Assignment.case_id == case_id).values(ended_at=now))
        for i in range(300):
            session.add(Assignment(case_id=case_id, staff_id=office["ann"] if i % 2 else office["bob"],
                                   assigned_by_id=office["boss"], assigned_at=now + timedelta(minutes=i),
                                   ended_at=None if i == 299 else now + timedelta(minutes=i + 1),
                                   reason=f"round {i} " + "因为" * 10))
    calls = await harness.send(harness.updates.command(BOSS, "/case", "ZS-1"))
    card = harness.replies(calls)[-1]
    assert case_desk.text_length(card) <= 4096
    assert "earlier entries not shown" in card and "round 299" in card and "round 0 " not in card


def test_reasons_the_bot_writes_itself_read_as_words() -> None:
    from bot.i18n import translator

    t = translator("en")
    shown = [case_desk._assignment_reason(r) for r in ("handover:3", "handover:3:cancelled", "bulk", "on leave", None)]
    assert [s(t) if callable(s) else s for s in shown] == [
        "handover #3", "handover #3 cancelled: back", "bulk assignment", "on leave", "-"]

"""/team on a seeded day (check-ins, visits filed, due and overdue, reports waiting, alarms; each team its own),
and the once-a-day reminder of visit reports waiting more than 4 working hours."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from sqlalchemy import func, select

from bot.sandbox.harness import BotHarness
from bot.services import team_view
from bot.storage.models import Case, Incident, OutboxMessage, Role
from tests.field_office import ADMIN, BOSS, LEAD, ZED, add_case, file_visit


async def _seed(harness: BotHarness, office: dict[str, int]) -> int:
    """Monday 09:00. Ann visits ZS-1 (checked in, filed); ZS-3 is due at 16:00 today, ZS-4 was due an hour ago,
    ZS-5 is overdue but on hold; team B has one overdue case; Bob raised an alarm. Returns Ann's visit id."""
    now = harness.clock.now()
    local = harness.runtime.calendar.local(now)  # 09:00 in Shanghai
    harness.clock.advance(minutes=30)
    visit_id = await file_visit(harness, office["ann"], office["case"], "NOBODY", {"revisit_date": "2026-11-04"})
    ids = {}
    for case_no, to in (("ZS-3", office["bob"]), ("ZS-4", office["bob"]), ("ZS-5", office["bob"])):
        ids[case_no] = await add_case(harness, case_no, to, None)
    cat, _ = await harness.add_staff("Cat", Role.COLLECTOR, team="B")
    ids["B-1"] = await add_case(harness, "B-1", cat, None)
    async with harness.db.write() as session:
        for key, due, status in (("ZS-3", local.replace(hour=16), "assigned"), ("ZS-4", now - timedelta(hours=1),
                                 "assigned"), ("ZS-5", now - timedelta(hours=1), "on_hold"),
                                 ("B-1", now - timedelta(days=1), "assigned")):
            case = await session.get(Case, ids[key])
            assert case is not None
            case.visit_due_at, case.status = due, status
        session.add(Incident(collector_id=office["bob"], reason="sos", status="open", raised_at=now, updated_at=now,
                             level=1, rounds=1))
    return visit_id


async def test_team_shows_the_right_counts_on_a_seeded_day(harness: BotHarness, office: dict[str, int]) -> None:
    visit_id = await _seed(harness, office)
    calls = await harness.send(harness.updates.command(BOSS, "/team"))
    text = harness.replies(calls)[-1]
    assert text.startswith("👥 Team A")
    assert "Visits filed today 1 · due later today 1 · overdue 1" in text  # ZS-5 is on hold; B-1 is team B's
    assert "Checked in today: 1 of 2" in text and "Ann: " in text and "case ZS-1" in text
    assert "Reports waiting for review: 1 (0 over 4 working hours)" in text and "ZS-1 Ann, filed" in text
    assert "Open alarms: 1" in text and "Bob: sos" in text
    data = [b["callback_data"] for row in calls[-1].params["reply_markup"]["inline_keyboard"] for b in row]
    assert data == [f"rv:ok:{visit_id}", f"rv:ret:{visit_id}", f"rv:files:{visit_id}"]
    # the review button opens the existing review flow
    calls = await harness.send(harness.updates.button(BOSS, f"rv:ok:{visit_id}"))
    assert any("approved" in r.lower() for r in harness.replies(calls))

    calls = await harness.send(harness.updates.command(ZED, "/team"))
    text = harness.replies(calls)[-1]
    assert text.startswith("👥 Team B")
    assert "Visits filed today 0 · due later today 0 · overdue 1" in text and "Open alarms: 0" in text
    assert "ZS-" not in text and "Ann" not in text

    calls = await harness.send(harness.updates.command(LEAD, "/team"))  # the lead reads, without review buttons
    assert "Visits filed today 1 · due later today 1 · overdue 1" in harness.replies(calls)[-1]
    assert "reply_markup" not in calls[-1].params
    calls = await harness.send(harness.updates.command(ADMIN, "/team"))
    assert "overdue 2" in harness.replies(calls)[-1]


async def _reminders(harness: BotHarness) -> int:
    async with harness.db.read() as session:
        return int(await session.scalar(select(func.count()).select_from(OutboxMessage).where(
            OutboxMessage.kind == "review.waiting")) or 0)


async def test_a_report_waiting_5_working_hours_is_reminded_once(harness: BotHarness,
                                                                 office: dict[str, int]) -> None:
    harness.clock.advance(minutes=30)  # filed Monday 09:30
    visit_id = await file_visit(harness, office["ann"], office["case"], "NOBODY", {"revisit_date": "2026-11-04"})
    harness.clock.advance(hours=3)  # 12:30, 3 hours
    await harness.tick()
    assert await _reminders(harness) == 0
    harness.clock.advance(hours=2)  # 14:30, 5 hours
    await asyncio.gather(harness.tick(), harness.tick())
    await harness.tick()
    assert await _reminders(harness) == 1
    await harness.deliver_outbox()
    reminder = [t for t in harness.api.texts(BOSS.id) if t.startswith("⏰ 1 visit report(s)")]
    assert len(reminder) == 1 and "ZS-1 Ann" in reminder[0]
    harness.clock.advance(hours=2)
    await harness.tick()
    assert await _reminders(harness) == 1  # once a day
    harness.clock.advance(days=1)  # Tuesday: still waiting, reminded again that day
    await harness.tick()
    assert await _reminders(harness) == 2
    assert visit_id


async def test_working_hours_not_clock_hours_decide(harness: BotHarness, office: dict[str, int]) -> None:
    harness.clock.advance(hours=8, minutes=30)  # filed Monday 17:30
    await file_visit(harness, office["ann"], office["case"], "NOBODY", {"revisit_date": "2026-11-04"})
    harness.clock.advance(hours=16)  # Tuesday 09:30: 16 clock hours, 1 working hour
    await harness.tick()
    assert await _reminders(harness) == 0
    harness.clock.advance(hours=3, minutes=30)  # 13:00: 4.5 working hours
    await harness.tick()
    assert await _reminders(harness) == 1


def test_late_is_measured_on_the_working_calendar(harness: BotHarness) -> None:
    calendar = harness.runtime.calendar
    start = harness.clock.now()  # Monday 09:00
    assert not team_view.is_late(start, start + timedelta(hours=3), calendar)
    assert team_view.is_late(start, start + timedelta(hours=5), calendar)

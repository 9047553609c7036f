"""The SOP's clocks: visit deadlines in China's working days, reminders as rows, sent exactly once."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from bot.clock import ManualClock
from bot.sandbox.harness import BotHarness, sandbox_settings
from bot.services import assignment, outbox
from bot.storage.models import Case, OutboxMessage, Reminder, Role
from tests.field_office import ANN, BOSS, add_case

SH = ZoneInfo("Asia/Shanghai")


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=SH)


async def _reminders(harness: BotHarness, case_id: int) -> list[tuple[str, datetime, str | None]]:
    async with harness.db.read() as session:
        rows = await session.scalars(select(Reminder).where(Reminder.case_id == case_id).order_by(Reminder.due_at))
        return [(r.kind, r.due_at, r.outcome) for r in rows]


@pytest.mark.parametrize(
    ("handover", "due"),
    [
        # Thursday before Mid-Autumn (Fri 25 Sep 2026 off): Mon 28, Tue 29
        ("2026-09-24T15:00", "2026-09-29T18:00"),
        # Thursday before the make-up Sunday 20 Sep 2026: Fri 18, Sun 20
        ("2026-09-17T10:00", "2026-09-20T18:00"),
        # Thursday 8 Oct 2026, after National Day: Fri 9, make-up Saturday 10
        ("2026-10-08T11:00", "2026-10-10T18:00"),
        # Thursday before the Spring Festival 2027 (5–10 Feb off): Thu 11, Fri 12
        ("2027-02-04T16:00", "2027-02-12T18:00"),
        # Thursday 30 Sep 2027, before National Day 2027 (1–5 Oct off): Wed 6, Thu 7
        ("2027-09-30T09:30", "2027-10-07T18:00"),
    ],
)
async def test_visit_deadline_counts_china_s_working_days(harness: BotHarness, field: dict[str, int],
                                                          handover: str, due: str) -> None:
    harness.clock.set(at(handover))
    case_id = await add_case(harness, "DL-1", field["ann"], (31.2304, 121.4737))
    async with harness.db.read() as session:
        case = await session.get(Case, case_id)
    assert case is not None and case.visit_due_at == at(due)
    morning = at(due).replace(hour=9, minute=0)
    assert await _reminders(harness, case_id) == [("visit_morning", morning, None),
                                                  ("visit_2h", at(due) - timedelta(hours=2), None),
                                                  ("visit_overdue", at(due), None)]


async def test_reminders_go_out_at_their_time_and_overdue_tells_both(harness: BotHarness,
                                                                     field: dict[str, int]) -> None:
    case_id = field["case"]  # handed over Monday 2 Nov 09:00: due Wednesday 4 Nov 18:00
    harness.clock.set(at("2026-11-04T08:59"))
    await harness.tick()
    assert harness.api.texts(ANN.id) == []
    harness.clock.set(at("2026-11-04T09:00"))
    await harness.tick()
    assert harness.api.texts(ANN.id)[-1].startswith("⏰ Today is the visit deadline for case ZS-1")
    harness.clock.set(at("2026-11-04T16:00"))
    await harness.tick()
    assert harness.api.texts(ANN.id)[-1].startswith("⏰ 2 hours left for the visit to case ZS-1")
    harness.clock.set(at("2026-11-04T18:00"))
    await harness.tick()
    assert harness.api.texts(ANN.id)[-1].startswith("⚠️ The visit to case ZS-1 (李*) is overdue")
    assert any(t.startswith("⚠️ Ann's visit to case ZS-1 (李*) is overdue") for t in harness.api.texts(BOSS.id))
    async with harness.db.read() as session:
        case = await session.get(Case, case_id)
    assert case is not None and case.visit_overdue_at == at("2026-11-04T18:00")  # the deadline itself
    calls = await harness.send(harness.updates.command(ANN, "/visits"))
    assert "1. ⚠️ ZS-1" in calls[-1].params["text"]
    assert [r[2] for r in await _reminders(harness, case_id)] == ["sent", "sent", "sent"]


async def test_a_visit_filed_in_time_stops_the_reminders(harness: BotHarness, field: dict[str, int]) -> None:
    from tests.field_office import file_visit

    await file_visit(harness, field["ann"], field["case"], "NOBODY", {"revisit_date": "2026-11-10"})
    harness.clock.set(at("2026-11-05T10:00"))
    await harness.tick()
    assert not any("ZS-1" in text and "⏰" in text for text in harness.api.texts(ANN.id))
    assert [r[2] for r in await _reminders(harness, field["case"])] == ["cancelled", "cancelled", "cancelled"]


async def test_a_reminder_due_while_the_bot_was_down_is_sent_once_after_restart(harness: BotHarness,
                                                                               field: dict[str, int]) -> None:
    await harness.stop()  # the bot goes down before the morning reminder (Wednesday 09:00)
    harness.clock.set(at("2026-11-04T11:30"))  # and comes back hours later
    await harness.start()
    await harness.tick()
    await harness.restart()
    await harness.tick()
    await harness.tick()
    mornings = [t for t in harness.api.texts(ANN.id) if t.startswith("⏰ Today is the visit deadline")]
    assert len(mornings) == 1


async def test_after_a_crash_the_next_process_takes_over_the_sweeps_when_the_lease_lapses(
    harness: BotHarness, field: dict[str, int], tmp_path: Path
) -> None:
    crashed = harness.runtime.instance_id
    assert (await harness.tick()) != {}  # the first process holds the lease
    harness._app = None  # a hard kill: no shutdown, the lease is not released
    await harness.start()
    assert harness.runtime.instance_id != crashed
    assert await harness.tick() == {}  # the crashed holder's lease is still valid
    harness.clock.advance(seconds=31)
    assert await harness.tick() != {}


async def test_two_instances_on_one_database_send_each_reminder_once(tmp_path: Path, clock: ManualClock) -> None:
    first = BotHarness(sandbox_settings(tmp_path), clock)
    await first.start()
    second = BotHarness(sandbox_settings(tmp_path), clock, api=first.api)
    await second.start()
    try:
        boss = await first.onboard(BOSS, "Boss", Role.SUPERVISOR)
        ann = await first.onboard(ANN, "Ann", Role.COLLECTOR, supervisor_id=boss)
        await add_case(first, "ZS-9", ann, (31.2, 121.4))
        clock.set(at("2026-11-04T09:05"))
        for _ in range(3):
            await first.tick()
            await second.tick()
        mornings = [t for t in first.api.texts(ANN.id) if t.startswith("⏰ Today is the visit deadline")]
        assert len(mornings) == 1
    finally:
        await second.close()
        await first.close()
    assert first.api.violations == []


async def test_quiet_hours_hold_ordinary_messages_until_morning(harness: BotHarness, field: dict[str, int]) -> None:
    harness.clock.set(at("2026-11-04T22:30"))
    async with harness.db.write() as session:
        await outbox.enqueue(session, chat_id=ANN.id, text="weekly figures", kind="t", now=harness.clock.now(),
                             priority=outbox.Priority.BULK)
        await outbox.enqueue(session, chat_id=BOSS.id, text="SOS", kind="t", now=harness.clock.now(),
                             priority=outbox.Priority.ALERT)
    await harness.deliver_outbox()
    assert harness.api.texts(BOSS.id)[-1] == "SOS" and "weekly figures" not in harness.api.texts(ANN.id)
    harness.clock.set(at("2026-11-05T07:59"))
    await harness.deliver_outbox()
    assert "weekly figures" not in harness.api.texts(ANN.id)
    harness.clock.set(at("2026-11-05T08:00"))
    await harness.deliver_outbox()
    assert harness.api.texts(ANN.id)[-1] == "weekly figures"
    async with harness.db.read() as session:
        assert all(m.sent_at is not None for m in (await session.scalars(select(OutboxMessage))).all())


async def test_sweeps_survive_apscheduler_misfires(harness: BotHarness) -> None:
    assert harness.app.job_queue is not None
    jobs = {job.name: job for job in harness.app.job_queue.jobs()}
    assert {"deadlines", "promises", "reports", "unassigned", "outbox"} <= set(jobs)
    assert all(job.job.misfire_grace_time is None and job.job.coalesce for job in jobs.values())


async def test_reassignment_moves_the_deadline_and_its_reminders(harness: BotHarness, field: dict[str, int]) -> None:
    harness.clock.set(at("2026-11-03T10:00"))
    async with harness.db.write() as session:
        await assignment.assign_cases(session, [field["case"]], field["bob"], actor=None, reason="t",
                                      now=harness.clock.now(), calendar=harness.runtime.calendar)
    rows = await _reminders(harness, field["case"])
    assert [r for r in rows if r[2] is None] == [("visit_morning", at("2026-11-05T09:00"), None),
                                                 ("visit_2h", at("2026-11-05T16:00"), None),
                                                 ("visit_overdue", at("2026-11-05T18:00"), None)]
    assert [r[2] for r in rows if r[2] is not None] == ["cancelled", "cancelled", "cancelled"]

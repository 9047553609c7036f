"""The /tofield hand-off starts the field visit's 2-working-day window: reminders and overdue notices."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from bot.sandbox.harness import BotHarness
from bot.sandbox.updates import FakeUser
from bot.storage.models import FieldRequest, Reminder, Role
from tests.field_office import ANN, BOSS, add_case, file_visit

SH = ZoneInfo("Asia/Shanghai")
PAUL = FakeUser(3008, "Paul", language_code="en")


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=SH)


async def hand_off(harness: BotHarness, field: dict[str, int], when: str) -> tuple[int, int]:
    """Paul, a phone collector, sends his case DH-1 to Ann through /tofield at ``when``; (case, request)."""
    harness.clock.set(at(when))
    paul = await harness.onboard(PAUL, "Paul", Role.PHONE_COLLECTOR, team="A", supervisor_id=field["boss"])
    case_id = await add_case(harness, "DH-1", paul, (31.25, 121.45))
    await harness.send(harness.updates.command(PAUL, "/tofield"))
    await harness.send(harness.updates.button(PAUL, f"tf:c:{case_id}"))
    await harness.send(harness.updates.button(PAUL, f"tf:to:{case_id}:{field['ann']}"))
    calls = await harness.send(harness.updates.text(PAUL, "Please visit before the holiday ends"))
    assert harness.replies(calls) == ["✅ Sent to the field; the visit result will come back to you."]
    async with harness.db.read() as session:
        request = (await session.scalars(select(FieldRequest).where(FieldRequest.case_id == case_id))).one()
    return case_id, request.id


async def request_reminders(harness: BotHarness, request_id: int) -> list[tuple[str, datetime, str | None]]:
    async with harness.db.read() as session:
        rows = await session.scalars(select(Reminder).where(Reminder.field_request_id == request_id)
                                     .order_by(Reminder.due_at))
        return [(r.kind, r.due_at, r.outcome) for r in rows]


def field_texts(harness: BotHarness, user: FakeUser) -> list[str]:
    return [t for t in harness.api.texts(user.id) if "DH-1" in t]


@pytest.mark.parametrize(
    ("handed_off", "due"),
    [
        # Wednesday 30 Sep 2026, the working day before National Day (1–7 Oct off): Thu 8, Fri 9 Oct
        ("2026-09-30T15:00", "2026-10-09T18:00"),
        # Thursday 8 Oct 2026, after National Day: Fri 9, the make-up working Saturday 10 Oct
        ("2026-10-08T11:00", "2026-10-10T18:00"),
        # Thursday 30 Apr 2026, the working day before Labour Day (1–5 May off): Wed 6, Thu 7 May
        ("2026-04-30T10:00", "2026-05-07T18:00"),
    ],
)
async def test_the_hand_off_sets_a_two_working_day_deadline(harness: BotHarness, field: dict[str, int],
                                                           handed_off: str, due: str) -> None:
    _, request_id = await hand_off(harness, field, handed_off)
    async with harness.db.read() as session:
        request = await session.get(FieldRequest, request_id)
    assert request is not None and request.visit_due_at == at(due)
    assert await request_reminders(harness, request_id) == [
        ("visit_morning", at(due).replace(hour=9), None), ("visit_2h", at(due) - timedelta(hours=2), None),
        ("visit_overdue", at(due), None)]
    await harness.deliver_outbox()
    notice = field_texts(harness, ANN)[-1]
    assert notice.startswith("🚶 Paul asks you to visit case DH-1") and " by " in notice


async def test_reminders_reach_the_field_collector_and_overdue_tells_supervisor_and_phone_collector(
        harness: BotHarness, field: dict[str, int]) -> None:
    case_id, request_id = await hand_off(harness, field, "2026-09-30T15:00")
    await harness.deliver_outbox()
    harness.api.clear()
    for day in ("2026-10-01T09:00", "2026-10-05T12:00", "2026-10-08T17:00", "2026-10-09T08:59"):
        harness.clock.set(at(day))  # National Day and the first working day after it: nothing is due yet
        await harness.tick()
    assert field_texts(harness, ANN) == []
    harness.clock.set(at("2026-10-09T09:00"))
    await harness.tick()
    assert field_texts(harness, ANN)[-1].startswith("⏰ Today is the visit deadline for case DH-1")
    harness.clock.set(at("2026-10-09T16:00"))
    await harness.tick()
    assert field_texts(harness, ANN)[-1].startswith("⏰ 2 hours left for the field visit handed to you on case DH-1")
    harness.clock.set(at("2026-10-09T18:00"))
    await harness.tick()
    await harness.tick()  # a second run of the sweep sends nothing twice
    assert field_texts(harness, ANN)[-1].startswith("⚠️ The field visit handed to you on case DH-1 (李*) is overdue")
    assert len(field_texts(harness, ANN)) == 3
    overdue = "⚠️ Ann's visit to case DH-1 (李*) is overdue"
    assert [t for t in field_texts(harness, BOSS) if t.startswith(overdue)] != []
    assert len([t for t in field_texts(harness, PAUL) if t.startswith(overdue)]) == 1
    assert [r[2] for r in await request_reminders(harness, request_id)] == ["sent", "sent", "sent"]
    async with harness.db.read() as session:
        request = await session.get(FieldRequest, request_id)
    assert request is not None and request.visit_overdue_at == at("2026-10-09T18:00")
    assert case_id


async def test_a_filed_visit_cancels_the_hand_off_s_reminders(harness: BotHarness, field: dict[str, int]) -> None:
    case_id, request_id = await hand_off(harness, field, "2026-09-30T15:00")
    harness.clock.set(at("2026-10-08T10:00"))
    await file_visit(harness, field["ann"], case_id, "NOBODY", {"revisit_date": "2026-10-12"})
    assert [r[2] for r in await request_reminders(harness, request_id)] == ["cancelled"] * 3
    harness.clock.set(at("2026-10-09T18:00"))
    await harness.deliver_outbox()
    harness.api.clear()
    await harness.tick()
    assert not [t for t in field_texts(harness, ANN) if "overdue" in t]

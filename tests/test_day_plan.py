"""The field collector's plan of the day (the route order) is filed with the supervisor once per working day."""

from __future__ import annotations

import asyncio
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import func, select

from bot.buttons import DayPlanFile
from bot.sandbox.harness import BotHarness
from bot.sandbox.updates import FakeUser
from bot.services import day_plan
from bot.services.actor import StaffView
from bot.storage.models import AuditEntry, DayPlan, Role, Staff
from tests.field_office import ANN, BOB, BOSS, add_case

SH = ZoneInfo("Asia/Shanghai")


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=SH)


def plans(harness: BotHarness, name: str) -> list[str]:
    return [t for t in harness.api.texts(BOSS.id) if t.startswith(f"📋 {name}'s plan for")]


async def plan_rows(harness: BotHarness) -> list[tuple[int, str, list[int]]]:
    async with harness.db.read() as session:
        rows = await session.scalars(select(DayPlan).order_by(DayPlan.id))
        return [(r.collector_id, r.day.isoformat(), r.case_ids) for r in rows]


async def test_the_first_look_at_the_list_files_the_plan_in_route_order(harness: BotHarness,
                                                                         field: dict[str, int]) -> None:
    far = await add_case(harness, "ZS-FAR", field["ann"], (31.3000, 121.5500))  # about 11 km from ZS-1
    harness.clock.set(at("2026-11-03T08:40"))  # a Tuesday
    # the start of the day: Ann shares her position at the far case, the list comes nearest first and is filed
    calls = await harness.send(harness.updates.location(ANN, 31.2990, 121.5490))
    assert DayPlanFile().pack() not in str(calls[-1].params.get("reply_markup"))  # filed: no button
    await harness.deliver_outbox()
    [plan] = plans(harness, "Ann")
    assert plan.splitlines()[1].startswith("1. ZS-FAR 李*") and plan.splitlines()[2].startswith("2. ZS-1 李*")
    assert await plan_rows(harness) == [(field["ann"], "2026-11-03", [far, field["case"]])]
    # the rest of the day's looks file nothing more, and the list offers no filing button
    calls = await harness.send(harness.updates.command(ANN, "/visits"))
    assert DayPlanFile().pack() not in str(calls[-1].params.get("reply_markup"))
    calls = await harness.send(harness.updates.button(ANN, DayPlanFile().pack(), forge=True))
    assert harness.replies(calls)[-1].startswith("📋 Today's plan was already filed at")
    await harness.deliver_outbox()
    assert len(plans(harness, "Ann")) == 1
    async with harness.db.read() as session:
        audited = await session.scalar(select(func.count()).select_from(AuditEntry)
                                       .where(AuditEntry.action == "dayplan.filed"))
    assert audited == 1
    # the next working day is a new plan
    harness.clock.set(at("2026-11-04T09:05"))
    await harness.send(harness.updates.command(ANN, "/visits"))
    await harness.deliver_outbox()
    assert len(plans(harness, "Ann")) == 2


async def test_a_day_off_files_nothing_and_the_make_up_working_day_does(harness: BotHarness,
                                                                        field: dict[str, int]) -> None:
    harness.clock.set(at("2026-10-03T09:00"))  # National Day holiday
    calls = await harness.send(harness.updates.command(ANN, "/visits"))
    assert DayPlanFile().pack() not in str(calls[-1].params.get("reply_markup"))
    calls = await harness.send(harness.updates.button(ANN, DayPlanFile().pack(), forge=True))
    assert harness.replies(calls)[-1] == "Today is not a working day: there is no plan to file."
    harness.clock.set(at("2026-10-10T09:00"))  # the make-up working Saturday
    await harness.send(harness.updates.command(ANN, "/visits"))
    assert [r[1] for r in await plan_rows(harness)] == ["2026-10-10"]
    await harness.deliver_outbox()
    assert plans(harness, "Ann")[-1].startswith("📋 Ann's plan for Oct 10, 2026 (1 case(s), in route order):")


async def test_a_double_tap_files_one_plan_and_sends_one_message(harness: BotHarness, field: dict[str, int]) -> None:
    harness.clock.set(at("2026-11-03T10:00"))
    tap = DayPlanFile().pack()
    replies = await asyncio.gather(harness.send(harness.updates.button(BOB, tap, forge=True)),
                                   harness.send(harness.updates.button(BOB, tap, forge=True)))
    texts = sorted(harness.replies(calls)[-1] for calls in replies)
    assert texts[0].startswith("📋 Today's plan (1 case(s)")
    assert texts[1].startswith("📋 Today's plan was already filed")
    # two processes at once, straight through the service: one files, the other finds it filed
    async with harness.db.read() as session:
        ann = StaffView.of((await session.scalars(select(Staff).where(Staff.id == field["ann"]))).one())

    async def file() -> bool:
        async with harness.db.write() as session:
            return (await day_plan.file_today(session, ann, now=harness.clock.now(), calendar=harness.runtime.calendar,
                                              origin=None)).new

    assert sorted(await asyncio.gather(file(), file())) == [False, True]
    await harness.deliver_outbox()
    assert len(plans(harness, "Bob")) == 1 and len(plans(harness, "Ann")) == 1
    assert len(await plan_rows(harness)) == 2


async def test_a_phone_collector_has_no_plan_to_file(harness: BotHarness, field: dict[str, int]) -> None:
    paul_user = FakeUser(3008, "Paul", language_code="en")
    paul = await harness.onboard(paul_user, "Paul", Role.PHONE_COLLECTOR, team="A", supervisor_id=field["boss"])
    await add_case(harness, "DH-1", paul, (31.25, 121.45))
    harness.clock.set(at("2026-11-03T10:00"))
    calls = await harness.send(harness.updates.command(paul_user, "/visits"))
    assert DayPlanFile().pack() not in str(calls[-1].params.get("reply_markup"))
    calls = await harness.send(harness.updates.button(paul_user, DayPlanFile().pack(), forge=True))
    assert harness.replies(calls)[-1] == "You are not allowed to do that."
    assert await plan_rows(harness) == []

"""The admins' daily summary of completed and missed visits: once a working day, per team, in their language."""

from __future__ import annotations

import asyncio
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import func, select

from bot.sandbox.harness import BotHarness
from bot.sandbox.updates import FakeUser
from bot.services import daily_summary, visits
from bot.services.actor import StaffView
from bot.storage.models import OutboxMessage, Promise, ReportRun, Role, Staff
from tests.field_office import ADMIN, add_case, file_visit

SH = ZoneInfo("Asia/Shanghai")
YAN = FakeUser(3008, "Yan", language_code="en")  # team B
WEI = FakeUser(3011, "Wei", language_code="zh-hans")  # a second admin, reading Chinese


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=SH)


async def send(harness: BotHarness) -> int:
    async with harness.db.write() as session:
        return await daily_summary.send_due(session, now=harness.clock.now(), calendar=harness.runtime.calendar)


async def queued(harness: BotHarness) -> int:
    async with harness.db.read() as session:
        return int(await session.scalar(select(func.count()).select_from(OutboxMessage).where(
            OutboxMessage.kind == "report.daily")) or 0)


async def test_the_daily_summary_goes_once_with_the_day_s_counts(harness: BotHarness,
                                                                 office: dict[str, int]) -> None:
    await harness.onboard(WEI, "Wei", Role.ADMIN, team=None)
    yan = await harness.onboard(YAN, "Yan", Role.COLLECTOR, team="B", supervisor_id=office["zed"])
    await add_case(harness, "B-1", yan, (31.3, 121.5))  # due Wednesday 18:00, never visited
    # Wednesday: Ann files two reports (one approved the same day), Bob files nothing on his case (due 18:00)
    harness.clock.set(at("2026-11-04T10:00"))
    first = await file_visit(harness, office["ann"], office["case"], "PTP",
                             {"amount": "500.00", "promise_date": "2026-11-20"})
    await file_visit(harness, office["ann"], office["case"], "NOBODY", {"revisit_date": "2026-11-10"})
    async with harness.db.write() as session:
        boss = StaffView.of((await session.scalars(select(Staff).where(Staff.id == office["boss"]))).one())
        await visits.review(session, boss, first, approve=True, comment=None, now=harness.clock.now())
        promise = (await session.scalars(select(Promise).where(Promise.visit_id == first))).one()
        promise.status, promise.resolved_at = "broken", harness.clock.now()  # as the promise sweep marks it
    harness.clock.set(at("2026-11-04T18:29"))
    assert await send(harness) == 0  # not before 18:30
    harness.clock.set(at("2026-11-04T18:30"))
    # two sweeps at once (two processes): the summary goes once
    results = await asyncio.gather(send(harness), send(harness))
    assert sorted(results) == [0, 2]
    assert await queued(harness) == 2
    assert await send(harness) == 0
    await harness.deliver_outbox()
    assert harness.api.texts(ADMIN.id)[-1] == (
        "📋 Visits on 2026-11-04, completed and missed:\n"
        "A: reports filed 2, approved 1, visits overdue 1, promises broken 1\n"
        "B: reports filed 0, approved 0, visits overdue 1, promises broken 0\n"
        "Total: reports filed 2, approved 1, visits overdue 2, promises broken 1")
    assert harness.api.texts(WEI.id)[-1].startswith("📋 2026-11-04 外访日报（已完成与未完成的外访）：\n"
                                                     "A：提交报告 2，审核通过 1，逾期未访 1")
    async with harness.db.read() as session:
        runs = [(r.kind, r.period_start.isoformat()) for r in await session.scalars(select(ReportRun))]
    assert ("daily", "2026-11-04") in runs


async def test_no_summary_on_a_day_off_and_the_sweep_sends_it_on_a_working_day(harness: BotHarness,
                                                                               office: dict[str, int]) -> None:
    harness.clock.set(at("2026-11-07T19:00"))  # Saturday
    assert await send(harness) == 0
    await harness.tick()
    assert await queued(harness) == 0
    harness.clock.set(at("2026-11-09T18:45"))  # Monday
    await harness.tick()
    await harness.tick()
    await harness.deliver_outbox()
    summaries = [t for t in harness.api.texts(ADMIN.id) if t.startswith("📋")]
    assert summaries == ["📋 Visits on 2026-11-09, completed and missed:\n"
                         "A: reports filed 0, approved 0, visits overdue 2, promises broken 0\n"
                         "Total: reports filed 0, approved 0, visits overdue 2, promises broken 0"]

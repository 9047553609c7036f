"""Assignment rules: who may assign what, the history, notices, the bulk plans and the 1-working-day report."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from bot.clock import ManualClock
from bot.services import assignment, staff
from bot.services.actor import StaffView
from bot.services.calendar import WorkCalendar
from bot.services.errors import DomainError, Forbidden
from bot.storage.db import Database
from bot.storage.models import Assignment, AuditEntry, Case, OutboxMessage, Role, Staff

SH = ZoneInfo("Asia/Shanghai")
CALENDAR = WorkCalendar()


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=SH)


class Team:
    def __init__(self, db: Database, clock: ManualClock) -> None:
        self.db, self.clock = db, clock
        self.people: dict[str, Staff] = {}

    async def person(self, name: str, role: Role, team: str | None, tg: int | None = None,
                     where: tuple[float, float] | None = None) -> StaffView:
        async with self.db.write() as session:
            member = await staff.add_staff(session, name=name, role=role, team=team, now=self.clock.now())
            member.telegram_user_id, member.locale = tg, "en"
            if where:
                member.last_lat, member.last_lon = where
            self.people[name] = member
            return StaffView.of(member)

    async def case(self, case_no: str, *, team: str | None = None, address: str = "上海市浦东新区",
                   where: tuple[float, float] | None = None, due: datetime | None = None) -> int:
        now = self.clock.now()
        async with self.db.write() as session:
            case = Case(bank="招商银行", case_no=case_no, debtor_name="李四", address=address, amount_due_fen=120000,
                        status="new", team=team, created_at=now, updated_at=now,
                        assign_due_at=due or CALENDAR.deadline_after(now, 1),
                        lat=where[0] if where else None, lon=where[1] if where else None)
            session.add(case)
            await session.flush()
            return case.id


@pytest.fixture
async def team(any_database: Database, clock: ManualClock) -> Team:
    return Team(any_database, clock)


async def test_supervisor_assigns_and_history_is_kept(any_database: Database, team: Team, clock: ManualClock) -> None:
    boss = await team.person("Boss", Role.SUPERVISOR, "A")
    await team.person("Ann", Role.COLLECTOR, "A", tg=501)
    await team.person("Bob", Role.COLLECTOR, "A", tg=502)
    case_id = await team.case("C-1")
    ann, bob = team.people["Ann"].id, team.people["Bob"].id
    async with any_database.write() as session:
        moved = await assignment.assign_cases(session, [case_id], ann, actor=boss, reason="first", now=clock.now(),
                                              calendar=CALENDAR)
    assert [c.case_no for c in moved] == ["C-1"]
    clock.advance(hours=3)
    async with any_database.write() as session:
        await assignment.assign_cases(session, [case_id], bob, actor=boss, reason="rebalance", now=clock.now(),
                                      calendar=CALENDAR)
    async with any_database.read() as session:
        history = (await session.scalars(select(Assignment).order_by(Assignment.id))).all()
        notices = (await session.scalars(select(OutboxMessage).order_by(OutboxMessage.id))).all()
        audit_rows = (await session.scalars(select(AuditEntry).where(AuditEntry.action == "case.assign"))).all()
    assert [(a.staff_id, a.reason, a.ended_at is None, a.assigned_by_id) for a in history] == [
        (ann, "first", False, boss.id), (bob, "rebalance", True, boss.id)]
    assert [(n.chat_id, n.kind) for n in notices] == [(501, "assign.notice.new"), (502, "assign.notice.new"),
                                                      (501, "assign.notice.removed")]
    assert "C-1" in notices[1].payload["text"] and "visit due" in notices[1].payload["text"]
    assert len(audit_rows) == 2


async def test_assigning_to_the_same_collector_again_changes_nothing(any_database: Database, team: Team,
                                                                     clock: ManualClock) -> None:
    boss = await team.person("Boss", Role.SUPERVISOR, "A")
    await team.person("Ann", Role.COLLECTOR, "A", tg=501)
    case_id = await team.case("C-1")
    for _ in range(2):
        async with any_database.write() as session:
            await assignment.assign_cases(session, [case_id], team.people["Ann"].id, actor=boss, reason="x",
                                          now=clock.now(), calendar=CALENDAR)
    async with any_database.read() as session:
        assert len((await session.scalars(select(Assignment))).all()) == 1
        assert len((await session.scalars(select(OutboxMessage))).all()) == 1


async def test_supervisor_cannot_assign_outside_the_team(any_database: Database, team: Team,
                                                         clock: ManualClock) -> None:
    boss = await team.person("Boss", Role.SUPERVISOR, "A")
    await team.person("Other", Role.COLLECTOR, "B")
    await team.person("Ann", Role.COLLECTOR, "A")
    b_case = await team.case("B-1", team="B")
    a_case = await team.case("A-1", team="A")
    with pytest.raises(Forbidden):
        async with any_database.write() as session:
            await assignment.assign_cases(session, [a_case], team.people["Other"].id, actor=boss, reason="x",
                                          now=clock.now(), calendar=CALENDAR)
    with pytest.raises(Forbidden):
        async with any_database.write() as session:
            await assignment.assign_cases(session, [b_case], team.people["Ann"].id, actor=boss, reason="x",
                                          now=clock.now(), calendar=CALENDAR)
    async with any_database.read() as session:
        assert (await session.scalars(select(Assignment))).all() == []


async def test_collectors_and_team_leads_cannot_assign(any_database: Database, team: Team,
                                                       clock: ManualClock) -> None:
    ann = await team.person("Ann", Role.COLLECTOR, "A")
    lead = await team.person("Lead", Role.TEAM_LEAD, "A")
    case_id = await team.case("C-1")
    for actor in (ann, lead):
        with pytest.raises(Forbidden):
            async with any_database.write() as session:
                await assignment.assign_cases(session, [case_id], ann.id, actor=actor, reason="x", now=clock.now(),
                                              calendar=CALENDAR)


async def test_only_active_collectors_receive_cases(any_database: Database, team: Team, clock: ManualClock) -> None:
    admin = await team.person("Admin", Role.ADMIN, None)
    lead = await team.person("Lead", Role.TEAM_LEAD, "A")
    gone = await team.person("Gone", Role.COLLECTOR, "A")
    async with any_database.write() as session:
        await staff.deactivate(session, gone.id, now=clock.now())
    case_id = await team.case("C-1")
    for target in (lead.id, gone.id):
        with pytest.raises(DomainError, match="bad_collector"):
            async with any_database.write() as session:
                await assignment.assign_cases(session, [case_id], target, actor=admin, reason="x", now=clock.now(),
                                              calendar=CALENDAR)


async def test_unassigned_list_is_the_team_s_and_pages(any_database: Database, team: Team) -> None:
    boss = await team.person("Boss", Role.SUPERVISOR, "A")
    for i in range(12):
        await team.case(f"A-{i:02d}", team="A")
    await team.case("B-1", team="B")
    await team.case("X-1", team=None)
    async with any_database.read() as session:
        first, total = await assignment.unassigned_cases(session, boss, limit=10)
        second, _ = await assignment.unassigned_cases(session, boss, offset=10, limit=10)
    assert total == 13
    assert len(first) == 10 and {c.case_no for c in first + second} == {f"A-{i:02d}" for i in range(12)} | {"X-1"}


async def test_nearest_plan_uses_each_collector_s_last_location(any_database: Database, team: Team) -> None:
    boss = await team.person("Boss", Role.SUPERVISOR, "A")
    await team.person("Pudong", Role.COLLECTOR, "A", where=(31.2304, 121.4737))
    await team.person("Minhang", Role.COLLECTOR, "A", where=(31.1129, 121.3817))
    await team.person("Nowhere", Role.COLLECTOR, "A")
    near_pd = await team.case("P-1", where=(31.2400, 121.5000))
    near_mh = await team.case("M-1", where=(31.1000, 121.3700))
    await team.case("N-1")  # no coordinates: left out
    async with any_database.read() as session:
        plan, left_out = await assignment.plan_nearest(session, boss)
    got = {p.case_id: p.staff_id for p in plan}
    assert got == {near_pd: team.people["Pudong"].id, near_mh: team.people["Minhang"].id}
    assert left_out == 1
    assert all(p.meters is not None and p.meters < 5000 for p in plan)


@pytest.mark.parametrize(
    ("imported", "due", "before", "after"),
    [
        # Friday → due end of Monday (the weekend does not count)
        ("2026-11-06T10:00", "2026-11-09T18:00", "2026-11-09T17:59", "2026-11-09T18:00"),
        # Wednesday before National Day: 1–7 October are off, the 8th is the next working day
        ("2026-09-30T15:00", "2026-10-08T18:00", "2026-10-07T23:00", "2026-10-08T18:01"),
        # Friday 9 October: Saturday the 10th is a make-up working day
        ("2026-10-09T11:00", "2026-10-10T18:00", "2026-10-10T17:00", "2026-10-10T18:00"),
    ],
)
async def test_unassigned_after_one_working_day_is_reported_once(
    any_database: Database, team: Team, clock: ManualClock, imported: str, due: str, before: str, after: str
) -> None:
    await team.person("Boss A", Role.SUPERVISOR, "A", tg=901)
    await team.person("Boss B", Role.SUPERVISOR, "B", tg=902)
    clock.set(at(imported))
    case_id = await team.case("C-9", team="A")
    async with any_database.read() as session:
        case = await session.get(Case, case_id)
    assert case is not None and case.assign_due_at == at(due)
    for moment, expected in ((before, 0), (after, 1), (after, 0)):
        clock.set(at(moment))
        async with any_database.write() as session:
            assert await assignment.report_unassigned(session, now=clock.now()) == expected
    async with any_database.read() as session:
        notices = (await session.scalars(select(OutboxMessage))).all()
    assert [(n.chat_id, n.kind) for n in notices] == [(901, "assign.overdue")]
    assert "C-9" in notices[0].payload["text"]


async def test_assigned_case_is_not_reported(any_database: Database, team: Team, clock: ManualClock) -> None:
    boss = await team.person("Boss", Role.SUPERVISOR, "A", tg=901)
    await team.person("Ann", Role.COLLECTOR, "A")
    case_id = await team.case("C-1", team="A")
    async with any_database.write() as session:
        await assignment.assign_cases(session, [case_id], team.people["Ann"].id, actor=boss, reason="x",
                                      now=clock.now(), calendar=CALENDAR)
    clock.advance(days=5)
    async with any_database.write() as session:
        assert await assignment.report_unassigned(session, now=clock.now()) == 0

"""A small field office for the visit tests: a supervisor, two collectors and a case for each.

Loaded as a pytest plugin by ``conftest.py``, so every test module can ask for the ``field`` fixture.
"""

from __future__ import annotations

import pytest

from bot.sandbox.harness import BotHarness
from bot.sandbox.updates import FakeUser
from bot.services import assignment
from bot.storage.models import Case, Role

BOSS = FakeUser(3001, "Boss", language_code="en")
ANN = FakeUser(3002, "Ann", language_code="en")
BOB = FakeUser(3003, "Bob", language_code="en")
PHOTO_1 = b"\xff\xd8\xff\xe0 front door " + bytes(range(200))
PHOTO_2 = b"\xff\xd8\xff\xe0 letter box " + bytes(range(100, 250))
VOICE = b"OggS voice of the visit " + bytes(300)
LEAD = FakeUser(3004, "Lead", language_code="en")
ZED = FakeUser(3005, "Zed", language_code="en")  # a supervisor of team B
ADMIN = FakeUser(3006, "Admin", language_code="en")


async def add_case(harness: BotHarness, case_no: str, to: int, where: tuple[float, float] | None) -> int:
    now = harness.clock.now()
    async with harness.db.write() as session:
        case = Case(bank="招商银行", case_no=case_no, debtor_name="李四", address="上海市浦东新区世纪大道100号",
                    phone="13800138000", id_number_masked="310115********0011", amount_due_fen=1234560,
                    overdue_days=45, status="new", created_at=now, updated_at=now,
                    lat=where[0] if where else None, lon=where[1] if where else None)
        session.add(case)
        await session.flush()
        await assignment.assign_cases(session, [case.id], to, actor=None, reason="test", now=now,
                                      calendar=harness.app.bot_data["runtime"].calendar)
        return case.id


@pytest.fixture
async def field(harness: BotHarness) -> dict[str, int]:
    ids = {"boss": await harness.onboard(BOSS, "Boss", Role.SUPERVISOR, team="A")}
    ids["ann"] = await harness.onboard(ANN, "Ann", Role.COLLECTOR, team="A", supervisor_id=ids["boss"])
    ids["bob"] = await harness.onboard(BOB, "Bob", Role.COLLECTOR, team="A", supervisor_id=ids["boss"])
    ids["case"] = await add_case(harness, "ZS-1", ids["ann"], (31.2304, 121.4737))
    ids["bobs_case"] = await add_case(harness, "ZS-2", ids["bob"], (31.2000, 121.4000))
    await harness.deliver_outbox()
    harness.api.clear()
    return ids


@pytest.fixture
async def office(harness: BotHarness, field: dict[str, int]) -> dict[str, int]:
    """The field office with a team lead, a supervisor of team B and an admin: who alarms can reach."""
    field["lead"] = await harness.onboard(LEAD, "Lead", Role.TEAM_LEAD, team="A")
    field["zed"] = await harness.onboard(ZED, "Zed", Role.SUPERVISOR, team="B")
    field["admin"] = await harness.onboard(ADMIN, "Admin", Role.ADMIN, team=None)
    harness.api.clear()
    return field


def alerts(harness: BotHarness, user: FakeUser) -> list[str]:
    """The emergency alerts ``user`` received."""
    return [t for t in harness.api.texts(user.id) if t.startswith(("🆘 EMERGENCY", "🚨 DURESS"))]


async def file_visit(harness: BotHarness, collector_id: int, case_id: int, code: str, answers: dict[str, object],
                     *, minutes_later: int = 0) -> int:
    """A whole visit through the services (check-in, result, a recording, filing); returns the visit id."""
    from sqlalchemy import select as _select

    from bot.services import visits as visit_service
    from bot.services.actor import StaffView
    from bot.storage.models import Evidence, Staff

    runtime = harness.runtime
    now = runtime.clock.now()
    async with harness.db.write() as session:
        person = (await session.scalars(_select(Staff).where(Staff.id == collector_id))).one()
        me = StaffView.of(person)
        visit = await visit_service.start(session, me, case_id, now=now)
        case = await session.get(Case, case_id)
        assert case is not None
        await visit_service.check_in(session, me, visit.id, lat=case.lat or 31.0, lon=case.lon or 121.0, sent_at=now,
                                     forwarded=False, now=now, radius_m=300)
        await visit_service.set_duration(session, me, visit.id, 30, now=now)
        await visit_service.set_code(session, me, visit.id, code, now=now)
        for name, value in answers.items():
            await visit_service.answer(session, me, visit.id, name, value, now=now)
        session.add(Evidence(visit_id=visit.id, kind="voice", status="stored", sha256="0" * 64, path="x", size=1,
                             mime_type="audio/ogg", file_id=f"f{visit.id}", file_unique_id=f"u{visit.id}",
                             sender_id=me.id, sent_at=now, stored_at=now))
        await session.flush()
        await visit_service.file_report(session, me, visit.id, now=now, calendar=runtime.calendar)
        return visit.id

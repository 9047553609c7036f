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

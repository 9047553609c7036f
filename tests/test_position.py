"""A location shared outside a check-in (the start of the day, on the road) orders the list nearest first."""

from __future__ import annotations

from sqlalchemy import select

from bot.i18n import translator
from bot.keyboards import main_keyboard
from bot.sandbox.harness import BotHarness
from bot.storage.models import Role, Staff
from tests.field_office import ANN, BOSS, add_case


async def test_a_location_at_the_start_of_the_day_sorts_the_list_by_distance(harness: BotHarness,
                                                                              field: dict[str, int]) -> None:
    await add_case(harness, "ZS-FAR", field["ann"], (31.3000, 121.5500))  # about 11 km from ZS-1
    calls = await harness.send(harness.updates.command(ANN, "/visits"))
    assert "sorted by distance" in harness.replies(calls)[-1]  # the hint: no position yet
    calls = await harness.send(harness.updates.location(ANN, 31.2990, 121.5490))  # at the far case
    replies = harness.replies(calls)
    assert replies[0] == "📍 Location noted: your list is sorted nearest first."
    listing = replies[-1]
    assert listing.index("ZS-FAR") < listing.index("ZS-1")
    async with harness.db.read() as session:
        ann = await session.get(Staff, field["ann"])
        assert ann is not None and (ann.last_lat, ann.last_lon) == (31.2990, 121.5490)
    # the next day's first position, near ZS-1, flips the order; the position is kept across a restart
    await harness.restart()
    await harness.send(harness.updates.location(ANN, 31.2305, 121.4738))
    listing = harness.replies(await harness.send(harness.updates.command(ANN, "/visits")))[-1]
    assert listing.index("ZS-1") < listing.index("ZS-FAR")


async def test_a_forwarded_or_old_location_is_refused_and_nothing_changes(harness: BotHarness,
                                                                          field: dict[str, int]) -> None:
    calls = await harness.send(harness.updates.location(ANN, 31.2990, 121.5490, forwarded=BOSS))
    assert harness.replies(calls) == ["Please share your current location; a forwarded location cannot be used."]
    old = int(harness.clock.now().timestamp()) - 3 * 3600
    calls = await harness.send(harness.updates.location(ANN, 31.2990, 121.5490, date=old))
    assert harness.replies(calls) == ["That location is too old; please share your current location again."]
    async with harness.db.read() as session:
        ann = (await session.scalars(select(Staff).where(Staff.id == field["ann"]))).one()
    assert ann.last_lat is None


async def test_the_collector_menu_has_a_share_location_button(harness: BotHarness) -> None:
    rows = main_keyboard(translator("en"), Role.COLLECTOR).keyboard
    shared = [b for row in rows for b in row if b.request_location]
    assert [b.text for b in shared] == ["📍 Share location"]
    assert not [b for row in main_keyboard(translator("en"), Role.SUPERVISOR).keyboard for b in row
                if b.request_location]


async def test_a_supervisors_location_is_not_taken_as_a_position(harness: BotHarness, field: dict[str, int]) -> None:
    calls = await harness.send(harness.updates.location(BOSS, 31.2990, 121.5490))
    assert "📍 Location noted" not in "\n".join(harness.replies(calls))
    async with harness.db.read() as session:
        boss = await session.get(Staff, field["boss"])
    assert boss is not None and boss.last_lat is None

"""The owner of an alarm sees the collector's live location: one message, moved as the collector moves.

Once someone presses "I'm on it", every point the collector shares reaches the owner as ONE live
location (a ``sendLocation``, then ``editMessageLiveLocation`` of that message), at most one call a
second to the owner's chat, the newest point winning; it survives restarts, replays and a sweep
running at the same time, stops when the alarm is resolved, and shows on ``/incidents``.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from bot.clock import ManualClock
from bot.i18n import Translator
from bot.sandbox.botapi import ApiReply, FakeBotApi, Upload
from bot.sandbox.harness import BotHarness, sandbox_settings
from bot.services import incidents, outbox
from bot.storage.db import Database
from bot.storage.models import Incident, IncidentEvent, OutboxMessage, Role
from tests.field_office import ANN, BOB, BOSS

LOCATION_METHODS = ("sendLocation", "editMessageLiveLocation", "stopMessageLiveLocation")


@dataclass(frozen=True)
class Seen:
    """A location call the stand-in answered, at the bot's clock time."""

    at: float
    method: str
    params: dict[str, Any]

    @property
    def point(self) -> tuple[float, float]:
        return self.params["latitude"], self.params["longitude"]


@pytest.fixture
def seen(harness: BotHarness, monkeypatch: pytest.MonkeyPatch) -> list[Seen]:
    """Every successful location call to any chat, with the (manual) clock's time when it was made."""
    calls: list[Seen] = []
    handle = harness.api.handle

    def clocked(method: str, params: Any, files: dict[str, Upload] | None = None) -> ApiReply:
        reply = handle(method, params, files)
        call = harness.api.calls[-1]
        if call.method in LOCATION_METHODS and not call.failed:
            calls.append(Seen(harness.clock.now().timestamp(), call.method, dict(call.params)))
        return reply

    monkeypatch.setattr(harness.api, "handle", clocked)
    return calls


def to(calls: list[Seen], chat: int) -> list[Seen]:
    return [call for call in calls if call.params.get("chat_id") == chat]


async def incident(harness: BotHarness) -> Incident:
    async with harness.db.read() as session:
        return (await session.scalars(select(Incident))).one()


async def location_rows(harness: BotHarness) -> int:
    async with harness.db.read() as session:
        return int(await session.scalar(select(func.count()).select_from(OutboxMessage)
                                        .where(OutboxMessage.kind == incidents.LOCATION_KIND)) or 0)


async def owned_sos(harness: BotHarness) -> None:
    await harness.send(harness.updates.command(ANN, "/sos"))
    await harness.send(harness.updates.button(BOSS, "sos:ack:1", forge=True))


async def later(harness: BotHarness, seconds: float = 1) -> None:
    harness.clock.advance(seconds=seconds)
    await harness.tick()


def assert_paced(calls: list[Seen]) -> None:
    """Never more than one location call a second to one chat."""
    times = [call.at for call in calls]
    assert all(b - a >= 1 for a, b in pairwise(times)), times


@pytest.mark.parametrize("restart", [False, True], ids=["straight", "restart-between-updates"])
async def test_owner_gets_one_live_location_moved_to_the_newest_point(
        harness: BotHarness, field: dict[str, int], seen: list[Seen], restart: bool) -> None:
    await owned_sos(harness)
    assert to(seen, BOSS.id) == []  # nothing known yet: nothing to show

    async def step(update: dict[str, Any]) -> None:
        if restart:
            await harness.restart()
        await harness.send(update)

    await step(harness.updates.location(ANN, 31.2300, 121.4700, live_period=900))
    first = to(seen, BOSS.id)
    assert [(c.method, c.point, c.params["live_period"]) for c in first] == [
        ("sendLocation", (31.23, 121.47), outbox.LIVE_FOREVER)]
    # three live updates within the same second: one edit, with the newest point
    await step(harness.updates.edited_live_location(ANN, 31.2310, 121.4710))
    await step(harness.updates.edited_live_location(ANN, 31.2320, 121.4720))
    assert len(to(seen, BOSS.id)) == 1  # the edit waits for the chat's next second
    await later(harness)
    await step(harness.updates.edited_live_location(ANN, 31.2330, 121.4730))
    await later(harness)
    await later(harness, 5)  # nothing else is due

    calls = to(seen, BOSS.id)
    assert [c.method for c in calls] == ["sendLocation", "editMessageLiveLocation", "editMessageLiveLocation"]
    assert await location_rows(harness) == 3  # the second and third point were one row
    assert [c.point for c in calls[1:]] == [(31.232, 121.472), (31.233, 121.473)]
    assert_paced(calls)
    alarm = await incident(harness)
    assert alarm.owner_location_chat_id == BOSS.id and alarm.owner_location_message_id is not None
    assert {c.params["message_id"] for c in calls[1:]} == {alarm.owner_location_message_id}
    shown = harness.api.message(BOSS.id, alarm.owner_location_message_id)
    assert shown is not None and (shown["location"]["latitude"], shown["location"]["longitude"]) == (31.233, 121.473)
    assert to(seen, ANN.id) == []  # the collector's phone gets none of it
    assert harness.api.texts(ANN.id).count("📍 Your location was passed on.") == 1  # for the first message only


async def test_a_replayed_update_adds_nothing(harness: BotHarness, field: dict[str, int], seen: list[Seen]) -> None:
    await owned_sos(harness)
    start = harness.updates.location(ANN, 31.2300, 121.4700, live_period=900)
    await harness.send(start)
    moved = harness.updates.edited_live_location(ANN, 31.2310, 121.4710)
    await harness.send(moved)
    await later(harness)
    before, rows = len(seen), await location_rows(harness)
    async with harness.db.read() as session:
        points = await session.scalar(select(func.count()).select_from(IncidentEvent)
                                      .where(IncidentEvent.kind == "location"))
    for update in (start, moved, start):
        await harness.replay(update)
    await later(harness)
    await later(harness)
    assert len(seen) == before and await location_rows(harness) == rows
    async with harness.db.read() as session:
        assert await session.scalar(select(func.count()).select_from(IncidentEvent)
                                    .where(IncidentEvent.kind == "location")) == points


@pytest.mark.parametrize("lost", [False, True], ids=["first-point-and-sweep", "first-try-lost"])
async def test_an_update_while_the_sweep_runs_sends_no_second_first_message(
        harness: BotHarness, field: dict[str, int], seen: list[Seen], lost: bool) -> None:
    await owned_sos(harness)
    start = harness.updates.location(ANN, 31.2300, 121.4700, live_period=900)
    if lost:  # the first try is lost: the row waits for a sweep, and the next points race it
        harness.api.fail_next("sendLocation", network=True)
        await harness.send(start)
        assert to(seen, BOSS.id) == []
    else:  # the handler sends the first message itself, while the sweep looks for due rows
        await asyncio.gather(harness.send(start), harness.tick())
    for lat in (31.2310, 31.2320, 31.2330):
        harness.clock.advance(seconds=2)
        await asyncio.gather(harness.send(harness.updates.edited_live_location(ANN, lat, 121.4700)), harness.tick())
    await later(harness)
    await later(harness)
    calls = to(seen, BOSS.id)
    assert [c.method for c in calls].count("sendLocation") == 1 and calls[0].method == "sendLocation"
    assert calls[-1].point == (31.233, 121.47)
    assert_paced(calls)
    alarm = await incident(harness)
    assert {c.params.get("message_id") for c in calls[1:]} <= {alarm.owner_location_message_id}
    async with harness.db.read() as session:
        sends = await session.scalar(select(func.count()).select_from(OutboxMessage).where(
            OutboxMessage.method == "sendLocation", OutboxMessage.sent_at.is_not(None)))
    assert sends == 1


async def test_a_known_location_goes_to_the_owner_when_they_acknowledge(
        harness: BotHarness, field: dict[str, int], seen: list[Seen]) -> None:
    await harness.send(harness.updates.command(ANN, "/sos"))
    await harness.send(harness.updates.location(ANN, 31.2300, 121.4700))
    assert to(seen, BOSS.id) == []  # nobody owns it yet: the alert carries the point
    await harness.send(harness.updates.button(BOSS, "sos:ack:1", forge=True))
    assert [(c.method, c.point) for c in to(seen, BOSS.id)] == [("sendLocation", (31.23, 121.47))]


async def test_after_resolving_the_live_location_stops_and_is_not_edited(
        harness: BotHarness, field: dict[str, int], seen: list[Seen]) -> None:
    await owned_sos(harness)
    await harness.send(harness.updates.location(ANN, 31.2300, 121.4700, live_period=900))
    await harness.send(harness.updates.edited_live_location(ANN, 31.2310, 121.4710))
    await harness.send(harness.updates.button(BOSS, "sos:res:1", forge=True))
    await harness.send(harness.updates.button(BOSS, "sos:rr:1:resolved_safely", forge=True))
    await harness.send(harness.updates.text(BOSS, "All fine"))
    await later(harness)
    await later(harness)
    await harness.send(harness.updates.edited_live_location(ANN, 31.2350, 121.4750))
    await later(harness)
    await later(harness)
    calls = to(seen, BOSS.id)
    # the edit still waiting when it was resolved became the stop: the owner's map stops, nothing moves it after
    assert [c.method for c in calls] == ["sendLocation", "stopMessageLiveLocation"]
    assert calls[1].params["message_id"] == harness.api.sent("sendLocation", BOSS.id)[0].result["message_id"]
    assert_paced(calls)
    alarm = await incident(harness)
    assert alarm.status == "resolved" and alarm.owner_location_message_id is None
    assert await location_rows(harness) == 2
    refused = harness.api.handle("editMessageLiveLocation", {"chat_id": BOSS.id, "latitude": 31.0, "longitude": 121.0,
                                                             "message_id": calls[1].params["message_id"]})
    assert refused.status == 400 and "can't be edited" in refused.body["description"]


async def test_an_edit_telegram_refuses_is_followed_by_a_new_live_location(
        harness: BotHarness, field: dict[str, int], seen: list[Seen]) -> None:
    await owned_sos(harness)
    await harness.send(harness.updates.location(ANN, 31.2300, 121.4700, live_period=900))
    old = (await incident(harness)).owner_location_message_id
    harness.api.fail_next("editMessageLiveLocation", status=400, description="Bad Request: message to edit not found")
    await harness.send(harness.updates.edited_live_location(ANN, 31.2310, 121.4710))
    await later(harness)  # the edit is refused for good
    assert (await incident(harness)).owner_location_message_id is None
    await later(harness)  # a new live location, with the newest point
    await harness.send(harness.updates.edited_live_location(ANN, 31.2320, 121.4720))
    await later(harness)
    calls = to(seen, BOSS.id)
    assert [(c.method, c.point) for c in calls] == [
        ("sendLocation", (31.23, 121.47)), ("sendLocation", (31.231, 121.471)),
        ("editMessageLiveLocation", (31.232, 121.472))]
    new = (await incident(harness)).owner_location_message_id
    assert new is not None and new != old and calls[2].params["message_id"] == new
    async with harness.db.read() as session:
        kinds = list(await session.scalars(select(IncidentEvent.kind).where(
            IncidentEvent.kind.in_((incidents.SHOWN_TO_OWNER, incidents.LOCATION_FAILED))).order_by(IncidentEvent.id)))
    assert kinds == ["owner_location", "location_failed", "owner_location", "owner_location"]


async def _set_pins(harness: BotHarness) -> None:
    await harness.send(harness.updates.command(ANN, "/pin"))
    await harness.send(harness.updates.text(ANN, "1234"))
    await harness.send(harness.updates.text(ANN, "9999"))


async def test_under_duress_the_owner_still_gets_the_location_and_the_phone_shows_nothing(
        harness: BotHarness, field: dict[str, int], seen: list[Seen]) -> None:
    await _set_pins(harness)
    await harness.send(harness.updates.command(ANN, "/sos"))
    await harness.send(harness.updates.button(ANN, "sos:safe"))
    await harness.send(harness.updates.text(ANN, "9999"))  # duress: looks closed on Ann's phone
    await harness.send(harness.updates.button(BOSS, "sos:ack:1", forge=True))
    anns = await harness.send(harness.updates.location(ANN, 31.2300, 121.4700))
    bobs = await harness.send(harness.updates.location(BOB, 31.2300, 121.4700))  # Bob has no alarm at all
    assert [(c.method, c.point) for c in to(seen, BOSS.id)] == [("sendLocation", (31.23, 121.47))]
    # both get what any collector gets for a location (noted, then their own list): the same messages, each
    # headed alike, nothing about an alarm
    assert [r.splitlines()[0] for r in harness.replies(anns, ANN.id)] == [
        r.splitlines()[0] for r in harness.replies(bobs, BOB.id)]
    assert not [r for r in harness.replies(anns, ANN.id) if "alarm" in r.lower() or "🆘" in r]
    assert [c.method for c in anns if c.params.get("chat_id") == ANN.id] == [
        c.method for c in bobs if c.params.get("chat_id") == BOB.id]


async def test_incidents_shows_the_last_position_and_the_owner_s_live_location(
        harness: BotHarness, field: dict[str, int], seen: list[Seen]) -> None:
    await owned_sos(harness)
    t, tz = Translator("en"), harness.runtime.tz
    raised = t.datetime(harness.clock.now(), tz)
    calls = await harness.send(harness.updates.command(BOSS, "/incidents"))
    assert calls[-1].params["text"].splitlines()[1:] == [f"#1 Ann, {raised}, owner: Boss",
                                                         "  📍 Position: not shared yet"]
    harness.clock.advance(seconds=90)
    await harness.send(harness.updates.location(ANN, 31.2300, 121.4700, live_period=900))
    calls = await harness.send(harness.updates.command(BOSS, "/incidents"))
    assert calls[-1].params["text"].splitlines()[1:] == [
        f"#1 Ann, {raised}, owner: Boss",
        f"  📍 Last position: 31.23000, 121.47000 at {t.datetime(harness.clock.now(), tz)}",
        "  🛰 Boss is receiving the live location"]


async def test_two_processes_on_each_backend_keep_one_live_location(any_database: Database, tmp_path: Path,
                                                                    clock: ManualClock) -> None:
    """Two applications on one database (PostgreSQL too): updates reach either, both send at once."""
    api = FakeBotApi(clock=lambda: clock.now().timestamp())
    settings = sandbox_settings(tmp_path, database_url=any_database.url)
    first, second = BotHarness(settings, clock, api=api), BotHarness(settings, clock, api=api)
    await first.start()
    await second.start()
    try:
        updates = first.updates  # one source of update ids, as Telegram is
        boss = await first.onboard(BOSS, "Boss", Role.SUPERVISOR, team="A")
        await first.onboard(ANN, "Ann", Role.COLLECTOR, team="A", supervisor_id=boss)
        await first.send(updates.command(ANN, "/sos"))
        await second.send(updates.button(BOSS, "sos:ack:1", forge=True))
        await asyncio.gather(first.send(updates.location(ANN, 31.2300, 121.4700, live_period=900)),
                             second.deliver_outbox(), first.deliver_outbox())
        for n, lat in enumerate((31.2310, 31.2320, 31.2330, 31.2340)):
            clock.advance(seconds=1)
            here, there = (first, second) if n % 2 else (second, first)
            await asyncio.gather(here.send(updates.edited_live_location(ANN, lat, 121.4700)),
                                 there.deliver_outbox(), here.deliver_outbox())
        for _ in range(2):
            clock.advance(seconds=1)
            await asyncio.gather(first.deliver_outbox(), second.deliver_outbox())
        sent = api.sent("sendLocation", BOSS.id)
        assert len(sent) == 1
        async with first.db.read() as session:
            alarm = (await session.scalars(select(Incident))).one()
        assert alarm.owner_location_message_id == sent[0].result["message_id"]
        shown = api.message(BOSS.id, sent[0].result["message_id"])
        assert shown is not None and shown["location"]["latitude"] == 31.234
        assert all(c.params["message_id"] == alarm.owner_location_message_id
                   for c in api.sent("editMessageLiveLocation", BOSS.id))
    finally:
        await second.close()
        await first.close()
    assert api.violations == []

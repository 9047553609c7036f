"""The office's side of a handover: /handovers, standing in for a silent departing collector, the supervisor's
cancel button, reminders to the team lead and successors, and no pair of handovers blocking each other."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from bot.sandbox.harness import BotHarness
from bot.sandbox.updates import FakeUser
from bot.services import handover
from bot.services.calendar import WorkCalendar
from bot.services.errors import DomainError
from bot.storage.db import Database
from bot.storage.models import Assignment, AuditEntry, Case, Handover, HandoverItem, Role, Staff
from tests.field_office import ADMIN, ANN, BOB, BOSS, LEAD, ZED, add_case

SH = ZoneInfo("Asia/Shanghai")
CAT = FakeUser(3007, "Cat", language_code="en")
YAN = FakeUser(3008, "Yan", language_code="en")  # team B
UMA = FakeUser(3009, "Uma", language_code="en")  # team B
DAN = FakeUser(3010, "Dan", language_code="en")
FORBIDDEN = "You are not allowed to do that."


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=SH)


@pytest.fixture
async def team(harness: BotHarness, office: dict[str, int]) -> dict[str, int]:
    office["cat"] = await harness.onboard(CAT, "Cat", Role.COLLECTOR, team="A", supervisor_id=office["boss"])
    office["c2"] = await add_case(harness, "ZS-3", office["ann"], (31.21, 121.41))
    office["c3"] = await add_case(harness, "ZS-4", office["ann"], (31.22, 121.42))
    await harness.deliver_outbox()
    harness.api.clear()
    return office


async def assignees(harness: BotHarness) -> dict[int, int]:
    async with harness.db.read() as session:
        rows = await session.execute(select(Assignment.case_id, Assignment.staff_id)
                                     .where(Assignment.ended_at.is_(None)))
        return {case_id: staff_id for case_id, staff_id in rows.tuples()}


async def deadlines(harness: BotHarness) -> dict[int, object]:
    async with harness.db.read() as session:
        cases = await session.scalars(select(Case))
        return {c.id: (c.visit_due_at, c.visit_done_at, c.visit_overdue_at) for c in cases}


async def start(harness: BotHarness, departing: int, successors: list[int]) -> int:
    async with harness.db.write() as session:
        started = await handover.start(session, actor=None, from_id=departing, successor_ids=successors,
                                       now=harness.clock.now(), calendar=harness.runtime.calendar)
        return started.id


async def item_ids(harness: BotHarness, handover_id: int) -> list[int]:
    async with harness.db.read() as session:
        return list(await session.scalars(select(HandoverItem.id).where(HandoverItem.handover_id == handover_id)
                                          .order_by(HandoverItem.id)))


async def status(harness: BotHarness, handover_id: int) -> str:
    async with harness.db.read() as session:
        found = await session.get(Handover, handover_id)
        assert found is not None
        return found.status


async def test_the_team_lead_answers_for_a_silent_departing_collector(harness: BotHarness,
                                                                     team: dict[str, int]) -> None:
    first = await start(harness, team["ann"], [team["bob"], team["cat"]])
    harness.clock.set(at("2026-11-04T10:00"))  # Ann has said nothing for two days
    calls = await harness.send(harness.updates.command(LEAD, "/handovers"))
    listing = calls[-1].params
    assert listing["text"].startswith("Running handovers (1):\n#1 Ann: waiting for the departing collector's checklist")
    assert listing["reply_markup"]["inline_keyboard"][0][0]["callback_data"] == f"ho:open:{first}"
    calls = await harness.send(harness.updates.button(LEAD, f"ho:open:{first}"))
    offered = [b["callback_data"] for row in calls[-1].params["reply_markup"]["inline_keyboard"] for b in row]
    assert offered == [f"ho:si:{first}"]  # the lead stands in; cancelling is the supervisor's
    calls = await harness.send(harness.updates.button(LEAD, f"ho:si:{first}"))
    assert calls[-1].params["text"].startswith("Answering Ann's checklist of handover #1 for them")
    items = await item_ids(harness, first)
    # one item first, with its own note
    calls = await harness.send(harness.updates.button(LEAD, f"ho:sii:{items[0]}"))
    assert harness.replies(calls)[-1].startswith("Type a note")
    calls = await harness.send(harness.updates.text(LEAD, "   "))
    assert harness.replies(calls)[-1].startswith("Please type a note")
    calls = await harness.send(harness.updates.text(LEAD, "ZS-1: promise noted in the file"))
    assert harness.replies(calls)[-1] == "1 item(s) answered for them and written to the audit log."
    # then all that are left
    await harness.send(harness.updates.button(LEAD, f"ho:sia:{first}"))
    calls = await harness.send(harness.updates.text(LEAD, "Ann unreachable since Monday"))
    assert harness.replies(calls)[-1] == ("2 item(s) answered for them; the checklist is complete and goes to the "
                                          "team lead.")
    assert await status(harness, first) == "lead_review"
    await harness.deliver_outbox()
    told = "📝 Lead answered 2 item(s) of handover #1 for you: Ann unreachable since Monday"
    assert told in harness.api.texts(ANN.id)
    async with harness.db.read() as session:
        stood_in = [(a.actor_id, json.loads(a.details)) for a in await session.scalars(
            select(AuditEntry).where(AuditEntry.action == "handover.item_stood_in").order_by(AuditEntry.seq))]
        notes = list(await session.scalars(select(HandoverItem.departing_note).order_by(HandoverItem.id)))
    assert [actor for actor, _ in stood_in] == [team["lead"]] * 3
    assert all(d["for"] == team["ann"] and d["by"] == team["lead"] for _, d in stood_in)
    typed = ["ZS-1: promise noted in the file"] + ["Ann unreachable since Monday"] * 2
    assert [d["note"] for _, d in stood_in] == typed
    assert notes == typed
    # the handover goes on to completion as usual
    await harness.send(harness.updates.button(LEAD, f"ho:lok:{first}", forge=True))
    await harness.send(harness.updates.button(BOB, f"ho:rcv:{first}", forge=True))
    await harness.send(harness.updates.button(CAT, f"ho:rcv:{first}", forge=True))
    assert await status(harness, first) == "completed"
    async with harness.db.read() as session:
        ann = await session.get(Staff, team["ann"])
    assert ann is not None and not ann.active


async def test_another_team_s_supervisor_and_a_collector_cannot_stand_in(harness: BotHarness,
                                                                         team: dict[str, int]) -> None:
    first = await start(harness, team["ann"], [team["bob"]])
    items = await item_ids(harness, first)
    for user, data in ((ZED, f"ho:si:{first}"), (ZED, f"ho:sia:{first}"), (ZED, f"ho:sii:{items[0]}"),
                       (BOB, f"ho:sia:{first}"), (ANN, f"ho:si:{first}")):
        calls = await harness.send(harness.updates.button(user, data, forge=True))
        assert calls[-1].params["text"] == FORBIDDEN, (user.first_name, data)
    assert await status(harness, first) == "collecting"


async def test_departing_collector_and_stand_in_at_once_answer_each_item_once(harness: BotHarness,
                                                                             team: dict[str, int]) -> None:
    first = await start(harness, team["ann"], [team["bob"]])
    items = await item_ids(harness, first)
    for item_id in items[:-1]:
        await harness.send(harness.updates.button(ANN, f"ho:ok:{item_id}"))
    await harness.send(harness.updates.button(BOSS, f"ho:sia:{first}", forge=True))
    await asyncio.gather(harness.send(harness.updates.button(ANN, f"ho:ok:{items[-1]}")),
                         harness.send(harness.updates.text(BOSS, "unreachable")))
    assert await status(harness, first) == "lead_review"
    async with harness.db.read() as session:
        actions = list(await session.scalars(select(AuditEntry.action).where(
            AuditEntry.action.in_(("handover.item_confirmed", "handover.item_stood_in",
                                   "handover.departing_confirmed")))))
    assert actions.count("handover.departing_confirmed") == 1
    assert actions.count("handover.item_confirmed") + actions.count("handover.item_stood_in") == len(items)


async def test_the_supervisor_cancels_while_successors_acknowledge(harness: BotHarness, team: dict[str, int]) -> None:
    dan = await harness.onboard(DAN, "Dan", Role.COLLECTOR, team="A", supervisor_id=team["boss"])
    before, clocks = await assignees(harness), await deadlines(harness)
    calls_start = await harness.send(harness.updates.command(BOSS, "/handover"))
    assert calls_start
    await harness.send(harness.updates.button(BOSS, f"ho:from:{team['ann']}"))
    await harness.send(harness.updates.button(BOSS, f"ho:succ:{team['bob']}"))
    await harness.send(harness.updates.button(BOSS, f"ho:succ:{team['cat']}"))
    await harness.send(harness.updates.button(BOSS, f"ho:succ:{dan}"))
    calls = await harness.send(harness.updates.button(BOSS, "ho:go"))
    started = calls[-1].params
    assert started["text"].startswith("Handover #1 started")
    assert started["reply_markup"]["inline_keyboard"] == [[{"text": "✖️ Cancel the handover",
                                                            "callback_data": "ho:cancel:1"}]]
    await harness.send(harness.updates.button(BOSS, "ho:sia:1", forge=True))
    await harness.send(harness.updates.text(BOSS, "Ann left early"))
    await harness.send(harness.updates.button(LEAD, "ho:lok:1", forge=True))
    harness.clock.set(at("2026-11-03T11:00"))
    await harness.send(harness.updates.button(BOB, "ho:rcv:1", forge=True))
    assert await assignees(harness) != before
    calls = await harness.send(harness.updates.command(BOSS, "/handovers"))
    await harness.send(harness.updates.button(BOSS, "ho:open:1"))
    offered = [b["callback_data"] for c in [harness.api.last("sendMessage", BOSS.id)]
               for row in c.params["reply_markup"]["inline_keyboard"] for b in row]
    assert offered == ["ho:cancel:1"]
    # Cat acknowledges at the very moment the supervisor cancels (Dan has not yet): every case is as it was
    await asyncio.gather(harness.send(harness.updates.button(CAT, "ho:rcv:1", forge=True)),
                         harness.send(harness.updates.button(BOSS, "ho:cancel:1", forge=True)))
    assert await status(harness, 1) == "cancelled"
    assert await assignees(harness) == before
    assert await deadlines(harness) == clocks
    async with harness.db.read() as session:
        ann = await session.get(Staff, team["ann"])
    assert ann is not None and ann.active
    calls = await harness.send(harness.updates.button(BOSS, "ho:cancel:1"))
    assert calls[-1].params["text"] == "That handover is not at this step."


async def test_no_pair_of_handovers_can_block_each_other(harness: BotHarness, team: dict[str, int]) -> None:
    await add_case(harness, "ZS-9", team["bob"], (31.3, 121.5))
    first = await start(harness, team["ann"], [team["bob"]])
    # Bob, who takes Ann's cases, cannot start leaving (and Ann, who is leaving, cannot take his)
    for departing, successors, key in ((team["bob"], [team["ann"]], "handover.error.successor_leaving"),
                                       (team["bob"], [team["cat"]], "handover.error.departing_is_successor")):
        with pytest.raises(DomainError) as refused:
            await start(harness, departing, successors)
        assert refused.value.key == key
    async with harness.db.read() as session:
        assert [p.name for p in await handover.successor_candidates(session, None, team["cat"])] == ["Bob"]
    # in the chat: Ann is not offered as Cat's successor
    await harness.send(harness.updates.command(BOSS, "/handover"))
    calls = await harness.send(harness.updates.button(BOSS, f"ho:from:{team['cat']}"))
    names = [b["text"] for row in calls[-1].params["reply_markup"]["inline_keyboard"] for b in row]
    assert names == ["Bob"]
    assert await status(harness, first) == "collecting"


async def test_two_starts_at_once_that_would_block_each_other(harness: BotHarness, team: dict[str, int]) -> None:
    await add_case(harness, "ZS-9", team["bob"], (31.3, 121.5))

    async def attempt(departing: int, successor: int) -> str:
        try:
            await start(harness, departing, [successor])
        except DomainError as error:
            return error.key
        return "started"

    outcomes = await asyncio.gather(attempt(team["ann"], team["bob"]), attempt(team["bob"], team["ann"]))
    assert sorted(outcomes) == ["handover.error.successor_leaving", "started"]
    async with harness.db.read() as session:
        assert len(list(await session.scalars(select(Handover)))) == 1


async def test_handovers_lists_the_right_ones_per_role(harness: BotHarness, team: dict[str, int]) -> None:
    yan = await harness.onboard(YAN, "Yan", Role.COLLECTOR, team="B", supervisor_id=team["zed"])
    uma = await harness.onboard(UMA, "Uma", Role.COLLECTOR, team="B", supervisor_id=team["zed"])
    await add_case(harness, "B-1", yan, (31.3, 121.5))
    a = await start(harness, team["ann"], [team["bob"]])
    b = await start(harness, yan, [uma])

    async def listed(user: FakeUser) -> list[str]:
        calls = await harness.send(harness.updates.command(user, "/handovers"))
        keyboard = calls[-1].params.get("reply_markup") or {"inline_keyboard": []}
        return [btn["callback_data"] for row in keyboard["inline_keyboard"] for btn in row]

    assert await listed(BOSS) == [f"ho:open:{a}"]
    assert await listed(LEAD) == [f"ho:open:{a}"]
    assert await listed(ZED) == [f"ho:open:{b}"]
    assert await listed(ADMIN) == [f"ho:open:{a}", f"ho:open:{b}"]
    calls = await harness.send(harness.updates.command(ANN, "/handovers"))
    assert harness.replies(calls) == [FORBIDDEN]
    calls = await harness.send(harness.updates.button(ZED, f"ho:open:{a}", forge=True))
    assert calls[-1].params["text"] == FORBIDDEN
    calls = await harness.send(harness.updates.button(ADMIN, f"ho:open:{b}"))
    offered = [btn["callback_data"] for row in calls[-1].params["reply_markup"]["inline_keyboard"] for btn in row]
    assert offered == [f"ho:si:{b}", f"ho:cancel:{b}"]
    # the menu button of a team lead opens the same list
    calls = await harness.send(harness.updates.text(LEAD, "📦 Handovers"))
    assert calls[-1].params["text"].startswith("Running handovers (1):")


async def test_lead_and_successors_are_reminded_in_working_hours(harness: BotHarness, team: dict[str, int]) -> None:
    first = await start(harness, team["ann"], [team["bob"], team["cat"]])
    harness.clock.set(at("2026-11-02T13:00"))  # 4 working hours after 09:00
    await harness.tick()
    reminded = "⏰ Ann still has 3 item(s) to confirm in handover #1."
    assert any(t.startswith(reminded) for t in harness.api.texts(LEAD.id))
    harness.clock.set(at("2026-11-02T15:00"))
    await harness.send(harness.updates.button(BOSS, f"ho:sia:{first}", forge=True))
    await harness.send(harness.updates.text(BOSS, "gone"))
    harness.api.clear()
    harness.clock.set(at("2026-11-02T17:59"))  # not yet 4 working hours: nobody is reminded
    await harness.tick()
    assert not [t for t in harness.api.texts(LEAD.id) if t.startswith("⏰")]
    harness.clock.set(at("2026-11-03T10:00"))  # 4 working hours (18:00 to 09:00 is no working time)
    await harness.tick()
    assert [t for t in harness.api.texts(LEAD.id) if t.startswith("⏰")] == [
        "⏰ Ann's handover #1 is waiting for your confirmation: confirm, reassign cases, or flag a problem."]
    await harness.send(harness.updates.button(LEAD, f"ho:lok:{first}", forge=True))
    await harness.send(harness.updates.button(BOB, f"ho:rcv:{first}", forge=True))
    harness.api.clear()
    harness.clock.set(at("2026-11-03T15:00"))
    await harness.tick()
    await harness.tick()  # a second sweep in the same hour sends nothing more
    assert [t for t in harness.api.texts(CAT.id) if t.startswith("⏰")] == [
        "⏰ Ann's handover #1: you have not yet acknowledged 1 case(s)."]
    assert not [t for t in harness.api.texts(BOB.id) if t.startswith("⏰")]


async def test_blocking_starts_at_once_on_each_database(any_database: Database) -> None:
    """Ann -> Bob and Bob -> Ann started by two sessions at once: exactly one runs (SQLite and PostgreSQL)."""
    now = at("2026-11-02T09:00")
    calendar = WorkCalendar()
    async with any_database.write() as session:
        people = [Staff(name=name, role=Role.COLLECTOR.value, team="A", active=True, created_at=now)
                  for name in ("Ann", "Bob")]
        session.add_all(people)
        await session.flush()
        ann, bob = people[0].id, people[1].id

    async def attempt(departing: int, successor: int) -> str:
        try:
            async with any_database.write() as session:
                await handover.start(session, actor=None, from_id=departing, successor_ids=[successor], now=now,
                                     calendar=calendar)
        except DomainError as error:
            return error.key
        return "started"

    outcomes = await asyncio.gather(attempt(ann, bob), attempt(bob, ann))
    assert sorted(outcomes) == ["handover.error.successor_leaving", "started"]
    async with any_database.read() as session:
        assert len(list(await session.scalars(select(Handover)))) == 1

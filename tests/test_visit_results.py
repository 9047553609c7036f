"""Result codes that change where a case is or what a report needs: MOVED and BAD_ADDR put the case back on the
collector's list as a locate task (MOVED at its new address, geocoded), ABORTED_SAFETY files without a
recording, NOT_VISITED without a check-in or a recording; every other code keeps the SOP's evidence."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import date, datetime, time
from typing import Any

import pytest
from sqlalchemy import select

from bot.sandbox.geocoder import OfflineGeocoder
from bot.sandbox.harness import BotHarness
from bot.services import dispositions
from bot.services import visits as visit_service
from bot.services.actor import StaffView
from bot.services.errors import DomainError
from bot.storage.models import AuditEntry, Case, Evidence, Staff, Visit
from tests.field_office import ANN, BOSS, VOICE

pytestmark = pytest.mark.usefixtures("field")

OLD_ADDRESS = "上海市浦东新区世纪大道100号"
NEW_ADDRESS = "北京市朝阳区建国路88号"
BEIJING = (39.9087, 116.4605)
TODAY = date(2026, 11, 2)  # the clock's Monday


def geocoder() -> OfflineGeocoder:
    return OfflineGeocoder({"北京市朝阳区": BEIJING})


def moved_walk(harness: BotHarness, ids: dict[str, int], address: str) -> list[tuple[str, Callable[[], Any]]]:
    return [
        ("check in", lambda: harness.updates.button(ANN, f"v:in:{ids['case']}", forge=True)),
        ("location", lambda: harness.updates.location(ANN, 31.2306, 121.4739)),
        ("duration", lambda: harness.updates.button(ANN, "v:dur:30")),
        ("code", lambda: harness.updates.button(ANN, "v:code:MOVED")),
        ("source", lambda: harness.updates.text(ANN, "邻居说上个月搬走了")),
        ("address", lambda: harness.updates.text(ANN, address)),
        ("voice", lambda: harness.voice_update(ANN, VOICE)),
        ("done", lambda: harness.updates.button(ANN, "v:done")),
        ("file", lambda: harness.updates.button(ANN, "v:file")),
    ]


async def send_all(harness: BotHarness, *makers: Callable[[], dict[str, Any]]) -> list[Any]:
    """Send one update after another, each made when its turn comes (a button is pressed on the latest message)."""
    calls: list[Any] = []
    for make in makers:
        calls = await harness.send(make())
    return calls


async def _visit(harness: BotHarness) -> Visit:
    async with harness.db.read() as session:
        return (await session.scalars(select(Visit))).one()


async def _case(harness: BotHarness, case_id: int) -> Case:
    async with harness.db.read() as session:
        case = await session.get(Case, case_id)
    assert case is not None
    return case


async def _listed(harness: BotHarness) -> str:
    calls = await harness.send(harness.updates.command(ANN, "/visits"))
    return str(calls[-1].params["text"])


async def _address_changes(harness: BotHarness) -> list[dict[str, Any]]:
    async with harness.db.read() as session:
        rows = (await session.scalars(select(AuditEntry.details).where(AuditEntry.action == "case.address_changed")
                                      .order_by(AuditEntry.seq))).all()
    return [json.loads(r or "{}") for r in rows]


async def _assert_moved(harness: BotHarness, ids: dict[str, int]) -> None:
    visit = await _visit(harness)
    assert visit.status == "filed" and visit.code == "MOVED"
    assert visit.details["answers"] == {"source": "邻居说上个月搬走了", "new_address": NEW_ADDRESS}
    assert visit.details["relocation"]["from"] == {"address": OLD_ADDRESS, "lat": 31.2304, "lon": 121.4737}
    case = await _case(harness, ids["case"])
    assert (case.address, case.lat, case.lon) == (NEW_ADDRESS, *BEIJING)
    assert (case.status, case.next_action, case.next_action_on) == ("visited", "locate", TODAY)
    changes = await _address_changes(harness)
    assert len(changes) == 1 and changes[0]["from"]["address"] == OLD_ADDRESS
    assert changes[0]["to"] == {"address": NEW_ADDRESS, "lat": BEIJING[0], "lon": BEIJING[1]}
    assert changes[0]["visit_id"] == visit.id
    # back on the collector's list, its card at the new address with the locate task; the visit in its history
    assert "ZS-1" in await _listed(harness)
    calls = await harness.send(harness.updates.button(ANN, f"v:card:{ids['case']}", forge=True))
    card = calls[-1].params["text"]
    assert NEW_ADDRESS in card and "Next: find the new address" in card and "Moved (Ann)" in card


async def test_moved_with_a_new_address_moves_the_case_and_lists_it_as_a_locate_task(
        harness: BotHarness, field: dict[str, int]) -> None:
    harness.runtime.geocoder = geo = geocoder()
    for name, make in moved_walk(harness, field, NEW_ADDRESS):
        if name == "address":  # an empty answer first: the translated hint and the same question
            calls = await harness.send(harness.updates.text(ANN, "   "))
            assert harness.replies(calls) == [
                "Please type the new address, e.g. 上海市浦东新区世纪大道100号. If it is not known, type \"unknown\" "
                "or tap \"Not known\".", "Please enter: new address"]
            unknown = calls[-1].params["reply_markup"]["inline_keyboard"][-1][0]
            assert (unknown["text"], unknown["callback_data"]) == ("❓ Not known", "v:skip")
            assert "new_address" not in (await _visit(harness)).details["answers"]
        calls = await harness.send(make())
        if name == "source":
            assert harness.replies(calls) == ["Please enter: new address"]
        if name == "done":
            assert f"new address: {NEW_ADDRESS}" in harness.replies(calls)[-1]
    assert geo.queries == [NEW_ADDRESS]
    await _assert_moved(harness, field)
    await harness.deliver_outbox()  # the review request (and Ann's plan of the day, from her first /visits)
    assert any(t.startswith("📝 Ann filed") and f"new address: {NEW_ADDRESS}" in t for t in harness.api.texts(BOSS.id))
    # the supervisor's case desk shows the move on the case's timeline
    card = harness.replies(await harness.send(harness.updates.command(BOSS, "/case", "ZS-1")))[-1]
    assert f"address changed by Ann: {OLD_ADDRESS} → {NEW_ADDRESS}" in card


async def test_moved_survives_a_restart_between_every_two_steps(harness: BotHarness, field: dict[str, int]) -> None:
    for name, make in moved_walk(harness, field, NEW_ADDRESS):
        await harness.restart()
        if name == "address":  # only this process has a geocoder: the coordinates are kept with the answer
            harness.runtime.geocoder = geocoder()
        await harness.send(make())
    await _assert_moved(harness, field)


async def test_moved_to_an_unknown_address_keeps_the_case_where_it_is_on_the_list(
        harness: BotHarness, field: dict[str, int]) -> None:
    for name, make in moved_walk(harness, field, "不详"):
        calls = await harness.send(make())
        if name == "done":
            assert "new address: ❓ Not known" in harness.replies(calls)[-1]
    visit = await _visit(harness)
    assert visit.status == "filed" and visit.details["answers"]["new_address"] == ""
    case = await _case(harness, field["case"])
    assert (case.address, case.lat, case.lon) == (OLD_ADDRESS, 31.2304, 121.4737)
    assert (case.next_action, case.next_action_on) == ("locate", TODAY)
    assert await _address_changes(harness) == []
    assert "ZS-1" in await _listed(harness)


async def test_the_not_known_button_files_with_the_address_unknown(harness: BotHarness,
                                                                   field: dict[str, int]) -> None:
    steps = moved_walk(harness, field, "")
    for _name, make in steps[:5]:
        await harness.send(make())
    calls = await harness.send(harness.updates.button(ANN, "v:skip"))
    assert harness.replies(calls)[-1].startswith("Send the visit's recording")
    for _name, make in steps[6:]:
        await harness.send(make())
    visit = await _visit(harness)
    assert visit.status == "filed" and visit.details["answers"]["new_address"] == ""
    assert (await _case(harness, field["case"])).address == OLD_ADDRESS


async def test_an_address_the_map_does_not_know_moves_the_case_without_coordinates(
        harness: BotHarness, field: dict[str, int]) -> None:
    for name, make in moved_walk(harness, field, "云南省某县某村"):  # the geocoder is off
        calls = await harness.send(make())
        if name == "done":
            assert "new address: 云南省某县某村 (not found on the map: no coordinates)" in harness.replies(calls)[-1]
    case = await _case(harness, field["case"])
    assert (case.address, case.lat, case.lon) == ("云南省某县某村", None, None)
    assert "ZS-1" in await _listed(harness)


async def test_bad_address_goes_on_the_list_as_a_locate_task(harness: BotHarness, field: dict[str, int]) -> None:
    await send_all(harness, lambda: harness.updates.button(ANN, f"v:in:{field['case']}", forge=True),
                   lambda: harness.updates.location(ANN, 31.2306, 121.4739),
                   lambda: harness.updates.button(ANN, "v:dur:30"),
                   lambda: harness.updates.button(ANN, "v:code:BAD_ADDR"),
                   lambda: harness.voice_update(ANN, VOICE), lambda: harness.updates.button(ANN, "v:done"),
                   lambda: harness.updates.button(ANN, "v:file"))
    assert (await _visit(harness)).status == "filed"
    case = await _case(harness, field["case"])
    assert (case.address, case.next_action, case.next_action_on) == (OLD_ADDRESS, "locate", TODAY)
    assert "ZS-1" in await _listed(harness)


async def test_a_returned_move_amended_to_another_result_puts_the_case_back(harness: BotHarness,
                                                                           field: dict[str, int]) -> None:
    harness.runtime.geocoder = geocoder()
    for _name, make in moved_walk(harness, field, NEW_ADDRESS):
        await harness.send(make())
    visit = await _visit(harness)
    await harness.send(harness.updates.button(BOSS, f"rv:ret:{visit.id}"))
    await harness.send(harness.updates.text(BOSS, "That was the neighbour's flat"))
    await harness.deliver_outbox()
    await send_all(harness, lambda: harness.updates.button(ANN, f"v:amend:{visit.id}"),
                   lambda: harness.updates.button(ANN, "v:recode"),
                   lambda: harness.updates.button(ANN, "v:code:NOBODY"),
                   lambda: harness.updates.text(ANN, "明天"), lambda: harness.updates.button(ANN, "v:done"),
                   lambda: harness.updates.button(ANN, "v:file"))
    assert (await _visit(harness)).revision == 2
    case = await _case(harness, field["case"])
    assert (case.address, case.lat, case.lon) == (OLD_ADDRESS, 31.2304, 121.4737)
    assert [c["to"]["address"] for c in await _address_changes(harness)] == [NEW_ADDRESS, OLD_ADDRESS]
    assert "relocation" not in (await _visit(harness)).details


async def test_aborted_for_safety_files_without_a_recording(harness: BotHarness, field: dict[str, int]) -> None:
    await harness.send(harness.updates.button(ANN, f"v:in:{field['case']}", forge=True))
    calls = await harness.send(harness.updates.location(ANN, 31.2404, 121.4737))  # 1.1 km away: flagged, not refused
    duration = calls[-1].params["reply_markup"]["inline_keyboard"]
    assert [b["callback_data"] for b in duration[-1]] == ["v:code:ABORTED_SAFETY", "v:code:NOT_VISITED"]
    calls = await harness.send(harness.updates.button(ANN, "v:code:ABORTED_SAFETY"))  # no duration: left at once
    assert harness.replies(calls)[-1].startswith("No recording is required for this result.")
    await harness.send(harness.updates.button(ANN, "v:done"))
    calls = await harness.send(harness.updates.button(ANN, "v:file"))
    assert harness.replies(calls)[-1].startswith("✅ Report filed (version 1)")
    visit = await _visit(harness)
    assert (visit.status, visit.planned_minutes, visit.checkin_flagged) == ("filed", None, True)
    async with harness.db.read() as session:
        assert (await session.scalars(select(Evidence))).all() == []
    await harness.deliver_outbox()
    review = harness.api.last("sendMessage", BOSS.id).params["text"]
    assert review.startswith("⚠️ Ann filed a visit report that needs you:")
    # back on the list the next working day, not at once and never dropped
    calendar = harness.runtime.calendar
    assert visit.action_date == calendar.add_working_days(calendar.working_date(harness.clock.now()), 1)
    case_no = (await _case(harness, field["case"])).case_no
    listed = "\n".join(harness.replies(await harness.send(harness.updates.command(ANN, "/visits"))))
    assert case_no not in listed
    harness.clock.set(datetime.combine(visit.action_date, time(9), calendar.tz))
    listed = "\n".join(harness.replies(await harness.send(harness.updates.command(ANN, "/visits"))))
    assert case_no in listed


async def test_aborted_before_a_check_in_keeps_the_recording_made(harness: BotHarness, field: dict[str, int]) -> None:
    await harness.send(harness.updates.button(ANN, f"v:in:{field['case']}", forge=True))
    await harness.send(harness.updates.button(ANN, "v:code:ABORTED_SAFETY"))
    calls = await harness.send(harness.voice_update(ANN, VOICE))
    assert harness.replies(calls) == ["🎙 Recording saved."]
    await harness.send(harness.updates.button(ANN, "v:done"))
    await harness.send(harness.updates.button(ANN, "v:file"))
    visit = await _visit(harness)
    assert (visit.status, visit.checkin_at) == ("filed", None)
    async with harness.db.read() as session:
        filed = (await session.scalars(select(AuditEntry.details).where(AuditEntry.action == "visit.filed"))).one()
    assert len(json.loads(filed or "{}")["evidence"]) == 1


async def test_not_visited_files_without_a_check_in_or_a_recording(harness: BotHarness, field: dict[str, int]) -> None:
    calls = await harness.send(harness.updates.button(ANN, f"v:in:{field['case']}", forge=True))
    offer = calls[-1].params
    assert offer["text"] == "Did not get there, or left for your safety? Choose the result without a check-in:"
    assert [b["callback_data"] for row in offer["reply_markup"]["inline_keyboard"] for b in row] == [
        "v:code:ABORTED_SAFETY", "v:code:NOT_VISITED"]
    calls = await harness.send(harness.updates.button(ANN, "v:code:PTP", forge=True))  # needs a check-in: not here
    assert calls[-1].method == "answerCallbackQuery" and (await _visit(harness)).code is None
    calls = await harness.send(harness.updates.button(ANN, "v:code:NOT_VISITED", forge=True))
    assert harness.replies(calls) == ["Please enter: reason"]
    await harness.send(harness.updates.text(ANN, "道路封闭"))
    calls = await harness.send(harness.updates.text(ANN, "明天"))
    assert harness.replies(calls)[-1].startswith("No recording is required for this result.")
    await harness.send(harness.updates.button(ANN, "v:done"))
    calls = await harness.send(harness.updates.button(ANN, "v:file"))
    assert harness.replies(calls)[-1].startswith("✅ Report filed (version 1)")
    visit = await _visit(harness)
    assert (visit.status, visit.checkin_at, visit.planned_minutes) == ("filed", None, None)
    case = await _case(harness, field["case"])
    assert (case.next_action, case.next_action_on, case.visit_done_at) == ("revisit", date(2026, 11, 3), None)


async def test_changing_a_not_visited_report_to_a_promise_asks_for_the_check_in(harness: BotHarness,
                                                                             field: dict[str, int]) -> None:
    await harness.send(harness.updates.button(ANN, f"v:in:{field['case']}", forge=True))
    await send_all(harness, lambda: harness.updates.button(ANN, "v:code:NOT_VISITED"),
                   lambda: harness.updates.text(ANN, "道路封闭"), lambda: harness.updates.text(ANN, "明天"),
                   lambda: harness.updates.button(ANN, "v:done"), lambda: harness.updates.button(ANN, "v:recode"))
    calls = await harness.send(harness.updates.button(ANN, "v:code:PTP"))
    assert harness.replies(calls)[0].startswith("Case ZS-1")  # the location question again
    calls = await harness.send(harness.updates.location(ANN, 31.2306, 121.4739))
    assert harness.replies(calls)[-1].startswith("How long should this visit take?")


async def test_a_promise_still_needs_a_check_in_and_a_recording(harness: BotHarness, field: dict[str, int]) -> None:
    async with harness.db.write() as session:
        me = StaffView.of((await session.scalars(select(Staff).where(Staff.id == field["ann"]))).one())
        visit = await visit_service.start(session, me, field["case"], now=harness.clock.now())
        visit_id = visit.id
    for check_in in (False, True):
        async with harness.db.write() as session:
            now = harness.clock.now()
            if check_in:
                await visit_service.check_in(session, me, visit_id, lat=31.2306, lon=121.4739, sent_at=now,
                                             forwarded=False, now=now, radius_m=300)
            await visit_service.set_code(session, me, visit_id, "PTP", now=now)
            await visit_service.answer(session, me, visit_id, "amount", "800.00", now=now)
            await visit_service.answer(session, me, visit_id, "promise_date", "2026-11-20", now=now)
            with pytest.raises(DomainError) as refused:
                await visit_service.file_report(session, me, visit_id, now=now, calendar=harness.runtime.calendar)
        assert refused.value.key == ("visit.error.no_recording" if check_in else "visit.error.no_checkin")
    assert (await _visit(harness)).status == "draft"


def test_one_table_says_what_each_code_needs() -> None:
    assert set(dispositions.EVIDENCE) == set(dispositions.DISPOSITIONS)
    relaxed = {code for code, rule in dispositions.EVIDENCE.items() if rule != dispositions.SOP}
    assert relaxed == {"ABORTED_SAFETY", "NOT_VISITED"}
    assert dispositions.evidence_rule(None) == dispositions.SOP
    assert dispositions.codes_without(checkin=True) == ("ABORTED_SAFETY", "NOT_VISITED")


@pytest.mark.parametrize(("typed", "stored"), [
    ("不详", ""), ("Unknown.", ""), ("不知道。", ""), ("  北京市  朝阳区　建国路88号 ", "北京市 朝阳区 建国路88号"),
])
def test_new_address_answers(typed: str, stored: str) -> None:
    spec = dispositions.field("MOVED", "new_address")
    assert spec.required and spec.unknown
    assert dispositions.check_answer(spec, typed, today=TODAY) == stored


@pytest.mark.parametrize("typed", ["", "   ", "8", "123", "--"])
def test_an_empty_or_meaningless_address_is_re_asked(typed: str) -> None:
    with pytest.raises(dispositions.AnswerError) as hint:
        dispositions.check_answer(dispositions.field("MOVED", "new_address"), typed, today=TODAY)
    assert hint.value.key == "visit.hint.address_unknown"

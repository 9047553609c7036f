"""Misuse and edge cases: PINs under an open alarm, duress stays invisible, cross-team handovers,
cancel restoring the visit clock, forged or out-of-range buttons."""

from __future__ import annotations

from sqlalchemy import select

from bot.sandbox.harness import BotHarness
from bot.sandbox.updates import FakeUser
from bot.storage.models import AuditEntry, Case, Incident, Role, Staff
from tests.field_office import ANN, BOB, BOSS, add_case, file_visit

LEAD = FakeUser(3004, "Lead", language_code="en")
CAT = FakeUser(3007, "Cat", language_code="en")
ZED = FakeUser(3005, "Zed", language_code="en")
YAN = FakeUser(3009, "Yan", language_code="en")


async def _pins(harness: BotHarness, safety: str = "1234", duress: str = "9999") -> None:
    await harness.send(harness.updates.command(ANN, "/pin"))
    await harness.send(harness.updates.text(ANN, safety))
    await harness.send(harness.updates.text(ANN, duress))


async def test_pins_cannot_be_changed_during_an_alarm_and_changing_needs_the_current_one(
    harness: BotHarness, field: dict[str, int]
) -> None:
    await _pins(harness)
    await harness.send(harness.updates.command(ANN, "/sos"))
    calls = await harness.send(harness.updates.command(ANN, "/pin"))
    assert harness.replies(calls, ANN.id) == [
        "An alarm is open: PINs cannot be changed now. When you are safe, use \"I'm safe\"."]
    await harness.send(harness.updates.button(ANN, "sos:safe"))
    await harness.send(harness.updates.text(ANN, "1234"))
    calls = await harness.send(harness.updates.command(ANN, "/pin"))
    assert harness.replies(calls, ANN.id) == ["First enter your current safety PIN:"]
    calls = await harness.send(harness.updates.text(ANN, "5555"))
    assert harness.replies(calls, ANN.id) == ["That PIN is not right; please try again."]
    calls = await harness.send(harness.updates.text(ANN, "1234"))
    assert harness.replies(calls, ANN.id) == ["Enter a new safety PIN (4–8 digits):"]


async def test_five_wrong_pins_close_the_step_and_are_audited(harness: BotHarness, field: dict[str, int]) -> None:
    await _pins(harness)
    await harness.send(harness.updates.command(ANN, "/sos"))
    await harness.send(harness.updates.button(ANN, "sos:safe"))
    for attempt in range(5):
        calls = await harness.send(harness.updates.text(ANN, f"000{attempt}"))
    assert harness.replies(calls, ANN.id) == [
        "Too many wrong PINs; this step is closed. Your supervisor will contact you."]
    calls = await harness.send(harness.updates.text(ANN, "1234"))
    assert "marked safe" not in " ".join(harness.replies(calls, ANN.id))
    async with harness.db.read() as session:
        wrong = list(await session.scalars(select(AuditEntry).where(AuditEntry.action == "staff.wrong_pin")))
        incident = (await session.scalars(select(Incident))).one()
    assert len(wrong) == 5 and incident.status == "open"


async def test_under_duress_the_phone_never_hears_of_the_response(harness: BotHarness, field: dict[str, int]) -> None:
    await _pins(harness)
    await harness.send(harness.updates.command(ANN, "/sos"))
    await harness.send(harness.updates.button(ANN, "sos:safe"))
    await harness.send(harness.updates.text(ANN, "9999"))
    seen_before = list(harness.api.texts(ANN.id))
    await harness.send(harness.updates.button(BOSS, "sos:ack:1", forge=True))
    await harness.send(harness.updates.button(BOSS, "sos:rr:1:police", forge=True))
    await harness.send(harness.updates.text(BOSS, "police took him home"))
    await harness.tick()
    assert harness.api.texts(ANN.id) == seen_before


async def test_a_lead_of_another_team_cannot_read_or_steer_a_handover(harness: BotHarness,
                                                                      field: dict[str, int]) -> None:
    await harness.onboard(LEAD, "Lead", Role.TEAM_LEAD, team="A")
    await harness.onboard(ZED, "Zed", Role.TEAM_LEAD, team="B")
    yan = await harness.onboard(YAN, "Yan", Role.COLLECTOR, team="B")
    from bot.services import handover
    from bot.services.errors import DomainError

    async with harness.db.write() as session:  # even the shell cannot hand cases to another team
        try:
            await handover.start(session, actor=None, from_id=field["ann"], successor_ids=[yan],
                                 now=harness.clock.now(), calendar=harness.runtime.calendar)
            raise AssertionError("a successor of another team was accepted")
        except DomainError as error:
            assert error.key == "handover.error.bad_successor"
    await harness.send(harness.updates.command(BOSS, "/handover"))
    await harness.send(harness.updates.button(BOSS, f"ho:from:{field['ann']}"))
    calls = await harness.send(harness.updates.button(BOSS, f"ho:succ:{yan}", forge=True))  # another team's collector
    assert calls[-1].params["text"] == "You are not allowed to do that."
    await harness.send(harness.updates.button(BOSS, f"ho:succ:{field['bob']}", forge=True))
    await harness.send(harness.updates.button(BOSS, "ho:go", forge=True))
    calls = await harness.send(harness.updates.button(ZED, "ho:rev:1", forge=True))
    assert calls[-1].params["text"] == "You are not allowed to do that."
    calls = await harness.send(harness.updates.button(ZED, "ho:re:1", forge=True))
    assert calls[-1].params["text"] == "You are not allowed to do that."


async def test_cancel_restores_the_visit_clock_and_no_new_cases_for_a_leaver(harness: BotHarness,
                                                                             field: dict[str, int]) -> None:
    from bot.services import assignment

    await file_visit(harness, field["ann"], field["case"], "PTP", {"amount": "100.00", "promise_date": "2026-11-20"})
    async with harness.db.read() as session:
        before = await session.get(Case, field["case"])
    assert before is not None and before.visit_done_at is not None
    cat = await harness.onboard(CAT, "Cat", Role.COLLECTOR, team="A")
    await add_case(harness, "ZS-7", field["ann"], (31.2, 121.4))  # a second case: Cat's, not yet received
    await harness.send(harness.updates.command(BOSS, "/handover"))
    await harness.send(harness.updates.button(BOSS, f"ho:from:{field['ann']}"))
    await harness.send(harness.updates.button(BOSS, f"ho:succ:{field['bob']}"))
    await harness.send(harness.updates.button(BOSS, f"ho:succ:{cat}"))
    await harness.send(harness.updates.button(BOSS, "ho:go"))
    async with harness.db.write() as session:
        try:
            await assignment.assign_cases(session, [field["bobs_case"]], field["ann"], actor=None, reason="t",
                                          now=harness.clock.now(), calendar=harness.runtime.calendar)
            raise AssertionError("a leaver got a new case")
        except assignment.DomainError as error:
            assert error.key == "assign.error.leaving"
    await harness.send(harness.updates.button(ANN, "ho:ok:1", forge=True))
    await harness.send(harness.updates.button(ANN, "ho:ok:2", forge=True))
    await harness.send(harness.updates.button(BOSS, "ho:lok:1", forge=True))  # no team lead: the supervisor
    harness.clock.advance(days=1)  # Bob receives a day later: a different visit window
    await harness.send(harness.updates.button(BOB, "ho:rcv:1", forge=True))
    await harness.send(harness.updates.button(BOSS, "ho:cancel:1", forge=True))
    async with harness.db.read() as session:
        after = await session.get(Case, field["case"])
    assert after is not None
    assert (after.visit_due_at, after.visit_done_at, after.visit_overdue_at) == (
        before.visit_due_at, before.visit_done_at, before.visit_overdue_at)
    async with harness.db.read() as session:
        ann = await session.get(Staff, field["ann"])
    assert ann is not None and ann.active
    harness.clock.advance(days=5)
    await harness.tick()
    assert not any("ZS-1" in t and "overdue" in t for t in harness.api.texts(ANN.id))


async def test_forged_and_out_of_range_buttons_are_answered_not_crashed(harness: BotHarness,
                                                                       field: dict[str, int]) -> None:
    for data in ("v:card:99999999999999999999", "v:cal:000001", "x:cal:999912", "nonsense"):
        calls = await harness.send(harness.updates.button(ANN, data, forge=True))
        texts = [c.params.get("text", "") for c in calls]
        assert not any("Something went wrong" in t for t in texts), (data, texts)
    calls = await harness.send(harness.updates.button(BOB, "v:card:99999999999999999999", forge=True))
    assert calls[-1].params["text"] == "That button is no longer valid. Please open the menu again."

"""Emergencies that cannot be talked down: only the people an alarm reached (or its team) may take it
and only its owner or the team's supervisor may close it; wrong PINs are counted across openings and
restarts and lock PIN entry; after the duress PIN the phone behaves exactly as after the safety PIN."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from sqlalchemy import select

from bot.buttons import AlarmAcknowledge, AlarmResolution, AlarmResolve, ImSafe
from bot.clock import ManualClock
from bot.sandbox.harness import ApiCall, BotHarness, sandbox_settings
from bot.sandbox.updates import FakeUser, group_chat
from bot.storage.models import AuditEntry, FlowState, Incident, IncidentEvent, Role, Staff
from tests.field_office import ADMIN, ANN, BOB, BOSS, LEAD, ZED, alerts

ALERT_GROUP = -1001234567890
NOT_ALLOWED = "You are not allowed to do that."
TOO_MANY = "Too many wrong PINs; this step is closed. Your supervisor will contact you."
LOCKED = ("🔒 PIN entry is locked after too many wrong PINs. Your supervisor will contact you; "
          "press 🆘 SOS if you need help.")


async def incident(harness: BotHarness, incident_id: int = 1) -> Incident:
    async with harness.db.read() as session:
        return (await session.scalars(select(Incident).where(Incident.id == incident_id))).one()


async def events(harness: BotHarness, incident_id: int = 1) -> list[IncidentEvent]:
    async with harness.db.read() as session:
        return list(await session.scalars(select(IncidentEvent).where(IncidentEvent.incident_id == incident_id)
                                          .order_by(IncidentEvent.id)))


async def audit_rows(harness: BotHarness, action: str) -> list[AuditEntry]:
    async with harness.db.read() as session:
        return list(await session.scalars(select(AuditEntry).where(AuditEntry.action == action)))


async def wait(harness: BotHarness, seconds: int) -> None:
    harness.clock.advance(seconds=seconds)
    await harness.tick()


async def set_pins(harness: BotHarness, user: FakeUser, safety: str = "1234", duress: str = "9999") -> None:
    await harness.send(harness.updates.command(user, "/pin"))
    await harness.send(harness.updates.text(user, safety))
    calls = await harness.send(harness.updates.text(user, duress))
    assert harness.replies(calls, user.id)[-1].startswith("✅ Your safety and duress PINs are set.")


def press(harness: BotHarness, user: FakeUser, data: str) -> dict[str, Any]:
    return harness.updates.button(user, data, forge=True)


# ---- who may take and close an alarm -----------------------------------------------------------------


async def test_another_teams_supervisor_can_neither_take_nor_close_an_alarm(harness: BotHarness,
                                                                           office: dict[str, int]) -> None:
    await harness.send(harness.updates.command(ANN, "/sos"))
    assert alerts(harness, ZED) == []  # level 1 is Ann's own supervisor

    calls = await harness.send(press(harness, ZED, AlarmAcknowledge(incident_id=1).pack()))
    assert calls[-1].params["text"] == NOT_ALLOWED
    for data in (AlarmResolve(incident_id=1).pack(), "sos:rr:1:false_alarm"):
        calls = await harness.send(press(harness, ZED, data))
        assert calls[-1].params["text"] == NOT_ALLOWED

    refused = [(r.action, r.object_type, r.object_id, r.actor_id)
               for r in await audit_rows(harness, "refused.incident.acknowledge")]
    assert refused == [("refused.incident.acknowledge", "incident", "1", office["zed"])]
    assert len(await audit_rows(harness, "refused.incident.resolve")) == 2
    still = await incident(harness)
    assert (still.status, still.owner_id, still.acknowledged_at, still.resolution) == ("open", None, None, None)
    async with harness.db.read() as session:
        assert await session.get(FlowState, office["zed"]) is None  # no note step was opened for Zed
    assert [e.kind for e in await events(harness)] == ["raised", "queued", "delivered"]

    await wait(harness, 120)  # escalation goes on: the team lead now
    assert (await incident(harness)).level == 2 and len(alerts(harness, LEAD)) == 1

    # once Ann's supervisor owns it, Zed still may not close it
    await harness.send(press(harness, BOSS, AlarmAcknowledge(incident_id=1).pack()))
    calls = await harness.send(press(harness, ZED, AlarmResolution(incident_id=1, resolution="false_alarm").pack()))
    assert calls[-1].params["text"] == NOT_ALLOWED
    assert (await incident(harness)).status == "acknowledged"


async def test_a_supervisor_of_another_team_may_take_the_alarm_once_escalation_reached_them(
        harness: BotHarness, office: dict[str, int]) -> None:
    await harness.send(harness.updates.command(ANN, "/sos"))
    await wait(harness, 120)  # level 2: the team lead
    calls = await harness.send(press(harness, ZED, AlarmAcknowledge(incident_id=1).pack()))
    assert calls[-1].params["text"] == NOT_ALLOWED
    await wait(harness, 120)  # level 3: every supervisor, Zed too
    assert len(alerts(harness, ZED)) == 1
    calls = await harness.send(press(harness, ZED, AlarmAcknowledge(incident_id=1).pack()))
    assert harness.replies(calls, ZED.id)[-1].startswith("You own emergency #1.")
    taken = await incident(harness)
    assert (taken.status, taken.owner_id) == ("acknowledged", office["zed"])
    assert "✅ Zed has your alert and is on it; they will contact you." in harness.api.texts(ANN.id)
    # the owner may close it, though not of Ann's team
    await harness.send(press(harness, ZED, AlarmResolve(incident_id=1).pack()))
    await harness.send(press(harness, ZED, AlarmResolution(incident_id=1, resolution="resolved_safely").pack()))
    await harness.send(harness.updates.text(ZED, "Reached Ann by phone"))
    assert (await incident(harness)).status == "resolved"


async def test_in_the_alert_group_the_policy_decides_per_person(tmp_path: Path, clock: ManualClock) -> None:
    harness = BotHarness(sandbox_settings(tmp_path, supervisors_chat_id=ALERT_GROUP), clock)
    await harness.start()
    try:
        boss = await harness.onboard(BOSS, "Boss", Role.SUPERVISOR, team="A")
        await harness.onboard(ANN, "Ann", Role.COLLECTOR, team="A", supervisor_id=boss)
        zed = await harness.onboard(ZED, "Zed", Role.SUPERVISOR, team="B")
        lead = await harness.onboard(LEAD, "Lead", Role.TEAM_LEAD, team="A")
        await harness.send(harness.updates.command(ANN, "/sos"))
        assert any(t.startswith("🆘 EMERGENCY #1: Ann") for t in harness.api.texts(ALERT_GROUP))
        ack = AlarmAcknowledge(incident_id=1).pack()
        calls = await harness.send(harness.updates.button(ZED, ack, chat=group_chat(ALERT_GROUP), forge=True))
        assert calls[-1].params["text"] == NOT_ALLOWED  # in the group, but neither reached nor of Ann's team
        assert [r.actor_id for r in await audit_rows(harness, "refused.incident.acknowledge")] == [zed]
        assert (await incident(harness)).owner_id is None
        await harness.send(harness.updates.button(LEAD, ack, chat=group_chat(ALERT_GROUP), forge=True))
        assert (await incident(harness)).owner_id == lead  # Ann's team
    finally:
        await harness.close()


# ---- the wrong-PIN limit ------------------------------------------------------------------------------


async def test_wrong_pins_count_across_openings_and_restarts_then_lock_and_escalate(
        harness: BotHarness, office: dict[str, int]) -> None:
    await set_pins(harness, ANN)
    await harness.send(harness.updates.command(ANN, "/sos"))
    assert (await incident(harness)).level == 1

    answers: list[str] = []
    wrong = iter(f"00{n:02d}" for n in range(15))
    for opening, tries in enumerate((3, 2, 10)):
        await harness.restart()
        calls = await harness.send(press(harness, ANN, ImSafe().pack()))
        answers.append(harness.replies(calls, ANN.id)[-1])
        for _ in range(tries):
            calls = await harness.send(harness.updates.text(ANN, next(wrong)))
            if opening < 2:
                answers.append(harness.replies(calls, ANN.id)[-1])
    assert answers == ["Enter your safety PIN:"] + ["That PIN is not right; please try again."] * 3 + [
        "Enter your safety PIN:", "That PIN is not right; please try again.", TOO_MANY, LOCKED]

    # locked at the fifth: escalated at once, without waiting for the timeout
    locked = await incident(harness)
    assert locked.status == "open" and locked.level == 2
    escalated = [e for e in await events(harness) if e.kind == "escalated"]
    assert len(escalated) == 1 and escalated[0].details["reason"] == "pins_locked"
    assert [r.action for r in await audit_rows(harness, "incident.escalated")] == ["incident.escalated"]
    assert len(await audit_rows(harness, "staff.wrong_pin")) == 5
    assert len(await audit_rows(harness, "staff.pin_locked")) == 1
    assert len(alerts(harness, LEAD)) == 1

    # the right PIN does not stand the alarm down while locked: not in chat, not through the service
    calls = await harness.send(harness.updates.text(ANN, "1234"))
    assert "✅ Thank you, you are marked safe." not in harness.replies(calls, ANN.id)
    calls = await harness.send(press(harness, ANN, ImSafe().pack()))
    assert harness.replies(calls, ANN.id) == [LOCKED]
    calls = await harness.send(harness.updates.command(ANN, "/pin"))
    assert harness.replies(calls, ANN.id) == [LOCKED]
    from bot.services import safety_pins
    from bot.services.actor import StaffView
    from bot.services.incidents import Policy

    async with harness.db.write() as session:
        ann = StaffView.of((await session.scalars(select(Staff).where(Staff.id == office["ann"]))).one())
        reply = await safety_pins.check_safe_pin(session, ann, "1234", now=harness.clock.now(),
                                                 policy=Policy.of(harness.runtime.settings))
    assert reply.key == "pin.locked"
    await wait(harness, 3600)
    assert (await incident(harness)).status == "open" and (await incident(harness)).collector_safe_at is None

    # a supervisor closing the alarm lifts the lock
    await harness.send(press(harness, BOSS, AlarmAcknowledge(incident_id=1).pack()))
    await harness.send(press(harness, BOSS, AlarmResolution(incident_id=1, resolution="resolved_safely").pack()))
    await harness.send(harness.updates.text(BOSS, "Called Ann, she is fine"))
    calls = await harness.send(harness.updates.command(ANN, "/pin"))
    assert harness.replies(calls, ANN.id) == ["First enter your current safety PIN:"]


async def test_the_pin_change_counts_in_the_same_limit(harness: BotHarness, office: dict[str, int]) -> None:
    await set_pins(harness, ANN)
    await harness.send(harness.updates.command(ANN, "/safe"))
    for attempt in range(3):
        await harness.send(harness.updates.text(ANN, f"000{attempt}"))
    await harness.send(harness.updates.command(ANN, "/pin"))
    await harness.send(harness.updates.text(ANN, "0003"))
    calls = await harness.send(harness.updates.text(ANN, "0004"))
    assert harness.replies(calls, ANN.id) == [TOO_MANY]
    await harness.deliver_outbox()
    assert harness.api.texts(BOSS.id)[-1] == (
        "⚠️ Ann entered 5 wrong PINs; PIN entry is locked for 30 min. No emergency is open; please check on them.")
    calls = await harness.send(harness.updates.command(ANN, "/pin"))
    assert harness.replies(calls, ANN.id) == [LOCKED]
    harness.clock.advance(minutes=31)
    calls = await harness.send(harness.updates.command(ANN, "/pin"))
    assert harness.replies(calls, ANN.id) == ["First enter your current safety PIN:"]
    calls = await harness.send(harness.updates.text(ANN, "1234"))
    assert harness.replies(calls, ANN.id) == ["Enter a new safety PIN (4–8 digits):"]


# ---- duress stays invisible ----------------------------------------------------------------------------


def seen(calls: list[ApiCall], user: FakeUser) -> list[tuple[str, Any, Any]]:
    """What the collector's chat shows: each call's method, text and keyboard (message ids aside)."""
    return [(c.method, c.params.get("text"), c.params.get("reply_markup")) for c in calls
            if c.params.get("chat_id") == user.id and c.method != "deleteMessage"]


def _own_list_masked(shown: object) -> str:
    """What was shown, with the collector's own case numbers, case ids and distances blanked."""
    text = re.sub(r"ZS-\d+", "ZS-?", repr(shown))
    text = re.sub(r"v:(card|in|ph|ext):\d+", r"v:\1:?", text)
    return re.sub(r"\d+(\.\d+)? k?m\b", "? km", text)


async def after_pin(harness: BotHarness, user: FakeUser, pin: str) -> list[list[tuple[str, Any, Any]]]:
    """SOS, "I'm safe" with ``pin``, then everything a collector might do next; what each step showed."""
    steps = [
        harness.updates.command(user, "/sos"),
        harness.updates.button(user, ImSafe().pack()),
        harness.updates.text(user, pin),
        harness.updates.command(user, "/pin"),
        harness.updates.location(user, 31.2400, 121.4800),
        harness.updates.command(user, "/safe"),
        harness.updates.text(user, "1234"),
        harness.updates.location(user, 31.2410, 121.4810, live_period=900),
        harness.updates.edited_live_location(user, 31.2415, 121.4815),  # the live location moves
        harness.updates.command(user, "/pin"),
        harness.updates.text(user, "1234"),
        harness.updates.text(user, "2468"),
        harness.updates.text(user, "1357"),
        harness.updates.command(user, "/sos"),
        harness.updates.command(user, "/pin"),
        harness.updates.location(user, 31.2420, 121.4820),
        harness.updates.button(user, ImSafe().pack()),
        harness.updates.text(user, "2468"),
        harness.updates.command(user, "/pin"),
        harness.updates.location(user, 31.2430, 121.4830),
    ]
    shown = []
    for update in steps:
        shown.append(seen(await harness.send(update), user))
        await harness.deliver_outbox()
    return shown


async def test_after_the_duress_pin_the_phone_shows_what_it_would_after_the_safety_pin(
        harness: BotHarness, office: dict[str, int]) -> None:
    await set_pins(harness, ANN)
    await set_pins(harness, BOB)
    before_ann, before_bob = len(harness.api.texts(ANN.id)), len(harness.api.texts(BOB.id))

    safe_run = await after_pin(harness, ANN, "1234")  # Ann: incidents 1 and 2, each closed by her safety PIN
    duress_run = await after_pin(harness, BOB, "9999")  # Bob: incident 3, hidden, raised again, hidden again

    # the same on both phones, but for whose list it is (a location shows the collector's own cases, nearest
    # first: another case number, another distance)
    assert _own_list_masked(duress_run) == _own_list_masked(safe_run)
    assert [s[0][1] for s in safe_run[3:5]] == ["First enter your current safety PIN:",
                                               "📍 Location noted: your list is sorted nearest first."]
    assert safe_run[8] == []  # a moving live location: nothing to see
    assert safe_run[14][0][1] == "An alarm is open: PINs cannot be changed now. When you are safe, use \"I'm safe\"."
    assert safe_run[15][0][1] == "📍 Your location was passed on."
    await wait(harness, 5)
    assert _own_list_masked(harness.api.texts(ANN.id)[before_ann:]) == \
        _own_list_masked(harness.api.texts(BOB.id)[before_bob:])

    # for the responders Bob's alarm is open, carries his locations and keeps escalating
    bobs = await incident(harness, 3)
    assert (bobs.status, bobs.duress, bobs.resolved_at) == ("open", True, None)
    assert (bobs.lat, bobs.lon) == (31.2430, 121.4830)
    kinds = [e.kind for e in await events(harness, 3)]
    assert kinds.count("location") == 5 and kinds.count("duress") == 1
    assert [(await incident(harness, n)).resolution for n in (1, 2)] == ["collector_safe", "collector_safe"]
    level = bobs.level
    lead_alerts = len(alerts(harness, LEAD))
    await wait(harness, 120)
    assert (await incident(harness, 3)).level == level + 1
    await wait(harness, 120)
    assert len(alerts(harness, LEAD)) + len(alerts(harness, ZED)) + len(alerts(harness, ADMIN)) > lead_alerts
    assert any(t.startswith("🚨 DURESS #3: Bob") for t in harness.api.texts(BOSS.id))

    # a supervisor resolves it; the phone still hears nothing of the response
    shown_bob = list(harness.api.texts(BOB.id))
    await harness.send(press(harness, BOSS, AlarmAcknowledge(incident_id=3).pack()))
    await harness.send(press(harness, BOSS, AlarmResolution(incident_id=3, resolution="police").pack()))
    await harness.send(harness.updates.text(BOSS, "police met Bob"))
    await wait(harness, 5)
    assert harness.api.texts(BOB.id) == shown_bob
    assert (await incident(harness, 3)).status == "resolved"

"""Emergencies: SOS to the supervisor at once, escalation until someone owns it, staying with it,
the visit safety timer, PINs (duress included), and alerts surviving 429s, outages and restarts."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from bot.i18n import Translator
from bot.sandbox.harness import BotHarness
from bot.storage.models import AuditEntry, Incident, IncidentEvent
from tests.field_office import ADMIN, ANN, BOB, BOSS, LEAD, ZED, alerts

EVERYONE = (BOSS, LEAD, ZED, ADMIN)


async def incident(harness: BotHarness) -> Incident:
    async with harness.db.read() as session:
        return (await session.scalars(select(Incident))).one()


async def kinds(harness: BotHarness) -> list[str]:
    async with harness.db.read() as session:
        return list(await session.scalars(select(IncidentEvent.kind).order_by(IncidentEvent.id)))


async def checked_in(harness: BotHarness, office: dict[str, int]) -> None:
    await harness.send(harness.updates.button(ANN, f"v:in:{office['case']}", forge=True))
    await harness.send(harness.updates.location(ANN, 31.2306, 121.4739))


Step = Callable[[BotHarness, dict[str, int]], Awaitable[Any]]


async def _sos(h: BotHarness, ids: dict[str, int]) -> None:
    await h.send(h.updates.command(ANN, "/sos"))


async def _wait(h: BotHarness, seconds: int) -> None:
    h.clock.advance(seconds=seconds)
    await h.tick()


LADDER: list[tuple[str, Step]] = [
    ("sos", _sos),
    ("level 2 after 2 min", lambda h, ids: _wait(h, 120)),
    ("level 3", lambda h, ids: _wait(h, 120)),
    ("level 4", lambda h, ids: _wait(h, 120)),
    ("round 2, level 1", lambda h, ids: _wait(h, 120)),
    ("lead acknowledges", lambda h, ids: h.send(h.updates.button(LEAD, f"sos:ack:{1}", forge=True))),
    ("no more escalation", lambda h, ids: _wait(h, 300)),
    ("first re-ping", lambda h, ids: _wait(h, 300)),
    ("second re-ping", lambda h, ids: _wait(h, 600)),
    ("resolve", lambda h, ids: h.send(h.updates.button(LEAD, "sos:res:1", forge=True))),
    ("reason", lambda h, ids: h.send(h.updates.button(LEAD, "sos:rr:1:resolved_safely", forge=True))),
    ("note", lambda h, ids: h.send(h.updates.text(LEAD, "Met Ann at the gate, all fine"))),
    ("closing notices", lambda h, ids: _wait(h, 5)),
]


async def run_ladder(harness: BotHarness, office: dict[str, int], *, restart: bool) -> None:
    await checked_in(harness, office)
    for _name, step in LADDER:
        if restart:
            await harness.restart()
        await step(harness, office)


@pytest.mark.parametrize("restart", [False, True], ids=["straight", "restart-between-steps"])
async def test_sos_escalates_until_owned_and_stays_open_until_resolved(harness: BotHarness, office: dict[str, int],
                                                                       restart: bool) -> None:
    await run_ladder(harness, office, restart=restart)
    boss_alerts = alerts(harness, BOSS)
    # level 1 at once, level 3 ("every supervisor") and level 1 of round 2 again: three alerts, none twice
    assert len(boss_alerts) == 3
    first = boss_alerts[0]
    assert first.startswith("🆘 EMERGENCY #1: Ann")
    assert "Location: 31.23060, 121.47390 (0 min ago)" in first and "Visit: case ZS-1" in first
    assert "Phone: -, team: A" in first
    assert len(alerts(harness, LEAD)) == 1 and len(alerts(harness, ZED)) == 1 and len(alerts(harness, ADMIN)) == 1
    assert harness.api.texts(ANN.id).count("✅ Lead has your alert and is on it; they will contact you.") == 1
    for other in (BOSS, ZED, ADMIN):
        assert harness.api.texts(other.id).count("✅ Lead is handling Ann's emergency #1.") == 1
    repings = [t for t in harness.api.texts(LEAD.id) if t.startswith("⏰ Emergency #1 (Ann) is still open")]
    assert len(repings) == 2
    closed = "Emergency #1 (Ann) is closed: Resolved safely. Note: Met Ann at the gate, all fine"
    assert closed in harness.api.texts(ANN.id) and closed in harness.api.texts(BOSS.id)
    done = await incident(harness)
    assert (done.status, done.owner_id, done.resolution) == ("resolved", office["lead"], "resolved_safely")
    assert done.level == 1 and done.rounds == 2
    timeline = await kinds(harness)
    assert timeline[0] == "raised" and [kind for kind in timeline if kind != "owner_location"][-1] == "resolved"
    assert timeline.count("owner_location") == 2  # the owner's live location: sent at "I'm on it", stopped at the end
    assert timeline.count("escalated") == 4 and timeline.count("acknowledged") == 1 and timeline.count("reping") == 2
    assert timeline.count("delivered") == timeline.count("queued") == 6
    async with harness.db.read() as session:
        actions = list(await session.scalars(select(AuditEntry.action).where(AuditEntry.action.like("incident.%"))))
    assert actions.count("incident.raised") == 1 and actions.count("incident.resolved") == 1
    assert actions.count("incident.escalated") == 4 and actions.count("incident.delivered") == 6


async def test_second_responder_is_told_who_owns_it(harness: BotHarness, office: dict[str, int]) -> None:
    await _sos(harness, office)
    await harness.send(harness.updates.button(BOSS, "sos:ack:1", forge=True))
    calls = await harness.send(harness.updates.button(LEAD, "sos:ack:1", forge=True))
    assert calls[-1].params["text"] == "Boss is already handling this."
    calls = await harness.send(harness.updates.button(BOB, "sos:ack:1", forge=True))
    assert calls[-1].params["text"] == "You are not allowed to do that."


async def test_alert_survives_flood_control_and_a_two_minute_outage(harness: BotHarness,
                                                                    office: dict[str, int]) -> None:
    harness.api.fail_next("sendMessage", retry_after=5)
    await _sos(harness, office)
    assert alerts(harness, BOSS) == []
    await _wait(harness, 4)
    assert alerts(harness, BOSS) == []
    await _wait(harness, 1)
    assert len(alerts(harness, BOSS)) == 1
    assert await kinds(harness) == ["raised", "queued", "send_failed", "delivered"]

    # a second collector's alarm during a network outage of two minutes
    harness.api.set_offline(True)
    await harness.send(harness.updates.command(BOB, "/sos"))
    for _ in range(12):
        await _wait(harness, 10)
    harness.api.set_offline(False)
    await _wait(harness, 10)
    assert len(alerts(harness, BOSS)) == 2 and "Bob" in alerts(harness, BOSS)[-1]
    async with harness.db.read() as session:
        bob_incident = (await session.scalars(select(Incident).where(Incident.id == 2))).one()
        events = list(await session.scalars(select(IncidentEvent).where(IncidentEvent.incident_id == 2)
                                            .order_by(IncidentEvent.id)))
    failures = [e for e in events if e.kind == "send_failed"]
    assert len(failures) >= 8 and all("NetworkError" in e.details["error"] for e in failures)
    assert events[-1].kind == "delivered" or "delivered" in [e.kind for e in events]
    assert bob_incident.first_delivered_at is not None
    delay = (bob_incident.first_delivered_at - bob_incident.raised_at).total_seconds()
    assert 120 <= delay <= 140


async def test_safety_timer_without_an_answer_raises_the_alarm(harness: BotHarness, office: dict[str, int]) -> None:
    await checked_in(harness, office)
    await harness.send(harness.updates.button(ANN, "v:dur:30"))
    await _wait(harness, 29 * 60)
    assert not any("are you OK?" in t for t in harness.api.texts(ANN.id))
    await _wait(harness, 60)
    assert harness.api.texts(ANN.id)[-1].startswith("⏱ The 30 minutes you planned for this visit are up")
    await _wait(harness, 4 * 60)
    assert alerts(harness, BOSS) == []
    await _wait(harness, 60)
    alarm = alerts(harness, BOSS)
    assert len(alarm) == 1 and "reason: missed safety check-in" in alarm[0]


async def test_i_m_fine_postpones_and_filing_stops_the_timer(harness: BotHarness, office: dict[str, int]) -> None:
    await checked_in(harness, office)
    await harness.send(harness.updates.button(ANN, "v:dur:30"))
    await _wait(harness, 30 * 60)
    calls = await harness.send(harness.updates.button(ANN, "sf:more:1"))
    assert harness.replies(calls)[-1] == "OK, I will check again in 15 minutes."
    await _wait(harness, 10 * 60)
    assert alerts(harness, BOSS) == []
    await _wait(harness, 5 * 60)
    assert harness.api.texts(ANN.id)[-1].startswith("⏱ The 30 minutes")
    await harness.send(harness.updates.button(ANN, "sf:done:1"))
    await _wait(harness, 60 * 60)
    assert alerts(harness, BOSS) == []


async def _set_pins(harness: BotHarness) -> None:
    await harness.send(harness.updates.command(ANN, "/pin"))
    await harness.send(harness.updates.text(ANN, "1234"))
    calls = await harness.send(harness.updates.text(ANN, "9999"))
    assert harness.replies(calls)[-1].startswith("✅ Your safety and duress PINs are set.")
    assert [c.method for c in calls].count("deleteMessage") == 1


async def test_safety_pin_stands_the_alarm_down(harness: BotHarness, office: dict[str, int]) -> None:
    await _set_pins(harness)
    await _sos(harness, office)
    await harness.send(harness.updates.button(ANN, "sos:safe"))
    calls = await harness.send(harness.updates.text(ANN, "0000"))
    assert harness.replies(calls) == ["That PIN is not right; please try again."]
    calls = await harness.send(harness.updates.text(ANN, "1234"))
    assert harness.replies(calls, ANN.id) == ["✅ Thank you, you are marked safe."]
    assert harness.replies(calls, BOSS.id) == ["Emergency #1 (Ann) is closed: Collector safe. Note: -"]
    assert "deleteMessage" in [c.method for c in calls]
    assert (await incident(harness)).resolution == "collector_safe"
    await _wait(harness, 600)
    assert len(alerts(harness, BOSS)) == 1 and alerts(harness, LEAD) == []


async def test_duress_pin_looks_the_same_but_closes_nothing_and_escalates(harness: BotHarness,
                                                                        office: dict[str, int]) -> None:
    await _set_pins(harness)
    await _sos(harness, office)
    await harness.send(harness.updates.button(ANN, "sos:safe"))
    calls = await harness.send(harness.updates.text(ANN, "9999"))
    ann_sees = [(c.method, c.params.get("text")) for c in calls if c.params.get("chat_id") == ANN.id]
    assert ("sendMessage", "✅ Thank you, you are marked safe.") in ann_sees
    assert not any("DURESS" in (text or "") for _, text in ann_sees)
    open_incident = await incident(harness)
    assert open_incident.status == "open" and open_incident.duress and open_incident.resolved_at is None
    for person in EVERYONE:
        assert any(t.startswith("🚨 DURESS #1: Ann") for t in harness.api.texts(person.id)), person
    await _wait(harness, 120)
    assert (await incident(harness)).level == 2  # and the ladder goes on


async def test_live_location_is_attached_to_the_incident(harness: BotHarness, office: dict[str, int]) -> None:
    await _sos(harness, office)
    start = harness.updates.location(ANN, 31.2300, 121.4700, live_period=900)
    await harness.send(start)
    message_id = start["message"]["message_id"]
    await harness.send(harness.updates.edited_live_location(ANN, 31.2310, 121.4710, message_id=message_id))
    open_incident = await incident(harness)
    assert (open_incident.lat, open_incident.lon) == (31.2310, 121.4710)
    assert (await kinds(harness)).count("location") == 2


async def test_incidents_list_and_monthly_response_figures(harness: BotHarness, office: dict[str, int]) -> None:
    from bot.services import reports

    await _sos(harness, office)
    harness.clock.advance(seconds=40)
    await harness.send(harness.updates.button(BOSS, "sos:ack:1", forge=True))
    calls = await harness.send(harness.updates.command(BOSS, "/incidents"))
    assert calls[-1].params["text"].startswith("Open emergencies (1):\n#1 Ann")
    async with harness.db.read() as session:
        built = await reports.build(session, reports.last_period(reports.MONTHLY, harness.clock.now().date()
                                                                 + timedelta(days=31)),
                                    calendar=harness.runtime.calendar, team="A")
    assert built.alarms is not None
    assert reports.alarm_line(Translator("en"), built.alarms) == (
        "🆘 1 emergencies; delivery time (median/80th/98.5th): 0s / 0s / 0s; acknowledgement: 40s / 40s / 40s")

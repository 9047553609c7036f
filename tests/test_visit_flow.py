"""The field visit end to end: list → card → check-in → PTP → photos → voice → file → review.

The same walk also runs with the Application rebuilt between every two steps, and with every update
delivered twice: each must end in the same rows and files.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from datetime import date, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select

from bot.sandbox.harness import BotHarness
from bot.storage.models import AuditEntry, Case, Evidence, OutboxMessage, Promise, Visit
from tests.field_office import ANN, BOSS, PHOTO_1, PHOTO_2, VOICE

Step = Callable[[BotHarness, dict[str, int]], Awaitable[dict[str, Any]]]


def _press(data: Callable[[dict[str, int]], str]) -> Step:
    async def step(h: BotHarness, ids: dict[str, int]) -> dict[str, Any]:
        return h.updates.button(ANN, data(ids))
    return step


def _build(make: Callable[[BotHarness], dict[str, Any]]) -> Step:
    async def step(h: BotHarness, ids: dict[str, int]) -> dict[str, Any]:
        return make(h)
    return step


WALK: list[tuple[str, Step]] = [
    ("list", _build(lambda h: h.updates.command(ANN, "/visits"))),
    ("card", _press(lambda ids: f"v:card:{ids['case']}")),
    ("check in", _press(lambda ids: f"v:in:{ids['case']}")),
    ("location", _build(lambda h: h.updates.location(ANN, 31.2306, 121.4739))),
    ("duration", _press(lambda ids: "v:dur:60")),
    ("code", _press(lambda ids: "v:code:PTP")),
    ("amount", _build(lambda h: h.updates.text(ANN, "1,200元"))),
    ("date", _build(lambda h: h.updates.text(ANN, "12-3"))),
    ("photo 1", _build(lambda h: h.photo_update(ANN, PHOTO_1))),
    ("photo 2", _build(lambda h: h.document_update(ANN, PHOTO_2, "IMG_0002.jpg", mime_type="image/jpeg"))),
    ("voice", _build(lambda h: h.voice_update(ANN, VOICE))),
    ("done", _press(lambda ids: "v:done")),
    ("file", _press(lambda ids: "v:file")),
]


async def walk(harness: BotHarness, ids: dict[str, int], *, restart: bool = False, twice: bool = False) -> None:
    for _name, make in WALK:
        if restart:
            await harness.restart()
        update = await make(harness, ids)
        await harness.send(update)
        if twice:
            await harness.replay(update)
        harness.clock.advance(minutes=1)


async def snapshot(harness: BotHarness) -> dict[str, Any]:
    """Every row the walk writes, without database ids."""
    async with harness.db.read() as session:
        visit_rows = (await session.scalars(select(Visit))).all()
        evidence = (await session.scalars(select(Evidence).order_by(Evidence.id))).all()
        promises = (await session.scalars(select(Promise))).all()
        case = await session.scalar(select(Case).where(Case.case_no == "ZS-1"))
        flow_actions = AuditEntry.action.like("visit.%") | AuditEntry.action.like("evidence.%")
        actions = await session.scalars(select(AuditEntry.action).order_by(AuditEntry.seq).where(flow_actions))
        audit_actions = list(actions)
    assert case is not None
    return {
        "visits": [(v.status, v.code, v.amount_fen, v.action_date, v.checkin_flagged, round(v.checkin_distance_m or 0),
                    v.planned_minutes, v.safety_due_at, v.filed_at, v.revision, v.details) for v in visit_rows],
        "evidence": [(e.kind, e.status, e.sha256, e.path, e.size, e.mime_type, e.sent_at) for e in evidence],
        "promises": [(p.amount_fen, p.due_on, p.status) for p in promises],
        "case": (case.status, case.next_action, case.next_action_on),
        "audit": audit_actions,
    }


EXPECTED_AUDIT = ["visit.start", "visit.checkin", "evidence.stored", "evidence.stored", "evidence.stored",
                  "visit.filed"]


async def test_collector_walks_through_a_visit_and_the_supervisor_approves(
    harness: BotHarness, field: dict[str, int], tmp_path: Path
) -> None:
    await walk(harness, field)
    state = await snapshot(harness)
    visit = state["visits"][0]
    assert visit[:8] == ("filed", "PTP", 120000, date(2026, 12, 3), False, 29, 60, None)  # filing stops the timer
    assert visit[10]["answers"] == {"amount": "1200.00", "promise_date": "2026-12-03"}
    assert state["promises"] == [(120000, date(2026, 12, 3), "open")]
    assert state["case"] == ("promised", "ptp_due", date(2026, 12, 3))
    assert state["audit"] == EXPECTED_AUDIT
    # the files, stored once each under their SHA-256
    hashes = [hashlib.sha256(c).hexdigest() for c in (PHOTO_1, PHOTO_2, VOICE)]
    assert [(e[0], e[1], e[2]) for e in state["evidence"]] == [("photo", "stored", hashes[0]),
                                                               ("photo", "stored", hashes[1]),
                                                               ("voice", "stored", hashes[2])]
    for e in state["evidence"]:
        stored = tmp_path / e[3]
        assert stored.name.startswith(e[2]) and hashlib.sha256(stored.read_bytes()).hexdigest() == e[2]

    # Ann's plan of the day (her first look at /visits), then the supervisor's review request
    assert await harness.deliver_outbox() == 2
    review = harness.api.last("sendMessage", BOSS.id).params
    assert review["text"].startswith("📝 Ann filed a visit report for review:")
    assert "Result: Promise to pay" in review["text"] and "amount: CN¥1,200.00" in review["text"]
    assert "Evidence: 2 photo(s), 1 recording(s)" in review["text"] and review["protect_content"] is True
    async with harness.db.read() as session:
        visit_id = (await session.scalars(select(Visit.id))).one()
    calls = await harness.send(harness.updates.button(BOSS, f"rv:files:{visit_id}"))
    assert len([c for c in calls if c.method == "sendDocument"]) == 3
    calls = await harness.send(harness.updates.button(BOSS, f"rv:ok:{visit_id}"))
    assert harness.replies(calls, BOSS.id) == ["Report approved."]
    async with harness.db.read() as session:
        approved = await session.get(Visit, visit_id)
    assert approved is not None and approved.status == "approved" and approved.reviewed_by_id == field["boss"]
    assert await harness.deliver_outbox() == 1
    assert harness.api.texts(ANN.id)[-1] == "✅ Your visit report for case ZS-1 was approved by Boss."
    # the case card shows the promise (an old list message's button: the case is no longer due today)
    harness.api.clear()
    calls = await harness.send(harness.updates.button(ANN, f"v:card:{field['case']}", forge=True))
    assert "Promise to pay CN¥1,200.00 on Dec 3, 2026 (open)" in calls[-1].params["text"]


async def test_walk_with_a_restart_between_every_two_steps_ends_the_same(
    harness: BotHarness, field: dict[str, int], tmp_path: Path
) -> None:
    await walk(harness, field, restart=True)
    restarted = await snapshot(harness)
    assert restarted["visits"][0][0] == "filed"
    assert restarted["audit"] == EXPECTED_AUDIT
    assert restarted["promises"] == [(120000, date(2026, 12, 3), "open")]
    assert len(restarted["evidence"]) == 3


async def test_walk_is_the_same_with_or_without_restarts_and_replays(harness: BotHarness, field: dict[str, int],
                                                                     tmp_path: Path) -> None:
    await walk(harness, field, restart=True, twice=True)
    both = await snapshot(harness)
    files = sorted(p.name for p in (tmp_path / "media" / "evidence").rglob("*") if p.is_file())
    assert len(files) == 3
    assert both["visits"][0][:10] == ("filed", "PTP", 120000, date(2026, 12, 3), False, 29, 60, None,
                                      datetime.fromisoformat("2026-11-02T09:12+08:00"), 1)
    assert both["audit"] == EXPECTED_AUDIT
    async with harness.db.read() as session:
        reviews = (await session.scalars(select(OutboxMessage).where(OutboxMessage.kind == "review.request"))).all()
    assert len(reviews) == 1


async def test_every_update_delivered_twice_gives_no_duplicates(harness: BotHarness, field: dict[str, int],
                                                                tmp_path: Path) -> None:
    await walk(harness, field, twice=True)
    state = await snapshot(harness)
    assert len(state["visits"]) == 1 and len(state["evidence"]) == 3 and len(state["promises"]) == 1
    assert state["audit"] == EXPECTED_AUDIT
    assert len([p for p in (tmp_path / "media" / "evidence").rglob("*") if p.is_file()]) == 3

"""Extensions: asked from the case card, decided by the supervisor, re-sent after 4 working hours."""

from __future__ import annotations

import json
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import select

from bot.sandbox.harness import BotHarness
from bot.storage.models import AuditEntry, Case, ExtensionRequest, Reminder
from tests.field_office import ANN, BOB, BOSS

SH = ZoneInfo("Asia/Shanghai")


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=SH)


async def _ask(harness: BotHarness, case_id: int, reason: str = "客户出差，下周回来", date_text: str = "11-6") -> str:
    await harness.send(harness.updates.button(ANN, f"v:ext:{case_id}", forge=True))
    await harness.send(harness.updates.text(ANN, reason))
    calls = await harness.send(harness.updates.text(ANN, date_text))
    return harness.replies(calls)[-1]


async def _case(harness: BotHarness, case_id: int) -> Case:
    async with harness.db.read() as session:
        case = await session.get(Case, case_id)
    assert case is not None
    return case


async def test_approved_extension_moves_the_deadline_and_its_reminders(harness: BotHarness,
                                                                       field: dict[str, int]) -> None:
    # due Wednesday 4 Nov 18:00; at most 3 working days more
    reply = await _ask(harness, field["case"])
    assert reply == "Extension requested (new date Nov 6, 2026); waiting for your supervisor."
    await harness.deliver_outbox()
    request_text = harness.api.last("sendMessage", BOSS.id).params
    assert request_text["text"].startswith("⏳ Ann asks for more time: case ZS-1")
    assert "Reason: 客户出差，下周回来" in request_text["text"]
    async with harness.db.read() as session:
        request = (await session.scalars(select(ExtensionRequest))).one()
    calls = await harness.send(harness.updates.button(BOSS, f"ex:ok:{request.id}"))
    assert harness.replies(calls, BOSS.id) == ["Extension approved; the collector is told."]
    case = await _case(harness, field["case"])
    assert case.visit_due_at == at("2026-11-06T18:00")
    async with harness.db.read() as session:
        pending = (await session.scalars(select(Reminder).where(Reminder.case_id == case.id, Reminder.done_at.is_(None),
                                                                Reminder.kind.like("visit_%"))
                                         .order_by(Reminder.due_at))).all()
        entry = (await session.scalars(select(AuditEntry).where(AuditEntry.action == "extension.approved"))).one()
    assert [(r.kind, r.due_at) for r in pending] == [("visit_morning", at("2026-11-06T09:00")),
                                                     ("visit_2h", at("2026-11-06T16:00")),
                                                     ("visit_overdue", at("2026-11-06T18:00"))]
    assert json.loads(entry.details)["new_due_at"] == at("2026-11-06T18:00").isoformat()
    await harness.deliver_outbox()
    assert harness.api.texts(ANN.id)[-1].startswith("✅ Boss approved more time for case ZS-1")
    # a second press changes nothing
    again = await harness.send(harness.updates.button(BOSS, f"ex:ok:{request.id}", forge=True))
    assert again[-1].params["text"] == "That request has already been decided."


async def test_rejected_extension_keeps_the_deadline(harness: BotHarness, field: dict[str, int]) -> None:
    await _ask(harness, field["case"])
    await harness.deliver_outbox()
    async with harness.db.read() as session:
        request = (await session.scalars(select(ExtensionRequest))).one()
    await harness.send(harness.updates.button(BOSS, f"ex:no:{request.id}"))
    assert (await _case(harness, field["case"])).visit_due_at == at("2026-11-04T18:00")
    await harness.deliver_outbox()
    assert harness.api.texts(ANN.id)[-1].startswith("✖ Boss rejected the extension for case ZS-1")


async def test_a_date_too_far_or_not_later_is_asked_again(harness: BotHarness, field: dict[str, int]) -> None:
    reply = await _ask(harness, field["case"], date_text="2026-11-20")
    assert reply == "At most 3 working days more (latest 2026-11-09); please choose again."
    calls = await harness.send(harness.updates.text(ANN, "2026-11-04"))
    assert harness.replies(calls)[-1] == ("The new date must be after the current deadline (2026-11-04); "
                                          "please choose again.")
    calls = await harness.send(harness.updates.text(ANN, "11-7"))  # a Saturday
    assert harness.replies(calls)[-1] == "The new date must be a working day; please choose again."
    calls = await harness.send(harness.updates.button(ANN, "x:d:20261109", forge=True))
    assert harness.replies(calls)[-1].startswith("Extension requested (new date Nov 9, 2026)")


async def test_unanswered_request_is_sent_again_after_four_working_hours(harness: BotHarness,
                                                                         field: dict[str, int]) -> None:
    harness.clock.set(at("2026-11-03T16:30"))  # Tuesday afternoon: 1.5 working hours left today
    await _ask(harness, field["case"])
    await harness.tick()
    sent = [t for t in harness.api.texts(BOSS.id) if "asks for more time" in t]
    assert len(sent) == 1
    harness.clock.set(at("2026-11-04T11:29"))
    await harness.tick()
    assert len([t for t in harness.api.texts(BOSS.id) if "asks for more time" in t]) == 1
    harness.clock.set(at("2026-11-04T11:30"))  # 1.5 h Tuesday + 2.5 h Wednesday = 4 working hours
    await harness.tick()
    again = [t for t in harness.api.texts(BOSS.id) if "asks for more time" in t]
    assert len(again) == 2 and again[-1].startswith("⏳ (reminder: still unanswered)")


async def test_only_the_case_s_collector_asks_and_only_the_team_s_supervisor_decides(
    harness: BotHarness, field: dict[str, int]
) -> None:
    calls = await harness.send(harness.updates.button(BOB, f"v:ext:{field['case']}", forge=True))
    assert calls[-1].params["text"] == "You are not allowed to do that."
    await _ask(harness, field["case"])
    async with harness.db.read() as session:
        request = (await session.scalars(select(ExtensionRequest))).one()
    calls = await harness.send(harness.updates.button(ANN, f"ex:ok:{request.id}", forge=True))
    assert calls[-1].params["text"] == "You are not allowed to do that."
    assert (await _case(harness, field["case"])).visit_due_at == at("2026-11-04T18:00")

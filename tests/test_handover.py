"""A collector leaves: checklist, the team lead's confirmation, the successors' receipt, nothing orphaned."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from bot.sandbox.harness import BotHarness
from bot.sandbox.updates import FakeUser
from bot.services import handover, visits
from bot.services.actor import StaffView
from bot.storage.models import Assignment, AuditEntry, Case, Handover, HandoverItem, Role, Staff
from tests.conftest import TestDatabases
from tests.field_office import ANN, BOB, BOSS, add_case, file_visit

SH = ZoneInfo("Asia/Shanghai")
LEAD = FakeUser(3004, "Lead", language_code="en")
CAT = FakeUser(3007, "Cat", language_code="en")


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=SH)


@pytest.fixture
async def team(harness: BotHarness, field: dict[str, int]) -> dict[str, int]:
    field["lead"] = await harness.onboard(LEAD, "Lead", Role.TEAM_LEAD, team="A")
    field["cat"] = await harness.onboard(CAT, "Cat", Role.COLLECTOR, team="A", supervisor_id=field["boss"])
    cases = [field["case"]] + [await add_case(harness, f"ZS-{n}", field["ann"], (31.2 + n / 1000, 121.4))
                               for n in range(10, 21)]
    field.update({f"c{i}": case_id for i, case_id in enumerate(cases)})
    await file_visit(harness, field["ann"], cases[0], "PTP", {"amount": "500.00", "promise_date": "2026-11-20"})
    await file_visit(harness, field["ann"], cases[1], "PTP", {"amount": "700.00", "promise_date": "2026-11-21"})
    returned = await file_visit(harness, field["ann"], cases[2], "NOBODY", {"revisit_date": "2026-11-10"})
    async with harness.db.write() as session:
        boss = StaffView.of((await session.scalars(select(Staff).where(Staff.id == field["boss"]))).one())
        await visits.review(session, boss, returned, approve=False, comment="add photos", now=harness.clock.now())
    await harness.deliver_outbox()
    harness.api.clear()
    return field


async def assignees(harness: BotHarness) -> dict[int, int]:
    async with harness.db.read() as session:
        rows = await session.execute(select(Assignment.case_id, Assignment.staff_id)
                                     .where(Assignment.ended_at.is_(None)))
        return dict(rows.all())


async def start_by_chat(harness: BotHarness, team: dict[str, int]) -> int:
    await harness.send(harness.updates.command(BOSS, "/handover"))
    await harness.send(harness.updates.button(BOSS, f"ho:from:{team['ann']}"))
    await harness.send(harness.updates.button(BOSS, f"ho:succ:{team['bob']}"))
    await harness.send(harness.updates.button(BOSS, f"ho:succ:{team['cat']}"))
    calls = await harness.send(harness.updates.button(BOSS, "ho:go"))
    assert harness.replies(calls)[-1].startswith("Handover #1 started: 12 open case(s)")
    await harness.deliver_outbox()
    return 1


async def departing_confirms(harness: BotHarness) -> None:
    calls = await harness.send(harness.updates.button(ANN, "ho:list"))
    checklist = calls[-1].params["text"]
    assert checklist.startswith("Handover #1 checklist:")
    assert "ZS-1 · 1 open promise(s)" in checklist and "1 unfiled or returned report(s)" in checklist
    async with harness.db.read() as session:
        item_ids = list(await session.scalars(select(HandoverItem.id).order_by(HandoverItem.id)))
    await harness.send(harness.updates.button(ANN, f"ho:note:{item_ids[2]}", forge=True))
    await harness.send(harness.updates.text(ANN, "the recording is still on my recorder"))
    for item_id in item_ids:
        if item_id != item_ids[2]:
            await harness.send(harness.updates.button(ANN, f"ho:ok:{item_id}", forge=True))
    await harness.deliver_outbox()


async def test_scripted_departure_to_two_successors(harness: BotHarness, team: dict[str, int]) -> None:
    before = await assignees(harness)
    assert list(before.values()).count(team["ann"]) == 12
    await start_by_chat(harness, team)
    assert await assignees(harness) == before  # nothing moves before the team lead's confirmation
    harness.clock.set(at("2026-11-03T10:00"))
    await departing_confirms(harness)
    assert any(t.startswith("📦 Ann has gone through handover #1") for t in harness.api.texts(LEAD.id))
    # the team lead moves the first case to Cat and confirms
    calls = await harness.send(harness.updates.button(LEAD, "ho:rev:1", forge=True))
    assert "ZS-1 · 1 open promise(s) → Bob" in calls[-1].params["text"]
    async with harness.db.read() as session:
        first_item = (await session.scalars(select(HandoverItem).order_by(HandoverItem.id))).first()
    assert first_item is not None
    await harness.send(harness.updates.button(LEAD, f"ho:re:{first_item.id}", forge=True))
    calls = await harness.send(harness.updates.button(LEAD, f"ho:to:{first_item.id}:{team['cat']}"))
    assert harness.replies(calls)[-1] == "Case ZS-1 now goes to Cat."
    await harness.send(harness.updates.button(LEAD, "ho:lok:1", forge=True))
    await harness.deliver_outbox()
    # the successors acknowledge, at different times
    harness.clock.set(at("2026-11-03T11:00"))
    calls = await harness.send(harness.updates.button(BOB, "ho:rcv:1"))
    assert harness.replies(calls)[-1].startswith("Received 5 case(s):")
    harness.clock.set(at("2026-11-05T17:30"))  # Thursday: Cat's window runs to Monday evening
    calls = await harness.send(harness.updates.button(CAT, "ho:rcv:1"))
    assert harness.replies(calls)[-1].startswith("Received 7 case(s): ZS-1,")
    after = await assignees(harness)
    assert sorted(after[c] for c in [team[f"c{i}"] for i in range(12)]) == [team["bob"]] * 5 + [team["cat"]] * 7
    async with harness.db.read() as session:
        cases = {c.id: c for c in await session.scalars(select(Case))}
        ann = await session.get(Staff, team["ann"])
        done = await session.get(Handover, 1)
        actions = [a for a in await session.scalars(select(AuditEntry.action).order_by(AuditEntry.seq))
                   if a.startswith("handover.")]
    for case_id, staff_id in after.items():
        if staff_id == team["bob"] and case_id in [team[f"c{i}"] for i in range(12)]:
            assert cases[case_id].visit_due_at == at("2026-11-05T18:00")
        if staff_id == team["cat"]:
            assert cases[case_id].visit_due_at == at("2026-11-09T18:00")
    assert ann is not None and not ann.active
    assert done is not None and done.status == "completed"
    assert actions == ["handover.started"] + ["handover.item_confirmed"] * 12 + [
        "handover.departing_confirmed", "handover.item_reassigned", "handover.lead_confirmed", "handover.received",
        "handover.received", "handover.completed"]
    refused = await harness.send(harness.updates.command(ANN, "/visits"))
    assert harness.replies(refused) == ["Hello! This is the company's internal field-work assistant, for registered "
                                        "staff only. Please ask the admin office for an invite code."]
    async with harness.db.read() as session:
        assert await handover.orphans(session) == []


async def test_a_flagged_problem_blocks_until_the_supervisor_decides(harness: BotHarness,
                                                                      team: dict[str, int]) -> None:
    await start_by_chat(harness, team)
    await departing_confirms(harness)
    await harness.send(harness.updates.button(LEAD, "ho:flag:1", forge=True))
    await harness.send(harness.updates.text(LEAD, "ZS-3 debtor says he already paid"))
    await harness.deliver_outbox()
    issue = harness.api.last("sendMessage", BOSS.id).params
    assert issue["text"] == "⚠️ Lead flagged a problem with Ann's handover #1: ZS-3 debtor says he already paid"
    calls = await harness.send(harness.updates.button(LEAD, "ho:lok:1", forge=True))
    assert calls[-1].params["text"] == "A flagged problem is still waiting for the supervisor's decision."
    calls = await harness.send(harness.updates.button(BOSS, issue["reply_markup"]["inline_keyboard"][0][0]
                                                      ["callback_data"]))
    assert harness.replies(calls)[-1] == "Recorded: settled, the handover goes on."
    calls = await harness.send(harness.updates.button(LEAD, "ho:lok:1", forge=True))
    assert harness.replies(calls)[-1].startswith("✅ Handover #1 confirmed")


async def test_cancelling_halfway_leaves_every_assignment_as_it_was(harness: BotHarness,
                                                                   team: dict[str, int]) -> None:
    async with harness.db.read() as session:
        deadlines_before = {c.id: c.visit_due_at for c in await session.scalars(select(Case))}
    before = await assignees(harness)
    await start_by_chat(harness, team)
    await departing_confirms(harness)
    await harness.send(harness.updates.button(LEAD, "ho:lok:1", forge=True))
    await harness.send(harness.updates.button(BOB, "ho:rcv:1", forge=True))  # one successor already has cases
    assert await assignees(harness) != before
    calls = await harness.send(harness.updates.button(BOSS, "ho:cancel:1", forge=True))
    assert harness.replies(calls)[-1] == "Handover cancelled."
    assert await assignees(harness) == before
    async with harness.db.read() as session:
        assert {c.id: c.visit_due_at for c in await session.scalars(select(Case))} == deadlines_before
        ann = await session.get(Staff, team["ann"])
    assert ann is not None and ann.active


async def test_only_the_team_s_supervisor_starts_and_only_the_lead_confirms(harness: BotHarness,
                                                                             team: dict[str, int]) -> None:
    calls = await harness.send(harness.updates.command(ANN, "/handover"))
    assert harness.replies(calls) == ["You are not allowed to do that."]
    await start_by_chat(harness, team)
    await departing_confirms(harness)
    calls = await harness.send(harness.updates.button(BOB, "ho:lok:1", forge=True))
    assert calls[-1].params["text"] == "You are not allowed to do that."
    calls = await harness.send(harness.updates.button(BOB, f"ho:ok:{1}", forge=True))
    assert calls[-1].params["text"] == "You are not allowed to do that."


async def test_departing_is_reminded_until_the_checklist_is_done(harness: BotHarness, team: dict[str, int]) -> None:
    await start_by_chat(harness, team)
    harness.clock.set(at("2026-11-02T13:00"))  # 4 working hours after 09:00
    await harness.tick()
    assert any(t.startswith("⏰ Handover #1 still has 12 item(s) to confirm.") for t in harness.api.texts(ANN.id))


def test_deactivating_with_open_cases_is_refused_and_check_finds_orphans(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], db_urls: TestDatabases
) -> None:
    from bot.cli import main

    url = db_urls.url(tmp_path / "h.db")
    monkeypatch.setenv("FIELDBOT_DATABASE_URL", url)
    monkeypatch.setenv("FIELDBOT_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("FIELDBOT_DEFAULT_LOCALE", "en")
    monkeypatch.chdir(tmp_path)
    assert main(["staff", "add", "--name", "Ann", "--role", "collector", "--team", "A"]) == 0
    assert main(["staff", "add", "--name", "Bob", "--role", "collector", "--team", "A"]) == 0
    (tmp_path / "c.csv").write_text("案件编号,委托方,客户姓名,地址,欠款金额,外访员\nA-1,招商银行,李四,上海,100,Ann\n",
                                    encoding="utf-8")
    assert main(["import", str(tmp_path / "c.csv")]) == 0
    assert main(["check"]) == 0
    capsys.readouterr()
    assert main(["staff", "deactivate", "1"]) == 1
    assert "still has 1 open case(s): hand them over first" in capsys.readouterr().err
    # someone switches the account off behind our back
    db_urls.fetch(url, "UPDATE staff SET active = ? WHERE id = 1", False)
    assert main(["check"]) == 1
    assert "orphan: 招商银行 A-1 (assigned) has no active assignee" in capsys.readouterr().out
    assert main(["handover", "start", "--from", "Bob", "--to", "Ann"]) == 1


async def test_phone_collector_sends_a_case_to_the_field_and_gets_the_result(harness: BotHarness,
                                                                            field: dict[str, int]) -> None:
    paul_user = FakeUser(3008, "Paul", language_code="en")
    paul = await harness.onboard(paul_user, "Paul", Role.PHONE_COLLECTOR, team="A", supervisor_id=field["boss"])
    phone_case = await add_case(harness, "DH-1", paul, (31.25, 121.45))
    calls = await harness.send(harness.updates.command(paul_user, "/tofield"))
    assert calls[-1].params["text"] == "Which case should get a field visit?"
    await harness.send(harness.updates.button(paul_user, f"tf:c:{phone_case}"))
    await harness.send(harness.updates.button(paul_user, f"tf:to:{phone_case}:{field['ann']}"))
    calls = await harness.send(harness.updates.text(paul_user, "Debtor agreed to meet at home after 6pm"))
    assert harness.replies(calls) == ["✅ Sent to the field; the visit result will come back to you."]
    await harness.deliver_outbox()
    assert harness.api.texts(ANN.id)[-1].startswith("🚶 Paul asks you to visit case DH-1")
    calls = await harness.send(harness.updates.command(ANN, "/visits"))
    assert "DH-1" in calls[-1].params["text"]
    # Bob, who was not asked, may not touch it
    calls = await harness.send(harness.updates.button(BOB, f"v:in:{phone_case}", forge=True))
    assert calls[-1].params["text"] == "You are not allowed to do that."
    await file_visit(harness, field["ann"], phone_case, "NOBODY", {"revisit_date": "2026-11-06"})
    await harness.deliver_outbox()
    result = harness.api.texts(paul_user.id)[-1]
    assert result.startswith("📨 Ann visited case DH-1:") and "Result: Nobody home" in result
    assert (await assignees(harness))[phone_case] == paul

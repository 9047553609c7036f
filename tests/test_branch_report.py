"""The supervisor's monthly branch report, approved in chat by a manager of its branch and by head office; the
manager reads their branch's teams (/team, /report) and no other branch's."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select

from bot.buttons import BranchReportApprove, BranchReportReturn
from bot.sandbox.harness import BotHarness
from bot.sandbox.updates import FakeUser
from bot.storage.models import AuditEntry, BranchReport, Role
from tests.field_office import ADMIN, ANN, BOSS, ZED, add_case

SH = ZoneInfo("Asia/Shanghai")
SHANGHAI, BEIJING = "上海分公司", "北京分公司"
CID = FakeUser(3107, "Cid", language_code="en")  # a collector of team B (Beijing)
MANAGER = FakeUser(3101, "Mia", language_code="en")  # the Shanghai branch's manager
OTHER_MANAGER = FakeUser(3102, "Max", language_code="en")  # the Beijing branch's manager
HQ = FakeUser(3103, "Hana", language_code="en")  # head office


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=SH)


async def _office(harness: BotHarness) -> dict[str, int]:
    harness.clock.set(at("2026-10-12T10:00"))
    ids = {"boss": await harness.onboard(BOSS, "Boss", Role.SUPERVISOR, team="A", branch=SHANGHAI)}
    ids["ann"] = await harness.onboard(ANN, "Ann", Role.COLLECTOR, team="A", supervisor_id=ids["boss"])
    ids["zed"] = await harness.onboard(ZED, "Zed", Role.SUPERVISOR, team="B", branch=BEIJING)
    ids["cid"] = await harness.onboard(CID, "Cid", Role.COLLECTOR, team="B", supervisor_id=ids["zed"])
    ids["mia"] = await harness.onboard(MANAGER, "Mia", Role.MANAGER, team=None, branch=SHANGHAI)
    ids["max"] = await harness.onboard(OTHER_MANAGER, "Max", Role.MANAGER, team=None, branch=BEIJING)
    ids["hana"] = await harness.onboard(HQ, "Hana", Role.HQ, team=None)
    ids["admin"] = await harness.onboard(ADMIN, "Admin", Role.ADMIN, team=None)
    await add_case(harness, "SH-1", ids["ann"], None)
    await add_case(harness, "BJ-1", ids["cid"], None)
    await harness.deliver_outbox()
    harness.api.clear()
    return ids


async def _reports(harness: BotHarness) -> dict[str, BranchReport]:
    async with harness.db.read() as session:
        return {r.team: r for r in await session.scalars(select(BranchReport))}


async def _audited(harness: BotHarness, action: str) -> int:
    async with harness.db.read() as session:
        return int(await session.scalar(select(func.count()).select_from(AuditEntry).where(
            AuditEntry.action == action)) or 0)


def _message_with(harness: BotHarness, user: FakeUser, data: str) -> int:
    """The id of the bot's message in ``user``'s chat that carries the button ``data``."""
    for call in reversed(harness.api.sent("sendMessage", user.id)):
        markup: Any = call.params.get("reply_markup") or {}
        if isinstance(markup, str):
            markup = json.loads(markup)
        if any(b.get("callback_data") == data for row in markup.get("inline_keyboard", []) for b in row):
            return int(call.result["message_id"])
    raise AssertionError(f"{user.first_name} got no message with {data!r}")


async def _press(harness: BotHarness, user: FakeUser, data: str) -> list[str]:
    update = harness.updates.button(user, data, message_id=_message_with(harness, user, data))
    return harness.replies(await harness.send(update), user.id)


async def test_a_branch_report_is_approved_by_a_manager_and_head_office_in_chat(harness: BotHarness) -> None:
    await _office(harness)
    harness.clock.set(at("2026-11-02T09:30"))  # Monday 2 November: October's reports go out
    await harness.tick()
    reports = await _reports(harness)
    assert set(reports) == {"A", "B"} and {r.status for r in reports.values()} == {"pending"}
    a, b = reports["A"], reports["B"]
    assert (a.branch, b.branch) == (SHANGHAI, BEIJING)
    approve_a = BranchReportApprove(report_id=a.id).pack()
    # the Shanghai manager and head office get team A's report with its buttons; the Beijing manager does not
    assert any("For approval: team A" in t for t in harness.api.texts(MANAGER.id))
    assert any("For approval: team A" in t for t in harness.api.texts(HQ.id))
    assert any("For approval: team B" in t for t in harness.api.texts(HQ.id))
    assert not any("team A" in t for t in harness.api.texts(OTHER_MANAGER.id))
    assert not any("team B" in t for t in harness.api.texts(MANAGER.id))

    # a manager of another branch cannot approve it (a forged press): refused, audited, nothing changes
    calls = await harness.send(harness.updates.button(OTHER_MANAGER, approve_a, forge=True))
    assert any("not allowed" in t.lower() or "permission" in t.lower() for t in
               [str(c.params.get("text")) for c in calls if c.params.get("text")])
    assert await _audited(harness, "refused.branch_report.decide") == 1
    assert (await _reports(harness))["A"].manager_id is None

    # the manager's double tap approves once
    message_id = _message_with(harness, MANAGER, approve_a)
    taps = [harness.updates.button(MANAGER, approve_a, message_id=message_id) for _ in range(2)]
    await asyncio.gather(*(harness.send(tap) for tap in taps))
    assert await _audited(harness, "branch_report.approve.manager") == 1
    report = (await _reports(harness))["A"]
    assert report.manager_id is not None and report.status == "pending"

    # head office approves: both approvals are in, the supervisor is told
    replies = await _press(harness, HQ, approve_a)
    assert any("both approvals" in r for r in replies)
    report = (await _reports(harness))["A"]
    assert report.status == "approved" and report.hq_id is not None
    assert await _audited(harness, "branch_report.approve.hq") == 1
    assert await _audited(harness, "branch_report.approved") == 1
    await harness.deliver_outbox()
    assert any("was approved by the branch manager and head office" in t for t in harness.api.texts(BOSS.id))

    # /reports: nothing left for the Shanghai manager; team B's still waits for head office
    replies = harness.replies(await harness.send(harness.updates.command(MANAGER, "/reports")), MANAGER.id)
    assert any("No branch report is waiting" in r for r in replies)
    replies = harness.replies(await harness.send(harness.updates.command(HQ, "/reports")), HQ.id)
    assert any("Team B" in r for r in replies) and not any("Team A" in r for r in replies)

    # the Beijing manager returns team B's report with a comment: its supervisor gets it
    await _press(harness, OTHER_MANAGER, BranchReportReturn(report_id=b.id).pack())
    replies = harness.replies(await harness.send(harness.updates.text(OTHER_MANAGER, "目标差距请说明")),
                              OTHER_MANAGER.id)
    assert any("was returned" in r for r in replies)
    assert (await _reports(harness))["B"].status == "returned"
    await harness.deliver_outbox()
    assert any("returned by Max: 目标差距请说明" in t for t in harness.api.texts(ZED.id))


async def test_a_manager_reads_their_branch_s_teams_and_no_other_branch(harness: BotHarness) -> None:
    await _office(harness)
    harness.clock.set(at("2026-11-03T10:00"))
    team = "\n".join(harness.replies(await harness.send(harness.updates.command(MANAGER, "/team")), MANAGER.id))
    assert "A" in team.splitlines()[0] and "B" not in team.splitlines()[0]
    report = "\n".join(harness.replies(await harness.send(harness.updates.command(MANAGER, "/report", "month")),
                                       MANAGER.id))
    assert "Ann" in report and "Cid" not in report
    # a case of the other branch is not found for the manager; head office finds it
    desk = "\n".join(harness.replies(await harness.send(harness.updates.command(MANAGER, "/case", "BJ-1")),
                                     MANAGER.id))
    assert "No case found" in desk
    desk = "\n".join(harness.replies(await harness.send(harness.updates.command(MANAGER, "/case", "SH-1")),
                                     MANAGER.id))
    assert "SH-1" in desk and "No case found" not in desk
    desk = "\n".join(harness.replies(await harness.send(harness.updates.command(HQ, "/case", "BJ-1")), HQ.id))
    assert "BJ-1" in desk and "No case found" not in desk
    # neither changes anything in the field: no assignment
    replies = harness.replies(await harness.send(harness.updates.command(MANAGER, "/assign")), MANAGER.id)
    assert replies and not any("SH-1" in r for r in replies)

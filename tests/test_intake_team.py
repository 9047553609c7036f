"""A case file sent to the bot names its team (caption) or waits for the admin to pick it with a button."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import func, select

from bot.sandbox.harness import BotHarness
from bot.sandbox.updates import FakeUser
from bot.services import intake
from bot.storage.models import Case, CaseImport, FlowState, Role

ADMIN = FakeUser(2101, "Admin", language_code="en")
BOSS = FakeUser(2102, "Boss", language_code="en")
ZED = FakeUser(2103, "Zed", language_code="en")
ANN = FakeUser(2104, "Ann", language_code="en")

CSV = "案件编号,客户姓名,地址,欠款金额\nZX-1,赵一,北京市海淀区,1000\nZX-2,钱二,北京市朝阳区,2000\n".encode()


@pytest.fixture
async def office(harness: BotHarness) -> dict[str, int]:
    ids = {"admin": await harness.onboard(ADMIN, "Admin", Role.ADMIN, team=None)}
    ids["boss"] = await harness.onboard(BOSS, "Boss", Role.SUPERVISOR, team="A组")
    ids["zed"] = await harness.onboard(ZED, "Zed", Role.SUPERVISOR, team="B组")
    ids["ann"] = await harness.onboard(ANN, "Ann", Role.COLLECTOR, team="A组", supervisor_id=ids["boss"])
    harness.api.clear()
    return ids


async def _cases(harness: BotHarness) -> list[tuple[str, str, str | None]]:
    async with harness.db.read() as session:
        return [(c.case_no, c.bank, c.team) for c in await session.scalars(select(Case).order_by(Case.case_no))]


def _buttons(call_params: dict[str, object]) -> list[tuple[str, str]]:
    markup = call_params["reply_markup"]
    assert isinstance(markup, dict)
    return [(b["text"], b["callback_data"]) for row in markup["inline_keyboard"] for b in row]


def test_the_caption_names_bank_and_team() -> None:
    teams = ["A组", "B组", "North"]
    assert intake.split_caption("招商银行 A组", teams) == intake.CaptionParts("招商银行", "A组")
    assert intake.split_caption("招商银行 组:B组", teams) == intake.CaptionParts("招商银行", "B组")
    assert intake.split_caption("north China Merchants", teams) == intake.CaptionParts("China Merchants", "North")
    assert intake.split_caption("team:South 中信银行", teams) == intake.CaptionParts("中信银行", None, "South")
    assert intake.split_caption("中信银行", teams) == intake.CaptionParts("中信银行", None)
    assert intake.split_caption(None, teams) == intake.CaptionParts(None, None)


async def test_a_caption_with_the_team_imports_for_that_team_only(harness: BotHarness,
                                                                   office: dict[str, int]) -> None:
    calls = await harness.send(harness.document_update(ADMIN, CSV, "zx.csv", caption="中信银行 A组"))
    assert harness.replies(calls)[-1].endswith("For team A组's supervisor to assign.")
    assert await _cases(harness) == [("ZX-1", "中信银行", "A组"), ("ZX-2", "中信银行", "A组")]
    boss = harness.replies(await harness.send(harness.updates.command(BOSS, "/assign")))[-1]
    zed = harness.replies(await harness.send(harness.updates.command(ZED, "/assign")))[-1]
    assert "2 in all" in boss and "ZX-" not in zed


async def test_without_a_team_the_file_waits_for_a_button_across_a_restart(harness: BotHarness,
                                                                           office: dict[str, int]) -> None:
    calls = await harness.send(harness.document_update(ADMIN, CSV, "zx.csv", caption="中信银行"))
    asked = [c for c in calls if c.method == "editMessageText"][-1]
    assert asked.params["text"].startswith("Which team's supervisor assigns the cases of “zx.csv”?")
    assert _buttons(asked.params) == [("A组", "imp:team:1"), ("B组", "imp:team:2"),
                                      ("No team (every supervisor sees them)", "imp:team:0")]
    assert await _cases(harness) == []  # nothing imported yet
    await harness.restart()
    calls = await harness.send(harness.updates.button(ADMIN, "imp:team:2"))
    assert harness.replies(calls)[-1].endswith("For team B组's supervisor to assign.")
    assert await _cases(harness) == [("ZX-1", "中信银行", "B组"), ("ZX-2", "中信银行", "B组")]
    async with harness.db.read() as session:
        assert await session.scalar(select(func.count()).select_from(FlowState)) == 0
        record = await session.scalar(select(CaseImport))
    assert record is not None and record.team == "B组" and record.actor_id == office["admin"]
    # pressed again later: the file is no longer waiting, nothing changes
    calls = await harness.send(harness.updates.button(ADMIN, "imp:team:1"))
    assert harness.replies(calls) == ["That file is no longer waiting; send it again."]
    assert {team for _, _, team in await _cases(harness)} == {"B组"}


async def test_an_unknown_team_is_said_and_asked(harness: BotHarness, office: dict[str, int]) -> None:
    calls = await harness.send(harness.document_update(ADMIN, CSV, "zx.csv", caption="组:C组 中信银行"))
    text = [c for c in calls if c.method == "editMessageText"][-1].params["text"]
    assert text.startswith("There is no team called “C组”.\nWhich team's supervisor")
    await harness.send(harness.updates.button(ADMIN, "imp:team:0"))
    assert await _cases(harness) == [("ZX-1", "中信银行", None), ("ZX-2", "中信银行", None)]


async def test_a_file_that_cannot_be_read_is_refused_before_any_question(harness: BotHarness,
                                                                         office: dict[str, int]) -> None:
    calls = await harness.send(harness.document_update(ADMIN, b"%PDF-1.4 a scanned list", "cases.pdf"))
    last = [c for c in calls if c.method == "editMessageText"][-1].params
    assert "not a supported format" in last["text"] and "reply_markup" not in last
    async with harness.db.read() as session:
        assert await session.scalar(select(func.count()).select_from(FlowState)) == 0


async def test_a_double_tap_on_the_team_imports_once(harness: BotHarness, office: dict[str, int]) -> None:
    await harness.send(harness.document_update(ADMIN, CSV, "zx.csv", caption="中信银行"))
    first, second = harness.updates.button(ADMIN, "imp:team:1"), harness.updates.button(ADMIN, "imp:team:2")
    results = await asyncio.gather(harness.send(first), harness.send(second))
    await harness.replay(first)
    async with harness.db.read() as session:
        imports = await session.scalar(select(func.count()).select_from(CaseImport))
    assert imports == 1
    teams = {team for _, _, team in await _cases(harness)}
    assert len(teams) == 1 and teams <= {"A组", "B组"}
    answers = [harness.replies(calls)[-1] for calls in results]
    assert sum(a.endswith("supervisor to assign.") for a in answers) == 1
    assert any(a in ("That file is being imported already. If no summary arrives, send the file again.",
                     "That file is no longer waiting; send it again.") for a in answers)


async def test_only_the_admin_office_may_pick_the_team(harness: BotHarness, office: dict[str, int]) -> None:
    await harness.send(harness.document_update(ADMIN, CSV, "zx.csv", caption="中信银行"))
    calls = await harness.send(harness.updates.button(BOSS, "imp:team:1", forge=True))
    assert harness.replies(calls) == ["You are not allowed to do that."]
    assert await _cases(harness) == []

"""Case intake and assignment in chat: an admin uploads, a supervisor assigns, the collector hears of it."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select

from bot.sandbox.harness import BotHarness
from bot.sandbox.updates import FakeUser
from bot.storage.models import Assignment, AuditEntry, Case, CaseImport, Role
from tests.case_files import sample_cases, write_cases_csv, write_mixed

ADMIN = FakeUser(2001, "Admin", language_code="en")
BOSS = FakeUser(2002, "Boss", language_code="en")
ANN = FakeUser(2003, "Ann", language_code="en")
BOB = FakeUser(2004, "Bob", language_code="en")
OTHER_BOSS = FakeUser(2005, "Zed", language_code="en")


@pytest.fixture
async def office(harness: BotHarness) -> dict[str, int]:
    harness.app.bot_data["runtime"].settings.import_batch_size = 7
    ids = {"admin": await harness.onboard(ADMIN, "Admin", Role.ADMIN, team=None)}
    ids["boss"] = await harness.onboard(BOSS, "Boss", Role.SUPERVISOR, team="A")
    ids["王磊"] = await harness.onboard(ANN, "王磊", Role.COLLECTOR, team="A", supervisor_id=ids["boss"])
    ids["陈静"] = await harness.onboard(BOB, "陈静", Role.COLLECTOR, team="A", supervisor_id=ids["boss"])
    ids["zed"] = await harness.onboard(OTHER_BOSS, "Zed", Role.SUPERVISOR, team="B")
    harness.api.clear()
    return ids


async def test_admin_upload_shows_progress_summary_and_rejects(harness: BotHarness, office: dict[str, int],
                                                               tmp_path: Path) -> None:
    path = write_mixed(tmp_path, "xlsx")
    calls = await harness.send(harness.document_update(ADMIN, path.read_bytes(), "mixed.xlsx", caption="A"))
    edits = [c.params["text"] for c in calls if c.method == "editMessageText"]
    first = [c.params["text"] for c in calls if c.method == "sendMessage"]
    assert first == ['Received "mixed.xlsx", importing…']
    assert edits[:4] == ['Importing "mixed.xlsx": 0/20 rows…', 'Importing "mixed.xlsx": 7/20 rows…',
                         'Importing "mixed.xlsx": 14/20 rows…', 'Importing "mixed.xlsx": 20/20 rows…']
    assert edits[-1] == ('Import of "mixed.xlsx" finished:\n20 new, 0 updated, 0 unchanged, 21 rejected.\n'
                         "For team A's supervisor to assign.")
    documents = [c for c in calls if c.method == "sendDocument"]
    assert len(documents) == 1
    assert documents[0].params["document"]["filename"] == "mixed.rejects.csv"
    assert documents[0].params["caption"].startswith("21 rows were rejected")
    async with harness.db.read() as session:
        record = await session.scalar(select(CaseImport))
        assert await session.scalar(select(func.count()).select_from(Case)) == 20
    assert record is not None and record.actor_id == office["admin"] and record.imported == 20


async def test_same_upload_delivered_twice_imports_once(harness: BotHarness, office: dict[str, int],
                                                        tmp_path: Path) -> None:
    update = harness.document_update(ADMIN, write_cases_csv(tmp_path / "b.csv", sample_cases()).read_bytes(),
                                     "b.csv", caption="A")
    await harness.send(update)
    replay = await harness.replay(update)
    assert replay == []
    async with harness.db.read() as session:
        assert await session.scalar(select(func.count()).select_from(CaseImport)) == 1


async def test_caption_names_the_bank_and_garbage_is_explained(harness: BotHarness, office: dict[str, int]) -> None:
    calls = await harness.send(harness.document_update(ADMIN, b"%PDF-1.4 a scanned list", "cases.pdf"))
    assert "not a supported format" in [c.params["text"] for c in calls if c.method == "editMessageText"][-1]
    csv = "案件编号,客户姓名,地址,欠款金额\nZX-1,赵一,北京市海淀区,1000\n".encode()
    calls = await harness.send(harness.document_update(ADMIN, csv, "zx.csv", caption="中信银行 A"))
    async with harness.db.read() as session:
        case = await session.scalar(select(Case).where(Case.case_no == "ZX-1"))
    assert case is not None and case.bank == "中信银行"


async def test_file_over_twenty_megabytes_gets_the_size_answer(harness: BotHarness, office: dict[str, int]) -> None:
    file_id, unique = harness.api.add_file_of_size(25 * 1024 * 1024)
    update = harness.updates.document(ADMIN, file_id, unique, file_name="big.xlsx", size=25 * 1024 * 1024)
    calls = await harness.send(update)
    assert [c.method for c in calls] == ["sendMessage"]
    assert "over Telegram's 20 MB download limit" in calls[0].params["text"]


async def test_collector_sending_a_file_is_refused(harness: BotHarness, office: dict[str, int],
                                                   tmp_path: Path) -> None:
    path = write_cases_csv(tmp_path / "b.csv", sample_cases())
    calls = await harness.send(harness.document_update(ANN, path.read_bytes(), "b.csv"))
    assert harness.replies(calls) == ["Only admin staff can import case files. Visit evidence is sent during a visit."]
    assert not any(c.method == "getFile" for c in calls)
    async with harness.db.read() as session:
        assert await session.scalar(select(func.count()).select_from(CaseImport)) == 0


async def _import_unassigned(harness: BotHarness, tmp_path: Path) -> None:
    rows = "\n".join(f"ZX-{i},客户{i},上海市{'浦东新区' if i % 2 else '闵行区'}路{i}号,{1000 + i}"
                     for i in range(1, 13))
    csv = ("案件编号,客户姓名,地址,欠款金额\n" + rows + "\n").encode()
    await harness.send(harness.document_update(ADMIN, csv, "zx.csv", caption="中信银行 A"))
    harness.api.clear()


async def test_supervisor_assigns_a_case_and_the_collector_is_told(harness: BotHarness, office: dict[str, int],
                                                                   tmp_path: Path) -> None:
    await _import_unassigned(harness, tmp_path)
    calls = await harness.send(harness.updates.command(BOSS, "/assign"))
    page = calls[-1].params
    assert page["text"].startswith("Unassigned cases (page 1/2, 12 in all):")
    buttons = [b["callback_data"] for row in page["reply_markup"]["inline_keyboard"] for b in row]
    assert len([b for b in buttons if b.startswith("asg:c:")]) == 10 and "asg:p:10" in buttons
    calls = await harness.send(harness.updates.button(BOSS, "asg:p:10"))
    assert "page 2/2" in calls[-1].params["text"]
    await harness.send(harness.updates.button(BOSS, "asg:p:0"))

    async with harness.db.read() as session:
        case = await session.scalar(select(Case).where(Case.case_no == "ZX-1"))
    assert case is not None
    await harness.send(harness.updates.button(BOSS, f"asg:c:{case.id}"))
    calls = await harness.send(harness.updates.button(BOSS, f"asg:to:{case.id}:{office['王磊']}"))
    assert calls[-1].params["text"].startswith("Assigned 1 case(s) to 王磊: ZX-1.")
    assert await harness.deliver_outbox() == 1
    told = harness.api.texts(ANN.id)
    assert told and told[-1].startswith("📋 You have 1 new case(s):") and "ZX-1" in told[-1]
    assert harness.api.last("sendMessage", ANN.id).params["protect_content"] is True


async def test_forged_or_foreign_assign_buttons_are_refused(harness: BotHarness, office: dict[str, int],
                                                            tmp_path: Path) -> None:
    await _import_unassigned(harness, tmp_path)
    async with harness.db.read() as session:
        case = await session.scalar(select(Case).where(Case.case_no == "ZX-2"))
    assert case is not None
    # a collector presses a supervisor's button
    harness.api.clear()
    calls = await harness.send(harness.updates.button(ANN, f"asg:to:{case.id}:{office['王磊']}", forge=True))
    assert [c.method for c in calls] == ["answerCallbackQuery"]
    assert calls[0].params["text"] == "You are not allowed to do that."
    # a supervisor of team B assigns a team-A collector
    calls = await harness.send(harness.updates.button(OTHER_BOSS, f"asg:to:{case.id}:{office['王磊']}", forge=True))
    assert calls[0].params["text"] == "You are not allowed to do that."
    async with harness.db.read() as session:
        assert await session.scalar(select(func.count()).select_from(Assignment)) == 0
        refused = (await session.execute(select(AuditEntry.action, AuditEntry.actor_id, AuditEntry.object_id)
                                         .where(AuditEntry.action.like("refused.%")))).all()
    assert refused == [("refused.assign_one", office["王磊"], str(case.id)),
                       ("refused.case.assign", office["zed"], str(case.id))]


async def test_bulk_by_area_needs_confirmation(harness: BotHarness, office: dict[str, int], tmp_path: Path) -> None:
    await _import_unassigned(harness, tmp_path)
    await harness.send(harness.updates.command(BOSS, "/assign"))
    calls = await harness.send(harness.updates.button(BOSS, "asg:area"))
    assert calls[-1].params["text"].startswith("Type an area keyword")
    await harness.restart()  # the saved step survives a restart
    calls = await harness.send(harness.updates.text(BOSS, "浦东"))
    assert calls[-1].params["text"].startswith('6 unassigned case(s) have "浦东" in the address.')
    calls = await harness.send(harness.updates.button(BOSS, f"asg:areato:{office['陈静']}"))
    assert calls[-1].params["text"].startswith("Plan: 6 case(s) to assign")
    async with harness.db.read() as session:
        assert await session.scalar(select(func.count()).select_from(Assignment)) == 0
    confirm = next(b["callback_data"] for row in calls[-1].params["reply_markup"]["inline_keyboard"] for b in row
                   if b["callback_data"].startswith("asg:ok:"))
    calls = await harness.send(harness.updates.button(BOSS, confirm))
    assert calls[-1].params["text"].startswith("6 case(s) assigned")
    harness.api.clear()
    stale = await harness.send(harness.updates.button(BOSS, confirm, forge=True))  # the old confirmation again
    assert stale[0].params["text"] == "That button is no longer valid. Please open the menu again."
    async with harness.db.read() as session:
        assert await session.scalar(select(func.count()).select_from(Assignment)) == 6
    assert await harness.deliver_outbox() == 1
    assert "6 new case(s)" in harness.api.texts(BOB.id)[-1]

"""The admin office registers staff: /invite in the bot, and ``fieldbot staff import FILE`` for many."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest
from openpyxl import Workbook
from sqlalchemy import select

from bot.sandbox.harness import BotHarness
from bot.sandbox.updates import FakeUser
from bot.storage.models import AuditEntry, Staff
from tests.conftest import TestDatabases
from tests.field_office import ADMIN, BOSS, ZED

NEW = FakeUser(3020, "Xiao", language_code="en")
FORBIDDEN = "You are not allowed to do that."


def _buttons(call_params: dict[str, object]) -> dict[str, str]:
    markup = call_params.get("reply_markup")
    assert isinstance(markup, dict)
    return {b["text"]: b["callback_data"] for row in markup["inline_keyboard"] for b in row}


async def test_an_admin_invites_a_collector_who_then_registers(harness: BotHarness, office: dict[str, int]) -> None:
    calls = await harness.send(harness.updates.command(ADMIN, "/invite"))
    assert calls[-1].params["text"] == "Register a person: choose their role."
    roles = _buttons(calls[-1].params)
    calls = await harness.send(harness.updates.button(ADMIN, roles["field collector"]))
    assert calls[-1].params["text"].startswith("Role: field collector. Choose the team")
    teams = _buttons(calls[-1].params)
    assert list(teams) == ["A", "B", "No team"]
    calls = await harness.send(harness.updates.button(ADMIN, teams["B"]))
    assert harness.replies(calls)[-1] == "Team B: choose their supervisor."
    bosses = _buttons(calls[-1].params)
    assert list(bosses) == ["Zed", "No supervisor for now"]
    calls = await harness.send(harness.updates.button(ADMIN, bosses["Zed"]))
    assert harness.replies(calls)[-1] == "Type the person's name:"
    calls = await harness.send(harness.updates.text(ADMIN, "  Xiao  Wang "))
    done = harness.replies(calls)[-1]
    assert done.startswith("✅ Registered staff #")
    assert "Xiao Wang (field collector, team B)" in done
    code = re.search(r"Invite code \(single use, valid 7 days\): (\S+)", done)
    assert code is not None
    assert "https://t.me/" in done and f"?start={code.group(1)}" in done
    async with harness.db.read() as session:
        person = (await session.scalars(select(Staff).where(Staff.name == "Xiao Wang"))).one()
        audited = list(await session.scalars(select(AuditEntry.action).where(AuditEntry.actor_id == office["admin"],
                                                                            AuditEntry.object_id == str(person.id))))
    assert (person.role, person.team, person.supervisor_id) == ("collector", "B", office["zed"])
    assert audited == ["staff.add", "invite.create"]
    # the invited person registers with the code and is a collector of team B
    await harness.send(harness.updates.command(NEW, "/start", code.group(1)))
    calls = await harness.send(harness.updates.command(NEW, "/visits"))
    assert harness.replies(calls) and "registered staff only" not in harness.replies(calls)[-1]
    async with harness.db.read() as session:
        person = (await session.scalars(select(Staff).where(Staff.name == "Xiao Wang"))).one()
    assert person.telegram_user_id == NEW.id
    # the same name in the same team is not registered twice
    await harness.send(harness.updates.command(ADMIN, "/invite"))
    await harness.send(harness.updates.button(ADMIN, roles["field collector"], forge=True))
    await harness.send(harness.updates.button(ADMIN, teams["B"], forge=True))
    await harness.send(harness.updates.button(ADMIN, "inv:nosup", forge=True))
    calls = await harness.send(harness.updates.text(ADMIN, "Xiao Wang"))
    assert harness.replies(calls)[-1] == "Xiao Wang is already registered in team B; not registered twice."


async def test_a_new_team_is_typed_and_a_team_lead_needs_no_supervisor(harness: BotHarness,
                                                                       office: dict[str, int]) -> None:
    await harness.send(harness.updates.command(ADMIN, "/invite"))
    await harness.send(harness.updates.button(ADMIN, "inv:role:team_lead"))
    calls = await harness.send(harness.updates.text(ADMIN, "东区二组"))
    assert harness.replies(calls)[-1] == "Type the person's name:"
    calls = await harness.send(harness.updates.text(ADMIN, "Lin"))
    assert "Lin (team lead, team 东区二组)" in harness.replies(calls)[-1]


async def test_only_admins_invite(harness: BotHarness, office: dict[str, int]) -> None:
    for user in (BOSS, ZED):
        calls = await harness.send(harness.updates.command(user, "/invite"))
        assert harness.replies(calls) == [FORBIDDEN]
        calls = await harness.send(harness.updates.button(user, "inv:role:collector", forge=True))
        assert calls[-1].params["text"] == FORBIDDEN
    # a supervisor of another team cannot be chosen for a team, even by a forged press
    await harness.send(harness.updates.command(ADMIN, "/invite"))
    await harness.send(harness.updates.button(ADMIN, "inv:role:collector"))
    await harness.send(harness.updates.button(ADMIN, "inv:team:1"))  # team A
    await harness.send(harness.updates.button(ADMIN, f"inv:sup:{office['zed']}", forge=True))
    calls = await harness.send(harness.updates.text(ADMIN, "Somebody"))
    assert harness.replies(calls)[-1] == "The chosen supervisor is not an active supervisor of that team."
    async with harness.db.read() as session:
        assert (await session.scalars(select(Staff).where(Staff.name == "Somebody"))).first() is None


# ---- fieldbot staff import ------------------------------------------------------------------------------------


@pytest.fixture
def shell(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, db_urls: TestDatabases) -> Path:
    monkeypatch.setenv("FIELDBOT_DATABASE_URL", db_urls.url(tmp_path / "s.db"))
    monkeypatch.setenv("FIELDBOT_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("FIELDBOT_DEFAULT_LOCALE", "en")
    monkeypatch.chdir(tmp_path)
    return tmp_path


CSV = ("姓名,角色,组别,主管姓名,手机,语言\n"
       "张主管,主管,一组,,13800000001,中文\n"
       "李四,外访员,一组,张主管,13800000002,zh_CN\n"
       "王五,电话催收员,一组,张主管,,en\n"
       ",外访员,一组,,,\n"
       "赵六,经理,一组,,,\n"
       "钱七,外访员,一组,没有这人,,\n"
       "李四,外访员,一组,张主管,13800000002,zh_CN\n")


def test_staff_import_registers_reports_and_rejects(shell: Path, capsys: pytest.CaptureFixture[str],
                                                    db_urls: TestDatabases) -> None:
    from bot.cli import main

    (shell / "staff.csv").write_text(CSV, encoding="gbk")
    assert main(["staff", "import", str(shell / "staff.csv")]) == 1
    out, err = capsys.readouterr()
    registered = [line for line in out.splitlines() if "registered staff #" in line]
    assert [line.split(":")[0] for line in registered] == ["row 2", "row 3", "row 4"]
    assert re.search(r"row 3: registered staff #2 李四 \(field collector, team 一组\), invite code \S+, "
                     r"link https://t.me/fieldbot_bot\?start=\S+", out)
    assert "row 8: 李四 (team 一组) is already registered as staff #2; not added again" in out
    assert err.splitlines() == [
        "row 5 rejected: the name is missing",
        'row 6 rejected: unknown role "经理" (外访员/collector, 电话催收员/phone_collector, 主管/supervisor, '
        '组长/team_lead, 行政/admin)',
        'row 7 rejected: team 一组 has no single active supervisor named "没有这人"']
    assert out.splitlines()[-1] == "3 registered, 1 already registered, 3 row(s) rejected."
    people = db_urls.fetch(db_urls.url(shell / "s.db"),
                           "SELECT name, role, team, supervisor_id, phone, locale FROM staff ORDER BY id")
    assert people == [("张主管", "supervisor", "一组", None, "13800000001", "zh_CN"),
                      ("李四", "collector", "一组", 1, "13800000002", "zh_CN"),
                      ("王五", "phone_collector", "一组", 1, None, "en")]
    # the same file again: nobody is added twice
    assert main(["staff", "import", str(shell / "staff.csv")]) == 1
    out, _ = capsys.readouterr()
    assert out.splitlines()[-1] == "0 registered, 4 already registered, 3 row(s) rejected."
    assert db_urls.fetch(db_urls.url(shell / "s.db"), "SELECT count(*) FROM staff") == [(3,)]


def test_staff_import_reads_xlsx_with_english_headers(shell: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from bot.cli import main

    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(["Staff list, November"])  # a title row above the header
    sheet.append(["Name", "Role", "Team", "Supervisor", "Phone", "Language"])
    sheet.append(["Ann", "supervisor", "A", None, None, "English"])
    sheet.append(["Bob", "collector", "A", "Ann", 13800000003, None])
    buffer = io.BytesIO()
    book.save(buffer)
    (shell / "staff.xlsx").write_bytes(buffer.getvalue())
    assert main(["staff", "import", str(shell / "staff.xlsx"), "--bot-username", "acme_bot"]) == 0
    out, _ = capsys.readouterr()
    assert "row 4: registered staff #2 Bob (field collector, team A)" in out and "t.me/acme_bot?start=" in out
    (shell / "bad.csv").write_text("foo,bar\n1,2\n", encoding="utf-8")
    assert main(["staff", "import", str(shell / "bad.csv")]) == 1
    assert "No header row found in bad.csv" in capsys.readouterr().err

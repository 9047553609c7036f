"""The ``fieldbot`` command in-process: db upgrade, staff management, audit verification."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bot.cli import main
from tests.conftest import TestDatabases


@pytest.fixture
def db_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, db_urls: TestDatabases) -> str:
    """The database URL the commands use (an empty SQLite file, or an empty PostgreSQL database)."""
    for key in ("FIELDBOT_TOKEN", "FIELDBOT_DATABASE_URL", "FIELDBOT_DATA_DIR"):
        monkeypatch.delenv(key, raising=False)
    url = db_urls.url(tmp_path / "fieldbot.db", empty=True)
    monkeypatch.setenv("FIELDBOT_DATABASE_URL", url)
    monkeypatch.setenv("FIELDBOT_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.chdir(tmp_path)  # no stray .env is read
    return url


def test_db_upgrade_creates_the_schema(db_file: str, db_urls: TestDatabases,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["db", "upgrade"]) == 0
    if db_urls.postgres:
        tables = {r[0] for r in db_urls.fetch(db_file, "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}
    else:
        tables = {r[0] for r in db_urls.fetch(db_file, "SELECT name FROM sqlite_master WHERE type='table'")}
        assert db_urls.fetch(db_file, "PRAGMA journal_mode")[0][0] == "wal"
    assert {"staff", "invites", "cases", "assignments", "audit_log", "alembic_version"} <= tables


def test_staff_add_list_deactivate(db_file: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["staff", "add", "--name", "王主管", "--role", "supervisor", "--team", "A"]) == 0
    assert main(["staff", "add", "--name", "张三", "--role", "collector", "--team", "A", "--supervisor", "1",
                 "--bot-username", "acme_field_bot"]) == 0
    out = capsys.readouterr().out
    assert "https://t.me/acme_field_bot?start=" in out
    assert main(["staff", "deactivate", "2"]) == 0
    capsys.readouterr()
    assert main(["staff", "list", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [(r["name"], r["role"], r["active"], r["supervisor_id"]) for r in rows] == [
        ("王主管", "supervisor", True, None), ("张三", "collector", False, 1)]


def test_staff_add_with_a_bad_supervisor_is_a_clear_error(db_file: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["staff", "add", "--name", "张三", "--role", "collector", "--supervisor", "42"]) == 1
    err = capsys.readouterr().err
    assert "42" in err and "Traceback" not in err


def test_audit_verify_names_the_edited_entry(db_file: str, db_urls: TestDatabases,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    for name in ("甲", "乙", "丙"):
        assert main(["staff", "add", "--name", name, "--role", "collector"]) == 0
    capsys.readouterr()
    assert main(["audit", "verify"]) == 0
    assert "intact: 6 entries" in capsys.readouterr().out
    db_urls.fetch(db_file, "UPDATE audit_log SET details = replace(details, '乙', '丁') WHERE seq = 3")
    assert main(["audit", "verify"]) == 1
    assert "entry #3 was altered" in capsys.readouterr().out


def test_bad_setting_is_one_clear_line(db_file: str, monkeypatch: pytest.MonkeyPatch,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("FIELDBOT_TIMEZONE", "Mars/Olympus")
    assert main(["db", "upgrade"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("fieldbot: configuration error: FIELDBOT_TIMEZONE") and "\n" not in err


def _write(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.write_bytes(text.encode(encoding))
    return path


def test_import_exit_codes_and_rejects_file(db_file: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    header = "案件编号,委托方,客户姓名,地址,欠款金额,手机号码\n"
    good = _write(tmp_path / "good.csv", header + "A-1,招商银行,李四,上海市,1200.50,13800138000\n", "gbk")
    assert main(["import", str(good), "--received-at", "2026-11-02T08:00"]) == 0
    out = capsys.readouterr().out
    assert "1 new" in out or "新增 1 件" in out

    mixed = _write(tmp_path / "mixed.csv", header + "A-2,招商银行,王五,北京市,abc,\nA-3,招商银行,赵六,广州市,10,\n")
    assert main(["import", str(mixed)]) == 3
    rejects = (tmp_path / "mixed.rejects.csv").read_text(encoding="utf-8-sig").splitlines()
    assert rejects[1].startswith("A-2,招商银行,王五,北京市,abc,,2,")

    junk = _write(tmp_path / "junk.csv", "hello world\nnothing here\n")
    assert main(["import", str(junk)]) == 2
    assert "Traceback" not in capsys.readouterr().err
    assert main(["import", str(tmp_path / "missing.csv")]) == 2


def test_assign_and_cases_from_the_shell(db_file: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["staff", "add", "--name", "张三", "--role", "collector", "--team", "A"]) == 0
    csv = _write(tmp_path / "c.csv", "案件编号,委托方,客户姓名,地址,欠款金额\nA-1,招商银行,李四,上海市,100\n"
                                     "A-2,招商银行,王五,上海市,200\n")
    assert main(["import", str(csv)]) == 0
    assert main(["assign", "A-1", "--to", "张三"]) == 0
    assert main(["assign", "A-9", "--to", "张三"]) == 1
    capsys.readouterr()
    assert main(["cases", "--json", "--assignee", "1"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [(r["case_no"], r["assignee"], r["status"], r["amount_due"]) for r in rows] == [
        ("A-1", "张三", "assigned", "100.00")]
    assert main(["cases", "--json", "--status", "new"]) == 0
    assert [r["case_no"] for r in json.loads(capsys.readouterr().out)] == ["A-2"]

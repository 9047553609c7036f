"""Settings from the environment: list settings in the comma form and as JSON, the proxy URL, and a
bad value as one line naming the variable."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.cli import main
from bot.config import ConfigError, Settings, load_settings


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import os

    for key in list(os.environ):
        if key.startswith("FIELDBOT_"):
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)  # no stray .env is read


@pytest.mark.parametrize("value", ["supervisor,admin", " supervisor , admin ", '["supervisor","admin"]',
                                   '["supervisor", "admin"]'])
def test_escalation_comma_and_json(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("FIELDBOT_ESCALATION", value)
    assert load_settings().escalation == ["supervisor", "admin"]


@pytest.mark.parametrize("value", ["/a,/b", "/a;/b", '["/a","/b"]', "/a, /b,"])
def test_backup_dirs_comma_and_json(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("FIELDBOT_BACKUP_DIRS", value)
    assert load_settings().backup_dirs == [Path("/a"), Path("/b")]


def test_json_keeps_commas_inside_a_folder_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FIELDBOT_BACKUP_DIRS", '["/mnt/backup, old", "/b"]')
    assert load_settings().backup_dirs == [Path("/mnt/backup, old"), Path("/b")]


def test_defaults_and_dotenv(tmp_path: Path) -> None:
    assert Settings(_env_file=None).escalation == ["supervisor", "team_lead", "supervisors", "admin"]
    assert Settings(_env_file=None).backup_dirs == []
    (tmp_path / ".env").write_text("FIELDBOT_ESCALATION=supervisor,admin\nFIELDBOT_BACKUP_DIRS=/a,/b\n")
    settings = load_settings()
    assert settings.escalation == ["supervisor", "admin"] and settings.backup_dirs == [Path("/a"), Path("/b")]


@pytest.mark.parametrize(("name", "value"), [
    ("FIELDBOT_ESCALATION", "supervisor,boss"),
    ("FIELDBOT_ESCALATION", '["supervisor",'),
    ("FIELDBOT_ESCALATION", '{"a": 1}'),
    ("FIELDBOT_ESCALATION", ","),
    ("FIELDBOT_BACKUP_DIRS", "[/a,/b"),
    ("FIELDBOT_PROXY", "proxy.example.com:3128"),
    ("FIELDBOT_PROXY", "ftp://proxy.example.com:21"),
    ("FIELDBOT_PROXY", "http://proxy.example.com:99999"),
    ("FIELDBOT_PROXY", "socks5://proxy.example.com"),
    ("FIELDBOT_THROTTLE_RATE", "-1"),
])
def test_a_bad_value_is_one_line_naming_the_variable(monkeypatch: pytest.MonkeyPatch,
                                                     capsys: pytest.CaptureFixture[str], name: str, value: str) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError, match=name):
        load_settings()
    assert main(["run"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("fieldbot: configuration error: ") and name in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


@pytest.mark.parametrize("url", ["http://10.0.0.5:3128", "https://proxy.example.com:443",
                                 "socks5://user:secret@10.0.0.5:1080", "socks5h://10.0.0.5:1080", "http://10.0.0.5"])
def test_proxy_urls(monkeypatch: pytest.MonkeyPatch, url: str) -> None:
    monkeypatch.setenv("FIELDBOT_PROXY", url)
    settings = load_settings()
    assert settings.proxy == url
    assert "secret" not in (settings.proxy_for_display or "")


def test_no_proxy_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FIELDBOT_PROXY", "")
    assert load_settings().proxy is None
    assert Settings(_env_file=None).proxy is None


def test_a_bad_proxy_never_echoes_its_password(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FIELDBOT_PROXY", "socks5://user:hunter2@proxy.example.com")
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert "hunter2" not in str(caught.value)

"""End to end: ``fieldbot run`` as a real process, polling a Bot API stand-in over HTTP on 127.0.0.1."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bot.sandbox.botapi import FakeBotApi
from bot.sandbox.harness import TOKEN
from bot.sandbox.http_server import FakeBotApiServer
from bot.sandbox.updates import FakeUser, UpdateFactory
from tests.conftest import TestDatabases

USER = FakeUser(4242, "Li", language_code="en")


def _run_cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "bot.cli", *args], env=env, capture_output=True, text=True,
                          timeout=60, check=False)


def _env(tmp_path: Path, db_urls: TestDatabases, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FIELDBOT_")}
    env.update({
        "FIELDBOT_DATABASE_URL": db_urls.url(tmp_path / "fieldbot.db"),
        "FIELDBOT_DATA_DIR": str(tmp_path / "data"),
        "FIELDBOT_LOG_LEVEL": "INFO",
        **extra,
    })
    return env


def test_missing_token_is_one_line_naming_the_variable(tmp_path: Path, db_urls: TestDatabases) -> None:
    result = _run_cli(_env(tmp_path, db_urls), "run")
    assert result.returncode == 2
    assert "FIELDBOT_TOKEN" in result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_start_with_code_over_real_http(tmp_path: Path, db_urls: TestDatabases) -> None:
    env = _env(tmp_path, db_urls)
    added = _run_cli(env, "staff", "add", "--name", "Li Lei", "--role", "collector",
                     "--bot-username", "fieldbot_demo_bot")
    assert added.returncode == 0, added.stderr
    code = next(line.split(": ", 1)[1] for line in added.stdout.splitlines() if line.startswith("invite code"))
    assert f"https://t.me/fieldbot_demo_bot?start={code}" in added.stdout

    api = FakeBotApi()
    with FakeBotApiServer(api) as server:
        env.update({"FIELDBOT_TOKEN": TOKEN, "FIELDBOT_API_BASE_URL": server.base_url,
                    "FIELDBOT_API_FILE_URL": server.file_url})
        process = subprocess.Popen([sys.executable, "-m", "bot"], env=env, stdout=subprocess.PIPE,
                                   stderr=subprocess.STDOUT, text=True)
        try:
            api.push_update(UpdateFactory(api).command(USER, "/start", code))
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and not api.texts(USER.id):
                if process.poll() is not None:
                    break
                time.sleep(0.1)
            texts = api.texts(USER.id)
        finally:
            process.terminate()
            try:
                output, _ = process.communicate(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                output, _ = process.communicate()
    assert texts and texts[0].startswith("Welcome, Li Lei!"), output
    assert api.violations == []
    assert any(c.method == "getUpdates" for c in api.calls)
    assert "Traceback" not in output


@pytest.mark.parametrize("args", [["--help"], ["staff", "--help"], ["audit", "--help"]])
def test_cli_help(tmp_path: Path, db_urls: TestDatabases, args: list[str]) -> None:
    result = _run_cli(_env(tmp_path, db_urls), *args)
    assert result.returncode == 0 and "usage: fieldbot" in result.stdout


@pytest.mark.parametrize("form", ["comma", "json"])
def test_list_settings_start_the_bot(tmp_path: Path, db_urls: TestDatabases, form: str) -> None:
    """FIELDBOT_ESCALATION and FIELDBOT_BACKUP_DIRS as the README writes them (a,b) or as JSON."""
    dirs = [str(tmp_path / "backup-a"), str(tmp_path / "backup-b")]
    levels = ["supervisor", "admin"]
    if form == "comma":
        extra = {"FIELDBOT_ESCALATION": ",".join(levels), "FIELDBOT_BACKUP_DIRS": ",".join(dirs)}
    else:
        import json

        extra = {"FIELDBOT_ESCALATION": json.dumps(levels), "FIELDBOT_BACKUP_DIRS": json.dumps(dirs)}
    api = FakeBotApi(token=TOKEN)
    with FakeBotApiServer(api) as server:
        env = _env(tmp_path, db_urls, FIELDBOT_TOKEN=TOKEN, FIELDBOT_API_BASE_URL=server.base_url,
                   FIELDBOT_API_FILE_URL=server.file_url, **extra)
        process = subprocess.Popen([sys.executable, "-m", "bot.cli", "run"], env=env, stdout=subprocess.PIPE,
                                   stderr=subprocess.STDOUT, text=True)
        try:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and not any(c.method == "getUpdates" for c in api.calls):
                if process.poll() is not None:
                    break
                time.sleep(0.1)
            polling = any(c.method == "getUpdates" for c in api.calls)
        finally:
            process.terminate()
            try:
                output, _ = process.communicate(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                output, _ = process.communicate()
    assert polling, output
    assert "Traceback" not in output and "configuration error" not in output
    assert "fieldbot starting (polling)" in output

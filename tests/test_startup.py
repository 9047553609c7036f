"""Start-up that says what is wrong: an unreachable Bot API, a rejected token or a bad proxy is one line
naming the setting to check, never a traceback; the proxy reaches PTB's requests; errors in the
caller's language."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import update

from bot.app import build_application
from bot.clock import ManualClock
from bot.config import Settings
from bot.sandbox.botapi import FakeBotApi, FakeRequest
from bot.sandbox.harness import TOKEN, BotHarness, sandbox_settings
from bot.sandbox.http_server import FakeBotApiServer
from bot.sandbox.updates import FakeUser
from bot.storage.db import Database
from bot.storage.models import Role, Staff
from tests.conftest import TestDatabases
from tests.field_office import BOB, BOSS

WRONG_TOKEN = "7000000001:SOMEONE-ELSES-TOKEN"


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port  # nothing listens here any more


def _env(tmp_path: Path, db_urls: TestDatabases, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FIELDBOT_")}
    env.update({
        "FIELDBOT_DATABASE_URL": db_urls.url(tmp_path / "fieldbot.db"),
        "FIELDBOT_DATA_DIR": str(tmp_path / "data"),
        "FIELDBOT_LOG_LEVEL": "INFO",
        "FIELDBOT_TOKEN": TOKEN,
        **extra,
    })
    return env


def _run(tmp_path: Path, db_urls: TestDatabases, **extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "bot.cli", "run"], env=_env(tmp_path, db_urls, **extra), cwd=tmp_path,
                          capture_output=True, text=True, timeout=60, check=False)


def _one_line(result: subprocess.CompletedProcess[str]) -> str:
    err = result.stderr.strip()
    assert "Traceback" not in err, err
    assert len(err.splitlines()) == 1, err
    return err


def test_unreachable_bot_api(tmp_path: Path, db_urls: TestDatabases) -> None:
    port = _closed_port()
    result = _run(tmp_path, db_urls, FIELDBOT_API_BASE_URL=f"http://127.0.0.1:{port}/bot")
    assert result.returncode == 1
    line = _one_line(result)
    assert line.startswith(f"fieldbot: cannot reach the Bot API at http://127.0.0.1:{port}")
    assert "FIELDBOT_API_BASE_URL" in line and "FIELDBOT_PROXY" in line
    assert "sweep_leases" not in result.stderr + result.stdout


def test_unreachable_proxy(tmp_path: Path, db_urls: TestDatabases) -> None:
    port = _closed_port()
    result = _run(tmp_path, db_urls, FIELDBOT_PROXY=f"http://user:hunter2@127.0.0.1:{port}")
    assert result.returncode == 1
    line = _one_line(result)
    assert "through the proxy http://user:***@127.0.0.1" in line and "check FIELDBOT_PROXY" in line
    assert "hunter2" not in line


def test_rejected_token(tmp_path: Path, db_urls: TestDatabases) -> None:
    api = FakeBotApi(token=TOKEN)
    with FakeBotApiServer(api) as server:
        result = _run(tmp_path, db_urls, FIELDBOT_TOKEN=WRONG_TOKEN, FIELDBOT_API_BASE_URL=server.base_url,
                      FIELDBOT_API_FILE_URL=server.file_url)
    assert result.returncode == 1
    line = _one_line(result)
    assert "rejected the bot token (Unauthorized)" in line and "FIELDBOT_TOKEN" in line
    assert WRONG_TOKEN not in result.stderr and "SOMEONE-ELSES" not in result.stderr
    assert not any(call.method == "getUpdates" for call in api.calls)


def test_a_malformed_proxy_is_a_configuration_error(tmp_path: Path, db_urls: TestDatabases) -> None:
    result = _run(tmp_path, db_urls, FIELDBOT_PROXY="socks5//127.0.0.1:1080")
    assert result.returncode == 2
    assert "FIELDBOT_PROXY" in _one_line(result)


def test_the_stand_in_answers_401_for_another_token() -> None:
    api = FakeBotApi(token=TOKEN)
    with FakeBotApiServer(api) as server:
        import json
        import urllib.error
        import urllib.request

        with pytest.raises(urllib.error.HTTPError) as caught:
            urllib.request.urlopen(f"{server.base_url}{WRONG_TOKEN}/getMe", timeout=5)
        assert caught.value.code == 401
        with urllib.request.urlopen(f"{server.base_url}{TOKEN}/getMe", timeout=5) as answer:
            assert json.load(answer)["ok"] is True


@pytest.mark.parametrize("url", ["http://10.0.0.5:3128", "socks5://user:secret@10.0.0.5:1080"])
def test_the_proxy_reaches_both_requests(tmp_path: Path, url: str) -> None:
    settings = sandbox_settings(tmp_path, proxy=url)
    application = build_application(settings)
    updates_request, request = application.bot._request  # (getUpdates, everything else)
    for req in (request, updates_request):
        assert req._client_kwargs["proxy"] == url  # type: ignore[attr-defined]
        assert req._client._mounts  # type: ignore[attr-defined]  # httpx routes through the proxy


def test_no_proxy_no_mounts(tmp_path: Path) -> None:
    application = build_application(sandbox_settings(tmp_path))
    for req in application.bot._request:
        assert req._client_kwargs["proxy"] is None  # type: ignore[attr-defined]


async def test_shutdown_after_a_failed_start_leaves_the_database_alone(tmp_path: Path,
                                                                       db_urls: TestDatabases) -> None:
    settings: Settings = sandbox_settings(tmp_path, database_url=db_urls.url(tmp_path / "fieldbot.db", empty=True))
    database = Database(settings.database_url)  # never migrated: no tables at all
    application = build_application(settings, request=FakeRequest(FakeBotApi()), database=database)
    assert application.post_shutdown is not None
    await application.post_shutdown(application)  # what PTB runs after initialize() failed
    await database.dispose()


async def test_internal_error_in_the_callers_language(harness: BotHarness, monkeypatch: pytest.MonkeyPatch) -> None:
    from bot.i18n import translator
    from bot.services import visits

    boss = await harness.onboard(BOSS, "Boss", Role.SUPERVISOR, team="A")
    await harness.onboard(BOB, "Bob", Role.COLLECTOR, team="A", supervisor_id=boss)
    zhou = FakeUser(3010, "Zhou", language_code="zh-hans")  # a Chinese phone, English chosen in the bot
    zhou_id = await harness.onboard(zhou, "Zhou", Role.COLLECTOR, team="A", supervisor_id=boss)
    async with harness.db.write() as session:
        await session.execute(update(Staff).where(Staff.id == zhou_id).values(locale="en"))

    async def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("the database fell over")

    monkeypatch.setattr(visits, "visit_list", broken)
    english = translator("en")("error.internal")
    for user in (BOB, zhou):
        calls = await harness.send(harness.updates.command(user, "/visits"))
        assert harness.replies(calls, user.id) == [english]


async def test_an_error_in_the_access_gate_answers_in_the_telegram_language_and_stops(
        harness: BotHarness, monkeypatch: pytest.MonkeyPatch) -> None:
    from bot.i18n import translator
    from bot.services import gate

    async def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("the database fell over")

    monkeypatch.setattr(gate, "caller", broken)  # the gate's one read
    calls = await harness.send(harness.updates.command(BOB, "/start", "some-code"))
    assert harness.replies(calls, BOB.id) == [translator("en")("error.internal")]  # and nothing from any flow


async def test_errors_are_not_posted_in_groups(tmp_path: Path, clock: ManualClock,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    from bot.sandbox.updates import group_chat
    from bot.services import incidents

    harness = BotHarness(sandbox_settings(tmp_path, supervisors_chat_id=-100777), clock)
    await harness.start()
    try:
        await harness.onboard(BOSS, "Boss", Role.SUPERVISOR, team="A")

        async def broken(*args: object, **kwargs: object) -> None:
            raise RuntimeError("the database fell over")

        monkeypatch.setattr(incidents, "acknowledge", broken)
        calls = await harness.send(harness.updates.button(BOSS, "sos:ack:1", chat=group_chat(-100777), forge=True))
        assert [c for c in calls if c.method == "sendMessage"] == []
    finally:
        await harness.close()

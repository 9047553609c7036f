"""The console runs in the bot's own process: started with the application when FIELDBOT_WEB_PORT is set (off
otherwise), stopped at shutdown; ``fieldbot run`` serves it beside polling."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from bot.clock import ManualClock
from bot.config import ConfigError
from bot.sandbox.botapi import FakeBotApi
from bot.sandbox.harness import TOKEN, BotHarness, sandbox_settings
from bot.sandbox.http_server import FakeBotApiServer
from bot.sandbox.webapp import sign_init_data
from bot.web.server import ConsoleServer


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


async def test_the_application_starts_and_stops_the_console(tmp_path: Path, clock: ManualClock) -> None:
    port = _free_port()
    harness = BotHarness(sandbox_settings(tmp_path, web_port=port), clock)
    await harness.start()
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            assert (await client.get("/healthz")).json() == {"ok": True}
            init_data = sign_init_data(TOKEN, 424242, auth_date=clock.now())
            answer = await client.get("/api/me", headers={"Authorization": f"tma {init_data}"})
            assert answer.status_code == 403  # signed by Telegram for this bot, but nobody the office registered
            assert answer.headers["x-content-type-options"] == "nosniff"
            assert "server" not in answer.headers
    finally:
        assert harness.app.post_shutdown is not None
        await harness.app.post_shutdown(harness.app)  # what run_polling does after stopping
        await harness.close()
    assert not _listening(port)


async def test_the_console_is_off_without_a_port(harness: BotHarness) -> None:
    assert harness.settings.web_port == 0
    assert not any(c.get_name() == "fieldbot-console" for c in __import__("asyncio").all_tasks())


async def test_a_port_in_use_is_a_configuration_error(harness: BotHarness) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        server = ConsoleServer(harness.runtime, TOKEN, host="127.0.0.1", port=taken.getsockname()[1])
        with pytest.raises(ConfigError, match="FIELDBOT_WEB_PORT"):
            await server.start()
        await server.stop()


def test_fieldbot_run_serves_the_console(tmp_path: Path) -> None:
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("FIELDBOT_")}
    api = FakeBotApi()
    with FakeBotApiServer(api) as bot_api:
        env.update({"FIELDBOT_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'fieldbot.db'}",
                    "FIELDBOT_DATA_DIR": str(tmp_path / "data"), "FIELDBOT_TOKEN": TOKEN,
                    "FIELDBOT_API_BASE_URL": bot_api.base_url, "FIELDBOT_API_FILE_URL": bot_api.file_url,
                    "FIELDBOT_KEYS_DIR": os.environ.get("FIELDBOT_KEYS_DIR", str(tmp_path / "keys")),
                    "FIELDBOT_WEB_PORT": str(port), "FIELDBOT_WEB_URL": "https://console.example.cn/"})
        process = subprocess.Popen([sys.executable, "-m", "bot.cli", "run"], env=env, stdout=subprocess.PIPE,
                                   stderr=subprocess.STDOUT, text=True)
        try:
            deadline, page = time.monotonic() + 30, None
            while time.monotonic() < deadline and process.poll() is None:
                try:
                    page = httpx.get(f"http://127.0.0.1:{port}/", timeout=1)
                    break
                except httpx.HTTPError:
                    time.sleep(0.2)
            assert page is not None and page.status_code == 200, process.poll()
            assert "telegram-web-app.js" in page.text
            assert "frame-ancestors" in page.headers["content-security-policy"]
        finally:
            process.terminate()
            try:
                output, _ = process.communicate(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                output, _ = process.communicate()
    assert process.returncode == 0, output
    assert "Traceback" not in output
    assert not _listening(port)

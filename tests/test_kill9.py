"""``kill -9`` in the middle of sending: nothing is lost, at most one message goes out twice, and the
restarted process is sending again within seconds.

A real ``python -m bot`` polls the Bot API stand-in over HTTP (``FakeBotApiServer``). 600 urgent
messages wait in the outbox before it starts. It is killed with SIGKILL once some (not all) have
been delivered, and started again at once. The stand-in's rate limiter (30 messages a second) keeps
the first process busy long enough to be caught mid-send.

The takeover time is measured from the moment the new process is polling (its "Application started"
log line, written when its job queue and updater have started) to its first new ``sendMessage``.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bot.sandbox.botapi import FakeBotApi
from bot.sandbox.harness import TOKEN
from bot.sandbox.http_server import FakeBotApiServer
from bot.services import outbox
from bot.storage import migrate
from bot.storage.db import Database
from tests.conftest import TestDatabases

MESSAGES = 600
KILL_AFTER = 60  # delivered before the kill
TAKEOVER_LIMIT = 5.0  # seconds from the new process polling to its first send


class Process:
    """A ``python -m bot`` whose output lines are collected with the time each arrived."""

    def __init__(self, env: dict[str, str]) -> None:
        self.started = time.monotonic()
        self.popen = subprocess.Popen([sys.executable, "-m", "bot"], env=env, stdout=subprocess.PIPE,
                                      stderr=subprocess.STDOUT, text=True)
        self.lines: list[tuple[float, str]] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.popen.stdout is not None
        for line in self.popen.stdout:
            self.lines.append((time.monotonic(), line.rstrip("\n")))

    def first(self, text: str) -> float | None:
        return next((at for at, line in list(self.lines) if text in line), None)

    @property
    def output(self) -> str:
        return "\n".join(line for _, line in self.lines)

    def kill(self) -> None:
        self.popen.send_signal(signal.SIGKILL)
        self.popen.wait(timeout=10)
        self._reader.join(timeout=5)

    def stop(self) -> int:
        if self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()
        self._reader.join(timeout=5)
        return self.popen.returncode


def _env(tmp_path: Path, server: FakeBotApiServer, url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FIELDBOT_")}
    env.update({
        "FIELDBOT_DATABASE_URL": url,
        "FIELDBOT_DATA_DIR": str(tmp_path / "data"),
        "FIELDBOT_LOG_LEVEL": "INFO",
        "FIELDBOT_TOKEN": TOKEN,
        "FIELDBOT_API_BASE_URL": server.base_url,
        "FIELDBOT_API_FILE_URL": server.file_url,
    })
    return env


def _texts() -> list[str]:
    return [f"urgent {i:03d}" for i in range(MESSAGES)]


async def _queue(url: str) -> None:
    database = Database(url)
    try:
        await migrate.upgrade(database)
        now = datetime.now(UTC) - timedelta(seconds=1)
        async with database.write() as session:
            for i, text in enumerate(_texts()):
                await outbox.enqueue(session, chat_id=6000 + i % 60, text=text, kind="test", now=now,
                                     priority=outbox.Priority.URGENT, flush=False)
    finally:
        await database.dispose()


def _unsent(db_urls: TestDatabases, url: str) -> int:
    return int(db_urls.fetch(url, "SELECT count(*) FROM outbox WHERE sent_at IS NULL")[0][0])


def _delivered(api: FakeBotApi) -> Counter[str]:
    return Counter(call.params["text"] for call in api.sent("sendMessage"))


def _wait(condition: Callable[[], bool], seconds: float, step: float = 0.02) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(step)
    return False


def test_kill_9_mid_send_loses_nothing_duplicates_at_most_one_and_resumes_fast(tmp_path: Path,
                                                                               db_urls: TestDatabases) -> None:
    url = db_urls.url(tmp_path / "fieldbot.db")
    asyncio.run(_queue(url))
    api = FakeBotApi()
    with FakeBotApiServer(api) as server:
        env = _env(tmp_path, server, url)
        first = Process(env)
        try:
            caught = _wait(lambda: len(api.sent("sendMessage")) >= KILL_AFTER, 40)
            first.kill()
        finally:
            first.stop()
        at_kill = len(api.sent("sendMessage"))
        assert caught, first.output
        assert KILL_AFTER <= at_kill < MESSAGES, f"not caught mid-send: {at_kill} sent"
        assert _unsent(db_urls, url) > 0

        second = Process(env)
        try:
            assert _wait(lambda: second.first("Application started") is not None, 30), second.output
            up = second.first("Application started")
            assert up is not None
            baseline = len(api.sent("sendMessage"))  # the dead process's last requests are long answered
            assert _wait(lambda: len(api.sent("sendMessage")) > baseline, 15, step=0.01), second.output
            resumed = time.monotonic()
            # about 20 s on an idle machine (30 messages a second); the limit only guards against a hang
            assert _wait(lambda: set(_delivered(api)) == set(_texts()), 120, step=0.1), second.output
            assert _wait(lambda: _unsent(db_urls, url) == 0, 15, step=0.1)
        finally:
            code = second.stop()
    delivered = _delivered(api)
    duplicates = {text: n for text, n in delivered.items() if n > 1}
    print(f"killed after {at_kill} sends; duplicates {duplicates}; first send {resumed - up:.2f}s after polling "
          f"started ({resumed - second.started:.2f}s after the new process was launched)")
    assert set(delivered) == set(_texts())  # nothing lost
    assert sum(n - 1 for n in duplicates.values()) <= 1, duplicates  # one crash: at most one duplicate
    assert resumed - up <= TAKEOVER_LIMIT, f"first send {resumed - up:.2f}s after polling started"
    assert code == 0 and "Traceback" not in second.output, second.output
    assert api.violations == []

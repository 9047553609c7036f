"""``fieldbot worker`` sweeps and sends without taking updates; ``FIELDBOT_SWEEPS=false`` only answers updates.

Real processes against the Bot API stand-in over HTTP on 127.0.0.1, on one database.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import func, select

from bot.sandbox.botapi import FakeBotApi
from bot.sandbox.harness import TOKEN
from bot.sandbox.http_server import FakeBotApiServer
from bot.sandbox.updates import FakeUser, UpdateFactory
from bot.services import outbox
from bot.storage.db import Database
from bot.storage.models import OutboxMessage, SweepLease
from tests.conftest import TestDatabases

USER = FakeUser(4343, "Wu", language_code="en")


def _env(tmp_path: Path, server: FakeBotApiServer, db_urls: TestDatabases, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FIELDBOT_")}
    env.update({"FIELDBOT_DATABASE_URL": db_urls.url(tmp_path / "fieldbot.db"),
                "FIELDBOT_DATA_DIR": str(tmp_path / "data"), "FIELDBOT_KEYS_DIR": os.environ["FIELDBOT_KEYS_DIR"],
                "FIELDBOT_TOKEN": TOKEN, "FIELDBOT_API_BASE_URL": server.base_url,
                "FIELDBOT_API_FILE_URL": server.file_url, "FIELDBOT_LOG_LEVEL": "INFO", **extra})
    return env


def _queue(url: str, chat_id: int, text: str) -> None:
    async def work() -> None:
        database = Database(url)
        try:
            async with database.write() as session:
                await outbox.enqueue(session, chat_id=chat_id, text=text, kind="test", now=datetime.now(UTC))
        finally:
            await database.dispose()

    asyncio.run(work())


def _count(url: str, query: object) -> int:
    async def work() -> int:
        database = Database(url)
        try:
            async with database.read() as session:
                return int(await session.scalar(query) or 0)  # type: ignore[call-overload]
        finally:
            await database.dispose()

    return asyncio.run(work())


def _until(condition: object, seconds: float, process: subprocess.Popen[str]) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return True
        if process.poll() is not None:
            return False
        time.sleep(0.1)
    return False


def _stop(process: subprocess.Popen[str]) -> tuple[int, str]:
    process.send_signal(signal.SIGTERM)
    try:
        output, _ = process.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        output, _ = process.communicate()
    return process.returncode, output


def _upgrade(env: dict[str, str]) -> None:
    done = subprocess.run([sys.executable, "-m", "bot.cli", "db", "upgrade"], env=env, capture_output=True,
                          text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr


def test_the_worker_sends_the_outbox_and_never_asks_for_updates(tmp_path: Path, db_urls: TestDatabases) -> None:
    api = FakeBotApi()
    with FakeBotApiServer(api) as server:
        env = _env(tmp_path, server, db_urls)
        _upgrade(env)
        url = env["FIELDBOT_DATABASE_URL"]
        _queue(url, USER.id, "a reminder queued before the worker started")
        worker = subprocess.Popen([sys.executable, "-m", "bot.cli", "worker"], env=env, stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, text=True)
        try:
            sent = _until(lambda: api.texts(USER.id), 30, worker)
            _queue(url, USER.id, "and one queued while it runs")
            sent_again = _until(lambda: len(api.texts(USER.id)) == 2, 15, worker)
            leases = _count(url, select(func.count()).select_from(SweepLease))
        finally:
            code, output = _stop(worker)
    assert sent and sent_again, output
    assert api.texts(USER.id) == ["a reminder queued before the worker started", "and one queued while it runs"]
    assert leases == 1  # the worker held the sweep lease ...
    assert _count(url, select(func.count()).select_from(SweepLease)) == 0  # ... and gave it back on SIGTERM
    assert not any(c.method == "getUpdates" for c in api.calls)
    assert code == 0 and "Traceback" not in output, output


def test_an_instance_without_sweeps_answers_but_leaves_the_outbox_and_the_lease_to_a_worker(
        tmp_path: Path, db_urls: TestDatabases) -> None:
    api = FakeBotApi()
    with FakeBotApiServer(api) as server:
        env = _env(tmp_path, server, db_urls, FIELDBOT_SWEEPS="false")
        _upgrade(env)
        url = env["FIELDBOT_DATABASE_URL"]
        _queue(url, 777, "for the worker to send")
        bot = subprocess.Popen([sys.executable, "-m", "bot"], env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
        try:
            api.push_update(UpdateFactory(api).command(USER, "/start"))
            answered = _until(lambda: api.texts(USER.id), 30, bot)
            time.sleep(4)  # more than a sweep lease's life: nothing here would take it
            unsent = _count(url, select(func.count()).select_from(OutboxMessage).where(OutboxMessage.sent_at.is_(None)))
            leases = _count(url, select(func.count()).select_from(SweepLease))
        finally:
            code, output = _stop(bot)
    assert answered, output
    assert unsent == 1 and api.texts(777) == []
    assert leases == 0
    assert code == 0 and "Traceback" not in output, output

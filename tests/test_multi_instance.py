"""Past one machine, as deployed: two ``fieldbot webhook`` instances and a ``fieldbot worker`` on PostgreSQL
with the media in an S3-compatible store, behind a "load balancer" (this test) that sends each update to
one instance or the other.

A whole visit alternates between the instances (the photo reaches one, the recording the other), the
worker sends the review request, and the supervisor's files button on either instance delivers both
files from the shared store. The same update posted to both instances at the same moment is answered
once, with no error. Real processes over HTTP on 127.0.0.1: the Bot API stand-in, moto's S3 server
(standing in for MinIO, Ceph, OSS or COS) and the bot's own webhooks.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from bot.sandbox.botapi import FakeBotApi
from bot.sandbox.harness import TOKEN
from bot.sandbox.http_server import FakeBotApiServer
from bot.sandbox.updates import FakeUser, UpdateFactory
from bot.services import assignment, invites, staff
from bot.storage.db import Database
from bot.storage.models import Case, Role
from tests.conftest import PG_ENV, TestDatabases
from tests.field_office import PHOTO_1, VOICE

pytestmark = [pytest.mark.postgres,
              pytest.mark.skipif(not os.environ.get(PG_ENV), reason=f"{PG_ENV} is not set")]
boto3 = pytest.importorskip("boto3")
moto_server = pytest.importorskip("moto.server")

BOSS = FakeUser(5501, "Boss", language_code="en")
ANN = FakeUser(5502, "Ann", language_code="en")
SECRET = "multi-instance-secret"
REGION = "us-east-1"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def s3() -> Iterator[tuple[str, str]]:
    port = _free_port()
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint, bucket = f"http://127.0.0.1:{port}", f"fieldbot-{uuid.uuid4().hex[:10]}"
    boto3.client("s3", endpoint_url=endpoint, region_name=REGION, aws_access_key_id="testing",
                 aws_secret_access_key="testing").create_bucket(Bucket=bucket)
    try:
        yield endpoint, bucket
    finally:
        server.stop()


async def _seed(url: str) -> tuple[str, str, int]:
    """A supervisor and a collector (invite codes to bind their accounts) and a case for the collector."""
    from datetime import UTC, datetime

    from bot.services.calendar import WorkCalendar

    now = datetime.now(UTC)
    database = Database(url)
    try:
        async with database.write() as session:
            boss = await staff.add_staff(session, name="Boss", role=Role.SUPERVISOR, team="A", now=now)
            ann = await staff.add_staff(session, name="Ann", role=Role.COLLECTOR, team="A", supervisor_id=boss.id,
                                        now=now)
            codes = (await invites.create_invite(session, boss.id, now=now),
                     await invites.create_invite(session, ann.id, now=now))
            case = Case(bank="招商银行", case_no="MI-1", debtor_name="李四", address="上海市浦东新区世纪大道100号",
                        amount_due_fen=1234560, status="new", created_at=now, updated_at=now,
                        lat=31.2304, lon=121.4737)
            session.add(case)
            await session.flush()
            await assignment.assign_cases(session, [case.id], ann.id, actor=None, reason="test", now=now,
                                          calendar=WorkCalendar())
            return codes[0], codes[1], case.id
    finally:
        await database.dispose()


def _post(port: int, update: dict[str, Any]) -> int:
    request = urllib.request.Request(f"http://127.0.0.1:{port}/telegram", data=json.dumps(update).encode(),
                                     headers={"Content-Type": "application/json",
                                              "X-Telegram-Bot-Api-Secret-Token": SECRET})
    with urllib.request.urlopen(request, timeout=10) as answer:
        return int(answer.status)


def _until(condition: Callable[[], bool], seconds: float, processes: list[subprocess.Popen[str]]) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        if any(p.poll() is not None for p in processes):
            return False
        time.sleep(0.05)
    return False


def _listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def test_two_webhook_instances_and_a_worker_share_one_visit(tmp_path: Path, s3: tuple[str, str]) -> None:
    databases = TestDatabases(os.environ[PG_ENV])
    url = databases.url(tmp_path / "fieldbot.db")  # a fresh, migrated PostgreSQL database
    endpoint, bucket = s3
    boss_code, ann_code, case_id = asyncio.run(_seed(url))
    api = FakeBotApi()
    updates = UpdateFactory(api)
    processes: list[subprocess.Popen[str]] = []
    outputs: list[str] = []
    try:
        with FakeBotApiServer(api) as server:
            base = {k: v for k, v in os.environ.items() if not k.startswith("FIELDBOT_")}
            base.update({"FIELDBOT_DATABASE_URL": url, "FIELDBOT_DATA_DIR": str(tmp_path / "data"),
                         "FIELDBOT_KEYS_DIR": os.environ["FIELDBOT_KEYS_DIR"], "FIELDBOT_TOKEN": TOKEN,
                         "FIELDBOT_API_BASE_URL": server.base_url, "FIELDBOT_API_FILE_URL": server.file_url,
                         "FIELDBOT_MEDIA_URL": f"s3://{bucket}/office", "FIELDBOT_S3_ENDPOINT": endpoint,
                         "FIELDBOT_S3_REGION": REGION, "FIELDBOT_S3_ACCESS_KEY": "testing",
                         "FIELDBOT_S3_SECRET_KEY": "testing", "FIELDBOT_LOG_LEVEL": "INFO",
                         "FIELDBOT_THROTTLE_RATE": "0"})
            ports = [_free_port(), _free_port()]
            for n, port in enumerate(ports):
                env = {**base, "FIELDBOT_SWEEPS": "false", "FIELDBOT_DATA_DIR": str(tmp_path / f"data-{n}")}
                processes.append(subprocess.Popen(
                    [sys.executable, "-m", "bot.cli", "webhook", "--url", "https://bot.example.com/telegram",
                     "--listen", "127.0.0.1", "--port", str(port), "--path", "telegram", "--secret", SECRET],
                    env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
            processes.append(subprocess.Popen([sys.executable, "-m", "bot.cli", "worker"],
                                              env={**base, "FIELDBOT_DATA_DIR": str(tmp_path / "data-worker")},
                                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
            assert _until(lambda: all(_listening(p) for p in ports), 60, processes), "the webhooks did not start"

            def step(port: int, update: dict[str, Any], chat: int = ANN.id) -> None:
                before = len(api.texts(chat)) + len([c for c in api.calls if c.params.get("chat_id") == chat])
                assert _post(port, update) == 200
                assert _until(lambda: len(api.texts(chat)) + len(
                    [c for c in api.calls if c.params.get("chat_id") == chat]) > before, 20, processes), update
                time.sleep(0.2)  # the step's last replies

            step(ports[0], updates.command(BOSS, "/start", boss_code), BOSS.id)
            step(ports[1], updates.command(ANN, "/start", ann_code))
            photo_id, voice_id = "mi-photo", "mi-voice"
            api.register_file(photo_id, "u-mi-photo", size=len(PHOTO_1), content=PHOTO_1, kind="photo")
            api.register_file(voice_id, "u-mi-voice", size=len(VOICE), content=VOICE, kind="voice")
            from datetime import datetime, timedelta
            from zoneinfo import ZoneInfo

            promised = (datetime.now(ZoneInfo("Asia/Shanghai")) + timedelta(days=7)).strftime("%Y-%m-%d")
            walk: list[Callable[[], dict[str, Any]]] = [  # built when sent: a button is on the latest message
                lambda: updates.button(ANN, f"v:in:{case_id}", forge=True),
                lambda: updates.location(ANN, 31.2306, 121.4739),
                lambda: updates.button(ANN, "v:dur:60"),
                lambda: updates.button(ANN, "v:code:PTP"),
                lambda: updates.text(ANN, "1,200元"),
                lambda: updates.text(ANN, promised),
                lambda: updates.photo(ANN, photo_id, "u-mi-photo", size=len(PHOTO_1)),  # to the first instance
                lambda: updates.voice(ANN, voice_id, "u-mi-voice", size=len(VOICE)),  # to the second
                lambda: updates.button(ANN, "v:done"),
                lambda: updates.button(ANN, "v:file"),
            ]
            for n, make in enumerate(walk):
                step(ports[n % 2], make())
            assert any("filed" in t.lower() for t in api.texts(ANN.id)), api.texts(ANN.id)

            # the worker sends the review request, with the files button
            def files_button() -> str | None:
                for call in api.calls:
                    markup = call.params.get("reply_markup")
                    if call.params.get("chat_id") == BOSS.id and isinstance(markup, dict):
                        for row in markup.get("inline_keyboard", []):
                            for button in row:
                                if str(button.get("callback_data", "")).startswith("rv:files:"):
                                    return str(button["callback_data"])
                return None

            assert _until(lambda: files_button() is not None, 30, processes), "no review request"
            data = files_button()
            assert data is not None
            sent_before = len(api.calls)
            assert _post(ports[1], updates.button(BOSS, data)) == 200
            assert _until(lambda: len([c for c in api.calls[sent_before:] if c.method == "sendDocument"
                                       and c.params.get("chat_id") == BOSS.id]) >= 2, 20, processes)
            delivered = [c.params["document"]["sha256"] for c in api.calls[sent_before:]
                         if c.method == "sendDocument" and c.params.get("chat_id") == BOSS.id]
            assert sorted(delivered) == sorted([hashlib.sha256(PHOTO_1).hexdigest(), hashlib.sha256(VOICE).hexdigest()])

            # the same update at both instances at the same moment: applied once, answered once, no error
            approve = data.replace("rv:files:", "rv:ok:")
            same = updates.button(BOSS, approve, forge=True)
            before = len(api.calls)
            results: list[int] = []
            threads = [threading.Thread(target=lambda p=p: results.append(_post(p, same))) for p in ports]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            time.sleep(2.0)
            answers = [c for c in api.calls[before:] if c.params.get("chat_id") == BOSS.id
                       and c.method in ("sendMessage", "editMessageText")]
            assert results == [200, 200]
            assert len(answers) == 1 and "approved" in answers[0].params["text"].lower(), answers
            assert not [t for t in api.texts(ANN.id) + api.texts(BOSS.id) if "went wrong" in t.lower()]
            approvals = databases.fetch(url, "SELECT count(*) FROM audit_log WHERE action = ?", "visit.approved")
            assert approvals == [(1,)]
            assert api.violations == []
    finally:
        for process in processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in processes:
            try:
                output, _ = process.communicate(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                output, _ = process.communicate()
            outputs.append(output)
        databases.drop_all()
    for output in outputs:
        assert "Traceback" not in output, output[-3000:]

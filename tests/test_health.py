"""The machine's health: ``status`` against known rows, outages after a gap (and not after a restart),
exactly once when two processes come back together, ``fieldbot status --check`` and ``/status``."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import delete, func, select

from bot.cli import main
from bot.clock import ManualClock, SystemClock
from bot.i18n import translator
from bot.runtime import Runtime
from bot.sandbox.harness import BotHarness, sandbox_settings
from bot.services import audit, health, leases, outbox
from bot.storage import migrate
from bot.storage.db import Database
from bot.storage.models import AuditEntry, Backup, Instance, Outage, OutboxMessage, Role, Staff
from tests.conftest import TestDatabases
from tests.field_office import ADMIN, ANN, BOSS, LEAD, ZED

EN = translator("en")
NOW = datetime(2026, 11, 2, 1, 0, tzinfo=UTC)
UTC_ZONE = ZoneInfo("UTC")


async def _count(database: Database, model: type, *where: object) -> int:
    async with database.read() as session:
        return int(await session.scalar(select(func.count()).select_from(model).where(*where)) or 0)  # type: ignore[arg-type]


def _backup(finished: datetime, status: str = "ok", error: str | None = None) -> Backup:
    return Backup(backup_id=f"b-{finished:%H%M%S}-{status}", started_at=finished - timedelta(minutes=2),
                  finished_at=finished, status=status, targets=["/mnt/nas"], error=error)


def _message(chat: int, created: datetime, priority: int, *, sent: bool = False, failed: bool = False) -> OutboxMessage:
    return OutboxMessage(chat_id=chat, kind="test", priority=priority, payload={"text": "x"}, created_at=created,
                         next_attempt_at=created, sent_at=created if sent else None,
                         failed_at=created if failed else None)


# ---- status ---------------------------------------------------------------------------------------------------


async def test_status_reads_backlog_backups_heartbeat_audit_and_outages(database: Database, tmp_path: Path) -> None:
    settings = sandbox_settings(tmp_path)
    async with database.write() as s:
        s.add_all([_message(1, NOW - timedelta(minutes=10), outbox.Priority.NORMAL),
                   _message(2, NOW - timedelta(minutes=4), outbox.Priority.ALERT),
                   _message(3, NOW - timedelta(minutes=1), outbox.Priority.BULK),
                   _message(4, NOW - timedelta(hours=1), outbox.Priority.ALERT, sent=True),
                   _message(5, NOW - timedelta(hours=2), outbox.Priority.NORMAL, failed=True)])
        s.add_all([_backup(NOW - timedelta(hours=5)),
                   _backup(NOW - timedelta(hours=1), status="failed", error="disk full on /mnt/nas")])
        s.add(Outage(down_since=NOW - timedelta(hours=3), back_at=NOW - timedelta(hours=2),
                     repair_due_at=NOW + timedelta(hours=9)))
        await audit.record(s, action="test.one", object_type="test", at=NOW)
        await audit.record(s, action="test.two", object_type="test", at=NOW)
    await leases.heartbeat(database, "proc-a", now=NOW - timedelta(seconds=3))

    async with database.read() as s:
        state = await health.status(s, settings, NOW)

    assert (state.outbox_pending, state.outbox_pending_alerts, state.outbox_failed) == (3, 1, 1)
    assert state.outbox_oldest_pending_at == NOW - timedelta(minutes=10)
    assert state.last_backup is not None and state.last_backup.status == "failed"
    assert state.last_backup.error == "disk full on /mnt/nas"
    assert state.last_good_backup_at == NOW - timedelta(hours=5)
    assert state.heartbeat_at == NOW - timedelta(seconds=3) and state.live_instances == 1
    assert (state.lease_holder, state.lease_expires_at) == ("proc-a", NOW - timedelta(seconds=3) + leases.TTL)
    assert state.audit_head == 2
    assert state.schema_revision == migrate.head_revision()
    if database.sqlite:  # the file's size; PostgreSQL's files are the server's
        assert state.database_bytes is not None and state.database_bytes > 0
    else:
        assert state.database_bytes is None
    assert state.disk_total is not None and state.disk_free is not None and 0 < state.disk_free <= state.disk_total
    assert [o.down_since for o in state.open_outages] == [NOW - timedelta(hours=3)]
    assert health.problems(state) == []  # alive 3 s ago, a good backup 5 hours ago

    shown = health.lines(EN, state, UTC_ZONE)
    assert "Outbox: 3 pending (1 alerts/urgent), oldest waiting 10 minutes; 1 failed" in shown
    assert any(line.startswith("Backup: FAILED") and "disk full on /mnt/nas" in line for line in shown)
    assert any(line.startswith("Last successful backup:") and "5 hours ago" in line for line in shown)
    assert "Audit log: head at entry 2" in shown
    assert any(line.startswith("Outage:") and "met" in line for line in shown)

    later = NOW + timedelta(hours=22)  # the good backup is now 27 hours old, the process long gone
    async with database.read() as s:
        stale = await health.status(s, settings, later)
    assert [key for key, _ in health.problems(stale)] == ["status.check.down", "status.check.backup_old"]
    assert stale.open_outages == []  # its 12-hour window has passed
    line = health.problem_line(EN, stale, UTC_ZONE)
    assert "down for 22 hours" in line and "over 26 hours" in line


# ---- outages --------------------------------------------------------------------------------------------------


async def _alive(harness: BotHarness) -> None:
    """What the heartbeat job does every second in a running process."""
    await leases.heartbeat(harness.db, harness.runtime.instance_id, now=harness.clock.now())


def _outage_notices(harness: BotHarness, user: object) -> list[str]:
    return [t for t in harness.api.texts(user.id) if t.startswith("⚠️ fieldbot was down")]  # type: ignore[attr-defined]


async def test_a_restart_after_seconds_is_no_outage_and_two_days_down_is_one(harness: BotHarness,
                                                                             office: dict[str, int]) -> None:
    await _alive(harness)
    assert await health.sweep(harness.runtime) == 0  # the first run only sets the marker
    harness.clock.advance(seconds=5)
    await harness.restart()  # a normal restart: the old process released its row
    await _alive(harness)
    assert await health.sweep(harness.runtime) == 0
    assert await _count(harness.db, Outage) == 0

    last_seen = harness.clock.now()
    await harness.stop()  # down for two days: the marker remembers when it was last seen alive
    harness.clock.advance(days=2)
    await harness.start()
    back = harness.clock.now()
    await _alive(harness)
    harness.clock.advance(seconds=5)  # the health sweep's first run, 5 s after the start
    assert await health.sweep(harness.runtime) == 1
    async with harness.db.read() as s:
        outage = (await s.scalars(select(Outage))).one()
    assert (outage.down_since, outage.back_at) == (last_seen, back)
    assert outage.repair_due_at == last_seen + timedelta(hours=12) and outage.notified_at == harness.clock.now()
    assert await _count(harness.db, AuditEntry, AuditEntry.action == "system.outage") == 1

    await harness.deliver_outbox()
    for person in (BOSS, ZED, ADMIN):  # every supervisor (both teams) and the admin
        notices = _outage_notices(harness, person)
        assert len(notices) == 1, person
        assert "(2 days)" in notices[0] and notices[0].endswith(": not met.")
    assert _outage_notices(harness, ANN) == [] and _outage_notices(harness, LEAD) == []
    assert await health.sweep(harness.runtime) == 0  # the next run finds nothing new
    assert await _count(harness.db, Outage) == 1


async def test_after_a_kill_the_last_heartbeat_starts_the_repair_clock(harness: BotHarness,
                                                                       office: dict[str, int]) -> None:
    await _alive(harness)
    await health.sweep(harness.runtime)
    harness.clock.advance(seconds=30)
    await _alive(harness)
    last_beat = harness.clock.now()
    harness._app = None  # kill -9: no shutdown, its instance row stays
    harness.clock.advance(hours=3)
    await harness.start()
    back = harness.clock.now()
    await _alive(harness)
    harness.clock.advance(seconds=5)
    assert await health.sweep(harness.runtime) == 1
    async with harness.db.read() as s:
        outage = (await s.scalars(select(Outage))).one()
    assert (outage.down_since, outage.back_at) == (last_beat, back)
    await harness.deliver_outbox()
    notice = _outage_notices(harness, BOSS)
    assert len(notice) == 1 and "(3 hours)" in notice[0] and notice[0].endswith(": met.")


async def test_two_processes_coming_back_at_once_record_one_outage(any_database: Database, tmp_path: Path) -> None:
    url = any_database.url
    async with any_database.write() as s:
        for n, (role, active) in enumerate([(Role.SUPERVISOR, True), (Role.SUPERVISOR, True), (Role.ADMIN, True),
                                            (Role.COLLECTOR, True), (Role.SUPERVISOR, False)]):
            s.add(Staff(name=f"p{n}", role=role.value, team="A", active=active, locale="zh_CN", created_at=NOW,
                        telegram_user_id=9000 + n))
    clock = ManualClock(NOW)
    # the process that went down, then two new ones that come back at the same moment
    old, *runtimes = [Runtime(settings=sandbox_settings(tmp_path, database_url=url), db=Database(url), clock=clock)
                      for _ in range(3)]
    try:
        await leases.heartbeat(old.db, old.instance_id, now=NOW)
        assert await health.sweep(old) == 0
        await old.db.dispose()
        clock.advance(days=2)
        for runtime in runtimes:
            await leases.heartbeat(runtime.db, runtime.instance_id, now=clock.now())
        found = await asyncio.gather(*(health.sweep(runtime) for runtime in runtimes))
        assert sorted(found) == [0, 1]

        down_since = NOW  # and the same outage recorded directly by two transactions at once

        async def record(runtime: Runtime) -> Outage | None:
            async with runtime.db.write() as s:
                return await health.record_outage(s, down_since=down_since, back_at=NOW + timedelta(days=2),
                                                  now=clock.now(), tz=runtime.tz)

        assert await asyncio.gather(*(record(runtime) for runtime in runtimes)) == [None, None]
    finally:
        for runtime in runtimes:
            await runtime.db.dispose()

    assert await _count(any_database, Outage) == 1
    assert await _count(any_database, AuditEntry, AuditEntry.action == "system.outage") == 1
    async with any_database.read() as s:
        chats = sorted(await s.scalars(select(OutboxMessage.chat_id).where(OutboxMessage.kind == "system.outage")))
        texts = list(await s.scalars(select(OutboxMessage.payload).where(OutboxMessage.kind == "system.outage")))
    assert chats == [9000, 9001, 9002]  # the active supervisors and the admin, once each
    assert all("12 小时修复时限" in body["text"] for body in texts)


# ---- fieldbot status --------------------------------------------------------------------------------------------


@pytest.fixture
def status_db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, db_urls: TestDatabases) -> Database:
    for key in ("FIELDBOT_TOKEN", "FIELDBOT_DATABASE_URL", "FIELDBOT_DATA_DIR"):
        monkeypatch.delenv(key, raising=False)
    url = db_urls.url(tmp_path / "fieldbot.db")
    monkeypatch.setenv("FIELDBOT_DATABASE_URL", url)
    monkeypatch.setenv("FIELDBOT_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("FIELDBOT_DEFAULT_LOCALE", "en")
    monkeypatch.chdir(tmp_path)

    async def upgrade() -> None:
        database = Database(url)
        try:
            await migrate.upgrade(database)
        finally:
            await database.dispose()

    asyncio.run(upgrade())
    return Database(url)


def _state(database: Database, *, beat_ago: timedelta | None, backup_ago: timedelta | None) -> None:
    async def go() -> None:
        now = SystemClock().now()
        try:
            async with database.write() as s:
                await s.execute(delete(Backup))
                await s.execute(delete(Instance))
                if backup_ago is not None:
                    s.add(_backup(now - backup_ago))
            if beat_ago is not None:
                await leases.heartbeat(database, "proc-cron", now=now - beat_ago)
        finally:
            await database.dispose()

    asyncio.run(go())


def test_status_check_exit_codes(status_db: Database, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _state(status_db, beat_ago=timedelta(seconds=2), backup_ago=timedelta(hours=3))
    assert main(["status", "--check"]) == 0
    assert capsys.readouterr().out.startswith("OK: last seen alive")

    _state(status_db, beat_ago=timedelta(minutes=10), backup_ago=timedelta(hours=3))
    assert main(["status", "--check"]) == 1
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and "PROBLEM: fieldbot has been down for 10 minutes" in out

    _state(status_db, beat_ago=timedelta(seconds=2), backup_ago=timedelta(hours=27))
    assert main(["status", "--check"]) == 1
    assert "the last successful backup is 27 hours old" in capsys.readouterr().out

    _state(status_db, beat_ago=None, backup_ago=None)
    assert main(["status", "--check"]) == 1
    out = capsys.readouterr().out
    assert "no fieldbot process has ever run" in out and "no successful backup yet" in out


def test_status_for_people_and_scripts(status_db: Database, capsys: pytest.CaptureFixture[str]) -> None:
    _state(status_db, beat_ago=timedelta(seconds=1), backup_ago=timedelta(hours=3))
    assert main(["status"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("Version: ") and any(line.startswith("Backup: ok at") for line in out)
    assert "Outages: none recorded" in out and "Traceback" not in "\n".join(out)
    assert main(["status", "--json"]) == 0
    body = json.loads(capsys.readouterr().out)
    assert body["live_instances"] == 1 and body["problems"] == [] and body["lease_holder"] == "proc-cron"


@pytest.mark.sqlite_only("a missing or empty SQLite file")
def test_status_without_a_database_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("FIELDBOT_DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path / 'nowhere.db'}")
    monkeypatch.setenv("FIELDBOT_DEFAULT_LOCALE", "en")
    monkeypatch.chdir(tmp_path)
    assert main(["status", "--check"]) == 1
    assert capsys.readouterr().out.strip() == f"No database file at {tmp_path / 'nowhere.db'}"
    assert not (tmp_path / "nowhere.db").exists()
    (tmp_path / "empty.db").write_bytes(b"")  # a file that is no fieldbot database
    monkeypatch.setenv("FIELDBOT_DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path / 'empty.db'}")
    assert main(["status"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("Cannot read the database:") and "Traceback" not in err


# ---- /status ----------------------------------------------------------------------------------------------------


async def test_status_command_answers_the_admin_and_refuses_others(harness: BotHarness,
                                                                   office: dict[str, int]) -> None:
    await _alive(harness)
    reply = harness.replies(await harness.send(harness.updates.command(ADMIN, "/status")), ADMIN.id)
    assert len(reply) == 1
    assert reply[0].startswith("🩺 fieldbot status\nVersion: ") and "Heartbeat: newest" in reply[0]
    assert "Outbox: " in reply[0] and "Backup: none yet" in reply[0]
    for person, staff_id in ((ANN, office["ann"]), (BOSS, office["boss"])):
        refused = harness.replies(await harness.send(harness.updates.command(person, "/status")), person.id)
        assert refused == [EN("error.forbidden")]
        assert await _count(harness.db, AuditEntry, AuditEntry.actor_id == staff_id,
                            AuditEntry.action.like("refused.%")) == 1

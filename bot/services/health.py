"""The machine's health (``fieldbot status``, ``/status``) and the record of times the bot was down.

**Status.** :func:`status` reads, in a handful of small indexed queries, what an operator asks first:
the version, the database and its schema revision, the last backup and its age, the newest heartbeat
of a running process and who holds the sweep lease, when the sweeps last ran (:class:`SweepRuns`, read
from what they write anyway), the outbox backlog, free disk space under the data folder, the audit
log's head against its checkpoint file and the outages whose 12-hour repair window still runs.
:func:`problems` is what ``fieldbot status --check`` exits 1 for: no process seen alive for
:data:`GAP`, no successful backup within :data:`BACKUP_MAX_AGE`, or an audit log that no longer holds
the entry its checkpoint file recorded (cut short or rewritten), or a checkpoint file that cannot be
trusted. A cron job on another machine runs it, so someone hears about it while the bot itself cannot
say anything.

**Outages.** The SOP repairs a system failure within 12 hours. The health sweep (every 60 s, in the
process holding the sweep lease) keeps a marker of the last moment the bot was seen alive: the
:data:`ALIVE` row of ``sweep_leases`` (its ``expires_at`` is that moment). Instance heartbeats alone
cannot tell: a clean shutdown deletes its ``instances`` row and rows of dead processes are forgotten
after a day. At each run the sweep lays out what it knows of the time since the marker -- the marker,
each instance's span from ``started_at`` to its last ``heartbeat_at``, and now -- and every stretch
longer than :data:`GAP` in which no process was alive is an outage: from the last sign of life before
it to the first after it (the start of the process that came back). A restart after a 2-day stop is
found the same way as one after 3 minutes; a restart after a few seconds is not an outage.

Each outage is an :class:`~bot.storage.models.Outage` row (``down_since`` is unique: two processes
coming back at once record it once), a ``system.outage`` audit entry, and an urgent notice through the
outbox to every active supervisor and admin, all in one transaction.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from importlib import metadata
from typing import Any
from zoneinfo import ZoneInfo

from babel.dates import format_timedelta
from babel.numbers import format_decimal
from sqlalchemy import case, func, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from bot.config import Settings
from bot.i18n import N_, Translator
from bot.runtime import Runtime
from bot.services import audit, audit_checkpoint, outbox, policy
from bot.services.actor import StaffView
from bot.services.leases import HEARTBEAT_TTL, SWEEPS
from bot.services.people import t_for
from bot.services.retention import RUN_KIND as RETENTION_RUN
from bot.storage.models import (
    AuditEntry,
    Backup,
    Instance,
    Outage,
    OutboxMessage,
    ReportRun,
    Role,
    Staff,
    SweepLease,
)

GAP = timedelta(seconds=120)  # longer than this without a live process is an outage
BACKUP_MAX_AGE = timedelta(hours=26)  # a daily backup, with two hours to spare
REPAIR_WITHIN = timedelta(hours=12)  # the SOP's repair limit for a system failure
ALIVE = "health.alive"  # the sweep_leases row that remembers when the bot was last seen alive
NOTIFIED_ROLES = (Role.SUPERVISOR.value, Role.ADMIN.value)
BACKUP_LINES = {"ok": N_("status.backup.ok"), "failed": N_("status.backup.failed"),
                "running": N_("status.backup.running")}
CHECKPOINT_PROBLEMS = {"untrusted": N_("status.check.audit_untrusted"), "cut": N_("status.check.audit_cut"),
                       "diverged": N_("status.check.audit_diverged")}
SWEEP_NAMES = {"health": N_("status.sweep.health"), "checkpoint": N_("status.sweep.checkpoint"),
               "backup": N_("status.sweep.backup"), "retention": N_("status.sweep.retention")}


@dataclass(frozen=True)
class SweepRuns:
    """When the custody sweeps last ran, read from what each of them writes anyway."""

    health: datetime | None  # the health.alive marker, moved at every run (every minute)
    checkpoint: datetime | None  # the audit checkpoint file's modification time, set at every run (every minute)
    backup: datetime | None  # the newest backups row: a backup made or tried (daily sweep or ``fieldbot backup``)
    retention: datetime | None  # the newest monthly retention run (its report_runs row)

    def newest(self) -> datetime | None:
        moments = [m for m in (self.health, self.checkpoint, self.backup, self.retention) if m is not None]
        return max(moments) if moments else None


@dataclass(frozen=True)
class BackupInfo:
    status: str
    started_at: datetime
    finished_at: datetime | None
    targets: list[str]
    error: str | None


@dataclass(frozen=True)
class OutageInfo:
    id: int
    down_since: datetime
    back_at: datetime
    repair_due_at: datetime

    @property
    def duration(self) -> timedelta:
        return self.back_at - self.down_since

    @property
    def met(self) -> bool:
        """Whether the bot was back within the 12-hour repair limit."""
        return self.back_at <= self.repair_due_at

    @classmethod
    def of(cls, row: Outage) -> OutageInfo:
        return cls(row.id, row.down_since, row.back_at, row.repair_due_at)


@dataclass(frozen=True)
class Status:
    now: datetime
    version: str
    database: str  # the URL without its password
    database_bytes: int | None  # the SQLite file (and its WAL); None for PostgreSQL
    schema_revision: str | None
    last_backup: BackupInfo | None  # the newest run, whatever its outcome
    last_good_backup_at: datetime | None  # when the newest successful one finished
    heartbeat_at: datetime | None  # the newest heartbeat of any process
    live_instances: int  # processes with a fresh heartbeat
    last_alive_at: datetime | None  # the newest sign of life: a heartbeat or the health marker
    lease_holder: str | None
    lease_expires_at: datetime | None
    outbox_pending: int
    outbox_pending_alerts: int  # alerts and urgent messages among them
    outbox_oldest_pending_at: datetime | None
    outbox_failed: int
    disk_free: int | None
    disk_total: int | None
    audit_head: int | None
    open_outages: list[OutageInfo]  # outages whose 12-hour repair window still runs
    last_outage: OutageInfo | None
    audit_checkpoint: int | None  # the head the checkpoint file records (None: no file, or not trusted)
    audit_checkpoint_problem: str | None  # "untrusted" | "cut" | "diverged" (:data:`CHECKPOINT_PROBLEMS`)
    sweeps: SweepRuns
    last_sweep_at: datetime | None  # the newest of :attr:`sweeps`

    def as_json(self) -> dict[str, Any]:
        def plain(value: Any) -> Any:
            if isinstance(value, datetime):
                return value.isoformat()
            if isinstance(value, dict):
                return {k: plain(v) for k, v in value.items()}
            if isinstance(value, list):
                return [plain(v) for v in value]
            return value

        body: dict[str, Any] = plain(asdict(self))
        body["problems"] = [key for key, _ in problems(self)]
        return body


def _version() -> str:
    try:
        return metadata.version("fieldbot")
    except metadata.PackageNotFoundError:
        return "unknown"


def _database(url: str) -> tuple[str, int | None]:
    parsed = make_url(url)
    shown = parsed.render_as_string(hide_password=True)
    if parsed.get_backend_name() != "sqlite" or not parsed.database or parsed.database == ":memory:":
        return shown, None
    size = None
    for path in (parsed.database, f"{parsed.database}-wal"):
        if os.path.exists(path):
            size = (size or 0) + os.path.getsize(path)
    return shown, size


def missing_sqlite_file(url: str) -> str | None:
    """The path of a SQLite database file that does not exist (None for one that does, or PostgreSQL)."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database or parsed.database == ":memory:":
        return None
    return None if os.path.exists(parsed.database) else parsed.database


def _disk(settings: Settings) -> tuple[int | None, int | None]:
    try:
        usage = shutil.disk_usage(settings.data_dir)
    except OSError:  # no data folder (yet): nothing to measure
        return None, None
    return usage.free, usage.total


def _checkpoint(settings: Settings) -> tuple[audit.Head | None, bool, datetime | None]:
    """The checkpoint file's head, whether it is untrusted, and when the checkpoint sweep last ran."""
    path = audit_checkpoint.checkpoint_path(settings)
    try:
        ran = datetime.fromtimestamp(path.stat().st_mtime, UTC)
    except OSError:
        return None, False, None
    try:
        return audit_checkpoint.read(path), False, ran
    except audit_checkpoint.CheckpointError:
        return None, True, ran
    except audit.AuditKeyMissing:  # a process that did not load the key: nothing to check it with
        return None, False, ran


async def status(session: AsyncSession, settings: Settings, now: datetime) -> Status:
    """Everything ``fieldbot status`` and ``/status`` show, read in one transaction."""
    # the file first: an entry it names was committed before it was written, so the reads below see it
    checkpoint, untrusted, checkpoint_ran = _checkpoint(settings)
    revision = await session.scalar(text("SELECT version_num FROM alembic_version"))
    newest = await session.scalar(select(Backup).order_by(Backup.started_at.desc(), Backup.id.desc()).limit(1))
    good = await session.scalar(select(func.max(Backup.finished_at)).where(Backup.status == "ok"))
    heartbeat_at, live = (await session.execute(select(
        func.max(Instance.heartbeat_at),
        func.count(case((Instance.heartbeat_at >= now - HEARTBEAT_TTL, 1)))))).one()
    leases = {row.name: row for row in await session.scalars(
        select(SweepLease).where(SweepLease.name.in_((SWEEPS, ALIVE))))}
    unsent = OutboxMessage.sent_at.is_(None)  # the pending index's first column
    pending, alerts, oldest = (await session.execute(select(
        func.count(), func.count(case((OutboxMessage.priority <= outbox.Priority.URGENT, 1))),
        func.min(OutboxMessage.created_at)).where(unsent, OutboxMessage.failed_at.is_(None)))).one()
    failed = await session.scalar(select(func.count()).select_from(OutboxMessage).where(
        unsent, OutboxMessage.failed_at.is_not(None)))
    head = await session.scalar(select(func.max(AuditEntry.seq)))
    problem = "untrusted" if untrusted else None
    if checkpoint is not None and checkpoint.seq > 0:
        if checkpoint.seq > (head or 0):
            problem = "cut"
        elif await session.scalar(select(AuditEntry.hash).where(AuditEntry.seq == checkpoint.seq)) != checkpoint.hash:
            problem = "diverged"
    retention_ran = await session.scalar(select(func.max(ReportRun.created_at)).where(ReportRun.kind == RETENTION_RUN))
    open_rows = list(await session.scalars(select(Outage).where(Outage.repair_due_at > now)
                                           .order_by(Outage.down_since)))
    last = await session.scalar(select(Outage).order_by(Outage.down_since.desc()).limit(1))
    marker = leases.get(ALIVE)
    lease = leases.get(SWEEPS)
    signs = [moment for moment in (heartbeat_at, marker.expires_at if marker else None) if moment is not None]
    sweeps = SweepRuns(health=marker.expires_at if marker else None, checkpoint=checkpoint_ran,
                       backup=newest.started_at if newest is not None else None, retention=retention_ran)
    database, size = _database(settings.database_url)
    free, total = _disk(settings)
    return Status(
        now=now, version=_version(), database=database, database_bytes=size,
        schema_revision=str(revision) if revision is not None else None,
        last_backup=BackupInfo(newest.status, newest.started_at, newest.finished_at, list(newest.targets or []),
                               newest.error) if newest is not None else None,
        last_good_backup_at=good, heartbeat_at=heartbeat_at, live_instances=int(live or 0),
        last_alive_at=max(signs) if signs else None,
        lease_holder=lease.holder if lease is not None else None,
        lease_expires_at=lease.expires_at if lease is not None else None,
        outbox_pending=int(pending or 0), outbox_pending_alerts=int(alerts or 0), outbox_oldest_pending_at=oldest,
        outbox_failed=int(failed or 0), disk_free=free, disk_total=total,
        audit_head=int(head) if head is not None else None,
        open_outages=[OutageInfo.of(row) for row in open_rows],
        last_outage=OutageInfo.of(last) if last is not None else None,
        audit_checkpoint=checkpoint.seq if checkpoint is not None else None, audit_checkpoint_problem=problem,
        sweeps=sweeps, last_sweep_at=sweeps.newest(),
    )


async def status_for(session: AsyncSession, actor: StaffView | None, settings: Settings, now: datetime) -> Status:
    """:func:`status` for a person in the bot (``/status``): only roles the policy allows."""
    policy.require_role(actor, policy.Action.SYSTEM_STATUS)
    return await status(session, settings, now)


def problems(state: Status, *, gap: timedelta = GAP,
             backup_max_age: timedelta = BACKUP_MAX_AGE) -> list[tuple[str, dict[str, Any]]]:
    """What ``fieldbot status --check`` fails for, as (message id, parameters); empty when all is well."""
    found: list[tuple[str, dict[str, Any]]] = []
    if state.last_alive_at is None:
        found.append((N_("status.check.never_alive"), {}))
    elif state.now - state.last_alive_at > gap:
        found.append((N_("status.check.down"), {"at": state.last_alive_at, "age": state.now - state.last_alive_at}))
    if state.last_good_backup_at is None:
        found.append((N_("status.check.no_backup"), {}))
    elif state.now - state.last_good_backup_at > backup_max_age:
        found.append((N_("status.check.backup_old"), {"at": state.last_good_backup_at,
                                                     "age": state.now - state.last_good_backup_at}))
    if state.audit_checkpoint_problem is not None:
        found.append((CHECKPOINT_PROBLEMS[state.audit_checkpoint_problem],
                      {"seq": state.audit_checkpoint or 0, "have": state.audit_head or 0}))
    return found


# ---- how people read it ------------------------------------------------------------------------------------


def age(t: Translator, delta: timedelta) -> str:
    """A duration in words ("3 hours", "3小时")."""
    return str(format_timedelta(delta, locale=t.locale, threshold=1.5))


def size(t: Translator, count: int) -> str:
    value = float(count)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if value < 1024 or unit == "TB":
            return f"{format_decimal(round(value, 1), locale=t.locale)} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def _render(t: Translator, tz: ZoneInfo, params: dict[str, Any]) -> dict[str, Any]:
    shown: dict[str, Any] = {}
    for key, value in params.items():
        if isinstance(value, datetime):
            shown[key] = t.datetime(value, tz)
        elif isinstance(value, timedelta):
            shown[key] = age(t, value)
        else:
            shown[key] = value
    return shown


def problem_line(t: Translator, state: Status, tz: ZoneInfo) -> str:
    """The one line ``fieldbot status --check`` prints."""
    found = problems(state)
    if not found:
        return t("status.check.ok", at=t.datetime(state.last_alive_at, tz) if state.last_alive_at else "-")
    return "; ".join(t(key, **_render(t, tz, params)) for key, params in found)


def outage_text(t: Translator, outage: OutageInfo, tz: ZoneInfo) -> str:
    return t("outage.notice", start=t.datetime(outage.down_since, tz), end=t.datetime(outage.back_at, tz),
             duration=age(t, outage.duration), due=t.datetime(outage.repair_due_at, tz),
             verdict=t("outage.met") if outage.met else t("outage.not_met"))


def lines(t: Translator, state: Status, tz: ZoneInfo) -> list[str]:
    """One translated line per item, for people."""
    def when(moment: datetime) -> dict[str, str]:
        return {"at": t.datetime(moment, tz), "age": age(t, state.now - moment)}

    out = [t("status.version", version=state.version),
           t("status.database", url=state.database, size=size(t, state.database_bytes)
             if state.database_bytes is not None else "-"),
           t("status.schema", revision=state.schema_revision or "-")]
    backup = state.last_backup
    if backup is None:
        out.append(t("status.backup.none"))
    else:
        finished = backup.finished_at or backup.started_at
        out.append(t(BACKUP_LINES.get(backup.status, N_("status.backup.other")), status=backup.status,
                     targets=", ".join(backup.targets) or "-", error=backup.error or "-", **when(finished)))
        if backup.status != "ok":
            out.append(t("status.backup.last_good", **when(state.last_good_backup_at))
                       if state.last_good_backup_at else t("status.backup.never_good"))
    out.append(t("status.heartbeat", live=state.live_instances, **when(state.heartbeat_at))
               if state.heartbeat_at is not None else t("status.heartbeat.none"))
    if state.lease_holder is not None and state.lease_expires_at is not None:
        out.append(t("status.lease", holder=state.lease_holder[:12], until=t.datetime(state.lease_expires_at, tz)))
    else:
        out.append(t("status.lease.none"))
    out.append(t("status.sweeps", **when(state.last_sweep_at)) if state.last_sweep_at is not None
               else t("status.sweeps.none"))
    for name, key in SWEEP_NAMES.items():
        moment: datetime | None = getattr(state.sweeps, name)
        out.append(t("status.sweep", name=t(key), **when(moment)) if moment is not None
                   else t("status.sweep.never", name=t(key)))
    oldest = age(t, state.now - state.outbox_oldest_pending_at) if state.outbox_oldest_pending_at else "-"
    out.append(t("status.outbox", pending=state.outbox_pending, alerts=state.outbox_pending_alerts, oldest=oldest,
                 failed=state.outbox_failed))
    if state.disk_free is not None and state.disk_total is not None:
        out.append(t("status.disk", free=size(t, state.disk_free), total=size(t, state.disk_total),
                     percent=round(100 * state.disk_free / state.disk_total) if state.disk_total else 0))
    else:
        out.append(t("status.disk.unknown"))
    seq = state.audit_head if state.audit_head is not None else 0
    out.append(t("status.audit.checkpoint", seq=seq, checkpoint=state.audit_checkpoint)
               if state.audit_checkpoint is not None else t("status.audit", seq=seq))
    if state.audit_checkpoint_problem is not None:
        out.append(t(CHECKPOINT_PROBLEMS[state.audit_checkpoint_problem], seq=state.audit_checkpoint or 0, have=seq))
    if state.open_outages:
        out.extend(t("status.outage", **_outage_params(t, o, tz)) for o in state.open_outages)
    elif state.last_outage is not None:
        out.append(t("status.outage.last", **_outage_params(t, state.last_outage, tz)))
    else:
        out.append(t("status.outage.none"))
    return out


def _outage_params(t: Translator, outage: OutageInfo, tz: ZoneInfo) -> dict[str, str]:
    return {"start": t.datetime(outage.down_since, tz), "end": t.datetime(outage.back_at, tz),
            "duration": age(t, outage.duration), "due": t.datetime(outage.repair_due_at, tz),
            "verdict": t("outage.met") if outage.met else t("outage.not_met")}


# ---- outages -----------------------------------------------------------------------------------------------


async def gaps(session: AsyncSession, *, now: datetime, gap: timedelta = GAP) -> list[tuple[datetime, datetime]]:
    """Every stretch since the marker longer than ``gap`` in which no process was alive: (down since, back at)."""
    marker = await session.scalar(select(SweepLease.expires_at).where(SweepLease.name == ALIVE))
    if marker is None:  # the first run on this database: nothing to compare with
        return []
    spans = [(marker, marker), (now, now)]
    spans += [(start, max(start, beat)) for start, beat in (await session.execute(
        select(Instance.started_at, Instance.heartbeat_at))).tuples()]
    spans.sort()
    found: list[tuple[datetime, datetime]] = []
    end: datetime | None = None
    for start, stop in spans:
        if end is not None and end >= marker and start - end > gap:
            found.append((end, start))
        end = stop if end is None else max(end, stop)
    return found


async def record_outage(session: AsyncSession, *, down_since: datetime, back_at: datetime, now: datetime,
                        tz: ZoneInfo) -> Outage | None:
    """Record one outage with its audit entry and notices, in the caller's transaction; None if already known."""
    if await session.scalar(select(Outage.id).where(Outage.down_since == down_since)) is not None:
        return None
    row = Outage(down_since=down_since, back_at=back_at, repair_due_at=down_since + REPAIR_WITHIN, notified_at=now)
    try:
        async with session.begin_nested():  # a second process that came back at the same moment
            session.add(row)
            await session.flush()
    except IntegrityError:
        return None
    info = OutageInfo.of(row)
    await audit.record(session, action="system.outage", object_type="outage", object_id=row.id, at=now,
                       details={"down_since": down_since.isoformat(), "back_at": back_at.isoformat(),
                                "seconds": int(info.duration.total_seconds()),
                                "repair_due_at": info.repair_due_at.isoformat(), "met": info.met})
    people = await session.scalars(select(Staff).where(
        Staff.active.is_(True), Staff.role.in_(NOTIFIED_ROLES), Staff.telegram_user_id.is_not(None))
        .order_by(Staff.id))
    for person in people:
        assert person.telegram_user_id is not None
        await outbox.enqueue(session, chat_id=person.telegram_user_id, kind="system.outage", now=now,
                             priority=outbox.Priority.URGENT, text=outage_text(t_for(person), info, tz),
                             dedupe_key=f"outage:{row.id}:{person.id}")
    return row


async def detect(session: AsyncSession, *, now: datetime, holder: str, tz: ZoneInfo,
                 gap: timedelta = GAP) -> list[Outage]:
    """Record every outage since the last run, then move the marker to ``now`` (the caller's transaction)."""
    recorded = [row for down_since, back_at in await gaps(session, now=now, gap=gap)
                if (row := await record_outage(session, down_since=down_since, back_at=back_at, now=now,
                                               tz=tz)) is not None]
    marker = await session.get(SweepLease, ALIVE)
    if marker is None:
        try:
            async with session.begin_nested():
                session.add(SweepLease(name=ALIVE, holder=holder, expires_at=now))
                await session.flush()
        except IntegrityError:  # another process wrote the first marker at the same moment
            pass
    elif marker.expires_at < now:
        marker.holder, marker.expires_at = holder, now
    return recorded


async def sweep(runtime: Runtime) -> int:
    """The health sweep: outages since its last run are recorded and announced; returns how many."""
    async with runtime.db.write() as session:
        recorded = await detect(session, now=runtime.clock.now(), holder=runtime.instance_id, tz=runtime.tz)
    return len(recorded)

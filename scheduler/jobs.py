"""Repeating sweeps registered on PTB's JobQueue. The rows they act on live in the database.

A sweep that falls due while the bot is down simply runs at the next tick and finds everything that
fell due meanwhile: nothing depends on APScheduler keeping a job (its default 1-second misfire grace
would drop it). Each sweep is small and idempotent: it marks what it handled in the same transaction
as it queues the messages. Only the process holding the database lease runs them.

Every process also runs the ``heartbeat`` job each second, lease or not: it writes the process's
heartbeat (its outbox claims stay valid while it is fresh) and takes or renews the sweep lease (TTL
3 s). After a ``kill -9`` of the holder, another or a restarted process takes the sweeps over within
about 4 s, and the dead process's claimed outbox rows are due again 5 s after its last heartbeat.

The outbox is sent by the continuous sender (``scheduler/outbox_sender.py``, :func:`register_sender`),
which runs in every process, lease or not, from the job queue's first tick until shutdown: alerts
first, at Telegram's pace. An SOS handler and the emergency sweep wake it when they queue alerts.
The ``alerts`` and ``outbox`` sweeps drain the outbox unpaced only where no sender runs (``run_all``
in the tests and the demo); on the job queue the ``outbox`` job is the sender's watchdog.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from telegram.ext import Application, CallbackContext, ExtBot

from bot.context import RUNTIME_KEY
from bot.ratelimit import Pacer
from bot.runtime import Runtime
from bot.services import (
    assignment,
    daily_summary,
    deadlines,
    handover,
    incidents,
    leases,
    letters,
    outbox,
    promises,
    reports,
    team_view,
)
from scheduler.outbox_sender import OutboxSender, send_due, wake

log = logging.getLogger(__name__)

Sweep = Callable[[Runtime, ExtBot[Any]], Awaitable[int]]


async def emergency_sweep(runtime: Runtime, bot: ExtBot[Any]) -> int:
    """Escalate unacknowledged alarms, re-ping owners, run the visit safety timers."""
    policy = incidents.Policy.of(runtime.settings)
    now = runtime.clock.now()
    async with runtime.db.write() as session:
        escalated = await incidents.escalate_due(session, now=now, policy=policy)
        pinged = await incidents.reping_due(session, now=now, policy=policy)
        prompted, alarmed = await incidents.safety_due(session, now=now, policy=policy)
    count = escalated + pinged + prompted + alarmed
    if count and not wake(runtime):  # an escalation goes out now, not at the alert sweep's next tick
        await send_due(bot, runtime, max_priority=outbox.Priority.URGENT, batches=1)
    return count


async def handover_sweep(runtime: Runtime, bot: ExtBot[Any]) -> int:
    """Remind departing collectors; once a night, report cases left without an active assignee."""
    now = runtime.clock.now()
    async with runtime.db.write() as session:
        count = await handover.remind_due(session, now=now, calendar=runtime.calendar)
        local = runtime.calendar.local(now)
        if local.hour < NIGHTLY_CHECK_BEFORE_HOUR and await reports.claim_daily(session, "orphans", local.date(), now):
            count += await handover.report_orphans(session, now=now)
    return count


NIGHTLY_CHECK_BEFORE_HOUR = 6  # the orphan check runs once per night (its notice waits for the morning)


async def alert_sweep(runtime: Runtime, bot: ExtBot[Any]) -> int:
    """Alerts and urgent messages only: they never wait behind reminders or reports (no sender running)."""
    if wake(runtime):
        return 0
    return await send_due(bot, runtime, max_priority=outbox.Priority.URGENT)


async def outbox_sweep(runtime: Runtime, bot: ExtBot[Any]) -> int:
    """Everything less urgent: a slow upload or a long queue of reports never holds an alert up."""
    if wake(runtime):
        return 0
    return await send_due(bot, runtime, min_priority=outbox.Priority.URGENT + 1)


async def deadline_sweep(runtime: Runtime, bot: ExtBot[Any]) -> int:
    return await deadlines.run_due(runtime.db, now=runtime.clock.now(), calendar=runtime.calendar)


async def promise_sweep(runtime: Runtime, bot: ExtBot[Any]) -> int:
    async with runtime.db.write() as session:
        return await promises.follow_up(session, now=runtime.clock.now(), calendar=runtime.calendar)


async def report_sweep(runtime: Runtime, bot: ExtBot[Any]) -> int:
    async with runtime.db.write() as session:
        sent = await reports.send_due(session, now=runtime.clock.now(), calendar=runtime.calendar, media=runtime.media)
    return len(sent)


async def unassigned_sweep(runtime: Runtime, bot: ExtBot[Any]) -> int:
    async with runtime.db.write() as session:
        return await assignment.report_unassigned(session, now=runtime.clock.now())


async def review_wait_sweep(runtime: Runtime, bot: ExtBot[Any]) -> int:
    """Reports waiting over 4 working hours: their reviewing supervisor is reminded once a day."""
    async with runtime.db.write() as session:
        return await team_view.remind_waiting(session, now=runtime.clock.now(), calendar=runtime.calendar)


async def daily_summary_sweep(runtime: Runtime, bot: ExtBot[Any]) -> int:
    """The admins' summary of the day's completed and missed visits, once a working day from 18:30."""
    async with runtime.db.write() as session:
        return await daily_summary.send_due(session, now=runtime.clock.now(), calendar=runtime.calendar)


async def letter_sweep(runtime: Runtime, bot: ExtBot[Any]) -> int:
    """Registered letters: the supervisor is reminded 2 days before the 10-day term ends, and told when it has."""
    async with runtime.db.write() as session:
        return await letters.sweep(session, now=runtime.clock.now())


# name, sweep, interval in seconds. The deadline-like sweeps run before the outbox in one tick.
SWEEPS: list[tuple[str, Sweep, float]] = [
    ("emergency", emergency_sweep, 5.0),
    ("alerts", alert_sweep, 1.0),
    ("deadlines", deadline_sweep, 30.0),
    ("promises", promise_sweep, 300.0),
    ("reports", report_sweep, 300.0),
    ("unassigned", unassigned_sweep, 300.0),
    ("handover", handover_sweep, 300.0),
    ("review_wait", review_wait_sweep, 300.0),
    ("daily_summary", daily_summary_sweep, 300.0),
    ("letters", letter_sweep, 300.0),
    ("outbox", outbox_sweep, 2.0),
]


async def backup_sweep(runtime: Runtime, bot: ExtBot[Any]) -> int:
    from bot.services import backup

    return await backup.daily_sweep(runtime)


async def checkpoint_sweep(runtime: Runtime, bot: ExtBot[Any]) -> int:
    from bot.services import audit_checkpoint

    return await audit_checkpoint.sweep(runtime)


async def retention_sweep(runtime: Runtime, bot: ExtBot[Any]) -> int:
    from bot.services import retention

    return await retention.sweep(runtime)


async def health_sweep(runtime: Runtime, bot: ExtBot[Any]) -> int:
    from bot.services import health

    return await health.sweep(runtime)


async def prune_sweep(runtime: Runtime, bot: ExtBot[Any]) -> int:
    """Inbox and outbox rows done more than FIELDBOT_PRUNE_AFTER_DAYS ago go, a few batches a run."""
    from datetime import timedelta

    from bot.services import pruning

    pruned = await pruning.sweep(runtime.db, now=runtime.clock.now(),
                                 keep=timedelta(days=runtime.settings.prune_after_days))
    return pruned.total


# The custody sweeps (backups, the audit checkpoint, retention, outages, pruning the inbox and outbox)
# follow the real calendar and the machine's files: they run on the job queue only, not in ``run_all``'s
# one tick of the flows.
CUSTODY_SWEEPS: list[tuple[str, Sweep, float]] = [
    ("health", health_sweep, 60.0),
    ("checkpoint", checkpoint_sweep, 60.0),
    ("backup", backup_sweep, 600.0),
    ("retention", retention_sweep, 3600.0),
    ("prune", prune_sweep, 3600.0),
]


def _runtime(context: CallbackContext[Any, Any, Any, Any]) -> Runtime:
    runtime = context.application.bot_data[RUNTIME_KEY]
    assert isinstance(runtime, Runtime)
    return runtime


async def heartbeat(context: CallbackContext[Any, Any, Any, Any]) -> None:
    """This process is alive (its outbox claims stay valid) and, if it can, it holds the sweep lease."""
    runtime = _runtime(context)
    try:
        await leases.heartbeat(runtime.db, runtime.instance_id, now=runtime.clock.now(),
                               take_lease=runtime.settings.sweeps)
    except Exception:
        log.exception("heartbeat failed; it is written again in a second")


def _job(name: str, sweep: Sweep) -> Callable[[CallbackContext[Any, Any, Any, Any]], Coroutine[Any, Any, None]]:
    async def run(context: CallbackContext[Any, Any, Any, Any]) -> None:
        runtime = _runtime(context)
        try:
            if not await leases.acquire(runtime.db, runtime.instance_id, now=runtime.clock.now()):
                return  # another process runs the sweeps
            count = await sweep(runtime, context.bot)
        except Exception:
            log.exception("sweep %s failed; it runs again at the next tick", name)
            return
        if count:
            log.info("sweep %s handled %s", name, count)

    run.__name__ = f"sweep_{name}"
    return run


async def run_all(runtime: Runtime, bot: ExtBot[Any]) -> dict[str, int]:
    """One tick of every sweep, in order, if this process holds the lease (tests and the demo use it)."""
    if not await leases.acquire(runtime.db, runtime.instance_id, now=runtime.clock.now()):
        return {}
    return {name: await sweep(runtime, bot) for name, sweep, _ in SWEEPS}


SENDER_KEY = "outbox_sender"
SENT_BY_THE_SENDER = {"alerts", "outbox"}  # sweeps the continuous sender does instead, on the job queue


def register_sender(application: Application[Any, Any, Any, Any, Any, Any], pacer: Pacer) -> OutboxSender:
    """The continuous outbox sender of this process, started by the ``outbox`` job's first run."""
    runtime = application.bot_data[RUNTIME_KEY]
    assert isinstance(runtime, Runtime)
    sender = OutboxSender(application.bot, runtime, pacer)
    application.bot_data[SENDER_KEY] = sender
    return sender


async def stop_sender(application: Application[Any, Any, Any, Any, Any, Any]) -> None:
    sender = application.bot_data.get(SENDER_KEY)
    if isinstance(sender, OutboxSender):
        await sender.stop()


async def sender_watchdog(context: CallbackContext[Any, Any, Any, Any]) -> None:
    """Start the sender (first run), start it again if it ever ended, and let it look for due rows."""
    sender = context.application.bot_data.get(SENDER_KEY)
    if isinstance(sender, OutboxSender):
        if not sender.running:
            sender.start()
        sender.wake()


def register_heartbeat(application: Application[Any, Any, Any, Any, Any, Any]) -> None:
    """This process is alive (its outbox claims stay valid), and may hold the sweep lease."""
    if application.job_queue is None:
        log.warning("no job queue: install python-telegram-bot[job-queue]")
        return
    application.job_queue.run_repeating(heartbeat, interval=leases.RENEW_EVERY, first=0.0, name="heartbeat",
                                        job_kwargs={"max_instances": 1, "coalesce": True, "misfire_grace_time": None})


def register_jobs(application: Application[Any, Any, Any, Any, Any, Any]) -> None:
    """Register every sweep. Each flow that needs one adds it to :data:`SWEEPS`."""
    if application.job_queue is None:
        log.warning("no job queue: install python-telegram-bot[job-queue]")
        return
    kwargs = {"max_instances": 1, "coalesce": True, "misfire_grace_time": None}
    register_heartbeat(application)
    sender = isinstance(application.bot_data.get(SENDER_KEY), OutboxSender)
    if sender:
        # jobs added before the job queue starts first run one interval after it does: about 1 s
        application.job_queue.run_repeating(sender_watchdog, interval=1.0, name="outbox", job_kwargs=kwargs)
    for name, sweep, interval in SWEEPS:
        if sender and name in SENT_BY_THE_SENDER:
            continue
        application.job_queue.run_repeating(_job(name, sweep), interval=interval, first=1.0,
                                            name=name, job_kwargs=kwargs)
    for name, sweep, interval in CUSTODY_SWEEPS:
        application.job_queue.run_repeating(_job(name, sweep), interval=interval, first=5.0,
                                            name=name, job_kwargs=kwargs)

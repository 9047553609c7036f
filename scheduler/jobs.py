"""Repeating sweeps registered on PTB's JobQueue. The rows they act on live in the database.

A sweep that falls due while the bot is down simply runs at the next tick and finds everything that
fell due meanwhile: nothing depends on APScheduler keeping a job (its default 1-second misfire grace
would drop it). Each sweep is small and idempotent: it marks what it handled in the same transaction
as it queues the messages. Only the process holding the database lease runs them.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from telegram.ext import Application, CallbackContext, ExtBot

from bot.context import RUNTIME_KEY
from bot.runtime import Runtime
from bot.services import assignment, deadlines, handover, incidents, leases, outbox, promises, reports
from scheduler.outbox_sender import send_due

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
    return escalated + pinged + prompted + alarmed


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
    """Alerts and urgent messages only: they never wait behind reminders or reports."""
    return await send_due(bot, runtime, max_priority=outbox.Priority.URGENT)


async def outbox_sweep(runtime: Runtime, bot: ExtBot[Any]) -> int:
    return await send_due(bot, runtime)


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


# name, sweep, interval in seconds. The deadline-like sweeps run before the outbox in one tick.
SWEEPS: list[tuple[str, Sweep, float]] = [
    ("emergency", emergency_sweep, 5.0),
    ("alerts", alert_sweep, 1.0),
    ("deadlines", deadline_sweep, 30.0),
    ("promises", promise_sweep, 300.0),
    ("reports", report_sweep, 300.0),
    ("unassigned", unassigned_sweep, 300.0),
    ("handover", handover_sweep, 300.0),
    ("outbox", outbox_sweep, 2.0),
]


def _runtime(context: CallbackContext[Any, Any, Any, Any]) -> Runtime:
    runtime = context.application.bot_data[RUNTIME_KEY]
    assert isinstance(runtime, Runtime)
    return runtime


def _job(name: str, sweep: Sweep) -> Callable[[CallbackContext[Any, Any, Any, Any]], Coroutine[Any, Any, None]]:
    async def run(context: CallbackContext[Any, Any, Any, Any]) -> None:
        runtime = _runtime(context)
        if not await leases.acquire(runtime.db, runtime.instance_id, now=runtime.clock.now()):
            return  # another process runs the sweeps
        try:
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


def register_jobs(application: Application[Any, Any, Any, Any, Any, Any]) -> None:
    """Register every sweep. Each flow that needs one adds it to :data:`SWEEPS`."""
    if application.job_queue is None:
        log.warning("no job queue: install python-telegram-bot[job-queue]")
        return
    for name, sweep, interval in SWEEPS:
        application.job_queue.run_repeating(_job(name, sweep), interval=interval, first=1.0, name=name,
                                            job_kwargs={"max_instances": 1, "coalesce": True,
                                                        "misfire_grace_time": None})

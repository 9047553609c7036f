"""Repeating sweeps registered on PTB's JobQueue. The rows they act on live in the database.

A sweep that falls due while the bot is down simply runs at the next tick and finds everything that
fell due meanwhile: nothing depends on APScheduler keeping a job (its default 1-second misfire grace
would drop it). Each sweep is small and idempotent: it marks what it handled in the same transaction.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine
from typing import Any

from telegram.ext import Application, CallbackContext

from bot.context import RUNTIME_KEY
from bot.runtime import Runtime
from bot.services import assignment
from scheduler.outbox_sender import send_due

log = logging.getLogger(__name__)

OUTBOX_INTERVAL_S = 2.0
UNASSIGNED_INTERVAL_S = 300.0

Job = Callable[[CallbackContext[Any, Any, Any, Any]], Coroutine[Any, Any, None]]


def _runtime(context: CallbackContext[Any, Any, Any, Any]) -> Runtime:
    runtime = context.application.bot_data[RUNTIME_KEY]
    assert isinstance(runtime, Runtime)
    return runtime


async def outbox_sweep(context: CallbackContext[Any, Any, Any, Any]) -> None:
    await send_due(context.bot, _runtime(context))


async def unassigned_sweep(context: CallbackContext[Any, Any, Any, Any]) -> None:
    runtime = _runtime(context)
    async with runtime.db.write() as session:
        count = await assignment.report_unassigned(session, now=runtime.clock.now())
    if count:
        log.info("reported %s cases not assigned within 1 working day", count)


SWEEPS: list[tuple[str, Job, float]] = [
    ("outbox", outbox_sweep, OUTBOX_INTERVAL_S),
    ("unassigned", unassigned_sweep, UNASSIGNED_INTERVAL_S),
]


def register_jobs(application: Application[Any, Any, Any, Any, Any, Any]) -> None:
    """Register every sweep. Each flow that needs one adds it to :data:`SWEEPS`."""
    if application.job_queue is None:
        log.warning("no job queue: install python-telegram-bot[job-queue]")
        return
    for name, job, interval in SWEEPS:
        application.job_queue.run_repeating(job, interval=interval, first=1.0, name=name,
                                            job_kwargs={"max_instances": 1, "coalesce": True})

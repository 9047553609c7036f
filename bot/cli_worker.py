"""``fieldbot worker``: the sweeps and the outbox sender alone, without answering updates.

Behind a load balancer, the webhook instances run with ``FIELDBOT_SWEEPS=false`` and only answer
updates (an alert a handler queues is still sent at once by that instance). One ``fieldbot worker`` runs
every sweep and sends the outbox; a second one on another machine is its standby: the sweep lease
(3 s, renewed every second) lets one of them sweep at a time, and the standby takes over within about
3 s of the first one's last heartbeat. The worker never calls ``getUpdates``, so it cannot take updates
away from the webhook. SIGTERM or SIGINT stop it cleanly: the lease and unsent claims are given back.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bot.config import Settings

log = logging.getLogger(__name__)


def register(sub: Any) -> None:
    worker = sub.add_parser("worker", help="run the sweeps and the outbox sender only (no updates); see README")
    worker.set_defaults(func=cmd_worker)


async def _work(application: Any, stop: asyncio.Event) -> None:
    if application.post_init is not None:
        await application.post_init(application)
    await application.start()  # the job queue: the heartbeat, the sweeps and the sender's watchdog
    log.info("fieldbot worker running (sweeps and outbox)")
    try:
        await stop.wait()
    finally:
        await application.stop()
        if application.post_stop is not None:
            await application.post_stop(application)
        await application.shutdown()
        if application.post_shutdown is not None:
            await application.post_shutdown(application)


def cmd_worker(settings: Settings, args: argparse.Namespace) -> int:
    from bot.app import build_application
    from bot.cli import _serve

    settings.require_token()
    settings.sweeps = True  # a worker is the process that sweeps, whatever the shared environment says
    application = build_application(settings)

    def run() -> None:
        loop = asyncio.get_event_loop()
        stop = asyncio.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        loop.run_until_complete(_work(application, stop))

    return _serve(settings, application, "worker", run)

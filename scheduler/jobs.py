"""Repeating sweeps registered on PTB's JobQueue. The rows they act on live in the database."""

from __future__ import annotations

import logging
from typing import Any

from telegram.ext import Application

log = logging.getLogger(__name__)


def register_jobs(application: Application[Any, Any, Any, Any, Any, Any]) -> None:
    """Register every sweep. Each flow that needs one adds it here."""
    if application.job_queue is None:
        log.warning("no job queue: install python-telegram-bot[job-queue]")
        return

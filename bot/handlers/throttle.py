"""The inbound throttle: each person's updates in order and at a sustained pace; SOS never waits.

Where it sits: PTB hands every update to an *update processor* before any handler sees it. fieldbot
runs updates concurrently (``concurrent_updates``) through :class:`PerUserUpdateProcessor`:

* **One lane per Telegram user.** A person's updates pass their lane (a FIFO ``asyncio.Lock``) one
  at a time, in the order Telegram delivered them, so a conversation is never answered out of order.
  Different people never wait for each other: a flood from one account delays only that account.
* **A token bucket per lane** (``FIELDBOT_THROTTLE_RATE`` updates a second sustained, bursts of
  ``FIELDBOT_THROTTLE_BURST``). An update that finds the bucket empty is not dropped: it waits for the
  next token, then runs. Because the lane lets one update wait at a time, a single wait is at most
  ``1 / rate`` seconds (capped at :data:`MAX_WAIT`); a flood of 1,000 messages is answered in full, at the
  sustained rate.
* **SOS is never slowed down.** ``/sos``, the SOS menu text and the alarm's buttons (callback data
  ``sos:`` and the safety timer's ``sf:``) skip the lane and the bucket and run at once. While the
  person has an open alarm, nothing of theirs waits for a token either (their live locations, above
  all): the alarm check is a database read made only when a wait would otherwise start.
* **Groups and channels skip it**: the access gate drops those updates at once anyway.
* **Shutting down** (the updater has stopped, the application still runs): the backlog is worked off
  without waiting, so a stop is not held up by someone's flood.

Why not in a handler: a handler that sleeps holds the update's whole coroutine, and with updates
processed one at a time it would hold every other person's updates as well.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from telegram import Update
from telegram.ext import BaseUpdateProcessor

from bot.i18n import all_translations

log = logging.getLogger(__name__)

# Updates being processed or waiting in a lane hold one of these slots each; the number is high so
# that one person's backlog cannot take every slot from everyone else.
MAX_CONCURRENT = 4096
MAX_WAIT = 60.0  # seconds: one update never waits longer than this for its token
MAX_IDLE_LANES = 10_000  # beyond this, idle lanes with a full bucket are forgotten
URGENT_CALLBACKS = ("sos:", "sf:")


@dataclass
class TokenBucket:
    """``rate`` tokens a second up to ``burst``; :meth:`take` reserves one and says how long to wait."""

    rate: float
    burst: int
    tokens: float = field(init=False)
    stamp: float = 0.0

    def __post_init__(self) -> None:
        self.tokens = float(self.burst)

    def refill(self, now: float) -> None:
        self.tokens = min(float(self.burst), self.tokens + max(0.0, now - self.stamp) * self.rate)
        self.stamp = now

    def take(self, now: float) -> float:
        """Take one token; the seconds until it is really there (0 when one was left)."""
        self.refill(now)
        self.tokens -= 1
        return 0.0 if self.tokens >= 0 else -self.tokens / self.rate

    def give_back(self) -> None:
        self.tokens = min(float(self.burst), self.tokens + 1)

    def full(self, now: float) -> bool:
        return self.tokens + max(0.0, now - self.stamp) * self.rate >= self.burst


@dataclass
class _Lane:
    bucket: TokenBucket
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    inside: int = 0  # updates waiting in or passing through the lane


@functools.cache
def _sos_texts() -> frozenset[str]:
    return frozenset(all_translations("menu.sos"))


def is_urgent(update: object) -> bool:
    """SOS and the alarm's own buttons: never queued, never slowed down."""
    if not isinstance(update, Update):
        return False
    query = update.callback_query
    if query is not None:
        return (query.data or "").startswith(URGENT_CALLBACKS)
    message = update.message
    if message is None or not message.text:
        return False
    text = message.text.strip()
    if text in _sos_texts():
        return True
    first = text.split(maxsplit=1)[0] if text else ""
    return first.split("@", 1)[0].lower() == "/sos"


def lane_key(update: object) -> int | None:
    """The Telegram user whose lane this update takes, or None when it needs none."""
    if not isinstance(update, Update) or update.effective_user is None:
        return None
    chat = update.effective_chat
    if chat is not None and chat.type != "private":
        return None  # groups and channels: the access gate drops them (or lets an acknowledgement through)
    return update.effective_user.id


class PerUserUpdateProcessor(BaseUpdateProcessor):
    """Concurrent updates, one lane per person, a token bucket per lane, SOS first (see the module)."""

    def __init__(
        self,
        *,
        rate: float,
        burst: int,
        alarm_open: Callable[[int], Awaitable[bool]] | None = None,
        draining: Callable[[], bool] | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
        max_concurrent_updates: int = MAX_CONCURRENT,
    ) -> None:
        super().__init__(max_concurrent_updates)
        self.rate = rate
        self.burst = burst
        self.alarm_open = alarm_open
        self.draining = draining
        self.clock = clock
        self.sleep = sleep
        self._lanes: dict[int, _Lane] = {}
        self.waited = 0  # updates that had to wait for a token (for logs and tests)

    async def initialize(self) -> None:
        """Nothing to set up."""

    async def shutdown(self) -> None:
        self._lanes.clear()

    async def do_process_update(self, update: object, coroutine: Awaitable[Any]) -> None:
        key = lane_key(update)
        if key is None or is_urgent(update):
            await coroutine
            return
        lane = self._lane(key)
        lane.inside += 1
        started = False
        try:
            async with lane.lock:  # FIFO: the person's updates keep Telegram's order
                await self._wait_for_token(key, lane)
                started = True
                await coroutine
        finally:
            lane.inside -= 1
            if not started and inspect.iscoroutine(coroutine):
                coroutine.close()  # cancelled while waiting: nothing ran, say so to nobody

    def _lane(self, key: int) -> _Lane:
        lane = self._lanes.get(key)
        if lane is None:
            if len(self._lanes) >= MAX_IDLE_LANES:
                self._forget_idle_lanes()
            lane = self._lanes[key] = _Lane(TokenBucket(self.rate, self.burst, stamp=self.clock()))
        return lane

    def _forget_idle_lanes(self) -> None:
        now = self.clock()
        for key in [k for k, lane in self._lanes.items() if lane.inside == 0 and lane.bucket.full(now)]:
            del self._lanes[key]

    async def _wait_for_token(self, key: int, lane: _Lane) -> None:
        if self.rate <= 0:
            return  # FIELDBOT_THROTTLE_RATE=0: no throttle, only the per-person order
        delay = lane.bucket.take(self.clock())
        if delay <= 0:
            return
        if (self.draining is not None and self.draining()) or await self._alarm_open(key):
            lane.bucket.give_back()
            return
        self.waited += 1
        log.debug("telegram user %s is over the inbound rate: waiting %.2f s", key, delay)
        await self.sleep(min(delay, MAX_WAIT))

    async def _alarm_open(self, key: int) -> bool:
        if self.alarm_open is None:
            return False
        try:
            return await self.alarm_open(key)
        except Exception:  # the throttle never stops an update; without an answer, it waits as usual
            log.exception("could not check for an open alarm of telegram user %s", key)
            return False

"""Telegram's sending limits shared by every instance of one bot, kept in Redis.

Telegram counts its limits per bot token, not per process: about 30 messages a second in all, one a
second to one private chat, 20 a minute to one group. With several instances (webhook workers behind a
load balancer, a worker process for the sweeps) each process's own :class:`bot.ratelimit.Pacer` would
let the bot as a whole go over. :class:`SharedBudget` is the part every process takes from:

* ``take(priority)`` waits for a slot in one sliding window of ``rate`` messages a second for the token.
  The last ``alert_reserve`` slots of each second are kept for alerts and urgent rows (priority ≤
  :data:`bot.ratelimit.RESERVED_FOR`), so a broadcast from one instance never takes the second an alert
  from another instance needs.
* ``chat_turn(chat_id)`` waits until the chat's one-second spacing is over and claims the next turn;
  ``chat_sent(chat_id)`` starts the spacing after a message went there (a reply, say).
* ``group_turn(chat_id)`` keeps a group to 20 messages a minute.

Each is one Lua script, so the check and the taking are atomic across instances, timed by the Redis
server's clock (one clock for all). Should Redis fail, sending goes on with the process's own budget
(:class:`~bot.ratelimit.Pacer`) and a warning is logged: an alert late because Redis is down is worse
than a 429 that the outbox retries.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import logging
import time
from typing import Any

log = logging.getLogger(__name__)

REDIS_TIMEOUT = 0.5  # seconds
RESERVED_FOR = 2  # the same as bot.ratelimit.RESERVED_FOR (alerts and urgent outbox rows)

# KEYS[1] the window; ARGV: limit, window in ms, a unique member. 0 = taken; else ms to wait.
_TAKE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local limit = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
local n = redis.call('ZCARD', KEYS[1])
if n < limit then
  redis.call('ZADD', KEYS[1], now, ARGV[3])
  redis.call('PEXPIRE', KEYS[1], window * 2)
  return 0
end
local oldest = redis.call('ZRANGE', KEYS[1], n - limit, n - limit, 'WITHSCORES')
return math.max(1, tonumber(oldest[2]) + window - now)
"""

# KEYS[1] the chat's spacing; ARGV[1] the spacing in ms. 0 = this caller's turn (spacing started); else ms.
_TURN = """
if redis.call('SET', KEYS[1], '1', 'PX', tonumber(ARGV[1]), 'NX') then
  return 0
end
return math.max(1, redis.call('PTTL', KEYS[1]))
"""


class SharedBudget:
    def __init__(self, client: Any, token: str, *, rate: float = 30.0, window: float = 1.0, margin: float = 0.03,
                 chat_interval: float = 1.0, group_rate: int = 20, group_window: float = 60.0,
                 alert_reserve: int = 3) -> None:
        self.client = client
        self.prefix = "fieldbot:budget:" + hashlib.sha256(token.encode()).hexdigest()[:16]
        self.limit = max(1, int(rate * window))
        self.window_ms = int((window + margin) * 1000)
        self.chat_ms = int(chat_interval * 1000)
        self.group_limit, self.group_ms = group_rate, int(group_window * 1000)
        self.alert_reserve = min(alert_reserve, self.limit - 1)
        self._members = itertools.count()
        self._instance = f"{time.time_ns():x}"
        self._take = client.register_script(_TAKE)
        self._turn = client.register_script(_TURN)
        self._failing_since: float | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    def _member(self) -> str:
        return f"{self._instance}:{next(self._members)}"

    def _failed(self, what: str, exc: Exception) -> None:
        now = time.monotonic()
        if self._failing_since is None or now - self._failing_since > 60:
            log.warning("shared send budget unavailable (%s): %s; this process paces on its own", what, exc)
            self._failing_since = now

    async def _wait(self, script: Any, key: str, *args: Any) -> None:
        while True:
            try:
                wait_ms = int(await script(keys=[key], args=list(args)))
            except Exception as exc:  # Redis down or unreachable: never stop sending because of it
                self._failed(key, exc)
                return
            self._failing_since = None
            if wait_ms <= 0:
                return
            await asyncio.sleep(wait_ms / 1000)

    async def take(self, priority: int) -> None:
        """Wait for a slot in the bot's one window (alerts may use the reserved last slots)."""
        limit = self.limit if priority <= RESERVED_FOR else self.limit - self.alert_reserve
        await self._wait(self._take, f"{self.prefix}:all", limit, self.window_ms, self._member())

    async def chat_turn(self, chat_id: int) -> None:
        """Wait until ``chat_id`` may get its next message, and claim that turn for this caller."""
        await self._wait(self._turn, f"{self.prefix}:chat:{chat_id}", self.chat_ms)

    async def group_turn(self, chat_id: int) -> None:
        """A group chat: at most ``group_rate`` messages in ``group_window`` seconds, over all instances."""
        await self._wait(self._take, f"{self.prefix}:group:{chat_id}", self.group_limit, self.group_ms,
                         self._member())

    def chat_sent(self, chat_id: int) -> None:
        """A message just went to ``chat_id`` (a reply): the other instances leave it alone for a second."""
        async def mark() -> None:
            try:
                await self.client.set(f"{self.prefix}:chat:{chat_id}", "1", px=self.chat_ms)
            except Exception as exc:
                self._failed("chat", exc)

        try:
            task = asyncio.get_running_loop().create_task(mark())
        except RuntimeError:  # no loop (a synchronous caller in a test): nothing to share
            return
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.client.aclose()


def connect(url: str, token: str) -> SharedBudget:
    """The shared budget at ``url`` (``redis://host:port/db``) for the bot with ``token``."""
    from redis.asyncio import Redis

    # short timeouts: a Redis that hangs must not hold an alert back for more than a moment
    return SharedBudget(Redis.from_url(url, socket_timeout=REDIS_TIMEOUT, socket_connect_timeout=REDIS_TIMEOUT), token)

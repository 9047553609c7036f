"""One sending budget for the whole bot: Telegram's ~30 messages a second, most urgent first.

:class:`Pacer` is that budget. It lets at most ``rate`` messages go in any second (a sliding window,
as the Bot API counts them) and hands the next free slot to the most urgent waiter: alerts and urgent
outbox rows first, then replies to the person in front of the bot (:data:`REPLY`), then everything
else the outbox holds. A reply therefore never waits behind a broadcast: the broadcast waits for it.
It also remembers when each chat last got a message, so the outbox sender keeps to Telegram's one
message a second per chat, counting the replies that went there too.

:class:`FieldbotRateLimiter` is PTB's ``AIORateLimiter`` for replies only: they take a slot from the
pacer at :data:`REPLY` priority, keep PTB's per-group limit and retry a 429 after ``retry_after`` (up
to ``reply_retries`` times). A message from the outbox passes ``rate_limit_args=NO_RETRY``: it goes
straight to the Bot API, since the outbox sender paces it itself (``scheduler/outbox_sender.py``),
receives the ``RetryAfter`` at once and records it on the row. (``AIORateLimiter`` reads
``rate_limit_args or max_retries``, so 0 cannot be passed per call; hence the sentinel.)
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from collections import deque
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any

from telegram._utils.types import JSONDict
from telegram.ext import AIORateLimiter

if TYPE_CHECKING:
    from bot.send_budget import SharedBudget

NO_RETRY = -1
RESERVED_FOR = 2  # alerts and urgent outbox rows (0-2) may use the slots kept by Pacer.reserve
REPLY = 3  # a reply's place in the queue for the budget: after alerts and urgent rows (0-2), before the rest

RATE = 30.0  # Telegram: "not more than 30 messages per second or so"
CHAT_INTERVAL = 1.0  # Telegram: "avoid sending more than one message per second in a single chat"
MARGIN = 0.03  # seconds added to the window: a message reaches the server a little after it left here


class Pacer:
    """At most ``rate`` messages in any ``window`` seconds, handed out most urgent first; per-chat spacing.

    ``acquire(priority)`` waits for a slot (lower numbers first, first come first served within one
    priority). ``chat_sent(chat_id)`` notes that a chat just got a message; ``chat_free_at(chat_id)``
    says when it may get the next (monotonic seconds). Single event loop; not thread-safe.

    With ``shared`` (several instances of one bot: :mod:`bot.send_budget`), a slot granted here is also
    taken from the bot's one window in Redis, and a chat's spacing is kept across the instances.
    """

    def __init__(self, rate: float = RATE, *, window: float = 1.0, margin: float = MARGIN,
                 chat_interval: float = CHAT_INTERVAL, clock: Callable[[], float] = time.monotonic,
                 shared: SharedBudget | None = None) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.limit = max(1, int(rate * window))
        self.window = window + margin
        self.chat_interval = chat_interval
        self.clock = clock
        self._sent: deque[float] = deque()
        self._waiting: list[tuple[int, int]] = []
        self._order = itertools.count()
        self._changed = asyncio.Event()
        self._chats: dict[int, float] = {}
        self._reserved = 0
        self.shared = shared

    def _free_at(self, now: float, priority: int = 0) -> float:
        while self._sent and self._sent[0] <= now - self.window:
            self._sent.popleft()
        limit = self.limit if priority <= RESERVED_FOR else max(1, self.limit - self._reserved)
        if len(self._sent) < limit:
            return now
        return self._sent[len(self._sent) - limit] + self.window

    def reserve(self, count: int) -> None:
        """Keep ``count`` more slots for alerts and urgent rows that will ask soon (a claimed alert waiting
        for its chat's one-second spacing): less urgent waiters leave them free. ``count`` < 0 gives them back."""
        self._reserved = max(0, min(self.limit - 1, self._reserved + count))
        if count < 0:
            self._notify()

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    async def acquire(self, priority: int) -> None:
        """Wait for a slot in the budget; the most urgent waiter gets the next one."""
        entry = (priority, next(self._order))
        heapq.heappush(self._waiting, entry)
        if self._waiting[0] == entry and len(self._waiting) > 1:
            self._notify()  # the waiter that was first must look again: this one goes before it
        try:
            while True:
                changed = self._changed
                if self._waiting[0] == entry:
                    now = self.clock()
                    delay = self._free_at(now, priority) - now
                    if delay <= 0:
                        heapq.heappop(self._waiting)
                        self._sent.append(now)
                        self._notify()
                        if self.shared is not None:  # and the bot's one window, over every instance
                            await self.shared.take(priority)
                        return
                    try:
                        await asyncio.wait_for(changed.wait(), timeout=delay)
                    except TimeoutError:
                        pass
                else:
                    await changed.wait()
        except BaseException:
            if entry in self._waiting:
                self._waiting.remove(entry)
                heapq.heapify(self._waiting)
                self._notify()
            raise

    async def chat_turn(self, chat_id: int) -> None:
        """With a shared budget: wait until no instance has sent to ``chat_id`` within its spacing (a private
        chat: a second; a group: 20 a minute)."""
        if self.shared is None:
            return
        if chat_id < 0:
            await self.shared.group_turn(chat_id)
        else:
            await self.shared.chat_turn(chat_id)

    def chat_sent(self, chat_id: int, at: float | None = None) -> None:
        """A message to ``chat_id`` was just answered by the Bot API."""
        self._chats[chat_id] = (self.clock() if at is None else at) + self.chat_interval
        if self.shared is not None:
            self.shared.chat_sent(chat_id)
        if len(self._chats) > 10_000:  # forget chats whose spacing is long over
            now = self.clock()
            self._chats = {chat: free for chat, free in self._chats.items() if free > now}

    def chat_wait(self, chat_id: int, seconds: float) -> None:
        """Telegram said ``retry_after`` for this chat: nothing more to it for ``seconds``."""
        self._chats[chat_id] = max(self._chats.get(chat_id, 0.0), self.clock() + seconds)

    def chat_free_at(self, chat_id: int) -> float:
        return self._chats.get(chat_id, 0.0)

    def busy_chats(self, now: float | None = None) -> dict[int, float]:
        """The chats that may not get a message yet, with the moment they may."""
        now = self.clock() if now is None else now
        return {chat: free for chat, free in self._chats.items() if free > now}


class FieldbotRateLimiter(AIORateLimiter):
    def __init__(self, reply_retries: int = 3, pacer: Pacer | None = None) -> None:
        # the pacer is the one overall budget; PTB's limiter keeps its per-group limit and the retries
        super().__init__(max_retries=0, overall_max_rate=0 if pacer is not None else RATE)
        self.reply_retries = reply_retries
        self.pacer = pacer

    async def process_request(
        self,
        callback: Callable[..., Coroutine[Any, Any, bool | JSONDict | list[JSONDict]]],
        args: Any,
        kwargs: dict[str, Any],
        endpoint: str,
        data: dict[str, Any],
        rate_limit_args: int | None,
    ) -> bool | JSONDict | list[JSONDict]:
        if rate_limit_args == NO_RETRY:
            if self.pacer is not None:  # the outbox sender took its slot and keeps the chat's spacing
                return await callback(*args, **kwargs)
            rate_limit_args = None  # the base class then uses max_retries=0
        elif rate_limit_args is None:
            rate_limit_args = self.reply_retries
        chat_id = data.get("chat_id")
        pacer = self.pacer
        if pacer is not None and chat_id is not None and endpoint.startswith(("send", "copy", "forward")):

            async def paced(*call_args: Any, **call_kwargs: Any) -> bool | JSONDict | list[JSONDict]:
                if isinstance(chat_id, int) and chat_id < 0:
                    await pacer.chat_turn(chat_id)  # a group's 20 a minute, over every instance
                await pacer.acquire(REPLY)  # every attempt, retries included, takes its slot
                try:
                    return await callback(*call_args, **call_kwargs)
                finally:
                    if isinstance(chat_id, int):
                        pacer.chat_sent(chat_id)

            return await super().process_request(paced, args, kwargs, endpoint, data, rate_limit_args)
        return await super().process_request(callback, args, kwargs, endpoint, data, rate_limit_args)

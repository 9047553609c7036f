"""PTB's ``AIORateLimiter`` with two retry policies: replies retry 429s, the outbox handles its own.

A direct reply to the person in front of the bot is worth a short wait: it retries after Telegram's
``retry_after`` (up to ``reply_retries`` times). A message from the outbox must not sit inside the
limiter for that long, since an alert could be waiting behind it: the outbox passes
``rate_limit_args=NO_RETRY``, receives the ``RetryAfter`` at once, records it on the row and tries
again after ``retry_after``. (``AIORateLimiter`` reads ``rate_limit_args or max_retries``, so 0 cannot
be passed per call; hence the sentinel.)
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from telegram._utils.types import JSONDict
from telegram.ext import AIORateLimiter

NO_RETRY = -1


class FieldbotRateLimiter(AIORateLimiter):
    def __init__(self, reply_retries: int = 3) -> None:
        super().__init__(max_retries=0)
        self.reply_retries = reply_retries

    async def process_request(
        self,
        callback: Callable[..., Coroutine[Any, Any, bool | JSONDict | list[JSONDict]]],
        args: Any,
        kwargs: dict[str, Any],
        endpoint: str,
        data: dict[str, Any],
        rate_limit_args: int | None,
    ) -> bool | JSONDict | list[JSONDict]:
        if rate_limit_args is None:
            rate_limit_args = self.reply_retries
        elif rate_limit_args == NO_RETRY:
            rate_limit_args = None  # the base class then uses max_retries=0
        return await super().process_request(callback, args, kwargs, endpoint, data, rate_limit_args)

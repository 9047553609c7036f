"""(being written)"""

from __future__ import annotations

from bot.runtime import Runtime


async def daily_sweep(runtime: Runtime) -> int:
    return 0

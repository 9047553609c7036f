"""What every handler and job needs, built once by the composition root and kept in ``bot_data``."""

from __future__ import annotations

from dataclasses import dataclass
from zoneinfo import ZoneInfo

from bot.clock import Clock
from bot.config import Settings
from bot.storage.db import Database


@dataclass
class Runtime:
    settings: Settings
    db: Database
    clock: Clock

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.settings.timezone)

"""Quiet hours: no calls to debtors, and non-urgent messages to staff wait for the morning."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo


@dataclass(frozen=True)
class QuietHours:
    start: time  # e.g. 21:00
    end: time  # e.g. 08:00
    tz: ZoneInfo

    def contains(self, moment: datetime) -> bool:
        local = moment.astimezone(self.tz).time()
        if self.start > self.end:  # spans midnight
            return local >= self.start or local < self.end
        return self.start <= local < self.end

    def release(self, moment: datetime) -> datetime:
        """``moment`` itself outside quiet hours, else the end of the quiet hours it falls in."""
        if not self.contains(moment):
            return moment
        local = moment.astimezone(self.tz)
        end = local.replace(hour=self.end.hour, minute=self.end.minute, second=0, microsecond=0)
        if end <= local:
            end += timedelta(days=1)
        return end

"""What every handler and job needs, built once by the composition root and kept in ``bot_data``."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from bot.clock import Clock
from bot.config import Settings
from bot.services import audit
from bot.services.calendar import WorkCalendar
from bot.services.geocoding import GeocoderLike, make_geocoder
from bot.services.quiet import QuietHours
from bot.storage import keys
from bot.storage.db import Database
from bot.storage.media import MediaStore


def load_keys(settings: Settings) -> None:
    """Load (on first start: create) the audit key; every audit entry of this process is keyed with it."""
    audit.use_key(keys.load_or_create(settings.keys_path, keys.AUDIT_KEY))


def calendar_from(settings: Settings) -> WorkCalendar:
    return WorkCalendar.from_override_file(settings.calendar_file, tz=settings.timezone,
                                           work_start=settings.work_start, work_end=settings.work_end)


@dataclass
class Runtime:
    settings: Settings
    db: Database
    clock: Clock
    calendar: WorkCalendar = field(init=False)
    media: MediaStore = field(init=False)
    geocoder: GeocoderLike | None = field(init=False)
    instance_id: str = field(default_factory=lambda: uuid.uuid4().hex)

    def __post_init__(self) -> None:
        load_keys(self.settings)
        self.calendar = calendar_from(self.settings)
        self.media = MediaStore.from_settings(self.settings)
        self.geocoder = make_geocoder(self.settings.geocoder)

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.settings.timezone)

    @property
    def quiet(self) -> QuietHours:
        return QuietHours(self.settings.quiet_start, self.settings.quiet_end, self.tz)

    def quiet_hours_now(self) -> bool:
        """Within the quiet hours (default 21:00–08:00): no calls to debtors, non-urgent messages wait."""
        return self.quiet.contains(self.clock.now())

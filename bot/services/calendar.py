"""The one working-day calendar behind every deadline in the product.

Company SOP: a working day is a Chinese working day — Monday to Friday except the statutory
holidays, plus the official make-up working days (调休) that fall on a weekend.  The national
schedule comes from :class:`holidays.China` (which knows the State Council notices, make-up days
included, via its own :meth:`~holidays.HolidayBase.is_working_day`).  A company override file
can add extra days off or extra working days on top of that::

    days_off = ["2026-12-31"]
    working_days = ["2027-02-20"]

Working hours (default 09:00–18:00) and the time zone (default Asia/Shanghai) come from config.
Every datetime going in must be timezone-aware; everything coming out is aware and in the
calendar's time zone.

Caveat worth knowing: ``holidays`` only carries the *official* schedule (with make-up days) for
years whose State Council notice it has been updated with (2026 in version 0.109).  For later
years it estimates: the statutory days plus "weekend holiday moves to the next weekday", and no
make-up working days.  Years outside the range it supports (1950–2100) fall back to plain
Monday–Friday.  The override file is the place to correct a year before the library catches up.
"""

from __future__ import annotations

import math
import re
import tomllib
from collections.abc import Iterable
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

if TYPE_CHECKING:
    from holidays import HolidayBase

__all__ = ["CalendarConfigError", "WorkCalendar"]

DEFAULT_TIMEZONE = "Asia/Shanghai"
DEFAULT_WORK_START = time(9, 0)
DEFAULT_WORK_END = time(18, 0)

_OVERRIDE_KEYS = ("days_off", "working_days")
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_ONE_DAY = timedelta(days=1)


class CalendarConfigError(ValueError):
    """The calendar configuration (override file, time zone, working hours) is unusable."""

    def __init__(self, reason: str, path: Path | None = None) -> None:
        self.reason = reason
        self.path = path
        super().__init__(f"calendar override file {path}: {reason}" if path is not None else reason)


@lru_cache(maxsize=256)
def _national_calendar(year: int) -> HolidayBase | None:
    """``holidays.China`` for one year, built on first use and cached per year.

    ``None`` when the library cannot produce the year at all; callers then use plain weekends.
    ``expand=False`` keeps each cached object immutable: looking up another year never
    populates it behind our back. The library is imported here, at the first working-day question,
    not at start-up.
    """
    from holidays import country_holidays

    try:
        return country_holidays("CN", years=year, expand=False)  # holidays.China
    except (LookupError, ValueError, OverflowError, NotImplementedError):
        return None


class WorkCalendar:
    """Working days and working hours, China's national schedule plus company overrides."""

    __slots__ = ("_days_off", "_tz", "_work_end", "_work_start", "_working_days")

    def __init__(
        self,
        tz: str | ZoneInfo = DEFAULT_TIMEZONE,
        work_start: time = DEFAULT_WORK_START,
        work_end: time = DEFAULT_WORK_END,
        days_off: Iterable[date] = (),
        working_days: Iterable[date] = (),
    ) -> None:
        self._tz = _zone(tz)
        if work_start.tzinfo is not None or work_end.tzinfo is not None:
            raise CalendarConfigError("working hours must be plain times; the time zone is set separately")
        if not work_start < work_end:
            raise CalendarConfigError(
                f"working hours must start before they end (got {work_start:%H:%M}–{work_end:%H:%M})"
            )
        self._work_start = work_start
        self._work_end = work_end
        self._days_off = frozenset(_plain_date(d) for d in days_off)
        self._working_days = frozenset(_plain_date(d) for d in working_days)
        if clash := self._days_off & self._working_days:
            listed = ", ".join(d.isoformat() for d in sorted(clash))
            raise CalendarConfigError(f"listed both as day off and as working day: {listed}")

    @classmethod
    def from_override_file(
        cls,
        path: Path | None,
        *,
        tz: str | ZoneInfo = DEFAULT_TIMEZONE,
        work_start: time = DEFAULT_WORK_START,
        work_end: time = DEFAULT_WORK_END,
    ) -> WorkCalendar:
        """A calendar with the company overrides from a TOML file (``None``: no overrides).

        Raises :class:`CalendarConfigError` naming the path and the reason when the file is
        missing, unreadable, not valid TOML, has unknown keys, or holds anything but dates.
        """
        if path is None:
            return cls(tz=tz, work_start=work_start, work_end=work_end)
        path = Path(path)
        try:
            with path.open("rb") as fh:
                data = tomllib.load(fh)
        except FileNotFoundError:
            raise CalendarConfigError("file not found", path) from None
        except tomllib.TOMLDecodeError as exc:
            raise CalendarConfigError(f"not valid TOML: {exc}", path) from exc
        except UnicodeDecodeError as exc:
            raise CalendarConfigError(f"not UTF-8 text: {exc}", path) from exc
        except OSError as exc:
            raise CalendarConfigError(f"cannot read: {exc.strerror or exc}", path) from exc

        unknown = sorted(set(data) - set(_OVERRIDE_KEYS))
        if unknown:
            raise CalendarConfigError(
                f"unknown key(s) {', '.join(unknown)}; expected only {' and '.join(_OVERRIDE_KEYS)}", path
            )
        days_off = _parse_dates(data.get("days_off", []), "days_off", path)
        working_days = _parse_dates(data.get("working_days", []), "working_days", path)
        try:
            return cls(
                tz=tz, work_start=work_start, work_end=work_end, days_off=days_off, working_days=working_days
            )
        except CalendarConfigError as exc:
            if exc.path is None:
                raise CalendarConfigError(exc.reason, path) from None
            raise

    # -- configuration -------------------------------------------------------------------

    @property
    def tz(self) -> ZoneInfo:
        return self._tz

    @property
    def work_start(self) -> time:
        return self._work_start

    @property
    def work_end(self) -> time:
        return self._work_end

    @property
    def extra_days_off(self) -> frozenset[date]:
        return self._days_off

    @property
    def extra_working_days(self) -> frozenset[date]:
        return self._working_days

    def __repr__(self) -> str:
        return (
            f"WorkCalendar(tz={self._tz.key!r}, work_start={self._work_start!r}, "
            f"work_end={self._work_end!r}, days_off={len(self._days_off)}, "
            f"working_days={len(self._working_days)})"
        )

    # -- days ----------------------------------------------------------------------------

    def is_working_day(self, day: date) -> bool:
        """Whether ``day`` is a working day: company overrides first, then the national schedule."""
        day = _plain_date(day)
        if day in self._days_off:
            return False
        if day in self._working_days:
            return True
        national = _national_calendar(day.year)
        if national is None:
            return day.weekday() < 5
        return bool(national.is_working_day(day))

    def next_working_day(self, day: date) -> date:
        """The first working day strictly after ``day``."""
        day = _plain_date(day) + _ONE_DAY
        while not self.is_working_day(day):
            day += _ONE_DAY
        return day

    def add_working_days(self, day: date, n: int) -> date:
        """The ``n``-th working day strictly after ``day``; ``day`` itself when ``n`` is 0."""
        if n < 0:
            raise ValueError(f"n must be 0 or more, got {n}")
        day = _plain_date(day)
        for _ in range(n):
            day = self.next_working_day(day)
        return day

    def working_days_between(self, start: date, end: date) -> int:
        """How many working days lie in ``(start, end]``; negative when ``end`` is before ``start``."""
        start, end = _plain_date(start), _plain_date(end)
        if end < start:
            return -self.working_days_between(end, start)
        count = 0
        day = start + _ONE_DAY
        while day <= end:
            count += self.is_working_day(day)
            day += _ONE_DAY
        return count

    # -- moments -------------------------------------------------------------------------

    def local(self, moment: datetime) -> datetime:
        """``moment`` in the calendar's time zone; naive datetimes are rejected."""
        if moment.tzinfo is None or moment.utcoffset() is None:
            raise ValueError(f"naive datetime {moment.isoformat()} given; pass a timezone-aware one")
        return moment.astimezone(self._tz)

    def working_date(self, moment: datetime) -> date:
        """The local calendar date of ``moment``."""
        return self.local(moment).date()

    def is_within_working_hours(self, moment: datetime) -> bool:
        """Whether ``moment`` falls on a working day, in ``[work_start, work_end)`` local time."""
        here = self.local(moment)
        return self.is_working_day(here.date()) and self._work_start <= here.time() < self._work_end

    def deadline_after(self, start: datetime, working_days: int) -> datetime:
        """SOP "within N working days of handover".

        The end of working hours on the N-th working day strictly after the local date of
        ``start``: a handover the evening before a national holiday counts from after the holiday,
        make-up weekend days count, and a handover on a weekend or holiday simply counts from the
        next working day.  ``working_days == 0`` means the end of the handover day itself.
        """
        if working_days < 0:
            raise ValueError(f"working_days must be 0 or more, got {working_days}")
        due = self.add_working_days(self.working_date(start), working_days)
        return datetime.combine(due, self._work_end, tzinfo=self._tz)

    def add_working_hours(self, start: datetime, hours: float) -> datetime:
        """``start`` plus ``hours`` of working time (only time inside working hours on working days).

        A start outside working hours begins at the next working-hours start.  A span that ends
        exactly at the close of a day ends there (18:00), not at the next day's opening.
        """
        if not math.isfinite(hours) or hours < 0:
            raise ValueError(f"hours must be a finite number, 0 or more, got {hours}")
        remaining = timedelta(hours=hours)
        cursor = self.local(start).astimezone(UTC)  # absolute arithmetic, safe across DST changes
        day = self.working_date(start)
        if not self.is_working_day(day):
            day = self.next_working_day(day)
        while True:
            opens, closes = self._working_hours_utc(day)
            cursor = max(cursor, opens)
            if cursor < closes:
                available = closes - cursor
                if remaining <= available:
                    return (cursor + remaining).astimezone(self._tz)
                remaining -= available
            day = self.next_working_day(day)

    def _working_hours_utc(self, day: date) -> tuple[datetime, datetime]:
        opens = datetime.combine(day, self._work_start, tzinfo=self._tz)
        closes = datetime.combine(day, self._work_end, tzinfo=self._tz)
        return opens.astimezone(UTC), closes.astimezone(UTC)


def _zone(tz: str | ZoneInfo) -> ZoneInfo:
    if isinstance(tz, ZoneInfo):
        return tz
    try:
        return ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise CalendarConfigError(f"unknown time zone {tz!r}") from exc


def _plain_date(value: date) -> date:
    """A ``date`` (not a ``datetime``, whose date part would depend on its time zone)."""
    if isinstance(value, datetime):
        raise TypeError("pass a date, not a datetime; use working_date() to get a moment's local date")
    if not isinstance(value, date):
        raise TypeError(f"expected a date, got {type(value).__name__}")
    return value


def _parse_dates(raw: object, key: str, path: Path) -> list[date]:
    if not isinstance(raw, list):
        raise CalendarConfigError(f'{key} must be a list of dates like ["2026-12-31"]', path)
    days: list[date] = []
    for item in raw:
        if isinstance(item, date) and not isinstance(item, datetime):  # a bare TOML date
            days.append(item)
            continue
        if isinstance(item, str) and _ISO_DATE.fullmatch(item.strip()):
            try:
                days.append(date.fromisoformat(item.strip()))
                continue
            except ValueError as exc:
                raise CalendarConfigError(f"{key}: {item!r} is not a real date ({exc})", path) from exc
        raise CalendarConfigError(f"{key}: {item!r} is not a date in YYYY-MM-DD form", path)
    return days

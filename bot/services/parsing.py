"""Lenient parsers for values typed by people or exported by banks' systems.

Everything here is pure Python (no I/O, no Telegram, no database) and is reused
by the case-file import, by conversation handlers that read free text from
collectors, and by reports.

Common rules:

* Input is NFKC-normalised first, so full-width digits and punctuation
  (``１２００``, ``，``, ``．``, ``／``, ``￥``) behave like their ASCII forms.
* Surrounding whitespace, including the ideographic space U+3000, the
  no-break space and zero-width characters, is ignored.
* A parser returns ``None`` for text it cannot read. It never raises on bad input.
"""

from __future__ import annotations

import math
import re
import unicodedata
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation

__all__ = [
    "clean_text",
    "excel_date",
    "normalize_mobile",
    "parse_amount",
    "parse_date",
    "parse_int",
]

# Zero-width characters that survive copy/paste from web pages and Excel.
_INVISIBLE = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff"))
_WS_RUN = re.compile(r"\s+")


def clean_text(text: str) -> str:
    """Trim *text* and collapse internal whitespace runs to one ASCII space.

    Removes zero-width characters; treats the full-width space U+3000 and
    no-break spaces as whitespace. Does not otherwise change the characters,
    so names and addresses keep their original spelling.
    """
    return _WS_RUN.sub(" ", text.translate(_INVISIBLE)).strip()


def _norm(text: str) -> str:
    """NFKC + :func:`clean_text`; unicode minus signs become ``-``."""
    text = unicodedata.normalize("NFKC", text)
    text = text.replace("\u2212", "-").replace("\u2013", "-").replace("\u2014", "-")
    return clean_text(text)


# ---------------------------------------------------------------------------
# Amounts
# ---------------------------------------------------------------------------

_CENT = Decimal("0.01")
_MAX_AMOUNT_DIGITS = 15  # up to 999 trillion yuan; longer "numbers" are garbage
# Currency markers accepted before or after the number (NFKC turns ￥ into ¥).
_CURRENCY_PREFIX = re.compile(r"^(?:¥|rmb|cny|人民币)\s*", re.IGNORECASE)
_CURRENCY_SUFFIX = re.compile(r"\s*(?:元整|元|块钱|块|rmb|cny|yuan)$", re.IGNORECASE)
_AMOUNT = re.compile(
    r"""
    (?P<int>\d{1,3}(?:,\d{3})+|\d+)?   # integer part, optionally grouped by thousands
    (?:\.(?P<frac>\d+))?               # fraction
    """,
    re.VERBOSE,
)


def parse_amount(text: str) -> Decimal | None:
    """Parse a money amount in yuan, quantised to 0.01.

    Accepts ``12,345.60``, ``¥12345.6``, ``￥1,200``, ``1200元``, ``1200.5 元``,
    ``RMB 300``, ``人民币300元``, full-width digits and a leading ``+``/``-``
    (before or after the currency sign). Thousands separators must be in the
    right places (``1,200`` yes, ``1,20`` no, it could be a European decimal).

    Returns ``None`` for anything else, including more than two *significant*
    decimals (``1.005``; trailing zeros are fine: ``1.500`` → ``1.50``) and
    more than 15 integer digits.
    Zero and negative values are returned as they are: callers decide.
    """
    s = _norm(text)
    sign = ""
    if s and s[0] in "+-":
        sign, s = s[0], s[1:].lstrip()
    prefix = _CURRENCY_PREFIX.match(s)
    if prefix:
        s = s[prefix.end():]
        if not sign and s and s[0] in "+-":
            sign, s = s[0], s[1:].lstrip()
    s = _CURRENCY_SUFFIX.sub("", s)
    m = _AMOUNT.fullmatch(s)
    if m is None or (m.group("int") is None and m.group("frac") is None):
        return None
    int_part = (m.group("int") or "0").replace(",", "").lstrip("0") or "0"
    frac = (m.group("frac") or "").rstrip("0")
    if len(frac) > 2 or len(int_part) > _MAX_AMOUNT_DIGITS:
        return None
    try:
        return Decimal(f"{sign}{int_part}.{frac or '0'}").quantize(_CENT)
    except InvalidOperation:  # pragma: no cover - the checks above make this impossible
        return None


# ---------------------------------------------------------------------------
# Integers
# ---------------------------------------------------------------------------

_MAX_INT_DIGITS = 18
_INT = re.compile(
    r"(?P<sign>[+-]?)\s*(?P<num>\d{1,3}(?:,\d{3})+|\d+)(?:\.0+)?\s*"
    r"(?:天|日|days?|d)?",
    re.IGNORECASE,
)


def parse_int(text: str) -> int | None:
    """Parse a whole number: ``30``, ``30天``, ``30 days``, ``1,200``, ``30.0``, ``-3``.

    ``30.5``, text without a number and more than 18 digits give ``None``. The sign is kept; callers
    decide whether negative values make sense.
    """
    m = _INT.fullmatch(_norm(text))
    if m is None:
        return None
    digits = m.group("num").replace(",", "").lstrip("0") or "0"
    if len(digits) > _MAX_INT_DIGITS:
        return None
    value = int(digits)
    return -value if m.group("sign") == "-" else value


_MINUTES = re.compile(r"(?P<num>\d{1,4})\s*(?:分钟|分|minutes?|mins?|m)?", re.IGNORECASE)


def parse_minutes(text: str) -> int | None:
    """A number of minutes: ``45``, ``45分钟``, ``45 min``; anything else gives ``None``."""
    m = _MINUTES.fullmatch(_norm(text))
    return int(m.group("num")) if m else None


# ---------------------------------------------------------------------------
# Dates
# ---------------------------------------------------------------------------

_MIN_YEAR, _MAX_YEAR = 1900, 2199
# Optional time part that Excel/CSV exports append to dates: "2026-11-03 00:00:00".
_TIME = r"(?:[ T]\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?)?"
_FULL_DATE = re.compile(r"(\d{4})\s*([-/.])\s*(\d{1,2})\s*\2\s*(\d{1,2})" + _TIME)
_CN_DATE = re.compile(r"(\d{4})\s*年\s*(\d{1,2})\s*月\s*(\d{1,2})\s*[日号]?" + _TIME)
_COMPACT_DATE = re.compile(r"(\d{4})(\d{2})(\d{2})")
_MONTH_DAY = re.compile(r"(\d{1,2})\s*[-/]\s*(\d{1,2})")
_CN_MONTH_DAY = re.compile(r"(\d{1,2})\s*月\s*(\d{1,2})\s*[日号]?")
_RELATIVE = {
    "今天": 0, "今日": 0, "today": 0,
    "明天": 1, "明日": 1, "tomorrow": 1,
    "后天": 2, "後天": 2, "day after tomorrow": 2, "the day after tomorrow": 2,
}


def _make_date(year: int, month: int, day: int) -> date | None:
    if not _MIN_YEAR <= year <= _MAX_YEAR:
        return None
    try:
        return date(year, month, day)
    except ValueError:
        return None


def parse_date(text: str, *, today: date | None = None) -> date | None:
    """Parse a calendar date.

    Always understood: ``2026-11-03``, ``2026/11/3``, ``2026.11.3``,
    ``2026年11月3日`` (or ``号``), ``20261103``, optionally followed by a time
    (``2026-11-03 00:00:00``, which is what many exports produce).

    Only with *today* given: ``12-3``, ``12/3``, ``12月3日`` mean the next
    occurrence of that month/day on or after *today* (so this year, or next
    year once the day has passed; ``2月29日`` is ``None`` if the year chosen
    that way is not a leap year), and ``今天/today``, ``明天/tomorrow``,
    ``后天/day after tomorrow``.

    Impossible dates (``2026-02-30``) and years outside 1900-2199 give ``None``.
    """
    s = _norm(text)
    m = _FULL_DATE.fullmatch(s)
    if m:
        return _make_date(int(m[1]), int(m[3]), int(m[4]))
    m = _CN_DATE.fullmatch(s) or _COMPACT_DATE.fullmatch(s)
    if m:
        return _make_date(int(m[1]), int(m[2]), int(m[3]))
    if today is None:
        return None
    offset = _RELATIVE.get(s.lower())
    if offset is not None:
        return today + timedelta(days=offset)
    m = _MONTH_DAY.fullmatch(s) or _CN_MONTH_DAY.fullmatch(s)
    if m:
        month, day = int(m[1]), int(m[2])
        year = today.year if (month, day) >= (today.month, today.day) else today.year + 1
        return _make_date(year, month, day)
    return None


# Day 0 of the 1900 date system as Excel counts it (serial 60 is the fake 1900-02-29,
# so for every serial from 61 on, this base gives the right day).
_EXCEL_EPOCH = date(1899, 12, 30)
_EXCEL_MAX_SERIAL = 2_958_465  # 9999-12-31


def excel_date(value: object, *, today: date | None = None) -> date | None:
    """Turn a spreadsheet cell value into a date.

    * ``datetime`` → its date; ``date`` → itself;
    * ``int``/``float`` → an Excel serial day number (1900 date system, the
      time of day is dropped), except 8-digit whole numbers such as
      ``20261103``, which bank systems often store as numbers and which are
      read as ``YYYYMMDD``;
    * ``str`` → :func:`parse_date` (``today`` is passed on);
    * anything else (``None``, ``bool``, ``time``) → ``None``.
    """
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        return parse_date(value, today=today)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value == int(value) and 10_000_000 <= value <= 99_999_999:
        return parse_date(str(int(value)))
    serial = math.floor(value)
    if not 1 <= serial <= _EXCEL_MAX_SERIAL:
        return None
    result = _EXCEL_EPOCH + timedelta(days=serial)
    return result if result.year >= _MIN_YEAR else None


# ---------------------------------------------------------------------------
# Phones
# ---------------------------------------------------------------------------

_MOBILE = re.compile(r"1[3-9]\d{9}")
_PHONE_NOISE = re.compile(r"[\s\-()]")


def normalize_mobile(text: str) -> str | None:
    """Normalise a mainland China mobile number to its 11 digits.

    Spaces, dashes and brackets are ignored, and a ``+86``, ``0086`` or
    ``86`` country prefix is dropped (``+86 138-0013-8000`` → ``13800138000``).
    Returns ``None`` unless the result matches ``1[3-9]`` + 9 digits
    (landlines, short numbers and numbers mangled by Excel into ``1.38E+10``
    are not mobiles).
    """
    s = _PHONE_NOISE.sub("", unicodedata.normalize("NFKC", text).translate(_INVISIBLE))
    for prefix in ("+86", "0086", "86"):
        if s.startswith(prefix) and len(s) == len(prefix) + 11:
            s = s[len(prefix):]
            break
    return s if _MOBILE.fullmatch(s) else None

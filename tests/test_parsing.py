from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date, datetime, time
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.services.masking import mask_id_number
from bot.services.parsing import (
    clean_text,
    excel_date,
    normalize_mobile,
    parse_amount,
    parse_date,
    parse_int,
    parse_minutes,
)

FULL_WIDTH = str.maketrans("0123456789,.", "０１２３４５６７８９，．")


# ---------------------------------------------------------------------------
# parse_amount
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("12,345.60", "12345.60"),
        ("¥12345.6", "12345.60"),
        ("￥1,200", "1200.00"),
        ("1200元", "1200.00"),
        ("1200.5 元", "1200.50"),
        ("RMB 300", "300.00"),
        ("rmb300", "300.00"),
        ("CNY 1,000,000.01", "1000000.01"),
        ("人民币5000元整", "5000.00"),
        ("１２００", "1200.00"),
        ("１，２００．５０", "1200.50"),
        ("  ¥ 88  ", "88.00"),
        ("\u30001200\u3000", "1200.00"),
        (".5", "0.50"),
        ("1.500", "1.50"),  # trailing zeros are not "more decimals"
        ("0", "0.00"),
        ("-300", "-300.00"),
        ("¥-3", "-3.00"),
        ("-¥3", "-3.00"),
        ("−12.5", "-12.50"),  # U+2212 minus sign
        ("+7", "7.00"),
        ("999,999,999,999,999.99", "999999999999999.99"),
        ("0001200", "1200.00"),
    ],
)
def test_parse_amount_accepts(text: str, expected: str) -> None:
    result = parse_amount(text)
    assert result == Decimal(expected)
    assert result is not None and result.as_tuple().exponent == -2


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "abc",
        "1.005",
        "12.345",
        "1,20",  # could be a European decimal comma
        "12,34,567",
        "1 200",
        "1e5",
        "NaN",
        "Infinity",
        "12元5角",
        "1.2万",
        "$300",
        "5.",
        "--5",
        "¥",
        "9" * 16,
        "9" * 5000,
    ],
)
def test_parse_amount_rejects(text: str) -> None:
    assert parse_amount(text) is None


money = st.decimals(
    min_value=Decimal("-999999999999.99"),
    max_value=Decimal("999999999999.99"),
    places=2,
    allow_nan=False,
    allow_infinity=False,
)
FORMATS: list[Callable[[Decimal], str]] = [
    lambda d: f"{d:f}",
    lambda d: f"{d:,.2f}",
    lambda d: f"¥{d:,.2f}",
    lambda d: f"￥{d:f}",
    lambda d: f"{d:,.2f}元",
    lambda d: f"{d:f} 元",
    lambda d: f"RMB {d:,.2f}",
    lambda d: f"{d:,.2f}".translate(FULL_WIDTH),
    lambda d: f"  {d.normalize():f}\u3000",
]


@given(value=money, fmt=st.sampled_from(FORMATS))
def test_parse_amount_round_trips_formatted_decimals(value: Decimal, fmt: Callable[[Decimal], str]) -> None:
    text = fmt(value)
    assert parse_amount(text) == value, text


@given(st.text(max_size=20))
def test_parse_amount_never_raises_and_keeps_cents(text: str) -> None:
    result = parse_amount(text)
    assert result is None or result.as_tuple().exponent == -2


# ---------------------------------------------------------------------------
# parse_int
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30", 30),
        ("30天", 30),
        ("30 天", 30),
        ("30日", 30),
        ("30 days", 30),
        ("1 day", 1),
        ("1,200", 1200),
        ("３０", 30),
        ("30.0", 30),
        ("-3", -3),
        (" 0 ", 0),
        ("30.5", None),
        ("abc", None),
        ("", None),
        ("3O", None),
        ("1,20", None),
        ("9" * 19, None),
        ("9" * 5000, None),
        ("000000000000000000000042", 42),
    ],
)
def test_parse_int(text: str, expected: int | None) -> None:
    assert parse_int(text) == expected


# ---------------------------------------------------------------------------
# parse_date / excel_date
# ---------------------------------------------------------------------------

TODAY = date(2026, 11, 10)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-11-03", date(2026, 11, 3)),
        ("2026/11/3", date(2026, 11, 3)),
        ("2026.11.3", date(2026, 11, 3)),
        ("2026年11月3日", date(2026, 11, 3)),
        ("2026年11月3号", date(2026, 11, 3)),
        ("2026 年 11 月 3 日", date(2026, 11, 3)),
        ("20261103", date(2026, 11, 3)),
        ("２０２６－１１－０３", date(2026, 11, 3)),
        ("2026-11-03 00:00:00", date(2026, 11, 3)),
        ("2026/11/3 14:30", date(2026, 11, 3)),
        ("2026-11-03T08:00:00", date(2026, 11, 3)),
        ("2024-02-29", date(2024, 2, 29)),
        (" 2026-1-2 ", date(2026, 1, 2)),
    ],
)
def test_parse_date_absolute(text: str, expected: date) -> None:
    assert parse_date(text) == expected
    assert parse_date(text, today=TODAY) == expected


@pytest.mark.parametrize(
    "text",
    [
        "2026-02-30",
        "2026-13-01",
        "20260230",
        "2026-11/03",  # mixed separators
        "12345678",  # year 1234
        "26-11-03",
        "11/03/2026",
        "abc",
        "",
        "2026年11月",
    ],
)
def test_parse_date_invalid(text: str) -> None:
    assert parse_date(text, today=TODAY) is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("12-3", date(2026, 12, 3)),
        ("12/3", date(2026, 12, 3)),
        ("12月3日", date(2026, 12, 3)),
        ("12月3号", date(2026, 12, 3)),
        ("11/10", date(2026, 11, 10)),  # today itself
        ("11/9", date(2027, 11, 9)),  # passed yesterday: next year
        ("1月5日", date(2027, 1, 5)),
        ("今天", TODAY),
        ("today", TODAY),
        ("明天", date(2026, 11, 11)),
        ("Tomorrow", date(2026, 11, 11)),
        ("后天", date(2026, 11, 12)),
        ("day after tomorrow", date(2026, 11, 12)),
        ("2月30日", None),
        ("2月29日", None),  # 2027 is not a leap year
    ],
)
def test_parse_date_relative(text: str, expected: date | None) -> None:
    assert parse_date(text, today=TODAY) == expected
    assert parse_date(text) is None  # needs today


def test_parse_date_leap_day_next_occurrence() -> None:
    assert parse_date("2/29", today=date(2028, 1, 10)) == date(2028, 2, 29)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (datetime(2026, 11, 3, 15, 30), date(2026, 11, 3)),
        (date(2026, 11, 3), date(2026, 11, 3)),
        (46329, date(2026, 11, 3)),  # Excel serial
        (46329.75, date(2026, 11, 3)),  # serial with time of day
        (61, date(1900, 3, 1)),
        (20261103, date(2026, 11, 3)),  # yyyymmdd stored as a number
        (20261103.0, date(2026, 11, 3)),
        ("2026/11/3", date(2026, 11, 3)),
        (20261303, None),
        (0, None),
        (-5, None),
        (10**9, None),
        (float("nan"), None),
        (True, None),
        (None, None),
        (time(12, 0), None),
        ("garbage", None),
    ],
)
def test_excel_date(value: object, expected: date | None) -> None:
    assert excel_date(value) == expected


def test_excel_date_passes_today_to_parse_date() -> None:
    assert excel_date("明天", today=TODAY) == date(2026, 11, 11)


# ---------------------------------------------------------------------------
# normalize_mobile
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("13800138000", "13800138000"),
        ("138 0013 8000", "13800138000"),
        ("138-0013-8000", "13800138000"),
        ("+86 138 0013 8000", "13800138000"),
        ("+86-13800138000", "13800138000"),
        ("(+86) 13800138000", "13800138000"),
        ("8613800138000", "13800138000"),
        ("0086 13800138000", "13800138000"),
        ("１３８００１３８０００", "13800138000"),
        ("\u300019912345678\u3000", "19912345678"),
        ("12800138000", None),  # 12x is not a mobile prefix
        ("1380013800", None),  # 10 digits
        ("138001380001", None),
        ("010-12345678", None),  # landline
        ("1.38001E+10", None),  # Excel scientific notation
        ("+1 13800138000", None),
        ("", None),
        ("abc", None),
    ],
)
def test_normalize_mobile(text: str, expected: str | None) -> None:
    assert normalize_mobile(text) == expected


mobiles = st.from_regex(re.compile(r"1[3-9][0-9]{9}"), fullmatch=True)


@given(
    number=mobiles,
    prefix=st.sampled_from(["", "+86", "+86 ", "86", "0086", "0086 ", "+86-"]),
    grouping=st.sampled_from(["plain", "spaces", "dashes"]),
    full_width=st.booleans(),
)
def test_normalize_mobile_property(number: str, prefix: str, grouping: str, full_width: bool) -> None:
    body = number
    if grouping == "spaces":
        body = f"{number[:3]} {number[3:7]} {number[7:]}"
    elif grouping == "dashes":
        body = f"{number[:3]}-{number[3:7]}-{number[7:]}"
    text = prefix + body
    if full_width:
        text = text.translate(FULL_WIDTH)
    assert normalize_mobile(text) == number


@given(st.text(alphabet="0123456789+- ()", max_size=20))
def test_normalize_mobile_only_returns_valid_mobiles(text: str) -> None:
    result = normalize_mobile(text)
    assert result is None or re.fullmatch(r"1[3-9]\d{9}", result)


# ---------------------------------------------------------------------------
# mask_id_number / clean_text
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("11010119900101123X", "110101********123X"),
        ("11010119900101123x", "110101********123X"),
        (" 110101 19900101 1234 ", "110101********1234"),
        ("１１０１０１１９９００１０１１２３４", "110101********1234"),
        ("110101********123X", "110101********123X"),  # idempotent
        ("110101900101123", "***********1123"),  # old 15-digit ID
        ("E12345678", "*****5678"),  # passport
        ("1234", "****"),
        ("", ""),
    ],
)
def test_mask_id_number(text: str, expected: str) -> None:
    assert mask_id_number(text) == expected


@given(st.text(alphabet="0123456789X", min_size=5, max_size=30))
def test_mask_id_number_never_leaks_the_middle(text: str) -> None:
    masked = mask_id_number(text)
    assert len(masked) == len(text)
    assert masked.count("*") >= (8 if len(text) == 18 else len(text) - 4)


def test_clean_text() -> None:
    assert clean_text("\u3000张\u200b三 \t\n 李四\xa0") == "张三 李四"
    assert clean_text("") == ""


@pytest.mark.parametrize(("text", "expected"), [("45", 45), ("45分钟", 45), ("45 min", 45), ("９０分", 90),
                                                ("abc", None), ("1.5 hours", None), ("45天", None), ("", None)])
def test_parse_minutes(text: str, expected: int | None) -> None:
    assert parse_minutes(text) == expected

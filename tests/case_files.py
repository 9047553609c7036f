"""Builders for realistic bank case files, written into a test's ``tmp_path``.

Two levels:

* :func:`write_table_csv` / :func:`write_table_xlsx` write exactly the header
  and cells they are given (for malformed and edge-case files);
* :func:`write_cases_csv` / :func:`write_cases_xlsx` render :class:`BankCase`
  objects the way bank systems export them: Chinese or English headers in a
  shuffled order, extra columns (including the ``委托金额`` / "Entrusted
  Amount" trap that must *not* be read as the amount due, and a
  lower-priority ``户籍地址`` address), mixed date/amount/phone spellings in
  CSV, and real date/number cells in XLSX.

All people, ID numbers and phone numbers are made up.
"""

from __future__ import annotations

import csv
import io
import random
import re
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Literal

from openpyxl import Workbook

Lang = Literal["zh", "en"]
DateStyle = Literal["date", "datetime", "serial", "yyyymmdd", "text"]

_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"


def make_id_number(first17: str) -> str:
    """A mainland resident ID number with a correct check character."""
    assert len(first17) == 17 and first17.isdigit()
    total = sum(int(d) * w for d, w in zip(first17, _ID_WEIGHTS, strict=True))
    return first17 + _ID_CHECK[total % 11]


@dataclass(frozen=True)
class BankCase:
    case_no: str
    bank: str
    debtor_name: str
    id_number: str
    phone: str  # as the bank typed it ("" = none)
    address: str
    amount_due: Decimal
    overdue_days: int
    entrusted_on: date
    contract_end: date
    lat: float | None
    lon: float | None
    assignee: str  # "" = not assigned yet


ZH_HEADERS: dict[str, str] = {
    "case_no": "案件编号",
    "bank": "委托方",
    "debtor_name": "客户姓名",
    "id_number": "证件号码",
    "phone": "手机号码",
    "address": "家庭地址",
    "amount_due": "欠款金额（元）",
    "overdue_days": "逾期天数",
    "entrusted_on": "委托日期",
    "contract_end": "委托到期日",
    "lat": "纬度",
    "lon": "经度",
    "assignee": "外访员",
}
EN_HEADERS: dict[str, str] = {
    "case_no": "Case No",
    "bank": "BANK",
    "debtor_name": "Debtor Name",
    "id_number": "id_number",
    "phone": "Phone",
    "address": "Address",
    "amount_due": "amount due",
    "overdue_days": "Overdue_Days",
    "entrusted_on": "Entrusted On",
    "contract_end": "contract_end",
    "lat": "Lat",
    "lon": "LON",
    "assignee": "Assignee",
}
HEADERS: dict[Lang, dict[str, str]] = {"zh": ZH_HEADERS, "en": EN_HEADERS}

# Extra columns: header → function(case) giving the cell. The entrusted amount and the
# household-registration address differ from the real values on purpose.
EXTRA_COLUMNS: dict[Lang, dict[str, Callable[[BankCase], object]]] = {
    "zh": {
        "委托金额": lambda c: f"{c.amount_due * 2:.2f}",
        "户籍地址": lambda c: "户籍地:" + c.address[:3],
        "产品类型": lambda c: "信用卡",
        "备注": lambda c: "",
    },
    "en": {
        "Entrusted Amount": lambda c: f"{c.amount_due * 2:.2f}",
        "Product": lambda c: "credit card",
        "Remarks": lambda c: "",
    },
}


def sample_cases() -> list[BankCase]:
    """Three cases whose text is GBK-encodable."""
    return [
        BankCase(
            case_no="CS2026110001",
            bank="招商银行信用卡中心",
            debtor_name="张伟",
            id_number=make_id_number("11010519900307775"),
            phone="138 0013 8000",
            address="北京市朝阳区建国路88号SOHO现代城2号楼1503室",
            amount_due=Decimal("12345.60"),
            overdue_days=45,
            entrusted_on=date(2026, 11, 3),
            contract_end=date(2027, 2, 2),
            lat=39.9087,
            lon=116.4605,
            assignee="王磊",
        ),
        BankCase(
            case_no="CS2026110002",
            bank="平安银行",
            debtor_name="李娜",
            id_number=make_id_number("44030519850612342"),
            phone="+86-139-0013-9001",
            address="广东省深圳市南山区深南大道10000号腾讯大厦",
            amount_due=Decimal("8000.00"),
            overdue_days=120,
            entrusted_on=date(2026, 11, 3),
            contract_end=date(2027, 1, 31),
            lat=None,
            lon=None,
            assignee="陈静",
        ),
        BankCase(
            case_no="CS2026110003",
            bank="中国工商银行",
            debtor_name="王芳",
            id_number=make_id_number("32010219781123456"),
            phone="",
            address="江苏省南京市玄武区中山路18号 德基广场二期",
            amount_due=Decimal("3500.50"),
            overdue_days=0,
            entrusted_on=date(2026, 10, 15),
            contract_end=date(2027, 1, 15),
            lat=32.044,
            lon=118.784,
            assignee="",
        ),
    ]


def gb18030_case() -> BankCase:
    """A case whose debtor name (䶮, CJK Ext. A) exists in GB18030 but not in GBK."""
    return BankCase(
        case_no="CS2026110004",
        bank="广州银行",
        debtor_name="刘䶮",
        id_number=make_id_number("44010619920815123"),
        phone="0086 186 2000 1234",
        address="广东省广州市天河区珠江新城花城大道68号",
        amount_due=Decimal("56789.01"),
        overdue_days=200,
        entrusted_on=date(2026, 9, 1),
        contract_end=date(2026, 12, 31),
        lat=23.1201,
        lon=113.3245,
        assignee="王磊",
    )


# -- CSV renderings: each row uses the next spelling, as different clerks type differently.
_AMOUNT_STYLES: tuple[Callable[[Decimal], str], ...] = (
    lambda d: f"{d:,.2f}",  # 12,345.60
    lambda d: f"￥{d.normalize():f}",  # ￥8000 (full-width: the half-width ¥ is not in GBK)
    lambda d: f"{d.normalize():f}元",  # 3500.5元
    lambda d: f"RMB {d:,.2f}",  # RMB 56,789.01
)
_DATE_STYLES: tuple[Callable[[date], str], ...] = (
    lambda d: d.isoformat(),  # 2026-11-03
    lambda d: f"{d.year}/{d.month}/{d.day}",  # 2026/11/3
    lambda d: f"{d.year}年{d.month}月{d.day}日",  # 2026年10月15日
    lambda d: d.strftime("%Y%m%d"),  # 20260901
)
_CONTRACT_STYLES: tuple[Callable[[date], str], ...] = (
    lambda d: f"{d.isoformat()} 00:00:00",
    lambda d: d.strftime("%Y%m%d"),
    lambda d: f"{d.year}.{d.month}.{d.day}",
    lambda d: f"{d.year}/{d.month:02d}/{d.day:02d}",
)
_DAYS_STYLES: tuple[Callable[[int], str], ...] = (
    str,
    lambda n: f"{n}天",
    str,
    lambda n: f"{n}天",
)


def _csv_cells(case: BankCase, index: int) -> dict[str, str]:
    style = index % 4
    return {
        "case_no": case.case_no,
        "bank": case.bank,
        # the first row's name is padded with full-width spaces, as copied from a web page
        "debtor_name": f"\u3000{case.debtor_name}\u3000" if index == 0 else case.debtor_name,
        "id_number": case.id_number,
        "phone": case.phone,
        "address": case.address,
        "amount_due": _AMOUNT_STYLES[style](case.amount_due),
        "overdue_days": _DAYS_STYLES[style](case.overdue_days),
        "entrusted_on": _DATE_STYLES[style](case.entrusted_on),
        "contract_end": _CONTRACT_STYLES[style](case.contract_end),
        "lat": "" if case.lat is None else str(case.lat),
        "lon": "" if case.lon is None else str(case.lon),
        "assignee": case.assignee,
    }


def _shuffled_columns(lang: Lang, *, extra: bool, seed: int, fields: Sequence[str]) -> list[str]:
    """Column keys: field names and extra-column headers, shuffled."""
    columns = list(fields) + (list(EXTRA_COLUMNS[lang]) if extra else [])
    random.Random(seed).shuffle(columns)
    return columns


def write_table_csv(
    path: Path,
    header: Sequence[str],
    rows: Sequence[Sequence[str]],
    *,
    encoding: str = "utf-8",
    delimiter: str = ",",
    title_rows: Sequence[str] = (),
) -> Path:
    """Write a CSV exactly as given (CRLF line ends, like Excel); ``encoding`` may be
    ``utf-8``, ``utf-8-sig``, ``gbk``, ``gb18030``, ``utf-16``..."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=delimiter, lineterminator="\r\n")
    for title in title_rows:
        writer.writerow([title])
    writer.writerow(header)
    writer.writerows(rows)
    path.write_bytes(buffer.getvalue().encode(encoding))
    return path


def write_cases_csv(
    path: Path,
    cases: Sequence[BankCase],
    *,
    lang: Lang = "zh",
    encoding: str = "utf-8",
    delimiter: str = ",",
    extra: bool = True,
    seed: int = 7,
    fields: Sequence[str] = tuple(ZH_HEADERS),
) -> Path:
    """Cases as a bank's CSV export: shuffled columns, mixed value spellings."""
    columns = _shuffled_columns(lang, extra=extra, seed=seed, fields=fields)
    names = HEADERS[lang]
    header = [names.get(c, c) for c in columns]
    rows = []
    for index, case in enumerate(cases):
        cells = _csv_cells(case, index)
        extras = EXTRA_COLUMNS[lang]
        rows.append([cells[c] if c in cells else str(extras[c](case)) for c in columns])
    return write_table_csv(path, header, rows, encoding=encoding, delimiter=delimiter)


def write_table_xlsx(
    path: Path,
    header: Sequence[object],
    rows: Sequence[Sequence[object]],
    *,
    title_rows: Sequence[str] = (),
    sheet_name: str = "Sheet1",
    sheets_before: Sequence[str] = (),
    number_formats: dict[int, str] | None = None,
) -> Path:
    """Write an XLSX: optional sheets before the data sheet (each with a line of text),
    title rows merged across the table, then header and rows. A row that is
    ``[]`` leaves a really empty row. ``number_formats`` maps 0-based column
    index → Excel number format for the data cells."""
    workbook = Workbook()
    first = workbook.active
    assert first is not None
    sheets = [*sheets_before, sheet_name]
    first.title = sheets[0]
    for name in sheets[1:]:
        workbook.create_sheet(name)
    for name in sheets_before:
        workbook[name].append(["说明：本工作簿第二页为委案明细"])
    sheet = workbook[sheet_name]
    width = max(len(header), 1)
    for title in title_rows:
        sheet.append([title])
        if width > 1:
            sheet.merge_cells(
                start_row=sheet.max_row, start_column=1, end_row=sheet.max_row, end_column=width
            )
    sheet.append(list(header))
    for row in rows:
        if not row:
            sheet.append([])
            continue
        sheet.append(list(row))
        for index, fmt in (number_formats or {}).items():
            sheet.cell(row=sheet.max_row, column=index + 1).number_format = fmt
    workbook.save(path)
    return path


def _excel_date(value: date, style: DateStyle) -> object:
    if style == "date":
        return value
    if style == "datetime":
        return datetime(value.year, value.month, value.day)
    if style == "serial":
        return (value - date(1899, 12, 30)).days
    if style == "yyyymmdd":
        return int(value.strftime("%Y%m%d"))
    return value.isoformat()


def write_cases_xlsx(
    path: Path,
    cases: Sequence[BankCase],
    *,
    lang: Lang = "zh",
    extra: bool = True,
    seed: int = 11,
    title: str | None = "2026年11月委外催收案件明细表",
    sheet_name: str = "委案明细",
    sheets_before: Sequence[str] = (),
    date_styles: tuple[DateStyle, DateStyle] = ("datetime", "date"),
    blank_row_after: int | None = None,
) -> Path:
    """Cases as a bank's XLSX export: real date cells (``date_styles`` for
    entrusted_on / contract_end), amounts / days / coordinates / mobile numbers
    as numeric cells, a merged title row above the header, shuffled columns.
    ``blank_row_after=i`` leaves an empty sheet row after the i-th case."""
    columns = _shuffled_columns(lang, extra=extra, seed=seed, fields=tuple(ZH_HEADERS))
    names = HEADERS[lang]
    header = [names.get(c, c) for c in columns]
    formats: dict[int, str] = {}
    for index, column in enumerate(columns):
        if column == "amount_due":
            formats[index] = "#,##0.00"
        elif column == "entrusted_on" and date_styles[0] in ("date", "datetime"):
            formats[index] = "yyyy-mm-dd"
        elif column == "contract_end" and date_styles[1] in ("date", "datetime"):
            formats[index] = "yyyy/m/d"
    rows: list[list[object]] = []
    for number, case in enumerate(cases):
        phone_digits = "".join(ch for ch in case.phone if ch.isdigit())
        cells: dict[str, object] = {
            "case_no": case.case_no,
            "bank": case.bank,
            "debtor_name": case.debtor_name,
            "id_number": case.id_number,
            # Excel turns a typed mobile number into a number
            "phone": int(phone_digits[-11:]) if phone_digits else None,
            "address": case.address,
            "amount_due": float(case.amount_due),
            "overdue_days": case.overdue_days,
            "entrusted_on": _excel_date(case.entrusted_on, date_styles[0]),
            "contract_end": _excel_date(case.contract_end, date_styles[1]),
            "lat": case.lat,
            "lon": case.lon,
            "assignee": case.assignee or None,
        }
        extras = EXTRA_COLUMNS[lang]
        rows.append([cells[c] if c in cells else extras[c](case) for c in columns])
        if blank_row_after == number:
            rows.append([])
    return write_table_xlsx(
        path,
        header,
        rows,
        title_rows=(title,) if title else (),
        sheet_name=sheet_name,
        sheets_before=sheets_before,
        number_formats=formats,
    )


def with_wrong_dimension(path: Path) -> Path:
    """Rewrite every worksheet's ``<dimension ref=...>`` to ``A1``, as some report
    generators do; openpyxl's read-only mode trusts it unless told otherwise."""
    source = path.read_bytes()
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(source)) as zin, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zout:
        for item in zin.infolist():
            content = zin.read(item.filename)
            if item.filename.startswith("xl/worksheets/sheet"):
                content = re.sub(rb'<dimension ref="[^"]*"\s*/>', b'<dimension ref="A1"/>', content)
            zout.writestr(item, content)
    path.write_bytes(out.getvalue())
    return path


# ---------------------------------------------------------------------------
# A file mixing 20 good rows with every kind of bad row
# ---------------------------------------------------------------------------

MIXED_HEADER = [
    "外访员", "案件编号", "委托方", "客户姓名", "证件号码", "手机号码", "家庭地址", "欠款金额",
    "逾期天数", "委托日期", "委托到期日", "纬度", "经度", "备注",
]
_SURNAMES = "赵钱孙李周吴郑王冯陈褚卫蒋沈韩杨朱秦尤许"


def good_row(i: int) -> dict[str, str]:
    return {
        "外访员": "王磊" if i % 2 else "",
        "案件编号": f"HX{i:04d}",
        "委托方": "华夏银行",
        "客户姓名": _SURNAMES[i % len(_SURNAMES)] + "明",
        "证件号码": f"31011519800101{i:04d}",
        "手机号码": f"139{i:08d}",
        "家庭地址": f"上海市浦东新区世纪大道{i}号",
        "欠款金额": f"{1000 + i * 10}.50",
        "逾期天数": str(i * 3),
        "委托日期": "2026-11-01",
        "委托到期日": "2027-01-31",
        "纬度": "31.2304",
        "经度": "121.4737",
        "备注": "",
    }


def bad_row(i: int, **changes: str) -> dict[str, str]:
    row = good_row(100 + i)
    for key, value in changes.items():
        row[{
            "case_no": "案件编号", "bank": "委托方", "name": "客户姓名", "phone": "手机号码",
            "address": "家庭地址", "amount": "欠款金额", "days": "逾期天数", "entrusted": "委托日期",
            "end": "委托到期日", "lat": "纬度", "lon": "经度", "assignee": "外访员", "note": "备注",
        }[key]] = value
    return row


# (row number, reason, params) — bad row k is on sheet row 2k + 1 (after good row k).
BAD_ROWS: list[tuple[dict[str, str], int, str, dict[str, str]]] = [
    (bad_row(1, case_no=""), 3, "missing_case_no", {}),
    (bad_row(2, name="\u3000 "), 5, "missing_debtor_name", {}),
    (bad_row(3, address=""), 7, "missing_address", {}),
    (bad_row(4, bank=""), 9, "missing_bank", {}),
    (bad_row(5, amount="abc"), 11, "bad_amount", {"value": "abc"}),
    (bad_row(6, amount="0"), 13, "bad_amount", {"value": "0"}),
    (bad_row(7, amount="-100"), 15, "bad_amount", {"value": "-100"}),
    (bad_row(8, phone="1234567"), 17, "bad_phone", {"value": "1234567"}),
    (bad_row(9, entrusted="2026-02-30"), 19, "bad_date", {"field": "entrusted_on", "value": "2026-02-30"}),
    (bad_row(10, end="明天"), 21, "bad_date", {"field": "contract_end", "value": "明天"}),
    (
        bad_row(11, entrusted="2026/11/01", end="2026年10月1日"),
        23,
        "contract_before_entrusted",
        {"entrusted_on": "2026-11-01", "contract_end": "2026-10-01"},
    ),
    (bad_row(12, case_no="HX0001"), 25, "duplicate_case_no", {"first_row": "2", "case_no": "HX0001"}),
    (bad_row(13, assignee="赵六"), 27, "unknown_assignee", {"value": "赵六"}),
    (bad_row(14, lat="31.2", lon=""), 29, "bad_coordinates", {"value": "31.2,"}),
    (bad_row(15, lat="121.47", lon="31.23"), 31, "bad_coordinates", {"value": "121.47,31.23"}),
    (bad_row(16, days="-5"), 33, "bad_overdue_days", {"value": "-5"}),
    (bad_row(17, days="三十"), 35, "bad_overdue_days", {"value": "三十"}),
    # several problems: the first in CHECK_ORDER wins
    (bad_row(18, name="", amount="abc", phone="1"), 37, "missing_debtor_name", {}),
    # duplicates count against earlier rows even when those were rejected (row 9: missing bank)
    (bad_row(19, case_no="HX0104"), 39, "duplicate_case_no", {"first_row": "9", "case_no": "HX0104"}),
    # full-width case numbers are the same case
    (bad_row(20, case_no="ＨＸ０００２"), 41, "duplicate_case_no", {"first_row": "4", "case_no": "HX0002"}),
]
# after a blank row (42): one more bad row
LAST_BAD = (bad_row(21, amount="1.005", note="=HYPERLINK(\"http://x\")"), 43, "bad_amount", {"value": "1.005"})


def write_mixed(tmp_path: Path, fmt: str) -> Path:
    rows: list[list[str]] = []
    for k, (bad, *_) in enumerate(BAD_ROWS, start=1):
        rows.append(list(good_row(k).values()))
        rows.append(list(bad.values()))
    rows.append([])
    rows.append(list(LAST_BAD[0].values()))
    if fmt == "csv":
        return write_table_csv(tmp_path / "mixed.csv", MIXED_HEADER, rows, encoding="gb18030")
    return write_table_xlsx(tmp_path / "mixed.xlsx", MIXED_HEADER, rows)

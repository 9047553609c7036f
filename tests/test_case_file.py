from __future__ import annotations

import csv
import io
import random
import zipfile
from dataclasses import replace
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from bot.services.case_file import (
    CHECK_ORDER,
    COLUMN_ALIASES,
    REASON_CODES,
    CaseFileError,
    CaseRow,
    RawTable,
    Reject,
    map_header,
    read_case_file,
    validate_rows,
    write_rejects_csv,
)
from tests.case_files import (
    BAD_ROWS,
    LAST_BAD,
    MIXED_HEADER,
    ZH_HEADERS,
    DateStyle,
    Lang,
    gb18030_case,
    good_row,
    sample_cases,
    with_wrong_dimension,
    write_cases_csv,
    write_cases_xlsx,
    write_mixed,
    write_table_csv,
    write_table_xlsx,
)

KNOWN_ASSIGNEES = {"王磊", "陈静"}


def read(path: Path, *, sheet: str | None = None) -> RawTable:
    return read_case_file(path.read_bytes(), path.name, sheet=sheet)


def expected_rows(row_numbers: list[int]) -> list[CaseRow]:
    """What sample_cases() (+ gb18030_case() when 4 row numbers are given) must parse to."""
    rows = [
        CaseRow(
            row_number=0,
            case_no="CS2026110001",
            bank="招商银行信用卡中心",
            debtor_name="张伟",
            id_number_masked="110105********7753",
            phone="13800138000",
            address="北京市朝阳区建国路88号SOHO现代城2号楼1503室",
            amount_due=Decimal("12345.60"),
            overdue_days=45,
            entrusted_on=date(2026, 11, 3),
            contract_end=date(2027, 2, 2),
            lat=39.9087,
            lon=116.4605,
            assignee="王磊",
        ),
        CaseRow(
            row_number=0,
            case_no="CS2026110002",
            bank="平安银行",
            debtor_name="李娜",
            id_number_masked="440305********3427",
            phone="13900139001",
            address="广东省深圳市南山区深南大道10000号腾讯大厦",
            amount_due=Decimal("8000.00"),
            overdue_days=120,
            entrusted_on=date(2026, 11, 3),
            contract_end=date(2027, 1, 31),
            lat=None,
            lon=None,
            assignee="陈静",
        ),
        CaseRow(
            row_number=0,
            case_no="CS2026110003",
            bank="中国工商银行",
            debtor_name="王芳",
            id_number_masked="320102********456X",
            phone=None,
            address="江苏省南京市玄武区中山路18号 德基广场二期",
            amount_due=Decimal("3500.50"),
            overdue_days=0,
            entrusted_on=date(2026, 10, 15),
            contract_end=date(2027, 1, 15),
            lat=32.044,
            lon=118.784,
            assignee=None,
        ),
        CaseRow(
            row_number=0,
            case_no="CS2026110004",
            bank="广州银行",
            debtor_name="刘䶮",
            id_number_masked="440106********1235",
            phone="18620001234",
            address="广东省广州市天河区珠江新城花城大道68号",
            amount_due=Decimal("56789.01"),
            overdue_days=200,
            entrusted_on=date(2026, 9, 1),
            contract_end=date(2026, 12, 31),
            lat=23.1201,
            lon=113.3245,
            assignee="王磊",
        ),
    ]
    return [replace(row, row_number=n) for row, n in zip(rows, row_numbers, strict=False)]


# ---------------------------------------------------------------------------
# Formats
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("lang", ["zh", "en"])
@pytest.mark.parametrize(
    ("encoding", "detected"),
    [("utf-8", "utf-8"), ("utf-8-sig", "utf-8-sig"), ("gbk", "gb18030"), ("gb18030", "gb18030")],
)
def test_csv_encodings(tmp_path: Path, lang: Lang, encoding: str, detected: str) -> None:
    cases = sample_cases()
    if encoding == "gb18030":
        cases.append(gb18030_case())  # 䶮 is not in GBK
    path = write_cases_csv(tmp_path / "cases.csv", cases, lang=lang, encoding=encoding)
    if encoding == "gbk":
        with pytest.raises(UnicodeDecodeError):
            path.read_bytes().decode("utf-8")  # really not UTF-8

    table = read(path)

    assert (table.format, table.encoding, table.delimiter, table.header_row) == ("csv", detected, ",", 1)
    assert set(table.column_map) == set(COLUMN_ALIASES)
    result = validate_rows(table, default_bank=None, known_assignee=KNOWN_ASSIGNEES.__contains__)
    assert result.rejects == []
    assert result.good == expected_rows(list(range(2, 2 + len(cases))))


@pytest.mark.parametrize("lang", ["zh", "en"])
@pytest.mark.parametrize("delimiter", ["\t", ";"])
def test_csv_delimiters(tmp_path: Path, lang: Lang, delimiter: str) -> None:
    path = write_cases_csv(tmp_path / "cases.txt", sample_cases(), lang=lang, delimiter=delimiter)
    table = read(path)
    assert table.delimiter == delimiter
    assert validate_rows(table, default_bank=None).good == expected_rows([2, 3, 4])


def test_utf16_tab_separated_unicode_text(tmp_path: Path) -> None:
    """Excel's "Unicode Text (*.txt)" export."""
    path = write_cases_csv(tmp_path / "cases.txt", sample_cases(), encoding="utf-16", delimiter="\t")
    table = read(path)
    assert (table.encoding, table.delimiter) == ("utf-16", "\t")
    assert validate_rows(table, default_bank=None).good == expected_rows([2, 3, 4])


def test_csv_raw_table(tmp_path: Path) -> None:
    path = write_cases_csv(tmp_path / "cases.csv", sample_cases()[:1], seed=3)
    table = read(path)
    # original header texts, shuffled order, extra columns kept
    assert table.headers == [
        "委托日期", "证件号码", "欠款金额（元）", "户籍地址", "经度", "产品类型", "客户姓名", "外访员",
        "案件编号", "委托方", "委托金额", "纬度", "备注", "委托到期日", "家庭地址", "手机号码", "逾期天数",
    ]
    assert table.column_map["address"] == "家庭地址"  # beats 户籍地址
    assert table.column_map["amount_due"] == "欠款金额（元）"  # 委托金额 is not the amount due
    number, values = table.rows[0]
    assert number == 2
    assert values["委托金额"] == "24691.20"
    assert values["客户姓名"] == "\u3000张伟\u3000"  # raw: trimmed only by validation


@pytest.mark.parametrize("lang", ["zh", "en"])
@pytest.mark.parametrize(
    "date_styles",
    [("datetime", "date"), ("serial", "yyyymmdd"), ("text", "datetime")],
)
def test_xlsx(tmp_path: Path, lang: Lang, date_styles: tuple[DateStyle, DateStyle]) -> None:
    cases = [*sample_cases(), gb18030_case()]
    path = write_cases_xlsx(
        tmp_path / "cases.xlsx", cases, lang=lang, date_styles=date_styles, blank_row_after=1
    )

    table = read(path)

    assert (table.format, table.encoding, table.sheet, table.header_row) == ("xlsx", None, "委案明细", 2)
    # row 1 is the title, row 2 the header, row 5 is empty
    assert [number for number, _ in table.rows] == [3, 4, 6, 7]
    result = validate_rows(table, default_bank=None, known_assignee=KNOWN_ASSIGNEES.__contains__)
    assert result.rejects == []
    assert result.good == expected_rows([3, 4, 6, 7])


def test_xlsx_keeps_native_cell_values(tmp_path: Path) -> None:
    path = write_cases_xlsx(tmp_path / "cases.xlsx", sample_cases()[:1])
    (_, values), = read(path).rows
    assert values["欠款金额（元）"] == 12345.6
    assert values["手机号码"] == 13800138000
    assert values["逾期天数"] == 45
    assert values["委托日期"] == datetime(2026, 11, 3)  # a real date cell
    assert values["备注"] == ""


def test_xlsx_named_sheet(tmp_path: Path) -> None:
    path = write_cases_xlsx(tmp_path / "cases.xlsx", sample_cases(), sheets_before=["说明"])
    with pytest.raises(CaseFileError) as error:
        read(path)  # the first sheet only holds a note
    assert error.value.code == "no_header"
    for name in ("委案明细", " 委案明细 "):
        table = read(path, sheet=name)
        assert table.sheet == "委案明细"
        assert [c.case_no for c in validate_rows(table, default_bank=None).good] == [
            "CS2026110001", "CS2026110002", "CS2026110003",
        ]


def test_xlsx_sheet_name_is_case_insensitive(tmp_path: Path) -> None:
    path = write_cases_xlsx(tmp_path / "cases.xlsx", sample_cases(), sheet_name="Cases", title=None)
    assert read(path, sheet="cases").header_row == 1


def test_xlsx_unknown_sheet(tmp_path: Path) -> None:
    path = write_cases_xlsx(tmp_path / "cases.xlsx", sample_cases())
    with pytest.raises(CaseFileError) as error:
        read(path, sheet="Sheet9")
    assert error.value.code == "unknown_sheet"
    assert "委案明细" in error.value.detail


def test_xlsx_with_wrong_dimension(tmp_path: Path) -> None:
    """Some generators write <dimension ref="A1"/>; read-only openpyxl must not trust it."""
    path = with_wrong_dimension(write_cases_xlsx(tmp_path / "cases.xlsx", sample_cases()))
    assert validate_rows(read(path), default_bank=None).good == expected_rows([3, 4, 5])


def test_format_is_detected_by_content_not_name(tmp_path: Path) -> None:
    xlsx = write_cases_xlsx(tmp_path / "a.xlsx", sample_cases())
    csv_file = write_cases_csv(tmp_path / "b.csv", sample_cases())
    assert read_case_file(xlsx.read_bytes(), "cases.csv").format == "xlsx"
    assert read_case_file(csv_file.read_bytes(), "cases.xls").format == "csv"


# ---------------------------------------------------------------------------
# Header detection
# ---------------------------------------------------------------------------


def test_title_rows_and_blank_lines_above_header(tmp_path: Path) -> None:
    path = write_table_csv(
        tmp_path / "cases.csv",
        ["案件编号", "客户姓名", "地址", "欠款金额", "委托方"],
        [["A1", "张三", "北京", "100", "华夏银行"], ["", "", "", "", ""], ["A2", "李四", "上海", "200", ""]],
        title_rows=["XX银行委外案件清单", "", "导出时间：2026-11-03"],
        encoding="utf-8-sig",
    )
    table = read(path)
    assert table.header_row == 4
    assert [n for n, _ in table.rows] == [5, 7]
    result = validate_rows(table, default_bank="默认银行")
    assert [(r.row_number, r.bank) for r in result.good] == [(5, "华夏银行"), (7, "默认银行")]


def test_header_must_be_in_first_ten_rows(tmp_path: Path) -> None:
    path = write_table_csv(
        tmp_path / "cases.csv",
        ["案件编号", "客户姓名", "地址", "欠款金额"],
        [["A1", "张三", "北京", "100"]],
        title_rows=[f"说明第{i}行" for i in range(10)],
    )
    with pytest.raises(CaseFileError) as error:
        read(path)
    assert error.value.code == "no_header"


@pytest.mark.parametrize(
    "header",
    [
        ["案件编号", "客户姓名", "金额"],  # no address
        ["编号", "名字", "位置"],
        ["a", "b", "c"],
    ],
)
def test_no_header(tmp_path: Path, header: list[str]) -> None:
    path = write_table_csv(tmp_path / "x.csv", header, [["1", "2", "3"]])
    with pytest.raises(CaseFileError) as error:
        read(path)
    assert error.value.code == "no_header"


def test_header_normalisation() -> None:
    assert map_header(
        ["*案件编号", "Case No.", " 客户 姓名 ", "DEBTOR_NAME", "家庭地址【必填】", "Amount-Due",
         "欠款金额(元)", "委托金额", "本金", "联系电话", "Longitude", "坐标纬度", "身份证号码"]
    ) == {
        "case_no": 0,  # 案件编号 outranks case_no
        "debtor_name": 2,
        "address": 4,
        "amount_due": 6,
        "phone": 9,
        "lon": 10,
        "lat": 11,
        "id_number": 12,
    }


def test_alias_tables_are_consistent() -> None:
    assert set(ZH_HEADERS) == set(COLUMN_ALIASES)
    for aliases in COLUMN_ALIASES.values():
        assert "委托金额" not in aliases


def test_duplicate_empty_and_unnamed_columns(tmp_path: Path) -> None:
    path = write_table_csv(
        tmp_path / "x.csv",
        ["案件编号", "备注", "客户姓名", "", "地址", "备注", "欠款金额"],
        [
            ["A1", "r1", "张三", "x", "北京", "r2", "100"],
            ["A2", "", "李四", "", "上海", "", "200", "", "overflow"],
        ],
    )
    table = read(path)
    assert table.headers == [
        "案件编号", "备注", "客户姓名", "column_4", "地址", "备注_2", "欠款金额", "column_8", "column_9",
    ]
    assert table.rows[0][1]["备注_2"] == "r2"
    assert table.rows[0][1]["column_9"] == ""
    assert table.rows[1][1]["column_9"] == "overflow"


# ---------------------------------------------------------------------------
# Broken files
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (b"", "empty"),
        (b"\xef\xbb\xbf", "empty"),
        (b"\r\n\r\n  \r\n", "empty"),
        (b",,,\r\n,,,\r\n", "empty"),
        ("案件编号,客户姓名,地址\r\n".encode(), "empty"),  # header but no data
        ("案件编号,客户姓名,地址\r\n,,\r\n".encode("gbk"), "empty"),
        (random.Random(1).randbytes(4000), "unreadable"),
        (b"\x00\x01\x02\x03" * 100, "unreadable"),
        ("案件编号,客户姓名,地址\r\nA1,张三,北京\x00\r\n".encode(), "unreadable"),
        (b"PK\x03\x04" + random.Random(2).randbytes(500), "unreadable"),
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(600), "unknown_format"),  # legacy .xls
        (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n", "unknown_format"),
        (b"\x89PNG\r\n\x1a\n" + bytes(100), "unknown_format"),
        (b"<html><body><table><tr><td>x</td></tr></table></body></html>", "unknown_format"),
        (b"just some text\nwithout any header\n", "no_header"),
    ],
)
def test_bad_files(data: bytes, code: str) -> None:
    with pytest.raises(CaseFileError) as error:
        read_case_file(data, "upload.bin")
    assert error.value.code == code
    assert "upload.bin" in error.value.detail


def test_truncated_xlsx_is_unreadable(tmp_path: Path) -> None:
    data = write_cases_xlsx(tmp_path / "cases.xlsx", sample_cases()).read_bytes()
    with pytest.raises(CaseFileError) as error:
        read_case_file(data[: len(data) // 2], "cases.xlsx")
    assert error.value.code == "unreadable"


def test_xlsx_with_broken_sheet_xml_is_unreadable(tmp_path: Path) -> None:
    source = write_cases_xlsx(tmp_path / "cases.xlsx", sample_cases()).read_bytes()
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(source)) as zin, zipfile.ZipFile(out, "w") as zout:
        for item in zin.infolist():
            content = zin.read(item.filename)
            if item.filename.startswith("xl/worksheets/"):
                content = content[: len(content) // 2]
            zout.writestr(item, content)
    with pytest.raises(CaseFileError) as error:
        read_case_file(out.getvalue(), "cases.xlsx")
    assert error.value.code == "unreadable"


def test_zip_that_is_not_a_workbook(tmp_path: Path) -> None:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("cases.csv", "案件编号,客户姓名,地址\r\nA1,张三,北京\r\n")
    with pytest.raises(CaseFileError) as error:
        read_case_file(out.getvalue(), "cases.zip")
    assert error.value.code == "unknown_format"


def test_xlsx_with_header_only_is_empty(tmp_path: Path) -> None:
    path = write_table_xlsx(tmp_path / "x.xlsx", ["案件编号", "客户姓名", "地址"], [[], [None, "  ", None]])
    with pytest.raises(CaseFileError) as error:
        read(path)
    assert error.value.code == "empty"


# ---------------------------------------------------------------------------
# Validation
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
def test_mixed_file(tmp_path: Path, fmt: str) -> None:
    table = read(write_mixed(tmp_path, fmt))
    result = validate_rows(table, default_bank=None, known_assignee=KNOWN_ASSIGNEES.__contains__)

    assert [row.case_no for row in result.good] == [f"HX{i:04d}" for i in range(1, 21)]
    assert [row.row_number for row in result.good] == list(range(2, 41, 2))
    assert [(r.row_number, r.reason, r.params) for r in result.rejects] == [
        (number, reason, params) for _, number, reason, params in [*BAD_ROWS, LAST_BAD]
    ]
    assert {r.reason for r in result.rejects} == REASON_CODES - {"bad_portfolio"}  # tests/test_targets.py
    first = result.good[0]
    assert first == CaseRow(
        row_number=2,
        case_no="HX0001",
        bank="华夏银行",
        debtor_name="钱明",
        id_number_masked="310115********0001",
        phone="13900000001",
        address="上海市浦东新区世纪大道1号",
        amount_due=Decimal("1010.50"),
        overdue_days=3,
        entrusted_on=date(2026, 11, 1),
        contract_end=date(2027, 1, 31),
        lat=31.2304,
        lon=121.4737,
        assignee="王磊",
    )
    # the original cells are kept, with the ID number masked
    reject = result.rejects[0]
    assert reject.original["客户姓名"] == good_row(101)["客户姓名"]
    assert reject.original["证件号码"] == "310115********0101"
    assert list(reject.original) == MIXED_HEADER


def test_mixed_file_with_default_bank_and_no_assignee_check(tmp_path: Path) -> None:
    table = read(write_mixed(tmp_path, "csv"))
    result = validate_rows(table, default_bank="华夏银行")
    reasons = {r.row_number: r.reason for r in result.rejects}
    assert 9 not in reasons  # blank bank → default bank
    assert 27 not in reasons  # assignees not checked
    good = {row.row_number: row for row in result.good}
    assert good[9].bank == "华夏银行"
    assert good[27].assignee == "赵六"
    assert reasons[39] == "duplicate_case_no"


def test_check_order_is_the_documented_one() -> None:
    assert CHECK_ORDER == (
        "missing_case_no", "duplicate_case_no", "missing_bank", "missing_debtor_name", "missing_address",
        "bad_amount", "bad_phone", "bad_overdue_days", "bad_date", "contract_before_entrusted",
        "bad_coordinates", "unknown_assignee", "bad_portfolio",
    )


def _table(rows: list[dict[str, object]], headers: list[str] | None = None) -> RawTable:
    headers = headers or list(rows[0])
    column_map = {field: h for h in headers for field, idx in map_header([h]).items() if idx == 0}
    return RawTable(
        headers=headers,
        rows=[(i + 2, row) for i, row in enumerate(rows)],
        format="csv",
        encoding="utf-8",
        column_map=column_map,
    )


def _one(**cells: object) -> CaseRow | Reject:
    base: dict[str, object] = {"案件编号": "A1", "客户姓名": "张三", "地址": "北京市", "欠款金额": "100"}
    base.update(cells)
    result = validate_rows(_table([base]), default_bank="银行")
    return (result.good or result.rejects)[0]


@pytest.mark.parametrize(
    ("cells", "expected"),
    [
        ({"手机号码": ""}, None),
        ({"手机号码": "  "}, None),
        ({"手机号码": "13800138000/13900139000"}, "13800138000"),
        ({"手机号码": "13800138000、13900139000"}, "13800138000"),
        ({"手机号码": 13800138000}, "13800138000"),
        ({"手机号码": 13800138000.0}, "13800138000"),
        ({"手机号码": '="13800138000"'}, "13800138000"),
    ],
)
def test_phone_variants(cells: dict[str, object], expected: str | None) -> None:
    row = _one(**cells)
    assert isinstance(row, CaseRow)
    assert row.phone == expected


@pytest.mark.parametrize(
    "value",
    ["13800138000/12345", "010-88886666", "1.38001E+10", "13800138000 13900139000"],
)
def test_bad_phone_variants(value: str) -> None:
    reject = _one(手机号码=value)
    assert isinstance(reject, Reject)
    assert (reject.reason, reject.params) == ("bad_phone", {"value": value})


@pytest.mark.parametrize(
    ("cells", "reason"),
    [
        ({"纬度": "0", "经度": "0"}, "bad_coordinates"),
        ({"纬度": "abc", "经度": "116.4"}, "bad_coordinates"),
        ({"纬度": "", "经度": "116.4"}, "bad_coordinates"),
        ({"纬度": "91", "经度": "116.4"}, "bad_coordinates"),
        ({"纬度": "39.9", "经度": "-181"}, "bad_coordinates"),
        ({"委托日期": 3}, "bad_date"),  # a stray number in a date column, not 1900-01-02
        ({"委托日期": "1899-12-31"}, "bad_date"),
        ({"逾期天数": "30.5"}, "bad_overdue_days"),
        ({"欠款金额": ""}, "bad_amount"),
        ({"欠款金额": 1234.565}, "bad_amount"),
        ({"委托方": "", "案件编号": " "}, "missing_case_no"),
    ],
)
def test_single_row_rejects(cells: dict[str, object], reason: str) -> None:
    reject = _one(**cells)
    assert isinstance(reject, Reject)
    assert reject.reason == reason


def test_single_row_cleaning() -> None:
    row = _one(
        案件编号="\u3000 ＡＢ-001 ",
        客户姓名=" 欧阳\u3000 娜娜 ",
        地址="\t上海市  静安区\n南京西路1号\u200b",
        欠款金额=0.1 + 0.2,
        纬度="31.2°",
        经度="121.4°",
        逾期天数="30天",
        证件号码="'31011519800101123x",
        外访员=1001,
    )
    assert isinstance(row, CaseRow)
    assert (row.case_no, row.debtor_name, row.address) == ("AB-001", "欧阳 娜娜", "上海市 静安区 南京西路1号")
    assert (row.amount_due, row.lat, row.lon, row.overdue_days) == (Decimal("0.30"), 31.2, 121.4, 30)
    assert row.id_number_masked == "310115********123X"
    assert row.assignee == "1001"
    assert (row.entrusted_on, row.contract_end, row.phone) == (None, None, None)


def test_no_bank_column_uses_default_or_rejects() -> None:
    table = _table([{"案件编号": "A1", "客户姓名": "张三", "地址": "北京", "欠款金额": "1"}])
    assert "bank" not in table.column_map
    assert validate_rows(table, default_bank=" 华夏银行 ").good[0].bank == "华夏银行"
    assert validate_rows(table, default_bank=None).rejects[0].reason == "missing_bank"
    assert validate_rows(table, default_bank="  ").rejects[0].reason == "missing_bank"


def test_missing_amount_column_rejects_every_row() -> None:
    table = _table([{"案件编号": "A1", "客户姓名": "张三", "地址": "北京"}])
    reject = validate_rows(table, default_bank="B").rejects[0]
    assert (reject.reason, reject.params) == ("bad_amount", {"value": ""})


def test_full_id_number_is_never_kept() -> None:
    row = _one(证件号码="110101199001011234")
    assert "199001011234" not in repr(row)
    reject = _one(证件号码="110101199001011234", 欠款金额="x")
    assert "199001011234" not in repr(reject)


# ---------------------------------------------------------------------------
# Rejects CSV
# ---------------------------------------------------------------------------


def test_write_rejects_csv(tmp_path: Path) -> None:
    table = read(write_mixed(tmp_path, "csv"))
    result = validate_rows(table, default_bank=None, known_assignee=KNOWN_ASSIGNEES.__contains__)

    data = write_rejects_csv(table, list(reversed(result.rejects)), lambda r: f"原因:{r.reason}")

    assert data.startswith(b"\xef\xbb\xbf")
    assert b"\r\n" in data
    lines = list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))
    assert lines[0] == [*MIXED_HEADER, "行号/row", "原因/reason"]
    assert [(line[-2], line[-1]) for line in lines[1:]] == [
        (str(number), f"原因:{reason}") for _, number, reason, _ in [*BAD_ROWS, LAST_BAD]
    ]
    first = dict(zip(lines[0], lines[1], strict=True))
    assert first["案件编号"] == ""
    assert first["证件号码"] == "310115********0101"
    assert first["欠款金额"] == "2010.50"
    negative = dict(zip(lines[0], lines[7], strict=True))
    assert negative["欠款金额"] == "-100"  # plain numbers are not "formulas"
    last = dict(zip(lines[0], lines[-1], strict=True))
    assert last["备注"] == "'=HYPERLINK(\"http://x\")"  # CSV injection defused
    assert "310115198001010101" not in data.decode("utf-8-sig")


def test_rejects_csv_can_be_fixed_and_uploaded_again(tmp_path: Path) -> None:
    table = read(write_mixed(tmp_path, "xlsx"))
    result = validate_rows(table, default_bank=None)
    data = write_rejects_csv(table, result.rejects, lambda r: r.reason)

    again = read_case_file(data, "rejects.csv")
    assert again.encoding == "utf-8-sig"
    assert [n for n, _ in again.rows] == list(range(2, 2 + len(result.rejects)))
    # writing the rejects of the re-upload does not stack row/reason columns
    second = write_rejects_csv(again, validate_rows(again, default_bank=None).rejects, lambda r: r.reason)
    header = next(csv.reader(io.StringIO(second.decode("utf-8-sig"))))
    assert header == [*MIXED_HEADER, "行号/row", "原因/reason"]


def test_trailing_empty_header_cells_are_dropped(tmp_path: Path) -> None:
    path = write_table_csv(
        tmp_path / "x.csv", ["案件编号", "客户姓名", "地址", "欠款金额", "", ""], [["A1", "张三", "北京", "1", "", ""]]
    )
    table = read(path)
    assert table.headers == ["案件编号", "客户姓名", "地址", "欠款金额"]
    assert table.rows == [(2, {"案件编号": "A1", "客户姓名": "张三", "地址": "北京", "欠款金额": "1"})]

"""Reading and validating the case files that banks send us.

This is the parsing half of the case import; it does no I/O besides reading
the bytes it is given and knows nothing about the database or Telegram.

Pipeline::

    table = read_case_file(data, filename)            # CaseFileError on a bad file
    result = validate_rows(table, default_bank=...)   # CaseRow / Reject per data row
    csv_bytes = write_rejects_csv(table, result.rejects, reason_text)

Files
    XLSX (detected by content: a zip holding a workbook) or CSV. CSV text may
    be UTF-8 with or without BOM, GB18030/GBK, or UTF-16 with a BOM ("Unicode
    text" from Excel); the delimiter is a comma, tab or semicolon. Legacy
    ``.xls`` files, password-protected workbooks, ODS, PDF and images are
    ``unknown_format``.

Header
    The header is the first of the first 10 non-empty rows whose cells map to
    at least ``case_no``, ``debtor_name`` and ``address``, so title rows above
    it are fine. Headers are matched against :data:`COLUMN_ALIASES` ignoring
    case, spaces, ``_``/``-``/``.``/``*``/``:`` and anything in brackets
    (``欠款金额（元）`` is ``欠款金额``). Column order is free and unknown
    columns are kept in :attr:`RawTable.rows` but otherwise ignored.

Row numbers
    Always the row number a user sees in Excel: the header is row 1 and the
    first data row row 2 unless there are title rows. Empty rows are skipped but
    still counted.
"""

from __future__ import annotations

import codecs
import csv
import io
import itertools
import math
import re
import unicodedata
import warnings
import zipfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any, Final

from bot.services.masking import mask_id_number
from bot.services.parsing import (
    clean_text,
    excel_date,
    normalize_mobile,
    parse_amount,
    parse_date,
    parse_int,
)

__all__ = [
    "CHECK_ORDER",
    "COLUMN_ALIASES",
    "ERROR_CODES",
    "FIELDS",
    "OTHER_ALIASES",
    "PAYMENT_HEADER_REQUIRED",
    "REASON_CODES",
    "RECALL_HEADER_REQUIRED",
    "REJECTS_REASON_HEADER",
    "REJECTS_ROW_HEADER",
    "CaseFileError",
    "CaseFileStream",
    "CaseRow",
    "RawTable",
    "Reject",
    "Rejection",
    "RowChecker",
    "ValidationResult",
    "is_yes",
    "map_header",
    "open_case_file",
    "read_case_file",
    "sniff_kind",
    "validate_rows",
    "write_rejects_csv",
]

# ---------------------------------------------------------------------------
# Columns
# ---------------------------------------------------------------------------

#: Canonical field names, in the order used by :class:`CaseRow`.
FIELDS: Final = (
    "case_no",
    "bank",
    "debtor_name",
    "id_number",
    "phone",
    "address",
    "amount_due",
    "overdue_days",
    "entrusted_on",
    "contract_end",
    "lat",
    "lon",
    "assignee",
)

#: Header aliases per field, best first. When several columns of one file map to
#: the same field, the column with the best alias wins (leftmost on a tie) and
#: the others are treated as extra columns: e.g. ``家庭地址`` beats ``户籍地址``.
#:
#: Deliberately *not* aliases: ``委托金额`` / ``本金`` / ``金额`` (the amount
#: entrusted or the principal is not what is owed now), ``单位地址`` (work
#: address), ``合同号`` (a loan contract is not the case), ``固定电话``.
COLUMN_ALIASES: Final[dict[str, tuple[str, ...]]] = {
    "case_no": (
        "案件编号", "case_no", "案件号", "案号", "案件id", "委案编号", "case_id", "case_number",
        "case",
    ),
    "bank": ("委托方", "银行", "bank", "委托银行", "委托机构", "委托单位", "委托方名称", "client"),
    "debtor_name": (
        "客户姓名", "debtor_name", "姓名", "债务人姓名", "借款人姓名", "债务人", "借款人", "客户名称",
        "debtor", "customer_name", "name",
    ),
    "id_number": (
        "证件号码", "id_number", "身份证号码", "身份证号", "证件号", "身份证", "id_no", "id_card",
    ),
    "phone": (
        "手机号码", "phone", "手机号", "手机", "联系电话", "客户手机", "客户手机号", "移动电话", "电话",
        "电话号码", "联系方式", "mobile", "mobile_phone", "phone_number", "cellphone", "tel",
    ),
    "address": (
        "地址", "家庭地址", "address", "居住地址", "现居住地址", "现住址", "住址", "家庭住址",
        "联系地址", "外访地址", "home_address", "户籍地址",
    ),
    "amount_due": (
        "欠款金额", "amount_due", "欠款总额", "欠款", "剩余欠款", "应还金额", "待还金额", "逾期金额",
        "逾期总额", "outstanding", "outstanding_amount", "debt_amount",
    ),
    "overdue_days": ("逾期天数", "overdue_days", "逾期天", "逾期日数", "days_overdue", "dpd"),
    "entrusted_on": (
        "委托日期", "entrusted_on", "委案日期", "委托开始日期", "委托起始日", "entrust_date",
        "entrusted_date",
    ),
    "contract_end": (
        "委托到期日", "contract_end", "委托到期日期", "委托截止日", "委托截止日期", "委托结束日期",
        "退案日期", "委托到期", "entrust_end", "contract_end_date",
    ),
    "lat": ("纬度", "lat", "latitude", "坐标纬度", "地址纬度", "gps纬度"),
    "lon": ("经度", "lon", "lng", "longitude", "坐标经度", "地址经度", "gps经度"),
    "assignee": (
        "外访员", "assignee", "外访人员", "外访员姓名", "外访人", "催收员", "外访员工号", "collector",
        "field_agent", "agent",
    ),
}

#: How the banks' files name each portfolio (compared lower-case, spaces, ``-`` and ``_`` dropped).
PORTFOLIO_WORDS: Final[dict[str, str]] = {
    **dict.fromkeys(("信用卡", "信用卡分期", "creditcard", "card", "cc"), "credit_card"),
    **dict.fromkeys(("助学贷款", "学生贷款", "国家助学贷款", "生源地助学贷款", "studentloan", "student"),
                    "student_loan"),
    **dict.fromkeys(("应收账款", "应收款", "账款", "receivables", "receivable", "ar"), "receivables"),
}

#: Columns of the bank's other files, matched the same way: the recall flag a case file may carry, and a
#: repayment file's (bot/services/payments.py). Kept apart from the case file's own columns above.
OTHER_ALIASES: Final[dict[str, tuple[str, ...]]] = {
    # The bank's recall flag in a case file (是/yes/1: the bank takes the case back).
    "recall": ("召回", "recall", "是否召回", "召回标志", "recalled"),
    # A case's line of business: credit card (the default), student loan or receivables (see PORTFOLIO_WORDS).
    "portfolio": ("产品", "业务类型", "portfolio", "业务品种", "portfolio_type"),
    # The bank's repayment files (see bot/services/payments.py).
    "amount_paid": (
        "还款金额", "amount", "amount_paid", "实还金额", "还款额", "入账金额", "回款金额", "payment_amount", "paid",
    ),
    "paid_on": ("还款日期", "paid_on", "date_paid", "还款时间", "入账日期", "回款日期", "payment_date", "paid_date"),
    "channel": ("还款渠道", "channel", "还款方式", "支付渠道", "payment_channel"),
    "reference": ("流水号", "交易编号", "reference", "交易流水号", "银行流水号", "参考号", "ref", "transaction_id"),
}

#: Fields a header row must contain to be recognised as the header.
_HEADER_REQUIRED: Final = ("case_no", "debtor_name", "address")
#: Fields a repayment file's header must contain (and it has no address column).
PAYMENT_HEADER_REQUIRED: Final = ("case_no", "amount_paid", "paid_on")
#: A recall file only needs the case numbers (the bank may be a column, the --bank option or the caption).
RECALL_HEADER_REQUIRED: Final = ("case_no",)
_YES: Final = frozenset({"是", "y", "yes", "1", "true", "√", "✓", "召回", "x"})


def is_yes(value: object) -> bool:
    """A flag cell as the office fills it in: 是 / yes / 1 / TRUE / √ (anything else, or blank, is no)."""
    return unicodedata.normalize("NFKC", _text(value)).strip().lower() in _YES
_HEADER_SCAN_ROWS: Final = 10

_BRACKETED = re.compile(r"\(.*?\)|\[.*?\]|【.*?】|〔.*?〕|<.*?>")
_HEADER_NOISE = re.compile(r"[\s_\-.*:：#]+")


def _header_key(text: str) -> str:
    text = unicodedata.normalize("NFKC", clean_text(text)).lower()
    return _HEADER_NOISE.sub("", _BRACKETED.sub("", text))


_ALIAS_INDEX: Final[dict[str, tuple[str, int]]] = {}
for _field, _aliases in (*COLUMN_ALIASES.items(), *OTHER_ALIASES.items()):
    for _rank, _alias in enumerate(_aliases):
        _seen = _ALIAS_INDEX.setdefault(_header_key(_alias), (_field, _rank))
        if _seen[0] != _field:  # pragma: no cover - guards edits of COLUMN_ALIASES
            raise AssertionError(f"alias {_alias!r} is used for {_seen[0]} and {_field}")


def map_header(cells: Sequence[str]) -> dict[str, int]:
    """Map canonical field → column index for one header row (unknown cells are skipped)."""
    best: dict[str, tuple[int, int]] = {}
    for index, cell in enumerate(cells):
        hit = _ALIAS_INDEX.get(_header_key(cell))
        if hit is None:
            continue
        name, rank = hit
        if name not in best or rank < best[name][0]:
            best[name] = (rank, index)
    return {name: index for name, (_, index) in best.items()}


# ---------------------------------------------------------------------------
# Errors and tables
# ---------------------------------------------------------------------------

#: Codes of :class:`CaseFileError`.
ERROR_CODES: Final = ("unreadable", "unknown_format", "no_header", "unknown_sheet", "empty")


class CaseFileError(Exception):
    """The file as a whole cannot be imported.

    ``code`` is one of :data:`ERROR_CODES` (translate it for users); ``detail``
    is an English explanation for logs.
    """

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(f"{code}: {detail}")
        self.code = code
        self.detail = detail


@dataclass(frozen=True)
class RawTable:
    """A case file's cells, before validation.

    ``headers``: the header row's texts (trimmed) in file order, made unique:
    an empty header becomes ``column_<n>`` (n = 1-based column), a repeated
    one gets ``_2``, ``_3``... Data beyond the header's last column also gets
    ``column_<n>`` headers.

    ``rows``: ``(row_number, {header: value})`` for every non-empty data row.
    Values are the cell values as read: always ``str`` for CSV; for XLSX the
    openpyxl value (``str``, ``int``, ``float``, ``datetime``, ``bool``...),
    with empty cells as ``""``.

    ``format``: ``"csv"`` or ``"xlsx"``. ``encoding``: CSV text encoding
    (``"utf-8"``, ``"utf-8-sig"``, ``"gb18030"``, ``"utf-16"``), ``None`` for XLSX.

    ``column_map``: canonical field name → the header (key of ``rows``) it
    was read from, for the recognised fields only.
    """

    headers: list[str]
    rows: list[tuple[int, dict[str, str | object]]]
    format: str
    encoding: str | None
    column_map: dict[str, str]
    header_row: int = 1
    sheet: str | None = None
    delimiter: str | None = None


# ---------------------------------------------------------------------------
# Reading
# ---------------------------------------------------------------------------

_OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_OTHER_MAGIC: Final = (
    (b"%PDF", "a PDF document"),
    (b"\x89PNG", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF8", "a GIF image"),
    (b"Rar!", "a RAR archive"),
    (b"7z\xbc\xaf", "a 7-Zip archive"),
    (b"\x1f\x8b", "a gzip archive"),
)
_DELIMITERS: Final = (",", "\t", ";")


def read_case_file(data: bytes, filename: str, *, sheet: str | None = None,
                   required: Sequence[str] = _HEADER_REQUIRED) -> RawTable:
    """Read a bank's case file, every row held, into a :class:`RawTable` (see :func:`open_case_file`)."""
    return _build_table(open_case_file(data, filename, sheet=sheet, required=required))


def open_case_file(data: bytes, filename: str, *, sheet: str | None = None,
                   required: Sequence[str] = _HEADER_REQUIRED) -> CaseFileStream:
    """Open a bank's case file for reading row by row (:class:`CaseFileStream`).

    The format is detected from *data*; *filename* is only used in error
    details. *sheet* picks an XLSX worksheet by name (exact, else ignoring
    case and surrounding spaces); the default is the first worksheet. It is
    ignored for CSV. *required*: the fields a row must map to be the header (the case file's by
    default; :data:`PAYMENT_HEADER_REQUIRED` for a repayment file, :data:`RECALL_HEADER_REQUIRED`).

    Raises :class:`CaseFileError` with code ``empty`` (no bytes, or no data
    rows under the header), ``unknown_format``, ``unreadable`` (corrupt
    workbook, undecodable or binary text), ``unknown_sheet`` or ``no_header``.
    """
    if not data.strip(b" \t\r\n\x00\x1a").removeprefix(b"\xef\xbb\xbf").strip():
        raise CaseFileError("empty", f"{filename}: the file is empty")
    if data.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        return _open_xlsx(data, filename, sheet, tuple(required))
    if data.startswith(_OLE_MAGIC):
        raise CaseFileError(
            "unknown_format",
            f"{filename}: legacy .xls/.et workbook or password-protected file; save it as .xlsx or CSV",
        )
    for magic, what in _OTHER_MAGIC:
        if data.startswith(magic):
            raise CaseFileError("unknown_format", f"{filename}: this is {what}, not a spreadsheet")
    return _open_csv(data, filename, tuple(required))


def sniff_kind(data: bytes, filename: str, *, sheet: str | None = None) -> str:
    """``"payments"`` when the file's header has a case number, an amount paid and a date paid and no
    address (a bank's repayment file); ``"cases"`` otherwise (including files that cannot be read:
    the case import explains those)."""
    try:
        stream = open_case_file(data, filename, sheet=sheet, required=PAYMENT_HEADER_REQUIRED)
    except CaseFileError:
        return "cases"
    return "cases" if "address" in stream.column_index else "payments"


def _cell_text(value: object) -> str:
    """A cell value as text, the way a user would read it in Excel."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float):
        if not math.isfinite(value):
            return ""
        if value.is_integer() and abs(value) < 1e21:
            return str(int(value))
        return format(value, ".15g")
    if isinstance(value, datetime):
        if value.time() == time(0, 0):
            return value.date().isoformat()
        return value.isoformat(sep=" ", timespec="seconds")
    if isinstance(value, date | time):
        return value.isoformat()
    return str(value)


def _is_blank(value: object) -> bool:
    return clean_text(_cell_text(value)) == ""


Records = Callable[[], Iterator[tuple[int, Sequence[object]]]]


class CaseFileStream:
    """A case file read row by row: only the header is kept; :meth:`rows` reads the file again each time.

    ``column_index``: canonical field name → column position. :attr:`headers` grows with the widest
    data row seen so far, so it is final after one full pass of :meth:`rows`.
    """

    def __init__(self, records: Records, *, filename: str, fmt: str, encoding: str | None = None,
                 sheet: str | None = None, delimiter: str | None = None,
                 required: Sequence[str] = _HEADER_REQUIRED) -> None:
        self._records = records
        self.filename, self.format, self.encoding, self.sheet, self.delimiter = (
            filename, fmt, encoding, sheet, delimiter)
        header_cells: list[str] | None = None
        header_row = 0
        mapping: dict[str, int] = {}
        scanned = 0
        for row_number, cells in records():
            if all(_is_blank(c) for c in cells):
                continue
            texts = [clean_text(_cell_text(c)) for c in cells]
            found = map_header(texts)
            if all(f in found for f in required):
                header_cells, header_row, mapping = texts, row_number, found
                break
            scanned += 1
            if scanned >= _HEADER_SCAN_ROWS:
                break
        if header_cells is None:
            if scanned == 0:
                raise CaseFileError("empty", f"{filename}: the file has no rows")
            raise CaseFileError(
                "no_header",
                f"{filename}: none of the first {_HEADER_SCAN_ROWS} rows has columns for "
                + ", ".join({"case_no": "case number", "debtor_name": "debtor name"}.get(f, f.replace("_", " "))
                            for f in required),
            )
        while header_cells and not header_cells[-1]:
            header_cells.pop()
        self.header_cells = header_cells
        self.header_row = header_row
        self.column_index = mapping
        self.width = len(header_cells)

    def rows(self) -> Iterator[tuple[int, list[object]]]:
        """``(row_number, values)`` of every non-empty data row, trailing empty cells cut."""
        try:
            for row_number, cells in self._records():
                if row_number <= self.header_row or all(_is_blank(c) for c in cells):
                    continue
                values = ["" if c is None else c for c in cells]
                while values and _is_blank(values[-1]):
                    values.pop()
                if len(values) > self.width:
                    self.width = len(values)
                yield row_number, values
        except csv.Error as exc:
            raise CaseFileError("unreadable", f"{self.filename}: malformed CSV ({exc})") from exc

    @property
    def headers(self) -> list[str]:
        return _unique_headers(self.header_cells + [""] * (self.width - len(self.header_cells)))

    def table(self, rows: list[tuple[int, dict[str, str | object]]] | None = None) -> RawTable:
        headers = self.headers
        return RawTable(
            headers=headers,
            rows=rows or [],
            format=self.format,
            encoding=self.encoding,
            column_map={name: headers[index] for name, index in self.column_index.items()},
            header_row=self.header_row,
            sheet=self.sheet,
            delimiter=self.delimiter,
        )

    def as_dict(self, values: Sequence[object]) -> dict[str, str | object]:
        headers = self.headers
        return dict(zip(headers, list(values) + [""] * (len(headers) - len(values)), strict=True))

    def reject(self, row_number: int, values: Sequence[object], rejection: Rejection) -> Reject:
        """The :class:`Reject` of one row (call after a full pass, when :attr:`headers` is final)."""
        original = {h: clean_text(_cell_text(v)) for h, v in self.as_dict(values).items()}
        id_index = self.column_index.get("id_number")
        if id_index is not None:
            id_header = self.headers[id_index]
            if original.get(id_header):
                original[id_header] = mask_id_number(original[id_header])
        return Reject(row_number, original, rejection.reason, dict(rejection.params))

    def checker(self, *, default_bank: str | None,
                known_assignee: Callable[[str], bool] | None = None) -> RowChecker:
        return RowChecker(self.column_index, default_bank=default_bank, known_assignee=known_assignee)


def _build_table(stream: CaseFileStream) -> RawTable:
    data_rows = list(stream.rows())
    if not data_rows:
        raise CaseFileError("empty", f"{stream.filename}: there are no data rows under the header")
    return stream.table([(row_number, stream.as_dict(values)) for row_number, values in data_rows])


def _unique_headers(cells: list[str]) -> list[str]:
    # Trailing header cells that are empty and have no data under them were cut by the caller.
    names = [cell or f"column_{index + 1}" for index, cell in enumerate(cells)]
    seen: set[str] = set()
    result: list[str] = []
    for name in names:
        unique, n = name, 1
        while unique in seen:
            n += 1
            unique = f"{name}_{n}"
        seen.add(unique)
        result.append(unique)
    return result


def _open_xlsx(data: bytes, filename: str, sheet: str | None,
               required: Sequence[str] = _HEADER_REQUIRED) -> CaseFileStream:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            names = set(archive.namelist())
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise CaseFileError("unreadable", f"{filename}: damaged zip/xlsx file ({exc})") from exc
    if "[Content_Types].xml" not in names or not any(n.endswith("workbook.xml") for n in names):
        what = "an OpenDocument spreadsheet" if "mimetype" in names else "a zip archive"
        raise CaseFileError("unknown_format", f"{filename}: this is {what}, not an .xlsx workbook")

    with warnings.catch_warnings():
        # openpyxl warns about every unsupported extension (data validation, slicers...).
        warnings.simplefilter("ignore", UserWarning)
        workbook = _open_workbook(data, filename)
        try:
            title = str(_pick_sheet(workbook, filename, sheet).title)
        finally:
            workbook.close()

    def records() -> Iterator[tuple[int, Sequence[object]]]:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            book = _open_workbook(data, filename)
            try:
                worksheet = book[title]
                # Generators often write a wrong <dimension>; don't trust it.
                worksheet.reset_dimensions()
                rows = enumerate(worksheet.iter_rows(min_row=1, values_only=True), start=1)
                while True:
                    try:
                        row = next(rows)
                    except StopIteration:
                        return
                    except Exception as exc:
                        raise CaseFileError("unreadable", f"{filename}: cannot read sheet {title!r} ({exc})") from exc
                    yield row
            finally:
                book.close()

    return CaseFileStream(records, filename=filename, fmt="xlsx", sheet=title, required=required)


def _open_workbook(data: bytes, filename: str) -> Any:
    import openpyxl  # local import: CSV-only callers don't pay for it

    try:
        return openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many kinds of errors on broken files
        raise CaseFileError("unreadable", f"{filename}: cannot open workbook ({exc})") from exc


def _pick_sheet(workbook: Any, filename: str, sheet: str | None) -> Any:
    worksheets = list(workbook.worksheets)
    if not worksheets:
        raise CaseFileError("empty", f"{filename}: the workbook has no worksheets")
    if sheet is None:
        return worksheets[0]
    wanted = clean_text(sheet).casefold()
    matches = [ws for ws in worksheets if ws.title == sheet] or [
        ws for ws in worksheets if clean_text(ws.title).casefold() == wanted
    ]
    if not matches:
        names = ", ".join(str(ws.title) for ws in worksheets)
        raise CaseFileError("unknown_sheet", f"{filename}: no sheet {sheet!r}; sheets are {names}")
    return matches[0]


_CONTROLS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_DECODE_CHUNK = 1 << 20


def _encoding_of(data: bytes, filename: str) -> str:
    """The text encoding of a CSV file, checked over the whole file without holding the text."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        candidates: tuple[str, ...] = ("utf-16",)
    else:
        candidates = ("utf-8", "gb18030")
    for encoding in candidates:
        decoder = codecs.getincrementaldecoder(encoding)()
        length = controls = 0
        try:
            for start in range(0, len(data), _DECODE_CHUNK):
                chunk = decoder.decode(data[start:start + _DECODE_CHUNK], final=start + _DECODE_CHUNK >= len(data))
                if start == 0:
                    chunk = chunk.removeprefix("\ufeff")
                length += len(chunk)
                controls += len(_CONTROLS.findall(chunk))
                if "\x00" in chunk:
                    raise CaseFileError("unreadable", f"{filename}: binary data, not a text/CSV file")
        except UnicodeDecodeError:
            continue
        if controls > max(2, length // 200):
            raise CaseFileError("unreadable", f"{filename}: binary data, not a text/CSV file")
        if encoding == "utf-8" and data.startswith(b"\xef\xbb\xbf"):
            encoding = "utf-8-sig"
        return encoding
    raise CaseFileError(
        "unreadable", f"{filename}: text is neither UTF-8 nor GB18030/GBK; save it as CSV UTF-8 or .xlsx"
    )


def _csv_records(data: bytes, encoding: str, delimiter: str) -> Iterator[tuple[int, Sequence[object]]]:
    text = io.TextIOWrapper(io.BytesIO(data), encoding=encoding, newline="")
    for number, row in enumerate(csv.reader(text, delimiter=delimiter), start=1):
        if row and "\x1a" in row[-1]:  # DOS end-of-file marker
            row[-1] = row[-1].rstrip("\x1a")
        yield number, row


def _open_csv(data: bytes, filename: str, required: Sequence[str] = _HEADER_REQUIRED) -> CaseFileStream:
    encoding = _encoding_of(data, filename)
    head = data[:2048].decode(encoding, errors="ignore").removeprefix("\ufeff")
    lowered = head.lstrip()[:512].lower()
    if lowered.startswith(("<html", "<!doctype", "<?xml", "<table")):
        raise CaseFileError(
            "unknown_format", f"{filename}: HTML/XML saved with a spreadsheet name; save it as .xlsx or CSV"
        )
    try:
        # The delimiter that yields a header with the most recognised columns wins.
        best: tuple[int, str] | None = None
        for delimiter in _DELIMITERS:
            rows = [(n, [str(c) for c in cells]) for n, cells in itertools.islice(
                _csv_records(data, encoding, delimiter), 50)]
            score = _header_score(rows, required)
            if score and (best is None or score > best[0]):
                best = (score, delimiter)
        chosen = best[1] if best else ","
        return CaseFileStream(lambda: _csv_records(data, encoding, chosen), filename=filename, fmt="csv",
                              encoding=encoding, delimiter=chosen, required=required)
    except csv.Error as exc:
        raise CaseFileError("unreadable", f"{filename}: malformed CSV ({exc})") from exc


def _header_score(records: list[tuple[int, list[str]]], required: Sequence[str] = _HEADER_REQUIRED) -> int:
    scanned = 0
    for _, cells in records:
        texts = [clean_text(c) for c in cells]
        if not any(texts):
            continue
        found = map_header(texts)
        if all(f in found for f in required):
            return len(found)
        scanned += 1
        if scanned >= _HEADER_SCAN_ROWS:
            break
    return 0


# ---------------------------------------------------------------------------
# Validation
# ---------------------------------------------------------------------------

#: Reject reasons, in the order the checks run; a row gets the first that applies.
CHECK_ORDER: Final = (
    "missing_case_no",
    "duplicate_case_no",
    "missing_bank",
    "missing_debtor_name",
    "missing_address",
    "bad_amount",
    "bad_phone",
    "bad_overdue_days",
    "bad_date",
    "contract_before_entrusted",
    "bad_coordinates",
    "unknown_assignee",
    "bad_portfolio",
)
REASON_CODES: Final = frozenset(CHECK_ORDER)

#: Dates outside this range are taken for typos (e.g. a "3" in a date column
#: that Excel would show as 1900-01-03).
_MIN_DATE: Final = date(1990, 1, 1)
_MAX_DATE: Final = date(2100, 12, 31)


@dataclass(frozen=True)
class CaseRow:
    """One valid case from the file. The full ID number is never kept."""

    row_number: int
    case_no: str
    bank: str
    debtor_name: str
    id_number_masked: str | None
    phone: str | None
    address: str
    amount_due: Decimal
    overdue_days: int | None
    entrusted_on: date | None
    contract_end: date | None
    lat: float | None
    lon: float | None
    assignee: str | None
    recall: bool = False  # the file's 召回/recall column says the bank takes the case back
    # the 产品 / 业务类型 / portfolio column; None when blank or absent (a new case is a credit card case)
    portfolio: str | None = None


@dataclass(frozen=True)
class Reject:
    """A data row that cannot be imported.

    ``original``: the row's cells as text, keyed by :attr:`RawTable.headers`
    (the ID number column is masked there too). ``reason``: one of
    :data:`CHECK_ORDER`. ``params``: values for the translated message:

    ============================  ====================================
    bad_amount, bad_phone,        ``value``
    bad_overdue_days,
    unknown_assignee
    bad_coordinates               ``value`` (``"<lat>,<lon>"``)
    bad_date                      ``field`` (``entrusted_on`` or
                                  ``contract_end``), ``value``
    contract_before_entrusted     ``entrusted_on``, ``contract_end`` (ISO)
    duplicate_case_no             ``first_row``, ``case_no``
    ============================  ====================================
    """

    row_number: int
    original: dict[str, str]
    reason: str
    params: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ValidationResult:
    good: list[CaseRow]
    rejects: list[Reject]


class _RowRejected(Exception):
    def __init__(self, reason: str, **params: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.params = params


_EXCEL_TEXT = re.compile(r'^="(.*)"$', re.DOTALL)
_PHONE_SEPARATORS = re.compile(r"[/,;、|]")
_COORDINATE = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)°?")


def _text(value: object) -> str:
    """Cleaned text of a cell; undoes the ``="0123"`` and ``'0123`` tricks used to keep Excel off numbers."""
    text = clean_text(_cell_text(value))
    m = _EXCEL_TEXT.match(text)
    if m:
        text = clean_text(m.group(1))
    if text.startswith("'") and text[1:2].isdigit():
        text = text[1:]
    return text


def _parse_coordinate(text: str) -> float | None:
    text = unicodedata.normalize("NFKC", text)
    if not _COORDINATE.fullmatch(text):
        return None
    return float(text.rstrip("°"))


def validate_rows(
    table: RawTable,
    *,
    default_bank: str | None,
    known_assignee: Callable[[str], bool] | None = None,
) -> ValidationResult:
    """Check every data row; return the importable ones and the rejects.

    Each row is rejected for the first problem in :data:`CHECK_ORDER`:

    1. ``missing_case_no``;
    2. ``duplicate_case_no``: the case number (compared after trimming and
       NFKC, so full-width ``ＣＳ００１`` equals ``CS001``) was on an earlier
       row of this file, whether that row is valid or not;
    3. ``missing_bank``: empty or absent bank column and no *default_bank*;
    4. ``missing_debtor_name``, 5. ``missing_address``;
    6. ``bad_amount``: missing, unreadable or not > 0;
    7. ``bad_phone``: present but not a mainland mobile (several numbers
       separated by ``/ , ; 、`` are allowed if all are valid; the first is kept);
    8. ``bad_overdue_days``: present but not a whole number ≥ 0;
    9. ``bad_date``: ``entrusted_on`` then ``contract_end``, present but
       unreadable or outside 1990-2100;
    10. ``contract_before_entrusted``: ``contract_end`` < ``entrusted_on``;
    11. ``bad_coordinates``: only one of lat/lon, unreadable, out of range, or
        exactly 0,0 (a geocoder's "unknown");
    12. ``unknown_assignee``: present and *known_assignee* says no (not checked
        when *known_assignee* is ``None``);
    13. ``bad_portfolio``: present but not a portfolio :data:`PORTFOLIO_WORDS` knows.

    Empty optional cells become ``None``. Text is trimmed (full-width spaces
    included) and inner whitespace collapsed.
    """
    index = {name: table.headers.index(header) for name, header in table.column_map.items()}
    checker = RowChecker(index, default_bank=default_bank, known_assignee=known_assignee)
    good: list[CaseRow] = []
    rejects: list[Reject] = []
    id_header = table.column_map.get("id_number")
    for row_number, values in table.rows:
        checked = checker.check(row_number, [values.get(h, "") for h in table.headers])
        if isinstance(checked, CaseRow):
            good.append(checked)
            continue
        original = {h: clean_text(_cell_text(values.get(h, ""))) for h in table.headers}
        if id_header is not None and original.get(id_header):
            original[id_header] = mask_id_number(original[id_header])
        rejects.append(Reject(row_number, original, checked.reason, dict(checked.params)))
    return ValidationResult(good=good, rejects=rejects)


@dataclass(frozen=True)
class Rejection:
    """Why :meth:`RowChecker.check` turned a row down (see :class:`Reject`)."""

    reason: str
    params: dict[str, str]


class RowChecker:
    """Checks data rows one at a time, in file order (a case number seen before is a duplicate)."""

    def __init__(self, column_index: dict[str, int], *, default_bank: str | None,
                 known_assignee: Callable[[str], bool] | None = None) -> None:
        self._index = column_index
        self._default = clean_text(default_bank) if default_bank else ""
        self._known = known_assignee
        self._first_row: dict[str, int] = {}

    def check(self, row_number: int, values: Sequence[object]) -> CaseRow | Rejection:
        row = _Row(self._index, values)
        case_no = unicodedata.normalize("NFKC", row.text("case_no"))
        try:
            return _validate_row(row_number, case_no, row, self._first_row, self._default, self._known)
        except _RowRejected as rejected:
            return Rejection(rejected.reason, dict(rejected.params))
        finally:
            if case_no:
                self._first_row.setdefault(case_no, row_number)


class _Row:
    """Access to one data row's cells by canonical field name."""

    def __init__(self, column_index: dict[str, int], values: Sequence[object]) -> None:
        self._index = column_index
        self._values = values

    def raw(self, name: str) -> object:
        index = self._index.get(name)
        return self._values[index] if index is not None and index < len(self._values) else ""

    def text(self, name: str) -> str:
        return _text(self.raw(name))


def _validate_row(
    row_number: int,
    case_no: str,
    row: _Row,
    first_row: dict[str, int],
    default_bank: str,
    known_assignee: Callable[[str], bool] | None,
) -> CaseRow:
    if not case_no:
        raise _RowRejected("missing_case_no")
    if case_no in first_row:
        raise _RowRejected("duplicate_case_no", first_row=str(first_row[case_no]), case_no=case_no)
    bank = row.text("bank") or default_bank
    if not bank:
        raise _RowRejected("missing_bank")
    debtor_name = row.text("debtor_name")
    if not debtor_name:
        raise _RowRejected("missing_debtor_name")
    address = row.text("address")
    if not address:
        raise _RowRejected("missing_address")

    amount_text = row.text("amount_due")
    amount = parse_amount(amount_text)
    if amount is None or amount <= 0:
        raise _RowRejected("bad_amount", value=amount_text)

    phone_text = row.text("phone")
    phone: str | None = None
    if phone_text:
        phones = [normalize_mobile(p) for p in _PHONE_SEPARATORS.split(phone_text) if p.strip()]
        if not phones or any(p is None for p in phones):
            raise _RowRejected("bad_phone", value=phone_text)
        phone = phones[0]

    days_text = row.text("overdue_days")
    overdue_days: int | None = None
    if days_text:
        overdue_days = parse_int(days_text)
        if overdue_days is None or overdue_days < 0:
            raise _RowRejected("bad_overdue_days", value=days_text)

    dates: dict[str, date | None] = {}
    for name in ("entrusted_on", "contract_end"):
        text = row.text(name)
        if not text:
            dates[name] = None
            continue
        value = row.raw(name)
        parsed = parse_date(text) if isinstance(value, str) else excel_date(value)
        if parsed is None or not _MIN_DATE <= parsed <= _MAX_DATE:
            raise _RowRejected("bad_date", field=name, value=text)
        dates[name] = parsed
    entrusted_on, contract_end = dates["entrusted_on"], dates["contract_end"]
    if entrusted_on and contract_end and contract_end < entrusted_on:
        raise _RowRejected(
            "contract_before_entrusted",
            entrusted_on=entrusted_on.isoformat(),
            contract_end=contract_end.isoformat(),
        )

    lat_text, lon_text = row.text("lat"), row.text("lon")
    lat = lon = None
    if lat_text or lon_text:
        lat, lon = _parse_coordinate(lat_text), _parse_coordinate(lon_text)
        if (
            lat is None
            or lon is None
            or not (-90 <= lat <= 90 and -180 <= lon <= 180)
            or (lat == 0 and lon == 0)
        ):
            raise _RowRejected("bad_coordinates", value=f"{lat_text},{lon_text}")

    assignee = row.text("assignee") or None
    if assignee is not None and known_assignee is not None and not known_assignee(assignee):
        raise _RowRejected("unknown_assignee", value=assignee)

    portfolio_text = row.text("portfolio")
    portfolio = None
    if portfolio_text:
        key = re.sub(r"[\s_\-]+", "", unicodedata.normalize("NFKC", portfolio_text).lower())
        if key not in PORTFOLIO_WORDS:
            raise _RowRejected("bad_portfolio", value=portfolio_text)
        portfolio = PORTFOLIO_WORDS[key]

    id_text = row.text("id_number")
    return CaseRow(
        row_number=row_number,
        case_no=case_no,
        bank=bank,
        debtor_name=debtor_name,
        id_number_masked=mask_id_number(id_text) if id_text else None,
        phone=phone,
        address=address,
        amount_due=amount,
        overdue_days=overdue_days,
        entrusted_on=entrusted_on,
        contract_end=contract_end,
        lat=lat,
        lon=lon,
        assignee=assignee,
        recall=is_yes(row.raw("recall")),
        portfolio=portfolio,
    )


# ---------------------------------------------------------------------------
# Rejects file
# ---------------------------------------------------------------------------

REJECTS_ROW_HEADER: Final = "行号/row"
REJECTS_REASON_HEADER: Final = "原因/reason"
_NUMBER = re.compile(r"[+-]?(?:\d[\d,]*)?(?:\.\d+)?")


def _csv_safe(text: str) -> str:
    """Stop Excel from running cell text as a formula (CSV injection)."""
    if text and text[0] in "=+-@\t\r" and not _NUMBER.fullmatch(text):
        return "'" + text
    return text


def write_rejects_csv(
    table: RawTable, rejects: list[Reject], reason_text: Callable[[Reject], str]
) -> bytes:
    """The rejected rows as a CSV the office can fix and upload again.

    UTF-8 with BOM and CRLF line ends, so Excel on Chinese Windows opens it
    correctly. Columns: the file's columns in their original order, then
    ``行号/row`` (row number in the uploaded file) and ``原因/reason``
    (``reason_text(reject)``). Rows are in file order. The ID number is masked.
    Cells that Excel would evaluate as formulas are prefixed with ``'``.
    Re-uploading such a file works: its old row/reason columns are dropped.
    """
    headers = [h for h in table.headers if h not in (REJECTS_ROW_HEADER, REJECTS_REASON_HEADER)]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow([*headers, REJECTS_ROW_HEADER, REJECTS_REASON_HEADER])
    for reject in sorted(rejects, key=lambda r: r.row_number):
        writer.writerow(
            [_csv_safe(reject.original.get(h, "")) for h in headers]
            + [str(reject.row_number), _csv_safe(reason_text(reject))]
        )
    return buffer.getvalue().encode("utf-8-sig")

"""``fieldbot import-payments``, ``fieldbot import --recall`` and ``fieldbot reconcile`` in-process."""

from __future__ import annotations

from pathlib import Path

import pytest
from openpyxl import load_workbook

from bot.cli import main
from tests.conftest import TestDatabases


@pytest.fixture
def db_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, db_urls: TestDatabases) -> str:
    for key in ("FIELDBOT_TOKEN", "FIELDBOT_DATABASE_URL", "FIELDBOT_DATA_DIR"):
        monkeypatch.delenv(key, raising=False)
    url = db_urls.url(tmp_path / "fieldbot.db", empty=True)
    monkeypatch.setenv("FIELDBOT_DATABASE_URL", url)
    monkeypatch.setenv("FIELDBOT_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.chdir(tmp_path)
    return url


def _write(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.write_bytes(text.encode(encoding))
    return path


def test_payments_recall_and_reconciliation_from_the_shell(db_file: str, tmp_path: Path, db_urls: TestDatabases,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    cases = _write(tmp_path / "cases.csv", "案件编号,客户姓名,地址,欠款金额\nA-1,李四,上海市,1000\n"
                   "A-2,王五,北京市,500\nA-3,赵六,广州市,800\n", "gbk")
    assert main(["import", str(cases), "--bank", "招商银行"]) == 0
    pays = _write(tmp_path / "pays.csv", "案件编号,还款金额,还款日期,流水号\nA-1,1000,2026-10-03,X1\n"
                  "A-2,100,2026-10-04,X2\nA-2,100,2026-10-04,X2\nA-9,1,2026-10-04,X3\n", "utf-8-sig")
    assert main(["import-payments", str(pays), "--bank", "招商银行"]) == 3
    assert (tmp_path / "pays.rejects.csv").read_text(encoding="utf-8-sig").splitlines()[1].startswith("A-9,1,")
    assert main(["import-payments", str(pays), "--bank", "招商银行"]) == 3  # again: nothing new
    assert main(["import-payments", str(tmp_path / "none.csv")]) == 2
    recall = _write(tmp_path / "recall.csv", "案件编号\nA-3\n")
    assert main(["import", str(recall), "--recall", "--bank", "招商银行"]) == 0
    assert db_urls.fetch(db_file, "select count(*) from payments") == [(2,)]
    statuses = dict(db_urls.fetch(db_file, "select case_no, status from cases"))
    assert statuses == {"A-1": "paid", "A-2": "new", "A-3": "closed"}
    out = tmp_path / "recon.xlsx"
    assert main(["reconcile", "--bank", "招商银行", "--month", "2026-10", "--out", str(out)]) == 0
    book = load_workbook(out)
    assert len(book.sheetnames) == 4 and book.worksheets[3].max_row == 4  # header, two payments, totals
    assert main(["reconcile", "--bank", "招商银行", "--month", "October"]) == 2
    assert "Traceback" not in capsys.readouterr().err

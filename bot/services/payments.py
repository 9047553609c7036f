"""Repayments from the bank: the repayment file goes in, promises are settled, fully paid cases close.

The bank sends what its debtors paid (CSV or XLSX, Chinese or English headers, read by
:mod:`bot.services.case_file` like a case file): case number, bank, amount paid, date paid, and
optionally the channel and the bank's own reference. Each good row becomes one :class:`Payment`
whose ``row_key`` is the SHA-256 of (bank, case number, amount, date, channel, reference): a row
seen twice in one file, or a file imported again (even by two imports at once), is stored once and
counted as a duplicate. Rows that cannot be taken come back with their row number and a translated
reason (unknown case, bad amount, bad date...).

In the same transaction as the payments:

* the case's promises are settled (:func:`bot.services.promises.settle_case`): kept as soon as
  payments dated from the promise's day to its due date add up to it;
* a case whose payments add up to its amount due is closed as ``paid`` (reason ``paid_in_full``):
  its visit reminders are cancelled, its collector and their supervisor are told, it is audited. The
  assignment is not ended (the history stays as it was); the case leaves every visit list because
  its status is closed.

:func:`close_case` is also how a bank's recall closes a case (``bot/services/intake.py``).
"""

from __future__ import annotations

import hashlib
import logging
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path, PurePath
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.clock import Clock
from bot.i18n import N_, Translator
from bot.services import audit, outbox
from bot.services.calendar import WorkCalendar
from bot.services.case_file import (
    PAYMENT_HEADER_REQUIRED,
    CaseFileError,
    RawTable,
    Reject,
    Rejection,
    open_case_file,
    write_rejects_csv,
)
from bot.services.cases import current_assignee
from bot.services.deadlines import cancel_visit_reminders
from bot.services.masking import mask_name
from bot.services.parsing import clean_text, excel_date, parse_amount, parse_date
from bot.services.people import reviewers_of, t_for
from bot.services.promises import settle_case
from bot.storage.db import Database
from bot.storage.media import MediaStore
from bot.storage.models import Case, CaseImport, CaseStatus, Payment, Staff

log = logging.getLogger(__name__)

EXIT_OK, EXIT_NOTHING, EXIT_SOME_REJECTED = 0, 2, 3
PAID_IN_FULL, RECALLED = "paid_in_full", "recalled"
#: A case that is finished: paid or closed (a case on hold can still be paid in full or recalled).
FINISHED = (CaseStatus.CLOSED.value, CaseStatus.PAID.value)
_MIN_DATE = date(1990, 1, 1)

#: Why a repayment row is turned down, in the order the checks run.
REJECT_MESSAGES = (
    N_("payment.reject.missing_case_no"), N_("payment.reject.missing_bank"), N_("payment.reject.bad_amount"),
    N_("payment.reject.bad_date"), N_("payment.reject.unknown_case"),
)
CLOSE_NOTICES = {PAID_IN_FULL: N_("case.closed.paid_in_full"), RECALLED: N_("case.closed.recalled")}


@dataclass(frozen=True)
class PaymentRow:
    row_number: int
    bank: str
    case_no: str
    amount_fen: int
    paid_on: date
    channel: str | None
    reference: str | None

    @property
    def row_key(self) -> str:
        return row_key(self.bank, self.case_no, self.amount_fen, self.paid_on, self.channel, self.reference)


def row_key(bank: str, case_no: str, amount_fen: int, paid_on: date, channel: str | None,
            reference: str | None) -> str:
    """SHA-256 of what makes a repayment row the same row (bank, case, amount, date, channel, reference)."""
    parts = (bank, case_no, str(amount_fen), paid_on.isoformat(), channel or "", reference or "")
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()


def _text(values: Sequence[object], index: int | None) -> str:
    if index is None or index >= len(values):
        return ""
    value = values[index]
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return clean_text("" if value is None else value if isinstance(value, str) else str(value))


class PaymentChecker:
    """Checks repayment rows one at a time (syntax only: whether the case exists is asked later)."""

    def __init__(self, column_index: dict[str, int], *, default_bank: str | None, today: date) -> None:
        self._index = column_index
        self._bank = clean_text(default_bank) if default_bank else ""
        self._today = today

    def check(self, row_number: int, values: Sequence[object]) -> PaymentRow | Rejection:
        ix = self._index
        case_no = unicodedata.normalize("NFKC", _text(values, ix.get("case_no")))
        if not case_no:
            return Rejection("missing_case_no", {})
        bank = _text(values, ix.get("bank")) or self._bank
        if not bank:
            return Rejection("missing_bank", {"case_no": case_no})
        amount_text = _text(values, ix.get("amount_paid"))
        amount = parse_amount(amount_text)
        if amount is None or amount <= 0:
            return Rejection("bad_amount", {"value": amount_text})
        date_index = ix.get("paid_on")
        raw = values[date_index] if date_index is not None and date_index < len(values) else ""
        date_text = _text(values, date_index)
        paid_on = parse_date(date_text) if isinstance(raw, str) else excel_date(raw)
        if paid_on is None or not _MIN_DATE <= paid_on <= self._today + timedelta(days=1):
            return Rejection("bad_date", {"value": date_text})
        channel = _text(values, ix.get("channel"))[:40] or None
        reference = _text(values, ix.get("reference"))[:64] or None
        return PaymentRow(row_number, bank, case_no, int((amount * 100).to_integral_value()), paid_on, channel,
                          reference)


@dataclass
class PaymentSummary:
    filename: str
    import_id: int | None = None
    error: CaseFileError | None = None
    rows_total: int = 0
    imported: int = 0
    duplicate: int = 0
    rejects: list[Reject] = field(default_factory=list)
    settled: int = 0  # promises kept or re-settled by these payments
    closed: list[str] = field(default_factory=list)  # case numbers closed as paid in full
    table: RawTable | None = None
    sha256: str | None = None

    @property
    def rejected(self) -> int:
        return len(self.rejects)

    @property
    def exit_code(self) -> int:
        if self.error is not None or self.imported + self.duplicate == 0:
            return EXIT_NOTHING
        return EXIT_SOME_REJECTED if self.rejects else EXIT_OK

    def rejects_csv(self, t: Translator) -> bytes | None:
        if not self.rejects or self.table is None:
            return None
        return write_rejects_csv(self.table, self.rejects, lambda r: reject_reason(t, r))


def reject_reason(t: Translator, reject: Reject) -> str:
    return t(f"payment.reject.{reject.reason}", **reject.params)


def _suffix(filename: str) -> str:
    suffix = PurePath(filename).suffix.lower()
    return suffix if suffix in (".csv", ".xlsx", ".txt", ".tsv") else ".bin"


async def import_payments(
    database: Database,
    data: bytes,
    filename: str,
    *,
    clock: Clock,
    calendar: WorkCalendar,
    media: MediaStore,
    backup_dirs: Sequence[Path] = (),
    bank: str | None = None,
    sheet: str | None = None,
    received_at: datetime | None = None,
    actor_id: int | None = None,
) -> PaymentSummary:
    """Import one repayment file. File-level problems come back as ``summary.error`` with nothing written.

    The payments, the promises they settle and the cases they close are one transaction; a crash
    leaves nothing half done, and running the import again finishes the job.
    """
    started = clock.now()
    summary = PaymentSummary(filename=filename)
    try:
        stream = open_case_file(data, filename, sheet=sheet, required=PAYMENT_HEADER_REQUIRED)
        checker = PaymentChecker(stream.column_index, default_bank=bank, today=calendar.local(started).date())
        checked: list[tuple[int, list[object], PaymentRow | Rejection]] = []
        for row_number, values in stream.rows():
            summary.rows_total += 1
            checked.append((row_number, values, checker.check(row_number, values)))
        if summary.rows_total == 0:
            raise CaseFileError("empty", f"{filename}: there are no data rows under the header")
    except CaseFileError as exc:
        log.warning("payment import of %s refused: %s (%s)", filename, exc.code, exc.detail)
        summary.error = exc
        return summary

    keys = {(r.bank, r.case_no) for _, _, r in checked if isinstance(r, PaymentRow)}
    async with database.read() as session:
        known = await _case_ids(session, keys)
    good: list[tuple[PaymentRow, int]] = []
    refused: list[tuple[int, list[object], Rejection]] = []
    for row_number, values, result in checked:
        if isinstance(result, Rejection):
            refused.append((row_number, values, result))
        elif (result.bank, result.case_no) not in known:
            refused.append((row_number, values, Rejection("unknown_case", {"bank": result.bank,
                                                                             "case_no": result.case_no})))
        else:
            good.append((result, known[(result.bank, result.case_no)]))
    summary.table = stream.table()
    summary.rejects = [stream.reject(n, values, why) for n, values, why in refused]

    blob = await media.put(data, kind="imports", suffix=_suffix(filename), sealed=True)
    summary.sha256 = blob.sha256
    copies = [str(await media.copy_to(blob, folder)) for folder in backup_dirs]

    async with database.write() as session:
        record = CaseImport(kind="payments", filename=filename[:255], sha256=blob.sha256, stored_path=blob.path,
                            file_format=stream.format, default_bank=bank, actor_id=actor_id,
                            received_at=received_at or started, started_at=started, rows_total=summary.rows_total,
                            rejected=summary.rejected, imported=0, updated=0, unchanged=0, late=False)
        session.add(record)
        await session.flush()
        summary.import_id = record.id
        await audit.record(session, action="import.start", object_type="import", object_id=record.id,
                           actor_id=actor_id, at=started,
                           details={"kind": "payments", "filename": filename, "sha256": blob.sha256,
                                    "rows": summary.rows_total, "rejected": summary.rejected,
                                    "backups": len(copies)})

    async with database.write() as session:
        now = clock.now()
        inserted = await _insert(session, good, summary.import_id, now=now)
        summary.imported = len(inserted)
        summary.duplicate = len(good) - len(inserted)
        await audit.record_many(session, [
            audit.Pending("payment.new", "case", case_id, actor_id,
                          {"import_id": summary.import_id, "row": row.row_number, "amount_fen": row.amount_fen,
                           "paid_on": row.paid_on.isoformat(), "channel": row.channel, "reference": row.reference})
            for row, case_id in inserted], at=now)
        for case_id in sorted({case_id for _, case_id in inserted}):
            summary.settled += await settle_case(session, case_id, now=now, tz=calendar.tz)
            case = await paid_in_full_check(session, case_id, actor_id=actor_id, now=now)
            if case is not None:
                summary.closed.append(case.case_no)
        row = await session.get(CaseImport, summary.import_id)
        assert row is not None
        row.imported, row.unchanged, row.finished_at = summary.imported, summary.duplicate, clock.now()
        await audit.record(session, action="import.finished", object_type="import", object_id=summary.import_id,
                           actor_id=actor_id, at=now,
                           details={"kind": "payments", "imported": summary.imported, "duplicate": summary.duplicate,
                                    "rejected": summary.rejected, "settled": summary.settled,
                                    "closed": summary.closed})
    log.info("payment import %s of %s: %s new, %s duplicate, %s rejected, %s closed", summary.import_id, filename,
             summary.imported, summary.duplicate, summary.rejected, len(summary.closed))
    return summary


async def _case_ids(session: AsyncSession, keys: set[tuple[str, str]]) -> dict[tuple[str, str], int]:
    found: dict[tuple[str, str], int] = {}
    by_bank: dict[str, list[str]] = {}
    for bank, case_no in keys:
        by_bank.setdefault(bank, []).append(case_no)
    for bank, numbers in by_bank.items():
        for start in range(0, len(numbers), 500):
            rows = await session.execute(select(Case.bank, Case.case_no, Case.id).where(
                Case.bank == bank, Case.case_no.in_(numbers[start:start + 500])))
            found.update({(b, n): i for b, n, i in rows.tuples()})
    return found


async def _insert(session: AsyncSession, good: list[tuple[PaymentRow, int]], import_id: int | None, *,
                  now: datetime) -> list[tuple[PaymentRow, int]]:
    """Insert the rows not stored yet; returns those this call stored (a row_key already there is skipped,
    also when another import stores it at the same moment: ``ON CONFLICT DO NOTHING``)."""
    unique: dict[str, tuple[PaymentRow, int]] = {}
    for row, case_id in good:
        unique.setdefault(row.row_key, (row, case_id))
    if not unique:
        return []
    bind = session.get_bind()
    if bind.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert  # type: ignore[assignment]
    stored: set[str] = set()
    items = list(unique.items())
    for start in range(0, len(items), 500):
        chunk = items[start:start + 500]
        statement = insert(Payment).values([
            {"case_id": case_id, "import_id": import_id, "amount_fen": row.amount_fen, "paid_on": row.paid_on,
             "channel": row.channel, "reference": row.reference, "row_key": key, "created_at": now}
            for key, (row, case_id) in chunk]).on_conflict_do_nothing(index_elements=["row_key"]) \
            .returning(Payment.row_key)
        stored.update((await session.scalars(statement)).all())
    return [unique[key] for key in unique if key in stored]


async def payments_of(session: AsyncSession, case_id: int) -> list[Payment]:
    """The bank's payments on a case, oldest first (for the case card and the timeline)."""
    return list(await session.scalars(select(Payment).where(Payment.case_id == case_id)
                                      .order_by(Payment.paid_on, Payment.id)))


async def paid_total(session: AsyncSession, case_id: int) -> int:
    """Everything the bank says was paid on the case, in fen."""
    return int(await session.scalar(select(func.coalesce(func.sum(Payment.amount_fen), 0))
                                    .where(Payment.case_id == case_id)) or 0)


async def paid_in_full_check(session: AsyncSession, case_id: int, *, actor_id: int | None,
                             now: datetime) -> Case | None:
    """Close the case as paid when its payments cover the amount due; returns it when this closed it."""
    case = await _locked_case(session, case_id)
    if case is None or case.status in FINISHED:
        return None
    paid = await paid_total(session, case_id)
    if paid < case.amount_due_fen:
        return None
    await close_case(session, case, status=CaseStatus.PAID, reason=PAID_IN_FULL, actor_id=actor_id, now=now,
                     details={"paid_fen": paid, "amount_due_fen": case.amount_due_fen})
    return case


async def _locked_case(session: AsyncSession, case_id: int) -> Case | None:
    query = select(Case).where(Case.id == case_id)
    bind = session.get_bind()
    if bind.dialect.name == "postgresql":
        query = query.with_for_update()
    case: Case | None = await session.scalar(query.execution_options(populate_existing=True))
    return case


async def close_case(session: AsyncSession, case: Case, *, status: CaseStatus, reason: str, actor_id: int | None,
                     now: datetime, details: dict[str, Any] | None = None) -> None:
    """Close ``case`` (``paid`` or ``closed``) with a reason: reminders cancelled, people told, audited.

    The current assignment stays (the history is kept); closed cases are on nobody's visit list.
    """
    previous = case.status
    case.status, case.status_reason = status.value, reason
    case.status_changed_at, case.status_changed_by_id, case.updated_at = now, actor_id, now
    case.next_action = case.next_action_on = None
    await cancel_visit_reminders(session, case.id, now=now)
    await audit.record(session, action=f"case.closed.{reason}", object_type="case", object_id=case.id,
                       actor_id=actor_id, at=now,
                       details={"status": status.value, "previous": previous, "reason": reason, **(details or {})})
    collector = await current_assignee(session, case.id)
    if collector is None:
        return
    people: list[Staff] = [collector, *await reviewers_of(session, collector.id)]
    paid = await paid_total(session, case.id)
    for person in people:
        if person.telegram_user_id is None or not person.active:
            continue
        t = t_for(person)
        await outbox.enqueue(
            session, chat_id=person.telegram_user_id, kind=f"case.closed.{reason}", now=now, protect_content=True,
            dedupe_key=f"case-closed:{case.id}:{reason}:{now.isoformat()}:{person.id}",
            text=t(CLOSE_NOTICES.get(reason, N_("case.closed.recalled")), case_no=case.case_no, bank=case.bank,
                   debtor=mask_name(case.debtor_name), name=collector.name,
                   paid=t.money(Decimal(paid) / 100), due=t.money(Decimal(case.amount_due_fen) / 100)))


def summary_text(t: Translator, summary: PaymentSummary) -> str:
    lines = [t(N_("payment.summary"), filename=summary.filename, imported=summary.imported,
               duplicate=summary.duplicate, rejected=summary.rejected)]
    if summary.settled:
        lines.append(t(N_("payment.settled"), count=summary.settled))
    if summary.closed:
        lines.append(t(N_("payment.closed"), count=len(summary.closed), cases=", ".join(summary.closed[:20])))
    return "\n".join(lines)

"""Taking in the bank's case files: validate, keep two backups, upsert in batches, audit, time it.

The SOP: case data is entered within 2 hours of receiving the bank's file, and two backups are kept.
The file is streamed (read row by row, twice) and each batch is written with multi-row inserts.
An import is idempotent (the same file twice changes nothing; a corrected file updates the changed
fields, audited, and never duplicates a case) and batch-atomic: each batch of rows is one
transaction, so a crash leaves whole batches, and re-running the import finishes the job.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path, PurePath
from typing import Any

from sqlalchemy import ColumnElement, and_, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.clock import Clock
from bot.i18n import N_, Translator
from bot.services import audit, policy
from bot.services.actor import StaffView
from bot.services.assignment import assign_in_session, notify_assignments
from bot.services.calendar import WorkCalendar
from bot.services.case_file import (
    RECALL_HEADER_REQUIRED,
    CaseFileError,
    CaseRow,
    RawTable,
    Reject,
    Rejection,
    open_case_file,
    sniff_kind,
    write_rejects_csv,
)
from bot.services.geocoding import GeocoderLike, locate_many, normalize_address
from bot.services.parsing import clean_text
from bot.services.payments import FINISHED, RECALLED, close_case
from bot.storage.db import Database
from bot.storage.media import MediaStore
from bot.storage.models import Assignment, Case, CaseImport, CaseStatus, Portfolio, Role, Staff

log = logging.getLogger(__name__)

ENTRY_LIMIT = timedelta(hours=2)  # SOP: entered within 2 hours of receipt
ASSIGN_WITHIN_WORKING_DAYS = 1  # SOP: assigned within 1 working day
BATCH_SIZE = 1000
FIELD_COLLECTOR_ROLES = (Role.COLLECTOR.value, Role.PHONE_COLLECTOR.value)

EXIT_OK, EXIT_NOTHING, EXIT_SOME_REJECTED = 0, 2, 3

Progress = Callable[[int, int], Awaitable[None]]

# Every reason a row can be rejected for (see case_file.CHECK_ORDER), and the date fields it names.
REJECT_MESSAGES = (
    N_("import.reject.missing_case_no"), N_("import.reject.duplicate_case_no"), N_("import.reject.missing_bank"),
    N_("import.reject.missing_debtor_name"), N_("import.reject.missing_address"), N_("import.reject.bad_amount"),
    N_("import.reject.bad_phone"), N_("import.reject.bad_overdue_days"), N_("import.reject.bad_date"),
    N_("import.reject.contract_before_entrusted"), N_("import.reject.bad_coordinates"),
    N_("import.reject.unknown_assignee"), N_("import.reject.bad_portfolio"),
    N_("import.field.entrusted_on"), N_("import.field.contract_end"),
)


@dataclass
class ImportSummary:
    filename: str
    received_at: datetime
    import_id: int | None = None
    error: CaseFileError | None = None
    rows_total: int = 0
    imported: int = 0
    updated: int = 0
    unchanged: int = 0
    rejects: list[Reject] = field(default_factory=list)
    finished_at: datetime | None = None
    late: bool = False
    sha256: str | None = None
    backups: list[str] = field(default_factory=list)
    table: RawTable | None = None
    recalled: list[str] = field(default_factory=list)  # case numbers the file's 召回/recall column closed

    @property
    def rejected(self) -> int:
        return len(self.rejects)

    @property
    def minutes_taken(self) -> int:
        """Minutes from the bank file's receipt to the end of the import (the SOP allows 120)."""
        end = self.finished_at or self.received_at
        return int((end - self.received_at).total_seconds() // 60)

    @property
    def exit_code(self) -> int:
        if self.error is not None or self.imported + self.updated + self.unchanged == 0:
            return EXIT_NOTHING
        return EXIT_SOME_REJECTED if self.rejects else EXIT_OK

    def rejects_csv(self, t: Translator) -> bytes | None:
        if not self.rejects or self.table is None:
            return None
        return write_rejects_csv(self.table, self.rejects, lambda r: reject_reason(t, r))


def reject_reason(t: Translator, reject: Reject) -> str:
    params = dict(reject.params)
    if "field" in params:
        params["field"] = t(f"import.field.{params['field']}")
    return t(f"import.reject.{reject.reason}", **params)


class _Assignees:
    """Resolve the file's 外访员 column (a staff id or a unique name) to an active collector."""

    def __init__(self, collectors: Sequence[Staff]) -> None:
        self.by_id = {str(s.id): s for s in collectors}
        names: dict[str, list[Staff]] = {}
        for s in collectors:
            names.setdefault(s.name.strip(), []).append(s)
        self.by_name = {name: found[0] for name, found in names.items() if len(found) == 1}

    def find(self, text: str) -> Staff | None:
        text = text.strip().lstrip("#")
        return self.by_id.get(text) or self.by_name.get(text)

    def known(self, text: str) -> bool:
        return self.find(text) is not None


def _suffix(filename: str) -> str:
    suffix = PurePath(filename).suffix.lower()
    return suffix if suffix in (".csv", ".xlsx", ".txt", ".tsv") else ".bin"


def _case_values(row: CaseRow) -> dict[str, Any]:
    return {
        "debtor_name": row.debtor_name,
        "id_number_masked": row.id_number_masked,
        "phone": row.phone,
        "address": row.address,
        "amount_due_fen": int(row.amount_due * 100),
        "overdue_days": row.overdue_days,
        "entrusted_on": row.entrusted_on,
        "contract_end": row.contract_end,
        **({"portfolio": row.portfolio} if row.portfolio is not None else {}),
    }


def _jsonable(value: Any) -> Any:
    return value.isoformat() if isinstance(value, date) else value


async def import_file(
    database: Database,
    data: bytes,
    filename: str,
    *,
    clock: Clock,
    calendar: WorkCalendar,
    media: MediaStore,
    backup_dirs: Sequence[Path] = (),
    geocoder: GeocoderLike | None = None,
    bank: str | None = None,
    team: str | None = None,
    sheet: str | None = None,
    received_at: datetime | None = None,
    actor_id: int | None = None,
    batch_size: int = BATCH_SIZE,
    progress: Progress | None = None,
) -> ImportSummary:
    """Import one bank file. File-level problems come back as ``summary.error`` with nothing written.

    The file is read twice, row by row, and never held as a table: the first pass checks every row
    (counts, rejects, file-level errors) before anything is written, the second writes the good rows
    in batches, each one transaction of multi-row inserts.
    """
    started = clock.now()
    summary = ImportSummary(filename=filename, received_at=received_at or started)
    async with database.read() as session:
        collectors = list(await session.scalars(
            select(Staff).where(Staff.active.is_(True), Staff.role.in_(FIELD_COLLECTOR_ROLES))))
    assignees = _Assignees(collectors)
    try:
        stream = open_case_file(data, filename, sheet=sheet)
        checker = stream.checker(default_bank=bank, known_assignee=assignees.known)
        refused: list[tuple[int, list[object], Rejection]] = []
        good = 0
        for row_number, values in stream.rows():
            summary.rows_total += 1
            checked = checker.check(row_number, values)
            if isinstance(checked, CaseRow):
                good += 1
            else:
                refused.append((row_number, values, checked))
        if summary.rows_total == 0:
            raise CaseFileError("empty", f"{filename}: there are no data rows under the header")
    except CaseFileError as exc:
        log.warning("import of %s refused: %s (%s)", filename, exc.code, exc.detail)
        summary.error = exc
        return summary
    summary.table = stream.table()
    summary.rejects = [stream.reject(n, values, why) for n, values, why in refused]
    del refused

    # The SOP's two backups: the original under the data dir, a verified copy in each backup folder.
    blob = await media.put(data, kind="imports", suffix=_suffix(filename), sealed=True)
    summary.sha256 = blob.sha256
    for folder in backup_dirs:
        summary.backups.append(str(await media.copy_to(blob, folder)))

    async with database.write() as session:
        record = CaseImport(filename=filename[:255], sha256=blob.sha256, stored_path=blob.path,
                            file_format=stream.format, default_bank=bank, team=team, actor_id=actor_id,
                            received_at=summary.received_at, started_at=started, rows_total=summary.rows_total,
                            rejected=summary.rejected, imported=0, updated=0, unchanged=0, late=False)
        session.add(record)
        await session.flush()
        summary.import_id = record.id
        await audit.record(session, action="import.start", object_type="import", object_id=record.id,
                           actor_id=actor_id, at=started,
                           details={"filename": filename, "sha256": blob.sha256, "rows": summary.rows_total,
                                    "rejected": summary.rejected, "received_at": summary.received_at.isoformat(),
                                    "backups": len(summary.backups)})

    done = 0
    if progress is not None:
        await progress(0, good)

    async def write(batch: list[CaseRow]) -> None:
        nonlocal done
        coordinates = await locate_many(database, geocoder, (r.address for r in batch if r.lat is None),
                                        now=clock.now())
        async with database.write() as session:
            counts = await _upsert_batch(session, batch, summary.import_id, assignees, coordinates, team=team,
                                         actor_id=actor_id, now=clock.now(), calendar=calendar)
            await session.execute(
                update(CaseImport).where(CaseImport.id == summary.import_id)
                .values(imported=CaseImport.imported + counts[0], updated=CaseImport.updated + counts[1],
                        unchanged=CaseImport.unchanged + counts[2]))
        summary.imported += counts[0]
        summary.updated += counts[1]
        summary.unchanged += counts[2]
        done += len(batch)
        if progress is not None:
            await progress(done, good)

    checker = stream.checker(default_bank=bank, known_assignee=assignees.known)
    batch: list[CaseRow] = []
    recall_keys: list[tuple[str, str]] = []
    for row_number, values in stream.rows():
        checked = checker.check(row_number, values)
        if isinstance(checked, CaseRow):
            if checked.recall:
                recall_keys.append((checked.bank, checked.case_no))
            batch.append(checked)
            if len(batch) >= batch_size:
                await write(batch)
                batch = []
    if batch:
        await write(batch)

    if recall_keys:
        async with database.write() as session:
            summary.recalled = await _recall(session, recall_keys, import_id=summary.import_id, actor_id=actor_id,
                                             now=clock.now())

    finished = clock.now()
    summary.finished_at = finished
    summary.late = finished - summary.received_at > ENTRY_LIMIT
    async with database.write() as session:
        record_row = await session.get(CaseImport, summary.import_id)
        assert record_row is not None
        record_row.finished_at = finished
        record_row.late = summary.late
        await audit.record(session, action="import.finished", object_type="import", object_id=summary.import_id,
                           actor_id=actor_id, at=finished,
                           details={"imported": summary.imported, "updated": summary.updated,
                                    "unchanged": summary.unchanged, "rejected": summary.rejected,
                                    "late": summary.late, "minutes_since_receipt": summary.minutes_taken})
    log.info("import %s of %s: %s new, %s updated, %s unchanged, %s rejected%s", summary.import_id, filename,
             summary.imported, summary.updated, summary.unchanged, summary.rejected, " (LATE)" if summary.late else "")
    return summary


_COMPARED = ("debtor_name", "id_number_masked", "phone", "address", "amount_due_fen", "overdue_days",
             "entrusted_on", "contract_end", "lat", "lon", "portfolio")


async def _upsert_batch(
    session: AsyncSession,
    batch: Sequence[CaseRow],
    import_id: int | None,
    assignees: _Assignees,
    coordinates: dict[str, tuple[float, float] | None],
    *,
    team: str | None,
    actor_id: int | None,
    now: datetime,
    calendar: WorkCalendar,
) -> tuple[int, int, int]:
    """One batch in the caller's transaction: a multi-row insert of the new cases, one of their audit
    entries, a bulk update of the changed ones; (re)assignments go case by case through the assignment rules."""
    keys = [(row.bank, row.case_no) for row in batch]
    existing = {
        (r.bank, r.case_no): r
        for r in (await session.execute(
            select(Case.id, Case.bank, Case.case_no, *(getattr(Case, k) for k in _COMPARED))
            .where(_keys_in(keys)))).all()
    }
    current: dict[int, int] = {}
    if existing:
        rows = await session.execute(select(Assignment.case_id, Assignment.staff_id).where(
            Assignment.case_id.in_([r.id for r in existing.values()]), Assignment.ended_at.is_(None)))
        current = dict(rows.tuples().all())
    imported = updated = unchanged = 0
    assign_due = calendar.deadline_after(now, ASSIGN_WITHIN_WORKING_DAYS)
    new_rows: list[dict[str, Any]] = []
    new_meta: list[tuple[CaseRow, Staff | None]] = []
    changed: list[dict[str, Any]] = []
    entries: list[audit.Pending] = []
    to_assign: list[tuple[int, Staff]] = []
    for row in batch:
        values = _case_values(row)
        if row.lat is not None and row.lon is not None:
            values["lat"], values["lon"] = row.lat, row.lon
        else:
            found = coordinates.get(normalize_address(row.address))
            if found is not None:
                values["lat"], values["lon"] = found
        assignee = assignees.find(row.assignee) if row.assignee else None
        old = existing.get((row.bank, row.case_no))
        if old is None:
            new_rows.append({"bank": row.bank, "case_no": row.case_no, "status": CaseStatus.NEW.value, "team": team,
                             "import_id": import_id, "created_at": now, "updated_at": now,
                             "assign_due_at": assign_due, "lat": None, "lon": None,
                             "portfolio": Portfolio.CREDIT_CARD.value, **values})
            new_meta.append((row, assignee))
            imported += 1
            continue
        changes = {k: (_jsonable(getattr(old, k)), _jsonable(v)) for k, v in values.items() if getattr(old, k) != v}
        reassign = assignee is not None and current.get(old.id) != assignee.id
        if not changes and not reassign:
            unchanged += 1
            continue
        if changes:
            changed.append({"id": old.id, "updated_at": now, **{k: values[k] for k in changes}})
            entries.append(audit.Pending("case.import.update", "case", old.id, actor_id,
                                         {"import_id": import_id, "row": row.row_number, "changes": changes}))
        if reassign:
            assert assignee is not None
            to_assign.append((old.id, assignee))
        updated += 1
    if new_rows:
        # One executemany, then the new ids by key (RETURNING in parameter order would be a row at a time on SQLite).
        await session.execute(insert(Case), new_rows)
        ids = {(bank, case_no): case_id for bank, case_no, case_id in (await session.execute(
            select(Case.bank, Case.case_no, Case.id).where(
                _keys_in([(r.bank, r.case_no) for r, _ in new_meta])))).tuples()}
        for row, assignee in new_meta:
            case_id = ids[(row.bank, row.case_no)]
            entries.append(audit.Pending("case.import.new", "case", case_id, actor_id,
                                         {"bank": row.bank, "case_no": row.case_no, "import_id": import_id,
                                          "row": row.row_number}))
            if assignee is not None:
                to_assign.append((case_id, assignee))
    for group in _same_keys(changed):
        await session.execute(update(Case), group)
    await audit.record_many(session, entries, at=now)
    if to_assign:
        cases = {c.id: c for c in await session.scalars(select(Case).where(Case.id.in_([i for i, _ in to_assign])))}
        assigned: list[tuple[Case, Staff, int | None]] = []
        for case_id, assignee in to_assign:
            case = cases[case_id]
            await assign_in_session(session, case, assignee, actor_id=actor_id, reason="import", now=now,
                                    calendar=calendar)
            assigned.append((case, assignee, current.get(case_id)))
        await notify_assignments(session, assigned, now=now, calendar=calendar)
    return imported, updated, unchanged


def _keys_in(keys: Sequence[tuple[str, str]]) -> ColumnElement[bool]:
    """``(bank, case_no) IN keys`` as one ``case_no IN (...)`` per bank, so the unique index is used
    (SQLite scans the table for a row-value IN list)."""
    by_bank: dict[str, list[str]] = {}
    for bank, case_no in keys:
        by_bank.setdefault(bank, []).append(case_no)
    return or_(*(and_(Case.bank == bank, Case.case_no.in_(numbers)) for bank, numbers in by_bank.items()))


def _same_keys(rows: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """Rows grouped by the columns they set (a bulk update sends one statement per group)."""
    groups: dict[frozenset[str], list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault(frozenset(row), []).append(row)
    return list(groups.values())


async def _recall(session: AsyncSession, keys: Sequence[tuple[str, str]], *, import_id: int | None,
                  actor_id: int | None, now: datetime) -> list[str]:
    """Close the open cases among ``keys`` as recalled by the bank; returns the case numbers closed."""
    closed: list[str] = []
    for start in range(0, len(keys), 500):
        chunk = keys[start:start + 500]
        for case in await session.scalars(select(Case).where(_keys_in(chunk)).order_by(Case.id)):
            if case.status in FINISHED:
                continue
            await close_case(session, case, status=CaseStatus.CLOSED, reason=RECALLED, actor_id=actor_id, now=now,
                             details={"import_id": import_id})
            closed.append(case.case_no)
    return closed


RECALL_WORDS = ("召回", "recall", "退案")


TEAM_MARKS = ("team:", "team=", "team：", "组:", "组：", "小组:", "小组：")


@dataclass(frozen=True)
class CaptionParts:
    """What the rest of a case file's caption says: the bank, and the team whose supervisor assigns the cases
    (``team`` is a known team's name; ``unknown_team`` a name written as ``组:X`` that no team has)."""

    bank: str | None
    team: str | None
    unknown_team: str | None = None


def split_caption(words: str | None, teams: Sequence[str]) -> CaptionParts:
    """A word that is a team's name (any case), or written ``组:名`` / ``team:NAME``, names the team; the
    other words name the bank. ``招商银行 A组`` with a team ``A组`` → bank 招商银行, team A组."""
    known = {team.casefold(): team for team in teams}
    team: str | None = None
    unknown: str | None = None
    bank_words: list[str] = []
    for word in (words or "").split():
        folded = word.casefold()
        mark = next((m for m in TEAM_MARKS if folded.startswith(m) and len(word) > len(m)), None)
        if mark is not None:
            name = word[len(mark):]
            team, unknown = (known[name.casefold()], None) if name.casefold() in known else (None, name)
        elif folded in known and team is None:
            team = known[folded]
        else:
            bank_words.append(word)
    return CaptionParts(bank=" ".join(bank_words) or None, team=team, unknown_team=unknown)


async def upload_teams(session: AsyncSession, actor: StaffView | None) -> list[str]:
    """The teams a case file can go to: those with an active supervisor (their supervisor assigns its cases)."""
    policy.require_role(actor, policy.Action.CASE_IMPORT)
    found = await session.scalars(select(Staff.team).where(
        Staff.role == Role.SUPERVISOR.value, Staff.active.is_(True), Staff.team.is_not(None))
        .distinct().order_by(Staff.team))
    return [team for team in found if team]


def file_problem(data: bytes, filename: str) -> CaseFileError | None:
    """Why the file cannot be a case file at all (format, header), checked before the admin is asked more."""
    try:
        open_case_file(data, filename)
    except CaseFileError as exc:
        return exc
    return None


async def park_upload(media: MediaStore, data: bytes, filename: str) -> str:
    """Keep a file that waits for its team where the import will keep it anyway (sealed, content-addressed:
    no second copy); the stored path, for the flow state."""
    return (await media.put(data, kind="imports", suffix=_suffix(filename), sealed=True)).path


def kind_of_upload(data: bytes, filename: str, caption: str | None) -> tuple[str, str | None]:
    """What a file sent to the bot is, and the bank its caption names: ``("recall", bank)`` when the caption
    says 召回 / recall / 退案; ``("payments", bank)`` when its header is a repayment file's (a case number,
    an amount paid and a date paid, no address); else ``("cases", bank)``."""
    words = (caption or "").split()
    recall = any(w.strip().lower() in RECALL_WORDS for w in words)
    bank = " ".join(w for w in words if w.strip().lower() not in RECALL_WORDS).strip() or None
    if recall:
        return "recall", bank
    return sniff_kind(data, filename), bank


RECALL_REJECTS = (N_("recall.reject.missing_case_no"), N_("recall.reject.missing_bank"),
                  N_("recall.reject.unknown_case"))


@dataclass
class RecallSummary:
    filename: str
    import_id: int | None = None
    error: CaseFileError | None = None
    rows_total: int = 0
    closed: list[str] = field(default_factory=list)
    already_closed: int = 0
    rejects: list[Reject] = field(default_factory=list)
    table: RawTable | None = None

    @property
    def rejected(self) -> int:
        return len(self.rejects)

    @property
    def exit_code(self) -> int:
        if self.error is not None or len(self.closed) + self.already_closed == 0:
            return EXIT_NOTHING
        return EXIT_SOME_REJECTED if self.rejects else EXIT_OK

    def rejects_csv(self, t: Translator) -> bytes | None:
        if not self.rejects or self.table is None:
            return None
        return write_rejects_csv(self.table, self.rejects, lambda r: t(f"recall.reject.{r.reason}", **r.params))


async def import_recall(
    database: Database,
    data: bytes,
    filename: str,
    *,
    clock: Clock,
    media: MediaStore,
    backup_dirs: Sequence[Path] = (),
    bank: str | None = None,
    sheet: str | None = None,
    received_at: datetime | None = None,
    actor_id: int | None = None,
) -> RecallSummary:
    """A bank's recall file (case numbers, maybe the bank): close every listed open case as recalled.

    Its collector and their supervisor are told, its visit reminders are cancelled, each closing is
    audited; a case already closed is left as it is. One transaction: a file goes in whole or not at all.
    """
    started = clock.now()
    summary = RecallSummary(filename=filename)
    default_bank = clean_text(bank) if bank else ""
    wanted: list[tuple[int, list[object], str, str]] = []
    refused: list[tuple[int, list[object], Rejection]] = []
    try:
        stream = open_case_file(data, filename, sheet=sheet, required=RECALL_HEADER_REQUIRED)
        ix = stream.column_index
        for row_number, values in stream.rows():
            summary.rows_total += 1
            texts = {name: clean_text(str(values[i])) if i < len(values) else "" for name, i in ix.items()}
            case_no, row_bank = texts.get("case_no", ""), texts.get("bank", "") or default_bank
            if not case_no:
                refused.append((row_number, values, Rejection("missing_case_no", {})))
            elif not row_bank:
                refused.append((row_number, values, Rejection("missing_bank", {"case_no": case_no})))
            else:
                wanted.append((row_number, values, row_bank, case_no))
        if summary.rows_total == 0:
            raise CaseFileError("empty", f"{filename}: there are no data rows under the header")
    except CaseFileError as exc:
        log.warning("recall import of %s refused: %s (%s)", filename, exc.code, exc.detail)
        summary.error = exc
        return summary
    blob = await media.put(data, kind="imports", suffix=_suffix(filename), sealed=True)
    for folder in backup_dirs:
        await media.copy_to(blob, folder)
    async with database.write() as session:
        now = clock.now()
        found = {(c.bank, c.case_no): c for c in await session.scalars(
            select(Case).where(_keys_in([(b, n) for _, _, b, n in wanted])))} if wanted else {}
        record = CaseImport(kind="recall", filename=filename[:255], sha256=blob.sha256, stored_path=blob.path,
                            file_format=stream.format, default_bank=bank, actor_id=actor_id,
                            received_at=received_at or started, started_at=started, rows_total=summary.rows_total,
                            rejected=0, imported=0, updated=0, unchanged=0, late=False)
        session.add(record)
        await session.flush()
        summary.import_id = record.id
        keys: list[tuple[str, str]] = []
        for row_number, values, row_bank, case_no in wanted:
            case = found.get((row_bank, case_no))
            if case is None:
                refused.append((row_number, values, Rejection("unknown_case", {"bank": row_bank, "case_no": case_no})))
            elif case.status in FINISHED:
                summary.already_closed += 1
            elif (row_bank, case_no) not in keys:
                keys.append((row_bank, case_no))
        summary.closed = await _recall(session, keys, import_id=record.id, actor_id=actor_id, now=now)
        summary.table = stream.table()
        summary.rejects = sorted((stream.reject(n, values, why) for n, values, why in refused),
                                 key=lambda r: r.row_number)
        record.rejected, record.updated = summary.rejected, len(summary.closed)
        record.unchanged = summary.already_closed
        record.finished_at = clock.now()
        await audit.record(session, action="import.recall", object_type="import", object_id=record.id,
                           actor_id=actor_id, at=now,
                           details={"filename": filename, "sha256": blob.sha256, "rows": summary.rows_total,
                                    "closed": summary.closed, "already_closed": summary.already_closed,
                                    "rejected": summary.rejected})
    log.info("recall %s of %s: %s closed, %s already closed, %s rejected", summary.import_id, filename,
             len(summary.closed), summary.already_closed, summary.rejected)
    return summary

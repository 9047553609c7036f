"""Taking in the bank's case files: validate, keep two backups, upsert in batches, audit, time it.

The SOP: case data is entered within 2 hours of receiving the bank's file, and two backups are kept.
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

from sqlalchemy import select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from bot.clock import Clock
from bot.i18n import N_, Translator
from bot.services import audit
from bot.services.assignment import assign_in_session, notify_assignments
from bot.services.calendar import WorkCalendar
from bot.services.case_file import (
    CaseFileError,
    CaseRow,
    RawTable,
    Reject,
    read_case_file,
    validate_rows,
    write_rejects_csv,
)
from bot.services.geocoding import GeocoderLike, locate_many, normalize_address
from bot.storage.db import Database
from bot.storage.media import MediaStore
from bot.storage.models import Assignment, Case, CaseImport, CaseStatus, Role, Staff

log = logging.getLogger(__name__)

ENTRY_LIMIT = timedelta(hours=2)  # SOP: entered within 2 hours of receipt
ASSIGN_WITHIN_WORKING_DAYS = 1  # SOP: assigned within 1 working day
BATCH_SIZE = 200
FIELD_COLLECTOR_ROLES = (Role.COLLECTOR.value, Role.PHONE_COLLECTOR.value)

EXIT_OK, EXIT_NOTHING, EXIT_SOME_REJECTED = 0, 2, 3

Progress = Callable[[int, int], Awaitable[None]]

# Every reason a row can be rejected for (see case_file.CHECK_ORDER), and the date fields it names.
REJECT_MESSAGES = (
    N_("import.reject.missing_case_no"), N_("import.reject.duplicate_case_no"), N_("import.reject.missing_bank"),
    N_("import.reject.missing_debtor_name"), N_("import.reject.missing_address"), N_("import.reject.bad_amount"),
    N_("import.reject.bad_phone"), N_("import.reject.bad_overdue_days"), N_("import.reject.bad_date"),
    N_("import.reject.contract_before_entrusted"), N_("import.reject.bad_coordinates"),
    N_("import.reject.unknown_assignee"), N_("import.field.entrusted_on"), N_("import.field.contract_end"),
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
    """Import one bank file. File-level problems come back as ``summary.error`` with nothing written."""
    started = clock.now()
    summary = ImportSummary(filename=filename, received_at=received_at or started)
    try:
        table = read_case_file(data, filename, sheet=sheet)
    except CaseFileError as exc:
        log.warning("import of %s refused: %s (%s)", filename, exc.code, exc.detail)
        summary.error = exc
        return summary
    summary.table = table

    async with database.read() as session:
        collectors = list(await session.scalars(
            select(Staff).where(Staff.active.is_(True), Staff.role.in_(FIELD_COLLECTOR_ROLES))))
    assignees = _Assignees(collectors)
    result = validate_rows(table, default_bank=bank, known_assignee=assignees.known)
    summary.rows_total = len(table.rows)
    summary.rejects = result.rejects

    # The SOP's two backups: the original under the data dir, a verified copy in each backup folder.
    blob = media.put(data, kind="imports", suffix=_suffix(filename))
    summary.sha256 = blob.sha256
    for folder in backup_dirs:
        summary.backups.append(str(media.copy_to(blob, folder)))

    async with database.write() as session:
        record = CaseImport(filename=filename[:255], sha256=blob.sha256, stored_path=blob.path,
                            file_format=table.format, default_bank=bank, team=team, actor_id=actor_id,
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

    coordinates = await locate_many(database, geocoder, (r.address for r in result.good if r.lat is None),
                                    now=clock.now())
    done = 0
    if progress is not None:
        await progress(0, len(result.good))
    for start in range(0, len(result.good), batch_size):
        batch = result.good[start:start + batch_size]
        async with database.write() as session:
            counts = await _upsert_batch(session, batch, summary.import_id, assignees, coordinates, team=team,
                                         actor_id=actor_id, now=clock.now(), calendar=calendar)
            record_row = await session.get(CaseImport, summary.import_id)
            assert record_row is not None
            record_row.imported += counts[0]
            record_row.updated += counts[1]
            record_row.unchanged += counts[2]
        summary.imported += counts[0]
        summary.updated += counts[1]
        summary.unchanged += counts[2]
        done += len(batch)
        if progress is not None:
            await progress(done, len(result.good))

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
    keys = [(row.bank, row.case_no) for row in batch]
    existing = {
        (case.bank, case.case_no): case
        for case in await session.scalars(select(Case).where(tuple_(Case.bank, Case.case_no).in_(keys)))
    }
    current = {
        a.case_id: a.staff_id
        for a in await session.scalars(select(Assignment).where(
            Assignment.case_id.in_([c.id for c in existing.values()]), Assignment.ended_at.is_(None)))
    }
    imported = updated = unchanged = 0
    assigned: list[tuple[Case, Staff, int | None]] = []
    assign_due = calendar.deadline_after(now, ASSIGN_WITHIN_WORKING_DAYS)
    for row in batch:
        values = _case_values(row)
        if row.lat is not None and row.lon is not None:
            values["lat"], values["lon"] = row.lat, row.lon
        else:
            found = coordinates.get(normalize_address(row.address))
            if found is not None:
                values["lat"], values["lon"] = found
        assignee = assignees.find(row.assignee) if row.assignee else None
        case = existing.get((row.bank, row.case_no))
        if case is None:
            case = Case(bank=row.bank, case_no=row.case_no, status=CaseStatus.NEW.value, team=team,
                        import_id=import_id, created_at=now, updated_at=now, assign_due_at=assign_due, **values)
            session.add(case)
            await session.flush()
            await audit.record(session, action="case.import.new", object_type="case", object_id=case.id,
                               actor_id=actor_id, at=now,
                               details={"bank": row.bank, "case_no": row.case_no, "import_id": import_id,
                                        "row": row.row_number})
            imported += 1
        else:
            changes = {k: (_jsonable(getattr(case, k)), _jsonable(v)) for k, v in values.items()
                       if getattr(case, k) != v}
            reassign = assignee is not None and current.get(case.id) != assignee.id
            if not changes and not reassign:
                unchanged += 1
                continue
            for key in changes:
                setattr(case, key, values[key])
            if changes:
                case.updated_at = now
                await audit.record(session, action="case.import.update", object_type="case", object_id=case.id,
                                   actor_id=actor_id, at=now,
                                   details={"import_id": import_id, "row": row.row_number, "changes": changes})
            updated += 1
        if assignee is not None and current.get(case.id) != assignee.id:
            await assign_in_session(session, case, assignee, actor_id=actor_id, reason="import", now=now,
                                    calendar=calendar)
            assigned.append((case, assignee, current.get(case.id)))
            current[case.id] = assignee.id
    await notify_assignments(session, assigned, now=now, calendar=calendar)
    return imported, updated, unchanged

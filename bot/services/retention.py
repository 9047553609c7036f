"""Retention: a case's material is kept until 5 years after the bank agreement ends, then purged.

The SOP keeps all case material (the bank's original data, visit reports, photos, recordings) until
five years after ``contract_end``; China's PIPL says personal data must not be kept longer than
needed. A case is **due** on ``contract_end + 5 years`` (29 February -> 28 February), read as a local
date in ``settings.timezone``; when its bank's agreement (bot/services/banks.py, by the case's bank
name) ends later than ``contract_end``, the agreement's end counts instead: the material is kept five
years after the later of the two. A case without ``contract_end`` is never purged. A due case that is
still active is skipped, with its reasons: a current assignment while the case is not closed (closed
is :data:`bot.services.cases.CLOSED_STATUSES`), a visit report not yet approved, an open incident on
the case or one of its visits, or a legal hold that is not released.

**Purging one case** is one transaction: every row of the case (assignments, visits, evidence,
promises, reminders, extension requests, field requests, bank reports, registered letters, special
procedures, handover items, flow states pointing at it,
released legal holds, the geocoder's cached answer for its address when no other case has it) and
the case row go; incidents are staff-safety records and stay, with their
``case_id``/``visit_id`` set to NULL; a handover left without items loses its issues (their notes are
about the cases). A :class:`PurgedCase` tombstone and a ``retention.purged`` audit entry are written
in the same transaction. The bank's original file goes, with the ``imports`` rows naming it, once no
remaining case came from it; an evidence file goes once no
remaining evidence row names the same SHA-256 (shared media stay until every case using them is
purged).

**Files are deleted only after the transaction committed.** A crash between the commit and the
unlink leaves an orphan file that nothing in the database names any more; it never leaves a row
pointing at a missing file. The tombstone's ``files`` list says, per file, whether it was released
for deletion (``deleted``) or kept because another case still uses it.

The monthly :func:`sweep` claims the month with a ``ReportRun(kind="retention")`` row (unique per
kind and period), so it purges at most once per calendar month, even with two processes. A run
that stops part-way leaves whole cases purged or untouched; the rest go with next month's run (or
``fieldbot purge``).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from bot.i18n import N_
from bot.runtime import Runtime
from bot.services import audit, banks
from bot.services.cases import CLOSED_STATUSES
from bot.services.errors import DomainError, NotFound
from bot.services.geocoding import normalize_address
from bot.storage.db import Database
from bot.storage.media import MediaStore
from bot.storage.models import (
    Assignment,
    BankAlert,
    Case,
    CaseImport,
    Evidence,
    ExtensionRequest,
    FieldRequest,
    FlowState,
    GeocodeResult,
    HandoverIssue,
    HandoverItem,
    Incident,
    IncidentStatus,
    LegalHold,
    Letter,
    Payment,
    Promise,
    PurgedCase,
    Reminder,
    ReportRun,
    SpecialProcedure,
    Visit,
    VisitStatus,
)

log = logging.getLogger(__name__)

KEEP_YEARS = 5
RUN_KIND = "retention"
_CHUNK = 500

# Why a due case is kept, as codes and their message ids.
HOLD, ASSIGNED, OPEN_VISIT, OPEN_INCIDENT = "legal_hold", "assigned", "open_visit", "open_incident"
REASONS = {
    HOLD: N_("retention.reason.legal_hold"),
    ASSIGNED: N_("retention.reason.assigned"),
    OPEN_VISIT: N_("retention.reason.open_visit"),
    OPEN_INCIDENT: N_("retention.reason.open_incident"),
}


def keep_until(contract_end: date, years: int = KEEP_YEARS) -> date:
    """The day the case's material may go: ``years`` after the contract's end (29 Feb -> 28 Feb)."""
    try:
        return contract_end.replace(year=contract_end.year + years)
    except ValueError:
        return contract_end.replace(year=contract_end.year + years, day=28)


def local_today(now: datetime, timezone: str) -> date:
    return now.astimezone(ZoneInfo(timezone)).date()


def _latest_due_contract_end(today: date) -> date:
    """An upper bound for ``contract_end`` of due cases (exact filtering is :func:`keep_until`)."""
    try:
        bound = today.replace(year=today.year - KEEP_YEARS)
    except ValueError:
        bound = today.replace(year=today.year - KEEP_YEARS, day=28)
    return bound + timedelta(days=1)


@dataclass(frozen=True)
class DueCase:
    """A case whose retention period is over; ``reasons`` empty means it would be purged."""

    case_id: int
    bank: str
    case_no: str
    contract_end: date
    keep_until: date
    reasons: tuple[str, ...] = ()

    @property
    def purgeable(self) -> bool:
        return not self.reasons


def _chunks(ids: Sequence[int]) -> Iterable[Sequence[int]]:
    for start in range(0, len(ids), _CHUNK):
        yield ids[start:start + _CHUNK]


async def _reasons(session: AsyncSession, cases: Sequence[Case]) -> dict[int, set[str]]:
    """Why each of these cases is still active (no entry: it is not)."""
    found: dict[int, set[str]] = {}
    by_id = {c.id: c for c in cases}
    for ids in _chunks(list(by_id)):
        held = await session.scalars(select(LegalHold.case_id).where(
            LegalHold.case_id.in_(ids), LegalHold.released_at.is_(None)))
        for case_id in held:
            found.setdefault(case_id, set()).add(HOLD)
        assigned = await session.scalars(select(Assignment.case_id).where(
            Assignment.case_id.in_(ids), Assignment.ended_at.is_(None)))
        for case_id in assigned:
            if by_id[case_id].status not in CLOSED_STATUSES:
                found.setdefault(case_id, set()).add(ASSIGNED)
        visiting = await session.scalars(select(Visit.case_id).where(
            Visit.case_id.in_(ids), Visit.status != VisitStatus.APPROVED.value))
        for case_id in visiting:
            found.setdefault(case_id, set()).add(OPEN_VISIT)
        unresolved = Incident.status != IncidentStatus.RESOLVED.value
        direct = await session.scalars(select(Incident.case_id).where(Incident.case_id.in_(ids), unresolved))
        via_visit = await session.scalars(select(Visit.case_id).join(Incident, Incident.visit_id == Visit.id).where(
            Visit.case_id.in_(ids), unresolved))
        for case_id in [*direct, *via_visit]:
            if case_id is not None:
                found.setdefault(case_id, set()).add(OPEN_INCIDENT)
    return found


def _ordered(reasons: set[str]) -> tuple[str, ...]:
    return tuple(code for code in REASONS if code in reasons)


def retained_from(contract_end: date, agreement_end: date | None) -> date:
    """The day the five years count from: the later of the case's contract end and its bank's agreement end."""
    return max(contract_end, agreement_end) if agreement_end is not None else contract_end


async def due(session: AsyncSession, *, today: date) -> list[DueCase]:
    """Every case whose retention period is over on ``today``, each with why it is kept (if it is)."""
    # a later agreement end only keeps a case longer: the contract_end bound still finds every candidate
    candidates = list(await session.scalars(
        select(Case).where(Case.contract_end.is_not(None), Case.contract_end < _latest_due_contract_end(today))
        .order_by(Case.contract_end, Case.id)))
    ends = await banks.agreement_ends(session, (c.bank for c in candidates))
    until = {c.id: keep_until(retained_from(c.contract_end, ends.get(c.bank)))
             for c in candidates if c.contract_end is not None}
    due_cases = [c for c in candidates if c.id in until and until[c.id] <= today]
    reasons = await _reasons(session, due_cases)
    return [DueCase(case_id=c.id, bank=c.bank, case_no=c.case_no, contract_end=c.contract_end,
                    keep_until=until[c.id], reasons=_ordered(reasons.get(c.id, set())))
            for c in due_cases if c.contract_end is not None]


async def undated(session: AsyncSession) -> list[tuple[str, str]]:
    """(bank, case_no) of the cases without a contract end: they are never purged."""
    rows = await session.execute(select(Case.bank, Case.case_no).where(Case.contract_end.is_(None))
                                 .order_by(Case.bank, Case.case_no))
    return [(str(bank), str(case_no)) for bank, case_no in rows]


async def count_undated(session: AsyncSession) -> int:
    return int(await session.scalar(select(func.count()).select_from(Case).where(Case.contract_end.is_(None))) or 0)


# --- legal holds -------------------------------------------------------------------------------


class ReasonRequired(DomainError):
    key = N_("retention.error.reason_required")


def _required(reason: str, by: str) -> tuple[str, str]:
    reason, by = (reason or "").strip(), (by or "").strip()
    if not reason:
        raise ReasonRequired()
    if not by:
        raise DomainError(N_("retention.error.by_required"))
    return reason, by[:100]


async def find_case(session: AsyncSession, case_no: str, bank: str | None = None) -> Case:
    """The one case with this number (and bank); unknown or ambiguous is a :class:`NotFound`."""
    query = select(Case).where(Case.case_no == case_no.strip())
    if bank:
        query = query.where(Case.bank == bank.strip())
    found = list(await session.scalars(query.limit(2)))
    if len(found) == 1:
        return found[0]
    if found:
        raise NotFound(N_("retention.error.case_ambiguous"), case_no=case_no)
    tombstone = await session.scalar(select(PurgedCase).where(PurgedCase.case_no == case_no.strip())
                                     .order_by(PurgedCase.id.desc()).limit(1))
    if tombstone is not None and (not bank or tombstone.bank == bank.strip()):
        raise NotFound(N_("retention.error.case_purged"), case_no=case_no,
                       purged_on=tombstone.purged_at.date().isoformat())
    raise NotFound(N_("retention.error.no_case"), case_no=case_no)


async def place_hold(session: AsyncSession, case: Case, reason: str, by: str, now: datetime) -> LegalHold:
    """Keep the case's material past its retention period until the hold is released. Audited."""
    reason, by = _required(reason, by)
    # The purge holds the case row while it deletes it: wait for it, then refuse as for a purged case.
    if await session.scalar(select(Case.id).where(Case.id == case.id).with_for_update()) is None:
        await find_case(session, case.case_no, case.bank)
        raise NotFound(N_("retention.error.no_case"), case_no=case.case_no)
    hold = LegalHold(case_id=case.id, reason=reason, placed_by=by, placed_at=now)
    session.add(hold)
    await session.flush()
    await audit.record(session, action="retention.hold", object_type="case", object_id=case.id, at=now,
                       details={"hold_id": hold.id, "case_no": case.case_no, "bank": case.bank, "reason": reason,
                                "by": by})
    return hold


async def release_hold(session: AsyncSession, case: Case, reason: str, by: str, now: datetime) -> list[LegalHold]:
    """Release every hold on the case that is not released yet. Audited; no hold is a :class:`NotFound`."""
    reason, by = _required(reason, by)
    holds = list(await session.scalars(select(LegalHold).where(
        LegalHold.case_id == case.id, LegalHold.released_at.is_(None)).order_by(LegalHold.id)))
    if not holds:
        raise NotFound(N_("retention.error.no_hold"), case_no=case.case_no)
    for hold in holds:
        hold.released_at, hold.released_by, hold.release_reason = now, by, reason
    await audit.record(session, action="retention.release", object_type="case", object_id=case.id, at=now,
                       details={"hold_ids": [h.id for h in holds], "case_no": case.case_no, "bank": case.bank,
                                "reason": reason, "by": by})
    return holds


async def holds_of(session: AsyncSession, case_id: int) -> list[LegalHold]:
    return list(await session.scalars(select(LegalHold).where(LegalHold.case_id == case_id).order_by(LegalHold.id)))


# --- the purge ---------------------------------------------------------------------------------


@dataclass
class Purged:
    """One purged case: its tombstone's figures and the files to delete once the transaction committed."""

    case_id: int
    bank: str
    case_no: str
    contract_end: date
    keep_until: date
    rows: dict[str, int]
    files: list[dict[str, Any]]
    unlink: list[str] = field(default_factory=list)  # media keys


@dataclass
class PurgeResult:
    today: date
    dry_run: bool
    due: list[DueCase]
    purged: list[Purged]
    undated: int

    @property
    def kept(self) -> list[DueCase]:
        """Due, but still active: left alone, with the reasons."""
        return [d for d in self.due if not d.purgeable]


def _count(result: Any) -> int:
    return max(int(getattr(result, "rowcount", 0) or 0), 0)


async def _purge_case(session: AsyncSession, case_id: int, *, today: date, now: datetime,
                      media: MediaStore) -> Purged | None:
    """Delete one case and everything of it in the caller's transaction, if it is (still) due and idle."""
    case = await session.scalar(select(Case).where(Case.id == case_id).with_for_update())
    if case is None or case.contract_end is None:
        return None
    agreement_end = (await banks.agreement_ends(session, [case.bank])).get(case.bank)
    until = keep_until(retained_from(case.contract_end, agreement_end))
    if until > today or (await _reasons(session, [case])).get(case.id):
        return None
    contract_end = case.contract_end
    rows: dict[str, int] = {}

    def counted(table: str, result: Any) -> None:
        if (n := _count(result)) > 0:
            rows[table] = rows.get(table, 0) + n

    visit_ids = list(await session.scalars(select(Visit.id).where(Visit.case_id == case.id)))
    extension_ids = list(await session.scalars(select(ExtensionRequest.id).where(ExtensionRequest.case_id == case.id)))
    evidence = list((await session.execute(select(Evidence.sha256, Evidence.kind, Evidence.path).where(
        Evidence.visit_id.in_(visit_ids)))).all()) if visit_ids else []
    handover_ids = set(await session.scalars(select(HandoverItem.handover_id).where(HandoverItem.case_id == case.id)))

    # incidents are staff-safety records: kept, unlinked from the case and its visits
    counted("incidents_unlinked", await session.execute(
        update(Incident).where(Incident.case_id == case.id).values(case_id=None)))
    if visit_ids:
        counted("incidents_unlinked", await session.execute(
            update(Incident).where(Incident.visit_id.in_(visit_ids)).values(visit_id=None)))
    for flow in list(await session.scalars(select(FlowState))):
        data = flow.data or {}
        if data.get("case_id") == case.id or (visit_ids and data.get("visit_id") in visit_ids):
            await session.delete(flow)
            rows["flow_states"] = rows.get("flow_states", 0) + 1
    reminder_of = Reminder.case_id == case.id
    counted("reminders", await session.execute(delete(Reminder).where(
        or_(reminder_of, Reminder.extension_id.in_(extension_ids)) if extension_ids else reminder_of)))
    for table, model in (("promises", Promise), ("field_requests", FieldRequest)):
        of_case = model.case_id == case.id
        counted(table, await session.execute(delete(model).where(
            or_(of_case, model.visit_id.in_(visit_ids)) if visit_ids else of_case)))
    if visit_ids:
        counted("evidence", await session.execute(delete(Evidence).where(Evidence.visit_id.in_(visit_ids))))
    counted("extension_requests", await session.execute(
        delete(ExtensionRequest).where(ExtensionRequest.case_id == case.id)))
    counted("handover_items", await session.execute(delete(HandoverItem).where(HandoverItem.case_id == case.id)))
    for handover_id in sorted(handover_ids):
        if not await session.scalar(select(func.count()).select_from(HandoverItem)
                                    .where(HandoverItem.handover_id == handover_id)):
            counted("handover_issues", await session.execute(
                delete(HandoverIssue).where(HandoverIssue.handover_id == handover_id)))
    counted("payments", await session.execute(delete(Payment).where(Payment.case_id == case.id)))
    counted("bank_alerts", await session.execute(delete(BankAlert).where(BankAlert.case_id == case.id)))
    counted("letters", await session.execute(delete(Letter).where(Letter.case_id == case.id)))
    counted("special_procedures", await session.execute(
        delete(SpecialProcedure).where(SpecialProcedure.case_id == case.id)))
    counted("legal_holds", await session.execute(delete(LegalHold).where(LegalHold.case_id == case.id)))
    counted("assignments", await session.execute(delete(Assignment).where(Assignment.case_id == case.id)))
    counted("visits", await session.execute(delete(Visit).where(Visit.case_id == case.id)))
    import_id, bank, case_no, address = case.import_id, case.bank, case.case_no, case.address
    entrusted_on, created_at = case.entrusted_on, case.created_at
    await session.delete(case)
    await session.flush()
    rows["cases"] = 1
    if not await session.scalar(select(func.count()).select_from(Case).where(Case.address == address)):
        counted("geocode_cache", await session.execute(
            delete(GeocodeResult).where(GeocodeResult.query == normalize_address(address))))

    files: list[dict[str, Any]] = []
    unlink: list[str] = []
    seen: set[str] = set()
    for sha256, kind, path in evidence:
        if not path or path in seen:
            continue
        seen.add(path)
        still_used = await session.scalar(select(func.count()).select_from(Evidence).where(
            or_(Evidence.path == path, Evidence.sha256 == sha256) if sha256 else Evidence.path == path))
        files.append({"sha256": sha256, "kind": kind, "path": path, "deleted": not still_used})
        if not still_used:
            unlink.append(path)

    if import_id is not None:
        original = await session.get(CaseImport, import_id)
        if original is not None:
            same_file = select(CaseImport.id).where(CaseImport.stored_path == original.stored_path)
            still_used = await session.scalar(select(func.count()).select_from(Case).where(
                Case.import_id.in_(same_file)))
            sha256, stored = original.sha256, original.stored_path
            if not still_used:
                counted("imports", await session.execute(
                    delete(CaseImport).where(CaseImport.stored_path == stored)))
                unlink.append(stored)
            files.append({"sha256": sha256, "kind": "import", "path": stored, "deleted": not still_used})

    session.add(PurgedCase(bank=bank, case_no=case_no, contract_end=contract_end, entrusted_on=entrusted_on,
                           case_created_at=created_at, keep_until=until, purged_at=now, rows=rows, files=files))
    await audit.record(session, action="retention.purged", object_type="case", object_id=case_id, at=now, details={
        "case_no": case_no, "bank": bank, "contract_end": contract_end.isoformat(), "keep_until": until.isoformat(),
        "rows": rows, "files": [{"sha256": f["sha256"], "kind": f["kind"], "deleted": f["deleted"]} for f in files]})
    return Purged(case_id=case_id, bank=bank, case_no=case_no, contract_end=contract_end, keep_until=until,
                  rows=rows, files=files, unlink=unlink)


async def _delete_files(media: MediaStore, keys: Iterable[str]) -> None:
    for path in keys:
        try:
            await media.delete(path)
        except OSError as exc:  # the row is gone already: the file is an orphan, not a dangling row
            log.warning("retention: could not delete %s: %s", path, exc)


async def purge(database: Database, media: MediaStore, *, today: date, now: datetime,
                dry_run: bool = False) -> PurgeResult:
    """Purge every due case that is not active, one transaction each; files go after each commit.

    With ``dry_run`` nothing is changed: the result lists what would go and what is kept, and why.
    """
    async with database.read() as session:
        listing = await due(session, today=today)
        without_end = await count_undated(session)
    result = PurgeResult(today=today, dry_run=dry_run, due=listing, purged=[], undated=without_end)
    if dry_run:
        return result
    for item in listing:
        if not item.purgeable:
            continue
        async with database.write() as session:
            done = await _purge_case(session, item.case_id, today=today, now=now, media=media)
        if done is not None:  # committed: now the files may go
            await _delete_files(media, done.unlink)
            result.purged.append(done)
            log.info("retention: purged %s %s (kept until %s)", done.bank, done.case_no, done.keep_until)
    return result


async def claim_month(database: Database, *, today: date, now: datetime) -> bool:
    """Record this month's retention run; False when it is recorded already (by this or another process)."""
    start = today.replace(day=1)
    end = (start + timedelta(days=32)).replace(day=1) - timedelta(days=1)
    try:
        async with database.write() as session:
            taken = await session.scalar(select(ReportRun.id).where(
                ReportRun.kind == RUN_KIND, ReportRun.period_start == start))
            if taken is not None:
                return False
            session.add(ReportRun(kind=RUN_KIND, period_start=start, period_end=end, created_at=now))
    except IntegrityError:  # the other process inserted the same month first
        return False
    return True


async def sweep(runtime: Runtime) -> int:
    """Once per calendar month: purge what is due; returns how many cases were purged."""
    now = runtime.clock.now()
    today = local_today(now, runtime.settings.timezone)
    if not await claim_month(runtime.db, today=today, now=now):
        return 0
    result = await purge(runtime.db, runtime.media, today=today, now=now)
    skipped = [d for d in result.due if not d.purgeable]
    if result.purged or skipped:
        log.info("retention: %d case(s) purged, %d due but kept", len(result.purged), len(skipped))
    return len(result.purged)

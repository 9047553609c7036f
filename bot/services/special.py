"""Special procedures: legal action, a third party's help, or the bank's special request on one case.

The collector (field or phone) holding the case applies with the kind and a reason; the case's team
supervisor approves or rejects it (the admin office may too); once approved the admin office is told to
arrange the resources and marks them arranged; the procedure is closed with its result by the collector
holding the case, the team's supervisor or the admin office. A case has at most one procedure open
(pending, approved or arranged) at a time; each step locks the procedure's row (an application, the
case's row), so two taps or two people at once end in one state and the second is told. Every step
writes an audit entry on the case, which the case timeline shows (bot/services/case_events.py), and tells
the next person through the outbox.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.buttons import SpecialApprove, SpecialArranged, SpecialClose, SpecialKind, SpecialReject
from bot.i18n import N_
from bot.services import audit, outbox, policy
from bot.services.actor import StaffView
from bot.services.cases import CLOSED_STATUSES
from bot.services.errors import DomainError
from bot.services.parsing import clean_text
from bot.services.people import reviewers_of, t_for
from bot.storage.models import Case, Role, SpecialProcedure, SpecialStatus, Staff

OPEN = (SpecialStatus.PENDING.value, SpecialStatus.APPROVED.value, SpecialStatus.ARRANGED.value)


async def open_of(session: AsyncSession, case_id: int, *, lock: bool = False) -> SpecialProcedure | None:
    query = select(SpecialProcedure).where(SpecialProcedure.case_id == case_id, SpecialProcedure.status.in_(OPEN))
    if lock:
        query = query.with_for_update()
    found: SpecialProcedure | None = await session.scalar(query.order_by(SpecialProcedure.id.desc()).limit(1))
    return found


async def _case(session: AsyncSession, actor: StaffView | None, action: policy.Action, case_id: int) -> Case:
    await policy.require(session, actor, action, case_id)
    case = await session.get(Case, case_id)
    assert case is not None  # the policy found it
    return case


async def _open(session: AsyncSession, case_id: int, status: str, error: str) -> SpecialProcedure:
    procedure = await open_of(session, case_id, lock=True)
    if procedure is None or procedure.status != status:
        raise DomainError(error)
    return procedure


def _reason(text: str, key: str) -> str:
    cleaned = clean_text(text or "")[:1000]
    if not cleaned:
        raise DomainError(key)
    return cleaned


async def check_apply(session: AsyncSession, actor: StaffView | None, case_id: int, *, lock: bool = False) -> Case:
    case = await _case(session, actor, policy.Action.SPECIAL_APPLY, case_id)
    if lock:  # two applications at once (two taps, two processes): the second sees the first
        await session.execute(select(Case.id).where(Case.id == case_id).with_for_update())
    if case.status in CLOSED_STATUSES:
        raise DomainError(N_("special.error.case_closed"), case_no=case.case_no)
    if await open_of(session, case_id) is not None:
        raise DomainError(N_("special.error.open"), case_no=case.case_no)
    return case


async def _admins(session: AsyncSession) -> list[Staff]:
    return list(await session.scalars(select(Staff).where(
        Staff.role == Role.ADMIN.value, Staff.active.is_(True), Staff.telegram_user_id.is_not(None))))


async def _supervisors(session: AsyncSession, procedure: SpecialProcedure, case: Case) -> list[Staff]:
    found = await reviewers_of(session, procedure.applicant_id)
    if found:
        return found
    return list(await session.scalars(select(Staff).where(
        Staff.role == Role.SUPERVISOR.value, Staff.team == case.team, Staff.team.is_not(None),
        Staff.active.is_(True), Staff.telegram_user_id.is_not(None))))


async def _tell(session: AsyncSession, people: list[Staff], key: str, kind: str, *, now: datetime,
                procedure: SpecialProcedure, case: Case, by: str,
                buttons: list[tuple[str, str]] | None = None) -> None:
    applicant = await session.get(Staff, procedure.applicant_id)
    for person in people:
        if person.telegram_user_id is None or not person.active:
            continue
        t = t_for(person)
        rows = [[(t(label), data) for label, data in buttons]] if buttons else None
        await outbox.enqueue(session, chat_id=person.telegram_user_id, kind=kind, now=now, buttons=rows,
                             dedupe_key=f"{kind}:{procedure.id}:{person.id}",
                             text=t(key, case_no=case.case_no, kind=t(f"special.kind.{procedure.kind}"),
                                    reason=procedure.reason, result=procedure.result or "-", by=by,
                                    applicant=applicant.name if applicant else "-"))


def _who(actor: StaffView | None) -> str:
    return actor.name if actor is not None else "fieldbot"


async def apply(session: AsyncSession, actor: StaffView, case_id: int, *, kind: str, reason: str,
                now: datetime) -> SpecialProcedure:
    """The collector applies: the supervisor gets the application with approve / reject buttons."""
    case = await check_apply(session, actor, case_id, lock=True)
    if kind not in {k.value for k in SpecialKind}:
        raise DomainError(N_("special.error.kind"))
    procedure = SpecialProcedure(case_id=case.id, kind=kind, reason=_reason(reason, N_("special.error.reason")),
                                 status=SpecialStatus.PENDING.value, applicant_id=actor.id, applied_at=now)
    session.add(procedure)
    await session.flush()
    await audit.record(session, action="special.applied", object_type="case", object_id=case.id, actor_id=actor.id,
                       at=now, details={"special_id": procedure.id, "kind": kind, "reason": procedure.reason})
    await _tell(session, await _supervisors(session, procedure, case), N_("special.apply_notice"), "special.applied",
                now=now, procedure=procedure, case=case, by=actor.name,
                buttons=[(N_("special.btn.approve"), SpecialApprove(case_id=case.id).pack()),
                         (N_("special.btn.reject"), SpecialReject(case_id=case.id).pack())])
    return procedure


async def check_decide(session: AsyncSession, actor: StaffView | None, case_id: int) -> SpecialProcedure:
    await _case(session, actor, policy.Action.SPECIAL_DECIDE, case_id)
    return await _open(session, case_id, SpecialStatus.PENDING.value, N_("special.error.not_pending"))


async def decide(session: AsyncSession, actor: StaffView | None, case_id: int, *, approve: bool,
                 now: datetime) -> SpecialProcedure:
    """Approved: the admin office is told to arrange the resources; either way the applicant is told."""
    case = await _case(session, actor, policy.Action.SPECIAL_DECIDE, case_id)
    procedure = await _open(session, case_id, SpecialStatus.PENDING.value, N_("special.error.not_pending"))
    procedure.status = (SpecialStatus.APPROVED if approve else SpecialStatus.REJECTED).value
    procedure.decided_by_id, procedure.decided_at = (actor.id if actor else None), now
    await audit.record(session, action="special.approved" if approve else "special.rejected", object_type="case",
                       object_id=case.id, actor_id=actor.id if actor else None, at=now,
                       details={"special_id": procedure.id, "kind": procedure.kind})
    applicant = await session.get(Staff, procedure.applicant_id)
    key = N_("special.approved_notice") if approve else N_("special.rejected_notice")
    await _tell(session, [applicant] if applicant else [], key, f"special.{procedure.status}", now=now,
                procedure=procedure, case=case, by=_who(actor))
    if approve:
        await _tell(session, await _admins(session), N_("special.arrange_notice"), "special.arrange", now=now,
                    procedure=procedure, case=case, by=_who(actor),
                    buttons=[(N_("special.btn.arranged"), SpecialArranged(case_id=case.id).pack())])
    return procedure


async def arrange(session: AsyncSession, actor: StaffView | None, case_id: int, *, now: datetime) -> SpecialProcedure:
    """The admin office has arranged the resources: the applicant and the supervisor are told."""
    case = await _case(session, actor, policy.Action.SPECIAL_ARRANGE, case_id)
    procedure = await _open(session, case_id, SpecialStatus.APPROVED.value, N_("special.error.not_approved"))
    procedure.status = SpecialStatus.ARRANGED.value
    procedure.arranged_by_id, procedure.arranged_at = (actor.id if actor else None), now
    await audit.record(session, action="special.arranged", object_type="case", object_id=case.id,
                       actor_id=actor.id if actor else None, at=now, details={"special_id": procedure.id})
    applicant = await session.get(Staff, procedure.applicant_id)
    people = [*([applicant] if applicant else []), *await _supervisors(session, procedure, case)]
    await _tell(session, people, N_("special.arranged_notice"), "special.arranged", now=now, procedure=procedure,
                case=case, by=_who(actor),
                buttons=[(N_("special.btn.close"), SpecialClose(case_id=case.id).pack())])
    return procedure


async def check_close(session: AsyncSession, actor: StaffView | None, case_id: int) -> SpecialProcedure:
    await _case(session, actor, policy.Action.SPECIAL_CLOSE, case_id)
    return await _open(session, case_id, SpecialStatus.ARRANGED.value, N_("special.error.not_arranged"))


async def close(session: AsyncSession, actor: StaffView | None, case_id: int, *, result: str,
                now: datetime) -> SpecialProcedure:
    """The procedure is over: filed with its result; the applicant, supervisor and admin office are told."""
    case = await _case(session, actor, policy.Action.SPECIAL_CLOSE, case_id)
    procedure = await _open(session, case_id, SpecialStatus.ARRANGED.value, N_("special.error.not_arranged"))
    procedure.result = _reason(result, N_("special.error.result"))
    procedure.status = SpecialStatus.CLOSED.value
    procedure.closed_by_id, procedure.closed_at = (actor.id if actor else None), now
    await audit.record(session, action="special.closed", object_type="case", object_id=case.id,
                       actor_id=actor.id if actor else None, at=now,
                       details={"special_id": procedure.id, "result": procedure.result})
    applicant = await session.get(Staff, procedure.applicant_id)
    people = {p.id: p for p in [*([applicant] if applicant else []), *await _supervisors(session, procedure, case),
                                *await _admins(session)]}
    people.pop(actor.id if actor else -1, None)
    await _tell(session, list(people.values()), N_("special.closed_notice"), "special.closed", now=now,
                procedure=procedure, case=case, by=_who(actor))
    return procedure

"""The supervisor's monthly branch report and its two approvals: a manager of its branch and head office.

When the monthly reports go out (:func:`bot.services.reports.send_due`), each supervisor's team report is
also submitted as a ``branch_reports`` row (one per team and month), and sent to the managers of the
team's branch and to every head-office user with Approve / Return buttons. It is approved once one
manager of that branch and one head-office user have approved it (each approval given once, audited);
the supervisor is then told. Either may return it with a comment, which goes to the supervisor.
Who may approve, and which of the two approvals a person gives, is the policy's
(``Action.BRANCH_REPORT_DECIDE``, ``policy.APPROVAL_SLOTS``).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime

from sqlalchemy import or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from bot.buttons import BranchReportApprove, BranchReportReturn
from bot.i18n import N_, Translator
from bot.services import audit, flows, outbox, policy
from bot.services.actor import StaffView
from bot.services.errors import DomainError, Forbidden
from bot.services.people import t_for
from bot.steps import BranchReportStep
from bot.storage.models import BranchReport, Role, Staff

PENDING, APPROVED, RETURNED = "pending", "approved", "returned"


async def approvers(session: AsyncSession, branch: str | None) -> list[Staff]:
    """The active managers of ``branch`` and every active head-office user."""
    wanted = [Staff.role == Role.HQ.value]
    if branch is not None:
        wanted.append((Staff.role == Role.MANAGER.value) & (Staff.branch == branch))
    return list(await session.scalars(select(Staff).where(
        Staff.active.is_(True), Staff.telegram_user_id.is_not(None), or_(*wanted)).order_by(Staff.id)))


async def submit(session: AsyncSession, supervisor: Staff, period_start: date, *, now: datetime,
                 render: Callable[[Translator], str]) -> BranchReport | None:
    """The supervisor's team report for the month starting ``period_start``, submitted for approval and sent to
    its approvers (``render`` writes the report in a reader's language). None when the team's report of
    that month is already submitted (by a second supervisor of the team, or another process)."""
    if supervisor.team is None:
        return None
    if await session.scalar(select(BranchReport.id).where(BranchReport.team == supervisor.team,
                                                          BranchReport.period_start == period_start)):
        return None
    report = BranchReport(team=supervisor.team, branch=supervisor.branch, period_start=period_start,
                          supervisor_id=supervisor.id, status=PENDING, created_at=now)
    try:
        async with session.begin_nested():
            session.add(report)
    except IntegrityError:
        return None
    await audit.record(session, action="branch_report.submit", object_type="branch_report", object_id=report.id,
                       actor_id=supervisor.id, details={"team": report.team, "branch": report.branch,
                                                        "month": f"{period_start:%Y-%m}"}, at=now)
    for person in await approvers(session, report.branch):
        await _send_for_approval(session, person, report, render(t_for(person)), now=now)
    return report


async def _send_for_approval(session: AsyncSession, person: Staff, report: BranchReport, text: str, *,
                             now: datetime) -> None:
    t = t_for(person)
    assert person.telegram_user_id is not None
    head = t(N_("branch_report.for_approval"), team=report.team, branch=report.branch or "-",
             month=f"{report.period_start:%Y-%m}")
    await outbox.enqueue(session, chat_id=person.telegram_user_id, kind="branch_report", now=now,
                         priority=outbox.Priority.BULK, text=f"{head}\n\n{text}", protect_content=True,
                         dedupe_key=f"branch_report:{report.id}:{person.id}",
                         buttons=[[(t(N_("branch_report.approve")), BranchReportApprove(report_id=report.id).pack()),
                                   (t(N_("branch_report.return")), BranchReportReturn(report_id=report.id).pack())]])


async def _pending(session: AsyncSession, actor: StaffView, report_id: int) -> BranchReport:
    await policy.require(session, actor, policy.Action.BRANCH_REPORT_DECIDE, report_id)
    report = await session.get(BranchReport, report_id)
    assert report is not None
    if report.status != PENDING:
        raise DomainError(N_("branch_report.error.not_pending"))
    return report


async def approve(session: AsyncSession, actor: StaffView, report_id: int, *, now: datetime) -> BranchReport:
    """``actor``'s approval (a manager's or head office's, as the policy says); once both are in, the report is
    approved and its supervisor told. A second approval of the same kind changes nothing
    (``branch_report.error.already_approved``): the conditional update lets only one through."""
    report = await _pending(session, actor, report_id)
    slot = policy.APPROVAL_SLOTS.get(actor.role)
    if slot is None:
        raise Forbidden(subject=("branch_report", report_id))
    by, at = (BranchReport.manager_id, BranchReport.manager_at) if slot == "manager" else (
        BranchReport.hq_id, BranchReport.hq_at)
    done = await session.execute(update(BranchReport).where(
        BranchReport.id == report_id, BranchReport.status == PENDING, by.is_(None))
        .values({by: actor.id, at: now}).execution_options(synchronize_session=False))
    if getattr(done, "rowcount", 0) != 1:
        raise DomainError(N_("branch_report.error.already_approved"))
    await session.refresh(report)
    await audit.record(session, action=f"branch_report.approve.{slot}", object_type="branch_report",
                       object_id=report.id, actor_id=actor.id, at=now)
    if report.manager_id is not None and report.hq_id is not None:
        report.status = APPROVED
        await audit.record(session, action="branch_report.approved", object_type="branch_report",
                           object_id=report.id, actor_id=actor.id, at=now)
        await _tell_supervisor(session, report, N_("branch_report.approved_notice"), now=now)
    return report


async def start_return(session: AsyncSession, actor: StaffView, report_id: int, *, now: datetime) -> BranchReport:
    """``actor`` pressed Return: the comment they type next goes back to the supervisor."""
    report = await _pending(session, actor, report_id)
    await flows.enter(session, actor.id, BranchReportStep.COMMENT, {"report_id": report_id}, now=now)
    return report


async def return_report(session: AsyncSession, actor: StaffView, report_id: int, comment: str, *,
                        now: datetime) -> BranchReport:
    report = await _pending(session, actor, report_id)
    report.status, report.returned_by_id, report.returned_at, report.comment = RETURNED, actor.id, now, comment
    await audit.record(session, action="branch_report.return", object_type="branch_report", object_id=report.id,
                       actor_id=actor.id, details={"comment": comment}, at=now)
    await _tell_supervisor(session, report, N_("branch_report.returned_notice"), now=now, by=actor.name,
                           comment=comment)
    return report


async def _tell_supervisor(session: AsyncSession, report: BranchReport, key: str, *, now: datetime,
                           **params: object) -> None:
    supervisor = await session.get(Staff, report.supervisor_id)
    if supervisor is None or supervisor.telegram_user_id is None:
        return
    t = t_for(supervisor)
    await outbox.enqueue(session, chat_id=supervisor.telegram_user_id, kind="branch_report", now=now,
                         text=t(key, team=report.team, month=f"{report.period_start:%Y-%m}", **params),
                         dedupe_key=f"branch_report:{report.id}:{report.status}")


async def waiting_for(session: AsyncSession, actor: StaffView) -> list[BranchReport]:
    """The branch reports waiting for ``actor``'s kind of approval, within their reach (/reports)."""
    teams = policy.team_filter(actor, policy.Action.BRANCH_REPORT_DECIDE)
    slot = policy.APPROVAL_SLOTS.get(actor.role)
    query = select(BranchReport).where(BranchReport.status == PENDING)
    if teams is not None:
        query = query.where(BranchReport.team.in_(teams))
    if slot == "manager":
        query = query.where(BranchReport.manager_id.is_(None))
    elif slot == "hq":
        query = query.where(BranchReport.hq_id.is_(None))
    return list(await session.scalars(query.order_by(BranchReport.period_start, BranchReport.team)))


def buttons_for(t: Translator, report: BranchReport) -> outbox.Buttons:
    return [[(t(N_("branch_report.approve")), BranchReportApprove(report_id=report.id).pack()),
             (t(N_("branch_report.return")), BranchReportReturn(report_id=report.id).pack())]]

"""More time for a visit: the collector asks with a reason and a date, the supervisor decides.

The SOP allows a visit later than 2 working days only with a supervisor's approved extension. The
proposed date may be at most ``max_days`` working days after the current deadline. A request nobody
answers is sent to the supervisor again every 4 working hours.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy.ext.asyncio import AsyncSession

from bot.i18n import N_
from bot.services import audit, deadlines, flows, outbox, policy
from bot.services.actor import StaffView
from bot.services.calendar import WorkCalendar
from bot.services.cases import current_assignee_id
from bot.services.errors import DomainError
from bot.services.people import t_for
from bot.steps import ExtensionStep
from bot.storage.models import Case, ExtensionRequest, ExtensionStatus, Staff


async def _askable_case(session: AsyncSession, collector: StaffView, case_id: int) -> Case:
    """The collector's own case, if its visit is still to come and no request for it is waiting."""
    await policy.require(session, collector, policy.Action.EXTENSION_ASK, case_id)
    case = await session.get(Case, case_id)
    assert case is not None  # the policy found it
    if case.visit_done_at is not None:
        raise DomainError(N_("extension.error.visit_done"))
    if await deadlines.pending_extension(session, case_id) is not None:
        raise DomainError(N_("extension.error.pending"))
    return case


async def begin(session: AsyncSession, collector: StaffView, case_id: int, *, now: datetime) -> Case:
    """The collector pressed "more time" on a case: the request's first question (the reason) is next."""
    case = await _askable_case(session, collector, case_id)
    if case.visit_due_at is None:
        raise DomainError(N_("extension.error.visit_done"))  # no visit waiting: nothing to extend
    await flows.enter(session, collector.id, ExtensionStep.REASON, {"case_id": case_id}, now=now)
    return case


def check_date(case: Case, proposed: date, *, calendar: WorkCalendar, max_days: int) -> date:
    """The proposed date, if it is a working day after the current deadline and within the allowed days."""
    if case.visit_due_at is None:
        raise DomainError(N_("extension.error.no_deadline"))
    current = calendar.local(case.visit_due_at).date()
    if proposed <= current:
        raise DomainError(N_("extension.error.not_later"), due=current.isoformat())
    if not calendar.is_working_day(proposed):
        raise DomainError(N_("extension.error.not_working_day"))
    if calendar.working_days_between(current, proposed) > max_days:
        raise DomainError(N_("extension.error.too_far"), days=max_days,
                          latest=calendar.add_working_days(current, max_days).isoformat())
    return proposed


async def request_extension(session: AsyncSession, collector: StaffView, case_id: int, *, reason: str,
                            proposed_on: date, now: datetime, calendar: WorkCalendar,
                            max_days: int) -> ExtensionRequest:
    case = await _askable_case(session, collector, case_id)
    check_date(case, proposed_on, calendar=calendar, max_days=max_days)
    request = ExtensionRequest(case_id=case_id, collector_id=collector.id, reason=reason.strip()[:500],
                               proposed_on=proposed_on, old_due_at=case.visit_due_at,
                               status=ExtensionStatus.PENDING.value, created_at=now, times_sent=1)
    session.add(request)
    await session.flush()
    await audit.record(session, action="extension.requested", object_type="case", object_id=case_id,
                       actor_id=collector.id, at=now,
                       details={"extension_id": request.id, "reason": request.reason,
                                "proposed_on": proposed_on.isoformat()})
    person = await session.get(Staff, collector.id)
    assert person is not None
    await deadlines.offer_extension(session, request, case, person, now=now, calendar=calendar, again=False)
    await deadlines.schedule_extension_resend(session, request, now=now, calendar=calendar)
    return request


async def decide(session: AsyncSession, reviewer: StaffView, request_id: int, *, approve: bool, now: datetime,
                 calendar: WorkCalendar) -> ExtensionRequest:
    await policy.require(session, reviewer, policy.Action.EXTENSION_DECIDE, request_id)
    request = await session.get(ExtensionRequest, request_id)
    assert request is not None  # the policy found it
    collector = await session.get(Staff, request.collector_id)
    case = await session.get(Case, request.case_id)
    assert collector is not None and case is not None
    if request.status != ExtensionStatus.PENDING.value:
        raise DomainError(N_("extension.error.decided"))
    if request.old_due_at != case.visit_due_at or request.collector_id != await current_assignee_id(session, case.id):
        raise DomainError(N_("extension.error.outdated"))  # the case moved on (handed over, new deadline)
    request.status = (ExtensionStatus.APPROVED if approve else ExtensionStatus.REJECTED).value
    request.decided_by_id, request.decided_at = reviewer.id, now
    if approve:
        case.visit_due_at = datetime.combine(request.proposed_on, calendar.work_end, calendar.tz)
        case.visit_overdue_at = None
        case.updated_at = now
        await deadlines.schedule_visit(session, case, now=now, calendar=calendar)
    await audit.record(session, action="extension.approved" if approve else "extension.rejected",
                       object_type="case", object_id=case.id, actor_id=reviewer.id, at=now,
                       details={"extension_id": request.id,
                                "old_due_at": request.old_due_at.isoformat() if request.old_due_at else None,
                                "new_due_at": case.visit_due_at.isoformat() if approve and case.visit_due_at else None})
    if collector.telegram_user_id is not None:
        t = t_for(collector)
        key = N_("extension.approved_notice") if approve else N_("extension.rejected_notice")
        await outbox.enqueue(session, chat_id=collector.telegram_user_id, kind="extension.decision", now=now,
                             text=t(key, case_no=case.case_no, name=reviewer.name,
                                    due=t.datetime(case.visit_due_at, calendar.tz) if case.visit_due_at else "-"))
    return request

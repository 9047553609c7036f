"""Promise follow-up: on the working day after the promised date, a promise is kept or broken.

A promise counts as kept when PAID or PART results filed for the case since it was made add up to
the promised amount. A broken promise goes back on the collector's list (a revisit due today), the
collector and their supervisor are told, and it counts in the reports.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.i18n import N_
from bot.services import audit, outbox
from bot.services.calendar import WorkCalendar
from bot.services.masking import mask_name
from bot.services.people import reviewers_of, t_for
from bot.storage.models import Case, CaseStatus, Promise, PromiseStatus, Staff, Visit, VisitStatus

PAYING_CODES = ("PAID", "PART")
BATCH = 200


async def paid_since(session: AsyncSession, case_id: int, since: datetime) -> int:
    total = await session.scalar(
        select(func.coalesce(func.sum(Visit.amount_fen), 0)).where(
            Visit.case_id == case_id, Visit.code.in_(PAYING_CODES), Visit.filed_at >= since,
            Visit.status.in_((VisitStatus.FILED.value, VisitStatus.APPROVED.value))))
    return int(total or 0)


async def follow_up(session: AsyncSession, *, now: datetime, calendar: WorkCalendar, limit: int = BATCH) -> int:
    """Settle the open promises whose follow-up day has come; returns how many were settled."""
    today = calendar.working_date(now)
    if not calendar.is_working_day(today) or calendar.local(now).time() < calendar.work_start:
        return 0  # follow-ups happen on working days, from the start of work
    candidates = list(await session.scalars(
        select(Promise).where(Promise.status == PromiseStatus.OPEN.value, Promise.due_on < today)
        .order_by(Promise.due_on, Promise.id).limit(limit)))
    settled = 0
    for promise in candidates:
        if calendar.next_working_day(promise.due_on) > today:
            continue
        paid = await paid_since(session, promise.case_id, promise.created_at)
        kept = paid >= promise.amount_fen
        promise.status = (PromiseStatus.KEPT if kept else PromiseStatus.BROKEN).value
        promise.resolved_at = now
        settled += 1
        await audit.record(session, action="promise.kept" if kept else "promise.broken", object_type="case",
                           object_id=promise.case_id, at=now,
                           details={"promise_id": promise.id, "amount_fen": promise.amount_fen, "paid_fen": paid,
                                    "due_on": promise.due_on.isoformat()})
        if kept:
            continue
        case = await session.get(Case, promise.case_id)
        collector = await session.get(Staff, promise.collector_id)
        assert case is not None and collector is not None
        if case.status == CaseStatus.PROMISED.value:
            case.status = CaseStatus.VISITED.value
        case.next_action, case.next_action_on, case.updated_at = "revisit", today, now
        people = [collector, *await reviewers_of(session, collector.id)]
        for person in people:
            if person.telegram_user_id is None or not person.active:
                continue
            t = t_for(person)
            await outbox.enqueue(session, chat_id=person.telegram_user_id, kind="promise.broken", now=now,
                                 protect_content=True, dedupe_key=f"promise:{promise.id}:{person.id}",
                                 text=t(N_("promise.broken_notice"), case_no=case.case_no,
                                        debtor=mask_name(case.debtor_name), amount=t.money(promise.amount_fen / 100),
                                        date=t.date(promise.due_on), name=collector.name))
    return settled

"""Promise follow-up: on the working day after the promised date, a promise is kept, partly kept or broken.

What was paid is what the bank's repayment files say (``payments``, dated from the day the promise
was made to its due date) or, until the bank's file says more, what PAID or PART results filed for
the case since the promise add up to (the larger of the two). A promise is KEPT when that reaches
the promised amount, PARTLY_KEPT when something but not all was paid, BROKEN when nothing was;
``Promise.paid_fen`` keeps the amount. A promise that is not kept goes back on the collector's list
(a revisit due today), the collector and their supervisor are told, and it counts in the reports.

A repayment file settles promises when it comes in (:func:`settle_case`): a promise is kept as soon
as the bank's payments cover it, and one already settled as broken or partly kept is settled again
when the bank's file, arriving late, shows payments made in time.
"""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.i18n import N_
from bot.services import audit, outbox
from bot.services.calendar import WorkCalendar
from bot.services.cases import CLOSED_STATUSES
from bot.services.masking import mask_name
from bot.services.people import reviewers_of, t_for
from bot.storage.models import Case, CaseStatus, Payment, Promise, PromiseStatus, Staff, Visit, VisitStatus

PAYING_CODES = ("PAID", "PART")
BATCH = 200


async def reported_since(session: AsyncSession, case_id: int, since: datetime) -> int:
    """What the collector's filed PAID/PART results since ``since`` say was paid, in fen."""
    total = await session.scalar(
        select(func.coalesce(func.sum(Visit.amount_fen), 0)).where(
            Visit.case_id == case_id, Visit.code.in_(PAYING_CODES), Visit.filed_at >= since,
            Visit.status.in_((VisitStatus.FILED.value, VisitStatus.APPROVED.value))))
    return int(total or 0)


async def bank_paid(session: AsyncSession, case_id: int, first: date, last: date) -> int:
    """What the bank's repayment files say was paid on the case from ``first`` to ``last`` (inclusive), in fen."""
    total = await session.scalar(select(func.coalesce(func.sum(Payment.amount_fen), 0)).where(
        Payment.case_id == case_id, Payment.paid_on >= first, Payment.paid_on <= last))
    return int(total or 0)


async def paid_for(session: AsyncSession, promise: Promise, *, tz: ZoneInfo) -> tuple[int, int]:
    """(paid towards ``promise``, of which the bank confirms): bank payments from the promise's day to its
    due date, or the collector's reported payments since the promise when those are more."""
    confirmed = await bank_paid(session, promise.case_id, promise.created_at.astimezone(tz).date(), promise.due_on)
    reported = await reported_since(session, promise.case_id, promise.created_at)
    return max(confirmed, reported), confirmed


async def paid_since(session: AsyncSession, case_id: int, since: datetime, *, tz: ZoneInfo | None = None) -> int:
    """Paid on the case since ``since``: the bank's payments from that day on, or the reported ones if more."""
    day = since.astimezone(tz).date() if tz is not None else since.date()
    confirmed = await bank_paid(session, case_id, day, date.max)
    return max(confirmed, await reported_since(session, case_id, since))


def _outcome(paid: int, amount: int) -> PromiseStatus:
    if paid >= amount:
        return PromiseStatus.KEPT
    return PromiseStatus.PARTLY_KEPT if paid > 0 else PromiseStatus.BROKEN


async def settle_case(session: AsyncSession, case_id: int, *, now: datetime, tz: ZoneInfo) -> int:
    """After new payments on a case: keep its promises they cover, re-settle the ones already judged.

    An open promise the payments do not cover yet stays open until its follow-up day. Returns how
    many promises changed status.
    """
    changed = 0
    for promise in await session.scalars(select(Promise).where(
            Promise.case_id == case_id, Promise.status != PromiseStatus.KEPT.value).order_by(Promise.id)):
        paid, confirmed = await paid_for(session, promise, tz=tz)
        promise.paid_fen = confirmed
        outcome = _outcome(paid, promise.amount_fen)
        if promise.status == PromiseStatus.OPEN.value and outcome is not PromiseStatus.KEPT:
            continue
        if outcome.value == promise.status:
            continue
        before = promise.status
        promise.status, promise.resolved_at = outcome.value, now
        changed += 1
        await audit.record(session, action=f"promise.{outcome.value}", object_type="case", object_id=case_id, at=now,
                           details={"promise_id": promise.id, "amount_fen": promise.amount_fen, "paid_fen": paid,
                                    "bank_paid_fen": confirmed, "due_on": promise.due_on.isoformat(),
                                    "previous": before, "by": "payments"})
    return changed


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
        paid, confirmed = await paid_for(session, promise, tz=calendar.tz)
        outcome = _outcome(paid, promise.amount_fen)
        kept = outcome is PromiseStatus.KEPT
        promise.status, promise.paid_fen = outcome.value, confirmed
        promise.resolved_at = now
        settled += 1
        await audit.record(session, action=f"promise.{outcome.value}", object_type="case",
                           object_id=promise.case_id, at=now,
                           details={"promise_id": promise.id, "amount_fen": promise.amount_fen, "paid_fen": paid,
                                    "bank_paid_fen": confirmed, "due_on": promise.due_on.isoformat()})
        if kept:
            continue
        case = await session.get(Case, promise.case_id)
        collector = await session.get(Staff, promise.collector_id)
        assert case is not None and collector is not None
        if case.status in CLOSED_STATUSES:
            continue  # paid in full or recalled meanwhile: nothing to revisit
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
                                 text=t(N_("promise.broken_notice") if outcome is PromiseStatus.BROKEN
                                        else N_("promise.partly_kept_notice"), case_no=case.case_no,
                                        debtor=mask_name(case.debtor_name), amount=t.money(promise.amount_fen / 100),
                                        date=t.date(promise.due_on), name=collector.name,
                                        paid=t.money(paid / 100)))
    return settled

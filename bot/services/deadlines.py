"""The SOP's clocks as rows: visit deadline reminders, overdue notices, re-sent extension requests.

:func:`schedule_visit` turns a case's visit deadline into reminder rows (the morning of the due day,
2 hours before, and the overdue notice at the deadline), replacing those of an older deadline.
:func:`run_due` is the sweep: it takes due rows in small batches, queues their messages in the
outbox and marks them done in the same transaction, so a reminder that fell due while the bot was
down goes out once after the restart, and never twice.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

from sqlalchemy import Select, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.buttons import ExtensionApprove, ExtensionAsk, ExtensionReject
from bot.i18n import N_
from bot.services import audit, outbox
from bot.services.calendar import WorkCalendar
from bot.services.cases import CLOSED_STATUSES, active_assignees
from bot.services.masking import mask_name
from bot.services.people import reviewers_of, t_for
from bot.storage.db import Database
from bot.storage.models import Case, ExtensionRequest, ExtensionStatus, FieldRequest, Reminder, Staff

MORNING, BEFORE, OVERDUE, EXTENSION_RESEND = "visit_morning", "visit_2h", "visit_overdue", "extension_resend"
VISIT_KINDS = (MORNING, BEFORE, OVERDUE)
BEFORE_DEADLINE = timedelta(hours=2)
VISIT_WITHIN_WORKING_DAYS = 2  # SOP: a field visit within 2 working days of the handover (or the /tofield hand-off)
RESEND_AFTER_WORKING_HOURS = 4.0
BATCH = 20  # small batches: the flush at each commit stays well under 50 ms (bench/sweep_latency.py)


async def _add(session: AsyncSession, *, key: str, kind: str, due_at: datetime, now: datetime,
               case_id: int | None = None, extension_id: int | None = None,
               field_request_id: int | None = None) -> None:
    if await session.scalar(select(Reminder.id).where(Reminder.key == key)) is None:
        session.add(Reminder(key=key, kind=kind, case_id=case_id, extension_id=extension_id, due_at=due_at,
                             field_request_id=field_request_id, created_at=now))
        await session.flush()


async def cancel_visit_reminders(session: AsyncSession, case_id: int, *, now: datetime,
                                 field_request_id: int | None = None) -> None:
    """Cancel the pending visit reminders of the case's assignee (or of one field request on it)."""
    of_whom = (Reminder.field_request_id.is_(None) if field_request_id is None
               else Reminder.field_request_id == field_request_id)
    await session.execute(
        update(Reminder).where(Reminder.case_id == case_id, of_whom, Reminder.kind.in_(VISIT_KINDS),
                               Reminder.done_at.is_(None))
        .values(done_at=now, outcome="cancelled"))


async def _plan_visit(session: AsyncSession, case_id: int, due: datetime, *, now: datetime, calendar: WorkCalendar,
                      field_request_id: int | None = None) -> None:
    """The reminder rows of one visit deadline: the due day's morning, 2 hours before, the overdue notice."""
    morning = datetime.combine(calendar.local(due).date(), calendar.work_start, calendar.tz)
    stamp = due.isoformat() if field_request_id is None else f"fr{field_request_id}:{due.isoformat()}"
    for kind, at in ((MORNING, morning), (BEFORE, due - BEFORE_DEADLINE), (OVERDUE, due)):
        if kind != OVERDUE and at <= now:
            continue  # that moment has passed: no point reminding of it now
        await _add(session, key=f"{kind}:{case_id}:{stamp}", kind=kind, due_at=at, now=now, case_id=case_id,
                   field_request_id=field_request_id)


async def schedule_visit(session: AsyncSession, case: Case, *, now: datetime, calendar: WorkCalendar) -> None:
    """Plan the reminders of the case's current visit deadline (those of an older one are cancelled)."""
    await cancel_visit_reminders(session, case.id, now=now)
    if case.visit_due_at is None or case.visit_done_at is not None:
        return
    await _plan_visit(session, case.id, case.visit_due_at, now=now, calendar=calendar)


async def schedule_field_request(session: AsyncSession, request: FieldRequest, *, now: datetime,
                                 calendar: WorkCalendar) -> None:
    """A phone collector's hand-off (/tofield) starts the field collector's 2-working-day visit window."""
    request.visit_due_at = calendar.deadline_after(now, VISIT_WITHIN_WORKING_DAYS)
    request.visit_overdue_at = None
    await session.flush()
    await _plan_visit(session, request.case_id, request.visit_due_at, now=now, calendar=calendar,
                      field_request_id=request.id)


async def schedule_extension_resend(session: AsyncSession, request: ExtensionRequest, *, now: datetime,
                                    calendar: WorkCalendar) -> None:
    at = calendar.add_working_hours(now, RESEND_AFTER_WORKING_HOURS)
    await _add(session, key=f"{EXTENSION_RESEND}:{request.id}:{request.times_sent}", kind=EXTENSION_RESEND,
               due_at=at, now=now, case_id=request.case_id, extension_id=request.id)


async def _tell(session: AsyncSession, person: Staff | None, reminder: Reminder, key: str,
                params: dict[str, object], *, now: datetime, button: tuple[str, str] | None = None) -> bool:
    if person is None or person.telegram_user_id is None or not person.active:
        return False
    t = t_for(person)
    rendered = {k: (v(t) if callable(v) else v) for k, v in params.items()}
    # No dedupe key: the reminder row is marked done in this same transaction, which is what makes it once.
    await outbox.enqueue(session, chat_id=person.telegram_user_id, kind=f"reminder.{reminder.kind}", now=now,
                         text=t(key, **rendered), protect_content=True,
                         buttons=[[(t(button[0]), button[1])]] if button else None, flush=False)
    return True


async def _act(session: AsyncSession, reminder: Reminder, cases: dict[int, Case], assignees: dict[int, Staff], *,
               now: datetime, calendar: WorkCalendar) -> str:
    """Queue what ``reminder`` stands for; returns its outcome (``sent`` or ``skipped``)."""
    if reminder.kind == EXTENSION_RESEND:
        return "sent" if await resend_extension(session, reminder, now=now, calendar=calendar) else "skipped"
    case = cases.get(reminder.case_id) if reminder.case_id is not None else None
    if case is None or case.status in CLOSED_STATUSES:
        return "skipped"
    if reminder.field_request_id is not None:
        return await _act_field_request(session, reminder, case, now=now, calendar=calendar)
    if case.visit_done_at is not None or case.visit_due_at is None:
        return "skipped"
    collector = assignees.get(case.id)
    if collector is None:
        return "skipped"
    due = case.visit_due_at
    if reminder.kind != OVERDUE and now >= due:
        return "skipped"  # caught up after downtime: the overdue notice says it all
    common: dict[str, object] = {"case_no": case.case_no, "debtor": mask_name(case.debtor_name),
                                 "address": case.address, "due": lambda t: t.datetime(due, calendar.tz)}
    if reminder.kind == MORNING:
        sent = await _tell(session, collector, reminder, N_("deadline.morning"), common, now=now)
    elif reminder.kind == BEFORE:
        sent = await _tell(session, collector, reminder, N_("deadline.two_hours"), common, now=now)
    else:
        case.visit_overdue_at = due  # when it became overdue, even if the sweep saw it later
        sent = await _tell(session, collector, reminder, N_("deadline.overdue_collector"), common, now=now,
                           button=(N_("card.extension"), ExtensionAsk(case_id=case.id).pack()))
        for boss in await reviewers_of(session, collector.id):
            await _tell(session, boss, reminder, N_("deadline.overdue_supervisor"), {**common, "name": collector.name},
                        now=now)
        await audit.record(session, action="case.visit_overdue", object_type="case", object_id=case.id, at=now,
                           details={"due": due.isoformat(), "collector": collector.id})
    return "sent" if sent else "skipped"


async def _act_field_request(session: AsyncSession, reminder: Reminder, case: Case, *, now: datetime,
                             calendar: WorkCalendar) -> str:
    """A reminder of a /tofield hand-off: to the field collector asked to visit; the overdue notice also to
    their supervisor and to the phone collector who asked."""
    request = await session.get(FieldRequest, reminder.field_request_id)
    if request is None or request.done_at is not None or request.visit_due_at is None:
        return "skipped"
    collector = await session.get(Staff, request.field_collector_id)
    due = request.visit_due_at
    if collector is None or (reminder.kind != OVERDUE and now >= due):
        return "skipped"
    common: dict[str, object] = {"case_no": case.case_no, "debtor": mask_name(case.debtor_name),
                                 "address": case.address, "due": lambda t: t.datetime(due, calendar.tz)}
    if reminder.kind in (MORNING, BEFORE):
        key = N_("deadline.morning") if reminder.kind == MORNING else N_("deadline.tofield_two_hours")
        return "sent" if await _tell(session, collector, reminder, key, common, now=now) else "skipped"
    request.visit_overdue_at = due
    sent = await _tell(session, collector, reminder, N_("deadline.tofield_overdue_collector"), common, now=now)
    requester = await session.get(Staff, request.requested_by_id)
    for boss in [*await reviewers_of(session, collector.id), requester]:
        await _tell(session, boss, reminder, N_("deadline.overdue_supervisor"), {**common, "name": collector.name},
                    now=now)
    await audit.record(session, action="case.visit_overdue", object_type="case", object_id=case.id, at=now,
                       details={"due": due.isoformat(), "collector": collector.id, "field_request": request.id})
    return "sent" if sent else "skipped"


def due_query(now: datetime, batch: int) -> Select[tuple[Reminder]]:
    """The sweep's select-due: the oldest pending reminders, read in the order of ``ix_reminders_pending``."""
    return (select(Reminder).where(Reminder.done_at.is_(None), Reminder.due_at <= now)
            .order_by(Reminder.due_at, Reminder.id).limit(batch))


async def run_due(database: Database, *, now: datetime, calendar: WorkCalendar, batch: int = BATCH) -> int:
    """The deadline sweep: act on every reminder due by ``now``, a batch per transaction.

    The event loop is never held for long (bench/sweep_latency.py: the longest stall): a batch is
    small, the sweep yields after each reminder it acts on, and the loop gets a turn between batches.
    """
    handled = 0
    while True:
        async with database.write() as session:
            query = due_query(now, batch)
            if session.bind is not None and session.bind.dialect.name == "postgresql":
                query = query.with_for_update(skip_locked=True)
            rows = list(await session.scalars(query))
            case_ids = {r.case_id for r in rows if r.case_id is not None}
            cases = {c.id: c for c in await session.scalars(select(Case).where(Case.id.in_(case_ids)))}
            assignees = await active_assignees(session, case_ids)
            for reminder in rows:
                reminder.outcome = await _act(session, reminder, cases, assignees, now=now, calendar=calendar)
                reminder.done_at = now
                await asyncio.sleep(0)  # one reminder's work is one slice of the loop's time
        handled += len(rows)
        if len(rows) < batch:
            return handled
        await asyncio.sleep(0)  # let waiting updates run between batches


async def pending_extension(session: AsyncSession, case_id: int) -> ExtensionRequest | None:
    request: ExtensionRequest | None = await session.scalar(
        select(ExtensionRequest).where(ExtensionRequest.case_id == case_id,
                                       ExtensionRequest.status == ExtensionStatus.PENDING.value))
    return request


async def offer_extension(session: AsyncSession, request: ExtensionRequest, case: Case, collector: Staff, *,
                          now: datetime, calendar: WorkCalendar, again: bool) -> int:
    """Put the extension request before the collector's reviewers; returns how many were asked."""
    sent = 0
    for boss in await reviewers_of(session, collector.id):
        t = t_for(boss)
        assert boss.telegram_user_id is not None
        due = t.datetime(request.old_due_at, calendar.tz) if request.old_due_at else "-"
        text = t(N_("extension.request_again") if again else N_("extension.request"), name=collector.name,
                 case_no=case.case_no, reason=request.reason, due=due, proposed=t.date(request.proposed_on))
        await outbox.enqueue(session, chat_id=boss.telegram_user_id, kind="extension.request", now=now, text=text,
                             priority=outbox.Priority.REVIEW,
                             buttons=[[(t("extension.approve"), ExtensionApprove(request_id=request.id).pack()),
                                       (t("extension.reject"), ExtensionReject(request_id=request.id).pack())]],
                             dedupe_key=f"extension:{request.id}:{request.times_sent}:{boss.id}")
        sent += 1
    return sent


async def resend_extension(session: AsyncSession, reminder: Reminder, *, now: datetime,
                           calendar: WorkCalendar) -> bool:
    """The resend reminder fell due: if the request is still unanswered, offer it again, and plan the next."""
    request = await session.get(ExtensionRequest, reminder.extension_id) if reminder.extension_id else None
    if request is None or request.status != ExtensionStatus.PENDING.value:
        return False
    case = await session.get(Case, request.case_id)
    collector = await session.get(Staff, request.collector_id)
    assert case is not None and collector is not None
    request.times_sent += 1
    sent = await offer_extension(session, request, case, collector, now=now, calendar=calendar, again=True)
    await schedule_extension_resend(session, request, now=now, calendar=calendar)
    return sent > 0

"""The team's day for its supervisor (/team), and the daily reminder of visit reports left waiting.

:func:`team_day` counts, for the team the policy gives the person (``TEAM_VIEW``; every team for the
admin office): who checked in today (last check-in, which case), visits filed today, visits due later
today and overdue ones (cases on hold or closed left out), the reports waiting for review, the
open alarms, and the cases whose registered letter's 10-day term ended (the next step is the supervisor's).

:func:`remind_waiting` is a sweep: a report filed more than :data:`WAIT_WORKING_HOURS` working hours
ago (China's working calendar) and still not reviewed is put before its reviewing supervisor once a
day, in one message per supervisor (the outbox's dedupe key: supervisor and local date).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from bot.buttons import ReviewApprove, ReviewFiles, ReviewReturn
from bot.i18n import N_, Translator
from bot.services import letters, outbox, policy, targets
from bot.services.actor import StaffView
from bot.services.calendar import WorkCalendar
from bot.services.cases import CLOSED_STATUSES
from bot.services.people import reviewers_of, t_for
from bot.storage.models import Case, Incident, IncidentStatus, Role, Staff, Visit, VisitStatus

WAIT_WORKING_HOURS = 4.0
FIELD_ROLES = (Role.COLLECTOR.value, Role.PHONE_COLLECTOR.value)
SHOWN = 5  # reports offered with buttons in one message
BATCH = 500


@dataclass(frozen=True)
class CheckedIn:
    name: str
    at: datetime
    case_no: str


@dataclass(frozen=True)
class Waiting:
    visit_id: int
    case_no: str
    name: str
    filed_at: datetime
    late: bool  # waiting more than WAIT_WORKING_HOURS working hours


@dataclass(frozen=True)
class OpenAlarm:
    incident_id: int
    name: str
    reason: str
    status: str
    raised_at: datetime


@dataclass(frozen=True)
class TeamDay:
    team: str | None
    collectors: int
    checked_in: list[CheckedIn]
    done_today: int
    due_today: int
    overdue: int
    waiting: list[Waiting]
    alarms: list[OpenAlarm]
    may_review: bool
    letters_expired: tuple[tuple[str, date], ...] = ()  # (case number, last day): a letter's term ended
    progress: targets.TeamProgress | None = None  # this month against the targets (fieldbot target set)


def _day(now: datetime, calendar: WorkCalendar) -> tuple[datetime, datetime]:
    today = calendar.working_date(now)
    start = datetime.combine(today, time(0), calendar.tz)
    return start, start + timedelta(days=1)


def is_late(filed_at: datetime, now: datetime, calendar: WorkCalendar) -> bool:
    return calendar.add_working_hours(filed_at, WAIT_WORKING_HOURS) <= now


async def team_day(session: AsyncSession, actor: StaffView | None, *, now: datetime,
                   calendar: WorkCalendar) -> TeamDay:
    team = policy.team_filter(actor, policy.Action.TEAM_VIEW)
    start, end = _day(now, calendar)
    people = select(Staff.id).where(Staff.role.in_(FIELD_ROLES))
    if team is not None:
        people = people.where(Staff.team.in_(team))
    collectors = int(await session.scalar(select(func.count()).select_from(
        people.where(Staff.active.is_(True)).subquery())) or 0)

    seen: dict[int, CheckedIn] = {}
    for collector_id, name, at, case_no in (await session.execute(
            select(Visit.collector_id, Staff.name, Visit.checkin_at, Case.case_no)
            .join(Staff, Staff.id == Visit.collector_id).join(Case, Case.id == Visit.case_id)
            .where(Visit.collector_id.in_(people), Visit.checkin_at >= start, Visit.checkin_at < end)
            .order_by(Visit.checkin_at.desc(), Visit.id.desc()))).all():
        if collector_id not in seen:
            seen[collector_id] = CheckedIn(name, at, case_no)
    done = int(await session.scalar(select(func.count()).select_from(Visit).where(
        Visit.collector_id.in_(people), Visit.filed_at >= start, Visit.filed_at < end)) or 0)

    open_cases: list[ColumnElement[bool]] = [Case.status.not_in(CLOSED_STATUSES), Case.visit_done_at.is_(None),
                                             Case.visit_due_at.is_not(None)]
    if team is not None:
        open_cases.append(Case.team.in_(team))
    due_today = int(await session.scalar(select(func.count()).select_from(Case).where(
        *open_cases, Case.visit_due_at >= now, Case.visit_due_at < end)) or 0)
    overdue = int(await session.scalar(select(func.count()).select_from(Case).where(
        *open_cases, Case.visit_due_at < now)) or 0)

    waiting = [Waiting(visit_id, case_no, name, filed_at, is_late(filed_at, now, calendar))
               for visit_id, case_no, name, filed_at in (await session.execute(
                   select(Visit.id, Case.case_no, Staff.name, Visit.filed_at)
                   .join(Staff, Staff.id == Visit.collector_id).join(Case, Case.id == Visit.case_id)
                   .where(Visit.collector_id.in_(people), Visit.status == VisitStatus.FILED.value)
                   .order_by(Visit.filed_at, Visit.id))).all() if filed_at is not None]
    alarms = [OpenAlarm(*row) for row in (await session.execute(
        select(Incident.id, Staff.name, Incident.reason, Incident.status, Incident.raised_at)
        .join(Staff, Staff.id == Incident.collector_id)
        .where(Incident.collector_id.in_(people), Incident.status != IncidentStatus.RESOLVED.value)
        .order_by(Incident.raised_at))).all()]
    label = ", ".join(sorted(team)) if team is not None else None
    return TeamDay(team=label, collectors=collectors, checked_in=sorted(seen.values(), key=lambda c: c.name),
                   done_today=done, due_today=due_today, overdue=overdue, waiting=waiting, alarms=alarms,
                   may_review=policy.allows(actor, policy.Action.VISIT_REVIEW),
                   letters_expired=tuple(await letters.next_steps(session, team)),
                   progress=await targets.team_progress(session, team, now=now, tz=calendar.tz))


def review_buttons(t: Translator, waiting: list[Waiting]) -> list[list[tuple[str, str]]]:
    """The existing review buttons (approve, return, files) for the first reports waiting."""
    return [[(f"{t('review.approve')} {w.case_no}", ReviewApprove(visit_id=w.visit_id).pack()),
             (f"{t('review.return')} {w.case_no}", ReviewReturn(visit_id=w.visit_id).pack()),
             (t("review.files"), ReviewFiles(visit_id=w.visit_id).pack())] for w in waiting[:SHOWN]]


def waiting_line(t: Translator, w: Waiting, tz: Any) -> str:
    return t(N_("team.waiting_line"), case_no=w.case_no, name=w.name, filed=t.datetime(w.filed_at, tz),
             late=" ⏰" if w.late else "")


async def remind_waiting(session: AsyncSession, *, now: datetime, calendar: WorkCalendar) -> int:
    """Remind each reviewing supervisor, once a day, of the reports waiting over 4 working hours; how many
    reminders were queued."""
    if not calendar.is_within_working_hours(now):
        return 0
    rows = (await session.execute(
        select(Visit.id, Visit.collector_id, Case.case_no, Staff.name, Visit.filed_at)
        .join(Case, Case.id == Visit.case_id).join(Staff, Staff.id == Visit.collector_id)
        .where(Visit.status == VisitStatus.FILED.value,
               Visit.filed_at <= now - timedelta(hours=WAIT_WORKING_HOURS))  # never late sooner than that
        .order_by(Visit.filed_at, Visit.id).limit(BATCH))).all()
    per_boss: dict[int, list[Waiting]] = defaultdict(list)
    bosses: dict[int, Staff] = {}
    reviewers: dict[int, list[Staff]] = {}
    for visit_id, collector_id, case_no, name, filed_at in rows:
        if filed_at is None or not is_late(filed_at, now, calendar):
            continue
        if collector_id not in reviewers:
            reviewers[collector_id] = await reviewers_of(session, collector_id)
        for boss in reviewers[collector_id]:
            bosses[boss.id] = boss
            per_boss[boss.id].append(Waiting(visit_id, case_no, name, filed_at, True))
    sent = 0
    today = calendar.working_date(now)
    for boss_id, waiting in per_boss.items():
        boss = bosses[boss_id]
        assert boss.telegram_user_id is not None  # reviewers_of gives only people the bot can reach
        t = t_for(boss)
        lines = [t(N_("team.reminder"), count=len(waiting), hours=int(WAIT_WORKING_HOURS))]
        lines += [waiting_line(t, w, calendar.tz) for w in waiting[:SHOWN]]
        if len(waiting) > SHOWN:
            lines.append(t(N_("team.more"), count=len(waiting) - SHOWN))
        if await outbox.enqueue(session, chat_id=boss.telegram_user_id, kind="review.waiting", now=now,
                                text="\n".join(lines), priority=outbox.Priority.REVIEW,
                                buttons=review_buttons(t, waiting), protect_content=True,
                                dedupe_key=f"review.waiting:{boss_id}:{today.isoformat()}") is not None:
            sent += 1
    return sent

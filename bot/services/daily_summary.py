"""The admin office's daily summary of completed and missed visits (the SOP reports both to them).

Once a working day, from 18:30 local time, every active admin gets, in their own language and through
the outbox, per team: the visit reports filed that day and those approved that day, the open cases whose
visit is overdue (past ``visit_due_at`` without a filed visit) and the promises that broke that day. A
``report_runs`` row (kind ``daily``, the day) is claimed in the same transaction as the messages are
queued: two sweeps at once, or two processes, send it once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from sqlalchemy import and_, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.i18n import N_
from bot.services import outbox
from bot.services.calendar import WorkCalendar
from bot.services.cases import CLOSED_STATUSES
from bot.services.people import t_for
from bot.services.reports import claim_daily
from bot.storage.models import (
    Assignment,
    Case,
    CaseStatus,
    Promise,
    PromiseStatus,
    Role,
    Staff,
    Visit,
    VisitStatus,
)

KIND = "daily"
SEND_AT = time(18, 30)  # local time, on working days
FILED = (VisitStatus.FILED.value, VisitStatus.RETURNED.value, VisitStatus.APPROVED.value)
NO_TEAM = ""


@dataclass
class TeamDay:
    team: str
    filed: int = 0
    approved: int = 0
    overdue: int = 0
    broken: int = 0


async def build(session: AsyncSession, day: date, *, now: datetime, calendar: WorkCalendar) -> list[TeamDay]:
    """Per team, the day's filed and approved visit reports, the overdue visits as of ``now``, the broken
    promises of the day. A visit counts for its collector's team, an overdue case for its assignee's team."""
    start = datetime.combine(day, time.min, calendar.tz)
    end = start + timedelta(days=1)
    teams: dict[str, TeamDay] = {}

    def row(team: str | None) -> TeamDay:
        return teams.setdefault(team or NO_TEAM, TeamDay(team or NO_TEAM))

    filed = await session.execute(
        select(Staff.team, func.count()).select_from(Visit).join(Staff, Staff.id == Visit.collector_id)
        .where(Visit.status.in_(FILED), Visit.filed_at >= start, Visit.filed_at < end).group_by(Staff.team))
    for team, count in filed.tuples():
        row(team).filed = count
    approved = await session.execute(
        select(Staff.team, func.count()).select_from(Visit).join(Staff, Staff.id == Visit.collector_id)
        .where(Visit.status == VisitStatus.APPROVED.value, Visit.reviewed_at >= start, Visit.reviewed_at < end)
        .group_by(Staff.team))
    for team, count in approved.tuples():
        row(team).approved = count
    overdue = await session.execute(
        select(func.coalesce(Staff.team, Case.team), func.count()).select_from(Case)
        .outerjoin(Assignment, and_(Assignment.case_id == Case.id, Assignment.ended_at.is_(None)))
        .outerjoin(Staff, Staff.id == Assignment.staff_id)
        .where(Case.status.not_in((*CLOSED_STATUSES, CaseStatus.NEW.value)), Case.visit_due_at.is_not(None),
               Case.visit_due_at <= now, Case.visit_done_at.is_(None))
        .group_by(func.coalesce(Staff.team, Case.team)))
    for team, count in overdue.tuples():
        row(team).overdue = count
    broken = await session.execute(
        select(Staff.team, func.count()).select_from(Promise).join(Staff, Staff.id == Promise.collector_id)
        .where(Promise.status == PromiseStatus.BROKEN.value, Promise.resolved_at >= start, Promise.resolved_at < end)
        .group_by(Staff.team))
    for team, count in broken.tuples():
        row(team).broken = count
    return sorted(teams.values(), key=lambda t: (t.team == NO_TEAM, t.team))


def due_day(now: datetime, calendar: WorkCalendar) -> date | None:
    """The working day whose summary is due at ``now`` (from 18:30 local until midnight), else None."""
    local = calendar.local(now)
    if not calendar.is_working_day(local.date()) or local.time() < SEND_AT:
        return None
    return local.date()


async def send_due(session: AsyncSession, *, now: datetime, calendar: WorkCalendar) -> int:
    """Queue today's summary to every active admin, once per day (returns how many messages were queued)."""
    day = due_day(now, calendar)
    if day is None or not await claim_daily(session, KIND, day, now):
        return 0
    rows = await build(session, day, now=now, calendar=calendar)
    admins = list(await session.scalars(select(Staff).where(
        Staff.role == Role.ADMIN.value, Staff.active.is_(True), Staff.telegram_user_id.is_not(None))
        .order_by(Staff.id)))
    for admin in admins:
        assert admin.telegram_user_id is not None
        t = t_for(admin)
        lines = [t(N_("daily.title"), day=day.isoformat())]
        lines += [t(N_("daily.line"), team=r.team or t(N_("daily.no_team")), filed=r.filed, approved=r.approved,
                    overdue=r.overdue, broken=r.broken) for r in rows]
        if not rows:
            lines.append(t(N_("daily.nothing")))
        else:
            lines.append(t(N_("daily.total"), filed=sum(r.filed for r in rows),
                           approved=sum(r.approved for r in rows), overdue=sum(r.overdue for r in rows),
                           broken=sum(r.broken for r in rows)))
        await outbox.enqueue(session, chat_id=admin.telegram_user_id, kind="report.daily", now=now,
                             text="\n".join(lines), priority=outbox.Priority.BULK,
                             dedupe_key=f"daily:{day.isoformat()}:{admin.id}")
    return len(admins)

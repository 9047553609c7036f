"""The field collector's plan of the day, filed with their supervisor when the day starts.

When a field collector first opens /visits on a working day (or taps 📋 File today's plan), today's
list in route order (nearest first from their last shared position, as the route picture; cases
without coordinates after, deadline first) goes to their supervisor through the outbox. One
``day_plans`` row per collector and day, inserted with ``ON CONFLICT DO NOTHING``, makes it once:
two taps, or two processes, file one plan and send one message.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from bot.i18n import N_
from bot.services import audit, outbox, policy
from bot.services.actor import StaffView
from bot.services.calendar import WorkCalendar
from bot.services.errors import DomainError
from bot.services.masking import mask_name
from bot.services.people import reviewers_of, t_for
from bot.services.route import plan_route
from bot.services.visits import ListItem, visit_list
from bot.storage.models import DayPlan, Staff

PLAN_STOPS = 60  # at most this many cases make a day's plan (more than anyone visits in a day)
PLAN_LINES = 30  # the supervisor's message lists this many stops; the rest as a count


@dataclass(frozen=True)
class Filed:
    plan: DayPlan
    new: bool  # False: it had been filed earlier today (this call sent nothing)
    told: int = 0  # how many supervisors the plan went to


def route_order(items: list[ListItem], origin: tuple[float, float] | None) -> list[ListItem]:
    """The list in route order: the stops with coordinates as the route picture visits them, then the rest."""
    placed = [i for i in items if i.case.lat is not None and i.case.lon is not None]
    rest = [i for i in items if i.case.lat is None or i.case.lon is None]
    if not placed:
        return rest
    route = plan_route([(i.case.lat, i.case.lon) for i in placed if i.case.lat is not None and i.case.lon is not None],
                       origin)
    return [placed[n] for n in route.order] + rest


async def filed_today(session: AsyncSession, collector_id: int, day: date) -> DayPlan | None:
    plan: DayPlan | None = await session.scalar(select(DayPlan).where(DayPlan.collector_id == collector_id,
                                                                      DayPlan.day == day))
    return plan


async def still_to_file(session: AsyncSession, actor: StaffView, *, now: datetime, calendar: WorkCalendar) -> bool:
    """Whether ``actor`` has a plan to file today: a field collector, a working day, none filed yet."""
    today = calendar.local(now).date()
    if not policy.allows(actor, policy.Action.DAY_PLAN_FILE) or not calendar.is_working_day(today):
        return False
    return await filed_today(session, actor.id, today) is None


async def file_today(session: AsyncSession, actor: StaffView, *, now: datetime, calendar: WorkCalendar,
                     origin: tuple[float, float] | None) -> Filed:
    """File today's plan of ``actor`` with their supervisor(s), once per working day.

    :class:`DomainError` on a day off or with nothing to visit; :class:`~bot.services.errors.Forbidden`
    for a role that has no route (the policy's DAY_PLAN_FILE).
    """
    await policy.require(session, actor, policy.Action.DAY_PLAN_FILE, actor.id)
    today = calendar.local(now).date()
    if not calendar.is_working_day(today):
        raise DomainError(N_("dayplan.error.day_off"))
    earlier = await filed_today(session, actor.id, today)
    if earlier is not None:
        return Filed(earlier, new=False)
    # a day's route: the list's first PLAN_STOPS cases (deadline first), never the whole list of a collector
    # who holds thousands (one read of the list's index, as /visits does)
    items = route_order(list((await visit_list(session, actor, now=now, calendar=calendar, origin=origin,
                                               limit=PLAN_STOPS)).items), origin)
    if not items:
        raise DomainError(N_("dayplan.error.empty"))
    dialect = session.bind.dialect.name if session.bind is not None else "sqlite"
    insert: Any = postgresql.insert if dialect == "postgresql" else sqlite.insert
    result = await session.execute(insert(DayPlan).values(
        collector_id=actor.id, day=today, case_ids=[i.case.id for i in items], filed_at=now)
        .on_conflict_do_nothing(index_elements=["collector_id", "day"]))
    plan = await filed_today(session, actor.id, today)
    assert plan is not None
    if result.rowcount != 1:  # type: ignore[attr-defined]
        return Filed(plan, new=False)  # another process filed it a moment ago
    collector = await session.get(Staff, actor.id)
    assert collector is not None
    told = 0
    for boss in await reviewers_of(session, actor.id):
        assert boss.telegram_user_id is not None
        t = t_for(boss)
        lines = [t(N_("dayplan.to_supervisor"), name=collector.name, date=t.date(today), count=len(items))]
        for n, item in enumerate(items[:PLAN_LINES], start=1):
            case = item.case
            due = t.datetime(case.visit_due_at, calendar.tz) if case.visit_due_at else "-"
            lines.append(t(N_("dayplan.line"), n=n, case_no=case.case_no, debtor=mask_name(case.debtor_name),
                           address=case.address, due=due))
        if len(items) > PLAN_LINES:
            lines.append(t(N_("dayplan.more"), count=len(items) - PLAN_LINES))
        await outbox.enqueue(session, chat_id=boss.telegram_user_id, kind="dayplan", now=now, text="\n".join(lines),
                             protect_content=True, priority=outbox.Priority.REVIEW,
                             dedupe_key=f"dayplan:{plan.id}:{boss.id}")
        told += 1
    await audit.record(session, action="dayplan.filed", object_type="staff", object_id=actor.id, actor_id=actor.id,
                       at=now, details={"day": today.isoformat(), "cases": plan.case_ids, "supervisors": told})
    return Filed(plan, new=True, told=told)

"""What the access gate needs about the person behind an update, read in one statement.

Every update asks: which active staff member is this Telegram account, where are they in a flow, and
is an alarm of theirs open (as their phone shows it, and at all). One round trip answers all three:
staff LEFT JOIN their flow state LEFT JOIN their newest open incident, with the last hidden/shown
timeline event of that incident as a column. The answers are those of
:func:`bot.services.staff.active_by_telegram_id`, :func:`bot.services.flows.current`,
:func:`bot.services.incidents.open_for` and :func:`bot.services.incidents.any_open_for`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from bot.services.actor import StaffView, load
from bot.services.flows import FlowView
from bot.services.incidents import HIDDEN, OPEN, SHOWN
from bot.storage.models import FlowState, Incident, IncidentEvent, Staff


@dataclass(frozen=True)
class Gate:
    staff: StaffView
    flow: FlowView | None
    alarm_id: int | None  # the open alarm as the collector's phone shows it (incidents.open_for)
    any_alarm_id: int | None  # any open alarm, also one a duress PIN hid (incidents.any_open_for)


_newest_open = aliased(Incident)
_event = aliased(IncidentEvent)


def _statement(telegram_user_id: int) -> Select[Any]:
    newest = (select(func.max(_newest_open.id))
              .where(_newest_open.collector_id == Staff.id, _newest_open.status.in_(OPEN))
              .correlate(Staff).scalar_subquery())
    last_visibility = (select(_event.kind)
                       .where(_event.incident_id == Incident.id, _event.kind.in_((HIDDEN, SHOWN)))
                       .order_by(_event.id.desc()).limit(1)
                       .correlate(Incident).scalar_subquery())
    return (select(Staff, FlowState.flow, FlowState.step, FlowState.data, Incident.id, Incident.duress,
                   last_visibility)
            .outerjoin(FlowState, FlowState.staff_id == Staff.id)
            .outerjoin(Incident, Incident.id == newest)
            .where(Staff.telegram_user_id == telegram_user_id, Staff.active.is_(True))
            .limit(1))


async def caller(session: AsyncSession, telegram_user_id: int) -> Gate | None:
    """The active staff member behind ``telegram_user_id`` with their flow step and open alarm; None for a stranger."""
    row = (await session.execute(_statement(telegram_user_id))).first()
    if row is None:
        return None
    staff, flow, step, data, incident_id, duress, visibility = row
    hidden = incident_id is not None and bool(duress) and visibility == HIDDEN
    return Gate(staff=await load(session, staff),
                flow=FlowView(flow, step, dict(data)) if flow is not None else None,
                alarm_id=None if hidden else incident_id,
                any_alarm_id=incident_id)

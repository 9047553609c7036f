"""Where each person is in a multi-step conversation, kept in the database and saved at every step.

One row per person: the flow (``assign``, ``visit``, ...), the step, and the answers so far. A
restarted process, or a second one, reads the row on the next update and carries on.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from bot.steps import Step, step_of
from bot.storage.models import FlowState


@dataclass(frozen=True)
class FlowView:
    flow: str
    step: str
    data: dict[str, Any]

    @property
    def at(self) -> Step | None:
        """The declared step (None for a state no flow declares, e.g. one saved by an older version)."""
        return step_of(self.flow, self.step)


async def current(session: AsyncSession, staff_id: int) -> FlowView | None:
    row = await session.get(FlowState, staff_id)
    return FlowView(row.flow, row.step, dict(row.data)) if row is not None else None


async def _save(session: AsyncSession, staff_id: int, flow: str, step: str, data: dict[str, Any], *,
               now: datetime) -> None:
    """One statement that inserts or overwrites the person's row: two processes saving a first step for the
    same person at once (the same update delivered to both) cannot clash on the key; the later one wins."""
    values = {"staff_id": staff_id, "flow": flow, "step": step, "data": dict(data), "updated_at": now}
    changes = {"flow": flow, "step": step, "data": dict(data), "updated_at": now}
    bind = session.get_bind()
    if bind.dialect.name == "postgresql":
        statement: Any = pg_insert(FlowState).values(**values).on_conflict_do_update(
            index_elements=[FlowState.staff_id], set_=changes)
    else:
        statement = sqlite_insert(FlowState).values(**values).on_conflict_do_update(
            index_elements=[FlowState.staff_id], set_=changes)
    await session.execute(statement)
    row = session.identity_map.get(session.identity_key(FlowState, (staff_id,)))
    if row is not None:  # the session's own copy, if it read one, now says what the row says
        await session.refresh(row)


async def enter(session: AsyncSession, staff_id: int, step: Step, data: dict[str, Any], *, now: datetime) -> None:
    """Save that the person is now at ``step`` (of its flow) with the answers so far."""
    await _save(session, staff_id, step.flow, step.value, data, now=now)


async def clear(session: AsyncSession, staff_id: int, flow: str | None = None) -> None:
    query = delete(FlowState).where(FlowState.staff_id == staff_id)
    if flow is not None:
        query = query.where(FlowState.flow == flow)
    await session.execute(query)

"""Checking a collector's safety PIN, with a wrong-try limit that no step, restart or second process resets.

The rule: **5 wrong PINs within 15 minutes lock PIN entry** ("I'm safe" and every step of ``/pin``).
The fifth wrong PIN escalates the collector's alarm at once (its next level now; an alarm already owned
has its owner told), or, with no alarm, tells their supervisor. The lock lasts

* while the alarm the collector could see when it was locked is open: only a responder closing it
  (its owner or a supervisor of the team) lifts it; a collector locked out of "I'm safe" must be
  reached by a person;
* 30 minutes otherwise (no alarm, or one a duress PIN hid: the phone then behaves as without one).

The count lives in the audit log, not in the conversation state: each wrong PIN is a
``staff.wrong_pin`` entry, a lock a ``staff.pin_locked`` entry (naming the alarm it waits for), a right
PIN a ``staff.pin_ok`` entry. Wrong PINs count when they are newer than 15 minutes and than the last
right PIN or lock. Reopening the step, restarting the bot or a second instance read the same rows, and
the log is append-only and hash-chained, so no extra table is needed.

The safety and the duress PIN are both "right": they reset the count alike and the collector sees the
same words after either (see :func:`bot.services.incidents.collector_safe`). The duress PIN typed as
the current PIN in ``/pin`` raises the duress alarm too, silently, and the change goes on.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.i18n import N_
from bot.services import audit, flows, incidents, pins
from bot.services.actor import StaffView
from bot.steps import PinStep, SafeStep
from bot.storage.models import AuditEntry, Incident, Staff

MAX_WRONG = 5
WINDOW = timedelta(minutes=15)
LOCK_WITHOUT_ALARM = timedelta(minutes=30)
WRONG, LOCKED, OK = "staff.wrong_pin", "staff.pin_locked", "staff.pin_ok"


class Outcome(StrEnum):
    SAFE = "safe"
    DURESS = "duress"
    WRONG = "wrong"
    LOCKED_NOW = "locked_now"  # this PIN was the one too many
    LOCKED = "locked"  # entry was already locked: the PIN was not even compared


@dataclass(frozen=True)
class Reply:
    """What the collector is told: a message id, whether their main menu comes back, whether alerts wait."""

    key: str
    menu: bool = False
    alerts: bool = False


def _about(staff_id: int) -> Any:
    return (AuditEntry.object_type == "staff") & (AuditEntry.object_id == str(staff_id))


async def _lock_in_force(session: AsyncSession, staff_id: int, now: datetime) -> bool:
    entry = await session.scalar(select(AuditEntry).where(AuditEntry.action == LOCKED, _about(staff_id))
                                 .order_by(AuditEntry.id.desc()).limit(1))
    if entry is None:
        return False
    incident_id = json.loads(entry.details).get("incident_id")
    if incident_id is not None:
        status = await session.scalar(select(Incident.status).where(Incident.id == int(incident_id)))
        return status in incidents.OPEN
    return now.astimezone(UTC) < entry.at.astimezone(UTC) + LOCK_WITHOUT_ALARM


async def is_locked(session: AsyncSession, staff_id: int, *, now: datetime) -> bool:
    """True while the collector may not enter a PIN (see the module's rule)."""
    return await _lock_in_force(session, staff_id, now)


async def _wrong_so_far(session: AsyncSession, staff_id: int, now: datetime) -> int:
    """Wrong PINs within the window since the last right PIN or lock."""
    reset = await session.scalar(select(func.max(AuditEntry.id)).where(
        or_(AuditEntry.action == OK, AuditEntry.action == LOCKED), _about(staff_id)))
    count = await session.scalar(select(func.count()).select_from(AuditEntry).where(
        AuditEntry.action == WRONG, _about(staff_id), AuditEntry.id > (reset or 0),
        AuditEntry.at > (now - WINDOW).astimezone(UTC)))
    return int(count or 0)


async def check(session: AsyncSession, staff: StaffView, pin: str, *, step: str, now: datetime,
                policy: incidents.Policy) -> Outcome:
    """Compare ``pin`` with the collector's PINs, counting wrong ones; the fifth locks and escalates."""
    if await _lock_in_force(session, staff.id, now):
        await audit.record(session, action="staff.pin_while_locked", object_type="staff", object_id=staff.id,
                           actor_id=staff.id, at=now, details={"step": step})
        return Outcome.LOCKED
    person = await session.get(Staff, staff.id)
    assert person is not None
    for outcome, stored in ((Outcome.SAFE, person.safety_pin_hash), (Outcome.DURESS, person.duress_pin_hash)):
        if await pins.matches(pin, stored):
            # the same entry for both PINs: what tells them apart is on the incident, for responders
            await audit.record(session, action=OK, object_type="staff", object_id=staff.id, actor_id=staff.id,
                               at=now, details={"step": step})
            return outcome
    wrong = await _wrong_so_far(session, staff.id, now) + 1
    await audit.record(session, action=WRONG, object_type="staff", object_id=staff.id, actor_id=staff.id, at=now,
                       details={"step": step, "count": wrong})
    if wrong < MAX_WRONG:
        return Outcome.WRONG
    seen = await incidents.open_for(session, staff.id)
    await audit.record(session, action=LOCKED, object_type="staff", object_id=staff.id, actor_id=staff.id, at=now,
                       details={"step": step, "wrong": wrong, "incident_id": seen.id if seen else None,
                                "minutes": None if seen else int(LOCK_WITHOUT_ALARM.total_seconds() // 60)})
    await incidents.pins_locked(session, staff, now=now, policy=policy,
                                minutes=int(LOCK_WITHOUT_ALARM.total_seconds() // 60))
    return Outcome.LOCKED_NOW


# ---- "I'm safe" ------------------------------------------------------------------------------------------


async def open_safe_step(session: AsyncSession, staff: StaffView, *, now: datetime) -> Reply:
    """"I'm safe" pressed: ask for the safety PIN (unless there is none, or entry is locked)."""
    if await _lock_in_force(session, staff.id, now):
        return Reply(N_("pin.locked"))
    person = await session.get(Staff, staff.id)
    if person is None or person.safety_pin_hash is None:
        return Reply(N_("safe.no_pin"))
    await flows.enter(session, staff.id, SafeStep.PIN, {}, now=now)
    return Reply(N_("safe.ask_pin"))


async def check_safe_pin(session: AsyncSession, staff: StaffView, pin: str, *, now: datetime,
                         policy: incidents.Policy) -> Reply:
    """A PIN typed at "I'm safe": the safety PIN stands the alarm down, the duress PIN escalates it
    silently (the same answer for both), a wrong one counts towards the lock."""
    outcome = await check(session, staff, pin, step=SafeStep.FLOW, now=now, policy=policy)
    if outcome is Outcome.WRONG:
        return Reply(N_("safe.wrong_pin"))
    await flows.clear(session, staff.id, SafeStep.FLOW)
    if outcome is Outcome.LOCKED_NOW:
        return Reply(N_("pin.too_many"), alerts=True)
    if outcome is Outcome.LOCKED:
        return Reply(N_("pin.locked"))
    await incidents.collector_safe(session, staff, duress=outcome is Outcome.DURESS, now=now, policy=policy)
    return Reply(N_("safe.thanks"), menu=True, alerts=True)


# ---- /pin: setting and changing the PINs -----------------------------------------------------------------


async def start_change(session: AsyncSession, staff: StaffView, *, now: datetime) -> Reply:
    """Set (or change) the PINs. Not while locked or while an alarm the collector knows of is open;
    changing needs the current safety PIN first."""
    if await _lock_in_force(session, staff.id, now):
        return Reply(N_("pin.locked"))
    if await incidents.open_for(session, staff.id) is not None:
        return Reply(N_("pin.error.alarm_open"))
    person = await session.get(Staff, staff.id)
    step = PinStep.CURRENT if person is not None and person.safety_pin_hash else PinStep.SAFETY
    await flows.enter(session, staff.id, step, {}, now=now)
    return Reply(N_("pin.ask_current") if step is PinStep.CURRENT else N_("pin.ask_safety"))


async def change_answer(session: AsyncSession, staff: StaffView, step: PinStep, data: dict[str, Any], pin: str, *,
                        now: datetime, policy: incidents.Policy) -> Reply:
    """One typed answer of ``/pin`` at ``step``: the current PIN (counted like every PIN), the new safety
    PIN, the new duress PIN."""
    if step is PinStep.CURRENT:
        outcome = await check(session, staff, pin, step=PinStep.FLOW, now=now, policy=policy)
        if outcome is Outcome.WRONG:
            return Reply(N_("safe.wrong_pin"))
        if outcome in (Outcome.LOCKED_NOW, Outcome.LOCKED):
            await flows.clear(session, staff.id, PinStep.FLOW)
            return Reply(N_("pin.too_many") if outcome is Outcome.LOCKED_NOW else N_("pin.locked"),
                         alerts=outcome is Outcome.LOCKED_NOW)
        if outcome is Outcome.DURESS:
            await incidents.collector_safe(session, staff, duress=True, now=now, policy=policy)
        await flows.enter(session, staff.id, PinStep.SAFETY, {}, now=now)
        return Reply(N_("pin.ask_safety"), alerts=outcome is Outcome.DURESS)
    if await _lock_in_force(session, staff.id, now):
        await flows.clear(session, staff.id, PinStep.FLOW)
        return Reply(N_("pin.locked"))
    if not pins.valid_shape(pin):
        return Reply(N_("pin.bad_shape"))
    if step is PinStep.SAFETY:
        await flows.enter(session, staff.id, PinStep.DURESS, {"safety": await pins.hash_pin(pin)}, now=now)
        return Reply(N_("pin.ask_duress"))
    if await pins.matches(pin, str(data.get("safety"))):
        return Reply(N_("pin.same"))
    person = await session.get(Staff, staff.id)
    assert person is not None
    person.safety_pin_hash, person.duress_pin_hash = str(data["safety"]), await pins.hash_pin(pin)
    await flows.clear(session, staff.id, PinStep.FLOW)
    await audit.record(session, action="staff.pins_set", object_type="staff", object_id=staff.id,
                       actor_id=staff.id, at=now)
    return Reply(N_("pin.saved"), menu=True)

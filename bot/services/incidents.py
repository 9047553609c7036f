"""Emergencies: SOS, missed safety check-ins and duress, escalated until someone owns them.

The SOP: personal safety first; the supervisor is told at once and stays in contact until the matter
is resolved. An alarm is a row with timers (``next_escalation_at``, ``next_ping_at``) that the
emergency sweep acts on, so a restart loses nothing. Alerts leave through the outbox at the highest
priority; every step (raised, queued and delivered to whom and when, retries, acknowledged,
escalated, locations, resolved) is an event on the incident's timeline and in the audit log.

Who may acknowledge, resolve or list an alarm is :mod:`bot.services.policy`'s to say (an alarm that
reached the person, or their team's; resolving: its owner or a supervisor of the collector's team).

Duress: after the duress PIN the collector's phone must show exactly what it would after the safety
PIN. Where the safety PIN would have closed the alarm, the duress PIN keeps it open and escalating but
hides it from the collector (a ``hidden_from_collector`` event on its timeline): :func:`open_for`, which
everything the collector sees depends on, no longer returns it, while :func:`any_open_for` (the
location feed, SOS again, a PIN lock) still does. Raising the alarm again shows it to them again.
"""

from __future__ import annotations

import asyncio
import statistics
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.buttons import AlarmAcknowledge, AlarmResolve, SafetyDone, SafetyMoreTime
from bot.config import Settings
from bot.i18n import DEFAULT_LOCALE, N_, Translator, translator
from bot.services import audit, flows, outbox
from bot.services import policy as permissions
from bot.services.actor import StaffView
from bot.services.coords import amap_marker
from bot.services.errors import DomainError, NotFound
from bot.services.people import t_for
from bot.steps import ResolveStep
from bot.storage.models import (
    Case,
    Incident,
    IncidentEvent,
    IncidentStatus,
    OutboxMessage,
    Role,
    Staff,
    Visit,
    VisitStatus,
)

RESOLUTIONS = ("false_alarm", "resolved_safely", "police", "injury", "other")
OPEN = (IncidentStatus.OPEN.value, IncidentStatus.ACKNOWLEDGED.value)
LABELS = (N_("incident.reason.sos"), N_("incident.reason.missed_checkin"), N_("resolution.false_alarm"),
          N_("resolution.resolved_safely"), N_("resolution.police"), N_("resolution.injury"), N_("resolution.other"),
          N_("resolution.collector_safe"))
HIDDEN, SHOWN = "hidden_from_collector", "shown_to_collector"  # timeline events: what the collector's phone shows


@dataclass(frozen=True)
class Policy:
    ack_timeout: timedelta
    reping: timedelta
    safety_grace: timedelta
    ladder: tuple[str, ...]
    group_chat_id: int | None
    tz: ZoneInfo

    @classmethod
    def of(cls, settings: Settings) -> Policy:
        return cls(timedelta(seconds=settings.sos_ack_timeout_s), timedelta(seconds=settings.sos_reping_s),
                   timedelta(seconds=settings.safety_grace_s), tuple(settings.escalation),
                   settings.supervisors_chat_id, ZoneInfo(settings.timezone))


async def event(session: AsyncSession, incident: Incident, kind: str, *, now: datetime, staff_id: int | None = None,
                **details: Any) -> None:
    session.add(IncidentEvent(incident_id=incident.id, at=now, kind=kind, staff_id=staff_id, details=details))
    await session.flush()


async def any_open_for(session: AsyncSession, collector_id: int) -> Incident | None:
    """The collector's open alarm, hidden from them or not: where their locations go, what SOS again or
    a PIN lock escalates. Nothing the collector is shown may depend on it (use :func:`open_for`)."""
    incident: Incident | None = await session.scalar(
        select(Incident).where(Incident.collector_id == collector_id, Incident.status.in_(OPEN))
        .order_by(Incident.id.desc()).limit(1))
    return incident


async def hidden_from_collector(session: AsyncSession, incident: Incident) -> bool:
    """True while a duress PIN makes this open alarm look closed on the collector's phone."""
    if not incident.duress:
        return False
    last: str | None = await session.scalar(
        select(IncidentEvent.kind).where(IncidentEvent.incident_id == incident.id,
                                         IncidentEvent.kind.in_((HIDDEN, SHOWN)))
        .order_by(IncidentEvent.id.desc()).limit(1))
    return last == HIDDEN


async def open_for(session: AsyncSession, collector_id: int) -> Incident | None:
    """The collector's open alarm as the collector knows it (None for one a duress PIN made look closed).

    Every reply to the collector that depends on an open alarm asks this, so after the duress PIN the
    phone behaves exactly as after the safety PIN.
    """
    incident = await any_open_for(session, collector_id)
    if incident is None or await hidden_from_collector(session, incident):
        return None
    return incident


async def _people(session: AsyncSession, query: Any) -> list[Staff]:
    return list(await session.scalars(query.where(Staff.active.is_(True), Staff.telegram_user_id.is_not(None))))


async def recipients(session: AsyncSession, collector: Staff, level: str) -> list[Staff]:
    """Who one level of the ladder is, for ``collector``."""
    if level == "supervisor":
        if collector.supervisor_id is not None:
            own = await _people(session, select(Staff).where(Staff.id == collector.supervisor_id))
            if own:
                return own
        return await _people(session, select(Staff).where(Staff.role == Role.SUPERVISOR.value,
                                                          Staff.team == collector.team))
    if level == "team_lead":
        return await _people(session, select(Staff).where(Staff.role == Role.TEAM_LEAD.value,
                                                          Staff.team == collector.team))
    if level == "supervisors":
        return await _people(session, select(Staff).where(Staff.role == Role.SUPERVISOR.value))
    return await _people(session, select(Staff).where(Staff.role == Role.ADMIN.value))


def _where(t: Translator, incident: Incident, now: datetime, tz: ZoneInfo) -> str:
    if incident.lat is None or incident.lon is None or incident.location_at is None:
        return t("incident.where_unknown")
    minutes = max(0, int((now - incident.location_at).total_seconds() // 60))
    link = amap_marker(incident.lat, incident.lon)  # stored WGS-84, shown on Amap as GCJ-02
    return t("incident.where", lat=f"{incident.lat:.5f}", lon=f"{incident.lon:.5f}", minutes=minutes, link=link)


async def alert_text(session: AsyncSession, t: Translator, incident: Incident, *, now: datetime, tz: ZoneInfo,
                     head: str) -> str:
    collector = await session.get(Staff, incident.collector_id)
    assert collector is not None
    lines = [t(head, name=collector.name, id=incident.id),
             t("incident.who", phone=collector.phone or "-", team=collector.team or "-"),
             _where(t, incident, now, tz)]
    if incident.case_id is not None:
        case = await session.get(Case, incident.case_id)
        if case is not None:
            lines.append(t("incident.visit", case_no=case.case_no, address=case.address))
    lines.append(t("incident.when", time=t.datetime(incident.raised_at, tz),
                   reason=t(f"incident.reason.{incident.reason}")))
    return "\n".join(lines)


async def _alert(session: AsyncSession, incident: Incident, people: Sequence[Staff], *, now: datetime,
                 policy: Policy, level: str, head: str = N_("incident.alert")) -> int:
    """Queue the alert, at alert priority, to each person (and the group chat on the first level)."""
    queued = 0
    for person in people:
        t = t_for(person)
        assert person.telegram_user_id is not None
        text = await alert_text(session, t, incident, now=now, tz=policy.tz, head=head)
        await outbox.enqueue(session, chat_id=person.telegram_user_id, kind="incident.alert", now=now, text=text,
                             priority=outbox.Priority.ALERT,
                             buttons=[[(t("incident.ack"), AlarmAcknowledge(incident_id=incident.id).pack())]],
                             meta={"incident_id": incident.id, "staff_id": person.id},
                             dedupe_key=f"incident:{incident.id}:{incident.rounds}:{level}:{head}:{person.id}")
        await event(session, incident, "queued", now=now, staff_id=person.id, level=level)
        queued += 1
    if level == policy.ladder[0] and policy.group_chat_id is not None and incident.rounds == 1:
        t = t_for(people[0]) if people else translator(DEFAULT_LOCALE)
        text = await alert_text(session, t, incident, now=now, tz=policy.tz, head=head)
        await outbox.enqueue(session, chat_id=policy.group_chat_id, kind="incident.alert", now=now, text=text,
                             priority=outbox.Priority.ALERT,
                             buttons=[[(t("incident.ack"), AlarmAcknowledge(incident_id=incident.id).pack())]],
                             meta={"incident_id": incident.id, "staff_id": None},
                             dedupe_key=f"incident:{incident.id}:group:{head}")
        await event(session, incident, "queued", now=now, level=level, chat="group")
        queued += 1
    return queued


async def _alert_level(session: AsyncSession, incident: Incident, *, now: datetime, policy: Policy) -> int:
    """Alert the incident's current level; an empty level passes straight to the next one."""
    collector = await session.get(Staff, incident.collector_id)
    assert collector is not None
    for _ in range(len(policy.ladder)):
        level = policy.ladder[incident.level - 1]
        people = await recipients(session, collector, level)
        if people or (level == policy.ladder[0] and policy.group_chat_id is not None):
            return await _alert(session, incident, people, now=now, policy=policy, level=level)
        await event(session, incident, "level_empty", now=now, level=level)
        _next_level(incident, policy)
    return 0


def _next_level(incident: Incident, policy: Policy) -> None:
    if incident.level >= len(policy.ladder):
        incident.level, incident.rounds = 1, incident.rounds + 1  # the whole ladder again
    else:
        incident.level += 1


_RAISING: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = weakref.WeakKeyDictionary()


def raising() -> asyncio.Lock:
    """The SOS handlers of this process write their alarms one after another, in the order they came.

    SQLite admits one writer at a time anyway; without this queue fifty alarms at once wait for its write
    lock in SQLite's busy handler, each sleeping 1, 2, 5, ... 100 ms in its connection's thread, and the
    lock stays idle between them. Here the next alarm starts the moment the previous one commits. Other
    writers (and other processes) still meet SQLite's busy timeout as before. While it is held, alarms
    are being raised: the alert sender waits a moment for them (:func:`alarms_being_raised`).
    """
    loop = asyncio.get_running_loop()
    lock = _RAISING.get(loop)
    if lock is None:
        lock = _RAISING[loop] = asyncio.Lock()
    return lock


def alarms_being_raised() -> bool:
    """Whether an SOS of this process is writing its alarm now (or several are waiting to)."""
    lock = _RAISING.get(asyncio.get_running_loop())
    return lock is not None and lock.locked()


async def raise_alarm(session: AsyncSession, collector_id: int, *, reason: str, now: datetime,
                      policy: Policy) -> tuple[Incident, bool]:
    """Raise (or, pressed again, re-send) the collector's alarm. Returns (incident, newly raised).

    An alarm a duress PIN hid from the collector is raised again, and shown to them again: after the
    safety PIN this would have been a new alarm they know of.
    """
    existing = await any_open_for(session, collector_id)
    if existing is not None:
        if await hidden_from_collector(session, existing):
            await event(session, existing, SHOWN, now=now, staff_id=collector_id)
        await event(session, existing, "raised_again", now=now, staff_id=collector_id, reason=reason)
        if existing.status == IncidentStatus.OPEN.value:
            await _alert_level(session, existing, now=now, policy=policy)
        return existing, False
    collector = await session.get(Staff, collector_id)
    assert collector is not None
    visit = await session.scalar(select(Visit).where(Visit.collector_id == collector_id,
                                                     Visit.status == VisitStatus.DRAFT.value)
                                 .order_by(Visit.updated_at.desc()).limit(1))
    incident = Incident(collector_id=collector_id, reason=reason, status=IncidentStatus.OPEN.value, raised_at=now,
                        updated_at=now, level=1, rounds=1, next_escalation_at=now + policy.ack_timeout,
                        case_id=visit.case_id if visit else None, visit_id=visit.id if visit else None,
                        lat=collector.last_lat, lon=collector.last_lon, location_at=collector.last_location_at,
                        duress=False)
    session.add(incident)
    await session.flush()
    if visit is not None:
        visit.incident_id = incident.id
    await event(session, incident, "raised", now=now, staff_id=collector_id, reason=reason)
    await audit.record(session, action="incident.raised", object_type="incident", object_id=incident.id,
                       actor_id=collector_id, at=now, details={"reason": reason, "case_id": incident.case_id})
    await _alert_level(session, incident, now=now, policy=policy)
    return incident, True


async def record_delivery(session: AsyncSession, meta: dict[str, Any], *, ok: bool, now: datetime,
                          chat_id: int, error: str | None = None, attempts: int = 1) -> None:
    """The outbox tells the incident how each alert went: delivered, or a retry with the error."""
    incident = await session.get(Incident, int(meta["incident_id"]))
    if incident is None:
        return
    staff_id = meta.get("staff_id")
    if ok:
        if incident.first_delivered_at is None:
            incident.first_delivered_at = now
        await event(session, incident, "delivered", now=now, staff_id=staff_id, chat_id=chat_id, attempts=attempts,
                    seconds=round((now - incident.raised_at).total_seconds(), 1))
        await audit.record(session, action="incident.delivered", object_type="incident", object_id=incident.id,
                           at=now, details={"to": staff_id, "chat_id": chat_id, "attempts": attempts})
    else:
        await event(session, incident, "send_failed", now=now, staff_id=staff_id, chat_id=chat_id, error=error,
                    attempts=attempts)


async def _alerted(session: AsyncSession, incident: Incident) -> list[Staff]:
    ids = set(await session.scalars(select(IncidentEvent.staff_id).where(
        IncidentEvent.incident_id == incident.id, IncidentEvent.kind == "queued", IncidentEvent.staff_id.is_not(None))))
    return list(await session.scalars(select(Staff).where(Staff.id.in_(ids)))) if ids else []


async def _tell(session: AsyncSession, people: Sequence[Staff], key: str, *, now: datetime, kind: str,
                priority: outbox.Priority = outbox.Priority.ALERT, buttons: list[list[tuple[str, str]]] | None = None,
                **params: Any) -> None:
    for person in people:
        if person.telegram_user_id is None or not person.active:
            continue
        t = t_for(person)
        await outbox.enqueue(session, chat_id=person.telegram_user_id, kind=kind, now=now, text=t(key, **params),
                             priority=priority, buttons=buttons)


async def _tell_owner(session: AsyncSession, incident: Incident, key: str, *, now: datetime, kind: str,
                      **params: Any) -> None:
    """Tell the incident's owner (if someone owns it), with the button that resolves it."""
    owner = await session.get(Staff, incident.owner_id) if incident.owner_id is not None else None
    if owner is not None:
        t = t_for(owner)
        await _tell(session, [owner], key, now=now, kind=kind, id=incident.id,
                    buttons=[[(t("incident.resolve"), AlarmResolve(incident_id=incident.id).pack())]], **params)


async def acknowledge(session: AsyncSession, staff: StaffView, incident_id: int, *, now: datetime,
                      policy: Policy) -> Incident:
    """The first responder to press "I'm on it" owns the incident; everyone else and the collector hear who.

    Only someone the alarm reached (its ladder so far) or of the collector's team may (the policy).
    """
    await permissions.require(session, staff, permissions.Action.INCIDENT_ACK, incident_id)
    incident = await session.get(Incident, incident_id, with_for_update=True)
    if incident is None:
        raise NotFound()
    if incident.status != IncidentStatus.OPEN.value:
        owner = await session.get(Staff, incident.owner_id) if incident.owner_id else None
        raise DomainError(N_("incident.error.taken"), name=owner.name if owner else "-")
    incident.status, incident.owner_id, incident.acknowledged_at = IncidentStatus.ACKNOWLEDGED.value, staff.id, now
    incident.next_escalation_at = None
    incident.next_ping_at = now + policy.reping
    incident.updated_at = now
    await event(session, incident, "acknowledged", now=now, staff_id=staff.id,
                seconds=round((now - incident.raised_at).total_seconds(), 1))
    await audit.record(session, action="incident.acknowledged", object_type="incident", object_id=incident.id,
                       actor_id=staff.id, at=now)
    others = [p for p in await _alerted(session, incident) if p.id != staff.id]
    collector = await session.get(Staff, incident.collector_id)
    assert collector is not None
    await _tell(session, others, N_("incident.owned_by"), now=now, kind="incident.owned", name=staff.name,
                collector=collector.name, id=incident.id)
    if not await hidden_from_collector(session, incident):  # under duress the phone shows nothing but "safe"
        await _tell(session, [collector], N_("incident.help_coming"), now=now, kind="incident.owned", name=staff.name)
    await _sync_owner_location(session, incident, now=now)  # where the collector was last seen, live from now on
    return incident


async def _escalate(session: AsyncSession, incident: Incident, *, now: datetime, policy: Policy,
                    **why: Any) -> None:
    _next_level(incident, policy)
    incident.next_escalation_at = now + policy.ack_timeout
    incident.updated_at = now
    level = policy.ladder[incident.level - 1]
    await event(session, incident, "escalated", now=now, level=level, round=incident.rounds, **why)
    await audit.record(session, action="incident.escalated", object_type="incident", object_id=incident.id,
                       at=now, details={"level": level, "round": incident.rounds, **why})
    await _alert_level(session, incident, now=now, policy=policy)


async def escalate_due(session: AsyncSession, *, now: datetime, policy: Policy, limit: int = 100) -> int:
    """Unacknowledged alarms whose timeout passed go to the next level (and round again after the last)."""
    due = list(await session.scalars(select(Incident).where(
        Incident.status == IncidentStatus.OPEN.value, Incident.next_escalation_at <= now).limit(limit)))
    for incident in due:
        await _escalate(session, incident, now=now, policy=policy)
    return len(due)


async def pins_locked(session: AsyncSession, collector: StaffView, *, now: datetime, policy: Policy,
                      minutes: int) -> Incident | None:
    """Too many wrong PINs: the collector's alarm (hidden or not) goes to its next level now, or, when it
    is already owned, its owner is told at once; without an alarm their supervisor is told of the lock."""
    incident = await any_open_for(session, collector.id)
    person = await session.get(Staff, collector.id)
    assert person is not None
    if incident is None:
        await _tell(session, await recipients(session, person, "supervisor"), N_("incident.pins_locked_notice"),
                    now=now, kind="staff.pins_locked", priority=outbox.Priority.URGENT, collector=person.name,
                    minutes=minutes)
        return None
    await event(session, incident, "pins_locked", now=now, staff_id=collector.id)
    if incident.status == IncidentStatus.OPEN.value:
        await _escalate(session, incident, now=now, policy=policy, reason="pins_locked")
    else:
        await _tell_owner(session, incident, N_("incident.pins_locked"), now=now, kind="incident.pins_locked",
                          collector=person.name)
    return incident


async def reping_due(session: AsyncSession, *, now: datetime, policy: Policy, limit: int = 100) -> int:
    """The owner of an acknowledged incident is reminded until it is resolved."""
    due = list(await session.scalars(select(Incident).where(
        Incident.status == IncidentStatus.ACKNOWLEDGED.value, Incident.next_ping_at <= now).limit(limit)))
    for incident in due:
        owner = await session.get(Staff, incident.owner_id) if incident.owner_id else None
        collector = await session.get(Staff, incident.collector_id)
        assert collector is not None
        incident.next_ping_at = now + policy.reping
        await event(session, incident, "reping", now=now, staff_id=incident.owner_id)
        if owner is not None:
            t = t_for(owner)
            minutes = int((now - incident.raised_at).total_seconds() // 60)
            await _tell(session, [owner], N_("incident.reping"), now=now, kind="incident.reping",
                        priority=outbox.Priority.URGENT, id=incident.id, collector=collector.name, minutes=minutes,
                        buttons=[[(t("incident.resolve"), AlarmResolve(incident_id=incident.id).pack())]])
    return len(due)


async def _resolvable(session: AsyncSession, staff: StaffView, incident_id: int,
                      resolution: str | None = None) -> Incident:
    """The incident ``staff`` may close (its owner, or a supervisor of the collector's team), still open."""
    await permissions.require(session, staff, permissions.Action.INCIDENT_RESOLVE, incident_id)
    if resolution is not None and resolution not in RESOLUTIONS:
        raise DomainError("error.stale_button")
    incident = await session.get(Incident, incident_id, with_for_update=True)
    if incident is None:
        raise NotFound()
    if incident.status == IncidentStatus.RESOLVED.value:
        raise DomainError(N_("incident.error.resolved"))
    return incident


async def resolution_menu(session: AsyncSession, staff: StaffView, incident_id: int) -> tuple[str, ...]:
    """The resolutions ``staff`` may choose from for this incident (refused unless they may close it)."""
    await _resolvable(session, staff, incident_id)
    return RESOLUTIONS


async def resolution_chosen(session: AsyncSession, staff: StaffView, incident_id: int, resolution: str, *,
                            now: datetime) -> None:
    """A resolution was picked: the note comes next (saved, so a restart keeps it)."""
    await _resolvable(session, staff, incident_id, resolution)
    await flows.enter(session, staff.id, ResolveStep.NOTE, {"incident_id": incident_id, "resolution": resolution},
                      now=now)


async def resolve(session: AsyncSession, staff: StaffView, incident_id: int, *, resolution: str, note: str,
                  now: datetime) -> Incident:
    incident = await _resolvable(session, staff, incident_id, resolution)
    await _close(session, incident, resolution=resolution, note=note, by=staff.id, now=now)
    await flows.clear(session, staff.id, ResolveStep.FLOW)
    return incident


async def _close(session: AsyncSession, incident: Incident, *, resolution: str, note: str, by: int,
                 now: datetime) -> None:
    incident.status, incident.resolution, incident.resolution_note = IncidentStatus.RESOLVED.value, resolution, note
    incident.resolved_at, incident.resolved_by_id, incident.updated_at = now, by, now
    incident.next_escalation_at = incident.next_ping_at = None
    await event(session, incident, "resolved", now=now, staff_id=by, resolution=resolution, note=note)
    await audit.record(session, action="incident.resolved", object_type="incident", object_id=incident.id,
                       actor_id=by, at=now, details={"resolution": resolution, "note": note})
    await _sync_owner_location(session, incident, now=now)  # the owner's live location stops
    collector = await session.get(Staff, incident.collector_id)
    assert collector is not None
    people = [p for p in await _alerted(session, incident) if p.id != by]
    if by != collector.id and not incident.duress:
        people.append(collector)
    for person in people:
        t = t_for(person)
        await _tell(session, [person], N_("incident.closed"), now=now, kind="incident.closed", id=incident.id,
                    collector=collector.name, resolution=t(f"resolution.{resolution}"), note=note or "-")


async def collector_safe(session: AsyncSession, collector: StaffView, *, duress: bool, now: datetime,
                         policy: Policy) -> Incident | None:
    """The collector entered a PIN. The safety PIN stands the alarm down; the duress PIN escalates it silently.

    Either way the collector's own screen shows the same thing, then and later: where the safety PIN
    closes the alarm, the duress PIN hides it from the collector (see the module's notes).
    """
    incident = await any_open_for(session, collector.id)
    seen = incident is not None and not await hidden_from_collector(session, incident)
    if duress:
        if incident is None:
            incident, _ = await raise_alarm(session, collector.id, reason="sos", now=now, policy=policy)
            seen = True
        was_duress, incident.duress = incident.duress, True
        incident.updated_at = now
        if incident.status == IncidentStatus.OPEN.value:
            incident.next_escalation_at = now + policy.ack_timeout
        await event(session, incident, "duress", now=now, staff_id=collector.id)
        await audit.record(session, action="incident.duress", object_type="incident", object_id=incident.id,
                           actor_id=collector.id, at=now)
        person = await session.get(Staff, collector.id)
        assert person is not None
        everyone: dict[int, Staff] = {}
        for level in policy.ladder:
            for someone in await recipients(session, person, level):
                everyone[someone.id] = someone
        await _alert(session, incident, list(everyone.values()), now=now, policy=policy, level="duress",
                     head=N_("incident.duress_alert"))
        if seen and incident.status == IncidentStatus.OPEN.value:  # the safety PIN would have closed it
            await event(session, incident, HIDDEN, now=now, staff_id=collector.id, was_duress=was_duress)
        return incident
    if incident is None:
        return None
    incident.collector_safe_at = now
    await event(session, incident, "safe", now=now, staff_id=collector.id)
    await audit.record(session, action="incident.collector_safe", object_type="incident", object_id=incident.id,
                       actor_id=collector.id, at=now)
    if seen and incident.status == IncidentStatus.OPEN.value:
        if not incident.duress:
            await _close(session, incident, resolution="collector_safe", note="", by=collector.id, now=now)
        else:  # raised again after a duress PIN: the safety PIN cannot stand duress down, but looks as if it did
            await event(session, incident, HIDDEN, now=now, staff_id=collector.id)
    else:
        await _tell_owner(session, incident, N_("incident.collector_says_safe"), now=now, kind="incident.safe",
                          collector=collector.name)
    return incident


async def add_location(session: AsyncSession, collector_id: int, *, lat: float, lon: float, now: datetime,
                       live: bool) -> Incident | None:
    """Attach a location to the collector's open alarm, hidden from them or not (None: no alarm).

    An owned alarm's owner sees it on their copy of the collector's live location (queued here, see
    :func:`_sync_owner_location`); nothing of it reaches the collector's phone.
    """
    incident = await any_open_for(session, collector_id)
    if incident is None:
        return None
    await session.refresh(incident, with_for_update=True)  # the owner's copy is decided on the current row
    incident.lat, incident.lon, incident.location_at, incident.updated_at = lat, lon, now, now
    await event(session, incident, "location", now=now, staff_id=collector_id, lat=lat, lon=lon, live=live)
    person = await session.get(Staff, collector_id)
    if person is not None:
        person.last_lat, person.last_lon, person.last_location_at = lat, lon, now
    if incident.status in OPEN and incident.owner_id is not None:
        await _sync_owner_location(session, incident, now=now)
    return incident


# ---- the owner's copy of the collector's live location ---------------------------------------------------
#
# Once someone owns an alarm, the collector's position reaches them as ONE live location message, moved as
# new points come in and stopped when the alarm is resolved. The message is the incident's
# (owner_location_chat_id, owner_location_message_id), recorded in the transaction that marks its
# sendLocation sent. What the owner's message should do next is worked out from the incident and the last
# point shown to them (an ``owner_location`` event), and queued as an outbox row; at most one such row is
# unsent at a time:
#
# * a new point while the row waits (no sender holds it) rewrites the row: the owner gets the newest point,
#   once, and a burst of live updates makes one edit;
# * while a sender holds it nothing is queued: recording the row (:func:`location_delivered`, in the
#   transaction that marks it sent) queues the next step if the incident moved on meanwhile;
# * a row is due a second after the last one went (Telegram's one message a second per chat).
#
# So two first messages cannot happen (a handler and a sweep at once, two processes): the second would need
# a second unsent row. An edit Telegram refuses for good (the live period ended, the message is gone) is
# followed by a new sendLocation; a failed sendLocation waits for the next point.

LOCATION_KIND = "incident.location"
SHOWN_TO_OWNER = "owner_location"  # timeline: the point (or the stop) the owner's message shows since then
LOCATION_FAILED = "location_failed"
LOCATION_SPACING = timedelta(seconds=1)


async def _queued_locations(session: AsyncSession, incident: Incident) -> list[OutboxMessage]:
    """This incident's owner location rows not yet sent nor given up (one at most)."""
    rows = await session.scalars(select(OutboxMessage).where(
        OutboxMessage.sent_at.is_(None), OutboxMessage.failed_at.is_(None), OutboxMessage.kind == LOCATION_KIND))
    return [row for row in rows if (row.payload.get("meta") or {}).get("incident_id") == incident.id]


async def _last_shown(session: AsyncSession, incident: Incident) -> IncidentEvent | None:
    shown: IncidentEvent | None = await session.scalar(
        select(IncidentEvent).where(IncidentEvent.incident_id == incident.id, IncidentEvent.kind == SHOWN_TO_OWNER)
        .order_by(IncidentEvent.id.desc()).limit(1))
    return shown


async def _wanted_location(session: AsyncSession, incident: Incident,
                           shown: IncidentEvent | None) -> tuple[int, outbox.Location] | None:
    """The owner's message's next step (chat, what), or None while it shows what it should."""
    message_id, chat = incident.owner_location_message_id, incident.owner_location_chat_id
    if incident.status not in OPEN:
        if message_id is None or chat is None:
            return None
        return chat, outbox.Location(incident.lat or 0.0, incident.lon or 0.0, message_id=message_id, stop=True)
    owner = await session.get(Staff, incident.owner_id) if incident.owner_id is not None else None
    if (owner is None or owner.telegram_user_id is None or not owner.active
            or incident.lat is None or incident.lon is None):
        return None
    if message_id is None or chat != owner.telegram_user_id:
        return owner.telegram_user_id, outbox.Location(incident.lat, incident.lon)
    if shown is not None and shown.details.get("message_id") == message_id and (
            shown.details.get("lat"), shown.details.get("lon")) == (incident.lat, incident.lon):
        return None
    return chat, outbox.Location(incident.lat, incident.lon, message_id=message_id)


async def _sync_owner_location(session: AsyncSession, incident: Incident, *, now: datetime,
                               not_before: datetime | None = None) -> None:
    """Queue (or rewrite the queued row to) what the owner's location message should do next."""
    queued = await _queued_locations(session, incident)
    if any(row.claimed_by is not None for row in queued):
        return  # being sent: recording it comes back here
    shown = await _last_shown(session, incident)
    wanted = await _wanted_location(session, incident, shown)
    if queued:
        row = queued[0]
        if wanted is None:
            await outbox.withdraw(session, row)
        elif wanted[0] == row.chat_id:
            await outbox.replace_location(session, row, wanted[1])
        return  # a row taken by a sender meanwhile is recorded, and comes back here, as above
    if wanted is None:
        return
    chat, location = wanted
    due = max(now, shown.at + LOCATION_SPACING) if shown is not None else now
    await outbox.enqueue(session, chat_id=chat, kind=LOCATION_KIND, now=now, text="", location=location,
                         priority=outbox.Priority.URGENT, not_before=max(due, not_before or due),
                         meta={"incident_id": incident.id, "staff_id": incident.owner_id})


async def location_delivered(session: AsyncSession, row: outbox.Claimed, *, ok: bool, now: datetime,
                             error: str | None = None) -> None:
    """The outbox tells the incident how a row of the owner's location went (in the transaction that
    marks it): the message id of a sendLocation is kept, and the next step is queued if one is due."""
    meta = row.payload.get("meta") or {}
    incident = await session.get(Incident, int(meta["incident_id"]), with_for_update=True, populate_existing=True)
    if incident is None:
        return
    state = (await session.execute(select(OutboxMessage.telegram_message_id, OutboxMessage.failed_at)
                                   .where(OutboxMessage.id == row.id))).one_or_none()
    where = row.payload["location"]
    sent_id = where.get("message_id")
    if ok:
        message_id = state.telegram_message_id if state is not None else None
        if row.method == "sendLocation":
            first = incident.owner_location_message_id is None
            incident.owner_location_chat_id, incident.owner_location_message_id = row.chat_id, message_id
            if first:
                await audit.record(session, action="incident.location_shared", object_type="incident",
                                   object_id=incident.id, at=now,
                                   details={"to": meta.get("staff_id"), "chat_id": row.chat_id})
        elif row.method == "stopMessageLiveLocation" and incident.owner_location_message_id == sent_id:
            incident.owner_location_chat_id = incident.owner_location_message_id = None
        await event(session, incident, SHOWN_TO_OWNER, now=now, staff_id=meta.get("staff_id"), method=row.method,
                    lat=where["latitude"], lon=where["longitude"], chat_id=row.chat_id, message_id=message_id)
        await _sync_owner_location(session, incident, now=now)
        return
    if state is None or state.failed_at is None:
        return  # tried again later; a newer point rewrites the row meanwhile
    await event(session, incident, LOCATION_FAILED, now=now, staff_id=meta.get("staff_id"), method=row.method,
                chat_id=row.chat_id, error=error)
    if row.method != "sendLocation" and incident.owner_location_message_id == sent_id:
        incident.owner_location_chat_id = incident.owner_location_message_id = None
        if row.method == "editMessageLiveLocation":  # live period over, message gone: a new one
            await _sync_owner_location(session, incident, now=now, not_before=now + LOCATION_SPACING)


async def timeline(session: AsyncSession, incident_id: int) -> list[IncidentEvent]:
    return list(await session.scalars(select(IncidentEvent).where(IncidentEvent.incident_id == incident_id)
                                      .order_by(IncidentEvent.id)))


async def visible_open(session: AsyncSession, viewer: StaffView) -> list[Incident]:
    """The open alarms ``viewer`` may list (the policy: their team's, or every one for an admin)."""
    permissions.require_role(viewer, permissions.Action.INCIDENT_VIEW)
    rows = (await session.execute(
        select(Incident, Staff.team).join(Staff, Staff.id == Incident.collector_id)
        .where(Incident.status.in_(OPEN)).order_by(Incident.raised_at))).all()
    return [incident for incident, team in rows if permissions.allows(
        viewer, permissions.Action.INCIDENT_VIEW,
        permissions.Subject("incident", incident.id, owner_ids=frozenset({incident.collector_id}), team=team))]


# ---- the visit safety timer ------------------------------------------------------------------------------


async def safety_due(session: AsyncSession, *, now: datetime, policy: Policy, limit: int = 100) -> tuple[int, int]:
    """Ask "are you OK?" when a visit's planned time is up; no answer within the grace period raises the alarm."""
    prompted = alarmed = 0
    for visit in await session.scalars(select(Visit).where(
            Visit.status == VisitStatus.DRAFT.value, Visit.safety_due_at <= now,
            Visit.safety_prompted_at.is_(None)).limit(limit)):
        visit.safety_prompted_at = now
        person = await session.get(Staff, visit.collector_id)
        if person is None or person.telegram_user_id is None:
            continue
        t = t_for(person)
        await outbox.enqueue(session, chat_id=person.telegram_user_id, kind="visit.safety", now=now,
                             priority=outbox.Priority.URGENT, text=t("safety.prompt", minutes=visit.planned_minutes),
                             buttons=[[(t("safety.more"), SafetyMoreTime(visit_id=visit.id).pack()),
                                       (t("safety.done"), SafetyDone(visit_id=visit.id).pack())]],
                             dedupe_key=f"safety:{visit.id}:{now.isoformat()}")
        prompted += 1
    for visit in await session.scalars(select(Visit).where(
            Visit.status == VisitStatus.DRAFT.value, Visit.safety_prompted_at <= now - policy.safety_grace,
            Visit.safety_due_at.is_not(None)).limit(limit)):
        visit.safety_due_at = visit.safety_prompted_at = None  # the timer is spent: the alarm takes over
        await raise_alarm(session, visit.collector_id, reason="missed_checkin", now=now, policy=policy)
        alarmed += 1
    return prompted, alarmed


async def safety_answer(session: AsyncSession, collector: StaffView, visit_id: int, *, more: bool,
                        now: datetime) -> Visit:
    await permissions.require(session, collector, permissions.Action.SAFETY_OWN, visit_id)
    visit = await session.get(Visit, visit_id)
    if visit is None:
        raise NotFound()
    if visit.status != VisitStatus.DRAFT.value or visit.safety_due_at is None:
        raise DomainError(N_("safety.error.not_running"))
    visit.safety_prompted_at = None
    visit.safety_due_at = now + timedelta(minutes=15) if more else None
    visit.updated_at = now
    return visit


# ---- response figures ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Figures:
    count: int
    delivery: tuple[float, float, float] | None  # median, 80th, 98.5th percentile, seconds
    acknowledgement: tuple[float, float, float] | None


def _percentiles(values: list[float]) -> tuple[float, float, float] | None:
    if not values:
        return None
    if len(values) == 1:
        return values[0], values[0], values[0]
    cuts = statistics.quantiles(values, n=1000, method="inclusive")
    return statistics.median(values), cuts[799], cuts[984]


async def response_figures(session: AsyncSession, start: datetime, end: datetime, *,
                           team: str | frozenset[str] | None = None) -> Figures:
    query = select(Incident).where(Incident.raised_at >= start, Incident.raised_at < end)
    if team is not None:
        query = query.join(Staff, Staff.id == Incident.collector_id).where(
            Staff.team.in_([team] if isinstance(team, str) else team))
    rows = list(await session.scalars(query))
    delivery = [(i.first_delivered_at - i.raised_at).total_seconds() for i in rows if i.first_delivered_at]
    acks = [(i.acknowledged_at - i.raised_at).total_seconds() for i in rows if i.acknowledged_at]
    return Figures(len(rows), _percentiles(delivery), _percentiles(acks))

"""Who may do what to which object: the one permission policy every service asks.

A rule names, per role, how close the person must be to the object:

* ``SELF``   the object is the person's own (their case, visit, alarm, extension request, handover);
* ``NAMED``  the object names the person (an alarm that reached them, the incident they own, the team
  lead a handover waits for, the successor of a handover item);
* ``TEAM``   the object belongs to the person's team;
* ``BRANCH`` the object belongs to a team of the person's branch (a team's branch is its supervisor's);
* ``ANY``    any object of that kind.

:data:`RULES` is the whole table: a role missing from an action's row may not do it at all. The
authorization matrix test (``tests/test_authorization_matrix.py``) is generated from this table and
the declared buttons (``bot/buttons.py``) and commands, so a new button without a rule fails CI.

Services call :func:`require` (object rules) or :func:`require_role` (actions without an object);
handlers only declare which action they serve. A refusal is a :class:`Forbidden` naming the object,
which the handler answers and writes to the audit log. Nothing here imports another service.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.services.actor import StaffView
from bot.services.errors import Forbidden, NotFound
from bot.storage.models import (
    Assignment,
    BranchReport,
    Case,
    ExtensionRequest,
    FieldRequest,
    Handover,
    HandoverIssue,
    HandoverItem,
    Incident,
    IncidentEvent,
    Role,
    Staff,
    Visit,
)


class Reach(StrEnum):
    SELF = "self"
    NAMED = "named"
    TEAM = "team"
    BRANCH = "branch"
    ANY = "any"


class Action(StrEnum):
    # a field collector at work on a case that is theirs (assigned, or asked of them by a phone collector)
    CASE_WORK = "case.work"
    # a visit report being written, filed or amended by its own collector
    VISIT_WRITE = "visit.write"
    # a supervisor reading and deciding on a filed visit report (approve, return, its files)
    VISIT_REVIEW = "visit.review"
    # giving a case to a collector (first assignment, or moving it)
    CASE_ASSIGN = "case.assign"
    # handing a phone collector's case to a field collector
    CASE_TO_FIELD = "case.to_field"
    # importing a bank's case file
    CASE_IMPORT = "case.import"
    # approving or rejecting an extension of a visit deadline
    EXTENSION_DECIDE = "extension.decide"
    # the collector's own extension request (asking)
    EXTENSION_ASK = "extension.ask"
    # pressing "I'm on it" on an alarm
    INCIDENT_ACK = "incident.ack"
    # closing an alarm (with its resolution)
    INCIDENT_RESOLVE = "incident.resolve"
    # seeing the list of open alarms and their timelines
    INCIDENT_VIEW = "incident.view"
    # raising an alarm, answering the safety timer, setting one's PINs
    SAFETY_OWN = "safety.own"
    # starting or cancelling a departing collector's handover
    HANDOVER_RUN = "handover.run"
    # deciding on a problem flagged in a handover
    HANDOVER_DECIDE = "handover.decide"
    # the team lead's review of a handover (reassign, confirm, flag)
    HANDOVER_LEAD = "handover.lead"
    # the departing collector answering their checklist
    HANDOVER_DEPART = "handover.depart"
    # a successor receiving the cases handed to them
    HANDOVER_RECEIVE = "handover.receive"
    # the list of pending handovers and one handover's state (/handovers)
    HANDOVER_VIEW = "handover.view"
    # answering a departing collector's checklist for them, with a note, when they do not answer
    HANDOVER_STAND_IN = "handover.stand_in"
    # registering staff in the bot and giving them an invite code (/invite)
    STAFF_INVITE = "staff.invite"
    # weekly and monthly team reports
    REPORT_VIEW = "report.view"
    # one's own language and menu
    PROFILE_OWN = "profile.own"
    # finding a case and reading its card with the whole timeline (/case)
    CASE_VIEW = "case.view"
    # putting a case on hold, closing it with a reason, reopening it (the case card's buttons)
    CASE_STATUS = "case.status"
    # the team's day: check-ins, visits done / due / overdue, reports waiting, open alarms (/team)
    TEAM_VIEW = "team.view"
    # the machine's health: heartbeat, backups, outbox backlog, disk, outages (/status)
    SYSTEM_STATUS = "system.status"
    # the banks, their agreements and contacts (/banks, as ``fieldbot bank``)
    BANK_MANAGE = "bank.manage"
    # reporting a case to its bank's emergency contact (/bankalert)
    BANK_ALERT = "bank.alert"
    # a final notice by registered letter: recording it and its delivery (/letter)
    LETTER_RECORD = "letter.record"
    # applying for a special procedure on one's case (/special)
    SPECIAL_APPLY = "special.apply"
    # approving or rejecting a special procedure
    SPECIAL_DECIDE = "special.decide"
    # arranging the resources of an approved special procedure
    SPECIAL_ARRANGE = "special.arrange"
    # closing a special procedure with its result
    SPECIAL_CLOSE = "special.close"
    # a field collector filing their plan of the day (the route order) with their supervisor
    DAY_PLAN_FILE = "dayplan.file"
    # a collector flagging a debtor's default on their case as malicious, with a suggestion (/flag)
    CASE_FLAG = "case.flag"
    # approving or returning a supervisor's monthly branch report (a manager of its branch, head office)
    BRANCH_REPORT_DECIDE = "branch_report.decide"


R = Role
S, N, T, B, A = Reach.SELF, Reach.NAMED, Reach.TEAM, Reach.BRANCH, Reach.ANY
FIELD_ROLES = (R.COLLECTOR, R.PHONE_COLLECTOR)

RULES: Mapping[Action, Mapping[Role, frozenset[Reach]]] = {
    Action.CASE_WORK: {R.COLLECTOR: frozenset({S}), R.PHONE_COLLECTOR: frozenset({S})},
    Action.VISIT_WRITE: {R.COLLECTOR: frozenset({S}), R.PHONE_COLLECTOR: frozenset({S})},
    Action.VISIT_REVIEW: {R.SUPERVISOR: frozenset({T}), R.ADMIN: frozenset({A})},
    Action.CASE_ASSIGN: {R.SUPERVISOR: frozenset({T}), R.ADMIN: frozenset({A})},
    Action.CASE_TO_FIELD: {R.PHONE_COLLECTOR: frozenset({S}), R.SUPERVISOR: frozenset({T}), R.ADMIN: frozenset({A})},
    Action.CASE_IMPORT: {R.ADMIN: frozenset({A})},
    Action.EXTENSION_DECIDE: {R.SUPERVISOR: frozenset({T}), R.ADMIN: frozenset({A})},
    Action.EXTENSION_ASK: {R.COLLECTOR: frozenset({S}), R.PHONE_COLLECTOR: frozenset({S})},
    Action.INCIDENT_ACK: {R.SUPERVISOR: frozenset({N, T}), R.TEAM_LEAD: frozenset({N, T}),
                          R.ADMIN: frozenset({N, T})},
    Action.INCIDENT_RESOLVE: {R.SUPERVISOR: frozenset({N, T}), R.TEAM_LEAD: frozenset({N}),
                              R.ADMIN: frozenset({N})},
    Action.INCIDENT_VIEW: {R.SUPERVISOR: frozenset({T}), R.TEAM_LEAD: frozenset({T}), R.ADMIN: frozenset({A}),
                           R.MANAGER: frozenset({B}), R.HQ: frozenset({A})},
    Action.SAFETY_OWN: {R.COLLECTOR: frozenset({S}), R.PHONE_COLLECTOR: frozenset({S})},
    Action.HANDOVER_RUN: {R.SUPERVISOR: frozenset({T}), R.ADMIN: frozenset({A})},
    Action.HANDOVER_DECIDE: {R.SUPERVISOR: frozenset({T}), R.ADMIN: frozenset({A})},
    Action.HANDOVER_LEAD: {R.TEAM_LEAD: frozenset({N}), R.SUPERVISOR: frozenset({N}), R.ADMIN: frozenset({A})},
    Action.HANDOVER_DEPART: {R.COLLECTOR: frozenset({S}), R.PHONE_COLLECTOR: frozenset({S})},
    Action.HANDOVER_RECEIVE: {R.COLLECTOR: frozenset({N}), R.PHONE_COLLECTOR: frozenset({N})},
    Action.HANDOVER_VIEW: {R.SUPERVISOR: frozenset({T}), R.TEAM_LEAD: frozenset({T}), R.ADMIN: frozenset({A})},
    Action.HANDOVER_STAND_IN: {R.SUPERVISOR: frozenset({T}), R.TEAM_LEAD: frozenset({T}), R.ADMIN: frozenset({A})},
    Action.STAFF_INVITE: {R.ADMIN: frozenset({A})},
    Action.CASE_VIEW: {R.SUPERVISOR: frozenset({T}), R.TEAM_LEAD: frozenset({T}), R.ADMIN: frozenset({A}),
                       R.MANAGER: frozenset({B}), R.HQ: frozenset({A})},
    Action.CASE_STATUS: {R.SUPERVISOR: frozenset({T}), R.ADMIN: frozenset({A})},
    Action.TEAM_VIEW: {R.SUPERVISOR: frozenset({T}), R.TEAM_LEAD: frozenset({T}), R.ADMIN: frozenset({A}),
                       R.MANAGER: frozenset({B}), R.HQ: frozenset({A})},
    Action.REPORT_VIEW: {R.COLLECTOR: frozenset({S}), R.PHONE_COLLECTOR: frozenset({S}), R.SUPERVISOR: frozenset({T}),
                         R.TEAM_LEAD: frozenset({T}), R.ADMIN: frozenset({A}), R.MANAGER: frozenset({B}),
                         R.HQ: frozenset({A})},
    Action.PROFILE_OWN: {role: frozenset({S}) for role in Role},
    Action.SYSTEM_STATUS: {R.ADMIN: frozenset({A})},
    Action.BANK_MANAGE: {R.ADMIN: frozenset({A})},
    Action.BANK_ALERT: {R.ADMIN: frozenset({A})},
    Action.LETTER_RECORD: {R.SUPERVISOR: frozenset({T}), R.ADMIN: frozenset({A})},
    Action.SPECIAL_APPLY: {R.COLLECTOR: frozenset({S}), R.PHONE_COLLECTOR: frozenset({S})},
    Action.SPECIAL_DECIDE: {R.SUPERVISOR: frozenset({T}), R.ADMIN: frozenset({A})},
    Action.SPECIAL_ARRANGE: {R.ADMIN: frozenset({A})},
    Action.SPECIAL_CLOSE: {R.COLLECTOR: frozenset({S}), R.PHONE_COLLECTOR: frozenset({S}),
                           R.SUPERVISOR: frozenset({T}), R.ADMIN: frozenset({A})},
    Action.DAY_PLAN_FILE: {R.COLLECTOR: frozenset({S})},
    Action.CASE_FLAG: {R.COLLECTOR: frozenset({S}), R.PHONE_COLLECTOR: frozenset({S})},
    Action.BRANCH_REPORT_DECIDE: {R.MANAGER: frozenset({B}), R.HQ: frozenset({A})},
}
"""The whole policy. Notes on the choices:

* Admin staff (辅助行政人员) run the office: import, register, assign and reassign, review, decide on
  extensions and handovers for every team, and see every alarm. They acknowledge and resolve an alarm
  only when it reached them on the escalation ladder (or, for acknowledging, it is their team's).
* An alarm may be acknowledged by a responder it reached or of the collector's own team; it may be
  resolved by its owner (the one who pressed "I'm on it") or a supervisor of the collector's team.
* /report: a field collector sees their own figures (SELF), supervisors and team leads their team's,
  admin staff every team's.
* /status (the machine's health, backups, outages) is the admin office's, who runs the backups; supervisors
  hear of an outage by its notice.
* /case: supervisors and team leads read their team's cases, admin staff every case. Acting on a case
  (reassigning it, putting it on hold, closing, reopening) is the supervisor's (their team's) and the
  admin office's; team leads only read.
* /team (the team's day) is for supervisors and team leads of that team, and admin staff for every team.
* A handover's lead review belongs to the team lead(s) of the departing collector's team (its
  supervisors when the team has no lead): the handover names them.
* Pending handovers (/handovers) are seen by their team's supervisors and team leads and by the admin
  office; any of them may answer a silent departing collector's checklist for them (with a note, audited).
* Staff are registered in the bot (/invite) by the admin office only, as with ``fieldbot staff add``.
* Banks, their agreements and contacts (/banks) and reports to a bank's emergency contact (/bankalert) are
  the admin office's, who holds the agreements.
* A final notice by registered letter (/letter) is recorded and its delivery marked by the case's team
  supervisor or the admin office.
* A field collector files their own plan of the day (the route order, /visits) with their supervisor;
  phone collectors have no route.
* A collector flags malicious default (/flag) on a case they hold; it goes to their supervisor and the audit log.
* A special procedure (/special) is applied for by the collector who holds the case, decided by that
  team's supervisor (or the admin office), arranged by the admin office, and closed with its result by
  the collector holding the case, the team's supervisor or the admin office.
* A branch manager (公司经理) reads what the office reads (/case, /team, /report, /incidents) for every team of
  their branch, head office (hq) for every branch; neither changes anything in the field (no assignment,
  review, alarm handling or case status). A supervisor's monthly branch report is approved by one manager
  of its branch and one head-office user (:data:`APPROVAL_SLOTS`); either may return it with a comment.
"""

# Which approval of a branch report each role gives (bot/services/branch_reports.py).
APPROVAL_SLOTS: Mapping[Role, str] = {R.MANAGER: "manager", R.HQ: "hq"}


def roles_for(action: Action) -> frozenset[Role]:
    """The roles that may do ``action`` to at least some object."""
    return frozenset(RULES[action])


@dataclass(frozen=True)
class Subject:
    """What the policy needs to know about one object: whose it is, which team, whom it names."""

    kind: str
    id: int
    owner_ids: frozenset[int] = frozenset()
    team: str | None = None
    named_ids: frozenset[int] = field(default_factory=frozenset)

    def reach_of(self, actor: StaffView) -> frozenset[Reach]:
        reach = {Reach.ANY}
        if actor.id in self.owner_ids:
            reach.add(Reach.SELF)
        if actor.id in self.named_ids:
            reach.add(Reach.NAMED)
        if actor.team is not None and actor.team == self.team:
            reach.add(Reach.TEAM)
        if self.team is not None and self.team in actor.branch_teams:
            reach.add(Reach.BRANCH)
        return frozenset(reach)


def allows(actor: StaffView | None, action: Action, subject: Subject | None = None) -> bool:
    """True when ``actor`` may do ``action`` (to ``subject``; without one, to at least some object).

    ``actor`` None is the shell (``fieldbot`` commands run by the operator), which may do anything.
    """
    if actor is None:
        return True
    needed = RULES[action].get(actor.role)
    if not needed:
        return False
    if subject is None:
        return True
    return bool(needed & subject.reach_of(actor))


def require_role(actor: StaffView | None, action: Action, *, subject: tuple[str, object] | None = None) -> None:
    """Refuse unless ``actor``'s role may do ``action`` at all."""
    if not allows(actor, action):
        raise Forbidden(subject=subject)


def check(actor: StaffView | None, action: Action, subject: Subject) -> None:
    if not allows(actor, action, subject):
        raise Forbidden(subject=(subject.kind, subject.id))


def team_filter(actor: StaffView | None, action: Action) -> frozenset[str] | None:
    """For a listing of objects ``actor`` may ``action``: the teams to filter by, or None for every team.

    A role that reaches objects of any team (or the shell) gets None; a role that reaches its own team
    gets that team, one that reaches its branch the branch's teams. :class:`Forbidden` when the role may
    not do ``action`` at all, or its reach holds no team (such a person reaches no object, see
    :meth:`Subject.reach_of`). Callers filter with ``column.in_(teams)``.
    """
    if actor is None:
        return None
    needed = RULES[action].get(actor.role, frozenset())
    if Reach.ANY in needed:
        return None
    teams: set[str] = set()
    if Reach.TEAM in needed and actor.team is not None:
        teams.add(actor.team)
    if Reach.BRANCH in needed:
        teams |= actor.branch_teams
    if teams:
        return frozenset(teams)
    raise Forbidden()


async def require_assignment(session: AsyncSession, actor: StaffView | None, case_id: int,
                             collector_id: int | None = None) -> Subject:
    """CASE_ASSIGN of one case (to ``collector_id``, once chosen): the case and the collector must both be
    within ``actor``'s reach.

    A case no team holds yet (imported without one) counts as of the team about to take it: the
    collector's (before one is chosen, the actor's own), since assigning makes it that team's case.
    """
    action = Action.CASE_ASSIGN
    if actor is not None and not allows(actor, action):
        raise Forbidden(subject=("case", case_id))
    collector = await staff_subject(session, collector_id, action) if collector_id is not None else None
    subject = await case_subject(session, case_id, action)
    if subject.team is None:
        subject = replace(subject, team=collector.team if collector is not None else
                          actor.team if actor is not None else None)
    check(actor, action, subject)
    if collector is not None:
        check(actor, action, collector)
    return subject


async def require(session: AsyncSession, actor: StaffView | None, action: Action, object_id: int) -> Subject:
    """Load what the policy needs about the object ``action`` is aimed at and refuse unless allowed.

    Unknown objects are :class:`NotFound`; a refusal is :class:`Forbidden` with the object named.
    """
    kind = OBJECT_KIND[action]
    if actor is not None and not allows(actor, action):  # wrong role: no need to read the object
        raise Forbidden(subject=(kind, object_id))
    subject = await LOADERS[kind](session, object_id, action)
    check(actor, action, subject)
    return subject


# ---- what each kind of object tells the policy ------------------------------------------------------------


async def _team_of(session: AsyncSession, staff_id: int | None) -> str | None:
    if staff_id is None:
        return None
    team: str | None = await session.scalar(select(Staff.team).where(Staff.id == staff_id))
    return team


async def _case_holders(session: AsyncSession, case_id: int) -> frozenset[int]:
    """The collector the case is assigned to, and field collectors a phone collector asked to visit it."""
    holders = set(await session.scalars(select(Assignment.staff_id).where(
        Assignment.case_id == case_id, Assignment.ended_at.is_(None))))
    holders.update(await session.scalars(select(FieldRequest.field_collector_id).where(
        FieldRequest.case_id == case_id, FieldRequest.done_at.is_(None))))
    return frozenset(holders)


def _keep(session: AsyncSession, *loaded: object) -> None:
    """Hold what a loader read for the rest of the transaction: the session's identity map keeps objects
    only weakly, and the service that asked the policy usually ``session.get``s the same row next."""
    session.info.setdefault("policy_loaded", []).extend(loaded)


async def case_subject(session: AsyncSession, case_id: int, action: Action | None = None) -> Subject:
    case = await session.get(Case, case_id)
    if case is None:
        raise NotFound()
    _keep(session, case)
    holders = await _case_holders(session, case_id)
    team = case.team
    if team is None:  # a case without a team belongs to the team of whoever holds it
        teams = {await _team_of(session, h) for h in holders}
        team = teams.pop() if len(teams) == 1 else None
    return Subject("case", case_id, owner_ids=holders, team=team)


async def visit_subject(session: AsyncSession, visit_id: int, action: Action | None = None) -> Subject:
    # One round trip: the visit, its collector's team and its case (what the visit steps show next).
    row = (await session.execute(
        select(Visit, Staff.team, Case).outerjoin(Staff, Staff.id == Visit.collector_id)
        .outerjoin(Case, Case.id == Visit.case_id).where(Visit.id == visit_id))).first()
    if row is None:
        raise NotFound()
    visit, team, case = row
    _keep(session, visit, case)
    return Subject("visit", visit_id, owner_ids=frozenset({visit.collector_id}), team=team)


async def alarm_reached(session: AsyncSession, incident_id: int) -> frozenset[int]:
    """Everyone the alarm was sent to so far (its escalation ladder)."""
    return frozenset(s for s in await session.scalars(select(IncidentEvent.staff_id).where(
        IncidentEvent.incident_id == incident_id, IncidentEvent.kind == "queued",
        IncidentEvent.staff_id.is_not(None))) if s is not None)


async def incident_subject(session: AsyncSession, incident_id: int, action: Action | None = None) -> Subject:
    incident = await session.get(Incident, incident_id)
    if incident is None:
        raise NotFound()
    named: Iterable[int] = ()
    if action is Action.INCIDENT_RESOLVE:
        named = [incident.owner_id] if incident.owner_id is not None else []
    elif action is Action.INCIDENT_ACK:
        named = await alarm_reached(session, incident_id)
    return Subject("incident", incident_id, owner_ids=frozenset({incident.collector_id}),
                   team=await _team_of(session, incident.collector_id), named_ids=frozenset(named))


async def extension_subject(session: AsyncSession, request_id: int, action: Action | None = None) -> Subject:
    request = await session.get(ExtensionRequest, request_id)
    if request is None:
        raise NotFound()
    return Subject("extension", request_id, owner_ids=frozenset({request.collector_id}),
                   team=await _team_of(session, request.collector_id))


async def handover_leads(session: AsyncSession, team: str | None) -> frozenset[int]:
    """The team lead(s) who confirm a handover of ``team``; a team without one has its supervisor(s)."""
    for role in (Role.TEAM_LEAD.value, Role.SUPERVISOR.value):
        people = frozenset(await session.scalars(select(Staff.id).where(
            Staff.role == role, Staff.team == team, Staff.active.is_(True))))
        if people:
            return people
    return frozenset()


async def handover_subject(session: AsyncSession, handover_id: int, action: Action | None = None) -> Subject:
    handover = await session.get(Handover, handover_id)
    if handover is None:
        raise NotFound()
    team = await _team_of(session, handover.from_staff_id)
    named: frozenset[int] = frozenset()
    if action is Action.HANDOVER_LEAD:
        named = await handover_leads(session, team)
    elif action is Action.HANDOVER_RECEIVE:
        named = frozenset(await session.scalars(select(HandoverItem.successor_id).where(
            HandoverItem.handover_id == handover_id)))
    return Subject("handover", handover_id, owner_ids=frozenset({handover.from_staff_id}), team=team,
                   named_ids=named)


async def _within_handover(session: AsyncSession, kind: str, part_id: int, handover_id: int,
                           action: Action | None) -> Subject:
    """A part of a handover (an item, a flagged issue) is judged as the handover it belongs to."""
    whole = await handover_subject(session, handover_id, action)
    return Subject(kind, part_id, owner_ids=whole.owner_ids, team=whole.team, named_ids=whole.named_ids)


async def handover_item_subject(session: AsyncSession, item_id: int, action: Action | None = None) -> Subject:
    item = await session.get(HandoverItem, item_id)
    if item is None:
        raise NotFound()
    return await _within_handover(session, "handover_item", item_id, item.handover_id, action)


async def handover_issue_subject(session: AsyncSession, issue_id: int, action: Action | None = None) -> Subject:
    issue = await session.get(HandoverIssue, issue_id)
    if issue is None:
        raise NotFound()
    return await _within_handover(session, "handover_issue", issue_id, issue.handover_id, action)


async def staff_subject(session: AsyncSession, staff_id: int, action: Action | None = None) -> Subject:
    person = await session.get(Staff, staff_id)
    if person is None:
        raise NotFound()
    return Subject("staff", staff_id, owner_ids=frozenset({staff_id}), team=person.team)


async def branch_report_subject(session: AsyncSession, report_id: int, action: Action | None = None) -> Subject:
    report = await session.get(BranchReport, report_id)
    if report is None:
        raise NotFound()
    _keep(session, report)
    return Subject("branch_report", report_id, owner_ids=frozenset({report.supervisor_id}), team=report.team)


Loader = Callable[[AsyncSession, int, "Action | None"], Awaitable[Subject]]
LOADERS: Mapping[str, Loader] = {
    "case": case_subject,
    "visit": visit_subject,
    "incident": incident_subject,
    "extension": extension_subject,
    "handover": handover_subject,
    "handover_item": handover_item_subject,
    "handover_issue": handover_issue_subject,
    "staff": staff_subject,
    "branch_report": branch_report_subject,
}

# The kind of object each action is aimed at.
OBJECT_KIND: Mapping[Action, str] = {
    Action.CASE_WORK: "case",
    Action.VISIT_WRITE: "visit",
    Action.VISIT_REVIEW: "visit",
    Action.CASE_ASSIGN: "case",
    Action.CASE_TO_FIELD: "case",
    Action.CASE_IMPORT: "case",
    Action.EXTENSION_DECIDE: "extension",
    Action.EXTENSION_ASK: "case",
    Action.INCIDENT_ACK: "incident",
    Action.INCIDENT_RESOLVE: "incident",
    Action.INCIDENT_VIEW: "incident",
    Action.SAFETY_OWN: "visit",
    Action.HANDOVER_RUN: "handover",
    Action.HANDOVER_DECIDE: "handover_issue",
    Action.HANDOVER_LEAD: "handover",
    Action.HANDOVER_DEPART: "handover_item",
    Action.HANDOVER_RECEIVE: "handover",
    Action.HANDOVER_VIEW: "handover",
    Action.HANDOVER_STAND_IN: "handover",
    Action.STAFF_INVITE: "staff",
    Action.CASE_VIEW: "case",
    Action.CASE_STATUS: "case",
    Action.REPORT_VIEW: "staff",
    Action.PROFILE_OWN: "staff",
    Action.BANK_ALERT: "case",
    Action.LETTER_RECORD: "case",
    Action.SPECIAL_APPLY: "case",
    Action.SPECIAL_DECIDE: "case",
    Action.SPECIAL_ARRANGE: "case",
    Action.SPECIAL_CLOSE: "case",
    Action.DAY_PLAN_FILE: "staff",
    Action.CASE_FLAG: "case",
    Action.BRANCH_REPORT_DECIDE: "branch_report",
}

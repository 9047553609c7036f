"""The authorization matrix, generated from the declarations: every button and command × every role ×
own object / same team / other team / deactivated.

What is expected comes from the policy's table (``bot.services.policy.RULES``) and from how the world
below was built (whose object is whose, whom an alarm reached, who leads a team) — never from the code
under test. For every press the test checks, through the real Application and the Bot API stand-in:

* allowed: no refusal was written to the audit log for it;
* refused: the translated refusal was shown, one ``refused.*`` audit row was written, and no table
  changed (the database is compared row by row, audit log and update inbox aside);
* no reply to a team-A person ever carries a team-B case's debtor, number or phone;
* a deactivated person is turned away at the door and changes nothing.

The structural tests make the matrix complete: every button handler matches exactly one declared
button and serves that button's action, every declared button has a handler, and every command
declares its action. A new button or command without a policy fails here.
"""

from __future__ import annotations

import asyncio
import re
import shutil
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select, text
from telegram.ext import CallbackQueryHandler, CommandHandler

from bot import buttons as declared
from bot.app import flow_handlers
from bot.clock import ManualClock
from bot.handlers.common import ACTION_ATTR
from bot.i18n import translator
from bot.keyboards import commands_for
from bot.sandbox.harness import BotHarness, sandbox_settings
from bot.sandbox.updates import FakeUser
from bot.services.policy import RULES, Action, Reach
from bot.storage import migrate
from bot.storage.db import Database
from bot.storage.models import (
    Assignment,
    AuditEntry,
    Base,
    BranchReport,
    Case,
    ExtensionRequest,
    Handover,
    HandoverIssue,
    HandoverItem,
    Incident,
    IncidentEvent,
    Role,
    Staff,
    Visit,
)

SHANGHAI = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 11, 2, 9, 0, tzinfo=SHANGHAI)
B_MARKERS = ("B-CASE", "乙债务人", "13900009999")  # what a team-B case would leak
IGNORED_TABLES = {"audit_log", "inbox", "sweep_leases", "instances", "alembic_version"}
# Commands anyone may send, even before registering: the invite code arrives with /start.
OPEN_COMMANDS = {"start"}


# ---- the world ----------------------------------------------------------------------------------------------

ACTORS = {  # role -> (name, telegram id); all in team A except the admin, the manager (team A's branch) and hq
    Role.COLLECTOR: ("c1a", 5101),
    Role.PHONE_COLLECTOR: ("pa", 5102),
    Role.SUPERVISOR: ("sa", 5103),
    Role.TEAM_LEAD: ("la", 5104),
    Role.ADMIN: ("admin", 5105),
    Role.MANAGER: ("ma", 5107),
    Role.HQ: ("hq", 5108),
}
OTHERS = {"c2a": (Role.COLLECTOR, "A", 5106), "c1b": (Role.COLLECTOR, "B", 5201), "c2b": (Role.COLLECTOR, "B", 5202),
          "sb": (Role.SUPERVISOR, "B", 5203), "lb": (Role.TEAM_LEAD, "B", 5204), "mb": (Role.MANAGER, None, 5205)}
# Team A's supervisor works for the Shanghai branch, team B's for Beijing: a team's branch is its supervisor's.
BRANCH = {"sa": "上海分公司", "ma": "上海分公司", "sb": "北京分公司", "mb": "北京分公司"}
TEAM_BRANCH = {"A": "上海分公司", "B": "北京分公司"}
NO_TEAM = (Role.ADMIN, Role.MANAGER, Role.HQ)
SEES_EVERY_TEAM = (Role.ADMIN, Role.HQ)
OWNERS = ("c1a", "pa", "c2a", "c1b")  # people who own one object of every kind
SUCCESSOR = {"c1a": "c2a", "pa": "c2a", "c2a": "c1a", "c1b": "c2b"}
TEAMMATE = {"A": "c2a", "B": "c2b"}


@dataclass
class World:
    staff: dict[str, int] = field(default_factory=dict)  # name -> staff id
    team: dict[str, str | None] = field(default_factory=dict)
    objects: dict[tuple[str, str], int] = field(default_factory=dict)  # (variant, owner) -> id
    named: dict[tuple[str, str], set[str]] = field(default_factory=dict)  # (variant, owner) -> named people
    branch: dict[str, str | None] = field(default_factory=dict)  # name -> the branch they work for


def _user(name: str, telegram_id: int) -> FakeUser:
    return FakeUser(telegram_id, name, language_code="en")


async def _build(database: Database) -> World:
    world = World()
    async with database.write() as s:
        people: dict[str, Staff] = {}
        for team in ("A", "B"):
            boss = Staff(name=f"s{team.lower()}", role=Role.SUPERVISOR.value, team=team, active=True, locale="en",
                         created_at=NOW, telegram_user_id=5103 if team == "A" else 5203,
                         branch=BRANCH[f"s{team.lower()}"])
            s.add(boss)
            await s.flush()
            people[boss.name] = boss
        specs: list[tuple[str, Role, str | None, int]] = [
            (name, role, None if role in NO_TEAM else "A", tid) for role, (name, tid) in ACTORS.items()
            if role is not Role.SUPERVISOR]
        specs += [(name, role, team, tid) for name, (role, team, tid) in OTHERS.items() if role is not Role.SUPERVISOR]
        for name, role, team, tid in specs:
            person = Staff(name=name, role=role.value, team=team, active=True, locale="en", created_at=NOW,
                           telegram_user_id=tid, supervisor_id=people[f"s{team.lower()}"].id if team else None,
                           branch=BRANCH.get(name))
            s.add(person)
            await s.flush()
            people[name] = person
        world.staff = {name: p.id for name, p in people.items()}
        world.team = {name: p.team for name, p in people.items()}
        world.branch = {name: p.branch for name, p in people.items()}
        reports = {}
        for team in ("A", "B"):  # each supervisor's monthly branch report, waiting for approval
            reports[team] = BranchReport(team=team, branch=TEAM_BRANCH[team], period_start=date(2026, 10, 1),
                                         supervisor_id=people[f"s{team.lower()}"].id, status="pending",
                                         created_at=NOW)
            s.add(reports[team])
        await s.flush()
        for owner in OWNERS:
            person, team = people[owner], people[owner].team
            assert team is not None
            b = team == "B"
            case = Case(bank="ICBC", case_no=f"{'B-CASE' if b else 'A-CASE'}-{owner}",
                        debtor_name="乙债务人" if b else "甲债务人", address="上海市浦东新区世纪大道100号",
                        phone="13900009999" if b else "13800001111", id_number_masked="310115********0011",
                        amount_due_fen=100000, overdue_days=30, status="assigned", team=team, created_at=NOW,
                        updated_at=NOW, lat=31.23, lon=121.47, visit_due_at=NOW + timedelta(days=2))
            s.add(case)
            await s.flush()
            s.add(Assignment(case_id=case.id, staff_id=person.id, assigned_at=NOW))
            draft = Visit(case_id=case.id, collector_id=person.id, status="draft", started_at=NOW, updated_at=NOW,
                          safety_due_at=NOW + timedelta(hours=1), planned_minutes=30, details={})
            filed = Visit(case_id=case.id, collector_id=person.id, status="filed", started_at=NOW, updated_at=NOW,
                          filed_at=NOW, code="NO_ANSWER", details={}, revision=1)
            s.add_all([draft, filed])
            await s.flush()
            extension = ExtensionRequest(case_id=case.id, collector_id=person.id, reason="rain",
                                         proposed_on=date(2026, 11, 5), old_due_at=case.visit_due_at,
                                         status="pending", created_at=NOW)
            s.add(extension)
            incident = Incident(collector_id=person.id, case_id=case.id, reason="sos", status="open", raised_at=NOW,
                                updated_at=NOW, level=1, rounds=1, next_escalation_at=NOW + timedelta(minutes=2))
            s.add(incident)
            await s.flush()
            boss = people[f"s{team.lower()}"]
            s.add(IncidentEvent(incident_id=incident.id, at=NOW, kind="queued", staff_id=boss.id, details={}))
            successor = people[SUCCESSOR[owner]]
            handover = Handover(from_staff_id=person.id, status="lead_review", started_at=NOW, facts={})
            s.add(handover)
            await s.flush()
            item = HandoverItem(handover_id=handover.id, case_id=case.id, successor_id=successor.id, facts={})
            issue = HandoverIssue(handover_id=handover.id, raised_by_id=people[f"l{team.lower()}"].id, note="?",
                                  raised_at=NOW)
            s.add_all([item, issue])
            await s.flush()
            lead = f"l{team.lower()}"
            for variant, object_id in (("case", case.id), ("draft", draft.id), ("filed", filed.id),
                                       ("extension", extension.id), ("incident", incident.id),
                                       ("handover", handover.id), ("handover_item", item.id),
                                       ("handover_issue", issue.id), ("staff", person.id),
                                       ("branch_report", reports[team].id)):
                world.objects[variant, owner] = object_id
            world.named["incident.ack", owner] = {boss.name}
            world.named["handover.lead", owner] = {lead}
            world.named["handover.receive", owner] = {successor.name}
    return world


# The world is built once into a SQLite file, copied for each test and put back after every press with
# SQLite's backup API.
SQLITE_WORLD = pytest.mark.sqlite_only("the world is copied and put back with SQLite's backup API")


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, World]]:
    folder = tmp_path_factory.mktemp("matrix")
    path = folder / "template.db"

    async def make() -> World:
        database = Database(f"sqlite+aiosqlite:///{path}")
        await migrate.upgrade(database)
        try:
            return await _build(database)
        finally:
            await database.dispose()

    world = asyncio.run(make())
    yield path, world


# ---- what a press looks like --------------------------------------------------------------------------------

# Which object of an owner a button points at, when its kind alone does not say.
VARIANT = {
    declared.VisitResume: "draft", declared.VisitAmend: "filed", declared.ReviewApprove: "filed",
    declared.ReviewReturn: "filed", declared.ReviewFiles: "filed", declared.SafetyMoreTime: "draft",
    declared.SafetyDone: "draft",
}
FILLERS: dict[Any, Any] = {int: 1, date: date(2026, 11, 4), declared.Month: declared.Month("202611"),
                           declared.Nonce: declared.Nonce("abc123"), declared.Word: declared.Word("en"),
                           declared.Code: declared.Code("NO_ANSWER")}


def _press_data(cls: type[declared.Button], world: World, owner: str | None) -> str:
    values: dict[str, Any] = {}
    for name, kind in cls._fields:
        if owner is not None and name == cls.target:
            variant = VARIANT.get(cls, cls.kind)
            assert variant is not None
            values[name] = world.objects[variant, owner]
        elif name in ("collector_id", "staff_id") and owner is not None:
            values[name] = world.staff[TEAMMATE[str(world.team[owner])]]
        elif isinstance(kind, type) and issubclass(kind, declared.StrEnum):
            values[name] = next(iter(kind))
        else:
            values[name] = FILLERS[kind]
    return cls(**values).pack()


def _reach(actor: str, owner: str, world: World, action: Action) -> set[Reach]:
    """How close ``actor`` is to ``owner``'s object, from how the world was built."""
    reach = {Reach.ANY}
    if actor == owner:
        reach.add(Reach.SELF)
    if world.team[actor] is not None and world.team[actor] == world.team[owner]:
        reach.add(Reach.TEAM)
    if world.branch.get(actor) is not None and world.branch.get(actor) == TEAM_BRANCH.get(str(world.team[owner])):
        reach.add(Reach.BRANCH)
    if actor in world.named.get((action.value, owner), set()):
        reach.add(Reach.NAMED)
    return reach


def expected(action: Action | None, role: Role, reach: set[Reach] | None) -> bool:
    if action is None:
        return True
    allowed = RULES[action].get(role, frozenset())
    if reach is None:  # a button without an object: the role decides
        return bool(allowed)
    return bool(allowed & reach)


def _dump(path: Path) -> dict[str, list[tuple[Any, ...]]]:
    with sqlite3.connect(path) as connection:
        return {table: sorted(connection.execute(f'SELECT * FROM "{table}"').fetchall(), key=repr)
                for table in Base.metadata.tables if table not in IGNORED_TABLES}


def _copy_db(source: Path, target: Path) -> None:
    with sqlite3.connect(source) as src, sqlite3.connect(target) as dst:
        src.backup(dst)


class Matrix:
    """One running bot on a copy of the world; presses, and puts the database back after each."""

    def __init__(self, tmp_path: Path, template: Path, world: World) -> None:
        shutil.copy(template, tmp_path / "fieldbot.db")
        self.path = tmp_path / "fieldbot.db"
        self.baseline = tmp_path / "baseline.db"
        self.world = world
        self.harness = BotHarness(sandbox_settings(tmp_path, throttle_rate=0), ManualClock(NOW))
        self.forbidden = translator("en")("error.forbidden")

    async def __aenter__(self) -> Matrix:
        await self.harness.start()
        self.harness.api.clear()
        _copy_db(self.path, self.baseline)
        self.before = _dump(self.path)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.harness.close()

    async def refusals(self, staff_id: int) -> int:
        async with self.harness.db.read() as s:
            return int(await s.scalar(select(func.count()).select_from(AuditEntry).where(
                AuditEntry.actor_id == staff_id, AuditEntry.action.like("refused.%"))) or 0)

    async def press(self, user: FakeUser, staff_id: int, update: dict[str, Any]) -> tuple[bool, list[str], bool]:
        """(refused?, every text the bot showed, did any table change?)"""
        before = await self.refusals(staff_id)
        calls = await self.harness.send(update)
        shown = [str(c.params.get(k)) for c in calls for k in ("text", "caption") if c.params.get(k)]
        refused = await self.refusals(staff_id) > before
        changed = _dump(self.path) != self.before
        if changed:  # put the world back for the next press
            await self.harness.db.dispose()
            _copy_db(self.baseline, self.path)
        return refused, shown, changed

    async def deactivate(self, staff_id: int) -> None:
        async with self.harness.db.write() as s:
            await s.execute(text("UPDATE staff SET active = false WHERE id = :id"), {"id": staff_id})
        _copy_db(self.path, self.baseline)
        self.before = _dump(self.path)


def _check(refused: bool, allowed: bool, shown: list[str], changed: bool, forbidden: str, what: str) -> None:
    if allowed:
        assert not refused, f"{what}: refused, but the policy allows it ({shown})"
    else:
        assert refused, f"{what}: allowed, but the policy refuses it ({shown})"
        assert any(forbidden in s for s in shown), f"{what}: the refusal was not shown ({shown})"
        assert not changed, f"{what}: refused, yet the database changed"


# ---- the generated tests ------------------------------------------------------------------------------------

BUTTONS = sorted(declared.BUTTONS.values(), key=lambda c: c.prefix)


@SQLITE_WORLD
@pytest.mark.parametrize("button", BUTTONS, ids=lambda c: c.prefix)
async def test_button_matrix(button: type[declared.Button], template: tuple[Path, World], tmp_path: Path) -> None:
    path, world = template
    async with Matrix(tmp_path, path, world) as matrix:
        for role, (name, telegram_id) in ACTORS.items():
            actor_id = world.staff[name]
            user = _user(name, telegram_id)
            relations: list[str | None]
            if button.target is None:
                relations = [None]
            else:
                relations = [o for o in ("self", "team", "other")]
            for relation in relations:
                owner: str | None = None
                if relation == "self":
                    if name not in OWNERS:
                        continue
                    owner = name
                elif relation == "team":
                    owner = "c2a"
                elif relation == "other":
                    owner = "c1b"
                data = _press_data(button, world, owner)
                reach = _reach(name, owner, world, button.action) if owner and button.action else None
                allowed = expected(button.action, role, reach)
                update = matrix.harness.updates.button(user, data, forge=True)
                refused, shown, changed = await matrix.press(user, actor_id, update)
                what = f"{button.__name__} {data!r} by {role.value} on {relation or 'no object'}"
                _check(refused, allowed, shown, changed, matrix.forbidden, what)
                if role not in SEES_EVERY_TEAM:
                    leaks = [s for s in shown if any(m in s for m in B_MARKERS)]
                    assert not leaks, f"{what}: team B data shown to team A: {leaks}"


@SQLITE_WORLD
@pytest.mark.parametrize("button", BUTTONS, ids=lambda c: c.prefix)
async def test_deactivated_staff_are_turned_away(button: type[declared.Button], template: tuple[Path, World],
                                                 tmp_path: Path) -> None:
    path, world = template
    async with Matrix(tmp_path, path, world) as matrix:
        for role, (name, telegram_id) in ACTORS.items():
            await matrix.deactivate(world.staff[name])
            owner = name if name in OWNERS else "c2a"
            data = _press_data(button, world, owner if button.target else None)
            calls = await matrix.harness.send(matrix.harness.updates.button(_user(name, telegram_id), data,
                                                                            forge=True))
            refused_text = translator("en")("access.refused")
            shown = [str(c.params.get("text")) for c in calls if c.params.get("text")]
            assert shown and all(refused_text in s for s in shown), f"{button.__name__} by deactivated {role}: {shown}"
            assert _dump(matrix.path) == matrix.before, f"{button.__name__} by deactivated {role} changed data"


def _commands() -> list[tuple[str, Any]]:
    found = []
    for handler in flow_handlers():
        if isinstance(handler, CommandHandler):
            for command in sorted(handler.commands):
                found.append((command, handler.callback))
    return found


COMMANDS = _commands()


@SQLITE_WORLD
@pytest.mark.parametrize(("command", "callback"), COMMANDS, ids=[c for c, _ in COMMANDS])
async def test_command_matrix(command: str, callback: Any, template: tuple[Path, World], tmp_path: Path) -> None:
    if command in OPEN_COMMANDS:
        pytest.skip(f"/{command} is open to everyone (invite codes)")
    action: Action = getattr(callback, ACTION_ATTR)
    path, world = template
    async with Matrix(tmp_path, path, world) as matrix:
        for role, (name, telegram_id) in ACTORS.items():
            user = _user(name, telegram_id)
            refused, shown, changed = await matrix.press(user, world.staff[name],
                                                         matrix.harness.updates.command(user, f"/{command}"))
            _check(refused, expected(action, role, None), shown, changed, matrix.forbidden,
                   f"/{command} by {role.value}")
            if role not in SEES_EVERY_TEAM:
                assert not [s for s in shown if any(m in s for m in B_MARKERS)], f"/{command} leaked team B data"


# ---- the declarations are complete --------------------------------------------------------------------------


def _button_handlers() -> list[CallbackQueryHandler[Any, Any, Any]]:
    return [h for h in flow_handlers() if isinstance(h, CallbackQueryHandler) and h.pattern is not None]


def test_every_button_handler_serves_a_declared_button_with_its_action() -> None:
    by_pattern = {cls.pattern().pattern: cls for cls in declared.BUTTONS.values()}
    for handler in _button_handlers():
        pattern = handler.pattern.pattern if isinstance(handler.pattern, re.Pattern) else str(handler.pattern)
        cls = by_pattern.get(pattern)
        assert cls is not None, f"{handler.callback.__name__} matches {pattern!r}, which no button declares"
        if cls.action is not None:
            assert getattr(handler.callback, ACTION_ATTR, None) is cls.action, (
                f"{handler.callback.__name__} handles {cls.__name__} but does not serve {cls.action}")


def test_every_declared_button_has_a_handler() -> None:
    handled = {h.pattern.pattern for h in _button_handlers() if isinstance(h.pattern, re.Pattern)}
    missing = [cls.__name__ for cls in declared.BUTTONS.values() if cls.pattern().pattern not in handled]
    assert not missing, f"declared buttons nobody handles: {missing}"


def test_every_command_declares_its_action() -> None:
    undeclared = [c for c, callback in COMMANDS if c not in OPEN_COMMANDS and not hasattr(callback, ACTION_ATTR)]
    assert not undeclared, f"commands without a policy action: {undeclared}"


def test_every_action_has_a_rule_and_every_button_fits_in_64_bytes() -> None:
    assert set(RULES) == set(Action)
    world = World(staff=dict.fromkeys([*OWNERS, *TEAMMATE.values()], 123456789),
                  team={"c1a": "A", "pa": "A", "c2a": "A", "c1b": "B", "c2b": "B"},
                  objects={(v, o): 987654321 for v in ("case", "draft", "filed", "extension", "incident", "handover",
                                                        "handover_item", "handover_issue", "staff", "visit",
                                                        "branch_report")
                           for o in OWNERS})
    for cls in declared.BUTTONS.values():
        data = _press_data(cls, world, "c1a" if cls.target else None)
        assert len(data.encode()) <= declared.MAX_BYTES
        assert declared.parse(data) == cls.unpack(data)


def test_a_button_without_a_policy_cannot_be_declared() -> None:
    with pytest.raises(TypeError, match="must say why"):
        class Sneaky(declared.Button, prefix="zz:sneaky", action=None):
            pass


@pytest.mark.parametrize("role", list(Role), ids=[r.value for r in Role])
def test_every_advertised_command_is_one_the_role_may_use(role: Role) -> None:
    """The command menu Telegram shows a person lists only commands the policy lets their role use, and the
    office roles find their daily commands there (a team lead's /report, /handovers, /case, /team)."""
    actions = {command: getattr(callback, ACTION_ATTR, None) for command, callback in COMMANDS}
    advertised = [c.command for c in commands_for(translator("en"), role)]
    for command in advertised:
        assert command in actions, f"/{command} is advertised to {role.value} but nothing handles it"
        action = actions[command]
        assert command in OPEN_COMMANDS or action is None or role in RULES[action], (
            f"/{command} is advertised to {role.value}, whom the policy never lets use it")
    if role in (Role.SUPERVISOR, Role.TEAM_LEAD, Role.ADMIN):
        assert {"report", "handovers", "case", "team", "incidents"} <= set(advertised)

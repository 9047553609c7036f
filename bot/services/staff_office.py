"""The admin office registers staff: one person at a time in the bot (/invite), or many from a file.

Both do what ``fieldbot staff add`` does: a staff record (``staff.add_staff``) and a single-use invite
code (``invites.create_invite``), audited with the admin as the actor. A person with the same name in
the same team who is still active is not registered twice: the file import reports them, /invite refuses.

The staff file is CSV (UTF-8 or GBK) or XLSX with a header row, Chinese or English headers: 姓名/name,
角色/role (外访员/collector, 电话催收员/phone_collector, 主管/supervisor, 组长/team_lead, 行政/admin),
组别/team, 主管姓名/supervisor (a supervisor of that team, by name, already registered or earlier in the
file), 手机/phone, 语言/language (zh_CN or en; 中文/English). Bad rows are rejected with their row number
and the reason; the good ones are registered in one transaction.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from datetime import datetime

from openpyxl import load_workbook
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.i18n import N_, SUPPORTED_LOCALES
from bot.services import invites, policy, staff
from bot.services.actor import StaffView
from bot.services.errors import DomainError
from bot.services.policy import Action
from bot.storage.models import Role, Staff

FIELD_ROLES = (Role.COLLECTOR, Role.PHONE_COLLECTOR)
NAME_MAX = 100
TEAM_MAX = 50


# ---- one person, in the bot ---------------------------------------------------------------------------------


def needs_supervisor(role: Role) -> bool:
    """Field collectors report to a supervisor of their team; the others are asked for none."""
    return role in FIELD_ROLES


async def teams(session: AsyncSession, actor: StaffView | None) -> list[str]:
    """The teams people are registered in now (active staff), for the admin to choose from."""
    policy.require_role(actor, Action.STAFF_INVITE)
    found = await session.scalars(select(Staff.team).where(Staff.active.is_(True), Staff.team.is_not(None))
                                  .distinct().order_by(Staff.team))
    return [team for team in found if team]


async def supervisors(session: AsyncSession, actor: StaffView | None, team: str | None) -> list[Staff]:
    """The active supervisors of ``team``."""
    policy.require_role(actor, Action.STAFF_INVITE)
    return list(await session.scalars(select(Staff).where(
        Staff.role == Role.SUPERVISOR.value, Staff.active.is_(True), Staff.team == team).order_by(Staff.name)))


def clean_team(text: str | None) -> str | None:
    team = " ".join((text or "").split())
    if len(team) > TEAM_MAX:
        raise DomainError(N_("invite.error.team_too_long"), max=TEAM_MAX)
    return team or None


async def _check_supervisor(session: AsyncSession, supervisor_id: int | None, team: str | None) -> None:
    if supervisor_id is None:
        return
    boss = await session.get(Staff, supervisor_id)
    if boss is None or not boss.active or boss.role != Role.SUPERVISOR.value or boss.team != team:
        raise DomainError(N_("invite.error.bad_supervisor"))


async def _existing(session: AsyncSession, name: str, team: str | None) -> Staff | None:
    found: Staff | None = await session.scalar(select(Staff).where(
        Staff.name == name, Staff.team.is_(None) if team is None else Staff.team == team,
        Staff.active.is_(True)).order_by(Staff.id).limit(1))
    return found


async def invite(session: AsyncSession, actor: StaffView | None, *, name: str, role: Role, team: str | None,
                 supervisor_id: int | None, now: datetime, phone: str | None = None,
                 locale: str | None = None) -> tuple[Staff, str]:
    """Register one person and give their invite code, as ``fieldbot staff add`` does (refused for a person
    already registered with that name in that team)."""
    policy.require_role(actor, Action.STAFF_INVITE)
    name = " ".join(name.split())
    if not name:
        raise DomainError(N_("staff.error.name_required"))
    if len(name) > NAME_MAX:
        raise DomainError(N_("invite.error.name_too_long"), max=NAME_MAX)
    team = clean_team(team)
    await _check_supervisor(session, supervisor_id, team)
    if await _existing(session, name, team) is not None:
        raise DomainError(N_("invite.error.duplicate"), name=name, team=team or "-")
    actor_id = actor.id if actor is not None else None
    member = await staff.add_staff(session, name=name, role=role, team=team, supervisor_id=supervisor_id,
                                   phone=phone, locale=locale, now=now, actor_id=actor_id)
    return member, await invites.create_invite(session, member.id, now=now, actor_id=actor_id)


# ---- many people, from a file --------------------------------------------------------------------------------

HEADERS = {
    "name": ("姓名", "name", "名字", "员工姓名"),
    "role": ("角色", "role", "岗位", "职位"),
    "team": ("组别", "team", "小组", "组"),
    "supervisor": ("主管姓名", "supervisor", "主管", "supervisor name"),
    "phone": ("手机", "phone", "手机号", "电话", "mobile"),
    "language": ("语言", "language", "locale"),
}
ROLE_WORDS = {
    "外访员": Role.COLLECTOR, "collector": Role.COLLECTOR,
    "电话催收员": Role.PHONE_COLLECTOR, "phone_collector": Role.PHONE_COLLECTOR,
    "phone collector": Role.PHONE_COLLECTOR,
    "主管": Role.SUPERVISOR, "supervisor": Role.SUPERVISOR,
    "组长": Role.TEAM_LEAD, "team_lead": Role.TEAM_LEAD, "team lead": Role.TEAM_LEAD,
    "行政": Role.ADMIN, "admin": Role.ADMIN,
}
LANGUAGE_WORDS = {"zh_cn": "zh_CN", "zh": "zh_CN", "中文": "zh_CN", "en": "en", "english": "en", "英文": "en",
                  "英语": "en"}


@dataclass(frozen=True)
class Registered:
    row: int
    staff_id: int
    name: str
    role: Role
    team: str | None
    code: str


@dataclass(frozen=True)
class Skipped:
    """A row naming a person already registered (same name and team): reported, not added again."""

    row: int
    staff_id: int
    name: str
    team: str | None


@dataclass(frozen=True)
class Rejected:
    row: int
    key: str  # a message id
    params: dict[str, object] = field(default_factory=dict)


@dataclass
class ImportResult:
    registered: list[Registered] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    rejected: list[Rejected] = field(default_factory=list)


def _key(text: object) -> str:
    return " ".join(str(text or "").replace("\ufeff", "").split()).lower()


def read_rows(data: bytes, filename: str) -> list[tuple[int, dict[str, str]]]:
    """The file's rows as (row number, {field: text}); :class:`DomainError` for a file that cannot be read."""
    if data.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        try:
            sheet = load_workbook(io.BytesIO(data), read_only=True, data_only=True).worksheets[0]
            records = [[("" if v is None else str(v)) for v in row] for row in sheet.iter_rows(values_only=True)]
        except Exception as error:  # openpyxl raises many kinds for a broken workbook
            raise DomainError(N_("staff_import.error.unreadable"), file=filename, reason=str(error)) from error
    else:
        for encoding in ("utf-8-sig", "gb18030"):
            try:
                text = data.decode(encoding)
                break
            except UnicodeDecodeError:
                continue
        else:
            raise DomainError(N_("staff_import.error.unreadable"), file=filename, reason="encoding")
        records = [list(row) for row in csv.reader(io.StringIO(text))]
    aliases = {alias.lower(): name for name, names in HEADERS.items() for alias in names}
    for index, record in enumerate(records):
        columns = {aliases[_key(cell)]: n for n, cell in enumerate(record) if _key(cell) in aliases}
        if "name" in columns and "role" in columns:
            rows = []
            for number, values in enumerate(records[index + 1:], start=index + 2):
                if not any(str(v).strip() for v in values):
                    continue
                rows.append((number, {name: (str(values[n]).strip() if n < len(values) else "")
                                      for name, n in columns.items()}))
            return rows
    raise DomainError(N_("staff_import.error.no_header"), file=filename)


async def import_staff(session: AsyncSession, actor: StaffView | None, data: bytes, filename: str, *,
                       now: datetime) -> ImportResult:
    """Register every good row of a staff file with an invite code; idempotent by name and team."""
    policy.require_role(actor, Action.STAFF_INVITE)
    result = ImportResult()
    for number, row in read_rows(data, filename):
        name = " ".join(row.get("name", "").split())
        role = ROLE_WORDS.get(_key(row.get("role")))
        language = row.get("language", "").strip()
        locale = LANGUAGE_WORDS.get(_key(language)) if language else None
        phone = row.get("phone", "").strip() or None
        try:
            team = clean_team(row.get("team"))
        except DomainError as error:
            result.rejected.append(Rejected(number, error.key, error.params))
            continue
        if not name:
            result.rejected.append(Rejected(number, N_("staff_import.reject.no_name")))
            continue
        if role is None:
            result.rejected.append(Rejected(number, N_("staff_import.reject.bad_role"), {"role": row.get("role", "")}))
            continue
        if language and locale not in SUPPORTED_LOCALES:
            result.rejected.append(Rejected(number, N_("staff_import.reject.bad_language"), {"language": language}))
            continue
        if phone is not None and not phone.replace("+", "").replace("-", "").replace(" ", "").isdigit():
            result.rejected.append(Rejected(number, N_("staff_import.reject.bad_phone"), {"phone": phone}))
            continue
        existing = await _existing(session, name, team)
        if existing is not None:
            result.skipped.append(Skipped(number, existing.id, name, team))
            continue
        supervisor_id = None
        boss_name = " ".join(row.get("supervisor", "").split())
        if boss_name:
            bosses = list(await session.scalars(select(Staff.id).where(
                Staff.name == boss_name, Staff.team == team, Staff.role == Role.SUPERVISOR.value,
                Staff.active.is_(True))))
            if len(bosses) != 1:
                result.rejected.append(Rejected(number, N_("staff_import.reject.bad_supervisor"),
                                                {"supervisor": boss_name, "team": team or "-"}))
                continue
            supervisor_id = bosses[0]
        member, code = await invite(session, actor, name=name, role=role, team=team, supervisor_id=supervisor_id,
                                    now=now, phone=phone, locale=locale)
        result.registered.append(Registered(number, member.id, member.name, role, team, code))
    return result

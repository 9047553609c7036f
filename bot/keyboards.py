"""Reply and inline keyboards, menus and command lists: pure functions of a translator, a role and data."""

from __future__ import annotations

import calendar as month_calendar
from datetime import date, timedelta

from telegram import (
    BotCommand,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    KeyboardButton,
    ReplyKeyboardMarkup,
    WebAppInfo,
)

from bot.buttons import (
    AnswerDate,
    ExtensionCalendarPage,
    ExtensionDate,
    Inert,
    Language,
    Month,
    VisitCalendarPage,
    Word,
)
from bot.i18n import N_, SUPPORTED_LOCALES, Translator
from bot.services import policy
from bot.storage.models import Role

# Main reply-keyboard rows per role, as message ids. Each flow adds its buttons here.
ROLE_MENU: dict[Role, list[list[str]]] = {
    Role.COLLECTOR: [[N_("menu.visits"), N_("menu.share_location"), N_("menu.sos")],
                     [N_("menu.report"), N_("menu.help"), N_("menu.language")]],
    Role.PHONE_COLLECTOR: [[N_("menu.visits"), N_("menu.share_location"), N_("menu.sos")],
                           [N_("menu.report"), N_("menu.help"), N_("menu.language")]],
    Role.SUPERVISOR: [[N_("menu.assign"), N_("menu.report")], [N_("menu.help"), N_("menu.language")]],
    Role.TEAM_LEAD: [[N_("menu.report"), N_("menu.help"), N_("menu.language")]],
    Role.ADMIN: [[N_("menu.import"), N_("menu.assign")], [N_("menu.report"), N_("menu.help"), N_("menu.language")]],
    Role.MANAGER: [[N_("menu.report"), N_("menu.help"), N_("menu.language")]],
    Role.HQ: [[N_("menu.report"), N_("menu.help"), N_("menu.language")]],
}

# Slash commands per role (command, description message id), for the Telegram command menu.
COMMON_COMMANDS: list[tuple[str, str]] = [
    ("start", N_("command.start")),
    ("help", N_("command.help")),
    ("lang", N_("command.lang")),
]
ROLE_COMMANDS: dict[Role, list[tuple[str, str]]] = {role: [] for role in Role}
ROLE_COMMANDS[Role.SUPERVISOR] += [("assign", N_("command.assign")), ("report", N_("command.report"))]
ROLE_COMMANDS[Role.ADMIN] += [("report", N_("command.report"))]
ROLE_COMMANDS[Role.TEAM_LEAD] += [("report", N_("command.report"))]
FIELD_COMMANDS = [("visits", N_("command.visits")), ("sos", N_("command.sos")), ("safe", N_("command.safe")),
                  ("pin", N_("command.pin")), ("report", N_("command.report")), ("checklist", N_("command.checklist")),
                  ("cancel", N_("command.cancel"))]
ROLE_COMMANDS[Role.COLLECTOR] += FIELD_COMMANDS
ROLE_COMMANDS[Role.PHONE_COLLECTOR] += [*FIELD_COMMANDS, ("tofield", N_("command.tofield"))]
ROLE_COMMANDS[Role.SUPERVISOR] += [("tofield", N_("command.tofield"))]
for _responder in (Role.SUPERVISOR, Role.TEAM_LEAD, Role.ADMIN):
    ROLE_COMMANDS[_responder] += [("incidents", N_("command.incidents"))]
for _starter in (Role.SUPERVISOR, Role.ADMIN):
    ROLE_COMMANDS[_starter] += [("handover", N_("command.handover"))]
for _office in (Role.SUPERVISOR, Role.TEAM_LEAD, Role.ADMIN):
    ROLE_COMMANDS[_office] += [("handovers", N_("command.handovers"))]
ROLE_COMMANDS[Role.ADMIN] += [("import", N_("command.import")), ("assign", N_("command.assign")),
                              ("status", N_("command.status"))]
# above the supervisor: a branch's manager and head office read, and approve the branch reports
for _reader in (Role.MANAGER, Role.HQ):
    ROLE_COMMANDS[_reader] += [("report", N_("command.report")), ("reports", N_("command.reports")),
                               ("incidents", N_("command.incidents"))]
# the case desk and the team's day (bot/handlers/case_desk.py, bot/handlers/team.py)
for _office in (Role.SUPERVISOR, Role.TEAM_LEAD, Role.ADMIN, Role.MANAGER, Role.HQ):
    ROLE_MENU[_office].insert(len(ROLE_MENU[_office]) - 1, [N_("menu.case"), N_("menu.team")])
    ROLE_COMMANDS[_office] += [("case", N_("command.case")), ("team", N_("command.team"))]
# the rest of the procedure (bot/handlers/procedure.py)
ROLE_COMMANDS[Role.ADMIN] += [("banks", N_("command.banks")), ("bankalert", N_("command.bankalert"))]
for _office in (Role.SUPERVISOR, Role.ADMIN):
    ROLE_COMMANDS[_office] += [("letter", N_("command.letter"))]
for _field in (Role.COLLECTOR, Role.PHONE_COLLECTOR):
    ROLE_COMMANDS[_field] += [("special", N_("command.special"))]
    ROLE_COMMANDS[_field] += [("flag", N_("command.flag"))]  # malicious default (bot/handlers/flag.py)

LANGUAGE_NAMES = {"zh_CN": "中文", "en": "English"}

# The date pickers: the visit report's and the extension request's day buttons and calendar pages.
DayButton = type[AnswerDate] | type[ExtensionDate]
PageButton = type[VisitCalendarPage] | type[ExtensionCalendarPage]


# Menu buttons that send the phone's location instead of their label (the list, nearest first).
LOCATION_BUTTONS = frozenset({"menu.share_location"})


def main_keyboard(t: Translator, role: Role, *, console_url: str | None = None) -> ReplyKeyboardMarkup:
    """The role's menu; with the console's HTTPS address (FIELDBOT_WEB_URL), a Console button that opens it as a
    Mini App for the roles the console is for (those who may see a team's day)."""
    rows = [[KeyboardButton(t(key), request_location=key in LOCATION_BUTTONS or None) for key in row]
            for row in ROLE_MENU[role]]
    if console_url and console_url.startswith("https://") and role in policy.roles_for(policy.Action.TEAM_VIEW):
        rows.insert(len(rows) - 1, [KeyboardButton(t(N_("menu.console")), web_app=WebAppInfo(console_url))])
    return ReplyKeyboardMarkup(rows, resize_keyboard=True, is_persistent=True)


def commands_for(t: Translator, role: Role | None) -> list[BotCommand]:
    entries = ROLE_COMMANDS[role] + COMMON_COMMANDS if role is not None else COMMON_COMMANDS
    return [BotCommand(name, t(key)) for name, key in entries]


def language_picker(current: str) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        [[InlineKeyboardButton(("✓ " if loc == current else "") + LANGUAGE_NAMES[loc],
                               callback_data=Language(locale=Word(loc)).pack())
          for loc in SUPPORTED_LOCALES]]
    )

ROLE_LABELS: dict[Role, str] = {
    Role.COLLECTOR: N_("role.collector"),
    Role.PHONE_COLLECTOR: N_("role.phone_collector"),
    Role.SUPERVISOR: N_("role.supervisor"),
    Role.TEAM_LEAD: N_("role.team_lead"),
    Role.ADMIN: N_("role.admin"),
    Role.MANAGER: N_("role.manager"),
    Role.HQ: N_("role.hq"),
}


def _month(day: date) -> Month:
    return Month(f"{day:%Y%m}")


def date_buttons(t: Translator, today: date, *, day: DayButton, page: PageButton) -> list[list[InlineKeyboardButton]]:
    """Quick picks (today, tomorrow, in 2 and 7 days) as ``day`` buttons and a calendar (a ``page`` button)."""
    quick = [(t("date.today"), today), (t("date.tomorrow"), today + timedelta(days=1)),
             (t("date.in_days", days=2), today + timedelta(days=2)),
             (t("date.in_days", days=7), today + timedelta(days=7))]
    return [[InlineKeyboardButton(label, callback_data=day(day=when).pack()) for label, when in quick],
            [InlineKeyboardButton(t("date.calendar"), callback_data=page(month=_month(today)).pack())]]


def month_keyboard(t: Translator, year: int, month: int, today: date, *, day: DayButton,
                   page: PageButton) -> InlineKeyboardMarkup:
    """A month of ``day`` buttons (past days blank), with ◀ ▶ (``page`` buttons) to move between months."""
    inert = Inert().pack()
    rows = [[InlineKeyboardButton(f"{year}-{month:02d}", callback_data=inert)]]
    for week in month_calendar.Calendar(firstweekday=0).monthdayscalendar(year, month):
        row = []
        for number in week:
            if number == 0 or date(year, month, number) < today:
                row.append(InlineKeyboardButton(" ", callback_data=inert))
            else:
                row.append(InlineKeyboardButton(str(number), callback_data=day(day=date(year, month, number)).pack()))
        rows.append(row)
    previous = date(year, month, 1) - timedelta(days=1)
    following = date(year, month, 28) + timedelta(days=7)
    rows.append([InlineKeyboardButton("◀", callback_data=page(month=_month(previous)).pack()),
                 InlineKeyboardButton("▶", callback_data=page(month=_month(following)).pack())])
    return InlineKeyboardMarkup(rows)


def month_shown(shown: Month, today: date) -> tuple[int, int]:
    """The month a calendar page button asks for: from this month to two years ahead."""
    year, month = int(shown[:4]), int(shown[4:])
    if not 1 <= month <= 12 or not today.year <= year <= today.year + 2 or date(year, month, 1) < today.replace(day=1):
        return today.year, today.month
    return year, month

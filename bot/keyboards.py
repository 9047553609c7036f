"""Reply and inline keyboards, menus and command lists: pure functions of a translator, a role and data."""

from __future__ import annotations

from telegram import (
    BotCommand,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    KeyboardButton,
    ReplyKeyboardMarkup,
)

from bot.i18n import N_, SUPPORTED_LOCALES, Translator
from bot.storage.models import Role

# Main reply-keyboard rows per role, as message ids. Each flow adds its buttons here.
ROLE_MENU: dict[Role, list[list[str]]] = {
    Role.COLLECTOR: [[N_("menu.visits")], [N_("menu.help"), N_("menu.language")]],
    Role.PHONE_COLLECTOR: [[N_("menu.visits")], [N_("menu.help"), N_("menu.language")]],
    Role.SUPERVISOR: [[N_("menu.assign")], [N_("menu.help"), N_("menu.language")]],
    Role.TEAM_LEAD: [[N_("menu.help"), N_("menu.language")]],
    Role.ADMIN: [[N_("menu.import"), N_("menu.assign")], [N_("menu.help"), N_("menu.language")]],
}

# Slash commands per role (command, description message id), for the Telegram command menu.
COMMON_COMMANDS: list[tuple[str, str]] = [
    ("start", N_("command.start")),
    ("help", N_("command.help")),
    ("lang", N_("command.lang")),
]
ROLE_COMMANDS: dict[Role, list[tuple[str, str]]] = {role: [] for role in Role}
ROLE_COMMANDS[Role.SUPERVISOR] += [("assign", N_("command.assign"))]
ROLE_COMMANDS[Role.COLLECTOR] += [("visits", N_("command.visits")), ("cancel", N_("command.cancel"))]
ROLE_COMMANDS[Role.PHONE_COLLECTOR] += [("visits", N_("command.visits")), ("cancel", N_("command.cancel"))]
ROLE_COMMANDS[Role.ADMIN] += [("import", N_("command.import")), ("assign", N_("command.assign"))]

LANGUAGE_NAMES = {"zh_CN": "中文", "en": "English"}


def main_keyboard(t: Translator, role: Role) -> ReplyKeyboardMarkup:
    rows = [[KeyboardButton(t(key)) for key in row] for row in ROLE_MENU[role]]
    return ReplyKeyboardMarkup(rows, resize_keyboard=True, is_persistent=True)


def commands_for(t: Translator, role: Role | None) -> list[BotCommand]:
    entries = ROLE_COMMANDS[role] + COMMON_COMMANDS if role is not None else COMMON_COMMANDS
    return [BotCommand(name, t(key)) for name, key in entries]


def language_picker(current: str) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        [[InlineKeyboardButton(("✓ " if loc == current else "") + LANGUAGE_NAMES[loc], callback_data=f"lang:{loc}")
          for loc in SUPPORTED_LOCALES]]
    )

ROLE_LABELS: dict[Role, str] = {
    Role.COLLECTOR: N_("role.collector"),
    Role.PHONE_COLLECTOR: N_("role.phone_collector"),
    Role.SUPERVISOR: N_("role.supervisor"),
    Role.TEAM_LEAD: N_("role.team_lead"),
    Role.ADMIN: N_("role.admin"),
}

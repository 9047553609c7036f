"""The reply menu's 🖥 Console button: a web_app button to FIELDBOT_WEB_URL for supervisors, team leads and
admins; none for collectors, and none at all without an HTTPS address."""

from __future__ import annotations

from typing import Any

from bot.i18n import translator
from bot.keyboards import main_keyboard
from bot.sandbox.harness import BotHarness
from bot.sandbox.updates import FakeUser
from bot.storage.models import Role

URL = "https://console.example.cn/"


def _console_buttons(markup: dict[str, Any]) -> list[dict[str, Any]]:
    return [b for row in markup["keyboard"] for b in row if "web_app" in b]


async def test_the_office_gets_the_console_button(harness: BotHarness) -> None:
    harness.settings.web_url = URL
    people = {Role.SUPERVISOR: FakeUser(6001, "Sup", language_code="en"),
              Role.TEAM_LEAD: FakeUser(6002, "Lead", language_code="en"),
              Role.ADMIN: FakeUser(6003, "Adm", language_code="en"),
              Role.COLLECTOR: FakeUser(6004, "Col", language_code="en")}
    for role, user in people.items():
        await harness.onboard(user, user.first_name, role, team=None if role is Role.ADMIN else "A")
        menu = next(c.params["reply_markup"] for c in harness.api.calls
                    if c.method == "sendMessage" and c.params.get("chat_id") == user.id and "reply_markup" in c.params)
        buttons = _console_buttons(menu)
        if role is Role.COLLECTOR:
            assert buttons == []
        else:
            assert buttons == [{"text": "🖥 Console", "web_app": {"url": URL}}], role
    assert harness.api.violations == []


def test_no_button_without_an_https_address() -> None:
    t = translator("zh_CN")
    for url in (None, "", "http://console.example.cn/"):
        keyboard = main_keyboard(t, Role.SUPERVISOR, console_url=url).to_dict()
        assert _console_buttons(keyboard) == []
    keyboard = main_keyboard(t, Role.SUPERVISOR, console_url=URL).to_dict()
    assert [b["text"] for b in _console_buttons(keyboard)] == ["🖥 控制台"]

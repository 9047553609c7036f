"""Onboarding through the real Application: /start with a code, refusals, lock-out, strangers, /lang."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from bot.sandbox.harness import BotHarness
from bot.sandbox.updates import FakeUser
from bot.storage.models import AuditEntry, Role, Staff

ZH_USER = FakeUser(1001, "三", language_code="zh-hans")
EN_USER = FakeUser(1002, "Li", language_code="en")
STRANGER = FakeUser(6666, "Eve", language_code="en")


def keyboard_labels(call_params: dict[str, object]) -> list[str]:
    markup = call_params.get("reply_markup")
    assert isinstance(markup, dict), call_params
    return [button["text"] for row in markup["keyboard"] for button in row]


async def test_valid_code_greets_in_the_user_s_language_with_the_role_keyboard(harness: BotHarness) -> None:
    staff_id, code = await harness.add_staff("Li Lei", Role.COLLECTOR)
    calls = await harness.send(harness.updates.command(EN_USER, "/start", code))
    messages = [c for c in calls if c.method == "sendMessage"]
    assert len(messages) == 2  # the greeting, then the hint to set the safety PINs
    assert messages[0].params["text"].startswith("Welcome, Li Lei!")
    assert messages[1].params["text"].startswith("For your safety, send /pin")
    assert "field collector" in messages[0].params["text"]
    assert "❓ Help" in keyboard_labels(messages[0].params)
    menus = [c for c in calls if c.method == "setMyCommands"]
    assert menus and menus[-1].params["scope"] == {"type": "chat", "chat_id": EN_USER.id}
    assert [c["command"] for c in menus[-1].params["commands"]][-3:] == ["start", "help", "lang"]
    async with harness.db.read() as session:
        member = await session.get(Staff, staff_id)
        actions = (await session.scalars(select(AuditEntry.action))).all()
    assert member is not None and member.telegram_user_id == EN_USER.id and member.locale == "en"
    assert "invite.redeemed" in actions


async def test_chinese_user_is_greeted_in_chinese(harness: BotHarness) -> None:
    _, code = await harness.add_staff("张三", Role.SUPERVISOR)
    calls = await harness.send(harness.updates.command(ZH_USER, "/start", code))
    text = harness.replies(calls)[0]
    assert text.startswith("欢迎，张三！") and "催收主管" in text


async def test_reused_expired_and_wrong_codes_are_refused_clearly(harness: BotHarness) -> None:
    _, code = await harness.add_staff("张三", Role.COLLECTOR)
    await harness.send(harness.updates.command(ZH_USER, "/start", code))
    other = FakeUser(1003, "Wang", language_code="en")
    assert harness.replies(await harness.send(harness.updates.command(other, "/start", code))) == [
        "That invite code has already been used; each code works once. Please contact the admin office."
    ]
    _, late_code = await harness.add_staff("王五", Role.COLLECTOR)
    harness.clock.advance(timedelta(days=8))
    assert "expired" in harness.replies(await harness.send(harness.updates.command(other, "/start", late_code)))[0]
    assert "not valid" in harness.replies(await harness.send(harness.updates.command(other, "/start", "nope")))[0]


async def test_sixth_wrong_code_within_an_hour_is_locked_out(harness: BotHarness) -> None:
    _, code = await harness.add_staff("Li Lei", Role.COLLECTOR)
    for i in range(5):
        replies = harness.replies(await harness.send(harness.updates.command(EN_USER, "/start", f"bad{i}")))
        assert "not valid" in replies[0]
    replies = harness.replies(await harness.send(harness.updates.command(EN_USER, "/start", code)))
    assert replies == ["Too many wrong invite codes. Please try again in an hour."]
    harness.clock.advance(timedelta(hours=1, minutes=1))
    replies = harness.replies(await harness.send(harness.updates.command(EN_USER, "/start", code)))
    assert replies[0].startswith("Welcome, Li Lei!")


async def test_stranger_gets_only_the_refusal(harness: BotHarness) -> None:
    for update in (
        harness.updates.text(STRANGER, "hello"),
        harness.updates.command(STRANGER, "/start"),
        harness.updates.command(STRANGER, "/help"),
        harness.updates.location(STRANGER, 31.23, 121.47),
    ):
        calls = await harness.send(update)
        assert [c.method for c in calls] == ["sendMessage"]
        assert calls[0].params["text"].startswith("Hello! This is the company's internal")
    calls = await harness.send(harness.updates.button(STRANGER, "lang:en"))
    assert [c.method for c in calls] == ["answerCallbackQuery"]
    assert calls[0].params["show_alert"] is True
    async with harness.db.read() as session:
        assert (await session.scalars(select(AuditEntry.action))).all() == []


async def test_deactivated_staff_is_treated_as_a_stranger(harness: BotHarness) -> None:
    from bot.services import staff as staff_service

    staff_id = await harness.onboard(EN_USER, "Li Lei", Role.COLLECTOR)
    async with harness.db.write() as session:
        await staff_service.deactivate(session, staff_id, now=harness.clock.now())
    replies = harness.replies(await harness.send(harness.updates.command(EN_USER, "/help")))
    assert len(replies) == 1
    assert replies[0].startswith("Hello! This is the company's internal")


async def test_plain_start_from_a_known_user_shows_the_menu(harness: BotHarness) -> None:
    await harness.onboard(EN_USER, "Li Lei", Role.ADMIN)
    calls = await harness.send(harness.updates.command(EN_USER, "/start"))
    assert harness.replies(calls)[0] == "Hello Li Lei! Role: admin staff. Use the menu below."


async def test_lang_switches_language_and_menu(harness: BotHarness) -> None:
    await harness.onboard(ZH_USER, "张三", Role.COLLECTOR)
    calls = await harness.send(harness.updates.command(ZH_USER, "/lang"))
    assert harness.replies(calls) == ["请选择语言："]
    calls = await harness.send(harness.updates.button(ZH_USER, "lang:en"))
    sent = [c for c in calls if c.method == "sendMessage"]
    assert sent[0].params["text"].startswith("Language set to English.")
    assert "❓ Help" in keyboard_labels(sent[0].params)
    calls = await harness.send(harness.updates.text(ZH_USER, "❓ Help"))
    assert harness.replies(calls)[0].startswith("Commands you can use:")


async def test_forged_language_button_is_refused(harness: BotHarness) -> None:
    await harness.onboard(EN_USER, "Li Lei", Role.COLLECTOR)
    harness.api.clear()
    calls = await harness.send(harness.updates.button(EN_USER, "lang:xx", forge=True))
    assert calls[0].method == "answerCallbackQuery" and "no longer valid" in calls[0].params["text"]


async def test_unknown_text_gets_a_translated_hint(harness: BotHarness) -> None:
    await harness.onboard(EN_USER, "Li Lei", Role.COLLECTOR)
    calls = await harness.send(harness.updates.text(EN_USER, "what now?"))
    assert harness.replies(calls) == ["Sorry, I did not understand that. Use the menu below or send /help."]


async def test_default_command_menu_is_published_per_language(harness: BotHarness) -> None:
    menus = {c.params.get("language_code"): c.params["commands"] for c in harness.api.sent("setMyCommands")}
    assert set(menus) == {"zh", "en", None}
    assert menus["en"][0] == {"command": "start", "description": "Open the main menu"}
    assert menus["zh"][0] == {"command": "start", "description": "打开主菜单"}
    assert menus[None] == menus["zh"]  # the default locale for everyone else

"""The Bot API stand-in (``bot.sandbox``): schema checks, answers PTB understands, injected failures,
the HTTP variant, and the update factories."""

from __future__ import annotations

import asyncio
import datetime as dtm
import importlib.util
import json
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from telegram import (
    Bot,
    BotCommand,
    BotCommandScopeChat,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    InputMediaPhoto,
    Update,
)
from telegram.error import BadRequest, Conflict, EndPointNotFound, Forbidden, NetworkError, RetryAfter
from telegram.ext import Application, ApplicationBuilder, CallbackQueryHandler, CommandHandler, ContextTypes

from bot.sandbox.botapi import (
    BOT_ID,
    MAX_DOWNLOAD_SIZE,
    SCHEMA_PATH,
    FakeBotApi,
    FakeRequest,
    load_schema,
)
from bot.sandbox.http_server import FakeBotApiServer
from bot.sandbox.updates import FakeUser, UpdateFactory, to_update

TOKEN = "123:ABC"
ALICE = FakeUser(101, "Alice", username="alice_collector")


@pytest.fixture
def api() -> Iterator[FakeBotApi]:
    api = FakeBotApi()
    yield api
    assert api.violations == [], "unexpected Bot API violations"


@pytest.fixture
async def bot(api: FakeBotApi) -> AsyncIterator[Bot]:
    async with Bot(TOKEN, request=FakeRequest(api), get_updates_request=FakeRequest(api)) as bot:
        yield bot


def keyboard(*data: str) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup([[InlineKeyboardButton(f"b{i}", callback_data=d)] for i, d in enumerate(data)])


def take_violations(api: FakeBotApi) -> list[str]:
    found = list(api.violations)
    api.violations.clear()
    return found


# ---- the derived schema ---------------------------------------------------------------------------


def test_schema_is_derived_deterministically_and_knows_core_methods() -> None:
    spec = importlib.util.spec_from_file_location("derive", Path(__file__).parents[1] / "tools/derive_botapi_schema.py")
    assert spec is not None and spec.loader is not None
    derive = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(derive)
    text = SCHEMA_PATH.read_text(encoding="utf-8")
    assert derive.render(json.loads(text)) == text  # sorted keys, stable formatting

    schema = load_schema()
    params = schema.params("sendMessage")
    assert {name for name, p in params.items() if p["required"]} == {"chat_id", "text"}
    assert params["chat_id"]["types"] == ["Integer", "String"]
    assert schema.types["BotCommandScopeChat"]["fields"]["type"]["const"] == "chat"
    assert all(set(method) == {"params", "returns"} for method in schema.methods.values())
    specs = [
        *(p for m in schema.methods.values() for p in m["params"].values()),
        *(f for t in schema.types.values() for f in t["fields"].values()),
    ]
    assert all(set(spec) <= {"types", "required", "const"} for spec in specs)  # no descriptions


def test_every_implemented_method_is_a_documented_method() -> None:
    implemented = [name.removeprefix("_api_") for name in dir(FakeBotApi) if name.startswith("_api_")]
    assert set(implemented) <= set(load_schema().methods)


# ---- schema violations ------------------------------------------------------------------------------


def test_unknown_method_is_a_violation_answered_not_found(api: FakeBotApi) -> None:
    reply = api.handle("sendTelepathy", {"chat_id": "1"})
    assert reply.status == 404
    assert reply.body == {"ok": False, "error_code": 404, "description": "Not Found"}
    assert take_violations(api) == ["sendTelepathy: Not Found"]
    assert api.calls[-1].failed


async def test_unknown_method_through_ptb(api: FakeBotApi, bot: Bot) -> None:
    with pytest.raises(EndPointNotFound):
        await bot.do_api_request("sendTelepathy", api_kwargs={"chat_id": 1})
    assert len(take_violations(api)) == 1


@pytest.mark.parametrize(
    ("params", "fragment"),
    [
        ({"chat_id": "1"}, "parameter text is required"),
        ({"chat_id": "1", "text": "hi", "colour": "red"}, 'unknown parameter "colour"'),
        ({"chat_id": "1", "text": "hi", "message_thread_id": "abc"}, "message_thread_id: expected Integer"),
        ({"chat_id": "1", "text": "hi", "disable_notification": "maybe"}, "expected Boolean"),
        ({"chat_id": [1], "text": "hi"}, "expected Integer or String"),
        ({"chat_id": "1", "text": "hi", "reply_markup": "{not json"}, "can't parse JSON"),
        ({"chat_id": "1", "text": "hi", "entities": '{"type": "bold"}'}, "expected Array of MessageEntity"),
        ({"chat_id": "1", "text": "x" * 4097}, "message is too long"),
        ({"chat_id": "1", "text": "   "}, "message text is empty"),
        ({"chat_id": "1", "text": "a < b", "parse_mode": "HTML"}, 'Unsupported start tag ""'),
        ({"chat_id": "1", "text": "<b>bold", "parse_mode": "HTML"}, 'start tag "b"'),
    ],
)
def test_bad_send_message_calls_are_refused(api: FakeBotApi, params: dict[str, Any], fragment: str) -> None:
    reply = api.handle("sendMessage", params)
    assert reply.status == 400 and reply.body["ok"] is False
    assert reply.body["description"].startswith("Bad Request: ")
    assert fragment in reply.body["description"]
    assert [v for v in take_violations(api) if fragment in v]


async def test_limits_are_enforced_through_ptb(api: FakeBotApi, bot: Bot) -> None:
    with pytest.raises(BadRequest, match="too long"):
        await bot.send_message(ALICE.id, "长" * 4097)
    with pytest.raises(BadRequest, match=r"(?i)button_data_invalid"):
        await bot.send_message(ALICE.id, "pick", reply_markup=keyboard("访" * 22))  # 66 UTF-8 bytes
    with pytest.raises(BadRequest, match=r"(?i)caption is too long"):
        await bot.send_photo(ALICE.id, b"jpeg", caption="c" * 1025)
    with pytest.raises(BadRequest, match=r"(?i)message_too_long"):
        await bot.answer_callback_query("1", text="t" * 201)
    with pytest.raises(BadRequest, match="callback_date: unknown field"):
        button = InlineKeyboardButton("typo", callback_data="x", api_kwargs={"callback_date": "y"})
        await bot.send_message(ALICE.id, "pick", reply_markup=InlineKeyboardMarkup([[button]]))
    assert len(take_violations(api)) == 5
    refused = api.failures()[1]
    assert refused.params["reply_markup"] == {"inline_keyboard": [[{"text": "b0", "callback_data": "访" * 22}]]}

    await bot.send_message(ALICE.id, "长" * 4096, reply_markup=keyboard("访" * 21))  # the limits themselves pass
    await bot.send_message(ALICE.id, "<b>4096 visible</b>" + "x" * 4084, parse_mode="HTML")


# ---- valid PTB traffic -------------------------------------------------------------------------------


async def test_send_message_with_keyboard_answers_a_real_message(api: FakeBotApi, bot: Bot) -> None:
    first = await bot.send_message(ALICE.id, "<b>今天</b> 3 visits", parse_mode="HTML", reply_markup=keyboard("v:1"))
    second = await bot.send_message(ALICE.id, "second")
    other = await bot.send_message(-1001234567890, "to the supervisors' group")

    assert (first.message_id, second.message_id, other.message_id) == (1, 2, 1)
    assert first.text == "今天 3 visits"
    assert first.from_user is not None and first.from_user.id == BOT_ID and first.from_user.is_bot
    assert first.chat.type == "private" and other.chat.type == "supergroup"
    assert first.reply_markup == keyboard("v:1")
    assert abs(first.date.timestamp() - time.time()) < 5

    call = api.last("sendMessage", ALICE.id)
    assert call.params == {"chat_id": ALICE.id, "text": "second"}
    assert api.sent("sendMessage", ALICE.id)[0].params["reply_markup"] == {
        "inline_keyboard": [[{"text": "b0", "callback_data": "v:1"}]]
    }
    assert api.texts(ALICE.id) == ["<b>今天</b> 3 visits", "second"]


async def test_edits_follow_the_stored_message(api: FakeBotApi, bot: Bot) -> None:
    sent = await bot.send_message(ALICE.id, "choose", reply_markup=keyboard("a", "b"))
    edited = await bot.edit_message_reply_markup(ALICE.id, sent.message_id, reply_markup=keyboard("a"))
    assert not isinstance(edited, bool) and edited.reply_markup == keyboard("a")

    with pytest.raises(BadRequest, match="not modified"):
        await bot.edit_message_reply_markup(ALICE.id, sent.message_id, reply_markup=keyboard("a"))
    await bot.edit_message_text("done", chat_id=ALICE.id, message_id=sent.message_id)
    stored = api.message(ALICE.id, sent.message_id)
    assert stored is not None and stored["text"] == "done" and "reply_markup" not in stored

    assert await bot.delete_message(ALICE.id, sent.message_id)
    with pytest.raises(BadRequest, match=r"(?i)message to edit not found"):
        await bot.edit_message_text("again", chat_id=ALICE.id, message_id=sent.message_id)
    assert [call.method for call in api.failures()] == ["editMessageReplyMarkup", "editMessageText"]


async def test_commands_are_kept_per_scope_and_language(api: FakeBotApi, bot: Bot) -> None:
    await bot.set_my_commands([BotCommand("start", "开始"), BotCommand("visits", "今日拜访")], language_code="zh")
    await bot.set_my_commands([BotCommand("start", "Start")])
    await bot.set_my_commands([BotCommand("team", "Team")], scope=BotCommandScopeChat(ALICE.id), language_code="zh")

    assert [c.command for c in await bot.get_my_commands(language_code="zh")] == ["start", "visits"]
    assert [c.description for c in await bot.get_my_commands()] == ["Start"]
    assert [c.command for c in await bot.get_my_commands(BotCommandScopeChat(ALICE.id), "zh")] == ["team"]
    await bot.delete_my_commands(language_code="zh")
    assert await bot.get_my_commands(language_code="zh") == ()

    with pytest.raises(BadRequest, match=r"(?i)bot_command_invalid"):
        await bot.set_my_commands([BotCommand("Visits", "uppercase is not allowed")])
    assert len(take_violations(api)) == 1


async def test_photo_upload_then_download(api: FakeBotApi, bot: Bot, tmp_path: Path) -> None:
    content = b"\xff\xd8\xff\xe0 fake jpeg"
    message = await bot.send_photo(ALICE.id, content, caption="门头照", filename="door.jpg")
    largest = message.photo[-1]
    assert largest.file_size == len(content)
    upload = api.last("sendPhoto").params["photo"]
    assert upload["size"] == len(content) and upload["filename"] == "door.jpg" and len(upload["sha256"]) == 64

    file = await bot.get_file(largest.file_id)
    assert file.file_size == len(content) and file.file_unique_id == largest.file_unique_id
    assert bytes(await file.download_as_bytearray()) == content
    target = await file.download_to_drive(tmp_path / "door.jpg")
    assert target.read_bytes() == content
    assert api.texts(ALICE.id) == ["门头照"]


async def test_registered_files_and_the_download_limit(api: FakeBotApi, bot: Bot) -> None:
    file_id, _ = api.add_file(b"%PDF-1.7 report", file_unique_id="AgAD-report")
    file = await bot.get_file(file_id)
    assert (file.file_unique_id, file.file_size) == ("AgAD-report", 15)
    buffer = bytearray()
    await file.download_as_bytearray(buffer)
    assert bytes(buffer) == b"%PDF-1.7 report"

    big_id, _ = api.add_file_of_size(MAX_DOWNLOAD_SIZE + 1)
    with pytest.raises(BadRequest, match=r"(?i)file is too big"):
        await bot.get_file(big_id)
    edge_id, _ = api.add_file_of_size(MAX_DOWNLOAD_SIZE)
    assert (await bot.get_file(edge_id)).file_size == MAX_DOWNLOAD_SIZE
    with pytest.raises(BadRequest, match=r"(?i)invalid file_id"):
        await bot.get_file("no-such-file")


async def test_more_answers_are_valid_bot_api_objects(api: FakeBotApi, bot: Bot) -> None:
    assert bot.bot.username == "fieldbot_demo_bot" and bot.bot.can_join_groups
    document = await bot.send_document(ALICE.id, b"a,b\n1,2\n", filename="visits.csv")
    assert document.document is not None and document.document.file_name == "visits.csv"
    assert document.document.mime_type == "text/csv"
    voice = await bot.send_voice(ALICE.id, b"OggS", duration=3)
    assert voice.voice is not None and voice.voice.duration in (3, dtm.timedelta(seconds=3))
    location = await bot.send_location(ALICE.id, 31.23, 121.47)
    assert location.location is not None and location.location.latitude == 31.23
    album = await bot.send_media_group(ALICE.id, [InputMediaPhoto(b"1", caption="a"), InputMediaPhoto(b"2")])
    assert len({m.media_group_id for m in album}) == 1 and album[0].caption == "a"
    copied = await bot.copy_message(-1001, ALICE.id, document.message_id)
    forwarded = await bot.forward_message(-1001, ALICE.id, document.message_id)
    assert copied.message_id == 1 and forwarded.forward_origin is not None
    assert await bot.send_chat_action(ALICE.id, "typing")
    assert await bot.answer_callback_query("42", text="已签到")
    chat = await bot.get_chat(ALICE.id)
    assert chat.id == ALICE.id and chat.type == "private"
    info = await bot.get_webhook_info()
    assert info.url == "" and info.pending_update_count == 0
    assert await bot.set_chat_menu_button()
    assert await bot.log_out() and await bot.close()
    assert api.texts(ALICE.id) == ["a"]


# ---- updates ---------------------------------------------------------------------------------------


async def test_get_updates_honours_offset(api: FakeBotApi, bot: Bot) -> None:
    factory = UpdateFactory()
    for text in ("one", "two", "three"):
        api.push_update(factory.text(ALICE, text))
    first = await bot.get_updates(timeout=0)
    assert [u.update_id for u in first] == [1, 2, 3]
    assert [u.update_id for u in await bot.get_updates(offset=3, timeout=0)] == [3]
    assert await bot.get_updates(offset=4, timeout=0) == ()
    assert api.pending_updates == []

    await bot.set_webhook("https://example.invalid/hook")
    with pytest.raises(Conflict, match="webhook is active"):
        await bot.get_updates()
    await bot.delete_webhook()


async def test_application_polls_and_replies(api: FakeBotApi) -> None:
    replied = asyncio.Event()

    async def start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.effective_message is not None
        await update.effective_message.reply_text("欢迎", reply_markup=keyboard("go"))
        replied.set()

    app = ApplicationBuilder().token(TOKEN).request(FakeRequest(api)).get_updates_request(FakeRequest(api)).build()
    app.add_handler(CommandHandler("start", start))
    async with app:
        await app.start()
        assert app.updater is not None
        await app.updater.start_polling(poll_interval=0, timeout=dtm.timedelta(seconds=1))
        api.push_update(UpdateFactory(api).command(ALICE, "/start"))
        await asyncio.wait_for(replied.wait(), 3)
        await app.updater.stop()
        await app.stop()
    assert api.texts(ALICE.id) == ["欢迎"]
    assert [c.method for c in api.calls][:2] == ["getMe", "deleteWebhook"]


# ---- injected failures -----------------------------------------------------------------------------


async def test_fail_next_retry_after(api: FakeBotApi, bot: Bot) -> None:
    api.fail_next("sendMessage", retry_after=3)
    with pytest.raises(RetryAfter) as caught:
        await bot.send_message(ALICE.id, "alert")
    assert caught.value.retry_after in (3, dtm.timedelta(seconds=3))
    await bot.send_message(ALICE.id, "alert")
    attempts = [(c.method, c.failed) for c in api.calls if c.method == "sendMessage"]
    assert attempts == [("sendMessage", True), ("sendMessage", False)]
    assert api.texts(ALICE.id) == ["alert"]


async def test_fail_next_other_statuses_and_network(api: FakeBotApi, bot: Bot) -> None:
    api.fail_next(status=403, times=2)
    api.fail_next("sendMessage", network=True)
    for _ in range(2):
        with pytest.raises(Forbidden, match="blocked by the user"):
            await bot.send_message(ALICE.id, "x")
    with pytest.raises(NetworkError):
        await bot.send_message(ALICE.id, "x")
    await bot.send_message(ALICE.id, "x")
    assert [c.failed for c in api.calls if c.method == "sendMessage"] == [True, True, True, False]


async def test_offline_raises_network_error_until_back(api: FakeBotApi, bot: Bot) -> None:
    api.set_offline(True)
    with pytest.raises(NetworkError):
        await bot.send_message(ALICE.id, "x")
    with pytest.raises(NetworkError):
        await bot.get_me()
    api.set_offline(False)
    await bot.send_message(ALICE.id, "x")
    assert len(api.failures()) == 2


# ---- the HTTP variant ------------------------------------------------------------------------------


async def test_http_server_serves_a_real_bot() -> None:
    api = FakeBotApi()
    factory = UpdateFactory(api)
    with FakeBotApiServer(api) as server:
        assert server.base_url.startswith("http://127.0.0.1:") and server.base_url.endswith("/bot")
        async with Bot(TOKEN, base_url=server.base_url, base_file_url=server.file_url) as bot:
            sent = await bot.send_message(ALICE.id, "你好\nline 2", reply_markup=keyboard("ok"))
            assert sent.text == "你好\nline 2" and sent.reply_markup == keyboard("ok")
            document = await bot.send_document(ALICE.id, b"report\r\n", filename="报告.txt", caption="a\nb")
            assert document.document is not None
            file = await bot.get_file(document.document.file_id)
            assert bytes(await file.download_as_bytearray()) == b"report\r\n"

            async def press_later() -> None:
                await asyncio.sleep(0.1)
                api.push_update(factory.button(ALICE, "ok"))

            started = time.monotonic()
            updates, _ = await asyncio.gather(bot.get_updates(timeout=5), press_later())
            assert time.monotonic() - started < 1.5
            assert updates[0].callback_query is not None and updates[0].callback_query.data == "ok"

            api.fail_next(network=True)
            with pytest.raises(NetworkError):
                await bot.send_message(ALICE.id, "dropped")
    assert api.violations == []
    assert api.last("sendDocument").params["caption"] == "a\nb"


# ---- the update factories --------------------------------------------------------------------------


def test_factory_updates_are_valid_and_deserialise() -> None:
    factory = UpdateFactory(clock=lambda: 1_790_000_000)
    bot = Bot(TOKEN)
    schema = load_schema()
    updates = [
        factory.command(ALICE, "/start", "invite-123"),
        factory.text(ALICE, "hello"),
        factory.button(ALICE, "visit:7"),
        factory.location(ALICE, 31.2, 121.4, live_period=900),
        factory.edited_live_location(ALICE, 31.21, 121.41),
        factory.photo(ALICE, "AgAC-photo", "AQAD-photo", forwarded=True, size=90_000),
        factory.voice(ALICE, "AwAC-voice", "AQAD-voice", 7, 20_000),
        factory.audio(ALICE, "CQAC-audio", "AQAD-audio", 60, 900_000),
        factory.document(ALICE, "BQAC-doc", "AQAD-doc", "IMG_1.jpg", "image/jpeg", 3_000_000),
        factory.sticker(ALICE),
        factory.contact(ALICE, "+8613800000000"),
    ]
    for data in updates:
        schema.validate("Update", data)
    ids = [u["update_id"] for u in updates]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)

    command = to_update(updates[0], bot)
    assert command.message is not None and command.message.text == "/start invite-123"
    assert command.message.entities[0].type == "bot_command" and command.message.entities[0].length == 6
    live = to_update(updates[4], bot)
    assert live.edited_message is not None and live.edited_message.location is not None
    assert live.edited_message.message_id == updates[3]["message"]["message_id"]
    photo = to_update(updates[5], bot).message
    assert photo is not None and photo.forward_origin is not None and photo.photo[-1].file_id == "AgAC-photo"
    contact = to_update(updates[10], bot).message
    assert contact is not None and contact.contact is not None and contact.contact.user_id == ALICE.id
    assert to_update(updates[2], bot).callback_query is not None


async def test_factory_bound_to_the_fake_drives_an_application(api: FakeBotApi) -> None:
    factory = UpdateFactory(api)

    async def start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.effective_chat is not None
        await context.bot.send_message(update.effective_chat.id, "今天的拜访", reply_markup=keyboard("v:1", "v:2"))

    async def pressed(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        query = update.callback_query
        assert query is not None
        await query.answer("ok")
        await query.edit_message_text(f"chosen {query.data}")

    app: Application[Any, Any, Any, Any, Any, Any] = (
        ApplicationBuilder().token(TOKEN).request(FakeRequest(api)).get_updates_request(FakeRequest(api)).build()
    )
    app.add_handler(CommandHandler("start", start))
    app.add_handler(CallbackQueryHandler(pressed))
    async with app:
        await app.process_update(to_update(factory.command(ALICE, "/start"), app.bot))
        menu = api.last("sendMessage", ALICE.id).result
        assert menu["message_id"] == 2  # the user's /start was message 1 in the same chat
        with pytest.raises(ValueError, match="offers no button"):
            factory.button(ALICE, "v:3")
        await app.process_update(to_update(factory.button(ALICE, "v:2"), app.bot))

        photo = factory.photo(ALICE, "AgAC-door", "AQAD-door", size=1234)
        file = await app.bot.get_file(photo["message"]["photo"][-1]["file_id"])
        assert file.file_size == 1234
        copied = await app.bot.copy_message(-100777, ALICE.id, photo["message"]["message_id"])
        assert copied.message_id == 1
    stored = api.message(ALICE.id, menu["message_id"])
    assert stored is not None and stored["text"] == "chosen v:2"
    assert api.last("answerCallbackQuery").params["text"] == "ok"

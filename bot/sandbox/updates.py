"""Factories for Bot API update dicts, as Telegram would deliver them to fieldbot.

``UpdateFactory`` builds valid ``Update`` JSON (checked against the derived schema) for the things a
collector does on a phone: commands, text, button presses, (live) locations, photos, voice notes,
audio, documents, stickers and contacts. ``FakeUser`` is the person sending them; ``to_update`` turns
a dict into a ``telegram.Update`` bound to a bot, ready for ``Application.process_update``.

Bound to a ``FakeBotApi`` (``UpdateFactory(api)``), the factory shares the chat's message ids with the
fake server (as in a real private chat), registers incoming messages and file ids with it (so the
bot can copy, forward or download them), and presses only buttons that exist on the bot's message.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from telegram import Bot, Update

from bot.sandbox.botapi import BOT_ID, BOT_USER, FakeBotApi, load_schema

__all__ = ["FakeUser", "UpdateFactory", "group_chat", "to_update"]


@dataclass(frozen=True)
class FakeUser:
    """A Telegram user talking to the bot in a private chat."""

    id: int
    first_name: str
    language_code: str | None = "zh-hans"
    username: str | None = None
    last_name: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The Bot API ``User`` object."""
        user: dict[str, Any] = {"id": self.id, "is_bot": False, "first_name": self.first_name}
        for key in ("last_name", "username", "language_code"):
            if getattr(self, key) is not None:
                user[key] = getattr(self, key)
        return user

    def chat(self) -> dict[str, Any]:
        """The Bot API ``Chat`` object of the user's private chat with the bot."""
        chat: dict[str, Any] = {"id": self.id, "type": "private", "first_name": self.first_name}
        for key in ("last_name", "username"):
            if getattr(self, key) is not None:
                chat[key] = getattr(self, key)
        return chat


def group_chat(chat_id: int, title: str = "Team", *, kind: str = "supergroup") -> dict[str, Any]:
    """The Bot API ``Chat`` object of a group (``kind``: group, supergroup or channel) with the bot in it."""
    return {"id": chat_id, "type": kind, "title": title}


def to_update(data: dict[str, Any], bot: Bot) -> Update:
    """``telegram.Update.de_json`` for a factory-made dict."""
    update = Update.de_json(data, bot)
    if update is None:  # pragma: no cover - de_json returns None only for empty data
        raise ValueError("empty update")
    return update


class UpdateFactory:
    """Builds Bot API update dicts with increasing ``update_id`` and per-chat ``message_id``.

    ``clock`` gives the ``date`` of messages (unix seconds): by default the bound ``FakeBotApi``'s
    clock, else ``time.time``, so messages are dated "now" as Telegram dates them.
    """

    def __init__(
        self,
        api: FakeBotApi | None = None,
        *,
        first_update_id: int = 1,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self.api = api
        self.clock: Callable[[], float] = clock or (api.clock if api is not None else time.time)
        self._update_ids = itertools.count(first_update_id)
        self._callback_ids = itertools.count(1)
        self._message_ids: dict[int, int] = {}
        self._live_locations: dict[int, dict[str, Any]] = {}

    # ---- building blocks ---------------------------------------------------------------------

    def now(self) -> int:
        return int(self.clock())

    def next_message_id(self, chat_id: int) -> int:
        if self.api is not None:
            return self.api.next_message_id(chat_id)
        self._message_ids[chat_id] = self._message_ids.get(chat_id, 0) + 1
        return self._message_ids[chat_id]

    def message(
        self,
        user: FakeUser,
        content: dict[str, Any],
        *,
        forwarded: bool | FakeUser = False,
        date: int | None = None,
        chat: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """A ``Message`` from ``user`` in their private chat, with the given content fields.

        ``forwarded=True`` marks it forwarded from the user's own earlier message (an hour older);
        pass a ``FakeUser`` to mark it forwarded from that person. ``chat`` (see :func:`group_chat`)
        sends it in a group instead.
        """
        date = self.now() if date is None else date
        chat = chat or user.chat()
        message: dict[str, Any] = {
            "message_id": self.next_message_id(chat["id"]),
            "from": user.to_dict(),
            "chat": chat,
            "date": date,
            **content,
        }
        if forwarded:
            origin = user if forwarded is True else forwarded
            assert isinstance(origin, FakeUser)
            message["forward_origin"] = {"type": "user", "date": date - 3600, "sender_user": origin.to_dict()}
        return message

    def wrap(self, kind: str, payload: dict[str, Any]) -> dict[str, Any]:
        """An ``Update`` with a fresh ``update_id`` carrying ``payload`` under ``kind``; validated."""
        update = {"update_id": next(self._update_ids), kind: payload}
        load_schema().validate("Update", update)
        if self.api is not None and kind in ("message", "edited_message"):
            self.api.remember_message(payload)
        return update

    def _file(self, file_id: str, file_unique_id: str, size: int, kind: str) -> None:
        if self.api is not None:
            self.api.register_file(file_id, file_unique_id, size=size, kind=kind)

    # ---- messages ------------------------------------------------------------------------------

    def text(self, user: FakeUser, text: str, *, forwarded: bool | FakeUser = False,
             chat: dict[str, Any] | None = None) -> dict[str, Any]:
        return self.wrap("message", self.message(user, {"text": text}, forwarded=forwarded, chat=chat))

    def command(self, user: FakeUser, command: str = "/start", args: str | None = None, *,
                chat: dict[str, Any] | None = None) -> dict[str, Any]:
        """``/command args`` with its ``bot_command`` entity (``command`` may omit the slash)."""
        command = command if command.startswith("/") else f"/{command}"
        text = f"{command} {args}" if args else command
        entity = {"type": "bot_command", "offset": 0, "length": _utf16_len(command)}
        return self.wrap("message", self.message(user, {"text": text, "entities": [entity]}, chat=chat))

    def location(
        self,
        user: FakeUser,
        latitude: float,
        longitude: float,
        *,
        forwarded: bool | FakeUser = False,
        live_period: int | None = None,
        horizontal_accuracy: float | None = None,
        date: int | None = None,
    ) -> dict[str, Any]:
        """A location; with ``live_period`` a live location that ``edited_live_location`` moves."""
        location = _location(latitude, longitude, live_period, horizontal_accuracy, None)
        message = self.message(user, {"location": location}, forwarded=forwarded, date=date)
        if live_period is not None:
            self._live_locations[user.id] = message
        return self.wrap("message", message)

    def edited_live_location(
        self,
        user: FakeUser,
        latitude: float,
        longitude: float,
        *,
        message_id: int | None = None,
        heading: int | None = None,
        horizontal_accuracy: float | None = None,
        edit_date: int | None = None,
    ) -> dict[str, Any]:
        """The ``edited_message`` Telegram sends as a live location moves.

        Without ``message_id`` it edits the user's latest live location made by this factory.
        """
        original = self._live_locations.get(user.id)
        if message_id is not None and (original is None or original["message_id"] != message_id):
            original = None
            if self.api is not None:
                original = self.api.message(user.id, message_id)
            if original is None:
                raise ValueError(f"no live location message {message_id} in chat {user.id}")
        if original is None:
            raise ValueError(f"{user.first_name} has no live location to edit; send location(live_period=...)")
        live_period = original["location"].get("live_period")
        message = dict(original)
        message["location"] = _location(latitude, longitude, live_period, horizontal_accuracy, heading)
        message["edit_date"] = self.now() if edit_date is None else edit_date
        self._live_locations[user.id] = message
        return self.wrap("edited_message", message)

    def photo(
        self,
        user: FakeUser,
        file_id: str,
        file_unique_id: str,
        *,
        forwarded: bool | FakeUser = False,
        size: int = 180_000,
        width: int = 1280,
        height: int = 960,
        caption: str | None = None,
    ) -> dict[str, Any]:
        """A compressed photo: Telegram sends several sizes, the largest (the given ids) last."""
        thumb_w, thumb_h = _fit(width, height, 90)
        mid_w, mid_h = _fit(width, height, 320)
        sizes = [
            _photo_size(f"{file_id}-s", f"{file_unique_id}-s", thumb_w, thumb_h, max(1, size // 60)),
            _photo_size(f"{file_id}-m", f"{file_unique_id}-m", mid_w, mid_h, max(1, size // 8)),
            _photo_size(file_id, file_unique_id, width, height, size),
        ]
        for item in sizes:
            self._file(item["file_id"], item["file_unique_id"], item["file_size"], "photo")
        content: dict[str, Any] = {"photo": sizes}
        if caption is not None:
            content["caption"] = caption
        return self.wrap("message", self.message(user, content, forwarded=forwarded))

    def voice(
        self,
        user: FakeUser,
        file_id: str,
        file_unique_id: str,
        duration: int = 5,
        size: int = 12_000,
        *,
        forwarded: bool | FakeUser = False,
    ) -> dict[str, Any]:
        self._file(file_id, file_unique_id, size, "voice")
        voice = {
            "file_id": file_id,
            "file_unique_id": file_unique_id,
            "duration": duration,
            "mime_type": "audio/ogg",
            "file_size": size,
        }
        return self.wrap("message", self.message(user, {"voice": voice}, forwarded=forwarded))

    def audio(
        self,
        user: FakeUser,
        file_id: str,
        file_unique_id: str,
        duration: int = 30,
        size: int = 480_000,
        *,
        file_name: str | None = "recording.m4a",
        mime_type: str = "audio/mp4",
        title: str | None = None,
        performer: str | None = None,
        forwarded: bool | FakeUser = False,
    ) -> dict[str, Any]:
        """An audio file (a phone's recorder app shares these, not voice notes)."""
        self._file(file_id, file_unique_id, size, "audio")
        audio: dict[str, Any] = {
            "file_id": file_id,
            "file_unique_id": file_unique_id,
            "duration": duration,
            "mime_type": mime_type,
            "file_size": size,
        }
        for key, value in (("file_name", file_name), ("title", title), ("performer", performer)):
            if value is not None:
                audio[key] = value
        return self.wrap("message", self.message(user, {"audio": audio}, forwarded=forwarded))

    def document(
        self,
        user: FakeUser,
        file_id: str,
        file_unique_id: str,
        file_name: str = "photo.jpg",
        mime_type: str = "image/jpeg",
        size: int = 2_400_000,
        forwarded: bool | FakeUser = False,
        *,
        caption: str | None = None,
    ) -> dict[str, Any]:
        """A file sent as a document (e.g. an uncompressed photo that keeps its metadata)."""
        self._file(file_id, file_unique_id, size, "document")
        document = {
            "file_id": file_id,
            "file_unique_id": file_unique_id,
            "file_name": file_name,
            "mime_type": mime_type,
            "file_size": size,
        }
        content: dict[str, Any] = {"document": document}
        if caption is not None:
            content["caption"] = caption
        return self.wrap("message", self.message(user, content, forwarded=forwarded))

    def sticker(
        self,
        user: FakeUser,
        file_id: str = "CAACAgIAAxkBAAIBsticker",
        file_unique_id: str = "AgADsticker",
        *,
        emoji: str = "👍",
        set_name: str | None = None,
        size: int = 24_000,
    ) -> dict[str, Any]:
        self._file(file_id, file_unique_id, size, "sticker")
        sticker: dict[str, Any] = {
            "file_id": file_id,
            "file_unique_id": file_unique_id,
            "type": "regular",
            "width": 512,
            "height": 512,
            "is_animated": False,
            "is_video": False,
            "emoji": emoji,
            "file_size": size,
        }
        if set_name is not None:
            sticker["set_name"] = set_name
        return self.wrap("message", self.message(user, {"sticker": sticker}))

    def contact(
        self,
        user: FakeUser,
        phone_number: str,
        *,
        contact_user: FakeUser | None = None,
        first_name: str | None = None,
        last_name: str | None = None,
    ) -> dict[str, Any]:
        """A shared contact.

        By default the user's own (what a ``request_contact`` button sends: ``user_id`` is theirs);
        ``contact_user`` shares another Telegram user; ``first_name`` alone, a phone-book entry.
        """
        owner = contact_user if contact_user is not None else (user if first_name is None else None)
        contact: dict[str, Any] = {"phone_number": phone_number}
        if owner is not None:
            contact.update(first_name=first_name or owner.first_name, user_id=owner.id)
            last_name = last_name if last_name is not None else owner.last_name
        else:
            contact["first_name"] = first_name
        if last_name is not None:
            contact["last_name"] = last_name
        return self.wrap("message", self.message(user, {"contact": contact}))

    # ---- button presses -------------------------------------------------------------------------

    def button(
        self,
        user: FakeUser,
        data: str,
        *,
        message_id: int | None = None,
        message_text: str = "…",
        forge: bool = False,
        chat: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """A ``callback_query``: ``user`` pressed the inline button carrying ``data``.

        ``forge=True`` makes up the pressed message whatever the bot sent: a forged, replayed or
        long-stale button, as a modified client could send.

        Bound to a ``FakeBotApi``, the pressed message is the bot's stored message ``message_id``
        (default: the bot's latest message in the chat with an inline keyboard), and ``data`` must
        be on its keyboard. Otherwise a bot message with ``message_text`` and that button is made up.
        ``chat`` (see :func:`group_chat`): the button is on a bot message in that group.
        """
        chat = chat or user.chat()
        message = None if forge else self._bot_message(chat["id"], message_id)
        if message is not None:
            offered = _callback_data(message)
            if data not in offered:
                raise ValueError(f"message {message['message_id']} offers no button {data!r}; it has {offered}")
        else:
            message = {
                "message_id": message_id if message_id is not None else self.next_message_id(chat["id"]),
                "from": dict(BOT_USER),
                "chat": chat,
                "date": self.now(),
                "text": message_text,
                "reply_markup": {"inline_keyboard": [[{"text": message_text, "callback_data": data}]]},
            }
            if self.api is not None:
                self.api.remember_message(message)
        query = {
            "id": str(4_000_000_000_000_000 + next(self._callback_ids)),
            "from": user.to_dict(),
            "message": message,
            "chat_instance": str(-(10**18) - user.id),
            "data": data,
        }
        return self.wrap("callback_query", query)

    def _bot_message(self, chat_id: int, message_id: int | None) -> dict[str, Any] | None:
        if self.api is None:
            return None
        if message_id is not None:
            stored = self.api.message(chat_id, message_id)
            if stored is None:
                raise ValueError(f"the bot has no message {message_id} in chat {chat_id}")
            return stored
        bot_messages = [m for m in self.api.chat_messages(chat_id) if m.get("from", {}).get("id") == BOT_ID]
        with_buttons = [m for m in bot_messages if "reply_markup" in m]
        return with_buttons[-1] if with_buttons else None


def _callback_data(message: dict[str, Any]) -> list[str]:
    rows = message.get("reply_markup", {}).get("inline_keyboard", [])
    return [button["callback_data"] for row in rows for button in row if "callback_data" in button]


def _location(
    latitude: float,
    longitude: float,
    live_period: int | None,
    horizontal_accuracy: float | None,
    heading: int | None,
) -> dict[str, Any]:
    location: dict[str, Any] = {"latitude": latitude, "longitude": longitude}
    for key, value in (
        ("live_period", live_period),
        ("horizontal_accuracy", horizontal_accuracy),
        ("heading", heading),
    ):
        if value is not None:
            location[key] = value
    return location


def _photo_size(file_id: str, file_unique_id: str, width: int, height: int, size: int) -> dict[str, Any]:
    return {"file_id": file_id, "file_unique_id": file_unique_id, "width": width, "height": height, "file_size": size}


def _fit(width: int, height: int, longest: int) -> tuple[int, int]:
    scale = longest / max(width, height, 1)
    return max(1, round(width * scale)), max(1, round(height * scale))


def _utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2

"""An in-process stand-in for the Telegram Bot API, for tests and the ``fieldbot demo`` command.

This module holds:

* ``FakeBotApi``: the fake server's state (bot identity, chats' messages, files, commands, the update
  queue). Every call is checked against the schema derived from the official reference
  (``botapi_schema.json``, written by ``tools/derive_botapi_schema.py``) and against the limits the
  real API enforces; a bad call gets the Bot API's error answer and is listed in ``violations``.
  Every call, good or bad, is recorded in ``calls`` with its parameters decoded. Failures (429,
  403, network errors, being offline) can be injected for retry logic tests. An optional flood
  control (``FloodControl``, off by default) answers 429 with ``retry_after`` the way Telegram does
  when a bot sends more than ~30 messages a second, or more than one a second to a private chat.
* ``FakeRequest``: a ``telegram.request.BaseRequest`` that hands PTB's requests to a ``FakeBotApi``
  in-process, exactly as ``HTTPXRequest`` would put them on the wire (string-encoded form fields plus
  multipart files), including file downloads.
* ``BotApiSchema``, ``ApiCall``, ``ApiReply``, ``Upload``, ``StoredFile``, ``BotApiError``: the pieces
  those two share with ``bot.sandbox.http_server`` (the same fake behind a real HTTP socket).

Deliberate strictness beyond the real API: unknown parameters and unknown fields inside JSON objects
are rejected (Telegram silently ignores them), and unknown methods are violations. Known
simplifications: MarkdownV2 is not parsed (its raw length counts), HTML is parsed only to check
tags and measure the text (no entities are computed), and any chat id is a reachable chat.
"""

from __future__ import annotations

import asyncio
import base64
import copy
import functools
import hashlib
import html
import json
import math
import mimetypes
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Final
from urllib.parse import unquote, urlsplit

from telegram.error import NetworkError
from telegram.request import BaseRequest, RequestData

__all__ = [
    "BOT_ID",
    "BOT_USER",
    "MAX_DOWNLOAD_SIZE",
    "ApiCall",
    "ApiReply",
    "BotApiError",
    "BotApiSchema",
    "FakeBotApi",
    "FakeRequest",
    "StoredFile",
    "Upload",
    "load_schema",
]

SCHEMA_PATH: Final = Path(__file__).with_name("botapi_schema.json")

BOT_ID: Final = 7000000001
BOT_USER: Final[dict[str, Any]] = {
    "id": BOT_ID,
    "is_bot": True,
    "first_name": "fieldbot",
    "username": "fieldbot_demo_bot",
}
_GET_ME_EXTRA: Final[dict[str, bool]] = {
    "can_join_groups": True,
    "can_read_all_group_messages": False,
    "supports_inline_queries": False,
    "can_connect_to_business": False,
    "has_main_web_app": False,
    "has_topics_enabled": False,
    "allows_users_to_create_topics": False,
}

MAX_DOWNLOAD_SIZE: Final = 20 * 1024 * 1024
MAX_TEXT_LENGTH: Final = 4096
MAX_CAPTION_LENGTH: Final = 1024
MAX_CALLBACK_DATA_BYTES: Final = 64
MAX_CALLBACK_ANSWER_LENGTH: Final = 200
MAX_COMMANDS: Final = 100
LIVE_PERIOD_FOREVER: Final = 0x7FFFFFFF  # a live location edited until it is stopped
LONG_POLL_CAP: Final = 2.0
"""Longest a getUpdates call waits for updates, whatever its ``timeout`` asks (keeps tests fast)."""

_NOT_MODIFIED: Final = (
    "Bad Request: message is not modified: specified new message content and reply markup are "
    "exactly the same as a current content and reply markup of the message"
)
_CHAT_ACTIONS: Final = frozenset(
    {
        "typing", "upload_photo", "record_video", "upload_video", "record_voice", "upload_voice",
        "upload_document", "choose_sticker", "find_location", "record_video_note", "upload_video_note",
    }
)  # fmt: skip
_PARSE_MODES: Final = frozenset({"html", "markdown", "markdownv2"})
_HTML_TAGS: Final = frozenset(
    {
        "a", "b", "strong", "i", "em", "u", "ins", "s", "strike", "del", "span", "tg-spoiler",
        "tg-emoji", "tg-time", "code", "pre", "blockquote",
    }
)  # fmt: skip
_HTML_ENTITY = re.compile(r"&(lt|gt|amp|quot|#\d{1,7}|#x[0-9a-fA-F]{1,6});")
_BOT_COMMAND = re.compile(r"[a-z0-9_]{1,32}")
_TOKEN = re.compile(r"\d+:[A-Za-z0-9_-]+")
_INT = re.compile(r"-?\d+")
_STATUS_TEXT: Final[dict[int, str]] = {
    400: "Bad Request: chat not found",
    403: "Forbidden: bot was blocked by the user",
    409: "Conflict: terminated by other getUpdates request; make sure that only one bot instance is running",
    500: "Internal Server Error",
    502: "Bad Gateway",
}
_MEDIA_KINDS: Final[dict[str, tuple[str, str, str]]] = {
    # method parameter -> (file_id prefix, file_path folder, default extension)
    "photo": ("AgACAgIAAxkBAA", "photos", "jpg"),
    "document": ("BQACAgIAAxkBAA", "documents", "bin"),
    "voice": ("AwACAgIAAxkBAA", "voice", "oga"),
    "audio": ("CQACAgIAAxkBAA", "music", "mp3"),
    "video": ("BAACAgIAAxkBAA", "videos", "mp4"),
    "animation": ("CgACAgIAAxkBAA", "animations", "mp4"),
    "sticker": ("CAACAgIAAxkBAA", "stickers", "webp"),
    "video_note": ("DQACAgIAAxkBAA", "video_notes", "mp4"),
}
_SEND_MEDIA_METHODS: Final[dict[str, str]] = {
    "sendPhoto": "photo",
    "sendDocument": "document",
    "sendVoice": "voice",
    "sendAudio": "audio",
    "sendVideo": "video",
    "sendAnimation": "animation",
    "sendSticker": "sticker",
    "sendVideoNote": "video_note",
}
_MESSAGE_CONTENT_KEYS: Final = (
    "text", "entities", "caption", "caption_entities", "photo", "document", "voice", "audio", "video",
    "animation", "sticker", "video_note", "location", "contact", "venue", "poll", "dice",
)  # fmt: skip


# --------------------------------------------------------------------------------------------------
# Small value types
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Upload:
    """One file part of a multipart request (what PTB's ``InputFile`` becomes on the wire)."""

    filename: str
    content: bytes
    mime_type: str = "application/octet-stream"

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.content).hexdigest()

    def describe(self) -> dict[str, Any]:
        """How the upload appears in ``ApiCall.params``: no bytes, just enough to compare."""
        return {"filename": self.filename, "size": len(self.content), "sha256": self.sha256}


@dataclass
class ApiCall:
    """One request the fake received; ``failed`` calls carry the error description."""

    method: str
    params: dict[str, Any]
    failed: bool = False
    error: str | None = None
    result: Any = None


@dataclass(frozen=True)
class ApiReply:
    """The HTTP status and JSON body the fake answers with."""

    status: int
    body: dict[str, Any]

    @property
    def payload(self) -> bytes:
        return json.dumps(self.body, ensure_ascii=False).encode()

    @classmethod
    def success(cls, result: Any) -> ApiReply:
        return cls(200, {"ok": True, "result": result})

    @classmethod
    def error(cls, status: int, description: str, parameters: dict[str, Any] | None = None) -> ApiReply:
        body: dict[str, Any] = {"ok": False, "error_code": status, "description": description}
        if parameters:
            body["parameters"] = parameters
        return cls(status, body)


@dataclass
class StoredFile:
    """A file the fake can hand out through getFile; ``content`` None means zeros of ``size`` bytes."""

    file_id: str
    file_unique_id: str
    size: int
    file_path: str
    content: bytes | None = None

    def read(self) -> bytes:
        return self.content if self.content is not None else bytes(self.size)


class BotApiError(Exception):
    """An error answer of the Bot API, raised inside the fake and turned into an ``ApiReply``."""

    def __init__(self, status: int, description: str, parameters: dict[str, Any] | None = None) -> None:
        super().__init__(description)
        self.status = status
        self.description = description
        self.parameters = parameters

    def reply(self) -> ApiReply:
        return ApiReply.error(self.status, self.description, self.parameters)


def _bad(description: str) -> BotApiError:
    return BotApiError(400, f"Bad Request: {description}")


@dataclass
class _Injection:
    method: str | None
    remaining: int
    status: int
    retry_after: int | None
    network: bool
    description: str


# --------------------------------------------------------------------------------------------------
# Schema and validation
# --------------------------------------------------------------------------------------------------


class _Mismatch(Exception):
    """A value does not have the shape of a type (so a union may still accept another member)."""

    def __init__(self, path: str, message: str, *, weak: bool = False) -> None:
        super().__init__(f"{path}: {message}")
        self.path = path
        self.message = message
        # Deeper mismatches explain a failed union best; a wrong discriminator explains nothing.
        self.depth = -1 if weak else path.count(".") + path.count("[")


class BotApiSchema:
    """The derived Bot API schema: ``methods[name]["params"]``, ``types[name]["fields"|"subtypes"]``."""

    def __init__(self, data: Mapping[str, Any]) -> None:
        self.version: str = str(data.get("version", ""))
        self.methods: dict[str, dict[str, Any]] = dict(data["methods"])
        self.types: dict[str, dict[str, Any]] = dict(data["types"])
        self._by_lower = {name.lower(): name for name in self.methods}

    def canonical_method(self, name: str) -> str | None:
        """Bot API method names are case-insensitive; return the documented spelling, if any."""
        return self._by_lower.get(name.lower())

    def params(self, method: str) -> dict[str, dict[str, Any]]:
        return dict(self.methods[method]["params"])

    def returns(self, method: str) -> list[str]:
        return list(self.methods[method].get("returns", []))

    def validate(self, type_name: str, value: Any) -> None:
        """Raise ``ValueError`` if ``value`` (plain JSON data) is not a valid ``type_name`` object."""
        try:
            _Decoder(self, {}).value(value, [type_name], type_name, top=False)
        except _Mismatch as exc:
            raise ValueError(str(exc)) from exc
        except BotApiError as exc:
            raise ValueError(exc.description) from exc

    def synthesize(self, type_name: str, depth: int = 0) -> Any:
        """A minimal valid value of a type: required fields only, with neutral placeholders."""
        if type_name.startswith("Array of "):
            return []
        scalar = {"Integer": 0, "Float": 0.0, "Boolean": True, "True": True, "String": ""}
        if type_name in scalar:
            return scalar[type_name]
        spec = self.types.get(type_name)
        if spec is None or depth > 8:
            return {}
        if spec.get("subtypes"):
            return self.synthesize(spec["subtypes"][0], depth + 1)
        obj: dict[str, Any] = {}
        for name, fspec in spec["fields"].items():
            if fspec["required"]:
                obj[name] = fspec.get("const", self.synthesize(fspec["types"][0], depth + 1))
        return obj


@functools.cache
def load_schema() -> BotApiSchema:
    """The schema shipped next to this module (never the reference under ``../shared``)."""
    with SCHEMA_PATH.open(encoding="utf-8") as fh:
        return BotApiSchema(json.load(fh))


class _Decoder:
    """Decodes one request's parameters into Python values while checking them against the schema.

    Top-level parameters may arrive as strings (form fields: what PTB sends), in which case numbers,
    booleans and JSON objects are decoded from them, as the real server does. Inside JSON objects the
    values must already have their JSON types.
    """

    def __init__(self, schema: BotApiSchema, files: Mapping[str, Upload]) -> None:
        self.schema = schema
        self.files = files
        self.used_files: set[str] = set()
        self.uploads: dict[str, Upload] = {}

    def params(self, method: str, raw: Mapping[str, Any]) -> dict[str, Any]:
        spec = self.schema.params(method)
        for name in raw:
            if name not in spec:
                raise _bad(f'unknown parameter "{name}" for method {method}')
        decoded: dict[str, Any] = {}
        for name, pspec in spec.items():
            value = raw.get(name)
            if value is None and name in self.files and "InputFile" in pspec["types"]:
                value = self.files[name]
                self.used_files.add(name)
            if value is None:
                if pspec["required"]:
                    raise _bad(f"parameter {name} is required")
                continue
            try:
                decoded[name] = self.value(value, pspec["types"], name, top=True)
            except _Mismatch as exc:
                raise _bad(f"can't parse parameter {exc.path}: {exc.message}") from None
        stray = set(self.files) - self.used_files
        if stray:
            raise _bad(f"unexpected file part {sorted(stray)[0]!r}: not referenced by any parameter")
        return decoded

    def value(self, value: Any, types: list[str], path: str, *, top: bool) -> Any:
        if len(types) == 1:
            return self.one(value, types[0], path, top=top)
        if top and isinstance(value, str) and not set(types) & _SCALARS:
            value = self._json(value, path)  # a union of object types: decode the form field once
        failures: list[_Mismatch] = []
        for type_name in types:
            try:
                return self.one(value, type_name, path, top=top)
            except _Mismatch as exc:
                failures.append(exc)
        best = max(failures, key=lambda exc: exc.depth)
        if all(exc.path == path for exc in failures):
            raise _Mismatch(path, f"expected {' or '.join(types)}, got {_show(value)}")
        raise best

    def one(self, value: Any, type_name: str, path: str, *, top: bool) -> Any:
        if type_name.startswith("Array of "):
            value = self._json(value, path) if top and isinstance(value, str) else value
            if not isinstance(value, list):
                raise _Mismatch(path, f"expected {type_name}, got {_show(value)}")
            inner = [type_name.removeprefix("Array of ")]
            return [self.value(item, inner, f"{path}[{i}]", top=False) for i, item in enumerate(value)]
        if type_name == "Integer":
            if isinstance(value, int) and not isinstance(value, bool):
                return value
            if isinstance(value, str) and _INT.fullmatch(value.strip()):
                return int(value)
            raise _Mismatch(path, f"expected Integer, got {_show(value)}")
        if type_name == "Float":
            if isinstance(value, int | float) and not isinstance(value, bool):
                return value
            if isinstance(value, str):
                try:
                    number = float(value)
                except ValueError:
                    pass
                else:
                    if math.isfinite(number):
                        return number
            raise _Mismatch(path, f"expected Float, got {_show(value)}")
        if type_name in ("Boolean", "True"):
            if isinstance(value, bool):
                return value
            if isinstance(value, str) and value in ("true", "false", "True", "False", "1", "0"):
                return value in ("true", "True", "1")
            raise _Mismatch(path, f"expected Boolean, got {_show(value)}")
        if type_name == "String":
            if not isinstance(value, str):
                raise _Mismatch(path, f"expected String, got {_show(value)}")
            if value.startswith("attach://") and _field_name(path) in _ATTACHABLE:
                return self._attached(value.removeprefix("attach://"), path)
            return value
        if type_name == "InputFile":
            if isinstance(value, Upload):
                self.uploads[value.sha256] = value
                return value.describe()
            raise _Mismatch(path, f"expected InputFile, got {_show(value)}")
        if type_name == "KeyboardButton" and isinstance(value, str):
            return value  # "For simple text buttons, String can be used instead of this object"
        spec = self.schema.types.get(type_name)
        if spec is None:  # a pseudo-type the reference does not define
            return value
        if top and isinstance(value, str):
            value = self._json(value, path)
        if spec.get("subtypes"):
            return self.value(value, list(spec["subtypes"]), path, top=False)
        return self._object(value, type_name, spec["fields"], path)

    def _object(self, value: Any, type_name: str, fields: dict[str, Any], path: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise _Mismatch(path, f"expected {type_name} object, got {_show(value)}")
        for name, fspec in fields.items():
            if "const" in fspec and name in value and value[name] != fspec["const"]:
                raise _Mismatch(f"{path}.{name}", f"{type_name} needs {fspec['const']!r}", weak=True)
        out: dict[str, Any] = {}
        for name in value:
            if fields and name not in fields:
                raise _Mismatch(f"{path}.{name}", f"unknown field of {type_name}")
        for name, fspec in fields.items():
            if name not in value or value[name] is None:
                if fspec["required"]:
                    raise _Mismatch(f"{path}.{name}", f"required field of {type_name} is missing")
                continue
            out[name] = self.value(value[name], fspec["types"], f"{path}.{name}", top=False)
        if not fields:
            out = dict(value)
        check = _TYPE_RULES.get(type_name)
        if check is not None:
            check(out)
        return out

    def _attached(self, name: str, path: str) -> dict[str, Any]:
        upload = self.files.get(name)
        if upload is None:
            raise _bad(f"{path}: file attach://{name} is not in the request")
        self.used_files.add(name)
        self.uploads[upload.sha256] = upload
        return upload.describe()

    @staticmethod
    def _json(value: str, path: str) -> Any:
        try:
            return json.loads(value)
        except ValueError:
            raise _Mismatch(path, f"can't parse JSON {_show(value)}") from None


_SCALARS: Final = frozenset({"Integer", "Float", "Boolean", "True", "String", "InputFile"})
_ATTACHABLE: Final = frozenset(
    {
        "media", "thumbnail", "cover", "photo", "video", "animation", "audio", "document", "voice",
        "video_note", "live_photo", "sticker", "certificate",
    }
)  # fmt: skip


def _field_name(path: str) -> str:
    return re.sub(r"\[\d+\]", "", path.rsplit(".", 1)[-1])


def _loose_json(value: Any) -> Any:
    """A form field that looks like a JSON object or array, decoded; anything else unchanged."""
    if isinstance(value, str) and value[:1] in ("{", "["):
        try:
            return json.loads(value)
        except ValueError:
            pass
    return value


def _show(value: Any) -> str:
    if isinstance(value, Upload):
        return "an uploaded file"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _check_inline_button(button: dict[str, Any]) -> None:
    data = button.get("callback_data")
    if data is not None and not 1 <= len(str(data).encode()) <= MAX_CALLBACK_DATA_BYTES:
        raise _bad("BUTTON_DATA_INVALID")
    if not set(button) - {"text", "style", "icon_custom_emoji_id"}:
        raise _bad("can't parse inline keyboard button: Text buttons are unallowed in the inline keyboard")


def _check_bot_command(command: dict[str, Any]) -> None:
    if not _BOT_COMMAND.fullmatch(str(command["command"])):
        raise _bad("BOT_COMMAND_INVALID")
    if not 1 <= len(str(command["description"])) <= 256:
        raise _bad("BOT_COMMAND_DESCRIPTION_INVALID")


_TYPE_RULES: Final[dict[str, Callable[[dict[str, Any]], None]]] = {
    "InlineKeyboardButton": _check_inline_button,
    "BotCommand": _check_bot_command,
}


def _parse_html(text: str) -> str:
    """Check Telegram-HTML markup the way the server does and return the visible text."""
    out: list[str] = []
    open_tags: list[str] = []
    i = 0

    def offset(pos: int) -> int:
        return len(text[:pos].encode())

    while i < len(text):
        char = text[i]
        if char == "&":
            match = _HTML_ENTITY.match(text, i)
            if match:
                out.append(html.unescape(match.group(0)))
                i = match.end()
                continue
        elif char == "<":
            close = text.find(">", i)
            if text.startswith("</", i):
                if close < 0:
                    raise _bad(f"can't parse entities: Unclosed end tag at byte offset {offset(i)}")
                name = text[i + 2 : close].strip().lower()
                if not open_tags:
                    raise _bad(f"can't parse entities: Unexpected end tag at byte offset {offset(i)}")
                if name and name != open_tags[-1]:
                    raise _bad(
                        f"can't parse entities: Unmatched end tag at byte offset {offset(i)}, "
                        f'expected "</{open_tags[-1]}>", found "</{name}>"'
                    )
                open_tags.pop()
                i = close + 1
                continue
            end = i + 1
            while end < len(text) and not text[end].isspace() and text[end] != ">":
                end += 1
            if end >= len(text):
                raise _bad(f"can't parse entities: Unclosed start tag at byte offset {offset(i)}")
            name = text[i + 1 : end].lower()
            if name not in _HTML_TAGS:
                raise _bad(f'can\'t parse entities: Unsupported start tag "{name}" at byte offset {offset(i)}')
            if close < 0:
                raise _bad(f"can't parse entities: Unclosed start tag at byte offset {offset(i)}")
            open_tags.append(name)
            i = close + 1
            continue
        out.append(char)
        i += 1
    if open_tags:
        raise _bad(f"can't parse entities: Can't find end tag corresponding to start tag \"{open_tags[-1]}\"")
    return "".join(out)


def _visible_text(text: str, parse_mode: str | None) -> str:
    if parse_mode is None:
        return text
    if parse_mode.lower() not in _PARSE_MODES:
        raise _bad(f"unsupported parse_mode {parse_mode!r}")
    return _parse_html(text) if parse_mode.lower() == "html" else text


def _check_text(text: str, parse_mode: str | None) -> str:
    visible = _visible_text(text, parse_mode)
    if not visible.strip():
        raise _bad("message text is empty")
    if len(visible) > MAX_TEXT_LENGTH:
        raise _bad("message is too long")
    return visible


def _check_caption(caption: str, parse_mode: str | None) -> str:
    visible = _visible_text(caption, parse_mode)
    if len(visible) > MAX_CAPTION_LENGTH:
        raise _bad("message caption is too long")
    return visible


def _check_limits(method: str, params: dict[str, Any]) -> None:
    """Limits the real server enforces that the schema cannot express."""
    if "text" in params and method in ("sendMessage", "editMessageText"):
        _check_text(params["text"], params.get("parse_mode"))
    if "caption" in params:
        _check_caption(params["caption"], params.get("parse_mode"))
    for item in params.get("media", []) if isinstance(params.get("media"), list) else []:
        if isinstance(item, dict) and "caption" in item:
            _check_caption(item["caption"], item.get("parse_mode"))
    if method == "answerCallbackQuery" and len(params.get("text", "")) > MAX_CALLBACK_ANSWER_LENGTH:
        raise _bad("MESSAGE_TOO_LONG")
    if method == "setMyCommands" and len(params["commands"]) > MAX_COMMANDS:
        raise _bad("BOT_COMMANDS_TOO_MUCH")
    if method == "sendChatAction" and params["action"] not in _CHAT_ACTIONS:
        raise _bad("wrong parameter action in request")
    if method == "sendMediaGroup" and not 2 <= len(params["media"]) <= 10:
        raise _bad("there must be 2-10 items in a media group")
    if "latitude" in params and not -90 <= params["latitude"] <= 90:
        raise _bad("wrong latitude")
    if "longitude" in params and not -180 <= params["longitude"] <= 180:
        raise _bad("wrong longitude")


# --------------------------------------------------------------------------------------------------
# The fake server
# --------------------------------------------------------------------------------------------------


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _chat_type(chat_id: int) -> str:
    if chat_id > 0:
        return "private"
    return "supergroup" if str(chat_id).startswith("-100") else "group"


_FLOOD_METHODS: Final = frozenset({"sendMessage", "copyMessage", "forwardMessage", "sendMediaGroup",
                                    *_SEND_MEDIA_METHODS})


@dataclass
class FloodControl:
    """Telegram's flood limits on sending, on real (monotonic) time whatever the bot's clock says.

    At most ``rate`` messages in any ``window`` seconds overall, and in a private chat (a positive
    chat id) at most ``chat_burst`` in any ``1 / chat_rate`` seconds. A message over either limit is
    not delivered: the answer is 429 with ``parameters.retry_after`` (whole seconds, at least 1), as
    Telegram answers. Only accepted messages count. ``refused`` counts the 429s.
    """

    rate: int = 30
    window: float = 1.0
    chat_rate: float = 1.0
    chat_burst: int = 1
    clock: Callable[[], float] = time.monotonic
    refused: int = 0
    _sent: list[float] = field(default_factory=list)
    _chats: dict[int, list[float]] = field(default_factory=dict)

    def check(self, chat_id: int | None) -> float | None:
        """Seconds to wait if this message is over a limit (it is then refused), else None (it counts)."""
        now = self.clock()
        self._sent = [at for at in self._sent if at > now - self.window]
        wait = 0.0
        if len(self._sent) >= self.rate:
            wait = self._sent[len(self._sent) - self.rate] + self.window - now
        chat_window = 1.0 / self.chat_rate
        recent: list[float] = []
        if chat_id is not None and chat_id > 0:
            recent = [at for at in self._chats.get(chat_id, []) if at > now - chat_window]
            if len(recent) >= self.chat_burst:
                wait = max(wait, recent[len(recent) - self.chat_burst] + chat_window - now)
        if wait > 0:
            self.refused += 1
            return wait
        self._sent.append(now)
        if chat_id is not None and chat_id > 0:
            recent.append(now)
            self._chats[chat_id] = recent
        return None


class FakeBotApi:
    """The state and behaviour of a fake Bot API server for one bot.

    Thread-safe: the HTTP server variant calls it from its request threads while tests read it.
    """

    def __init__(self, *, schema: BotApiSchema | None = None, clock: Callable[[], float] = time.time,
                 token: str | None = None) -> None:
        self.schema = schema or load_schema()
        self.clock = clock
        self.token = token  # when set, any other (well-formed) token is answered 401 Unauthorized
        self.calls: list[ApiCall] = []
        self.violations: list[str] = []
        self.bot_user: dict[str, Any] = dict(BOT_USER)
        self._lock = threading.RLock()
        self._updates_changed = threading.Condition(self._lock)
        self._updates: list[dict[str, Any]] = []
        self._allowed_updates: list[str] = []
        self._webhook: dict[str, Any] = {"url": "", "has_custom_certificate": False}
        self._messages: dict[tuple[int, int], dict[str, Any]] = {}
        self._stopped_live: set[tuple[int, int]] = set()  # live locations no longer updated
        self._last_message_id: dict[int, int] = {}
        self._chats: dict[int, dict[str, Any]] = {}
        self._files: dict[str, StoredFile] = {}
        self._files_by_path: dict[str, StoredFile] = {}
        self._file_counter = 0
        self._media_group_counter = 0
        self._commands: dict[tuple[str, str], list[dict[str, Any]]] = {}
        self._menu_buttons: dict[int | None, dict[str, Any]] = {}
        self._bot_texts: dict[tuple[str, str], str] = {}
        self._injections: list[_Injection] = []
        self._offline = False
        self.flood: FloodControl | None = None  # Telegram's flood limits, when a test or bench turns them on

    # ---- the request entry points ------------------------------------------------------------

    def handle(self, method: str, params: Mapping[str, Any], files: Mapping[str, Upload] | None = None) -> ApiReply:
        """Answer one Bot API call.

        ``params`` may hold wire strings (form fields) or JSON values; ``files`` are multipart parts.
        Raises ``telegram.error.NetworkError`` when a network failure is simulated.
        """
        with self._lock:
            canonical = self.schema.canonical_method(method)
            if canonical is None:
                return self._refuse(ApiCall(method, dict(params)), ApiReply.error(404, "Not Found"))
            decoder = _Decoder(self.schema, files or {})
            try:
                decoded = decoder.params(canonical, params)
                _check_limits(canonical, decoded)
            except BotApiError as exc:
                return self._refuse(ApiCall(canonical, self._best_effort(canonical, params, files)), exc.reply())
            call = ApiCall(canonical, decoded)
            self.calls.append(call)
            failure = self._injected_failure(canonical)
            if failure is not None:
                call.failed, call.error = True, failure.description
                if failure.network:
                    raise NetworkError(failure.description)
                parameters = {"retry_after": failure.retry_after} if failure.retry_after else None
                return ApiReply.error(failure.status, failure.description, parameters)
            if self.flood is not None and canonical in _FLOOD_METHODS:
                chat = decoded.get("chat_id")
                wait = self.flood.check(chat if isinstance(chat, int) else None)
                if wait is not None:
                    retry_after = max(1, math.ceil(wait))
                    call.failed, call.error = True, f"Too Many Requests: retry after {retry_after}"
                    return ApiReply.error(429, call.error, {"retry_after": retry_after})
            try:
                # a snapshot: the stored message may change later (edits), the answer does not
                call.result = copy.deepcopy(self._dispatch(canonical, decoded, decoder.uploads))
            except BotApiError as exc:
                call.failed, call.error = True, exc.description
                return exc.reply()
            return ApiReply.success(call.result)

    def download(self, file_path: str) -> bytes | None:
        """The content behind a ``file_path`` handed out by getFile, or None (HTTP 404)."""
        with self._lock:
            if self._offline:
                raise NetworkError("sandbox: the Bot API is offline")
            stored = self._files_by_path.get(file_path)
            return None if stored is None else stored.read()

    def long_poll_seconds(self, params: Mapping[str, Any]) -> float:
        """How long a getUpdates call with these (raw) parameters should wait before answering."""
        try:
            timeout = float(params.get("timeout") or 0)
        except (TypeError, ValueError):
            return 0.0
        with self._lock:
            if self._offline or self._webhook["url"] or self._has_updates(params):
                return 0.0
        return max(0.0, min(timeout, LONG_POLL_CAP))

    def wait_for_updates(self, params: Mapping[str, Any]) -> None:
        """Block (a server thread) until updates for this getUpdates call exist or its timeout ends."""
        seconds = self.long_poll_seconds(params)
        if seconds > 0:
            with self._updates_changed:
                self._updates_changed.wait_for(lambda: self._has_updates(params), timeout=seconds)

    async def async_wait_for_updates(self, params: Mapping[str, Any]) -> None:
        """Like ``wait_for_updates`` without blocking the event loop (polls every 10 ms)."""
        deadline = time.monotonic() + self.long_poll_seconds(params)
        while time.monotonic() < deadline:
            with self._lock:
                if self._has_updates(params):
                    return
            await asyncio.sleep(0.01)

    # ---- updates -----------------------------------------------------------------------------

    def push_update(self, update: dict[str, Any]) -> None:
        """Queue an update for getUpdates; it must be a valid Bot API ``Update``."""
        self.schema.validate("Update", update)
        with self._updates_changed:
            for kind in ("message", "edited_message", "channel_post", "edited_channel_post"):
                if kind in update:
                    self.remember_message(update[kind])
            if "callback_query" in update and "message" in update["callback_query"]:
                self.remember_message(update["callback_query"]["message"])
            self._updates.append(copy.deepcopy(update))
            self._updates_changed.notify_all()

    @property
    def pending_updates(self) -> list[dict[str, Any]]:
        with self._lock:
            return copy.deepcopy(self._updates)

    def _has_updates(self, params: Mapping[str, Any]) -> bool:
        try:
            offset = int(params.get("offset") or 0)
        except (TypeError, ValueError):
            offset = 0
        return any(u["update_id"] >= offset for u in self._updates) if offset > 0 else bool(self._updates)

    # ---- chats, messages and files ------------------------------------------------------------

    def next_message_id(self, chat_id: int) -> int:
        """Allocate the next message id in a chat (shared by incoming and outgoing messages)."""
        with self._lock:
            self._last_message_id[chat_id] = self._last_message_id.get(chat_id, 0) + 1
            return self._last_message_id[chat_id]

    def remember_message(self, message: dict[str, Any]) -> None:
        """Store a message (e.g. one a user sent) so it can be copied, forwarded, edited or deleted."""
        with self._lock:
            chat = message["chat"]
            self._chats.setdefault(chat["id"], dict(chat))
            sender = message.get("from")
            if sender and not sender.get("is_bot") and sender["id"] not in self._chats:
                self._chats[sender["id"]] = _private_chat(sender)
            key = (chat["id"], message["message_id"])
            self._messages[key] = copy.deepcopy(message)
            last = self._last_message_id.get(chat["id"], 0)
            self._last_message_id[chat["id"]] = max(last, message["message_id"])

    def message(self, chat_id: int, message_id: int) -> dict[str, Any] | None:
        """The current state of a stored message (after edits), or None if unknown or deleted."""
        with self._lock:
            stored = self._messages.get((chat_id, message_id))
            return copy.deepcopy(stored) if stored is not None else None

    def chat_messages(self, chat_id: int) -> list[dict[str, Any]]:
        """All stored messages of a chat, oldest first."""
        with self._lock:
            keys = sorted(key for key in self._messages if key[0] == chat_id)
            return [copy.deepcopy(self._messages[key]) for key in keys]

    def add_file(
        self, content: bytes, *, file_unique_id: str | None = None, file_path: str | None = None
    ) -> tuple[str, str]:
        """Register downloadable content; returns its ``(file_id, file_unique_id)``."""
        with self._lock:
            stored = self._new_file(
                "document", len(content), content, file_unique_id=file_unique_id, file_path=file_path
            )
            return stored.file_id, stored.file_unique_id

    def add_file_of_size(self, size: int, *, file_unique_id: str | None = None) -> tuple[str, str]:
        """Register a file by size only (its content reads as zeros), e.g. one over the 20 MB limit."""
        with self._lock:
            stored = self._new_file("document", size, None, file_unique_id=file_unique_id)
            return stored.file_id, stored.file_unique_id

    def register_file(
        self, file_id: str, file_unique_id: str, *, size: int, content: bytes | None = None, kind: str = "document"
    ) -> StoredFile:
        """Make a file id chosen by a test (e.g. in an incoming photo) known to getFile."""
        with self._lock:
            existing = self._files.get(file_id)
            if existing is not None:
                return existing
            return self._new_file(kind, size, content, file_id=file_id, file_unique_id=file_unique_id)

    def file(self, file_id: str) -> StoredFile | None:
        with self._lock:
            return self._files.get(file_id)

    # ---- failure injection ---------------------------------------------------------------------

    def fail_next(
        self,
        method: str | None = None,
        *,
        times: int = 1,
        retry_after: int | None = None,
        network: bool = False,
        status: int = 429,
        description: str | None = None,
    ) -> None:
        """Make the next ``times`` calls of ``method`` (any method if None) fail.

        By default they answer 429 with ``parameters.retry_after`` (1 s unless given), which PTB
        raises as ``RetryAfter``; ``network=True`` raises ``NetworkError`` instead; another
        ``status`` answers that code (403 defaults to "Forbidden: bot was blocked by the user").
        Only schema-valid calls consume an injected failure; each failed call is recorded.
        """
        if retry_after is not None and status != 429:
            raise ValueError("retry_after only goes with status 429")
        if retry_after is not None and retry_after < 1:
            raise ValueError("retry_after must be at least 1: PTB raises RetryAfter only for a truthy value")
        canonical = None if method is None else self.schema.canonical_method(method)
        if method is not None and canonical is None:
            raise ValueError(f"unknown Bot API method {method!r}")
        if status == 429:
            retry_after = retry_after if retry_after is not None else 1
            default = f"Too Many Requests: retry after {retry_after}"
        else:
            default = _STATUS_TEXT.get(status, f"Error {status}")
        if network:
            default = "sandbox: simulated network failure"
        with self._lock:
            self._injections.append(_Injection(canonical, times, status, retry_after, network, description or default))

    def flood_control(self, enabled: bool = True, **limits: Any) -> FloodControl | None:
        """Turn Telegram's flood limits on (``FloodControl(**limits)``) or off; returns what is in force."""
        with self._lock:
            self.flood = FloodControl(**limits) if enabled else None
            return self.flood

    def set_offline(self, offline: bool = True) -> None:
        """While offline, every call (and download) raises ``NetworkError``; calls are still recorded."""
        with self._lock:
            self._offline = offline

    def _injected_failure(self, method: str) -> _Injection | None:
        if self._offline:
            return _Injection(None, 0, 0, None, True, "sandbox: the Bot API is offline")
        for injection in self._injections:
            if injection.method in (None, method) and injection.remaining > 0:
                injection.remaining -= 1
                if injection.remaining == 0:
                    self._injections.remove(injection)
                return injection
        return None

    # ---- queries for tests ---------------------------------------------------------------------

    def sent(self, method: str = "sendMessage", chat_id: int | str | None = None) -> list[ApiCall]:
        """Successful calls of ``method`` (to ``chat_id`` if given), oldest first."""
        with self._lock:
            return [
                call
                for call in self.calls
                if call.method == method
                and not call.failed
                and (chat_id is None or call.params.get("chat_id") == chat_id)
            ]

    def texts(self, chat_id: int | str) -> list[str]:
        """Text or caption, as sent, of every message successfully sent or copied to a chat."""
        with self._lock:
            out: list[str] = []
            for call in self.calls:
                if call.failed or call.params.get("chat_id") != chat_id:
                    continue
                if not (call.method.startswith("send") or call.method == "copyMessage"):
                    continue
                for key in ("text", "caption"):
                    if isinstance(call.params.get(key), str):
                        out.append(call.params[key])
                for item in call.params.get("media", []) if call.method == "sendMediaGroup" else []:
                    if isinstance(item.get("caption"), str):
                        out.append(item["caption"])
            return out

    def last(self, method: str, chat_id: int | str | None = None) -> ApiCall:
        """The latest successful call of ``method`` (to ``chat_id``); LookupError if there is none."""
        calls = self.sent(method, chat_id)
        if not calls:
            seen = sorted({call.method for call in self.calls})
            raise LookupError(f"no successful {method} call (chat_id={chat_id!r}); calls seen: {seen}")
        return calls[-1]

    def failures(self) -> list[ApiCall]:
        """Calls that got an error answer or a network failure."""
        with self._lock:
            return [call for call in self.calls if call.failed]

    def clear(self) -> None:
        """Forget recorded calls (chats, files, settings and schema violations stay)."""
        with self._lock:
            self.calls.clear()

    # ---- internals -----------------------------------------------------------------------------

    def _best_effort(
        self, method: str, params: Mapping[str, Any], files: Mapping[str, Upload] | None
    ) -> dict[str, Any]:
        """A refused call's parameters, decoded where they can be (for ``ApiCall.params``)."""
        spec = self.schema.params(method)
        out: dict[str, Any] = {name: upload.describe() for name, upload in (files or {}).items()}
        for name, value in params.items():
            try:
                out[name] = _Decoder(self.schema, files or {}).value(value, spec[name]["types"], name, top=True)
            except (KeyError, _Mismatch, BotApiError):
                out[name] = _loose_json(value)
        return out

    def _refuse(self, call: ApiCall, reply: ApiReply) -> ApiReply:
        call.failed, call.error = True, str(reply.body["description"])
        self.calls.append(call)
        self.violations.append(f"{call.method}: {call.error}")
        return reply

    def _dispatch(self, method: str, params: dict[str, Any], uploads: dict[str, Upload]) -> Any:
        handler = getattr(self, f"_api_{method}", None)
        if handler is not None:
            return handler(params, uploads)
        if method in _SEND_MEDIA_METHODS:
            return self._send_media(method, params, uploads)
        return self._generic_answer(method, params)

    def _generic_answer(self, method: str, params: dict[str, Any]) -> Any:
        returns = self.schema.returns(method)
        if not returns or returns[0] in ("True", "Boolean"):
            return True
        if returns[0] == "Message":
            if "chat_id" in params and "message_id" in params:
                return copy.deepcopy(self._stored(params, "edit"))
            if "chat_id" in params:
                return self._new_message(params)
            return True  # inline message edits answer True
        return self.schema.synthesize(returns[0])

    def _now(self) -> int:
        return int(self.clock())

    def _chat_id(self, value: int | str) -> int:
        if isinstance(value, int):
            return value
        for chat_id, chat in self._chats.items():
            if value.startswith("@") and chat.get("username", "").lower() == value[1:].lower():
                return chat_id
        raise _bad("chat not found")

    def _chat(self, chat_id: int) -> dict[str, Any]:
        chat = self._chats.get(chat_id)
        if chat is not None:
            return dict(chat)
        if chat_id > 0:
            return {"id": chat_id, "type": "private", "first_name": f"User {chat_id}"}
        return {"id": chat_id, "type": _chat_type(chat_id), "title": f"Group {chat_id}"}

    def _new_message(self, params: dict[str, Any]) -> dict[str, Any]:
        chat_id = self._chat_id(params["chat_id"])
        message: dict[str, Any] = {
            "message_id": self.next_message_id(chat_id),
            "from": dict(self.bot_user),
            "chat": self._chat(chat_id),
            "date": self._now(),
        }
        reply_to = params.get("reply_parameters")
        if reply_to:
            target = self._messages.get((self._chat_id(reply_to.get("chat_id", chat_id)), reply_to["message_id"]))
            if target is None and not reply_to.get("allow_sending_without_reply"):
                raise _bad("message to be replied not found")
            if target is not None:
                message["reply_to_message"] = {k: v for k, v in target.items() if k != "reply_to_message"}
        if "text" in params:
            message["text"] = _visible_text(params["text"], params.get("parse_mode"))
            if params.get("entities"):
                message["entities"] = params["entities"]
        if "caption" in params:
            message["caption"] = _visible_text(params["caption"], params.get("parse_mode"))
            if params.get("caption_entities"):
                message["caption_entities"] = params["caption_entities"]
        markup = params.get("reply_markup")
        if markup and "inline_keyboard" in markup:  # only inline keyboards are part of a Message
            message["reply_markup"] = markup
        if params.get("protect_content"):
            message["has_protected_content"] = True
        self._messages[(chat_id, message["message_id"])] = message
        return message

    def _stored(self, params: dict[str, Any], action: str) -> dict[str, Any]:
        key = (self._chat_id(params["chat_id"]), params["message_id"])
        stored = self._messages.get(key)
        if stored is None:
            raise _bad(f"message to {action} not found")
        return stored

    def _editable(self, params: dict[str, Any]) -> dict[str, Any] | None:
        if "inline_message_id" in params:
            return None
        if "chat_id" not in params or "message_id" not in params:
            raise _bad("message identifier is not specified")
        stored = self._stored(params, "edit")
        if stored.get("from", {}).get("id") != self.bot_user["id"]:
            raise _bad("message can't be edited")
        return stored

    def _new_file(
        self,
        kind: str,
        size: int,
        content: bytes | None,
        *,
        file_id: str | None = None,
        file_unique_id: str | None = None,
        file_path: str | None = None,
        suffix: str | None = None,
    ) -> StoredFile:
        prefix, folder, ext = _MEDIA_KINDS.get(kind, _MEDIA_KINDS["document"])
        self._file_counter += 1
        digest = hashlib.sha256(f"fieldbot-sandbox-file:{self._file_counter}".encode()).digest()
        stored = StoredFile(
            file_id=file_id or prefix + _b64(digest)[:40],
            file_unique_id=file_unique_id or "AQAD" + _b64(digest[20:])[:12],
            size=size,
            file_path=file_path or f"{folder}/file_{self._file_counter}{suffix or '.' + ext}",
            content=content,
        )
        self._files[stored.file_id] = stored
        self._files_by_path[stored.file_path] = stored
        return stored

    def _media_file(self, kind: str, value: Any, uploads: dict[str, Upload]) -> StoredFile:
        if isinstance(value, dict):  # an upload, described by the decoder
            upload = uploads[value["sha256"]]
            suffix = Path(upload.filename).suffix if kind in ("document", "audio") else None
            return self._new_file(kind, len(upload.content), upload.content, suffix=suffix or None)
        if value.startswith(("http://", "https://")):  # the real server would fetch the URL
            return self._new_file(kind, len(value), value.encode())
        known = self._files.get(value)
        if known is None:
            raise _bad("wrong file identifier/HTTP URL specified")
        return known

    def _media_object(self, kind: str, stored: StoredFile, params: dict[str, Any], upload_name: str | None) -> Any:
        base: dict[str, Any] = {
            "file_id": stored.file_id,
            "file_unique_id": stored.file_unique_id,
            "file_size": stored.size,
        }
        if kind == "photo":  # Telegram answers with a thumbnail and the full size, largest last
            thumb = self.register_file(
                stored.file_id + "Ag", stored.file_unique_id + "x", size=max(1, stored.size // 40), kind="photo"
            )
            thumb_size = {"file_id": thumb.file_id, "file_unique_id": thumb.file_unique_id, "file_size": thumb.size}
            return [dict(thumb_size, width=90, height=68), dict(base, width=1280, height=960)]
        if kind == "document":
            base["file_name"] = upload_name or Path(stored.file_path).name
            base["mime_type"] = _mime_for(base["file_name"])
        elif kind == "voice":
            base.update(duration=params.get("duration", 1), mime_type="audio/ogg")
        elif kind == "audio":
            base.update(duration=params.get("duration", 1), mime_type=_mime_for(upload_name or "a.mp3"))
            base.update({k: params[k] for k in ("title", "performer") if k in params})
            if upload_name:
                base["file_name"] = upload_name
        elif kind in ("video", "animation"):
            base.update(width=params.get("width", 640), height=params.get("height", 480))
            base["duration"] = params.get("duration", 1)
        elif kind == "video_note":
            base.update(length=params.get("length", 240), duration=params.get("duration", 1))
        elif kind == "sticker":
            base.update(type="regular", width=512, height=512, is_animated=False, is_video=False)
        return base

    def _send_media(self, method: str, params: dict[str, Any], uploads: dict[str, Upload]) -> dict[str, Any]:
        kind = _SEND_MEDIA_METHODS[method]
        stored = self._media_file(kind, params[kind], uploads)
        upload_name = params[kind]["filename"] if isinstance(params[kind], dict) else None
        message = self._new_message(params)
        message[kind] = self._media_object(kind, stored, params, upload_name)
        return message

    # ---- method implementations (``_api_<method>``) --------------------------------------------

    def _api_getMe(self, params: dict[str, Any], uploads: dict[str, Upload]) -> Any:
        return {**self.bot_user, **_GET_ME_EXTRA}

    def _api_logOut(self, params: dict[str, Any], uploads: dict[str, Upload]) -> Any:
        return True

    def _api_close(self, params: dict[str, Any], uploads: dict[str, Upload]) -> Any:
        return True

    def _api_setWebhook(self, params: dict[str, Any], uploads: dict[str, Upload]) -> Any:
        url = params["url"]
        if url and not url.startswith("https://"):
            raise _bad("bad webhook: An HTTPS URL must be provided for webhook")
        if params.get("drop_pending_updates"):
            self._updates.clear()
        self._webhook = {"url": url, "has_custom_certificate": "certificate" in params}
        for key in ("max_connections", "allowed_updates", "ip_address"):
            if key in params:
                self._webhook[key] = params[key]
        return True

    def _api_deleteWebhook(self, params: dict[str, Any], uploads: dict[str, Upload]) -> Any:
        if params.get("drop_pending_updates"):
            self._updates.clear()
        self._webhook = {"url": "", "has_custom_certificate": False}
        return True

    def _api_getWebhookInfo(self, params: dict[str, Any], uploads: dict[str, Upload]) -> Any:
        return {**self._webhook, "pending_update_count": len(self._updates)}

    def _api_getUpdates(self, params: dict[str, Any], uploads: dict[str, Upload]) -> Any:
        if self._webhook["url"]:
            raise BotApiError(
                409,
                "Conflict: can't use getUpdates method while webhook is active; use deleteWebhook to "
                "delete the webhook first",
            )
        offset = params.get("offset", 0)
        if offset > 0:
            self._updates = [u for u in self._updates if u["update_id"] >= offset]
        elif offset < 0:
            self._updates = self._updates[offset:]
        if "allowed_updates" in params:
            self._allowed_updates = list(params["allowed_updates"])
        if self._allowed_updates:
            allowed = set(self._allowed_updates)
            self._updates = [u for u in self._updates if allowed & (set(u) - {"update_id"})]
        limit = min(max(params.get("limit", 100), 1), 100)
        return copy.deepcopy(self._updates[:limit])

    def _api_sendMessage(self, params: dict[str, Any], uploads: dict[str, Upload]) -> Any:
        return self._new_message(params)

    def _api_sendLocation(self, params: dict[str, Any], uploads: dict[str, Upload]) -> Any:
        message = self._new_message(params)
        message["location"] = {
            key: params[key]
            for key in ("latitude", "longitude", "horizontal_accuracy", "live_period", "heading",
                        "proximity_alert_radius")
            if key in params
        }  # fmt: skip
        return message

    def _live_location(self, params: dict[str, Any]) -> dict[str, Any] | None:
        """The bot's live location message to edit or stop; refused as Telegram does once it is over."""
        stored = self._editable(params)
        if stored is None:
            return None
        location = stored.get("location")
        period = location.get("live_period") if location else None
        key = (stored["chat"]["id"], stored["message_id"])
        over = period is not None and period != LIVE_PERIOD_FOREVER and self._now() > stored["date"] + period
        if period is None or over or key in self._stopped_live:
            raise _bad("message can't be edited")
        return stored

    def _api_editMessageLiveLocation(self, params: dict[str, Any], uploads: dict[str, Upload]) -> Any:
        stored = self._live_location(params)
        if stored is None:
            return True
        location = dict(stored["location"])
        moved = {key: params[key] for key in ("latitude", "longitude", "horizontal_accuracy", "heading",
                                               "proximity_alert_radius", "live_period") if key in params}
        if all(location.get(key) == value for key, value in moved.items()) and "reply_markup" not in params:
            raise _bad(_NOT_MODIFIED)
        location.update(moved)
        stored["location"] = location
        stored["edit_date"] = self._now()
        return copy.deepcopy(stored)

    def _api_stopMessageLiveLocation(self, params: dict[str, Any], uploads: dict[str, Upload]) -> Any:
        stored = self._live_location(params)
        if stored is None:
            return True
        self._stopped_live.add((stored["chat"]["id"], stored["message_id"]))
        stored["edit_date"] = self._now()
        return copy.deepcopy(stored)

    def _api_sendMediaGroup(self, params: dict[str, Any], uploads: dict[str, Upload]) -> Any:
        self._media_group_counter += 1
        group_id = str(13_000_000_000_000_000 + self._media_group_counter)
        messages = []
        for item in params["media"]:
            kind = item["type"]
            stored = self._media_file(kind, item["media"], uploads)
            upload_name = item["media"]["filename"] if isinstance(item["media"], dict) else None
            message = self._new_message({**params, **{k: item[k] for k in ("caption", "parse_mode") if k in item}})
            message[kind] = self._media_object(kind, stored, item, upload_name)
            message["media_group_id"] = group_id
            messages.append(message)
        return messages

    def _api_editMessageText(self, params: dict[str, Any], uploads: dict[str, Upload]) -> Any:
        stored = self._editable(params)
        if stored is None:
            return True
        if "text" not in stored:
            raise _bad("there is no text in the message to edit")
        if "text" not in params:  # Bot API 10.1 makes text optional next to rich_message
            if "rich_message" not in params:
                raise _bad("message text is empty")
            stored["edit_date"] = self._now()  # rich content is not modelled
            return stored
        text = _visible_text(params["text"], params.get("parse_mode"))
        return self._apply_edit(stored, {"text": text, "entities": params.get("entities")}, params)

    def _api_editMessageCaption(self, params: dict[str, Any], uploads: dict[str, Upload]) -> Any:
        stored = self._editable(params)
        if stored is None:
            return True
        if "text" in stored:
            raise _bad("there is no caption in the message to edit")
        caption = _visible_text(params["caption"], params.get("parse_mode")) if "caption" in params else None
        return self._apply_edit(
            stored, {"caption": caption, "caption_entities": params.get("caption_entities")}, params
        )

    def _api_editMessageReplyMarkup(self, params: dict[str, Any], uploads: dict[str, Upload]) -> Any:
        stored = self._editable(params)
        if stored is None:
            return True
        return self._apply_edit(stored, {}, params)

    def _apply_edit(self, stored: dict[str, Any], content: dict[str, Any], params: dict[str, Any]) -> Any:
        markup = params.get("reply_markup")
        new = {key: value for key, value in content.items() if value}
        new_markup = markup if markup and "inline_keyboard" in markup else None
        unchanged = all(stored.get(key) == new.get(key) for key in content)
        if unchanged and stored.get("reply_markup") == new_markup:
            raise _bad(_NOT_MODIFIED)
        for key in content:
            stored.pop(key, None)
        stored.update(new)
        stored.pop("reply_markup", None)
        if new_markup is not None:
            stored["reply_markup"] = new_markup
        stored["edit_date"] = self._now()
        return copy.deepcopy(stored)

    def _api_deleteMessage(self, params: dict[str, Any], uploads: dict[str, Upload]) -> Any:
        key = (self._chat_id(params["chat_id"]), params["message_id"])
        if self._messages.pop(key, None) is None:
            raise _bad("message to delete not found")
        return True

    def _api_deleteMessages(self, params: dict[str, Any], uploads: dict[str, Upload]) -> Any:
        chat_id = self._chat_id(params["chat_id"])
        for message_id in params["message_ids"]:
            self._messages.pop((chat_id, message_id), None)
        return True

    def _api_answerCallbackQuery(self, params: dict[str, Any], uploads: dict[str, Upload]) -> Any:
        return True

    def _api_setMyCommands(self, params: dict[str, Any], uploads: dict[str, Upload]) -> Any:
        self._commands[_commands_key(params)] = params["commands"]
        return True

    def _api_getMyCommands(self, params: dict[str, Any], uploads: dict[str, Upload]) -> Any:
        return copy.deepcopy(self._commands.get(_commands_key(params), []))

    def _api_deleteMyCommands(self, params: dict[str, Any], uploads: dict[str, Upload]) -> Any:
        self._commands.pop(_commands_key(params), None)
        return True

    def _api_setChatMenuButton(self, params: dict[str, Any], uploads: dict[str, Upload]) -> Any:
        chat_id = self._chat_id(params["chat_id"]) if "chat_id" in params else None
        self._menu_buttons[chat_id] = params.get("menu_button", {"type": "default"})
        return True

    def _api_getChatMenuButton(self, params: dict[str, Any], uploads: dict[str, Upload]) -> Any:
        chat_id = self._chat_id(params["chat_id"]) if "chat_id" in params else None
        return self._menu_buttons.get(chat_id, self._menu_buttons.get(None, {"type": "default"}))

    def _set_bot_text(self, params: dict[str, Any], key: str) -> bool:
        self._bot_texts[(key, params.get("language_code", ""))] = params.get(key, "")
        return True

    def _get_bot_text(self, params: dict[str, Any], key: str) -> dict[str, str]:
        language = params.get("language_code", "")
        default = self.bot_user["first_name"] if key == "name" else ""
        return {key: self._bot_texts.get((key, language), self._bot_texts.get((key, ""), default))}

    def _api_setMyName(self, params: dict[str, Any], uploads: dict[str, Upload]) -> Any:
        return self._set_bot_text(params, "name")

    def _api_getMyName(self, params: dict[str, Any], uploads: dict[str, Upload]) -> Any:
        return self._get_bot_text(params, "name")

    def _api_setMyDescription(self, params: dict[str, Any], uploads: dict[str, Upload]) -> Any:
        return self._set_bot_text(params, "description")

    def _api_getMyDescription(self, params: dict[str, Any], uploads: dict[str, Upload]) -> Any:
        return self._get_bot_text(params, "description")

    def _api_setMyShortDescription(self, params: dict[str, Any], uploads: dict[str, Upload]) -> Any:
        return self._set_bot_text(params, "short_description")

    def _api_getMyShortDescription(self, params: dict[str, Any], uploads: dict[str, Upload]) -> Any:
        return self._get_bot_text(params, "short_description")

    def _api_sendChatAction(self, params: dict[str, Any], uploads: dict[str, Upload]) -> Any:
        self._chat_id(params["chat_id"])
        return True

    def _api_copyMessage(self, params: dict[str, Any], uploads: dict[str, Upload]) -> Any:
        source = self._stored({"chat_id": params["from_chat_id"], "message_id": params["message_id"]}, "copy")
        message = self._new_message(params)
        replaced = {"caption", "caption_entities"} if "caption" in params or params.get("remove_caption") else set()
        for key in _MESSAGE_CONTENT_KEYS:
            if key in source and key not in message and key not in replaced:
                message[key] = copy.deepcopy(source[key])
        return {"message_id": message["message_id"]}

    def _api_forwardMessage(self, params: dict[str, Any], uploads: dict[str, Upload]) -> Any:
        source = self._stored({"chat_id": params["from_chat_id"], "message_id": params["message_id"]}, "forward")
        message = self._new_message({"chat_id": params["chat_id"]})
        sender = source.get("from")
        if "forward_origin" in source:
            message["forward_origin"] = copy.deepcopy(source["forward_origin"])
        elif sender is not None:
            message["forward_origin"] = {"type": "user", "date": source["date"], "sender_user": sender}
        else:
            message["forward_origin"] = {"type": "chat", "date": source["date"], "sender_chat": source["chat"]}
        for key in _MESSAGE_CONTENT_KEYS:
            if key in source:
                message[key] = copy.deepcopy(source[key])
        return message

    def _api_getFile(self, params: dict[str, Any], uploads: dict[str, Upload]) -> Any:
        stored = self._files.get(params["file_id"])
        if stored is None:
            raise _bad("invalid file_id")
        if stored.size > MAX_DOWNLOAD_SIZE:
            raise _bad("file is too big")
        return {
            "file_id": stored.file_id,
            "file_unique_id": stored.file_unique_id,
            "file_size": stored.size,
            "file_path": stored.file_path,
        }

    def _api_getChat(self, params: dict[str, Any], uploads: dict[str, Upload]) -> Any:
        chat_id = self._chat_id(params["chat_id"])
        info = self.schema.synthesize("ChatFullInfo")
        info.update(self._chat(chat_id), accent_color_id=chat_id % 7, max_reaction_count=11)
        return info


def _private_chat(user: Mapping[str, Any]) -> dict[str, Any]:
    chat = {"id": user["id"], "type": "private", "first_name": user["first_name"]}
    chat.update({key: user[key] for key in ("last_name", "username") if key in user})
    return chat


def _commands_key(params: Mapping[str, Any]) -> tuple[str, str]:
    scope = params.get("scope") or {"type": "default"}
    return json.dumps(scope, sort_keys=True), str(params.get("language_code", ""))


def _mime_for(filename: str) -> str:
    return mimetypes.guess_type(filename, strict=False)[0] or "application/octet-stream"


# --------------------------------------------------------------------------------------------------
# The PTB transport
# --------------------------------------------------------------------------------------------------


_FILE_URL = re.compile(r"/file/bot(?P<token>[^/]+)/(?P<path>.+)$")
_METHOD_URL = re.compile(r"/bot(?P<token>[^/]+)/(?P<method>[A-Za-z0-9_]+)/?$")


@dataclass(frozen=True)
class _Target:
    token: str
    method: str | None = None
    file_path: str | None = None


def parse_api_path(path: str) -> _Target | None:
    """Split ``.../bot<token>/<method>`` or ``.../file/bot<token>/<path>``; None if neither."""
    path = unquote(path)  # PTB percent-encodes download URLs, including the token's colon
    match = _FILE_URL.search(path)
    if match:
        return _Target(match["token"], file_path=match["path"])
    match = _METHOD_URL.search(path)
    if match:
        return _Target(match["token"], method=match["method"])
    return None


def answer_request(
    api: FakeBotApi, http_method: str, path: str, params: Mapping[str, Any], files: Mapping[str, Upload]
) -> ApiReply | bytes:
    """Route one HTTP-level request (already decoded) to the fake: a JSON reply or file bytes."""
    target = parse_api_path(path)
    if target is None:
        return ApiReply.error(404, "Not Found")
    if not _TOKEN.fullmatch(target.token) or (api.token is not None and target.token != api.token):
        return ApiReply.error(401, "Unauthorized")
    if target.file_path is not None:
        if http_method != "GET":
            return ApiReply.error(405, "Method Not Allowed")
        content = api.download(target.file_path)
        return ApiReply.error(404, "Not Found") if content is None else content
    assert target.method is not None
    return api.handle(target.method, params, files)


def _read_part(content: bytes | IO[bytes]) -> bytes:
    return content if isinstance(content, bytes) else content.read()


class FakeRequest(BaseRequest):
    """PTB transport that answers from a ``FakeBotApi`` in-process, never touching the network.

    It passes what ``HTTPXRequest`` would send: ``request_data.json_parameters`` (every value a
    string, objects JSON-encoded) and ``request_data.multipart_data`` (uploaded files).
    """

    __slots__ = ("api",)

    def __init__(self, api: FakeBotApi) -> None:
        self.api = api

    @property
    def read_timeout(self) -> float | None:
        return 5.0

    async def initialize(self) -> None:
        """Nothing to set up."""

    async def shutdown(self) -> None:
        """Nothing to release."""

    async def do_request(
        self,
        url: str,
        method: str,
        request_data: RequestData | None = None,
        read_timeout: object = BaseRequest.DEFAULT_NONE,
        write_timeout: object = BaseRequest.DEFAULT_NONE,
        connect_timeout: object = BaseRequest.DEFAULT_NONE,
        pool_timeout: object = BaseRequest.DEFAULT_NONE,
    ) -> tuple[int, bytes]:
        params: dict[str, Any] = dict(request_data.json_parameters) if request_data else {}
        files = {
            name: Upload(filename, _read_part(content), mime)
            for name, (filename, content, mime) in (request_data.multipart_data if request_data else {}).items()
        }
        path = urlsplit(url).path
        target = parse_api_path(path)
        if target is not None and target.method is not None and target.method.lower() == "getupdates":
            await self.api.async_wait_for_updates(params)
        answer = answer_request(self.api, method, path, params, files)
        if isinstance(answer, bytes):
            return 200, answer
        return answer.status, answer.payload

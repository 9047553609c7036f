"""Telegram Mini App sign-in: check the ``initData`` string the page received, exactly as Telegram documents.

``secret_key = HMAC_SHA256(key=b"WebAppData", msg=bot_token)``; the data-check string is every field but
``hash`` as ``key=value``, sorted by key and joined with ``\\n``; the data is Telegram's when the hex
``HMAC_SHA256(key=secret_key, msg=data_check_string)`` equals ``hash``. ``auth_date`` must be recent (and
not in the future beyond a small clock skew). Nothing here reads the database.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import parse_qsl

CLOCK_SKEW_S = 60  # an auth_date this far ahead of our clock is still accepted
MAX_LENGTH = 8192


class InitDataError(Exception):
    """The sign-in is not Telegram's, or too old; the message says which check failed (for the log)."""


@dataclass(frozen=True)
class WebAppUser:
    id: int
    first_name: str
    language_code: str | None
    auth_date: int


def secret_key(bot_token: str) -> bytes:
    return hmac.new(b"WebAppData", bot_token.encode(), hashlib.sha256).digest()


def data_check_string(fields: dict[str, str]) -> str:
    return "\n".join(f"{key}={fields[key]}" for key in sorted(fields) if key != "hash")


def signature(fields: dict[str, str], bot_token: str) -> str:
    return hmac.new(secret_key(bot_token), data_check_string(fields).encode(), hashlib.sha256).hexdigest()


def parse(init_data: str) -> dict[str, str]:
    """The fields of an ``initData`` query string; a repeated or malformed field is refused."""
    if not init_data or len(init_data) > MAX_LENGTH:
        raise InitDataError("empty or too long")
    try:
        pairs = parse_qsl(init_data, keep_blank_values=True, strict_parsing=True)
    except ValueError as exc:
        raise InitDataError("not a query string") from exc
    fields = dict(pairs)
    if len(fields) != len(pairs):
        raise InitDataError("a field is repeated")
    return fields


def validate(init_data: str, bot_token: str, *, now: datetime, max_age_s: int) -> WebAppUser:
    """The Telegram user the page was opened by, if ``init_data`` is Telegram's for this bot and fresh."""
    fields = parse(init_data)
    given = fields.get("hash", "")
    if not hmac.compare_digest(signature(fields, bot_token), given.lower()):
        raise InitDataError("bad hash")
    try:
        auth_date = int(fields["auth_date"])
    except (KeyError, ValueError) as exc:
        raise InitDataError("no auth_date") from exc
    age = now.timestamp() - auth_date
    if age > max_age_s:
        raise InitDataError("stale auth_date")
    if age < -CLOCK_SKEW_S:
        raise InitDataError("auth_date in the future")
    try:
        user = json.loads(fields["user"])
        user_id = int(user["id"])
    except (KeyError, ValueError, TypeError) as exc:
        raise InitDataError("no user") from exc
    language = user.get("language_code")
    return WebAppUser(id=user_id, first_name=str(user.get("first_name") or ""),
                      language_code=str(language) if language else None, auth_date=auth_date)

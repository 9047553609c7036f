"""Sign Mini App ``initData`` the way Telegram does, for the tests and for trying the console locally."""

from __future__ import annotations

import json
from datetime import datetime
from urllib.parse import quote, urlencode

from bot.web.initdata import signature


def sign_init_data(bot_token: str, user_id: int, *, auth_date: datetime, first_name: str = "Test",
                   language_code: str | None = "en", query_id: str = "AAH-sandbox") -> str:
    """An ``initData`` string for ``user_id``, signed with ``bot_token`` at ``auth_date``."""
    user: dict[str, object] = {"id": user_id, "first_name": first_name}
    if language_code:
        user["language_code"] = language_code
    fields = {"query_id": query_id, "user": json.dumps(user, ensure_ascii=False, separators=(",", ":")),
              "auth_date": str(int(auth_date.timestamp()))}
    fields["hash"] = signature(fields, bot_token)
    return urlencode(fields, quote_via=quote)


def console_link(base_url: str, init_data: str) -> str:
    """The console's address with the sign-in in the fragment, as Telegram opens a Mini App (never sent to
    the server in the URL: the page reads it and sends it in a header)."""
    return f"{base_url.rstrip('/')}/#tgWebAppData={quote(init_data, safe='')}"

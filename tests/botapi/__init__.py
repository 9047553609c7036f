"""The Bot API stand-in the tests talk to.

Its code lives in :mod:`bot.sandbox` (``botapi.py``: the fake server and the in-process
``FakeRequest``; ``http_server.py``: the same behind a real socket; ``updates.py``: update
factories; ``harness.py``: the real Application driven through it) because ``fieldbot demo`` ships
with the package and uses it too. The schema every call is checked against,
``bot/sandbox/botapi_schema.json``, is derived from the official Bot API reference by
``tools/derive_botapi_schema.py`` and committed, so no test reads anything outside the repository.
"""

from bot.sandbox.botapi import ApiCall, FakeBotApi, FakeRequest, load_schema
from bot.sandbox.harness import BotHarness, sandbox_settings
from bot.sandbox.http_server import FakeBotApiServer
from bot.sandbox.updates import FakeUser, UpdateFactory, to_update

__all__ = ["ApiCall", "BotHarness", "FakeBotApi", "FakeBotApiServer", "FakeRequest", "FakeUser", "UpdateFactory",
           "load_schema", "sandbox_settings", "to_update"]

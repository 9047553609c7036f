"""Drive the real ``Application`` against the Bot API stand-in: used by the tests and ``fieldbot demo``.

A :class:`BotHarness` owns a database, a settable clock and a :class:`FakeBotApi`. It can build the
application, feed it updates through ``process_update`` (as PTB does after polling), stop it and
build it again on the same database (a restart), and register staff the way the admin office does.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from telegram import Update

from bot.app import FieldbotApplication, build_application
from bot.clock import ManualClock
from bot.config import Settings
from bot.context import RUNTIME_KEY
from bot.runtime import Runtime
from bot.sandbox.botapi import ApiCall, FakeBotApi, FakeRequest
from bot.sandbox.updates import FakeUser, UpdateFactory
from bot.services import invites, staff
from bot.storage import migrate
from bot.storage.db import Database
from bot.storage.models import Role

TOKEN = "7000000001:FIELDBOT-SANDBOX-TOKEN"


def sqlite_url(path: Path) -> str:
    return f"sqlite+aiosqlite:///{path}"


# Where a sandboxed run keeps its database, given the file it would use: a SQLite file by default. The
# test suite swaps it to run everything on PostgreSQL (``FIELDBOT_TEST_DB=postgres``, tests/conftest.py).
database_url_for: Callable[[Path], str] = sqlite_url


def sandbox_settings(data_dir: Path, **overrides: Any) -> Settings:
    """Settings for a sandboxed run: a database for ``data_dir`` (a SQLite file in it unless the tests
    swapped :data:`database_url_for`), nothing read from ``.env``."""
    values: dict[str, Any] = {
        "token": TOKEN,
        "data_dir": data_dir,
    }
    values.update(overrides)
    if "database_url" not in values:
        values["database_url"] = database_url_for(data_dir / "fieldbot.db")
    return Settings(_env_file=None, **values)


class BotHarness:
    def __init__(self, settings: Settings, clock: ManualClock, api: FakeBotApi | None = None) -> None:
        self.settings = settings
        self.clock = clock
        self.api = api or FakeBotApi(clock=lambda: clock.now().timestamp())
        self.updates = UpdateFactory(self.api)
        self.db = Database(settings.database_url)
        self._app: FieldbotApplication | None = None

    @property
    def app(self) -> FieldbotApplication:
        if self._app is None:
            raise RuntimeError("the harness is not started")
        return self._app

    async def start(self) -> FieldbotApplication:
        await migrate.upgrade(self.db)
        app = build_application(self.settings, request=FakeRequest(self.api), database=self.db, clock=self.clock,
                                migrate_on_start=False)
        await app.initialize()
        if app.post_init is not None:
            await app.post_init(app)
        self._app = app
        return app

    async def stop(self) -> None:
        if self._app is not None:
            await self._app.shutdown()
            await self.runtime.media.close()  # an object store's client (post_shutdown's job in a real run)
            self._app = None

    async def restart(self) -> FieldbotApplication:
        """What a crash and a new process look like to the bot: everything in memory is gone."""
        await self.stop()
        return await self.start()

    async def close(self) -> None:
        await self.stop()
        await self.db.dispose()

    async def send(self, update: dict[str, Any]) -> list[ApiCall]:
        """Process one update the way polling would; return the Bot API calls it caused."""
        before = len(self.api.calls)
        await self.app.process_update(Update.de_json(update, self.app.bot))
        return self.api.calls[before:]

    async def replay(self, update: dict[str, Any]) -> list[ApiCall]:
        """Deliver the very same update again (what an unexpected updater stop can cause)."""
        return await self.send(update)

    def replies(self, calls: Sequence[ApiCall], chat_id: int | None = None) -> list[str]:
        """The texts (or captions) the bot sent among ``calls``."""
        texts = []
        for call in calls:
            if chat_id is not None and call.params.get("chat_id") != chat_id:
                continue
            text = call.params.get("text") or call.params.get("caption")
            if isinstance(text, str) and not call.failed:
                texts.append(text)
        return texts

    async def add_staff(self, name: str, role: Role, *, team: str | None = "A", supervisor_id: int | None = None,
                        phone: str | None = None, branch: str | None = None) -> tuple[int, str]:
        """Register a person as the admin office does; returns (staff id, invite code)."""
        async with self.db.write() as session:
            member = await staff.add_staff(session, name=name, role=role, team=team, supervisor_id=supervisor_id,
                                           phone=phone, now=self.clock.now(), branch=branch)
            code = await invites.create_invite(session, member.id, now=self.clock.now())
        return member.id, code

    async def onboard(self, user: FakeUser, name: str, role: Role, **kwargs: Any) -> int:
        """Register a person and have them send ``/start <code>``; returns their staff id."""
        staff_id, code = await self.add_staff(name, role, **kwargs)
        await self.send(self.updates.command(user, "/start", code))
        return staff_id

    def document_update(self, user: FakeUser, content: bytes, filename: str, *, caption: str | None = None,
                        mime_type: str = "application/octet-stream") -> dict[str, Any]:
        """A message in which ``user`` sends ``content`` as a file (the bot can download it)."""
        file_id, unique_id = self.api.add_file(content)
        return self.updates.document(user, file_id, unique_id, file_name=filename, mime_type=mime_type,
                                     size=len(content), caption=caption)

    @property
    def runtime(self) -> Runtime:
        runtime = self.app.bot_data[RUNTIME_KEY]
        assert isinstance(runtime, Runtime)
        return runtime

    async def deliver_outbox(self) -> int:
        """Run the outbox sweep once, as the job queue would."""
        from scheduler.outbox_sender import send_due

        return await send_due(self.app.bot, self.runtime)

    async def tick(self) -> dict[str, int]:
        """One tick of every sweep (deadlines, promises, reports, ..., then the outbox), as the job queue runs them."""
        from scheduler.jobs import run_all

        return await run_all(self.runtime, self.app.bot)

    def _register(self, content: bytes, kind: str, file_id: str | None) -> tuple[str, str]:
        digest = hashlib.sha256(content).hexdigest()[:16]
        file_id = file_id or f"{kind}-{digest}"
        unique = f"u-{kind}-{digest}"
        self.api.register_file(file_id, unique, size=len(content), content=content, kind=kind)
        return file_id, unique

    def photo_update(self, user: FakeUser, content: bytes, *, forwarded: bool = False) -> dict[str, Any]:
        """``user`` sends a (compressed) photo whose largest size has ``content``."""
        file_id, unique = self._register(content, "photo", None)
        return self.updates.photo(user, file_id, unique, size=len(content), forwarded=forwarded)

    def voice_update(self, user: FakeUser, content: bytes, *, duration: int = 42,
                     forwarded: bool = False) -> dict[str, Any]:
        """``user`` sends a voice note with ``content``."""
        file_id, unique = self._register(content, "voice", None)
        return self.updates.voice(user, file_id, unique, duration=duration, size=len(content), forwarded=forwarded)

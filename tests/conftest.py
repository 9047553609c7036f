"""Shared fixtures: a migrated database (SQLite, or PostgreSQL when asked), a settable clock."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from bot.clock import ManualClock
from bot.sandbox.harness import BotHarness, sandbox_settings
from bot.storage import migrate
from bot.storage.db import Database

pytest_plugins = ["tests.field_office"]

SHANGHAI = ZoneInfo("Asia/Shanghai")
PG_ENV = "FIELDBOT_TEST_PG_URL"


@pytest.fixture(scope="session", autouse=True)
def audit_key(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """One keys folder for the whole run (and the ``fieldbot`` processes tests start): the audit key is
    process-wide, as it is in production, where every process of a deployment shares the keys folder."""
    from bot.services import audit
    from bot.storage import keys

    folder = tmp_path_factory.mktemp("keys")
    os.environ["FIELDBOT_KEYS_DIR"] = str(folder)
    key = keys.load_or_create(folder, keys.AUDIT_KEY)
    audit.use_key(key)
    return key


@pytest.fixture
def clock() -> ManualClock:
    # Monday 2 November 2026, 09:00 in Shanghai: an ordinary working morning.
    return ManualClock(datetime(2026, 11, 2, 9, 0, tzinfo=SHANGHAI))


async def _fresh_pg_database(base_url: str) -> tuple[str, str]:
    """Create an empty database for one test next to the one in ``base_url``; return (url, name)."""
    import asyncpg  # type: ignore[import-untyped]
    from sqlalchemy.engine import make_url

    url = make_url(base_url)
    name = f"fieldbot_t_{uuid.uuid4().hex[:12]}"
    conn = await asyncpg.connect(user=url.username, password=url.password, host=url.host, port=url.port or 5432,
                                 database=url.database)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return url.set(database=name).render_as_string(hide_password=False), name


async def _drop_pg_database(base_url: str, name: str) -> None:
    import asyncpg
    from sqlalchemy.engine import make_url

    url = make_url(base_url)
    conn = await asyncpg.connect(user=url.username, password=url.password, host=url.host, port=url.port or 5432,
                                 database=url.database)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def any_database(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Database]:
    """The storage tests run on both backends; PostgreSQL only when FIELDBOT_TEST_PG_URL is set."""
    if request.param == "sqlite":
        database = Database(f"sqlite+aiosqlite:///{tmp_path / 'fieldbot.db'}")
        await migrate.upgrade(database)
        yield database
        await database.dispose()
        return
    base = os.environ.get(PG_ENV)
    if not base:
        pytest.skip(f"{PG_ENV} is not set")
    url, name = await _fresh_pg_database(base)  # fails (not skips) when the variable is set but the server is down
    database = Database(url)
    try:
        await migrate.upgrade(database)
        yield database
    finally:
        await database.dispose()
        await _drop_pg_database(base, name)


@pytest.fixture
async def database(tmp_path: Path) -> AsyncIterator[Database]:
    """A migrated SQLite database in the test's own folder."""
    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'fieldbot.db'}")
    await migrate.upgrade(database)
    yield database
    await database.dispose()


@pytest.fixture
async def harness(tmp_path: Path, clock: ManualClock) -> AsyncIterator[BotHarness]:
    """The real Application on a fresh SQLite database, talking to the Bot API stand-in.

    Every Bot API call the bot made is checked against the schema; a violation fails the test.
    """
    bot_harness = BotHarness(sandbox_settings(tmp_path), clock)
    await bot_harness.start()
    try:
        yield bot_harness
    finally:
        await bot_harness.close()
    assert bot_harness.api.violations == [], bot_harness.api.violations

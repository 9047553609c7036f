"""Shared fixtures: a migrated database (SQLite, or PostgreSQL when asked), a settable clock.

``FIELDBOT_TEST_DB=postgres`` runs the whole suite on PostgreSQL: every database a test asks for (the
``database`` and ``harness`` fixtures, :func:`bot.sandbox.harness.sandbox_settings`, the CLI and
subprocess tests through the ``db_urls`` fixture) is then a fresh PostgreSQL database of its own,
copied from a template migrated once per session and dropped when the test ends, pass or fail. The
server is ``FIELDBOT_TEST_PG_URL`` (default ``postgresql+asyncpg://postgres@127.0.0.1:5432/test``), so
the ``postgres``-marked tests run in the same run. Tests marked ``sqlite_only`` are skipped then.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import sqlite3
import uuid
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from contextlib import closing
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

import pytest

from bot.clock import ManualClock
from bot.sandbox import harness as harness_module
from bot.sandbox.harness import BotHarness, sandbox_settings
from bot.storage import migrate
from bot.storage.db import Database

pytest_plugins = ["tests.field_office"]

SHANGHAI = ZoneInfo("Asia/Shanghai")
PG_ENV = "FIELDBOT_TEST_PG_URL"
SWITCH_ENV = "FIELDBOT_TEST_DB"
DEFAULT_PG_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
ON_POSTGRES = os.environ.get(SWITCH_ENV, "").strip().lower() in {"postgres", "postgresql", "pg"}
# This run's databases are named after its process: fieldbot_tpl_<pid>x<random> (the template) and
# fieldbot_t_<pid>x<random>_<random> (one per test), so a later run can drop what a killed one left.
SESSION = f"{os.getpid()}x{uuid.uuid4().hex[:6]}"
TEMPLATE = f"fieldbot_tpl_{SESSION}"

T = TypeVar("T")


def pytest_configure(config: pytest.Config) -> None:
    if ON_POSTGRES:
        os.environ.setdefault(PG_ENV, DEFAULT_PG_URL)  # the postgres-marked tests run in the same run


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not ON_POSTGRES:
        return
    for item in items:
        marker = item.get_closest_marker("sqlite_only")
        if marker is not None:
            reason = marker.args[0] if marker.args else marker.kwargs.get("reason", "SQLite only")
            item.add_marker(pytest.mark.skip(reason=f"sqlite_only: {reason}"))


def _blocking(make: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run a coroutine to completion from sync code, also when the caller is inside a running loop."""
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, make()).result()


async def _admin(base_url: str, sql: str) -> None:
    import asyncpg  # type: ignore[import-untyped]
    from sqlalchemy.engine import make_url

    url = make_url(base_url)
    conn = await asyncpg.connect(user=url.username, password=url.password, host=url.host, port=url.port or 5432,
                                 database=url.database)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


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


async def _fresh_pg_database(base_url: str, template: str | None = None) -> tuple[str, str]:
    """Create a database for one test next to the one in ``base_url`` (empty, or a copy of ``template``);
    return (url, name)."""
    from sqlalchemy.engine import make_url

    name = f"fieldbot_t_{SESSION}_{uuid.uuid4().hex[:8]}"
    await _admin(base_url, f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else ""))
    return make_url(base_url).set(database=name).render_as_string(hide_password=False), name


async def _drop_pg_database(base_url: str, name: str) -> None:
    await _admin(base_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def _build_template(base_url: str) -> None:
    """The session's template: a database migrated once with the project's migrations, then let go
    (PostgreSQL refuses to copy a database somebody is connected to)."""
    from sqlalchemy.engine import make_url

    await _admin(base_url, f'DROP DATABASE IF EXISTS "{TEMPLATE}" WITH (FORCE)')  # a half-built one
    await _admin(base_url, f'CREATE DATABASE "{TEMPLATE}"')
    database = Database(make_url(base_url).set(database=TEMPLATE).render_as_string(hide_password=False))
    try:
        await migrate.upgrade(database)
    finally:
        await database.dispose()


def _left_behind(name: str) -> bool:
    """A database of this run, or of a run whose process is gone (killed before its teardown)."""
    parts = name.split("_")
    if len(parts) < 3 or "x" not in parts[2]:
        return False
    if parts[2] == SESSION:
        return True
    pid = parts[2].split("x", 1)[0]
    if not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


async def _drop_session_databases(base_url: str) -> None:
    """What this run left behind (a test killed half-way), its template, and the databases and templates
    of earlier runs on this machine that were killed before they could drop theirs."""
    import asyncpg
    from sqlalchemy.engine import make_url

    url = make_url(base_url)
    conn = await asyncpg.connect(user=url.username, password=url.password, host=url.host, port=url.port or 5432,
                                 database=url.database)
    try:
        names = [r[0] for r in await conn.fetch("SELECT datname FROM pg_database WHERE datname LIKE "
                                                "'fieldbot\\_t\\_%' OR datname LIKE 'fieldbot\\_tpl\\_%'")]
        for name in names:
            if _left_behind(name):
                await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


class TestDatabases:
    """The databases one test uses, one per path: SQLite files, or under the switch fresh PostgreSQL
    databases (a migrated copy of the session's template, or an empty one), dropped at the test's end."""

    __test__ = False  # not a test class

    def __init__(self, base_url: str | None) -> None:
        self.base_url = base_url
        self._urls: dict[tuple[str, bool], str] = {}
        self._names: list[str] = []

    @property
    def postgres(self) -> bool:
        return self.base_url is not None

    def url(self, path: Path, *, empty: bool = False) -> str:
        """The database URL for ``path``: the same database every time it is asked for the same path.

        On SQLite that is the file (empty until something migrates it); on PostgreSQL a database already
        migrated to the newest schema, or with ``empty=True`` one without a single table.
        """
        if self.base_url is None:
            return f"sqlite+aiosqlite:///{path}"
        key = (str(Path(path).absolute()), empty)
        if key not in self._urls:
            base = self.base_url
            template = None if empty else _template(base)
            url, name = _blocking(lambda: _fresh_pg_database(base, template))
            self._names.append(name)
            self._urls[key] = url
        return self._urls[key]

    def fetch(self, url: str, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        """Run one statement against ``url`` outside the bot (``?`` placeholders); the rows as tuples."""
        from sqlalchemy.engine import make_url

        parsed = make_url(url)
        if parsed.get_backend_name() == "sqlite":
            with closing(sqlite3.connect(str(parsed.database))) as connection, connection:
                return [tuple(row) for row in connection.execute(sql, params).fetchall()]

        async def run() -> list[tuple[Any, ...]]:
            import asyncpg

            numbered, n = "", 0
            for part in sql.split("?"):
                numbered += part if not n else f"${n}{part}"
                n += 1
            conn = await asyncpg.connect(user=parsed.username, password=parsed.password, host=parsed.host,
                                         port=parsed.port or 5432, database=parsed.database)
            try:
                return [tuple(row) for row in await conn.fetch(numbered, *params)]
            finally:
                await conn.close()

        return _blocking(run)

    def drop_all(self) -> None:
        if self.base_url is None or not self._names:
            return
        base, names = self.base_url, list(self._names)
        self._names.clear()

        async def drop() -> None:
            for name in names:
                await _drop_pg_database(base, name)

        _blocking(drop)


_template_built: dict[str, bool] = {}


def _template(base_url: str) -> str:
    if not _template_built.get(base_url):
        _blocking(lambda: _drop_session_databases(base_url))  # what killed runs left
        _blocking(lambda: _build_template(base_url))
        _template_built[base_url] = True
    return TEMPLATE


@pytest.fixture(scope="session", autouse=True)
def _postgres_session() -> Iterator[None]:
    yield
    base = os.environ.get(PG_ENV)
    if ON_POSTGRES and base:
        _blocking(lambda: _drop_session_databases(base))


@pytest.fixture(autouse=True)
def db_urls(monkeypatch: pytest.MonkeyPatch) -> Iterator[TestDatabases]:
    """The test's databases (see :class:`TestDatabases`); the harness's settings take theirs from here."""
    databases = TestDatabases(os.environ.get(PG_ENV, DEFAULT_PG_URL) if ON_POSTGRES else None)
    if databases.postgres:
        monkeypatch.setattr(harness_module, "database_url_for", databases.url)
    try:
        yield databases
    finally:
        databases.drop_all()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def any_database(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Database]:
    """The storage tests run on both backends; PostgreSQL only when FIELDBOT_TEST_PG_URL is set."""
    if request.param == "sqlite" and ON_POSTGRES:
        pytest.skip(f"{SWITCH_ENV}=postgres: this test runs as its [postgres] case")
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
async def database(tmp_path: Path, db_urls: TestDatabases) -> AsyncIterator[Database]:
    """A migrated database: a SQLite file in the test's own folder, or its own PostgreSQL database."""
    database = Database(db_urls.url(tmp_path / "fieldbot.db"))
    try:
        if not db_urls.postgres:  # the PostgreSQL copy comes migrated from the template
            await migrate.upgrade(database)
        yield database
    finally:
        await database.dispose()


@pytest.fixture
async def harness(tmp_path: Path, clock: ManualClock, db_urls: TestDatabases) -> AsyncIterator[BotHarness]:
    """The real Application on a fresh database (SQLite, or PostgreSQL under the switch), talking to the
    Bot API stand-in.

    Every Bot API call the bot made is checked against the schema; a violation fails the test.
    """
    bot_harness = BotHarness(sandbox_settings(tmp_path), clock)
    try:
        await bot_harness.start()
        yield bot_harness
    finally:
        await bot_harness.close()
    assert bot_harness.api.violations == [], bot_harness.api.violations

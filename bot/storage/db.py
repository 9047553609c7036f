"""The database engine and transactions.

SQLite (the embedded default) runs in WAL mode with a busy timeout and foreign keys on. Every
write transaction starts with ``BEGIN IMMEDIATE`` so it takes the write lock up front: a deferred
transaction that reads and then writes can fail at once with ``SQLITE_BUSY_SNAPSHOT`` whatever the
timeout. Read-only work uses :meth:`Database.read`, which begins a plain deferred transaction.
PostgreSQL needs none of this and gets the default behaviour.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import configure_mappers

import bot.storage.models  # noqa: F401  (the mappers configure_mappers() sets up)
from bot.storage.private import create_private_file

SQLITE_BUSY_TIMEOUT_MS = 15_000
SQLITE_MMAP_BYTES = 1 << 30
_BEGIN_OPTION = "fieldbot_sqlite_begin"


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def _prepare_sqlite_path(url: str) -> None:
    """The database file is created here, owner-only (0600 in a 0700 folder), before SQLite opens it;
    SQLite gives its ``-wal`` and ``-shm`` files the database file's mode."""
    database = make_url(url).database
    if database and database != ":memory:" and not database.startswith("file:"):
        create_private_file(Path(database).expanduser())


def _install_sqlite_hooks(engine: AsyncEngine) -> None:
    sync_engine = engine.sync_engine

    @event.listens_for(sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the driver, decide when a transaction begins.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        # Reads go straight to the OS page cache instead of being copied into SQLite's own (2 MB by
        # default): the visit list's scattered reads over a big file (address space, not memory, is reserved).
        cursor.execute(f"PRAGMA mmap_size={SQLITE_MMAP_BYTES}")
        cursor.close()

    @event.listens_for(sync_engine, "begin")
    def _on_begin(connection: Any) -> None:
        mode = connection.get_execution_options().get(_BEGIN_OPTION, "IMMEDIATE")
        connection.exec_driver_sql(f"BEGIN {mode}")


class Database:
    """One engine and its two kinds of transaction: :meth:`write` and :meth:`read`."""

    def __init__(self, url: str, *, echo: bool = False) -> None:
        self.url = url
        self.sqlite = is_sqlite(url)
        kwargs: dict[str, Any] = {"echo": echo}
        if self.sqlite:
            _prepare_sqlite_path(url)
            kwargs["connect_args"] = {"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000}
        else:
            kwargs["pool_pre_ping"] = True
        self.engine = create_async_engine(url, **kwargs)
        if self.sqlite:
            _install_sqlite_hooks(self.engine)
            reader = self.engine.execution_options(**{_BEGIN_OPTION: "DEFERRED"})
        else:
            reader = self.engine
        # Mapper set-up is slow the first time (tens of ms): do it here, not inside the first update.
        configure_mappers()
        self._writer = async_sessionmaker(self.engine, expire_on_commit=False)
        self._reader = async_sessionmaker(reader, expire_on_commit=False)

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncSession]:
        """A write transaction: commits when the block ends, rolls back on an exception."""
        async with self._writer() as session, session.begin():
            yield session

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncSession]:
        """A read transaction that never takes SQLite's write lock."""
        async with self._reader() as session, session.begin():
            yield session

    async def dispose(self) -> None:
        await self.engine.dispose()

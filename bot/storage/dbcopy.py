"""Copy a whole fieldbot database into a new, empty one: ``fieldbot db copy`` (SQLite to PostgreSQL, or
any pair of the supported databases).

* The source must be at the newest schema revision (``fieldbot db upgrade`` first); it is only read,
  in one transaction, so the copy is a consistent snapshot (a WAL read transaction on SQLite, a
  ``REPEATABLE READ`` read-only one on PostgreSQL). What a bot still running on the source writes
  after that is not in the copy: stop it first.
* The target must hold no row in any table (nor tables of something else); otherwise the copy is
  refused before anything is written. Then it is migrated to the newest revision.
* Every table of the models is copied in foreign-key order (``Base.metadata.sorted_tables``), rows in
  primary-key order, streamed from the source and inserted in batches, all in one transaction on the
  target: a failed copy leaves the target's tables empty. Rows pass through the models' column types,
  so aware datetimes, JSON, big integers, dates and booleans come out as they went in on either side.
* A column that refers to its own table (``staff.supervisor_id``) pointing at a row not copied yet is
  inserted empty and set once the table is in; the rows are in primary-key order, so that is only a
  person whose supervisor was registered after them.
* On PostgreSQL every serial column's sequence is set to continue after the highest id copied, so the
  next row the bot writes does not collide with a copied one. SQLite needs nothing (the next rowid is
  always the highest plus one).
* Then the rows of every table are counted on both sides (the source in the same snapshot).

``fieldbot db copy`` then verifies the audit chain on the target (``bot/cli_dbcopy.py``).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Column, Table, func, insert, inspect, select, text, update
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection

from bot.storage import migrate
from bot.storage.db import Database
from bot.storage.models import AuditEntry, Base, Instance

BATCH = 1_000

Progress = Callable[[str, int], None]


class CopyRefused(Exception):
    """The copy cannot start (nothing was written to the target's tables); one line saying why."""


class CopyFailed(Exception):
    """A table could not be copied (the target's transaction was rolled back); one line saying which."""


@dataclass(frozen=True)
class TableCount:
    name: str
    source: int
    target: int

    @property
    def ok(self) -> bool:
        return self.source == self.target


@dataclass
class CopyReport:
    tables: list[TableCount] = field(default_factory=list)
    sequences: int = 0  # PostgreSQL sequences set after the copy
    later: int = 0  # self-references set once their table was in
    seconds: float = 0.0
    source_head: tuple[int, str] | None = None  # the source's newest audit entry (seq, hash), in the snapshot
    source_heartbeat: datetime | None = None  # the newest heartbeat of a bot process in the source

    @property
    def ok(self) -> bool:
        return all(count.ok for count in self.tables)

    @property
    def rows(self) -> int:
        return sum(count.target for count in self.tables)


def display_url(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)


def _revision(connection: Connection) -> str | None:
    if migrate.VERSION_TABLE not in inspect(connection).get_table_names():
        return None
    return connection.execute(text(f"SELECT version_num FROM {migrate.VERSION_TABLE}")).scalar()


async def _check_source(source: Database) -> None:
    async with source.engine.connect() as connection:
        revision = await connection.run_sync(_revision)
    if revision is None:
        raise CopyRefused(f"the source {display_url(source.url)} is not a fieldbot database (no schema revision)")
    head = migrate.head_revision()
    if head is not None and revision != head:
        raise CopyRefused(f"the source is at schema revision {revision}, not the newest ({head}): "
                          "run `fieldbot db upgrade` on it first")


async def _check_target(target: Database) -> None:
    """Refuse a target that holds any row of a fieldbot table, or tables of something else; before it is
    migrated, so a wrong URL changes nothing there."""
    async with target.engine.connect() as connection:
        present = set(await connection.run_sync(lambda sync: inspect(sync).get_table_names()))
        ours = [table for table in Base.metadata.sorted_tables if table.name in present]
        if present and migrate.VERSION_TABLE not in present:
            names = sorted(present)
            shown = ", ".join(names[:3]) + (", …" if len(names) > 3 else "")
            raise CopyRefused(f"the target {display_url(target.url)} holds tables that are not a fieldbot "
                              f"database's ({shown}): copy only into a new, empty database")
        for table in ours:
            if (await connection.execute(select(text("1")).select_from(table).limit(1))).first() is not None:
                raise CopyRefused(f"the target {display_url(target.url)} is not empty (table {table.name} has "
                                  "rows): copy only into a new, empty database")
        await connection.rollback()


@asynccontextmanager
async def _snapshot(database: Database) -> AsyncIterator[AsyncConnection]:
    """One read transaction on the source that sees the same data from the first table to the last."""
    if database.sqlite:
        async with database.read() as session:  # BEGIN DEFERRED: WAL keeps the first read's snapshot
            yield await session.connection()
        return
    async with database.engine.connect() as connection:
        snapshot = await connection.execution_options(isolation_level="REPEATABLE READ", postgresql_readonly=True)
        async with snapshot.begin():
            yield snapshot


def _self_references(table: Table) -> list[tuple[Column[Any], Column[Any]]]:
    """(the referring column, the column it refers to) of every nullable foreign key to ``table`` itself."""
    return [(fk.parent, fk.column) for fk in table.foreign_keys if fk.column.table is table and fk.parent.nullable]


async def _copy_table(source: AsyncConnection, target: AsyncConnection, table: Table, *, batch: int,
                      progress: Progress | None) -> tuple[int, int]:
    """Stream ``table`` from the source into the target; returns (rows copied, self-references set later)."""
    key = list(table.primary_key.columns)
    refs = _self_references(table)
    seen: set[Any] = set()  # the referred-to values already copied (only for a table that refers to itself)
    later: list[tuple[dict[str, Any], str, Any]] = []
    copied = 0
    result = await source.stream(select(table).order_by(*key), execution_options={"yield_per": batch})
    async for rows in result.mappings().partitions(batch):
        values = []
        for mapping in rows:
            row = dict(mapping)
            for child, parent in refs:
                ref = row[child.key]
                if ref is not None and ref not in seen and ref != row[parent.key]:
                    later.append(({c.key: row[c.key] for c in key}, child.key, ref))
                    row[child.key] = None
            seen.update(row[parent.key] for _, parent in refs)
            values.append(row)
        await target.execute(insert(table), values)
        copied += len(values)
        if progress is not None:
            progress(table.name, copied)
    for where, column, ref in later:
        await target.execute(update(table).where(*(table.c[k] == v for k, v in where.items())).values({column: ref}))
    return copied, len(later)


async def _reset_sequences(target: AsyncConnection) -> int:
    """PostgreSQL: each serial (or identity) column's sequence continues after the highest id copied."""
    quote = target.dialect.identifier_preparer.quote
    reset = 0
    for table in Base.metadata.sorted_tables:
        column = table.autoincrement_column
        if column is None:
            continue
        sequence = await target.scalar(text("SELECT pg_get_serial_sequence(:table, :column)"),
                                       {"table": quote(table.name), "column": column.name})
        if sequence is None:
            continue
        await target.execute(text(f"SELECT setval(:sequence, COALESCE((SELECT max({quote(column.name)}) "
                                  f"FROM {quote(table.name)}), 0) + 1, false)"), {"sequence": sequence})
        reset += 1
    return reset


async def _count(connection: AsyncConnection, table: Table) -> int:
    return int(await connection.scalar(select(func.count()).select_from(table)) or 0)


def _first_line(exc: BaseException) -> str:
    message = str(getattr(exc, "orig", None) or exc)
    return message.splitlines()[0] if message else type(exc).__name__


async def copy_database(source: Database, target: Database, *, batch: int = BATCH,
                        progress: Progress | None = None) -> CopyReport:
    """Copy every row of ``source`` into the empty ``target`` (migrated here first); see the module's text."""
    if make_url(source.url) == make_url(target.url):
        raise CopyRefused("the source and the target are the same database")
    started = time.monotonic()
    await _check_source(source)
    await _check_target(target)
    await migrate.ensure_current(target)
    report = CopyReport()
    tables = Base.metadata.sorted_tables
    counts: dict[str, int] = {}
    async with _snapshot(source) as snapshot:
        head = (await snapshot.execute(select(AuditEntry.seq, AuditEntry.hash)
                                       .order_by(AuditEntry.seq.desc()).limit(1))).first()
        report.source_head = (int(head[0]), str(head[1])) if head is not None else None
        report.source_heartbeat = await snapshot.scalar(select(func.max(Instance.heartbeat_at)))
        async with target.engine.begin() as writer:
            for table in tables:
                counts[table.name] = await _count(snapshot, table)
                try:
                    _, later = await _copy_table(snapshot, writer, table, batch=batch, progress=progress)
                except DBAPIError as exc:
                    raise CopyFailed(f"copying table {table.name} failed, nothing was kept: {_first_line(exc)}") \
                        from exc
                report.later += later
            if not target.sqlite:
                report.sequences = await _reset_sequences(writer)
    async with target.read() as session:
        connection = await session.connection()
        report.tables = [TableCount(table.name, counts[table.name], await _count(connection, table))
                         for table in tables]
    report.seconds = time.monotonic() - started
    return report

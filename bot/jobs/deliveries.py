"""Webhook deliveries into the job store, group-committed.

:class:`DeliveryWriter` is what :meth:`bot.jobs.store.Store.record_delivery` calls. The
deliveries of concurrent requests are written in one transaction
(:class:`~bot.jobs.group_commit.GroupCommit`); each request is answered only once the
transaction holding its delivery has committed, and a failed commit fails (5xx) exactly
the requests that were in it.

SQLite: one multi-row ``INSERT … ON CONFLICT DO NOTHING RETURNING`` for the deliveries, one
``executemany`` for the commands of those that were new — run on the event loop's own
thread, over the standard library's driver — then the COMMIT, whose fsync is the slow part
(0.2 ms to tens of ms on the shared development disk), in one thread of the writer's own,
while the loop goes on reading requests. Handing the whole transaction to a thread cost
more: each statement's return for the GIL waited behind the busy loop, up to the
interpreter's 5 ms switch interval each time (aiosqlite is not used here for the same
reason); the COMMIT alone waits once per batch. The loop never waits for SQLite's write
lock, though: its connection has no busy timeout, and when another connection holds the
lock (a job's transaction, which may need this very loop to finish, or another process)
the whole batch is written from the thread, which waits for the lock as long as
``DATABASE_BUSY_TIMEOUT_MS`` allows (benchmarks/README.md has the measurements).

PostgreSQL: the writer keeps one connection of the asyncio engine for itself (no pool
checkout and ping per batch) and sends one statement per batch, deliveries and commands
together (``WITH new AS (INSERT … SELECT … FROM unnest(…) RETURNING) INSERT INTO commands
… WHERE delivery_id IN (SELECT … FROM new)``, one array parameter per column), between
BEGIN and COMMIT: three round trips to the server per batch instead of six. A connection
found broken before its COMMIT was sent (the server restarted between batches) is replaced
and the batch sent again once; one that breaks during the COMMIT fails its batch, since
whether it committed is unknown.

Durability: SQLite in WAL mode with ``synchronous=FULL`` (the default) fsyncs the log in
every commit (bot/jobs/engines.py); PostgreSQL's ``synchronous_commit`` (on by default)
flushes the WAL before the commit returns.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import sqlite3
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from bot.jobs.engines import SQLiteOptions, sqlite_sync_engine
from bot.jobs.group_commit import GroupCommit
from bot.jobs.records import CommandIn, DeliveryIn
from bot.jobs.tables import deliveries

Clock = Callable[[], dt.datetime]


class DeliveryWriter:
    """Stores deliveries for one store; :meth:`record` is safe to call concurrently."""

    def __init__(
        self, engine: AsyncEngine, clock: Clock, *, max_batch: int, sqlite: SQLiteOptions
    ) -> None:
        self.engine = engine
        self.clock = clock
        self._sqlite = sqlite
        self._sync_engine: Engine | None = None
        self._waiting_engine: Engine | None = None
        self._thread: ThreadPoolExecutor | None = None
        self._conn: AsyncConnection | None = None
        self._group = GroupCommit(self.write, max_batch=max_batch)

    async def record(self, delivery: DeliveryIn) -> bool:
        """True once the delivery is committed; False for a delivery id stored before."""
        return await self._group.submit(delivery)

    async def write(self, batch: Sequence[DeliveryIn]) -> list[bool]:
        """Store ``batch`` in one transaction. Per delivery, in order: True if it is new;
        False for an id already stored, or seen earlier in ``batch`` (nothing of it is
        stored: the first one's command stands)."""
        now = self.clock()
        first: dict[str, DeliveryIn] = {}
        for delivery in batch:
            first.setdefault(delivery.delivery_id, delivery)
        unique = list(first.values())
        if self.engine.dialect.name == "sqlite":
            new = await self._write_sqlite(unique, now)  # on the loop: see the docstring
        else:
            new = await self._write_postgres(unique, now)
        answers: list[bool] = []
        for delivery in batch:
            answers.append(delivery.delivery_id in new)
            new.discard(delivery.delivery_id)  # a repeat later in the batch is a duplicate
        return answers

    async def close(self) -> None:
        await self._group.close()
        if self._conn is not None:
            conn, self._conn = self._conn, None
            await conn.close()
        if self._thread is not None:
            self._thread.shutdown(wait=True)
            self._thread = None
        for engine in (self._sync_engine, self._waiting_engine):
            if engine is not None:
                engine.dispose()
        self._sync_engine = self._waiting_engine = None

    async def _write_sqlite(self, batch: list[DeliveryIn], now: dt.datetime) -> set[str]:
        if self._sync_engine is None:
            # Never waits for the write lock: the loop it would block may be what holds it.
            nowait = dataclasses.replace(self._sqlite, busy_timeout_ms=0)
            self._sync_engine = sqlite_sync_engine(self.engine.url, nowait)
        with self._sync_engine.connect() as conn:
            try:
                transaction = conn.begin()  # BEGIN IMMEDIATE: the write lock, or SQLITE_BUSY
            except OperationalError as exc:
                if not _busy(exc):
                    raise
            else:
                try:
                    new = store_deliveries(conn, batch, now)
                except BaseException:
                    transaction.rollback()
                    raise
                # The COMMIT (its fsync) in the writer's thread, which lets go of the GIL
                # for it: the loop reads the next batch's requests meanwhile.
                loop = asyncio.get_running_loop()
                commit = loop.run_in_executor(self._waiting_thread(), transaction.commit)
                try:
                    await asyncio.shield(commit)
                except asyncio.CancelledError:
                    # The thread commits all the same: the connection is not touched (or
                    # closed) before it is done.
                    await asyncio.wait([commit])
                    if commit.exception() is not None:
                        conn.invalidate()
                    raise
                except BaseException:
                    # Whatever the COMMIT left (a transaction still open, with the write
                    # lock) goes with the connection: closing it rolls back.
                    conn.invalidate()
                    raise
                return new
        # Another connection is writing (a job's transaction on this loop, or another
        # process): wait for it in a thread, as long as the busy timeout allows.
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._waiting_thread(), self._write_waiting, batch, now)

    def _waiting_thread(self) -> ThreadPoolExecutor:
        if self._thread is None:
            self._thread = ThreadPoolExecutor(1, thread_name_prefix="deliveries")
        return self._thread

    def _write_waiting(self, batch: list[DeliveryIn], now: dt.datetime) -> set[str]:
        if self._waiting_engine is None:  # created (and only used) in the writer's thread
            self._waiting_engine = sqlite_sync_engine(self.engine.url, self._sqlite)
        with self._waiting_engine.begin() as conn:
            return store_deliveries(conn, batch, now)

    async def _write_postgres(self, batch: list[DeliveryIn], now: dt.datetime) -> set[str]:
        for attempt in (1, 2):
            conn = self._conn
            if conn is None or conn.invalidated or conn.closed:
                conn = self._conn = await self.engine.connect()
            committing = False
            try:
                async with conn.begin():
                    new = await conn.run_sync(store_deliveries, batch, now)
                    committing = True
                return new
            except BaseException as exc:
                # Back to the pool, which rolls back whatever is left of the transaction (a
                # failed COMMIT leaves it open) or drops the connection if it is broken.
                self._conn = None
                await _discard(conn)
                broken = isinstance(exc, DBAPIError) and exc.connection_invalidated
                if attempt == 2 or committing or not broken:
                    raise
        raise AssertionError("unreachable")


def _busy(exc: OperationalError) -> bool:
    """SQLITE_BUSY: another connection holds the write lock."""
    return getattr(exc.orig, "sqlite_errorcode", None) == sqlite3.SQLITE_BUSY


async def _discard(conn: AsyncConnection) -> None:
    with contextlib.suppress(Exception):  # a broken connection may fail to close
        await conn.close()


def store_deliveries(conn: Connection, batch: Sequence[DeliveryIn], now: dt.datetime) -> set[str]:
    """Insert the deliveries (distinct ids) not stored yet and their commands; their ids.

    Plain SQL on the driver: SQLAlchemy's compiled statements cost about as much per row as
    everything else in a webhook request."""
    if not batch:
        return set()
    stamp = _bind(conn, deliveries.c.received_at, now)
    if conn.dialect.name == "postgresql":
        return _store_postgres(conn, batch, stamp)
    rows = [_delivery_row(d, stamp) for d in batch]
    sql = _insert_sql(conn, "deliveries", list(rows[0]), len(rows))
    sql += " ON CONFLICT (delivery_id) DO NOTHING RETURNING delivery_id"
    values = tuple(v for row in rows for v in row.values())
    new = {str(r[0]) for r in conn.exec_driver_sql(sql, values)}
    commanded = [
        _command_row(d.delivery_id, d.command, stamp)
        for d in batch
        if d.command is not None and d.delivery_id in new
    ]
    if commanded:
        sql = _insert_sql(conn, "commands", list(commanded[0]), 1)
        conn.exec_driver_sql(sql, [tuple(row.values()) for row in commanded])
    return new


# PostgreSQL: the whole batch in one statement of constant text, one array per column
# (unnest): psycopg caches its conversion of the query and, after a few batches, the
# server keeps it prepared; a VALUES list the length of the batch was parsed afresh, on
# both sides, every time (psycopg's conversion alone cost a sixth of a request's CPU).
_PG_DELIVERY_COLUMNS = {
    "delivery_id": "text",
    "event": "text",
    "action": "text",
    "installation_id": "bigint",
    "repository": "text",
}
_PG_COMMAND_COLUMNS = {
    "delivery_id": "text",
    "name": "text",
    "argument": "text",
    "body": "text",
    "requester": "text",
    "installation_id": "bigint",
    "repository": "text",
    "issue": "integer",
    "comment_id": "bigint",
}


def _unnest(columns: dict[str, str], alias: str) -> str:
    arrays = ", ".join(f"%s::{kind}[]" for kind in columns.values())
    return f"unnest({arrays}) AS {alias} ({', '.join(columns)})"


# Names from our own tables (bot/jobs/tables.py); every value is a parameter. The rows go
# in by delivery id (ORDER BY), so two writers (two processes on one database) whose
# batches share ids take those rows' locks in the same order: one waits for the other's
# commit and skips what it stored, where opposite orders deadlocked and failed a batch.
_PG_STORE = (
    f"WITH new AS (INSERT INTO deliveries ({', '.join(_PG_DELIVERY_COLUMNS)}, received_at) "  # noqa: S608
    f"SELECT d.*, %s::timestamp FROM {_unnest(_PG_DELIVERY_COLUMNS, 'd')} "
    "ORDER BY d.delivery_id ON CONFLICT (delivery_id) DO NOTHING RETURNING delivery_id), "
    f"cmd AS (INSERT INTO commands ({', '.join(_PG_COMMAND_COLUMNS)}, created_at, state) "
    f"SELECT c.*, %s::timestamp, 'pending' FROM {_unnest(_PG_COMMAND_COLUMNS, 'c')} "
    "WHERE c.delivery_id IN (SELECT delivery_id FROM new)) "
    "SELECT delivery_id FROM new"
)


def _store_postgres(conn: Connection, batch: Sequence[DeliveryIn], stamp: Any) -> set[str]:
    """Deliveries and their commands in one statement: the commands of the deliveries the
    first INSERT stored (its RETURNING), none of those it skipped as already stored."""
    rows = [_delivery_row(d, stamp) for d in batch]
    commanded = [_command_row(d.delivery_id, d.command, stamp) for d in batch if d.command]
    # In the order of the statement's markers: each SELECT's time, then its arrays.
    values: list[Any] = [stamp, *([row[c] for row in rows] for c in _PG_DELIVERY_COLUMNS)]
    values += [stamp, *([row[c] for row in commanded] for c in _PG_COMMAND_COLUMNS)]
    return {str(r[0]) for r in conn.exec_driver_sql(_PG_STORE, tuple(values))}


def _bind(conn: Connection, column: Any, value: Any) -> Any:
    """``value`` as the column's type writes it (UTC, and SQLite's text form of a time)."""
    process = column.type.dialect_impl(conn.dialect).bind_processor(conn.dialect)
    return process(value) if process is not None else value


def _insert_sql(conn: Connection, table: str, columns: list[str], rows: int) -> str:
    """SQLite's multi-row INSERT (qmark markers); PostgreSQL's batch is ``_PG_STORE``."""
    quote = conn.dialect.identifier_preparer.quote
    one = "(" + ", ".join(["?"] * len(columns)) + ")"
    names = ", ".join(quote(c) for c in columns)
    # Names from our own tables (bot/jobs/tables.py), quoted; every value is a parameter.
    return f"INSERT INTO {quote(table)} ({names}) VALUES " + ", ".join([one] * rows)  # noqa: S608


def _delivery_row(delivery: DeliveryIn, now: Any) -> dict[str, Any]:
    return {
        "delivery_id": delivery.delivery_id,
        "event": delivery.event,
        "action": delivery.action,
        "installation_id": delivery.installation_id,
        "repository": delivery.repository,
        "received_at": now,
    }


def _command_row(delivery_id: str, command: CommandIn, now: Any) -> dict[str, Any]:
    return {
        "delivery_id": delivery_id,
        "name": command.name,
        "argument": command.argument,
        "body": command.body,
        "requester": command.requester,
        "installation_id": command.installation_id,
        "repository": command.repository,
        "issue": command.issue,
        "comment_id": command.comment_id,
        "created_at": now,
        "state": "pending",
    }

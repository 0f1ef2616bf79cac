"""Webhook deliveries into the job store, group-committed.

:class:`DeliveryWriter` is what :meth:`bot.jobs.store.Store.record_delivery` calls. The
deliveries of concurrent requests are written in one transaction
(:class:`~bot.jobs.group_commit.GroupCommit`): one multi-row ``INSERT … ON CONFLICT DO
NOTHING RETURNING`` for the deliveries, one ``executemany`` for the commands of those
that were new, one commit. Each request is answered only once the transaction holding its
delivery has committed; a failed commit fails (5xx) exactly the requests that were in it.

On SQLite the transaction runs whole in one thread of its own over the standard library's
driver (aiosqlite would hand every statement to its thread and back, each time waiting for
the GIL the busy event loop holds); on PostgreSQL it is one transaction on the asyncio
engine. Durability: SQLite in WAL mode with ``synchronous=FULL`` (the default) fsyncs the
log in every commit (bot/jobs/engines.py); PostgreSQL's ``synchronous_commit`` (on by
default) flushes the WAL before the commit returns.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from sqlalchemy.engine import Connection, Engine
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.jobs.engines import SQLiteOptions, sqlite_thread_engine
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
        self._thread_engine: Engine | None = None
        self._thread: ThreadPoolExecutor | None = None
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
            loop = asyncio.get_running_loop()
            new = await loop.run_in_executor(self._sqlite_thread(), self._write_sync, unique, now)
        else:
            async with self.engine.begin() as conn:
                new = await conn.run_sync(store_deliveries, unique, now)
        answers: list[bool] = []
        for delivery in batch:
            answers.append(delivery.delivery_id in new)
            new.discard(delivery.delivery_id)  # a repeat later in the batch is a duplicate
        return answers

    async def close(self) -> None:
        await self._group.close()
        if self._thread is not None:
            self._thread.shutdown(wait=True)
            self._thread = None
        if self._thread_engine is not None:
            self._thread_engine.dispose()
            self._thread_engine = None

    def _sqlite_thread(self) -> ThreadPoolExecutor:
        if self._thread is None:
            self._thread = ThreadPoolExecutor(1, thread_name_prefix="deliveries")
        return self._thread

    def _write_sync(self, batch: list[DeliveryIn], now: dt.datetime) -> set[str]:
        if self._thread_engine is None:  # created (and only used) in the writer's thread
            self._thread_engine = sqlite_thread_engine(self.engine.url, self._sqlite)
        with self._thread_engine.begin() as conn:
            return store_deliveries(conn, batch, now)


def store_deliveries(conn: Connection, batch: Sequence[DeliveryIn], now: dt.datetime) -> set[str]:
    """Insert the deliveries (distinct ids) not stored yet and their commands; their ids.

    Plain SQL on the driver, the same for SQLite and PostgreSQL: SQLAlchemy's compiled
    statements cost about as much per row as everything else in a webhook request."""
    if not batch:
        return set()
    stamp = _bind(conn, deliveries.c.received_at, now)
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


def _bind(conn: Connection, column: Any, value: Any) -> Any:
    """``value`` as the column's type writes it (UTC, and SQLite's text form of a time)."""
    process = column.type.dialect_impl(conn.dialect).bind_processor(conn.dialect)
    return process(value) if process is not None else value


def _insert_sql(conn: Connection, table: str, columns: list[str], rows: int) -> str:
    quote = conn.dialect.identifier_preparer.quote
    mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
    one = "(" + ", ".join([mark] * len(columns)) + ")"
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

"""The job store's database engines: one asyncio engine per store, and for SQLite a plain
(thread) engine the delivery writer uses.

SQLite gets WAL, a busy timeout, foreign keys, ``synchronous=FULL`` and ``BEGIN IMMEDIATE``
transactions on every connection of either engine.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import sqlalchemy
from sqlalchemy import event
from sqlalchemy.engine import URL, Engine
from sqlalchemy.engine import Connection as SyncConnection
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine


def _sqlite_pragmas(busy_timeout_ms: int) -> Callable[[Any, Any], None]:
    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Our own BEGIN (below) instead of the driver's deferred one.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        cursor.execute("PRAGMA foreign_keys=ON")
        # FULL: in WAL mode every commit fsyncs the log before it returns, so a 202 survives
        # a power cut, not only a crash of this process (all NORMAL promises). Group commit
        # (bot/jobs/deliveries.py) makes that one fsync per batch of deliveries.
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.close()

    return on_connect


def _begin_immediate(conn: SyncConnection) -> None:
    # Take the write lock at the start: a read-then-write transaction can then never fail
    # with "database is locked" half-way, and limit checks see no concurrent writer.
    conn.exec_driver_sql("BEGIN IMMEDIATE")


def _sqlite_events(engine: Engine, busy_timeout_ms: int) -> None:
    event.listen(engine, "connect", _sqlite_pragmas(busy_timeout_ms))
    event.listen(engine, "begin", _begin_immediate)


def create_engine(url: str, *, busy_timeout_ms: int = 10_000, pool_size: int = 5) -> AsyncEngine:
    """An engine for ``url``; SQLite gets WAL, a busy timeout and immediate transactions."""
    if url.startswith("sqlite"):
        engine = create_async_engine(url, connect_args={"timeout": busy_timeout_ms / 1000})
        _sqlite_events(engine.sync_engine, busy_timeout_ms)
        return engine
    return create_async_engine(url, pool_pre_ping=True, pool_size=pool_size, max_overflow=5)


def sqlite_thread_engine(url: URL, *, busy_timeout_ms: int) -> Engine:
    """A plain engine (the standard library's sqlite3) on the same file as an aiosqlite
    ``url``, for work done whole in one thread: one hand-over per transaction instead of one
    per statement, each of which waits for the event loop's thread to let go of the GIL."""
    engine = sqlalchemy.create_engine(
        url.set(drivername="sqlite+pysqlite"),
        connect_args={"timeout": busy_timeout_ms / 1000},
        pool_size=1,
        max_overflow=0,
    )
    _sqlite_events(engine, busy_timeout_ms)
    return engine

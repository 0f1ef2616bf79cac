"""The job store's database engines: one asyncio engine per store, and for SQLite a plain
engine the delivery writer uses on the event loop's thread.

SQLite gets WAL, a busy timeout, foreign keys, ``synchronous=FULL`` (or NORMAL, see
:class:`SQLiteOptions`) and ``BEGIN IMMEDIATE`` transactions on every connection of either
engine.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import sqlalchemy
from sqlalchemy import event
from sqlalchemy.engine import URL, Engine
from sqlalchemy.engine import Connection as SyncConnection
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

Synchronous = Literal["full", "normal"]


@dataclass(frozen=True)
class SQLiteOptions:
    """How SQLite connections are set up (``DATABASE_BUSY_TIMEOUT_MS``, ``SQLITE_SYNCHRONOUS``)."""

    busy_timeout_ms: int = 10_000
    # full: in WAL mode every commit fsyncs the log before it returns, so a 202 survives a
    # power cut, not only a crash of the bot (all that normal promises: the commit is in the
    # log file, in the OS's cache, and a crash or kill of the process keeps it). Group
    # commit (bot/jobs/deliveries.py) makes that one fsync per batch of deliveries.
    synchronous: Synchronous = "full"


def _sqlite_pragmas(options: SQLiteOptions) -> Callable[[Any, Any], None]:
    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Our own BEGIN (below) instead of the driver's deferred one.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={int(options.busy_timeout_ms)}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA synchronous={_SYNCHRONOUS[options.synchronous]}")
        cursor.close()

    return on_connect


DEFAULT_SQLITE = SQLiteOptions()
_SYNCHRONOUS: dict[Synchronous, str] = {"full": "FULL", "normal": "NORMAL"}


def _begin_immediate(conn: SyncConnection) -> None:
    # Take the write lock at the start: a read-then-write transaction can then never fail
    # with "database is locked" half-way, and limit checks see no concurrent writer.
    conn.exec_driver_sql("BEGIN IMMEDIATE")


def _sqlite_events(engine: Engine, options: SQLiteOptions) -> None:
    event.listen(engine, "connect", _sqlite_pragmas(options))
    event.listen(engine, "begin", _begin_immediate)


def create_engine(
    url: str, *, sqlite: SQLiteOptions = DEFAULT_SQLITE, pool_size: int = 5
) -> AsyncEngine:
    """An engine for ``url``; SQLite gets WAL, a busy timeout and immediate transactions."""
    if url.startswith("sqlite"):
        engine = create_async_engine(url, connect_args={"timeout": sqlite.busy_timeout_ms / 1000})
        _sqlite_events(engine.sync_engine, sqlite)
        return engine
    return create_async_engine(url, pool_pre_ping=True, pool_size=pool_size, max_overflow=5)


def sqlite_sync_engine(url: URL, options: SQLiteOptions) -> Engine:
    """A plain engine (the standard library's sqlite3) on the same file as an aiosqlite
    ``url``, for the delivery writer (bot/jobs/deliveries.py): its statements run on the
    event loop's thread and its COMMIT in the writer's thread — no hand-over to aiosqlite's
    thread per statement, each of which waited for the busy loop to let go of the GIL. One
    connection, used by one of those threads at a time (hence ``check_same_thread=False``)."""
    engine = sqlalchemy.create_engine(
        url.set(drivername="sqlite+pysqlite"),
        connect_args={"timeout": options.busy_timeout_ms / 1000, "check_same_thread": False},
        pool_size=1,
        max_overflow=0,
    )
    _sqlite_events(engine, options)
    return engine

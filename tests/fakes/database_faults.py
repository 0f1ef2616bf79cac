"""Faults injected into every SQLAlchemy engine of the process (the job store's asyncio
engine and the delivery writer's SQLite thread engine alike), for as long as a block runs."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine


class InjectedFault(RuntimeError):
    """What an injected fault raises."""


@contextlib.contextmanager
def failing_commits() -> Iterator[list[int]]:
    """Every commit fails (the transaction is rolled back); yields the failed-commit count."""
    failed: list[int] = [0]

    def fail(conn: Any) -> None:
        failed[0] += 1
        raise InjectedFault("injected: the commit failed")

    event.listen(Engine, "commit", fail)
    try:
        yield failed
    finally:
        event.remove(Engine, "commit", fail)


@contextlib.contextmanager
def failing_statements(containing: str) -> Iterator[None]:
    """Every statement whose parameters hold ``containing`` fails: one bad row."""

    def fail(conn: Any, cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if containing in repr(parameters):
            raise InjectedFault(f"injected: a statement with {containing!r} failed")

    event.listen(Engine, "before_cursor_execute", fail)
    try:
        yield
    finally:
        event.remove(Engine, "before_cursor_execute", fail)

"""Group commit: items submitted concurrently are written together, in one transaction.

One writer task per event loop takes everything that was submitted since its last commit
(at most ``max_batch`` at a time), hands it to ``write`` (one transaction), and only after
that returns resolves each submitter's future with its own answer. Nothing waits on a
timer: while one batch commits, the next one gathers, so a lone item commits at once and
fifty concurrent ones share one commit (one fsync on SQLite, one WAL flush on PostgreSQL).

A batch whose write fails fails every submitter in it (the webhook then answers 5xx, never
a 202). When the error could belong to one row rather than the database, each item of the
batch is tried again on its own, so one bad row does not fail its neighbours.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Generic, TypeVar

from sqlalchemy.exc import InterfaceError, OperationalError

T = TypeVar("T")
R = TypeVar("R")

Write = Callable[[Sequence[T]], Awaitable[Sequence[R]]]

# Errors that say nothing about a single row (lock timeout, disk, connection): trying each
# item alone would only fail them all again, one by one.
_WHOLE_BATCH_ERRORS = (OperationalError, InterfaceError)


class GroupCommit(Generic[T, R]):
    def __init__(self, write: Write[T, R], *, max_batch: int) -> None:
        if max_batch < 1:
            raise ValueError("max_batch must be at least 1")
        self._write = write
        self._max_batch = max_batch
        self._pending: list[tuple[T, asyncio.Future[R]]] = []
        self._wakeup: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping = False

    async def submit(self, item: T) -> R:
        """``item`` written and committed together with whatever else is pending; its own
        answer from ``write``. Raises what the write raised if its batch failed."""
        loop = asyncio.get_running_loop()
        self._ensure_writer(loop)
        assert self._wakeup is not None
        future: asyncio.Future[R] = loop.create_future()
        future.add_done_callback(_observe)
        self._pending.append((item, future))
        self._wakeup.set()
        # A cancelled submitter (the client went away) cancels only its own future: the
        # item is written all the same.
        return await future

    async def close(self) -> None:
        """Write what is pending (a batch being written finishes), then stop the writer."""
        task, self._task = self._task, None
        if task is None or task.done() or self._wakeup is None:
            return
        if task.get_loop() is not asyncio.get_running_loop():
            return  # its loop is gone: so are the submitters waiting on it
        self._stopping = True
        self._wakeup.set()
        await task

    def _ensure_writer(self, loop: asyncio.AbstractEventLoop) -> None:
        if self._task is not None and not self._task.done() and self._loop is loop:
            return
        if self._loop is not loop:
            # A new event loop (a store reused across asyncio.run calls): whoever waited
            # on the old one is gone with it.
            self._pending = []
        self._loop = loop
        self._stopping = False
        self._wakeup = asyncio.Event()
        self._task = loop.create_task(self._run(self._wakeup), name="group-commit")

    def _take(self) -> list[tuple[T, asyncio.Future[R]]]:
        batch = self._pending[: self._max_batch]
        del self._pending[: self._max_batch]
        return batch

    async def _run(self, wakeup: asyncio.Event) -> None:
        while True:
            await wakeup.wait()
            wakeup.clear()
            while self._pending:
                await self._commit(self._take())
            if self._stopping:
                return

    async def _commit(self, batch: list[tuple[T, asyncio.Future[R]]]) -> None:
        try:
            answers = await self._write([item for item, _ in batch])
        except BaseException as exc:
            if not isinstance(exc, Exception):  # cancelled, or the process stops
                for _, future in batch:
                    future.cancel()
                raise
            await self._failed(batch, exc)
        else:
            if len(answers) != len(batch):
                _fail(batch, RuntimeError(f"{len(answers)} answers for {len(batch)} items"))
                return
            for (_, future), answer in zip(batch, answers, strict=True):
                if not future.done():
                    future.set_result(answer)

    async def _failed(self, batch: list[tuple[T, asyncio.Future[R]]], exc: Exception) -> None:
        if isinstance(exc, _WHOLE_BATCH_ERRORS) or len(batch) == 1:
            _fail(batch, exc)
        else:
            for one in batch:
                await self._commit([one])


def _observe(future: asyncio.Future[Any]) -> None:
    # Mark a failure as seen: its submitter may have been cancelled and never look.
    if not future.cancelled():
        future.exception()


def _fail(batch: Sequence[tuple[object, asyncio.Future[R]]], exc: BaseException) -> None:
    for _, future in batch:
        if not future.done():
            future.set_exception(exc)

"""A job's phases as job event rows and progress, written in order as they happen.

The pipeline's Reporter calls are synchronous; this one queues them and a task writes them
to the store, so a phase never waits for the database. ``close`` flushes what is left.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import structlog

from bot.jobs.store import EventKind, Store
from bot.pipeline.context import JobProgress, PhaseRecord, Reporter

log = structlog.get_logger(__name__)

_Item = tuple[EventKind, str, str, dict[str, Any] | None]


class EventReporter:
    """Writes ``phase_started`` / ``phase_note`` / ``phase_finished`` as job events and
    keeps the job row's ``phase`` and ``progress`` current; passes each call on to
    ``also`` (a terminal, a tracking comment) when given."""

    def __init__(self, store: Store, job_id: str, owner: str, also: Reporter | None = None):
        self.store = store
        self.job_id = job_id
        self.owner = owner
        self.also = also
        self.progress: dict[str, dict[str, Any]] = {}
        self.phase: str | None = None
        self._items: asyncio.Queue[_Item | None] = asyncio.Queue()
        self._task = asyncio.create_task(self._drain())

    def _put(self, kind: EventKind, phase: str, message: str = "", data: Any = None) -> None:
        self._items.put_nowait((kind, phase, message, data))

    def phase_started(self, phase: str) -> None:
        self.phase = phase
        self.progress[phase] = {"state": "running"}
        self._put(EventKind.PHASE_STARTED, phase)
        if self.also is not None:
            self.also.phase_started(phase)

    def phase_note(self, phase: str, note: str) -> None:
        self.progress.setdefault(phase, {})["note"] = note
        self._put(EventKind.PHASE_NOTE, phase, note)
        if self.also is not None:
            self.also.phase_note(phase, note)

    def phase_finished(self, phase: str, record: PhaseRecord) -> None:
        entry = self.progress.setdefault(phase, {})
        entry.update(state=record.state, wall_s=round(record.wall_s, 3))
        if record.error:
            entry["error"] = record.error
        self._put(EventKind.PHASE_FINISHED, phase, record.error, dict(entry))
        if self.also is not None:
            self.also.phase_finished(phase, record)

    def progress_changed(self, progress: JobProgress) -> None:
        # Counters change with every model call: the row gets them at the end (usage).
        if self.also is not None:
            self.also.progress_changed(progress)

    async def _drain(self) -> None:
        while (item := await self._items.get()) is not None:
            kind, phase, message, data = item
            try:
                await self.store.add_event(
                    self.job_id,
                    kind,
                    phase=phase,
                    message=message,
                    data=data,
                    progress=self.progress,
                    owner=self.owner,
                )
            except Exception as exc:  # a lost event must not stop the job
                log.warning("job.event_lost", job_id=self.job_id, error=str(exc))

    async def close(self) -> None:
        self._items.put_nowait(None)
        with contextlib.suppress(Exception):
            await self._task

"""The tracking comment of a running job: a pipeline Reporter that edits one comment.

Phase changes arrive synchronously from the pipeline; edits go out from one background
task, at most one per ``interval_s``, and ``close`` always writes the last state (waiting
out what is left of the interval after the previous edit), so the comment never stays
behind the job and never changes faster than GitHub is asked to bear.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import replace

import structlog

from bot import status
from bot.pipeline.context import JobProgress, PhaseRecord
from bot.status import PhaseLine, PhaseState, TrackingView

log = structlog.get_logger("bot.tracking")
Edit = Callable[[str], Awaitable[None]]
_STATES: dict[str, PhaseState] = {
    "pending": "waiting",
    "running": "running",
    "passed": "done",
    "failed": "failed",
    "cancelled": "cancelled",
    "skipped": "skipped",
}


class TrackingReporter:
    def __init__(
        self,
        edit: Edit,
        *,
        job_id: str,
        requester: str,
        phases: Sequence[str],
        interval_s: float,
        attempt: int = 1,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._edit = edit
        self._clock = clock
        self.interval_s = interval_s
        self.started = clock()
        self.lines: dict[str, PhaseLine] = {p: PhaseLine(p, "waiting") for p in phases}
        self.view = TrackingView(
            job_id=job_id, requester=requester, state="running", phases=(), attempt=attempt
        )
        self._dirty = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.edits = 0
        # time.monotonic() when the last edit ended (answered or failed): the interval runs
        # from there to the next one's start, however long rendering or the request took.
        self._last_edit: float | None = None

    # ------------------------------------------------------------ Reporter

    def phase_started(self, phase: str) -> None:
        self.lines[phase] = PhaseLine(phase, "running")
        self._change(activity=status.activity_phase_started(phase))

    def phase_note(self, phase: str, note: str) -> None:
        self.lines[phase] = replace(self.lines.get(phase, PhaseLine(phase, "running")), note=note)
        self._change(activity=note)

    def phase_finished(self, phase: str, record: PhaseRecord) -> None:
        note = record.error or self.lines.get(phase, PhaseLine(phase, "waiting")).note
        self.lines[phase] = PhaseLine(phase, _STATES[record.state], record.wall_s, note)
        self._change(activity=status.activity_phase_finished(phase, record.state))

    def progress_changed(self, progress: JobProgress) -> None:
        """Tokens, cost and the check round while the job runs (the same throttle)."""
        self._change(
            tokens=progress.tokens,
            cost_usd=progress.cost_usd,
            round=progress.round,
            max_rounds=progress.max_rounds,
            activity=progress.activity or self.view.activity,
        )

    def settle(self, records: Mapping[str, PhaseRecord]) -> None:
        """Take the job's final records: phases skipped after a failure show as skipped."""
        for name, record in records.items():
            line = self.lines.get(name, PhaseLine(name, "waiting"))
            wall = record.wall_s if record.state not in {"pending", "skipped"} else None
            self.lines[name] = PhaseLine(name, _STATES[record.state], wall, line.note)

    # ------------------------------------------------------------ edits

    def render(self) -> str:
        view = replace(
            self.view, phases=tuple(self.lines.values()), elapsed_s=self._clock() - self.started
        )
        return status.tracking_comment(view)

    def _change(self, **fields: object) -> None:
        self.view = replace(self.view, **fields)  # type: ignore[arg-type]
        self._dirty.set()
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._flusher())

    async def _flusher(self) -> None:
        while True:
            await self._dirty.wait()
            self._dirty.clear()
            try:
                await self._write()
            except Exception as exc:  # a lost edit is repaired by the next one or by close
                log.warning("tracking.edit_failed", error=str(exc))
            await asyncio.sleep(self.interval_s)

    async def _write(self) -> None:
        self.edits += 1
        try:
            await self._edit(self.render())
        finally:
            self._last_edit = time.monotonic()

    async def close(self, **final: object) -> str:
        """Stop the flusher and write the final state, once the interval since the
        previous edit has passed."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self.view = replace(self.view, **final)  # type: ignore[arg-type]
        if self._last_edit is not None:
            wait = self.interval_s - (time.monotonic() - self._last_edit)
            if wait > 0:
                await asyncio.sleep(wait)
        await self._write()
        return self.render()

"""A worker: claims jobs, runs them through the Runner, keeps their leases alive, stops
them on a cancel, recovers the jobs of workers that died, and sweeps old workspaces.

One :class:`Worker` per process (``plugin-bot worker``, or inside ``serve``). Its queue
(``bot.jobs.queue``) hands it jobs; everything else goes through the store, so a cancel or
a recovery works whichever process or machine the job runs on.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import os
import shutil
import socket
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

import structlog

from bot.jobs.reporter import EventReporter
from bot.jobs.store import Blocked, ErrorKind, Gone, Job, JobOutcome, JobState, Store
from bot.metrics import METRICS
from bot.pipeline import PHASES
from bot.pipeline.context import JobContext, Phase, PhaseFailed, Published, Publisher, Reporter
from bot.pipeline.publish import LocalExport
from bot.runner import Outcome, Runner
from bot.settings import Settings

if TYPE_CHECKING:
    from bot.jobs.queue import Queue

log = structlog.get_logger(__name__)

PublisherFor = Callable[[Job], Publisher]
ReporterFor = Callable[[Job], Reporter | None]


def worker_name() -> str:
    """Unique per process and start: host, pid and a random part."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


class CannotPublish:
    """The publisher of a job this worker has no way to deliver (a GitHub job in a worker
    started without the GitHub front): refused before any work."""

    def __init__(self, reason: str) -> None:
        self.reason = reason

    async def preflight(self, ctx: JobContext) -> None:
        raise PhaseFailed(self.reason)

    async def publish(self, ctx: JobContext) -> Published:
        raise PhaseFailed(self.reason)


def local_publisher_for(settings: Settings) -> PublisherFor:
    """Jobs submitted without GitHub land in ``BOT_DATA_DIR/results/<job id>/<name>/``."""

    def publisher_for(job: Job) -> Publisher:
        if job.repository is not None:
            return CannotPublish("this worker was started without the GitHub publisher")
        # The folder is the job's own: a retried attempt replaces what an earlier one left.
        return LocalExport(settings.results_dir / job.id, overwrite=True)

    return publisher_for


def outcome_of(run: Outcome) -> JobOutcome:
    """What the store records of a finished run."""
    ctx = run.ctx
    records = ctx.result.records
    progress = {
        name: {"state": r.state, "wall_s": round(r.wall_s, 3), "error": r.error}
        for name, r in records.items()
    }
    last = next((r.name for r in reversed(records.values()) if r.state != "skipped"), None)
    result: dict[str, Any] = {
        "files": ctx.result.files.names() if ctx.result.files is not None else [],
        "plugin": ctx.result.spec.name if ctx.result.spec else None,
        "generator": ctx.tools.generator.name,
        "model": ctx.tools.generator.model,
        "wall_s": round(run.wall_s, 3),
    }
    if ctx.result.test_results is not None:
        tests = ctx.result.test_results
        result["tests"] = {"passed": tests.passed, "failed": tests.failed, "skipped": tests.skipped}
    if run.published is not None:
        result["published"] = asdict(run.published)
    if run.kept_workspace is not None:
        result["kept_workspace"] = str(run.kept_workspace)
    common: dict[str, Any] = {
        "phase": last,
        "progress": progress,
        "result": result,
        "usage": asdict(run.meter.usage),
        "cost_usd": run.meter.cost_usd,
    }
    if ctx.cancelled:
        return JobOutcome(JobState.CANCELLED, error="cancelled", **common)
    failed = ctx.failed_phase
    if failed is None and run.ok:
        return JobOutcome(JobState.SUCCEEDED, **common)
    if failed is None:
        return JobOutcome(JobState.FAILED, error="the job did not finish", **common)
    kind = ErrorKind.TRANSIENT if failed.transient else ErrorKind.OWN
    error = f"{failed.name}: {failed.error}"
    return JobOutcome(JobState.FAILED, error=error, error_kind=kind, **common)


class Worker:
    """Runs claimed jobs, at most ``concurrency`` at once, and keeps them honest."""

    def __init__(
        self,
        store: Store,
        queue: Queue,
        settings: Settings,
        *,
        concurrency: int | None = None,
        runner: Runner | None = None,
        publisher_for: PublisherFor | None = None,
        reporter_for: ReporterFor | None = None,
        phases: list[tuple[str, Phase]] = PHASES,
        name: str | None = None,
    ) -> None:
        self.store = store
        self.queue = queue
        self.settings = settings
        self.concurrency = concurrency or settings.worker_concurrency
        self._runner = runner
        self.publisher_for = publisher_for or local_publisher_for(settings)
        self.reporter_for = reporter_for
        self.phases = phases
        self.name = name or worker_name()
        self.running: dict[str, asyncio.Event] = {}  # job id -> its cancel signal
        self.finished = 0
        self._next_sweep = 0.0

    @property
    def runner(self) -> Runner:
        if self._runner is None:
            self._runner = Runner(self.settings)
        return self._runner

    @property
    def free(self) -> int:
        return self.concurrency - len(self.running)

    # ------------------------------------------------------------------ running one job

    async def claim_and_run(self, job_id: str) -> Job | Blocked | Gone | None:
        """Claim a job by id (the procrastinate queue) and run it when claimed."""
        claimed = await self.store.claim(job_id, self.name, lease_s=self.settings.job_lease_s)
        if not isinstance(claimed, Job):
            return claimed
        return await self.run_claimed(claimed)

    def start(self, job: Job) -> asyncio.Task[Job | None]:
        """Run a claimed job in the background; its slot is taken at once."""
        self.running.setdefault(job.id, asyncio.Event())
        return asyncio.create_task(self.run_claimed(job), name=f"job-{job.id}")

    async def run_claimed(self, job: Job) -> Job | None:
        """Run a job this worker holds the lease of, and record how it ended. None: the
        lease was lost on the way (the job was recovered elsewhere)."""
        with structlog.contextvars.bound_contextvars(
            job_id=job.id,
            repository=job.repository,
            installation_id=job.installation_id,
            delivery_id=job.delivery_id,
        ):
            return await self._run_claimed(job)

    async def _run_claimed(self, job: Job) -> Job | None:
        cancel = self.running.setdefault(job.id, asyncio.Event())
        log_ = log.bind(attempt=job.attempts)
        log_.info("job.claimed", worker=self.name)
        reporter = EventReporter(
            self.store, job.id, self.name, self.reporter_for(job) if self.reporter_for else None
        )
        try:
            if job.cancel_requested:
                cancel.set()
            outcome = await self._execute(job, reporter, cancel)
        finally:
            await reporter.close()
            self.running.pop(job.id, None)
        finished = await self.store.finish(job.id, self.name, outcome)
        self.finished += 1
        if finished is not None and finished.state == JobState.QUEUED:
            await self.queue.enqueue(job.id)  # a transient failure: another attempt
        METRICS.job_finished(str(outcome.state), outcome.usage or {}, outcome.cost_usd)
        log_.info("job.finished", state=str(outcome.state), error=outcome.error)
        return finished

    async def _execute(
        self, job: Job, reporter: EventReporter, cancel: asyncio.Event
    ) -> JobOutcome:
        try:
            run = await self.runner.run(
                job.request(),
                publisher=self.publisher_for(job),
                generator=job.generator,
                reporter=reporter,
                cancel=cancel,
                phases=self.phases,
            )
        except Exception as exc:  # the bot failed around the pipeline, not the plugin
            log.exception("job.crashed", job_id=job.id)
            return JobOutcome(
                JobState.FAILED,
                phase=reporter.phase,
                progress=reporter.progress,
                error=f"{type(exc).__name__}: {exc}",
                error_kind=ErrorKind.INTERNAL,
            )
        return outcome_of(run)

    # ------------------------------------------------------------------ keeping jobs honest

    async def watch(self, stop: asyncio.Event) -> None:
        """Until ``stop``: pass cancel requests to running jobs, renew their leases, recover
        jobs of dead workers, give orphaned jobs to the queue, sweep old workspaces."""
        s = self.settings
        next_beat = next_recovery = 0.0
        while not stop.is_set():
            now = time.monotonic()
            await self._guard(self._pass_cancels())
            if now >= next_beat:
                next_beat = now + s.job_heartbeat_s
                await self._guard(self._heartbeat())
            if now >= next_recovery:
                next_recovery = now + s.recovery_poll_s
                await self._guard(self.recover())
            if not self.queue.runs_sweep and now >= self._next_sweep:
                self._next_sweep = now + s.retention_sweep_s
                await self._guard(self.sweep())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), s.cancel_poll_s)

    async def _guard(self, step: Any) -> None:
        try:
            await step
        except Exception as exc:  # the database may be briefly away; try again next round
            log.warning("worker.watch_failed", worker=self.name, error=str(exc))

    async def _pass_cancels(self) -> None:
        for job_id in await self.store.cancel_requests(list(self.running)):
            event = self.running.get(job_id)
            if event is not None and not event.is_set():
                log.info("job.cancelling", job_id=job_id)
                event.set()

    async def _heartbeat(self) -> None:
        ids = list(self.running)
        held = await self.store.heartbeat(self.name, ids, lease_s=self.settings.job_lease_s)
        for job_id in set(ids) - held:
            # Our lease expired and someone recovered the job: stop our copy of it.
            event = self.running.get(job_id)
            if event is not None:
                log.warning("job.lease_lost", job_id=job_id)
                event.set()

    async def recover(self) -> None:
        for recovery in await self.store.recover_expired():
            log.warning("job.recovered", job_id=recovery.job_id, requeued=recovery.requeued)
            if recovery.requeued:
                await self.queue.enqueue(recovery.job_id)
        await self.queue.adopt_orphans()

    async def sweep(self) -> None:
        """Retention: delete workspaces (and local results) of jobs finished long ago, then
        rows older still."""
        s = self.settings
        old = await self.store.workspaces_to_delete(dt.timedelta(days=s.retention_workspace_days))
        for job_id in old:
            await asyncio.to_thread(shutil.rmtree, s.work_dir / f"job-{job_id}", True)
        await self.store.mark_workspace_deleted(old)
        pruned = await self.store.prune_finished(dt.timedelta(days=s.retention_rows_days))
        if old or pruned:
            log.info("retention.swept", workspaces=len(old), rows=pruned)

    # ------------------------------------------------------------------ the process

    async def run(self, stop: asyncio.Event) -> None:
        """Work until ``stop`` is set; then let running jobs finish."""
        watcher = asyncio.create_task(self.watch(stop))
        try:
            await self.queue.consume(self, stop)
        finally:  # the queue has waited for the running jobs
            stop.set()
            await watcher

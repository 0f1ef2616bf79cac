"""How job ids reach workers: one seam, two queues.

* :class:`EmbeddedQueue`: the job rows are the queue. A worker claims the oldest queued job
  that the running limits admit (``Store.claim_next``), polling when idle. SQLite in one
  process (``serve``, ``worker``), or any database shared by a few processes.
* :class:`ProcrastinateQueue`: PostgreSQL only. procrastinate carries job ids to any number of
  ``plugin-bot worker`` processes on any machine (LISTEN/NOTIFY, its locks, its abort);
  each task claims its job row (``Store.claim``), which stays the source of truth. A job
  the running limits hold back is deferred again a moment later.

Both: :meth:`Queue.enqueue` after :meth:`Store.submit` accepted a job (and after a
recovery or a transient failure put it back), :meth:`Queue.discard` after a queued job was
cancelled, :meth:`Queue.consume` to feed a worker until stopped, and
:meth:`Queue.adopt_orphans` (run by every worker's watch loop) for jobs whose submitter
died before enqueueing them.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
from typing import TYPE_CHECKING, Any, Protocol

import structlog

from bot.jobs.limits import JobLimits, RateLimited
from bot.jobs.store import Accepted, Job, JobState, NewJob, Store
from bot.settings import Settings

if TYPE_CHECKING:
    from bot.jobs.worker import Worker

log = structlog.get_logger(__name__)

TASK_NAME = "plugin_bot.run_job"
SWEEP_TASK = "plugin_bot.retention_sweep"
ORPHAN_AFTER = dt.timedelta(seconds=10)
STALE_AFTER = dt.timedelta(minutes=2)


class Queue(Protocol):
    name: str
    # True: the queue runs the retention sweep itself (once per period across all workers);
    # False: each worker's watch loop runs it.
    runs_sweep: bool

    async def open(self) -> None: ...

    async def close(self) -> None: ...

    async def enqueue(self, job_id: str) -> None: ...

    async def discard(self, job: Job) -> None: ...

    async def consume(self, worker: Worker, stop: asyncio.Event) -> None: ...

    async def adopt_orphans(self) -> None: ...


async def submit(
    store: Store, queue: Queue, new: NewJob, limits: JobLimits, *, max_attempts: int = 2
) -> Accepted | RateLimited:
    """Store a job (limits checked in the database) and hand it to the queue."""
    answer = await store.submit(new, limits, max_attempts=max_attempts)
    # A job the command made before is handed over again only while it waits: the first
    # hand-over may have been lost in the crash (the queue keeps one per job).
    if isinstance(answer, Accepted) and answer.queued:
        await queue.enqueue(answer.job_id)
    return answer


async def cancel(store: Store, queue: Queue, job_id: str) -> Job | None:
    """Cancel a job: a queued one leaves the queue now, a running one is stopped by its
    worker within ``cancel_poll_s``."""
    job = await store.request_cancel(job_id)
    if job is not None and job.state == JobState.CANCELLED:
        await queue.discard(job)
    return job


class EmbeddedQueue:
    """The job rows are the queue; workers claim from them directly."""

    name = "embedded"
    runs_sweep = False

    def __init__(self, store: Store, settings: Settings) -> None:
        self.store = store
        self.settings = settings
        self._wake = asyncio.Event()

    async def open(self) -> None:
        pass

    async def close(self) -> None:
        pass

    async def enqueue(self, job_id: str) -> None:
        self._wake.set()  # a worker in this process looks at once; others poll

    async def discard(self, job: Job) -> None:
        pass  # a cancelled row is no longer queued: nobody claims it

    async def adopt_orphans(self) -> None:
        pass  # a queued row is always in this queue

    async def consume(self, worker: Worker, stop: asyncio.Event) -> None:
        tasks: set[asyncio.Task[Any]] = set()
        stopping = asyncio.create_task(stop.wait())
        try:
            while not stop.is_set():
                self._wake.clear()
                while worker.free > 0 and not stop.is_set():
                    job = await self._claim(worker)
                    if job is None:
                        break
                    tasks.add(worker.start(job))
                wake = asyncio.create_task(self._wake.wait())
                done, _ = await asyncio.wait(
                    {*tasks, stopping, wake},
                    timeout=self.settings.queue_poll_s,
                    return_when=asyncio.FIRST_COMPLETED,
                )
                wake.cancel()
                tasks -= {t for t in done if t in tasks}
        finally:
            stopping.cancel()
            if tasks:
                await asyncio.gather(*tasks, return_exceptions=True)

    async def _claim(self, worker: Worker) -> Job | None:
        try:
            return await self.store.claim_next(worker.name, lease_s=self.settings.job_lease_s)
        except Exception as exc:  # the database may be briefly away: poll again
            log.warning("queue.claim_failed", error=str(exc))
            return None


def cron_every(seconds: float) -> str:
    """A procrastinate cron line (a 6th column is seconds) for "every ``seconds``"."""
    s = max(1, round(seconds))
    if s < 60:
        return f"* * * * * */{s}"
    minutes = round(s / 60)
    if minutes < 60:
        return f"*/{minutes} * * * *"
    return f"0 */{min(23, max(1, round(minutes / 60)))} * * *"


def conninfo_of(url: str) -> str:
    """A libpq connection string from a SQLAlchemy ``postgresql+psycopg://`` URL."""
    from sqlalchemy.engine import make_url

    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


class ProcrastinateQueue:
    """procrastinate carries job ids; the job rows keep the state."""

    name = "procrastinate"
    runs_sweep = True

    def __init__(self, store: Store, settings: Settings) -> None:
        import procrastinate

        if store.dialect != "postgresql":
            raise ValueError("the procrastinate queue needs PostgreSQL (DATABASE_URL)")
        self.store = store
        self.settings = settings
        self.app = procrastinate.App(
            connector=procrastinate.PsycopgConnector(conninfo=conninfo_of(store.url))
        )
        self._worker: Worker | None = None
        self.app.task(name=TASK_NAME, pass_context=False)(self._run_job)
        # One sweep per period for all workers: procrastinate defers each period once.
        sweep = self.app.task(name=SWEEP_TASK, pass_context=False)(self._sweep)
        self.app.periodic(cron=cron_every(settings.retention_sweep_s), periodic_id="retention")(
            sweep
        )

    async def open(self) -> None:
        await self.app.open_async()

    async def close(self) -> None:
        await self.app.close_async()

    async def _defer(self, job_id: str, *, delay_s: float | None = None) -> None:
        import procrastinate.exceptions

        options: dict[str, Any] = {"queueing_lock": job_id}
        if delay_s is not None:
            options["schedule_in"] = {"seconds": delay_s}
        try:
            ref = await self.app.configure_task(TASK_NAME, **options).defer_async(job_id=job_id)
        except procrastinate.exceptions.AlreadyEnqueued:
            # Already waiting in procrastinate: one is enough; note that we looked.
            await self.store.set_queue_ref(job_id, None)
            return
        await self.store.set_queue_ref(job_id, str(ref))

    async def enqueue(self, job_id: str) -> None:
        await self._defer(job_id)

    async def discard(self, job: Job) -> None:
        if job.queue_ref is not None:
            await self.app.job_manager.cancel_job_by_id_async(int(job.queue_ref), abort=True)

    async def adopt_orphans(self) -> None:
        for job_id in await self.store.orphans(ORPHAN_AFTER, STALE_AFTER):
            log.info("queue.orphan_adopted", job_id=job_id)
            await self._defer(job_id)

    async def _run_job(self, job_id: str) -> None:
        worker = self._worker
        if worker is None:
            raise RuntimeError("a job reached a queue that is not consuming")
        from bot.jobs.store import Blocked

        answer = await worker.claim_and_run(job_id)
        if isinstance(answer, Blocked):
            # A running limit is full: the job waits its turn, in the queue, as a row.
            await self._defer(job_id, delay_s=self.settings.queue_poll_s * 2)

    async def _sweep(self, timestamp: int) -> None:
        if self._worker is not None:
            await self._worker.sweep()

    async def consume(self, worker: Worker, stop: asyncio.Event) -> None:
        self._worker = worker
        run = asyncio.create_task(
            self.app.run_worker_async(
                name=worker.name,
                concurrency=worker.concurrency,
                wait=True,
                install_signal_handlers=False,
                listen_notify=True,
                fetch_job_polling_interval=self.settings.queue_poll_s * 4,
                delete_jobs="successful",
            )
        )
        stopping = asyncio.create_task(stop.wait())
        try:
            await asyncio.wait({run, stopping}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopping.cancel()
            run.cancel()  # procrastinate lets running tasks finish, then returns
            with contextlib.suppress(asyncio.CancelledError):
                await run


def queue_for(store: Store, settings: Settings) -> Queue:
    """The queue ``QUEUE_BACKEND`` names; ``auto``: procrastinate on PostgreSQL."""
    backend = settings.queue_backend
    if backend == "auto":
        backend = "procrastinate" if store.dialect == "postgresql" else "embedded"
    if backend == "procrastinate":
        return ProcrastinateQueue(store, settings)
    return EmbeddedQueue(store, settings)


__all__ = [
    "EmbeddedQueue",
    "ProcrastinateQueue",
    "Queue",
    "cancel",
    "queue_for",
    "submit",
]

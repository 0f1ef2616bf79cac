"""``plugin-bot serve``: the webhook server, the dispatcher and the workers in one process.

The server answers as soon as uvicorn listens; the dispatcher turns stored commands into
jobs; the worker loop claims jobs and runs them through :class:`GitHubJobs`, renewing
their leases and recovering the jobs of processes that died.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket

import structlog
import uvicorn

from bot import status
from bot.errors import BotError
from bot.github.client import GitHubApp
from bot.github.context import EventContext
from bot.github.data.repository import BranchHead
from bot.github.desk import StoreDesk, job_view
from bot.github.dispatcher import Dispatcher, Onboarding
from bot.github.jobs import GitHubJobs
from bot.github.operations.onboarding import offer_onboarding
from bot.jobs.migrations import require_current
from bot.jobs.store import Job, JobOutcome, JobState, Store
from bot.pipeline import PHASE_NAMES
from bot.runner import Runner
from bot.server import create_app
from bot.settings import Settings

log = structlog.get_logger("bot.serve")


class ServeRefused(BotError):
    """``serve`` will not start; the message says why and what to set."""


def check_serve_settings(settings: Settings) -> None:
    if not settings.webhook_secrets:
        raise ServeRefused(status.serve_refused_no_secret())
    if settings.sandbox == "none":
        raise ServeRefused(status.serve_refused_no_sandbox())
    if settings.github_app_id is None or settings.app_private_key() is None:
        raise ServeRefused(status.serve_refused_no_app())


class EmbeddedWorkers:
    """Claims and runs jobs in this process, at most ``concurrency`` at once."""

    def __init__(self, settings: Settings, store: Store, jobs: GitHubJobs) -> None:
        self.settings = settings
        self.store = store
        self.jobs = jobs
        self.name = f"{socket.gethostname()}:{os.getpid()}"
        self.running: dict[str, asyncio.Event] = {}

    async def _run(self, job: Job) -> None:
        cancel = self.running[job.id]
        try:
            outcome = await self.jobs.run(job_view(job), cancel)
            if outcome.published is not None:
                await self.store.set_published(
                    job.id, branch=outcome.published.branch, pr_url=outcome.published.url
                )
            state = (
                JobState.SUCCEEDED
                if outcome.ok
                else JobState.CANCELLED
                if outcome.ctx.cancelled
                else JobState.FAILED
            )
            failed = outcome.ctx.failed_phase
            error = failed.error if failed is not None else None
            await self.store.finish(job.id, self.name, JobOutcome(state=state, error=error))
        except Exception as exc:
            log.exception("job.crashed", job_id=job.id)
            await self.store.finish(
                job.id, self.name, JobOutcome(state=JobState.FAILED, error=str(exc))
            )
        finally:
            self.running.pop(job.id, None)

    async def _keep_leases(self) -> None:
        held = await self.store.heartbeat(
            self.name, list(self.running), lease_s=self.settings.job_lease_s
        )
        for job_id in await self.store.cancel_requests(list(held)):
            self.running[job_id].set()

    async def run(self, stop: asyncio.Event) -> None:
        tasks: set[asyncio.Task[None]] = set()
        while not stop.is_set():
            await self._keep_leases()
            for recovery in await self.store.recover_expired():
                if not recovery.requeued:
                    job = await self.store.get_job(recovery.job_id)
                    if job is not None:
                        await self.jobs.abandoned(job_view(job), job.error or "lost")
            while len(self.running) < self.settings.worker_concurrency:
                job = await self.store.claim_next(self.name, lease_s=self.settings.job_lease_s)
                if job is None:
                    break
                self.running[job.id] = asyncio.Event()
                task = asyncio.create_task(self._run(job))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.settings.queue_poll_s)


def onboarding_for(settings: Settings) -> Onboarding:
    async def offer(ctx: EventContext, head: BranchHead) -> bool:
        return await offer_onboarding(ctx.inst, ctx.repo, head, settings)

    return offer


async def dispatch_forever(dispatcher: Dispatcher, stop: asyncio.Event, poll_s: float) -> None:
    while not stop.is_set():
        try:
            handled = await dispatcher.run_once()
        except Exception:
            log.exception("dispatch.failed")
            handled = False
        if not handled:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), poll_s)


async def serve(settings: Settings, host: str, port: int) -> None:
    check_serve_settings(settings)
    store = Store.from_url(settings.effective_database_url)
    await require_current(store)
    app = GitHubApp(settings)
    desk = StoreDesk(store, settings)
    dispatcher = Dispatcher(
        settings, app, desk, desk, phases=PHASE_NAMES, onboarding=onboarding_for(settings)
    )
    workers = EmbeddedWorkers(settings, store, GitHubJobs(settings, app, Runner(settings)))
    server = uvicorn.Server(
        uvicorn.Config(create_app(settings, desk, app), host=host, port=port, log_level="info")
    )
    stop = asyncio.Event()
    background = [
        asyncio.create_task(dispatch_forever(dispatcher, stop, settings.queue_poll_s)),
        asyncio.create_task(workers.run(stop)),
    ]
    try:
        await server.serve()
    finally:
        stop.set()
        await asyncio.gather(*background, return_exceptions=True)
        await store.close()

"""``plugin-bot serve``: the webhook server, the dispatcher and the workers in one process.

The server answers as soon as uvicorn listens; the dispatcher turns stored commands into
jobs; the jobs layer's :class:`~bot.jobs.worker.Worker` runs them (leases, heartbeats,
cancel, recovery) through :class:`GitHubRunner`, which adds the tracking comment, with
the pull request as each job's publisher.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import gc
from collections.abc import Coroutine
from typing import Any

import structlog
import uvicorn

from bot import status
from bot.errors import BotError
from bot.github.client import GitHubApp
from bot.github.context import EventContext
from bot.github.data.repository import BranchHead
from bot.github.desk import StoreDesk, job_view
from bot.github.dispatcher import Dispatcher, Onboarding
from bot.github.jobs import GitHubJobs, GitHubRunner, publisher_for
from bot.github.operations.onboarding import offer_onboarding
from bot.github.redeliver import redeliver_periodically
from bot.jobs.migrations import require_current
from bot.jobs.queue import queue_for
from bot.jobs.store import ErrorKind, JobState, Store
from bot.jobs.worker import Worker
from bot.pipeline import PHASE_NAMES
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


async def report_abandoned(
    store: Store, jobs: GitHubJobs, stop: asyncio.Event, poll_s: float
) -> None:
    """Jobs recovery gave up on (their worker died, no attempt left): their tracking
    comments say so, instead of staying "running"."""
    done: set[str] = set()
    while not stop.is_set():
        try:
            for job in await store.list_jobs(state=JobState.FAILED, limit=50):
                if job.error_kind == ErrorKind.LOST and job.id not in done and job.repository:
                    await jobs.abandoned(job_view(job), job.error or "its worker stopped")
                    done.add(job.id)
        except Exception:
            log.exception("abandoned.report_failed")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), poll_s)


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


def run_event_loop(main: Coroutine[Any, Any, None]) -> None:
    """``main`` on uvloop (libuv's event loop, less CPU per webhook than asyncio's selector
    loop; benchmarks/webhooks.py) where it is installed, else on asyncio's own."""
    try:
        import uvloop
    except ImportError:  # not built for this platform (pyproject.toml)
        asyncio.run(main)
        return
    uvloop.run(main)


def freeze_startup_heap() -> None:
    """Move everything alive after start-up (modules, settings, the app, SQLAlchemy's
    caches) out of the collector's reach: a full collection then walks only what requests
    allocated since, instead of the whole heap (under webhook load the collector otherwise
    took about a tenth of the server's CPU; benchmarks/README.md)."""
    gc.collect()
    gc.freeze()


async def serve(settings: Settings, host: str, port: int) -> None:
    check_serve_settings(settings)
    store = Store.from_settings(settings)
    await require_current(store)
    queue = queue_for(store, settings)
    await queue.open()
    app = GitHubApp(settings)
    desk = StoreDesk(store, settings, queue)
    dispatcher = Dispatcher(
        settings, app, desk, desk, phases=PHASE_NAMES, onboarding=onboarding_for(settings)
    )
    runner = GitHubRunner(settings, app, store)
    worker = Worker(
        store, queue, settings, runner=runner, publisher_for=publisher_for(settings, app)
    )
    web = create_app(settings, desk, app, jobs=store)
    # uvicorn's own loggers go through the root handler bot/logs.py set up.
    server = uvicorn.Server(uvicorn.Config(web, host=host, port=port, log_config=None))
    stop = asyncio.Event()
    background = [
        asyncio.create_task(dispatch_forever(dispatcher, stop, settings.queue_poll_s)),
        asyncio.create_task(worker.run(stop)),
        asyncio.create_task(report_abandoned(store, runner.jobs, stop, settings.recovery_poll_s)),
    ]
    if settings.redeliver_every_s > 0:
        window = dt.timedelta(seconds=settings.redeliver_window_s)
        background.append(
            asyncio.create_task(
                redeliver_periodically(app, window, settings.redeliver_every_s, stop)
            )
        )
    freeze_startup_heap()
    try:
        await server.serve()  # until SIGINT/SIGTERM
    finally:
        stop.set()
        await asyncio.gather(*background, return_exceptions=True)
        await queue.close()
        await store.close()

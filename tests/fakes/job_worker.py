"""``python -m tests.fakes.job_worker``: a ``plugin-bot worker`` process running the quick
pipeline, for the multi-process job tests. Settings come from the environment; SIGTERM
stops it after its running jobs."""

from __future__ import annotations

import asyncio
import signal
import sys

from bot import logs
from bot.jobs.queue import queue_for
from bot.jobs.store import Store
from bot.jobs.worker import Worker
from bot.pipeline.context import JobContext
from bot.pipeline.publish import LocalExport
from bot.settings import Settings
from tests.fakes.quick_pipeline import QUICK_PHASES


async def noop_phase(ctx: JobContext) -> None:
    pass


async def main(concurrency: int, empty: bool) -> None:
    settings = Settings()
    # As `plugin-bot worker` does: log lines go to stderr, so stdout carries only "ready"
    # (a test reads that line and nothing more; logs on the pipe would fill it and stall).
    logs.configure(settings)
    store = Store.from_settings(settings)
    queue = queue_for(store, settings)
    await queue.open()
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    worker = Worker(
        store,
        queue,
        settings,
        concurrency=concurrency,
        # --empty: one phase that does nothing, so the queue and the store are what count.
        phases=[("noop", noop_phase)] if empty else QUICK_PHASES,
        # Every job, GitHub-born or not, lands in results/<job id>/ here.
        publisher_for=lambda job: LocalExport(settings.results_dir / job.id),
    )
    print(f"ready {worker.name}", flush=True)
    try:
        await worker.run(stop)
    finally:
        await queue.close()
        await store.close()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 2, "--empty" in sys.argv))

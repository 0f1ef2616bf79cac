"""``python -m tests.fakes.job_worker``: a ``plugin-bot worker`` process running the quick
pipeline, for the multi-process job tests. Settings come from the environment; SIGTERM
stops it after its running jobs."""

from __future__ import annotations

import asyncio
import signal
import sys

from bot.jobs.queue import queue_for
from bot.jobs.store import Store
from bot.jobs.worker import Worker
from bot.settings import Settings
from tests.fakes.quick_pipeline import QUICK_PHASES


async def main(concurrency: int) -> None:
    settings = Settings()
    store = Store.from_settings(settings)
    queue = queue_for(store, settings)
    await queue.open()
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    worker = Worker(store, queue, settings, concurrency=concurrency, phases=QUICK_PHASES)
    print(f"ready {worker.name}", flush=True)
    try:
        await worker.run(stop)
    finally:
        await queue.close()
        await store.close()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 2))

"""``python -m tests.fakes.job_submitter N INSTALLATION``: submit N jobs as fast as possible
and print one JSON line per answer, for the limits-under-concurrency test."""

from __future__ import annotations

import asyncio
import json
import sys

from bot import logs
from bot.jobs.limits import JobLimits, RateLimited
from bot.jobs.queue import queue_for, submit
from bot.jobs.store import NewJob, Store
from bot.pipeline.context import Origin
from bot.settings import Settings


async def main(count: int, installation: int) -> None:
    settings = Settings()
    logs.configure(settings)  # log lines to stderr: stdout is the answers, one JSON line each
    store = Store.from_settings(settings)
    queue = queue_for(store, settings)
    await queue.open()
    origin = Origin(installation_id=installation, repository="o/r", requester="alice")
    try:
        for n in range(count):
            answer = await submit(
                store, queue, NewJob(f"job {n}", origin), JobLimits.from_settings(settings)
            )
            refused = isinstance(answer, RateLimited)
            print(json.dumps({"accepted": not refused}), flush=True)
    finally:
        await queue.close()
        await store.close()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]), int(sys.argv[2])))

"""Cancel latency across processes: from ``plugin-bot cancel`` (``queue.cancel``) in this
process to the job's sandboxed command being gone and its row saying ``cancelled``, with the
job running in a separate worker process. SQLite (embedded queue) vs PostgreSQL
(procrastinate); the target is 2 s.

    .venv/bin/python benchmarks/jobs_cancel.py [--runs 7]

Needs TEST_POSTGRES_URL for the PostgreSQL row. Prints medians and maxima, and ratios
against the SQLite row of the same run.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.jobs_queue import (  # noqa: E402
    ROOMY,
    drop_postgres,
    postgres_database,
    start_workers,
    stop_workers,
)
from bot.jobs import queue as jobs_queue  # noqa: E402
from bot.jobs.migrations import upgrade  # noqa: E402
from bot.jobs.store import Accepted, JobState, NewJob, Store  # noqa: E402
from bot.pipeline.context import Origin  # noqa: E402
from bot.settings import Settings  # noqa: E402
from tests.fakes.quick_pipeline import MARKER  # noqa: E402
from tests.unit.test_runner import _processes_with  # noqa: E402


async def until(check: object, limit_s: float = 30.0) -> None:
    deadline = time.monotonic() + limit_s
    while not await check():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise TimeoutError("not reached")
        await asyncio.sleep(0.01)


async def measure(url: str, data: Path, runs: int) -> dict[str, list[float]]:
    settings = Settings(database_url=url, bot_data_dir=data, sandbox="none")
    env = dict(
        os.environ, DATABASE_URL=url, BOT_DATA_DIR=str(data), SANDBOX="none", PYTHONPATH=str(REPO)
    )  # default CANCEL_POLL_S, as deployed
    store = Store.from_settings(settings)
    await upgrade(store)
    queue = jobs_queue.queue_for(store, settings)
    await queue.open()
    found: dict[str, list[float]] = {"killed": [], "cancelled": []}
    processes = start_workers(env, 1, empty=False)
    try:
        for n in range(runs):
            answer = await jobs_queue.submit(
                store, queue, NewJob(f"slow {n} sleep 60", Origin(requester="b")), ROOMY
            )
            assert isinstance(answer, Accepted)
            marker = f"{MARKER}-{answer.job_id}"

            async def running(m: str = marker) -> bool:
                return bool(_processes_with(m))

            async def killed(m: str = marker) -> bool:
                return not _processes_with(m)

            async def cancelled(job_id: str = answer.job_id) -> bool:
                job = await store.get_job(job_id)
                return job is not None and job.state == JobState.CANCELLED

            await until(running)
            started = time.monotonic()
            await jobs_queue.cancel(store, queue, answer.job_id)
            await until(killed)
            found["killed"].append(time.monotonic() - started)
            await until(cancelled)
            found["cancelled"].append(time.monotonic() - started)
    finally:
        stop_workers(processes)
        await queue.close()
        await store.close()
    return found


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    admin = os.environ.get("TEST_POSTGRES_URL")
    rows = []
    with tempfile.TemporaryDirectory(prefix="plugin-bot-bench-") as tmp:
        url = f"sqlite+aiosqlite:///{tmp}/jobs.db"
        rows.append(("sqlite+embedded", await measure(url, Path(tmp), args.runs)))
    if admin:
        url, name = postgres_database(admin)
        try:
            with tempfile.TemporaryDirectory(prefix="plugin-bot-bench-") as tmp:
                rows.append(("postgresql+procrastinate", await measure(url, Path(tmp), args.runs)))
        finally:
            drop_postgres(admin, name)
    else:
        print("postgresql+procrastinate: skipped (TEST_POSTGRES_URL is not set)")
    base = statistics.median(rows[0][1]["cancelled"])
    print(f"\n{args.runs} cancels of a running job in another process; target 2000 ms")
    print(f"{'queue':<26}{'killed ms':>11}{'max':>8}{'cancelled ms':>14}{'max':>8}{'ratio':>7}")
    for name, m in rows:
        print(
            f"{name:<26}{statistics.median(m['killed']) * 1000:>11.0f}"
            f"{max(m['killed']) * 1000:>8.0f}{statistics.median(m['cancelled']) * 1000:>14.0f}"
            f"{max(m['cancelled']) * 1000:>8.0f}{statistics.median(m['cancelled']) / base:>7.2f}"
        )


if __name__ == "__main__":
    asyncio.run(main())

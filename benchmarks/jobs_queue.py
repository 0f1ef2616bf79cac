"""Job queue: submit-to-start latency and claims per second, SQLite vs PostgreSQL, 1 and 4
worker processes.

    .venv/bin/python benchmarks/jobs_queue.py [--latency-jobs 15] [--burst 120] [--rounds 3]

Needs TEST_POSTGRES_URL (as .ci/run sets it) for the PostgreSQL rows. Each configuration
gets a fresh database and its own worker processes (``tests.fakes.job_worker --empty``: the
pipeline has no phases, so only the queue, the store and the runner's set-up are measured).

* latency: one job at a time on idle workers; ``started_at - created_at`` of each job.
* claims/s: a burst of jobs submitted while no worker runs; then the workers start, and the
  rate is (jobs - 1) / (last claim - first claim), from the jobs' own timestamps.

Prints medians, and ratios against the first row (SQLite, 1 worker) of the same run.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

from sqlalchemy.engine import make_url

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bot.jobs.limits import JobLimits  # noqa: E402
from bot.jobs.migrations import upgrade  # noqa: E402
from bot.jobs.queue import queue_for, submit  # noqa: E402
from bot.jobs.store import Accepted, JobState, NewJob, Store  # noqa: E402
from bot.pipeline.context import Origin  # noqa: E402
from bot.settings import Settings  # noqa: E402

ROOMY = JobLimits(*(100_000,) * 6)
CONCURRENCY = 4  # jobs at once per worker process


def postgres_database(admin_url: str) -> tuple[str, str]:
    import psycopg

    admin = make_url(admin_url)
    name = f"plugin_bot_bench_{uuid.uuid4().hex[:8]}"
    conninfo = admin.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return admin.set(database=name).render_as_string(hide_password=False), name


def drop_postgres(admin_url: str, name: str) -> None:
    import psycopg

    admin = make_url(admin_url).set(drivername="postgresql")
    with psycopg.connect(admin.render_as_string(hide_password=False), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def start_workers(
    env: dict[str, str], count: int, *, empty: bool = True
) -> list[subprocess.Popen[str]]:
    processes = []
    argv = [sys.executable, "-m", "tests.fakes.job_worker", str(CONCURRENCY)]
    for _ in range(count):
        process = subprocess.Popen(
            [*argv, "--empty"] if empty else argv,
            cwd=REPO,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        assert process.stdout is not None and process.stdout.readline().startswith("ready")
        processes.append(process)
    return processes


def stop_workers(processes: list[subprocess.Popen[str]]) -> None:
    for process in processes:
        process.send_signal(signal.SIGTERM)
    for process in processes:
        process.wait(timeout=60)


async def wait_finished(store: Store, ids: list[str]) -> None:
    pending = set(ids)
    while pending:
        for job in await store.list_jobs(state=JobState.SUCCEEDED, limit=100_000):
            pending.discard(job.id)
        failed = await store.list_jobs(state=JobState.FAILED, limit=1)
        if failed:
            raise RuntimeError(f"a benchmark job failed: {failed[0].error}")
        await asyncio.sleep(0.05)


async def measure(url: str, data: Path, workers: int, args: argparse.Namespace) -> dict[str, float]:
    settings = Settings(database_url=url, bot_data_dir=data, sandbox="none", queue_poll_s=0.2)
    env = dict(
        os.environ,
        DATABASE_URL=url,
        BOT_DATA_DIR=str(data),
        SANDBOX="none",
        QUEUE_POLL_S="0.2",
        PYTHONPATH=str(REPO),
    )
    store = Store.from_settings(settings)
    await upgrade(store)
    queue = queue_for(store, settings)
    await queue.open()
    origin = Origin(requester="bench")
    try:
        processes = start_workers(env, workers)
        latencies = []
        for n in range(args.latency_jobs):
            answer = await submit(store, queue, NewJob(f"latency {n}", origin), ROOMY)
            assert isinstance(answer, Accepted)
            await wait_finished(store, [answer.job_id])
            job = await store.get_job(answer.job_id)
            assert job is not None and job.started_at is not None
            latencies.append((job.started_at - job.created_at).total_seconds())
        stop_workers(processes)
        rates = []
        for r in range(args.rounds):
            ids = []
            for n in range(args.burst):
                answer = await submit(store, queue, NewJob(f"burst {r} {n}", origin), ROOMY)
                assert isinstance(answer, Accepted)
                ids.append(answer.job_id)
            processes = start_workers(env, workers)
            await wait_finished(store, ids)
            stop_workers(processes)
            starts = sorted(
                [
                    j.started_at
                    for j in [await store.get_job(i) for i in ids]
                    if j is not None and j.started_at is not None
                ]
            )
            rates.append((len(starts) - 1) / (starts[-1] - starts[0]).total_seconds())
    finally:
        await queue.close()
        await store.close()
    return {
        "latency_ms": statistics.median(latencies) * 1000,
        "latency_p90_ms": sorted(latencies)[int(len(latencies) * 0.9) - 1] * 1000,
        "claims_s": statistics.median(rates),
    }


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency-jobs", type=int, default=15)
    parser.add_argument("--burst", type=int, default=120)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    admin = os.environ.get("TEST_POSTGRES_URL")
    rows: list[tuple[str, int, dict[str, float]]] = []
    for backend in ("sqlite+embedded", "postgresql+procrastinate"):
        for workers in (1, 4):
            with tempfile.TemporaryDirectory(prefix="plugin-bot-bench-") as tmp:
                if backend.startswith("sqlite"):
                    url = f"sqlite+aiosqlite:///{tmp}/jobs.db"
                    rows.append((backend, workers, await measure(url, Path(tmp), workers, args)))
                    continue
                if not admin:
                    print(f"{backend}: skipped (TEST_POSTGRES_URL is not set)")
                    continue
                url, name = postgres_database(admin)
                try:
                    rows.append((backend, workers, await measure(url, Path(tmp), workers, args)))
                finally:
                    drop_postgres(admin, name)
            print(f"measured {backend} with {workers} worker(s)", file=sys.stderr)
    base = rows[0][2]
    print(
        f"\n{args.latency_jobs} latency jobs, bursts of {args.burst} x {args.rounds} rounds, "
        f"{CONCURRENCY} jobs at once per worker process; medians"
    )
    print(
        f"{'queue':<26}{'workers':>8}{'latency ms':>12}{'p90 ms':>9}{'ratio':>7}"
        f"{'claims/s':>10}{'ratio':>7}"
    )
    for backend, workers, m in rows:
        print(
            f"{backend:<26}{workers:>8}{m['latency_ms']:>12.1f}{m['latency_p90_ms']:>9.1f}"
            f"{m['latency_ms'] / base['latency_ms']:>7.2f}{m['claims_s']:>10.1f}"
            f"{m['claims_s'] / base['claims_s']:>7.2f}"
        )


if __name__ == "__main__":
    asyncio.run(main())

"""Workers as separate processes on a real database: PostgreSQL with procrastinate and four
worker processes, and SQLite with one worker process that is killed and restarted."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

from bot.jobs import queue as jobs_queue
from bot.jobs.limits import JobLimits
from bot.jobs.queue import Queue
from bot.jobs.store import Accepted, EventKind, JobState, NewJob, Store
from bot.pipeline.context import Origin
from bot.settings import Settings
from tests.fakes.quick_pipeline import MARKER
from tests.jobs.conftest import finished, wait_for
from tests.unit.test_runner import _processes_with

REPO = Path(__file__).resolve().parents[2]
ROOMY = JobLimits(*(1000,) * 6)
# For the tests where no worker dies: a lease no loaded process misses, so a job's second
# run could only be a double claim (the 6 s default is for the tests that wait out a lease).
NO_RECOVERY_LEASE_S = "60"


def worker_env(settings: Settings, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        DATABASE_URL=str(settings.database_url),
        BOT_DATA_DIR=str(settings.bot_data_dir),
        SANDBOX="none",
        # Longer than in-process: several loaded processes on a shared machine must not
        # miss a heartbeat (a missed one means a recovery, and a job run twice).
        JOB_LEASE_S="6",
        JOB_HEARTBEAT_S="0.5",
        CANCEL_POLL_S=str(settings.cancel_poll_s),
        RECOVERY_POLL_S=str(settings.recovery_poll_s),
        QUEUE_POLL_S=str(settings.queue_poll_s),
        PYTHONPATH=str(REPO),
    )
    env.update(extra)
    return env


class Workers:
    """Worker processes running the quick pipeline."""

    def __init__(self, env: dict[str, str], concurrency: int) -> None:
        self.env = env
        self.concurrency = concurrency
        self.processes: list[subprocess.Popen[str]] = []

    def start(self) -> subprocess.Popen[str]:
        process = subprocess.Popen(
            [sys.executable, "-m", "tests.fakes.job_worker", str(self.concurrency)],
            cwd=REPO,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        assert process.stdout is not None
        assert process.stdout.readline().startswith("ready ")
        self.processes.append(process)
        return process

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@contextlib.contextmanager
def workers(settings: Settings, count: int, concurrency: int = 2, **env: str) -> Iterator[Workers]:
    group = Workers(worker_env(settings, **env), concurrency)
    try:
        for _ in range(count):
            group.start()
        yield group
    finally:
        group.stop()


@contextlib.asynccontextmanager
async def client(settings: Settings) -> AsyncIterator[tuple[Store, Queue]]:
    from bot.jobs.migrations import upgrade

    store = Store.from_settings(settings)
    await upgrade(store)
    queue = jobs_queue.queue_for(store, settings)
    await queue.open()
    try:
        yield store, queue
    finally:
        await queue.close()
        await store.close()


async def submit(
    store: Store,
    queue: Queue,
    description: str,
    origin: Origin | None = None,
    limits: JobLimits = ROOMY,
) -> str:
    answer = await jobs_queue.submit(
        store, queue, NewJob(description, origin or Origin(requester="alice")), limits
    )
    assert isinstance(answer, Accepted), answer
    return answer.job_id


def scale(backend: str) -> tuple[int, int]:
    """(worker processes, jobs): four processes and 200 jobs on PostgreSQL; one process on
    SQLite, which is meant for one machine and one process."""
    return (4, 200) if backend.startswith("postgres") else (1, 40)


async def test_every_job_runs_exactly_once_across_worker_processes(
    backend: str, settings: Settings
) -> None:
    processes, count = scale(backend)
    async with client(settings) as (store, queue):
        # Every process is ready before the first job: on a loaded machine the first one
        # started could otherwise run them all before the last has imported the bot.
        with workers(settings, processes, concurrency=4, JOB_LEASE_S=NO_RECOVERY_LEASE_S):
            ids = [await submit(store, queue, f"quick plugin {n}") for n in range(count)]
            done = [await finished(store, job_id, within=240) for job_id in ids]
        claims: dict[str, list[str]] = {job_id: [] for job_id in ids}
        for job_id in ids:
            claims[job_id] = [
                e.message for e in await store.events(job_id) if e.kind == EventKind.CLAIMED
            ]
    assert [(j.state, j.error) for j in done] == [(JobState.SUCCEEDED, None)] * count
    assert {j.attempts for j in done} == {1}
    assert all(len(owners) == 1 for owners in claims.values())
    for job in done:
        assert (settings.results_dir / job.id / "plugin-quick").is_dir()
    owners = {owners[0] for owners in claims.values()}
    assert len(owners) == processes  # every process took a share


async def test_limits_hold_under_concurrent_submits_and_claims(
    backend: str, settings: Settings
) -> None:
    processes, _ = scale(backend)
    limit_env = {
        "LIMIT_JOBS_PER_HOUR_INSTALLATION": "10",
        "LIMIT_JOBS_PER_HOUR_REQUESTER": "1000",
        "LIMIT_JOBS_PER_HOUR_REPOSITORY": "1000",
    }
    async with client(settings) as (store, queue):
        env = worker_env(settings, **limit_env)
        submitters = [
            await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "tests.fakes.job_submitter",
                "8",
                "5",
                cwd=REPO,
                env=env,
                stdout=asyncio.subprocess.PIPE,
            )
            for _ in range(4)
        ]
        outputs = [await p.communicate() for p in submitters]
        answers = [json.loads(line) for out, _ in outputs for line in out.decode().splitlines()]
        assert len(answers) == 32
        assert sum(a["accepted"] for a in answers) == 10  # exactly the hourly limit
        # At most 2 running at once for installation 6, whichever processes claim them.
        two = JobLimits(100, 100, 100, running_installation=2)
        origin = Origin(installation_id=6, repository="o/s", requester="bob")
        ids = [await submit(store, queue, "sleep 0.3", origin, two) for _ in range(10)]
        with workers(settings, processes, concurrency=4, JOB_LEASE_S=NO_RECOVERY_LEASE_S):
            done = [await finished(store, job_id, within=120) for job_id in ids]
    assert {j.state for j in done} == {JobState.SUCCEEDED}
    moments = sorted(
        itertools.chain.from_iterable(((j.started_at, 1), (j.finished_at, -1)) for j in done),
        key=lambda m: (m[0], m[1]),
    )
    running = peak = 0
    for _, step in moments:
        running += step
        peak = max(peak, running)
    assert peak <= 2


async def test_a_sigkilled_workers_job_is_recovered_by_another_process(
    backend: str, settings: Settings, tmp_path: Path
) -> None:
    flag = tmp_path / "first-attempt-started"
    async with client(settings) as (store, queue):
        job_id = await submit(store, queue, f"a plugin sleep-once 60 {flag}")
        with workers(settings, 1) as group:
            await wait_for(lambda: _command_running(job_id))
            victim = group.processes[0]
            victim.send_signal(signal.SIGKILL)
            victim.wait()
            _kill_left_over(job_id)  # the killed worker's sandboxed command, orphaned
            group.start()  # a restart, or another machine's worker
            job = await finished(store, job_id, within=120)
        events = await store.events(job_id)
    assert job.state == JobState.SUCCEEDED
    assert job.attempts == 2
    recovered = [e for e in events if e.kind == EventKind.RECOVERED]
    assert len(recovered) == 1 and "retrying in a fresh workspace" in recovered[0].message
    owners = [e.message for e in events if e.kind == EventKind.CLAIMED]
    assert len(owners) == 2 and owners[0] != owners[1]


async def test_a_cancel_reaches_a_job_running_in_another_process(
    backend: str, settings: Settings
) -> None:
    async with client(settings) as (store, queue):
        job_id = await submit(store, queue, "a plugin sleep 60")
        with workers(settings, 1):
            await wait_for(lambda: _command_running(job_id))
            await jobs_queue.cancel(store, queue, job_id)
            job = await finished(store, job_id, within=60)
            assert _processes_with(f"{MARKER}-{job_id}") == []
    assert job.state == JobState.CANCELLED
    assert job.progress["publish"]["state"] == "skipped"
    assert not (settings.results_dir / job_id).exists()


async def _command_running(job_id: str) -> bool:
    return bool(_processes_with(f"{MARKER}-{job_id}"))


def _kill_left_over(job_id: str) -> None:
    for pid in _processes_with(f"{MARKER}-{job_id}"):
        with contextlib.suppress(ProcessLookupError):
            os.kill(int(pid), signal.SIGKILL)

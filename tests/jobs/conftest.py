"""Real databases for the job tests: a SQLite file, and a fresh database on the machine's
PostgreSQL server per test (``TEST_POSTGRES_URL``, set by ``.ci/run``)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import make_url

from bot.jobs.migrations import upgrade
from bot.jobs.queue import Queue, queue_for
from bot.jobs.store import Job, Store
from bot.jobs.worker import Worker
from bot.settings import Settings
from tests.fakes.quick_pipeline import QUICK_PHASES

PG_ENV = "TEST_POSTGRES_URL"


def postgres_admin_url() -> str:
    url = os.environ.get(PG_ENV)
    if not url:
        message = f"{PG_ENV} is not set: no PostgreSQL server for the job tests"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return url


@contextlib.contextmanager
def postgres_database() -> Iterator[str]:
    """A new, empty database on the test server; dropped afterwards."""
    import psycopg

    admin = make_url(postgres_admin_url())
    name = f"plugin_bot_test_{uuid.uuid4().hex[:12]}"
    conninfo = admin.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield admin.set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(conninfo, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def pg_url() -> Iterator[str]:
    with postgres_database() as url:
        yield url


BACKENDS = ["sqlite-embedded", "postgres-procrastinate"]


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def database_url(backend: str, tmp_path: Path) -> Iterator[str]:
    if backend.startswith("sqlite"):
        yield f"sqlite+aiosqlite:///{tmp_path / 'jobs.db'}"
    else:
        with postgres_database() as url:
            yield url


def job_settings(data_dir: Path, database_url: str, **overrides: Any) -> Settings:
    """Short leases and polls, so recovery and cancels happen within a test."""
    values: dict[str, Any] = {
        "bot_data_dir": data_dir,
        "database_url": database_url,
        "sandbox": "none",
        "job_lease_s": 2.0,
        "job_heartbeat_s": 0.3,
        "cancel_poll_s": 0.1,
        "recovery_poll_s": 0.3,
        "queue_poll_s": 0.2,
        "worker_concurrency": 2,
        "retention_sweep_s": 1.0,
    }
    values.update(overrides)
    return Settings(**values)


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return job_settings(tmp_path / "data", database_url)


@pytest.fixture
async def store(settings: Settings) -> AsyncIterator[Store]:
    store = Store.from_settings(settings)
    await upgrade(store)
    yield store
    await store.close()


@pytest.fixture
async def queue(store: Store, settings: Settings) -> AsyncIterator[Queue]:
    queue = queue_for(store, settings)
    await queue.open()
    yield queue
    await queue.close()


@contextlib.asynccontextmanager
async def running_worker(
    store: Store, queue: Queue, settings: Settings, **options: Any
) -> AsyncIterator[Worker]:
    """A worker with the quick pipeline, working in this process until the block ends."""
    options.setdefault("phases", QUICK_PHASES)
    worker = Worker(store, queue, settings, **options)
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    try:
        yield worker
    finally:
        stop.set()
        await asyncio.wait_for(task, 60)


async def wait_for(
    check: Callable[[], Awaitable[Any]], *, within: float = 30.0, every: float = 0.05
) -> Any:
    """Poll ``check`` until it returns something truthy; fail after ``within`` seconds."""
    deadline = asyncio.get_running_loop().time() + within
    while True:
        value = await check()
        if value:
            return value
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"not reached within {within}s (last: {value!r})")
        await asyncio.sleep(every)


async def finished(store: Store, job_id: str, *, within: float = 30.0) -> Job:
    async def check() -> Job | None:
        job = await store.get_job(job_id)
        return job if job is not None and job.state.finished else None

    result: Job = await wait_for(check, within=within)
    return result

"""One behavioural suite, run against both queues: SQLite with the embedded queue, and
PostgreSQL with procrastinate. Real databases, real workers, the quick pipeline."""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
from pathlib import Path

from sqlalchemy import text, update

from bot.jobs import queue as jobs_queue
from bot.jobs.limits import JobLimits, RateLimited
from bot.jobs.queue import SWEEP_TASK, ProcrastinateQueue, Queue
from bot.jobs.store import Accepted, ErrorKind, EventKind, JobState, NewJob, Store
from bot.jobs.tables import jobs
from bot.pipeline.context import Origin
from bot.pipeline.publish import LocalExport
from bot.settings import Settings
from tests.fakes.quick_pipeline import MARKER
from tests.jobs.conftest import finished, running_worker, wait_for
from tests.unit.test_runner import _processes_with

LOCAL = Origin(requester="alice")
ROOMY = JobLimits(per_hour_requester=1000, per_hour_installation=1000, per_hour_repository=1000)


async def submit(store: Store, queue: Queue, description: str, **kw: object) -> str:
    answer = await jobs_queue.submit(store, queue, NewJob(description, LOCAL), ROOMY, **kw)  # type: ignore[arg-type]
    assert isinstance(answer, Accepted), answer
    return answer.job_id


async def test_a_submitted_job_runs_once_publishes_and_records_its_phases(
    store: Store, queue: Queue, settings: Settings
) -> None:
    job_id = await submit(store, queue, "a weather plugin")
    async with running_worker(store, queue, settings):
        job = await finished(store, job_id)
    assert job.state == JobState.SUCCEEDED
    assert job.attempts == 1
    assert job.phase == "publish"
    assert {p: v["state"] for p, v in job.progress.items()} == {
        "spec": "passed",
        "work": "passed",
        "publish": "passed",
    }
    published = Path(job.result["published"]["location"])  # type: ignore[index]
    assert published == settings.results_dir / job_id / "plugin-weather"
    assert job_id in (published / "README.md").read_text()
    kinds = [e.kind for e in await store.events(job_id)]
    assert kinds[:2] == [EventKind.SUBMITTED, EventKind.CLAIMED]
    assert kinds.count(EventKind.PHASE_STARTED) == 3
    assert kinds.count(EventKind.PHASE_FINISHED) == 3
    assert kinds[-1] == EventKind.FINISHED
    assert job.finished_at is not None and job.started_at is not None


async def test_cancelling_a_queued_job_removes_it_and_it_never_runs(
    store: Store, queue: Queue, settings: Settings
) -> None:
    job_id = await submit(store, queue, "a weather plugin")
    cancelled = await jobs_queue.cancel(store, queue, job_id)
    assert cancelled is not None and cancelled.state == JobState.CANCELLED
    if isinstance(queue, ProcrastinateQueue):  # gone from procrastinate's queue too
        assert cancelled.queue_ref is not None
        status = await queue.app.job_manager.get_job_status_async(int(cancelled.queue_ref))
        assert status.value == "cancelled"
    other = await submit(store, queue, "another plugin")
    async with running_worker(store, queue, settings):
        await finished(store, other)
    job = await store.get_job(job_id)
    assert job is not None and job.state == JobState.CANCELLED and job.attempts == 0
    assert EventKind.CLAIMED not in [e.kind for e in await store.events(job_id)]
    assert not (settings.results_dir / job_id).exists()


async def test_a_cancel_stops_a_running_job_kills_its_command_and_it_never_publishes(
    store: Store, queue: Queue, settings: Settings
) -> None:
    job_id = await submit(store, queue, "a slow plugin sleep 60")
    async with running_worker(store, queue, settings):
        await wait_for(lambda: _running_command(job_id))
        await jobs_queue.cancel(store, queue, job_id)
        job = await finished(store, job_id, within=60)
    assert job.state == JobState.CANCELLED
    assert job.progress["work"]["state"] == "cancelled"
    assert job.progress["publish"]["state"] == "skipped"
    assert not (settings.results_dir / job_id).exists()
    assert _processes_with(f"{MARKER}-{job_id}") == []
    kinds = [e.kind for e in await store.events(job_id)]
    assert EventKind.CANCEL_REQUESTED in kinds


async def _running_command(job_id: str) -> bool:
    return bool(_processes_with(f"{MARKER}-{job_id}"))


async def test_a_job_failing_on_its_own_code_is_not_retried(
    store: Store, queue: Queue, settings: Settings
) -> None:
    job_id = await submit(store, queue, "a broken plugin fail-own")
    async with running_worker(store, queue, settings):
        job = await finished(store, job_id)
    assert job.state == JobState.FAILED
    assert job.attempts == 1
    assert job.error_kind == ErrorKind.OWN
    assert job.error == "work: the plugin's tests failed"


async def test_a_transient_failure_is_retried_once_and_then_succeeds(
    store: Store, queue: Queue, settings: Settings, tmp_path: Path
) -> None:
    flag = tmp_path / "overloaded-once"
    job_id = await submit(store, queue, f"a plugin fail-transient-once {flag}")
    async with running_worker(store, queue, settings):
        job = await finished(store, job_id)
    assert flag.exists()
    assert job.state == JobState.SUCCEEDED
    assert job.attempts == 2
    events = await store.events(job_id)
    retry = [e for e in events if e.kind == EventKind.RETRYING]
    assert len(retry) == 1 and "529" in retry[0].message


async def test_a_transient_failure_on_the_last_attempt_fails_with_its_reason(
    store: Store, queue: Queue, settings: Settings, tmp_path: Path
) -> None:
    job_id = await submit(
        store, queue, f"a plugin fail-transient-once {tmp_path / 'x'}", max_attempts=1
    )
    async with running_worker(store, queue, settings):
        job = await finished(store, job_id)
    assert job.state == JobState.FAILED
    assert job.error_kind == ErrorKind.TRANSIENT
    assert "overloaded (529)" in (job.error or "")


async def test_a_job_whose_worker_died_is_retried_in_a_fresh_workspace(
    store: Store, queue: Queue, settings: Settings
) -> None:
    job_id = await submit(store, queue, "a plugin")
    # A worker that claimed it and then vanished: no heartbeat, lease runs out.
    dead = await store.claim_next("dead-worker", lease_s=0.5)
    assert dead is not None and dead.id == job_id
    stale = settings.work_dir / f"job-{job_id}"
    stale.mkdir(parents=True)
    (stale / "left-over").write_text("from attempt 1")
    async with running_worker(store, queue, settings):
        job = await finished(store, job_id)
    assert job.state == JobState.SUCCEEDED
    assert job.attempts == 2
    assert not (stale / "left-over").exists()
    recovered = [e for e in await store.events(job_id) if e.kind == EventKind.RECOVERED]
    assert len(recovered) == 1 and "dead-worker" in recovered[0].message


async def test_a_job_lost_twice_fails_clearly_and_is_never_left_running(
    store: Store, queue: Queue, settings: Settings
) -> None:
    job_id = await submit(store, queue, "a plugin")
    for attempt in (1, 2):
        owner = f"dead-{attempt}"
        job = await wait_for(lambda o=owner: store.claim_next(o, lease_s=0.3))
        assert job.id == job_id and job.attempts == attempt
        await asyncio.sleep(0.4)
        await store.recover_expired()
    job = await store.get_job(job_id)
    assert job is not None
    assert job.state == JobState.FAILED
    assert job.error_kind == ErrorKind.LOST
    assert job.error == (
        "the worker running attempt 2 of 2 stopped (no heartbeat); not retried again"
    )


async def test_running_limits_queue_jobs_and_finished_jobs_never_hold_a_slot(
    store: Store, queue: Queue, settings: Settings, tmp_path: Path
) -> None:
    one_at_a_time = JobLimits(
        running_installation=1,
        per_hour_installation=100,
        per_hour_requester=100,
        per_hour_repository=100,
    )
    origin = Origin(installation_id=7, repository="o/r", requester="alice")
    # The first job holds the installation's one slot until the three below are submitted
    # (a fixed sleep could end first on a loaded machine, and they would not wait).
    release = tmp_path / "release-first"
    first = await jobs_queue.submit(
        store, queue, NewJob(f"a plugin hold {release}", origin), one_at_a_time
    )
    assert isinstance(first, Accepted) and first.position == 1
    export = lambda job: LocalExport(settings.results_dir / job.id)  # noqa: E731
    async with running_worker(store, queue, settings, concurrency=4, publisher_for=export):
        await wait_for(lambda: _state_is(store, first.job_id, JobState.RUNNING))
        ids = []
        for n in range(3):
            answer = await jobs_queue.submit(
                store, queue, NewJob(f"plugin {n}", origin), one_at_a_time
            )
            assert isinstance(answer, Accepted)
            assert answer.waiting_on == "installation"
            assert answer.position == n + 1
            ids.append(answer.job_id)
        release.touch()
        for job_id in [first.job_id, *ids]:
            await finished(store, job_id)
    jobs = [await store.get_job(i) for i in [first.job_id, *ids]]
    spans = sorted((j.started_at, j.finished_at) for j in jobs if j is not None)
    assert all(j is not None and j.state == JobState.SUCCEEDED for j in jobs)
    # Never two at once for the installation, yet every one ran: finished ones freed the slot.
    assert all(a[1] <= b[0] for a, b in itertools.pairwise(spans))


async def _state_is(store: Store, job_id: str, state: JobState) -> bool:
    job = await store.get_job(job_id)
    return job is not None and job.state == state


async def test_the_hourly_rate_refuses_with_the_time_the_next_slot_frees(
    store: Store, queue: Queue
) -> None:
    limits = JobLimits(per_hour_installation=3)
    origin = Origin(installation_id=9, repository="o/r", requester="bob")
    accepted = []
    for n in range(3):
        answer = await jobs_queue.submit(store, queue, NewJob(f"p {n}", origin), limits)
        assert isinstance(answer, Accepted)
        accepted.append(answer.job_id)
    refused = await jobs_queue.submit(store, queue, NewJob("one more", origin), limits)
    assert isinstance(refused, RateLimited)
    assert refused.scope == "installation" and refused.limit == 3
    oldest = await store.get_job(accepted[0])
    assert oldest is not None
    assert refused.retry_at == oldest.created_at + dt.timedelta(hours=1)
    # Another installation is not affected.
    other = await jobs_queue.submit(
        store, queue, NewJob("x", Origin(installation_id=10, requester="bob")), limits
    )
    assert isinstance(other, Accepted)


async def test_the_periodic_sweep_deletes_workspaces_of_jobs_finished_long_ago(
    store: Store, queue: Queue, settings: Settings
) -> None:
    old, recent = [await submit(store, queue, "a plugin") for _ in range(2)]
    async with running_worker(store, queue, settings):
        for job_id in (old, recent):
            await finished(store, job_id)
        async with store.engine.begin() as conn:
            eight_days = dt.datetime.now(dt.UTC) - dt.timedelta(days=8)
            await conn.execute(update(jobs).where(jobs.c.id == old).values(finished_at=eight_days))
        spaces = {i: settings.work_dir / f"job-{i}" for i in (old, recent)}
        for path in spaces.values():
            path.mkdir(parents=True)
        await wait_for(lambda: _gone(spaces[old]), within=60)
    assert spaces[recent].exists()
    kept = await store.get_job(old)
    assert kept is not None and kept.workspace_deleted_at is not None
    if isinstance(queue, ProcrastinateQueue):  # procrastinate's periodic task did it
        async with store.engine.begin() as conn:
            tasks = (
                (
                    await conn.execute(
                        text("SELECT DISTINCT task_name FROM procrastinate_periodic_defers")
                    )
                )
                .scalars()
                .all()
            )
        assert tasks == [SWEEP_TASK]


async def _gone(path: Path) -> bool:
    return not path.exists()


async def test_a_job_the_queue_lost_is_handed_to_it_again(
    store: Store, queue: Queue, settings: Settings
) -> None:
    """Its submitter died before enqueueing it, or the queue's own job for it failed."""
    never_enqueued = await store.submit(NewJob("a plugin", LOCAL), ROOMY)
    assert isinstance(never_enqueued, Accepted)
    lost = await submit(store, queue, "another plugin")
    async with store.engine.begin() as conn:
        if isinstance(queue, ProcrastinateQueue):
            await conn.execute(text("DELETE FROM procrastinate_jobs"))
        old = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)
        await conn.execute(update(jobs).values(updated_at=old))
    async with running_worker(store, queue, settings):
        for job_id in (never_enqueued.job_id, lost):
            job = await finished(store, job_id)
            assert job.state == JobState.SUCCEEDED and job.attempts == 1

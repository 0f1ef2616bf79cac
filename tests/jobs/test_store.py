"""The store on real databases (SQLite and PostgreSQL): schema checks, deliveries and
commands, the hourly rate across time, retention."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import Connection, inspect, text

from bot.jobs.limits import JobLimits, RateLimited
from bot.jobs.migrations import (
    SchemaMismatch,
    _config,
    require_current,
    schema_status,
    upgrade,
)
from bot.jobs.queue import EmbeddedQueue
from bot.jobs.store import (
    Accepted,
    CommandIn,
    JobOutcome,
    JobState,
    NewJob,
    Store,
)
from bot.jobs.worker import Worker
from bot.pipeline.context import Origin
from bot.settings import Settings


class Clock:
    def __init__(self) -> None:
        self.now = dt.datetime(2026, 11, 2, 12, 0, tzinfo=dt.UTC)

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += dt.timedelta(**delta)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def timed(settings: Settings, clock: Clock) -> AsyncIterator[Store]:
    store = Store.from_settings(settings, clock=clock)
    await upgrade(store)
    yield store
    await store.close()


async def test_an_empty_database_is_refused_with_the_command_to_run(settings: Settings) -> None:
    store = Store.from_settings(settings)
    try:
        with pytest.raises(SchemaMismatch, match=r"behind .* run `plugin-bot db upgrade`"):
            await require_current(store)
        assert (await upgrade(store)).state == "current"
        await require_current(store)
    finally:
        await store.close()


async def test_a_database_from_a_newer_plugin_bot_is_refused(store: Store) -> None:
    async with store.engine.begin() as conn:
        await conn.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    status = await schema_status(store)
    assert status.state == "ahead"
    with pytest.raises(SchemaMismatch, match="upgraded by a newer plugin-bot"):
        await require_current(store)


async def test_a_duplicate_delivery_stores_nothing_twice(store: Store) -> None:
    command = CommandIn(
        name="create-plugin",
        argument="a weather plugin",
        body="/create-plugin a weather plugin",
        requester="alice",
        repository="o/r",
        installation_id=3,
        issue=12,
        comment_id=2_500_000_000,  # GitHub ids outgrow 32 bits
    )
    assert await store.record_delivery("d-1", "issue_comment", command=command)
    edited = CommandIn(**{**command.__dict__, "body": "/create-plugin something else"})
    assert not await store.record_delivery("d-1", "issue_comment", command=edited)
    first = await store.claim_command("dispatcher-1")
    assert first is not None
    assert first.body == "/create-plugin a weather plugin"
    assert first.comment_id == 2_500_000_000
    assert await store.claim_command("dispatcher-2") is None  # one command, claimed once
    await store.finish_command(first.id, "accepted", job_id=None)
    handled = await store.get_command(first.id)
    assert handled is not None and handled.state == "handled" and handled.outcome == "accepted"


async def test_a_dispatcher_that_died_leaves_its_command_to_another(
    timed: Store, clock: Clock
) -> None:
    command = CommandIn(
        name="plugin-status", body="/plugin-status", requester="a", repository="o/r"
    )
    assert await timed.record_delivery("d-2", "issue_comment", command=command)
    assert await timed.claim_command("dispatcher-1", lease_s=30) is not None
    assert await timed.claim_command("dispatcher-2", lease_s=30) is None
    clock.advance(seconds=31)
    again = await timed.claim_command("dispatcher-2", lease_s=30)
    assert again is not None and again.claimed_by == "dispatcher-2"


async def _run_to_the_end(store: Store, owner: str) -> None:
    while (job := await store.claim_next(owner, lease_s=60)) is not None:
        await store.finish(job.id, owner, JobOutcome(JobState.SUCCEEDED, phase="publish"))


async def test_ten_finished_jobs_never_stop_the_next_ones(timed: Store, clock: Clock) -> None:
    """The original counted finished jobs as active and refused all work after ten."""
    limits = JobLimits()  # 10 an hour, 10 at once
    origin = Origin(installation_id=1, repository="o/r", requester="alice")
    first = None
    for n in range(10):
        answer = await timed.submit(NewJob(f"job {n}", origin), limits)
        assert isinstance(answer, Accepted), answer
        first = first or answer
        clock.advance(seconds=60)
    await _run_to_the_end(timed, "w")
    assert len(await timed.list_jobs(state=JobState.SUCCEEDED)) == 10
    refused = await timed.submit(NewJob("eleventh", origin), limits)
    assert isinstance(refused, RateLimited) and refused.scope == "installation"
    first_job = await timed.get_job(first.job_id) if first else None
    assert first_job is not None
    assert refused.retry_at == first_job.created_at + dt.timedelta(hours=1)
    clock.now = refused.retry_at + dt.timedelta(seconds=1)
    later = await timed.submit(NewJob("eleventh, later", origin), limits)
    assert isinstance(later, Accepted) and later.waiting_on is None and later.position == 1
    claimed = await timed.claim_next("w", lease_s=60)
    assert claimed is not None and claimed.id == later.job_id


async def test_the_rate_counts_each_scope_on_its_own(timed: Store) -> None:
    limits = JobLimits(per_hour_requester=2)
    for repo in ("o/a", "o/b"):
        answer = await timed.submit(NewJob("x", Origin(repository=repo, requester="carol")), limits)
        assert isinstance(answer, Accepted)
    refused = await timed.submit(NewJob("x", Origin(repository="o/c", requester="carol")), limits)
    assert isinstance(refused, RateLimited) and refused.scope == "requester"
    other = await timed.submit(NewJob("x", Origin(repository="o/c", requester="dave")), limits)
    assert isinstance(other, Accepted)


async def test_a_repository_config_may_only_lower_limits() -> None:
    limits = JobLimits().lowered(per_hour_repository=3, running_repository=50)
    assert limits.per_hour_repository == 3 and limits.running_repository == 10
    with pytest.raises(ValueError, match="unknown limits: per_day"):
        JobLimits().lowered(per_day=1)


async def test_retention_deletes_old_workspaces_then_old_rows(
    timed: Store, clock: Clock, settings: Settings, tmp_path: Path
) -> None:
    answer = await timed.submit(NewJob("old", Origin(requester="a")), JobLimits())
    assert isinstance(answer, Accepted)
    await _run_to_the_end(timed, "w")
    recent = await timed.submit(NewJob("recent", Origin(requester="a")), JobLimits())
    assert isinstance(recent, Accepted)
    workspaces = {i: settings.work_dir / f"job-{i}" for i in (answer.job_id, recent.job_id)}
    for path in workspaces.values():
        path.mkdir(parents=True)
        (path / "kept-for-a-look").write_text("x")
    worker = Worker(timed, EmbeddedQueue(timed, settings), settings)
    clock.advance(days=8)
    await _run_to_the_end(timed, "w")  # "recent" finishes 8 days after "old"
    await worker.sweep()
    assert not workspaces[answer.job_id].exists()
    assert workspaces[recent.job_id].exists()
    old = await timed.get_job(answer.job_id)
    assert old is not None and old.workspace_deleted_at == clock.now  # row kept
    clock.advance(days=settings.retention_rows_days - 8 + 1)
    await worker.sweep()
    assert await timed.get_job(answer.job_id) is None
    assert await timed.events(answer.job_id) == []
    assert await timed.get_job(recent.job_id) is not None


async def test_a_job_is_found_by_an_unambiguous_prefix(store: Store) -> None:
    answer = await store.submit(NewJob("x", Origin(requester="a")), JobLimits())
    assert isinstance(answer, Accepted)
    found = await store.find_job(answer.job_id[:8])
    assert found is not None and found.id == answer.job_id
    assert await store.find_job("zz") is None
    assert await store.find_job("../etc") is None


async def test_a_command_submitted_again_gets_its_job_back_never_a_second(store: Store) -> None:
    """A dispatcher that crashed after submitting retries: the same stored command, or the
    same comment in another delivery, finds the job it made, within limits or not."""
    command = CommandIn(
        name="create-plugin", body="/create-plugin x", requester="alice", repository="o/r"
    )
    assert await store.record_delivery("d-3", "issue_comment", command=command)
    claimed = await store.claim_command("dispatcher-1")
    assert claimed is not None
    origin = Origin(installation_id=1, repository="o/r", issue=4, comment_id=77, requester="a")
    limits = JobLimits().lowered(per_hour_repository=1)
    first = await store.submit(NewJob("x", origin, command_id=claimed.id), limits)
    assert isinstance(first, Accepted) and not first.existing
    again = await store.submit(NewJob("x", origin, command_id=claimed.id), limits)
    redelivered = await store.submit(NewJob("x", origin), limits)  # same comment, no command
    for answer in (again, redelivered):
        assert isinstance(answer, Accepted)
        assert (answer.job_id, answer.existing, answer.queued) == (first.job_id, True, True)
    assert [job.id for job in await store.list_jobs()] == [first.job_id]
    # Another comment is another job (here over the hourly limit of 1).
    other = Origin(installation_id=1, repository="o/r", issue=4, comment_id=78, requester="a")
    assert isinstance(await store.submit(NewJob("x", other), limits), RateLimited)


async def test_migration_0004_keeps_existing_jobs_both_ways(store: Store) -> None:
    # A database with jobs from before retry_of: down to 0003 the column goes and the rows
    # stay; up again they read with no retry link, and a new retry records its own.
    origin = Origin(installation_id=1, repository="o/r", requester="alice")
    old = await store.submit(NewJob("before 0004", origin), JobLimits())
    assert isinstance(old, Accepted)

    def downgrade_to_0003(connection: Connection) -> set[str]:
        command.downgrade(_config(connection), "0003")
        return {column["name"] for column in inspect(connection).get_columns("jobs")}

    async with store.engine.begin() as conn:
        columns = await conn.run_sync(downgrade_to_0003)
        count = (await conn.execute(text("SELECT count(*) FROM jobs"))).scalar_one()
    assert "retry_of" not in columns and count == 1
    assert (await schema_status(store)).current == "0003"

    assert (await upgrade(store)).state == "current"
    job = await store.get_job(old.job_id)
    assert job is not None and job.retry_of is None and job.description == "before 0004"
    retry = await store.submit(NewJob("again", origin, retry_of=old.job_id), JobLimits())
    assert isinstance(retry, Accepted)
    again = await store.get_job(retry.job_id)
    assert again is not None and again.retry_of == old.job_id

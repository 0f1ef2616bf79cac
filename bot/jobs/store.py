"""The job store: deliveries, commands, jobs and their events, in SQLite or PostgreSQL.

Job rows are the source of truth for a job's state, phase, lease, outcome and tracking
comment; queues (``bot.jobs.queue``) only carry job ids to workers. Every method is one
transaction. Two of them must not interleave across processes, so they take a lock first:
``submit`` (the hourly rate) and ``claim`` (the running limits). On SQLite every
transaction starts with ``BEGIN IMMEDIATE`` (one writer at a time); on PostgreSQL they take
a transaction-scoped advisory lock.

The API, by who calls it:

* the GitHub front: :meth:`Store.record_delivery` (False on a duplicate delivery, stored
  atomically with its command; concurrent deliveries share one transaction, see
  ``bot.jobs.deliveries``), :meth:`Store.claim_command` / :meth:`Store.finish_command`
  (the dispatcher), :meth:`Store.submit` (→ :class:`Accepted` with its queue position, or
  :class:`~bot.jobs.limits.RateLimited` with the time the next slot frees),
  :meth:`Store.set_tracking_comment`, :meth:`Store.set_published`, :meth:`Store.events`;
* everyone: :meth:`Store.get_job`, :meth:`Store.find_job`, :meth:`Store.list_jobs`,
  :meth:`Store.request_cancel`, :meth:`Store.queue_position`;
* workers: :meth:`Store.claim_next` / :meth:`Store.claim`, :meth:`Store.heartbeat`,
  :meth:`Store.cancel_requests`, :meth:`Store.update_progress`, :meth:`Store.add_event`,
  :meth:`Store.finish`, :meth:`Store.recover_expired`, and the retention sweep's
  :meth:`Store.workspaces_to_delete`, :meth:`Store.mark_workspace_deleted`,
  :meth:`Store.prune_finished`.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import and_, delete, func, insert, or_, select, text, update
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from bot.jobs import limits as lim
from bot.jobs.deliveries import DeliveryWriter
from bot.jobs.engines import DEFAULT_SQLITE, SQLiteOptions
from bot.jobs.engines import create_engine as create_engine
from bot.jobs.limits import JobLimits, RateLimited, Scope, Slot
from bot.jobs.records import Accepted as Accepted
from bot.jobs.records import Blocked as Blocked
from bot.jobs.records import Command as Command
from bot.jobs.records import CommandIn as CommandIn
from bot.jobs.records import DeliveryIn as DeliveryIn
from bot.jobs.records import Gone as Gone
from bot.jobs.records import Job as Job
from bot.jobs.records import JobEvent as JobEvent
from bot.jobs.records import JobOutcome as JobOutcome
from bot.jobs.records import NewJob as NewJob
from bot.jobs.records import Recovery as Recovery
from bot.jobs.states import FINISHED_STATES as FINISHED_STATES
from bot.jobs.states import ErrorKind as ErrorKind
from bot.jobs.states import EventKind as EventKind
from bot.jobs.states import JobState as JobState
from bot.jobs.tables import commands, job_events, jobs
from bot.settings import DEFAULT_WEBHOOK_COMMIT_BATCH, Settings

Clock = Callable[[], dt.datetime]

# Advisory lock keys (PostgreSQL): submits and claims are serialised separately.
_SUBMIT_LOCK = 0x706C7562  # "plub"
_CLAIM_LOCK = 0x706C7563
_CLAIM_SCAN = 200  # queued jobs looked at per claim, oldest first


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _job(row: Row[Any]) -> Job:
    data = dict(row._mapping)
    data["state"] = JobState(data["state"])
    data["error_kind"] = ErrorKind(data["error_kind"]) if data["error_kind"] else None
    return Job(**data)


def _event(row: Row[Any]) -> JobEvent:
    data = dict(row._mapping)
    data["kind"] = EventKind(data["kind"])
    return JobEvent(**data)


class Store:
    """The job store over one database. Create with :meth:`from_settings` or a URL."""

    def __init__(
        self,
        engine: AsyncEngine,
        *,
        clock: Clock = utcnow,
        delivery_batch: int = DEFAULT_WEBHOOK_COMMIT_BATCH,
        sqlite: SQLiteOptions = DEFAULT_SQLITE,
    ) -> None:
        self.engine = engine
        self.clock = clock
        self._deliveries = DeliveryWriter(engine, clock, max_batch=delivery_batch, sqlite=sqlite)

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        sqlite: SQLiteOptions = DEFAULT_SQLITE,
        pool_size: int = 5,
        clock: Clock = utcnow,
        delivery_batch: int = DEFAULT_WEBHOOK_COMMIT_BATCH,
    ) -> Store:
        engine = create_engine(url, sqlite=sqlite, pool_size=pool_size)
        return cls(engine, clock=clock, delivery_batch=delivery_batch, sqlite=sqlite)

    @classmethod
    def from_settings(cls, settings: Settings, *, clock: Clock = utcnow) -> Store:
        if settings.database_url is None:
            Path(settings.bot_data_dir).mkdir(parents=True, exist_ok=True)
        return cls.from_url(
            settings.effective_database_url,
            sqlite=SQLiteOptions(settings.database_busy_timeout_ms, settings.sqlite_synchronous),
            # Each running job writes its events; the watch loop and the queue need one more.
            pool_size=settings.worker_concurrency + 3,
            clock=clock,
            delivery_batch=settings.webhook_commit_batch,
        )

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @property
    def url(self) -> str:
        return self.engine.url.render_as_string(hide_password=False)

    async def close(self) -> None:
        await self._deliveries.close()  # what is pending is written first
        await self.engine.dispose()

    async def _lock(self, conn: AsyncConnection, key: int) -> None:
        if self.dialect == "postgresql":
            await conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})

    async def _event(
        self,
        conn: AsyncConnection,
        job_id: str,
        kind: EventKind,
        *,
        phase: str | None = None,
        message: str = "",
        data: Mapping[str, Any] | None = None,
    ) -> None:
        await conn.execute(
            insert(job_events).values(
                job_id=job_id,
                at=self.clock(),
                kind=str(kind),
                phase=phase,
                message=message,
                data=dict(data) if data is not None else None,
            )
        )

    # ------------------------------------------------------------------ deliveries, commands

    async def record_delivery(
        self,
        delivery_id: str,
        event: str,
        *,
        action: str | None = None,
        installation_id: int | None = None,
        repository: str | None = None,
        command: CommandIn | None = None,
    ) -> bool:
        """Store a delivery and its command, committed before this returns. False: a
        duplicate delivery id, nothing stored (the first one's command stands).

        Concurrent calls share a transaction (group commit): each waits for the commit of
        its own batch, and a failed commit raises here."""
        delivery = DeliveryIn(
            delivery_id,
            event,
            action=action,
            installation_id=installation_id,
            repository=repository,
            command=command,
        )
        return await self._deliveries.record(delivery)

    async def record_deliveries(self, batch: Sequence[DeliveryIn]) -> list[bool]:
        """One transaction for ``batch`` (what a group commit of record_delivery writes);
        per delivery, True if it is new (see :meth:`DeliveryWriter.write`)."""
        return await self._deliveries.write(batch)

    async def claim_command(self, owner: str, *, lease_s: float = 60.0) -> Command | None:
        """The oldest pending command (or one whose dispatcher's claim expired), now claimed
        by ``owner`` until it calls :meth:`finish_command`."""
        now = self.clock()
        async with self.engine.begin() as conn:
            await self._lock(conn, _CLAIM_LOCK + 1)
            row = (
                await conn.execute(
                    select(commands.c.id)
                    .where(
                        or_(
                            commands.c.state == "pending",
                            and_(commands.c.state == "dispatching", commands.c.claim_until < now),
                        )
                    )
                    .order_by(commands.c.created_at, commands.c.id)
                    .limit(1)
                )
            ).first()
            if row is None:
                return None
            await conn.execute(
                update(commands)
                .where(commands.c.id == row.id)
                .values(
                    state="dispatching",
                    claimed_by=owner,
                    claim_until=now + dt.timedelta(seconds=lease_s),
                )
            )
            claimed = (await conn.execute(select(commands).where(commands.c.id == row.id))).one()
        return Command(**claimed._mapping)

    async def finish_command(
        self, command_id: int, outcome: str, *, job_id: str | None = None
    ) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(
                update(commands)
                .where(commands.c.id == command_id)
                .values(state="handled", handled_at=self.clock(), outcome=outcome, job_id=job_id)
            )

    async def get_command(self, command_id: int) -> Command | None:
        async with self.engine.begin() as conn:
            row = (await conn.execute(select(commands).where(commands.c.id == command_id))).first()
        return Command(**row._mapping) if row is not None else None

    # ------------------------------------------------------------------ submitting, reading

    async def submit(
        self, new: NewJob, limits: JobLimits, *, max_attempts: int = 2
    ) -> Accepted | RateLimited:
        """Queue a job unless one of its scopes is over its hourly rate. A command that
        already made a job (the same stored command, or the same comment delivered again)
        gets that job back, whatever the limits say now: never a second one."""
        now = self.clock()
        job_id = uuid.uuid4().hex
        async with self.engine.begin() as conn:
            await self._lock(conn, _SUBMIT_LOCK)
            existing = await self._job_of_command(conn, new)
            if existing is not None:
                return await self._accepted_again(conn, existing)
            refused = await lim.rate_refusal(conn, new.origin, limits, now)
            if refused is not None:
                return refused
            origin = new.origin
            await conn.execute(
                insert(jobs).values(
                    id=job_id,
                    state=str(JobState.QUEUED),
                    progress={},
                    attempts=0,
                    max_attempts=max_attempts,
                    created_at=now,
                    updated_at=now,
                    description=new.description,
                    spec=new.spec.model_dump(mode="json") if new.spec is not None else None,
                    generator=new.generator,
                    installation_id=origin.installation_id,
                    repository=origin.repository,
                    issue=origin.issue,
                    comment_id=origin.comment_id,
                    requester=origin.requester,
                    delivery_id=origin.delivery_id,
                    command_id=new.command_id,
                    kind=new.kind,
                    retry_of=new.retry_of,
                    limits=limits.to_json(),
                    cost_usd=0.0,
                    cancel_requested=False,
                )
            )
            await self._event(conn, job_id, EventKind.SUBMITTED, message=new.description[:200])
            position = await self._position(conn, job_id, now)
            running = await self._running_values(conn)
        waiting_on = lim.full_scope(
            Slot(job_id, lim.scope_values(origin), limits), lim.running_counts(running)
        )
        return Accepted(job_id, position, waiting_on)

    async def _job_of_command(self, conn: AsyncConnection, new: NewJob) -> Job | None:
        origin = new.origin
        same = []
        if new.command_id is not None:
            same.append(jobs.c.command_id == new.command_id)
        if origin.repository is not None and origin.comment_id is not None:
            same.append(
                and_(jobs.c.repository == origin.repository, jobs.c.comment_id == origin.comment_id)
            )
        if not same:
            return None
        row = (
            await conn.execute(select(jobs).where(or_(*same)).order_by(jobs.c.created_at).limit(1))
        ).first()
        return _job(row) if row is not None else None

    async def _accepted_again(self, conn: AsyncConnection, job: Job) -> Accepted:
        if job.state != JobState.QUEUED:
            return Accepted(job.id, 0, existing=True, queued=False)
        position = await self._position(conn, job.id, job.created_at)
        running = await self._running_values(conn)
        slot = Slot(job.id, lim.scope_values(job.origin), JobLimits.from_json(job.limits))
        waiting_on = lim.full_scope(slot, lim.running_counts(running))
        return Accepted(job.id, position, waiting_on, existing=True)

    async def _position(self, conn: AsyncConnection, job_id: str, created_at: dt.datetime) -> int:
        ahead = await conn.scalar(
            select(func.count())
            .select_from(jobs)
            .where(
                jobs.c.state == str(JobState.QUEUED),
                or_(
                    jobs.c.created_at < created_at,
                    and_(jobs.c.created_at == created_at, jobs.c.id < job_id),
                ),
            )
        )
        return int(ahead or 0) + 1

    async def _running_values(self, conn: AsyncConnection) -> list[dict[Scope, object]]:
        rows = await conn.execute(
            select(jobs.c.installation_id, jobs.c.repository, jobs.c.requester).where(
                jobs.c.state == str(JobState.RUNNING)
            )
        )
        return [lim.values_of(r._mapping) for r in rows]

    async def queue_position(self, job_id: str) -> int | None:
        """1 for the next job to start; None when the job is not queued."""
        async with self.engine.begin() as conn:
            row = (
                await conn.execute(
                    select(jobs.c.state, jobs.c.created_at).where(jobs.c.id == job_id)
                )
            ).first()
            if row is None or row.state != JobState.QUEUED:
                return None
            return await self._position(conn, job_id, row.created_at)

    async def get_job(self, job_id: str) -> Job | None:
        async with self.engine.begin() as conn:
            row = (await conn.execute(select(jobs).where(jobs.c.id == job_id))).first()
        return _job(row) if row is not None else None

    async def find_job(self, prefix: str) -> Job | None:
        """A job by its id or an unambiguous prefix of it (the 8-character short id)."""
        if len(prefix) < 4 or not all(c in "0123456789abcdef" for c in prefix):
            return None
        async with self.engine.begin() as conn:
            rows = (
                await conn.execute(select(jobs).where(jobs.c.id.startswith(prefix)).limit(2))
            ).all()
        return _job(rows[0]) if len(rows) == 1 else None

    async def list_jobs(
        self,
        *,
        repository: str | None = None,
        state: JobState | Sequence[JobState] | None = None,
        requester: str | None = None,
        limit: int = 50,
    ) -> list[Job]:
        """Newest first."""
        query = select(jobs).order_by(jobs.c.created_at.desc(), jobs.c.id.desc()).limit(limit)
        if repository is not None:
            query = query.where(jobs.c.repository == repository)
        if requester is not None:
            query = query.where(jobs.c.requester == requester)
        if state is not None:
            states = [state] if isinstance(state, JobState) else list(state)
            query = query.where(jobs.c.state.in_([str(s) for s in states]))
        async with self.engine.begin() as conn:
            return [_job(r) for r in await conn.execute(query)]

    async def events(self, job_id: str, *, after: int = 0) -> list[JobEvent]:
        """The job's timeline in order; ``after`` an event id to read only newer ones."""
        async with self.engine.begin() as conn:
            rows = await conn.execute(
                select(job_events)
                .where(job_events.c.job_id == job_id, job_events.c.id > after)
                .order_by(job_events.c.id)
            )
            return [_event(r) for r in rows]

    async def add_event(
        self,
        job_id: str,
        kind: EventKind,
        *,
        phase: str | None = None,
        message: str = "",
        data: Mapping[str, Any] | None = None,
        progress: Mapping[str, Any] | None = None,
        owner: str | None = None,
    ) -> None:
        """Append to the job's timeline; with ``progress`` (and the lease ``owner``), also
        set the job's current phase and progress in the same transaction."""
        async with self.engine.begin() as conn:
            await self._event(conn, job_id, kind, phase=phase, message=message, data=data)
            if progress is not None:
                await conn.execute(
                    update(jobs)
                    .where(jobs.c.id == job_id, jobs.c.lease_owner == owner)
                    .values(phase=phase, progress=dict(progress), updated_at=self.clock())
                )

    # ------------------------------------------------------------------ the GitHub front's writes

    async def set_tracking_comment(self, job_id: str, comment_id: int) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(
                update(jobs)
                .where(jobs.c.id == job_id)
                .values(tracking_comment_id=comment_id, updated_at=self.clock())
            )

    async def set_published(
        self, job_id: str, *, branch: str | None = None, pr_url: str | None = None
    ) -> None:
        """Record the branch (as soon as it exists) and the pull request of a job, so a retried
        or recovered job reuses them."""
        values: dict[str, Any] = {"updated_at": self.clock()}
        if branch is not None:
            values["branch"] = branch
        if pr_url is not None:
            values["pr_url"] = pr_url
        async with self.engine.begin() as conn:
            await conn.execute(update(jobs).where(jobs.c.id == job_id).values(**values))
            if pr_url is not None:
                await self._event(conn, job_id, EventKind.PUBLISHED, message=pr_url)

    async def set_queue_ref(self, job_id: str, ref: str | None) -> None:
        """Record the queue's id for the job (None: keep it) and when it was handed over."""
        values: dict[str, Any] = {"updated_at": self.clock()}
        if ref is not None:
            values["queue_ref"] = ref
        async with self.engine.begin() as conn:
            await conn.execute(update(jobs).where(jobs.c.id == job_id).values(**values))

    async def orphans(self, older_than: dt.timedelta, stale_after: dt.timedelta) -> list[str]:
        """Queued jobs the queue may have lost: never handed to it (``queue_ref`` unset) for
        ``older_than`` — their submitter stopped first — or not handed over again for
        ``stale_after`` (the queue's own job failed, say, before claiming the row)."""
        now = self.clock()
        async with self.engine.begin() as conn:
            rows = await conn.execute(
                select(jobs.c.id)
                .where(
                    jobs.c.state == str(JobState.QUEUED),
                    or_(
                        and_(jobs.c.queue_ref.is_(None), jobs.c.updated_at < now - older_than),
                        jobs.c.updated_at < now - stale_after,
                    ),
                )
                .order_by(jobs.c.created_at)
            )
            return list(rows.scalars())

    async def request_cancel(self, job_id: str) -> Job | None:
        """A queued job is cancelled at once (it leaves the queue); a running one is flagged
        and its worker stops it. A finished job is left as it is. None: no such job."""
        now = self.clock()
        async with self.engine.begin() as conn:
            queued = await conn.execute(
                update(jobs)
                .where(jobs.c.id == job_id, jobs.c.state == str(JobState.QUEUED))
                .values(
                    state=str(JobState.CANCELLED),
                    cancel_requested=True,
                    finished_at=now,
                    updated_at=now,
                    error="cancelled before it started",
                )
            )
            if queued.rowcount:
                await self._event(conn, job_id, EventKind.FINISHED, message="cancelled")
            else:
                running = await conn.execute(
                    update(jobs)
                    .where(
                        jobs.c.id == job_id,
                        jobs.c.state == str(JobState.RUNNING),
                        jobs.c.cancel_requested.is_(False),
                    )
                    .values(cancel_requested=True, updated_at=now)
                )
                if running.rowcount:
                    await self._event(conn, job_id, EventKind.CANCEL_REQUESTED)
            row = (await conn.execute(select(jobs).where(jobs.c.id == job_id))).first()
        return _job(row) if row is not None else None

    # ------------------------------------------------------------------ workers

    async def claim_next(self, owner: str, *, lease_s: float) -> Job | None:
        """The oldest queued job that every running limit admits, now running under
        ``owner``'s lease (attempt + 1). None when nothing may start."""
        async with self.engine.begin() as conn:
            await self._lock(conn, _CLAIM_LOCK)
            rows = await conn.execute(
                select(
                    jobs.c.id,
                    jobs.c.installation_id,
                    jobs.c.repository,
                    jobs.c.requester,
                    jobs.c.limits,
                )
                .where(jobs.c.state == str(JobState.QUEUED))
                .order_by(jobs.c.created_at, jobs.c.id)
                .limit(_CLAIM_SCAN)
            )
            candidates = [
                Slot(r.id, lim.values_of(r._mapping), JobLimits.from_json(r.limits)) for r in rows
            ]
            if not candidates:
                return None
            chosen = lim.first_admissible(candidates, await self._running_values(conn))
            if chosen is None:
                return None
            return await self._take(conn, chosen.job_id, owner, lease_s)

    async def claim(self, job_id: str, owner: str, *, lease_s: float) -> Job | Blocked | Gone:
        """Claim one given job (the procrastinate queue hands out ids): running under
        ``owner``'s lease, or why not."""
        async with self.engine.begin() as conn:
            await self._lock(conn, _CLAIM_LOCK)
            row = (await conn.execute(select(jobs).where(jobs.c.id == job_id))).first()
            if row is None:
                return Gone(JobState.CANCELLED)
            if row.state != JobState.QUEUED:
                return Gone(JobState(row.state))
            slot = Slot(job_id, lim.values_of(row._mapping), JobLimits.from_json(row.limits))
            scope = lim.full_scope(slot, lim.running_counts(await self._running_values(conn)))
            if scope is not None:
                return Blocked(scope)
            return await self._take(conn, job_id, owner, lease_s)

    async def _take(self, conn: AsyncConnection, job_id: str, owner: str, lease_s: float) -> Job:
        now = self.clock()
        await conn.execute(
            update(jobs)
            .where(jobs.c.id == job_id)
            .values(
                state=str(JobState.RUNNING),
                attempts=jobs.c.attempts + 1,
                lease_owner=owner,
                lease_until=now + dt.timedelta(seconds=lease_s),
                heartbeat_at=now,
                started_at=now,
                updated_at=now,
                progress={},
                phase=None,
            )
        )
        row = (await conn.execute(select(jobs).where(jobs.c.id == job_id))).one()
        job = _job(row)
        await self._event(
            conn, job_id, EventKind.CLAIMED, message=owner, data={"attempt": job.attempts}
        )
        return job

    async def heartbeat(self, owner: str, job_ids: Sequence[str], *, lease_s: float) -> set[str]:
        """Renew ``owner``'s leases; returns the ids it still holds (a job recovered by
        someone else after a missed lease is no longer its)."""
        if not job_ids:
            return set()
        now = self.clock()
        held = and_(
            jobs.c.id.in_(list(job_ids)),
            jobs.c.lease_owner == owner,
            jobs.c.state == str(JobState.RUNNING),
        )
        async with self.engine.begin() as conn:
            await conn.execute(
                update(jobs)
                .where(held)
                .values(heartbeat_at=now, lease_until=now + dt.timedelta(seconds=lease_s))
            )
            return set((await conn.execute(select(jobs.c.id).where(held))).scalars())

    async def cancel_requests(self, job_ids: Sequence[str]) -> set[str]:
        """Which of these jobs someone asked to cancel."""
        if not job_ids:
            return set()
        async with self.engine.begin() as conn:
            rows = await conn.execute(
                select(jobs.c.id).where(jobs.c.id.in_(list(job_ids)), jobs.c.cancel_requested)
            )
            return set(rows.scalars())

    async def update_progress(
        self, job_id: str, owner: str, *, phase: str, progress: Mapping[str, Any]
    ) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(
                update(jobs)
                .where(jobs.c.id == job_id, jobs.c.lease_owner == owner)
                .values(phase=phase, progress=dict(progress), updated_at=self.clock())
            )

    async def finish(self, job_id: str, owner: str, outcome: JobOutcome) -> Job | None:
        """Write how ``owner``'s run of the job ended. A transient failure with an attempt
        left goes back to the queue. None: the lease was lost (the job is someone else's)."""
        now = self.clock()
        async with self.engine.begin() as conn:
            row = (
                await conn.execute(
                    select(jobs.c.attempts, jobs.c.max_attempts, jobs.c.cancel_requested).where(
                        jobs.c.id == job_id,
                        jobs.c.lease_owner == owner,
                        jobs.c.state == str(JobState.RUNNING),
                    )
                )
            ).first()
            if row is None:
                return None
            retry = (
                outcome.state == JobState.FAILED
                and outcome.error_kind == ErrorKind.TRANSIENT
                and row.attempts < row.max_attempts
                and not row.cancel_requested
            )
            values: dict[str, Any] = {
                "phase": outcome.phase,
                "progress": dict(outcome.progress or {}),
                "result": dict(outcome.result) if outcome.result is not None else None,
                "usage": dict(outcome.usage) if outcome.usage is not None else None,
                "cost_usd": jobs.c.cost_usd + outcome.cost_usd,
                "error": outcome.error,
                "error_kind": str(outcome.error_kind) if outcome.error_kind else None,
                "lease_owner": None,
                "lease_until": None,
                "updated_at": now,
            }
            if retry:
                values["state"] = str(JobState.QUEUED)
                values["queue_ref"] = None
                kind, message = EventKind.RETRYING, f"after a transient error: {outcome.error}"
            else:
                values["state"] = str(outcome.state)
                values["finished_at"] = now
                kind, message = EventKind.FINISHED, str(outcome.state)
            await conn.execute(update(jobs).where(jobs.c.id == job_id).values(**values))
            await self._event(conn, job_id, kind, phase=outcome.phase, message=message)
            return _job((await conn.execute(select(jobs).where(jobs.c.id == job_id))).one())

    async def recover_expired(self) -> list[Recovery]:
        """Jobs whose worker stopped renewing its lease: back to the queue for a fresh
        attempt while one is left, else failed with the reason. Never left running."""
        now = self.clock()
        found: list[Recovery] = []
        async with self.engine.begin() as conn:
            await self._lock(conn, _CLAIM_LOCK)
            rows = await conn.execute(
                select(
                    jobs.c.id,
                    jobs.c.attempts,
                    jobs.c.max_attempts,
                    jobs.c.lease_owner,
                    jobs.c.cancel_requested,
                ).where(jobs.c.state == str(JobState.RUNNING), jobs.c.lease_until < now)
            )
            for row in rows.all():
                requeue = row.attempts < row.max_attempts and not row.cancel_requested
                values: dict[str, Any] = {
                    "lease_owner": None,
                    "lease_until": None,
                    "updated_at": now,
                }
                if requeue:
                    values["state"] = str(JobState.QUEUED)
                    values["queue_ref"] = None
                    message = (
                        f"worker {row.lease_owner} stopped during attempt {row.attempts}; "
                        f"retrying in a fresh workspace"
                    )
                elif row.cancel_requested:
                    values |= {
                        "state": str(JobState.CANCELLED),
                        "finished_at": now,
                        "error": "cancelled (its worker stopped)",
                    }
                    message = "cancelled"
                else:
                    values |= {
                        "state": str(JobState.FAILED),
                        "finished_at": now,
                        "error_kind": str(ErrorKind.LOST),
                        "error": (
                            f"the worker running attempt {row.attempts} of {row.max_attempts} "
                            f"stopped (no heartbeat); not retried again"
                        ),
                    }
                    message = "failed: worker lost"
                await conn.execute(update(jobs).where(jobs.c.id == row.id).values(**values))
                await self._event(conn, row.id, EventKind.RECOVERED, message=message)
                found.append(Recovery(row.id, requeue))
        return found

    # ------------------------------------------------------------------ retention

    async def workspaces_to_delete(self, older_than: dt.timedelta) -> list[str]:
        """Ids of jobs finished before ``now - older_than`` whose workspace still exists."""
        cutoff = self.clock() - older_than
        async with self.engine.begin() as conn:
            rows = await conn.execute(
                select(jobs.c.id).where(
                    jobs.c.state.in_([str(s) for s in FINISHED_STATES]),
                    jobs.c.finished_at < cutoff,
                    jobs.c.workspace_deleted_at.is_(None),
                )
            )
            return list(rows.scalars())

    async def mark_workspace_deleted(self, job_ids: Sequence[str]) -> None:
        if not job_ids:
            return
        async with self.engine.begin() as conn:
            await conn.execute(
                update(jobs)
                .where(jobs.c.id.in_(list(job_ids)))
                .values(workspace_deleted_at=self.clock())
            )

    async def prune_finished(self, older_than: dt.timedelta) -> int:
        """Delete rows (and events) of jobs finished before ``now - older_than``."""
        cutoff = self.clock() - older_than
        finished = and_(
            jobs.c.state.in_([str(s) for s in FINISHED_STATES]), jobs.c.finished_at < cutoff
        )
        async with self.engine.begin() as conn:
            ids = list((await conn.execute(select(jobs.c.id).where(finished))).scalars())
            if not ids:
                return 0
            await conn.execute(delete(job_events).where(job_events.c.job_id.in_(ids)))
            await conn.execute(delete(jobs).where(jobs.c.id.in_(ids)))
            return len(ids)

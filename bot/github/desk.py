"""The GitHub front's protocols (bot.github.ports) over the job store (bot.jobs.store)."""

from __future__ import annotations

import asyncio
import socket
from typing import cast

from bot.github.commands import CommandName, read_stored, stored_command
from bot.github.ports import Admission, JobState, JobView, NewJob, RepoJobLimits, StoredCommand
from bot.github.webhooks import Trigger
from bot.jobs.limits import JobLimits, RateLimited
from bot.jobs.queue import Queue
from bot.jobs.queue import cancel as queue_cancel
from bot.jobs.queue import submit as queue_submit
from bot.jobs.store import CommandIn, Job, Store
from bot.jobs.store import NewJob as StoreNewJob
from bot.pipeline.context import Origin
from bot.settings import Settings


def job_view(job: Job) -> JobView:
    spec = job.spec or {}
    return JobView(
        id=job.id,
        repository=job.repository or "",
        issue=job.issue or 0,
        requester=job.requester or "",
        state=cast(JobState, str(job.state)),
        phase=job.phase,
        pr_url=job.pr_url,
        tracking_comment_id=job.tracking_comment_id,
        description=job.description,
        installation_id=job.installation_id or 0,
        comment_id=job.comment_id,
        delivery_id=job.delivery_id or "",
        attempt=max(job.attempts, 1),
        plugin_name=spec.get("name") if isinstance(spec, dict) else None,
        kind=job.kind,
        retry_of=job.retry_of,
    )


class StoreDesk:
    def __init__(
        self,
        store: Store,
        settings: Settings,
        queue: Queue | None = None,
        owner: str | None = None,
    ) -> None:
        self.store = store
        self.settings = settings
        # Without a queue, workers find jobs in the store (the embedded queue does).
        self.queue = queue
        self.owner = owner or f"dispatcher@{socket.gethostname()}"

    # ------------------------------------------------------------ CommandInbox

    async def record_command(self, trigger: Trigger) -> bool:
        event, _, action = trigger.event.partition(".")
        command = CommandIn(
            name=trigger.command.name.value,
            body=trigger.body,
            requester=trigger.requester,
            repository=trigger.repository,
            argument=trigger.command.argument or trigger.command.typed,
            installation_id=trigger.installation_id,
            issue=trigger.issue_number or None,
            comment_id=trigger.comment_id,
        )
        return await self.store.record_delivery(
            trigger.delivery_id,
            event,
            action=action or None,
            installation_id=trigger.installation_id,
            repository=trigger.repository,
            command=command,
        )

    async def claim_command(self) -> StoredCommand | None:
        row = await self.store.claim_command(self.owner)
        if row is None:
            return None
        # The body is stored as it was at trigger time. The request stored it unread; its
        # Markdown is read here, in a thread, so the loop (and the webhook server on it)
        # keeps answering while a long hostile comment is read.
        if row.name == CommandName.UNREAD.value:
            command = await asyncio.to_thread(read_stored, row.argument, row.body)
        else:
            command = stored_command(row.name, row.argument)
        trigger = Trigger(
            delivery_id=row.delivery_id,
            event="issue_comment.created" if row.comment_id is not None else "issues.opened",
            installation_id=row.installation_id,
            repository=row.repository,
            issue_number=row.issue or 0,
            is_pull_request=False,
            comment_id=row.comment_id,
            requester=row.requester,
            requester_id=0,
            body=row.body,
            command=command,
        )
        return StoredCommand(row.id, trigger)

    async def finish_command(self, command_id: int, outcome: str, job_id: str | None) -> None:
        await self.store.finish_command(command_id, outcome, job_id=job_id)

    # ------------------------------------------------------------ JobDesk

    def _limits(self, repo: RepoJobLimits) -> JobLimits:
        lower = {}
        if repo.jobs_per_hour is not None:
            lower["per_hour_repository"] = repo.jobs_per_hour
        if repo.max_running is not None:
            lower["running_repository"] = repo.max_running
        return JobLimits.from_settings(self.settings).lowered(**lower)

    async def admit(self, job: NewJob, limits: RepoJobLimits) -> Admission:
        trigger = job.trigger
        origin = Origin(
            repository=trigger.repository,
            installation_id=trigger.installation_id,
            issue=trigger.issue_number or None,
            comment_id=trigger.comment_id,
            requester=trigger.requester,
            delivery_id=trigger.delivery_id,
        )
        new = StoreNewJob(
            description=job.description,
            origin=origin,
            command_id=job.command_id,
            kind=job.kind,
            retry_of=job.retry_of,
        )
        attempts = self.settings.job_max_attempts
        if self.queue is not None:
            answer = await queue_submit(
                self.store, self.queue, new, self._limits(limits), max_attempts=attempts
            )
        else:
            answer = await self.store.submit(new, self._limits(limits), max_attempts=attempts)
        if isinstance(answer, RateLimited):
            return Admission(
                "refused", retry_at=answer.retry_at, scope=answer.scope, limit=answer.limit
            )
        if answer.waiting_on is not None:
            return Admission("queued", answer.job_id, position=answer.position)
        return Admission("accepted", answer.job_id, position=answer.position)

    async def set_tracking_comment(self, job_id: str, comment_id: int) -> None:
        await self.store.set_tracking_comment(job_id, comment_id)

    async def get_job(self, job_id: str) -> JobView | None:
        job = await self.store.get_job(job_id) or await self.store.find_job(job_id)
        return job_view(job) if job is not None else None

    async def jobs_on_issue(self, repository: str, issue: int) -> list[JobView]:
        jobs = await self.store.list_jobs(repository=repository, limit=200)
        return [job_view(j) for j in reversed(jobs) if j.issue == issue]

    async def request_cancel(self, job_id: str) -> bool:
        if self.queue is not None:
            job = await queue_cancel(self.store, self.queue, job_id)
        else:
            job = await self.store.request_cancel(job_id)
        return job is not None and (job.cancel_requested or str(job.state) == "cancelled")


__all__ = ["CommandName", "StoreDesk", "job_view"]

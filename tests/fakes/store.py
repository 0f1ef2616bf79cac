"""An in-memory stand-in for the job store's side the GitHub front uses (bot.github.ports).

It keeps the same promises the durable store makes: a delivery id is stored once, limits
are evaluated when a job is admitted. Used until the jobs issue's store is merged.
"""

from __future__ import annotations

import datetime as dt
import itertools
from dataclasses import dataclass, field, replace

from bot.github.ports import (
    FINISHED,
    Admission,
    JobLimits,
    JobView,
    NewJob,
    StoredCommand,
)
from bot.github.webhooks import Trigger


@dataclass
class MemoryStore:
    deliveries: set[str] = field(default_factory=set)
    commands: list[StoredCommand] = field(default_factory=list)
    outcomes: dict[int, str] = field(default_factory=dict)
    jobs: dict[str, JobView] = field(default_factory=dict)
    created: dict[str, dt.datetime] = field(default_factory=dict)
    cancel_requested: set[str] = field(default_factory=set)
    now: dt.datetime = field(default_factory=lambda: dt.datetime(2026, 12, 1, 12, tzinfo=dt.UTC))
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _claimed: set[int] = field(default_factory=set)

    async def record_command(self, trigger: Trigger) -> bool:
        if trigger.delivery_id in self.deliveries:
            return False
        self.deliveries.add(trigger.delivery_id)
        self.commands.append(StoredCommand(next(self._ids), trigger))
        return True

    async def claim_command(self) -> StoredCommand | None:
        for command in self.commands:
            if command.id not in self._claimed:
                self._claimed.add(command.id)
                return command
        return None

    async def finish_command(self, command_id: int, outcome: str) -> None:
        self.outcomes[command_id] = outcome

    async def admit(self, job: NewJob, limits: JobLimits) -> Admission:
        hour_ago = self.now - dt.timedelta(hours=1)
        recent = sorted(t for t in self.created.values() if t > hour_ago)
        if len(recent) >= limits.jobs_per_hour:
            return Admission(
                "refused",
                retry_at=recent[0] + dt.timedelta(hours=1),
                scope="installation",
                limit=limits.jobs_per_hour,
            )
        running = [j for j in self.jobs.values() if j.state not in FINISHED]
        job_id = f"{len(self.jobs) + 1:04d}abcdef"
        state = "queued"
        self.jobs[job_id] = JobView(
            id=job_id,
            repository=job.trigger.repository,
            issue=job.trigger.issue_number,
            requester=job.trigger.requester,
            state=state,
            phase=None,
            plugin_name=None,
            pr_url=None,
            tracking_comment_id=None,
            description=job.description,
            base_branch=job.base_branch,
            base_sha=job.base_sha,
            plugins_folder=job.plugins_folder,
            installation_id=job.trigger.installation_id or 0,
            comment_id=job.trigger.comment_id,
            delivery_id=job.trigger.delivery_id,
        )
        self.created[job_id] = self.now
        if len(running) >= limits.max_running:
            return Admission("queued", job_id, position=len(running) - limits.max_running + 1)
        return Admission("accepted", job_id)

    async def set_tracking_comment(self, job_id: str, comment_id: int) -> None:
        self.jobs[job_id] = replace(self.jobs[job_id], tracking_comment_id=comment_id)

    async def get_job(self, job_id: str) -> JobView | None:
        return self.jobs.get(job_id)

    async def jobs_on_issue(self, repository: str, issue: int) -> list[JobView]:
        return [j for j in self.jobs.values() if (j.repository, j.issue) == (repository, issue)]

    async def request_cancel(self, job_id: str) -> bool:
        job = self.jobs.get(job_id)
        if job is None or job.state in FINISHED:
            return False
        self.cancel_requested.add(job_id)
        return True

    def finish(self, job_id: str, **changes: object) -> None:
        self.jobs[job_id] = replace(self.jobs[job_id], **changes)  # type: ignore[arg-type]

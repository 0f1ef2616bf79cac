"""What the GitHub front needs from the job store, as small protocols.

The durable store (``bot/jobs/store.py``, the jobs issue) implements these; the front
depends only on what is written here, so it can be read and tested on its own.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Literal, Protocol

from bot.github.commands import Command
from bot.github.webhooks import Trigger

JobState = Literal["queued", "running", "succeeded", "failed", "cancelled"]
FINISHED: frozenset[str] = frozenset({"succeeded", "failed", "cancelled"})


@dataclass(frozen=True)
class StoredCommand:
    """A command as the server stored it: the trigger, and the store's id for it."""

    id: int
    trigger: Trigger

    @property
    def command(self) -> Command:
        return self.trigger.command


@dataclass(frozen=True)
class JobLimits:
    """The limits one job is admitted under: the bot's, lowered by the repository's."""

    jobs_per_hour: int
    max_running: int


@dataclass(frozen=True)
class NewJob:
    command_id: int
    trigger: Trigger
    description: str
    base_branch: str
    base_sha: str
    plugins_folder: str
    retry_of: str | None = None


@dataclass(frozen=True)
class Admission:
    """The store's answer to a new job: started, queued (position) or refused (until)."""

    outcome: Literal["accepted", "queued", "refused"]
    job_id: str | None = None
    position: int = 0
    retry_at: dt.datetime | None = None
    scope: str = "installation"
    limit: int = 0


@dataclass(frozen=True)
class JobView:
    id: str
    repository: str
    issue: int
    requester: str
    state: JobState
    phase: str | None
    plugin_name: str | None
    pr_url: str | None
    tracking_comment_id: int | None
    description: str
    base_branch: str
    base_sha: str
    plugins_folder: str
    installation_id: int
    comment_id: int | None
    delivery_id: str
    attempt: int = 1


class CommandInbox(Protocol):
    async def record_command(self, trigger: Trigger) -> bool:
        """Store delivery and command in one transaction; False if the delivery id was
        seen before (then nothing is stored)."""
        ...

    async def claim_command(self) -> StoredCommand | None: ...

    async def finish_command(self, command_id: int, outcome: str) -> None: ...


class JobDesk(Protocol):
    async def admit(self, job: NewJob, limits: JobLimits) -> Admission:
        """Evaluate the limits and create the job row, atomically, in the database."""
        ...

    async def set_tracking_comment(self, job_id: str, comment_id: int) -> None: ...

    async def get_job(self, job_id: str) -> JobView | None: ...

    async def jobs_on_issue(self, repository: str, issue: int) -> list[JobView]: ...

    async def request_cancel(self, job_id: str) -> bool: ...

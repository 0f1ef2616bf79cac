"""What the GitHub front needs from the job store, as small protocols.

:class:`bot.github.desk.StoreDesk` implements them over ``bot.jobs.store.Store``; the
front depends only on what is written here.
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
class RepoJobLimits:
    """A repository's own lower limits (None: the bot's)."""

    jobs_per_hour: int | None = None
    max_running: int | None = None


@dataclass(frozen=True)
class NewJob:
    command_id: int
    trigger: Trigger
    description: str
    retry_of: str | None = None  # the first job of the chain a retry runs again
    kind: str = "create"  # "revise": a revision of the bot's pull request


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
    pr_url: str | None
    tracking_comment_id: int | None
    description: str
    installation_id: int
    comment_id: int | None
    delivery_id: str
    attempt: int = 1
    plugin_name: str | None = None
    kind: str = "create"
    retry_of: str | None = None  # a retry: the first job of the chain (its branch is this one's)

    @property
    def short_id(self) -> str:
        return self.id[:8]


class CommandInbox(Protocol):
    async def record_command(self, trigger: Trigger) -> bool:
        """Store delivery and command in one transaction; False if the delivery id was
        seen before (then nothing is stored)."""
        ...

    async def claim_command(self) -> StoredCommand | None: ...

    async def finish_command(self, command_id: int, outcome: str, job_id: str | None) -> None: ...


class JobDesk(Protocol):
    async def admit(self, job: NewJob, limits: RepoJobLimits) -> Admission:
        """Evaluate the limits and create the job row, atomically, in the database."""
        ...

    async def set_tracking_comment(self, job_id: str, comment_id: int) -> None: ...

    async def get_job(self, job_id: str) -> JobView | None:
        """By id or unambiguous short id."""
        ...

    async def jobs_on_issue(self, repository: str, issue: int) -> list[JobView]:
        """Oldest first."""
        ...

    async def request_cancel(self, job_id: str) -> bool: ...

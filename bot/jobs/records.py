"""What the job store hands out and takes in: plain frozen records, no database code."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from bot.jobs.limits import Scope
from bot.jobs.states import ErrorKind, EventKind, JobState
from bot.pipeline.context import JobRequest, Origin
from bot.spec.schema import PluginSpec


@dataclass(frozen=True)
class CommandIn:
    """A command as the webhook saw it, stored with its delivery."""

    name: str
    body: str
    requester: str
    repository: str
    argument: str = ""
    installation_id: int | None = None
    issue: int | None = None
    comment_id: int | None = None


@dataclass(frozen=True)
class DeliveryIn:
    """A webhook delivery to store, with the command it carried (if any)."""

    delivery_id: str
    event: str
    action: str | None = None
    installation_id: int | None = None
    repository: str | None = None
    command: CommandIn | None = None


@dataclass(frozen=True)
class Command:
    id: int
    delivery_id: str
    name: str
    argument: str
    body: str
    requester: str
    installation_id: int | None
    repository: str
    issue: int | None
    comment_id: int | None
    created_at: dt.datetime
    state: str
    claimed_by: str | None
    claim_until: dt.datetime | None
    handled_at: dt.datetime | None
    outcome: str | None
    job_id: str | None


@dataclass(frozen=True)
class NewJob:
    """What a job is asked to do, and where it came from."""

    description: str
    origin: Origin = field(default_factory=Origin)
    spec: PluginSpec | None = None
    generator: str = "auto"
    command_id: int | None = None
    kind: str = "create"  # "revise": a revision of the bot's pull request
    retry_of: str | None = None  # a retry: the first job of the chain it runs again


@dataclass(frozen=True)
class Accepted:
    """Queued. ``position`` counts from 1 (next to start); ``waiting_on`` names a scope whose
    running limit is reached right now, or is None when only free workers are awaited."""

    job_id: str
    position: int
    waiting_on: Scope | None = None
    # The command already made this job (a redelivery, or a dispatcher retried after a
    # crash): nothing new was stored. ``queued`` says whether it still waits to start.
    existing: bool = False
    queued: bool = True


@dataclass(frozen=True)
class Job:
    id: str
    state: JobState
    phase: str | None
    progress: dict[str, Any]
    attempts: int
    max_attempts: int
    lease_owner: str | None
    lease_until: dt.datetime | None
    heartbeat_at: dt.datetime | None
    created_at: dt.datetime
    started_at: dt.datetime | None
    finished_at: dt.datetime | None
    updated_at: dt.datetime
    description: str
    spec: dict[str, Any] | None
    generator: str
    installation_id: int | None
    repository: str | None
    issue: int | None
    comment_id: int | None
    requester: str | None
    delivery_id: str | None
    command_id: int | None
    limits: dict[str, int]
    result: dict[str, Any] | None
    usage: dict[str, Any] | None
    cost_usd: float
    error: str | None
    error_kind: ErrorKind | None
    tracking_comment_id: int | None
    branch: str | None
    pr_url: str | None
    cancel_requested: bool
    queue_ref: str | None
    workspace_deleted_at: dt.datetime | None
    kind: str = "create"  # "create" | "revise"
    retry_of: str | None = None  # a retry: the first job of the chain it runs again

    @property
    def short_id(self) -> str:
        return self.id[:8]

    @property
    def origin(self) -> Origin:
        return Origin(
            repository=self.repository,
            installation_id=self.installation_id,
            issue=self.issue,
            comment_id=self.comment_id,
            requester=self.requester,
            delivery_id=self.delivery_id,
        )

    def request(self) -> JobRequest:
        spec = PluginSpec.model_validate(self.spec) if self.spec is not None else None
        return JobRequest(
            job_id=self.id, description=self.description, spec=spec, origin=self.origin
        )

    def to_json(self) -> dict[str, Any]:
        """For ``--json`` and the job page: every field, times as ISO 8601."""
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            out[f.name] = value.isoformat() if isinstance(value, dt.datetime) else value
        return out


@dataclass(frozen=True)
class JobEvent:
    id: int
    job_id: str
    at: dt.datetime
    kind: EventKind
    phase: str | None
    message: str
    data: dict[str, Any] | None

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "at": self.at.isoformat(),
            "kind": str(self.kind),
            "phase": self.phase,
            "message": self.message,
            "data": self.data,
        }


@dataclass(frozen=True)
class JobOutcome:
    """How a run ended, as the worker reports it to :meth:`Store.finish`."""

    state: JobState  # succeeded, failed or cancelled
    phase: str | None = None
    progress: Mapping[str, Any] | None = None
    result: Mapping[str, Any] | None = None
    usage: Mapping[str, Any] | None = None
    cost_usd: float = 0.0
    error: str | None = None
    error_kind: ErrorKind | None = None


@dataclass(frozen=True)
class Blocked:
    """A claim that must wait: ``scope`` has no running slot free."""

    scope: Scope


@dataclass(frozen=True)
class Gone:
    """A claim for a job that is no longer queued (cancelled, finished, taken)."""

    state: JobState


@dataclass(frozen=True)
class Recovery:
    job_id: str
    requeued: bool  # False: failed, no attempt left

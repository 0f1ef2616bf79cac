"""Rate and concurrency limits, evaluated in the database so they hold across processes.

Three scopes: the installation, the repository and the requester of a job. In each, at most
``per_hour`` jobs may be *created* in a sliding hour (a submit beyond it is refused, with the
time the next slot frees) and at most ``running`` jobs may *run* at once (a job beyond it
waits in the queue, with its position). Only ``running`` jobs count as active: a finished,
failed or cancelled job never holds a slot. A scope whose value is unknown (a local job has
no installation or repository) is not limited.

The store calls these inside a transaction that holds its submit or claim lock, so two
processes can never both take the last slot.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, replace
from typing import Any, Literal

from sqlalchemy import ColumnElement, select
from sqlalchemy.ext.asyncio import AsyncConnection

from bot.jobs.tables import jobs
from bot.pipeline.context import Origin
from bot.settings import Settings

Scope = Literal["installation", "repository", "requester"]
SCOPES: tuple[Scope, ...] = ("installation", "repository", "requester")
RATE_WINDOW = dt.timedelta(hours=1)
_COLUMNS: dict[Scope, str] = {
    "installation": "installation_id",
    "repository": "repository",
    "requester": "requester",
}


@dataclass(frozen=True)
class JobLimits:
    per_hour_installation: int = 10
    per_hour_repository: int = 10
    per_hour_requester: int = 10
    running_installation: int = 10
    running_repository: int = 10
    running_requester: int = 10

    @classmethod
    def from_settings(cls, settings: Settings) -> JobLimits:
        return cls(
            per_hour_installation=settings.limit_jobs_per_hour_installation,
            per_hour_repository=settings.limit_jobs_per_hour_repository,
            per_hour_requester=settings.limit_jobs_per_hour_requester,
            running_installation=settings.limit_running_installation,
            running_repository=settings.limit_running_repository,
            running_requester=settings.limit_running_requester,
        )

    def lowered(self, **lower: int) -> JobLimits:
        """These limits with some lowered (a repository's config may never raise them)."""
        current = asdict(self)
        unknown = set(lower) - set(current)
        if unknown:
            raise ValueError(f"unknown limits: {', '.join(sorted(unknown))}")
        return replace(self, **{k: min(v, current[k]) for k, v in lower.items()})

    def per_hour(self, scope: Scope) -> int:
        value: int = getattr(self, f"per_hour_{scope}")
        return value

    def running(self, scope: Scope) -> int:
        value: int = getattr(self, f"running_{scope}")
        return value

    def to_json(self) -> dict[str, int]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | None) -> JobLimits:
        return cls(**dict(data or {}))


@dataclass(frozen=True)
class RateLimited:
    """Refused: ``scope`` already created its ``limit`` jobs in the last hour."""

    scope: Scope
    limit: int
    retry_at: dt.datetime


def scope_values(origin: Origin) -> dict[Scope, object]:
    return {
        "installation": origin.installation_id,
        "repository": origin.repository,
        "requester": origin.requester,
    }


def _column(scope: Scope) -> ColumnElement[Any]:
    return jobs.c[_COLUMNS[scope]]


async def rate_refusal(
    conn: AsyncConnection, origin: Origin, limits: JobLimits, now: dt.datetime
) -> RateLimited | None:
    """The first scope over its hourly rate, with when its oldest counted job leaves the
    window; None when a job may be created now."""
    since = now - RATE_WINDOW
    for scope, value in scope_values(origin).items():
        if value is None:
            continue
        limit = limits.per_hour(scope)
        recent = (
            await conn.execute(
                select(jobs.c.created_at)
                .where(_column(scope) == value, jobs.c.created_at > since)
                .order_by(jobs.c.created_at.desc())
                .limit(limit)
            )
        ).scalars()
        window = list(recent)
        if len(window) >= limit:
            # The limit-th newest job is the one whose leaving the window frees a slot.
            return RateLimited(scope, limit, window[limit - 1] + RATE_WINDOW)
    return None


@dataclass(frozen=True)
class Slot:
    """A job's scope values and limits, enough to decide whether it may start."""

    job_id: str
    values: Mapping[Scope, object]
    limits: JobLimits


def running_counts(running: Iterable[Mapping[Scope, object]]) -> Counter[tuple[Scope, object]]:
    counts: Counter[tuple[Scope, object]] = Counter()
    for values in running:
        for scope, value in values.items():
            if value is not None:
                counts[(scope, value)] += 1
    return counts


def full_scope(slot: Slot, counts: Counter[tuple[Scope, object]]) -> Scope | None:
    """The first scope of ``slot`` that has no running slot left, or None."""
    for scope, value in slot.values.items():
        if value is not None and counts[(scope, value)] >= slot.limits.running(scope):
            return scope
    return None


def first_admissible(
    candidates: Iterable[Slot], running: Iterable[Mapping[Scope, object]]
) -> Slot | None:
    """The oldest queued job whose every scope has a running slot free."""
    counts = running_counts(running)
    for slot in candidates:
        if full_scope(slot, counts) is None:
            return slot
    return None


def values_of(row: Mapping[Any, Any]) -> dict[Scope, object]:
    return {scope: row[_COLUMNS[scope]] for scope in SCOPES}

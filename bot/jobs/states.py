"""The states, failure kinds and event kinds of a job (no database code: cheap to import)."""

from __future__ import annotations

from enum import StrEnum


class JobState(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def finished(self) -> bool:
        return self in FINISHED_STATES


FINISHED_STATES = frozenset({JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED})


class ErrorKind(StrEnum):
    """Why a job failed, which decides whether it may be retried."""

    OWN = "own"  # the plugin's own code or spec: a retry would fail the same way
    TRANSIENT = "transient"  # model overloaded, network: worth another attempt
    LOST = "lost"  # its worker stopped (lease expired) and no attempt is left
    INTERNAL = "internal"  # the bot itself failed


class EventKind(StrEnum):
    SUBMITTED = "submitted"
    CLAIMED = "claimed"
    PHASE_STARTED = "phase_started"
    PHASE_NOTE = "phase_note"
    PHASE_FINISHED = "phase_finished"
    CANCEL_REQUESTED = "cancel_requested"
    RETRYING = "retrying"  # back in the queue after a transient failure
    RECOVERED = "recovered"  # back in the queue after its worker was lost
    FINISHED = "finished"
    PUBLISHED = "published"

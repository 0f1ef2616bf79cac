"""The job store's tables (SQLAlchemy Core). Changed only together with a migration.

* ``deliveries``: every webhook delivery we accepted, unique by GitHub's delivery id.
* ``commands``: the command a delivery carried, as it was at trigger time (what, who, where,
  the comment body), and how the dispatcher handled it.
* ``jobs``: one row per job, the source of truth for its state, phase, lease and outcome.
* ``job_events``: the timeline of a job (phase started/finished, notes, claims, recoveries).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
)
from sqlalchemy import DateTime as _DateTime

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)


class UTCDateTime(TypeDecorator[dt.datetime]):
    """Aware UTC datetimes in Python, naive UTC in the database (SQLite has no time zones,
    so both backends store the same thing and compare it the same way)."""

    impl = _DateTime
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the job store; use UTC-aware ones")
        return value.astimezone(dt.UTC).replace(tzinfo=None)

    def process_result_value(self, value: Any, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        assert isinstance(value, dt.datetime)
        return value.replace(tzinfo=dt.UTC)


deliveries = Table(
    "deliveries",
    metadata,
    Column("delivery_id", String(64), primary_key=True),
    Column("event", String(64), nullable=False),
    Column("action", String(64)),
    Column("installation_id", BigInteger),
    Column("repository", String(200)),
    Column("received_at", UTCDateTime(), nullable=False),
)

commands = Table(
    "commands",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column(
        "delivery_id",
        String(64),
        ForeignKey("deliveries.delivery_id", ondelete="CASCADE"),
        nullable=False,
        unique=True,
    ),
    Column("name", String(64), nullable=False),  # create-plugin, plugin-status, …
    Column("argument", Text, nullable=False, default=""),  # what follows the command
    Column("body", Text, nullable=False),  # the whole comment at trigger time
    Column("requester", String(100), nullable=False),
    Column("installation_id", BigInteger),
    Column("repository", String(200), nullable=False),
    Column("issue", Integer),
    Column("comment_id", BigInteger),
    Column("created_at", UTCDateTime(), nullable=False),
    # pending → dispatching (claimed by one dispatcher until claim_until) → handled
    Column("state", String(16), nullable=False, default="pending"),
    Column("claimed_by", String(100)),
    Column("claim_until", UTCDateTime()),
    Column("handled_at", UTCDateTime()),
    Column("outcome", Text),
    Column("job_id", String(32)),
    Index("ix_commands_state_created", "state", "created_at"),
)

jobs = Table(
    "jobs",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("state", String(16), nullable=False),  # JobState
    Column("phase", String(32)),  # the phase running now, or the last one that ran
    Column("progress", JSON, nullable=False, default=dict),  # phase -> {state, wall_s, note}
    Column("attempts", Integer, nullable=False, default=0),
    Column("max_attempts", Integer, nullable=False, default=2),
    Column("lease_owner", String(100)),
    Column("lease_until", UTCDateTime()),
    Column("heartbeat_at", UTCDateTime()),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("started_at", UTCDateTime()),
    Column("finished_at", UTCDateTime()),
    Column("updated_at", UTCDateTime(), nullable=False),
    # What was asked, and where it came from (bot.pipeline.context.Origin).
    Column("description", Text, nullable=False),
    Column("spec", JSON),
    Column("generator", String(32), nullable=False, default="auto"),
    Column("installation_id", BigInteger),
    Column("repository", String(200)),
    Column("issue", Integer),
    Column("comment_id", BigInteger),
    Column("requester", String(100)),
    Column("delivery_id", String(64)),
    Column("command_id", Integer, ForeignKey("commands.id", ondelete="SET NULL")),
    Column("limits", JSON, nullable=False, default=dict),  # the JobLimits it was accepted under
    # What it produced.
    Column("result", JSON),
    Column("usage", JSON),
    Column("cost_usd", Float, nullable=False, default=0.0),
    Column("error", Text),
    Column("error_kind", String(16)),  # ErrorKind
    Column("tracking_comment_id", BigInteger),
    Column("branch", String(255)),
    Column("pr_url", String(500)),
    Column("cancel_requested", Boolean, nullable=False, default=False),
    Column("queue_ref", String(64)),  # the queue backend's own id for the job
    Column("workspace_deleted_at", UTCDateTime()),
    # What the job does: JOB_KINDS (a revision of the bot's pull request, or a new plugin);
    # carried, never inferred from the description's words.
    Column("kind", String(16), nullable=False, default="create", server_default="create"),
    # A /plugin-retry: the first job of the chain it runs again (its branch and pull request).
    Column("retry_of", String(32)),
    Index("ix_jobs_state_created", "state", "created_at"),
    Index("ix_jobs_installation_created", "installation_id", "created_at"),
    Index("ix_jobs_repository_created", "repository", "created_at"),
    Index("ix_jobs_requester_created", "requester", "created_at"),
    Index("ix_jobs_finished", "finished_at"),
)

job_events = Table(
    "job_events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("job_id", String(32), ForeignKey("jobs.id", ondelete="CASCADE"), nullable=False),
    Column("at", UTCDateTime(), nullable=False),
    Column("kind", String(32), nullable=False),  # EventKind
    Column("phase", String(32)),
    Column("message", Text, nullable=False, default=""),
    Column("data", JSON),
    Index("ix_job_events_job", "job_id", "id"),
)

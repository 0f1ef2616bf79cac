"""Alembic migrations of the job store, run by ``plugin-bot db upgrade``.

``serve`` and ``worker`` call :func:`require_current` first: a database behind this code
(not upgraded) or ahead of it (upgraded by a newer plugin-bot) is refused with what to do.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection

from bot.errors import BotError
from bot.jobs.store import Store

HERE = Path(__file__).resolve().parent
SchemaState = Literal["current", "behind", "ahead"]


class SchemaMismatch(BotError):
    """The database's schema is not the one this code was written for."""


@dataclass(frozen=True)
class SchemaStatus:
    state: SchemaState
    current: str | None  # the database's revision (None: empty database)
    head: str  # this code's latest revision

    @property
    def advice(self) -> str:
        if self.state == "behind":
            found = self.current or "no tables yet"
            return (
                f"the job database is behind this plugin-bot (at {found}, needs {self.head}): "
                "run `plugin-bot db upgrade`"
            )
        if self.state == "ahead":
            return (
                f"the job database is at revision {self.current}, which this plugin-bot does "
                f"not know (its newest is {self.head}): it was upgraded by a newer plugin-bot; "
                "run that version, or upgrade this one"
            )
        return f"the job database is current ({self.head})"


def _config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(HERE))
    config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    head = ScriptDirectory.from_config(_config()).get_current_head()
    assert head is not None
    return head


def _status(connection: Connection) -> SchemaStatus:
    current = MigrationContext.configure(connection).get_current_revision()
    script = ScriptDirectory.from_config(_config())
    head = head_revision()
    if current == head:
        return SchemaStatus("current", current, head)
    known = {rev.revision for rev in script.walk_revisions()}
    return SchemaStatus("behind" if current is None or current in known else "ahead", current, head)


def _upgrade(connection: Connection) -> None:
    command.upgrade(_config(connection), "head")


async def schema_status(store: Store) -> SchemaStatus:
    async with store.engine.begin() as conn:
        return await conn.run_sync(_status)


async def upgrade(store: Store) -> SchemaStatus:
    """Apply every migration this code has; returns the new status."""
    async with store.engine.begin() as conn:
        await conn.run_sync(_upgrade)
    return await schema_status(store)


async def require_current(store: Store) -> None:
    status = await schema_status(store)
    if status.state != "current":
        raise SchemaMismatch(status.advice)

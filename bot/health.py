"""Readiness (``/readyz``) and the queue figures ``/metrics`` reads from the database.

A process is ready when its database answers and is migrated to this code's schema, its
sandbox ran ``true`` once, and the GitHub App's private key loads. Each check says why it
failed, in words a maintainer can act on.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from sqlalchemy import func, select

from bot.jobs.migrations import schema_status
from bot.jobs.store import JobState, Store
from bot.jobs.tables import jobs
from bot.metrics import QueueStats
from bot.settings import Settings

SandboxProbe = Callable[[], None]  # raises with the reason when the sandbox cannot run


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    reason: str


async def queue_stats(store: Store) -> QueueStats:
    async with store.engine.begin() as conn:
        row = (
            await conn.execute(
                select(func.count(), func.min(jobs.c.created_at)).where(
                    jobs.c.state == str(JobState.QUEUED)
                )
            )
        ).one()
    return QueueStats(depth=int(row[0]), oldest_queued_at=row[1])


async def database_check(store: Store) -> Check:
    try:
        schema = await schema_status(store)
    except Exception as exc:
        return Check("database", False, f"the database does not answer: {type(exc).__name__}")
    return Check("database", schema.state == "current", schema.advice)


def github_check(settings: Settings) -> Check:
    try:
        key = settings.app_private_key()
    except OSError as exc:
        return Check("github", False, f"the App's private key file cannot be read: {exc.strerror}")
    if settings.github_app_id is None or key is None:
        return Check("github", False, "GITHUB_APP_ID and the App's private key are not set")
    try:
        loaded = load_pem_private_key(key.encode(), password=None)
    except (ValueError, TypeError):
        return Check("github", False, "the App's private key is not a PEM private key")
    if not isinstance(loaded, RSAPrivateKey):
        return Check("github", False, "the App's private key is not an RSA key")
    return Check("github", True, "the App's credentials load")


class Readiness:
    """The checks of ``/readyz``; the sandbox probe runs once and is remembered if it passed."""

    def __init__(self, settings: Settings, store: Store, sandbox_probe: SandboxProbe) -> None:
        self.settings = settings
        self.store = store
        self.sandbox_probe = sandbox_probe
        self._sandbox_ok = False

    async def sandbox_check(self) -> Check:
        if not self._sandbox_ok:
            try:
                await asyncio.to_thread(self.sandbox_probe)
            except Exception as exc:
                return Check("sandbox", False, str(exc))
            self._sandbox_ok = True
        return Check("sandbox", True, f"the {self.settings.sandbox} sandbox runs")

    async def checks(self) -> list[Check]:
        return [
            await database_check(self.store),
            await self.sandbox_check(),
            github_check(self.settings),
        ]


def sandbox_probe_for(settings: Settings) -> SandboxProbe:
    """The probe ``serve`` uses: build the sandbox the settings ask for (it runs ``true``)."""

    def probe() -> None:
        from bot.sandbox import sandbox_from_settings

        sandbox_from_settings(settings)

    return probe

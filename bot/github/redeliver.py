"""Redelivery of failed webhook deliveries: GitHub never retries them by itself.

``GET /app/hook/deliveries`` lists every attempt, newest first, paged with a cursor; the
attempts of one delivery share its ``guid``. A guid none of whose attempts succeeded is
asked for again (``POST /app/hook/deliveries/{id}/attempts``) once, for its latest attempt.
``plugin-bot redeliver --since 24h`` does it once; ``serve`` can do it periodically.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import structlog

from bot.github.client import GitHubApp

log = structlog.get_logger("bot.redeliver")

PER_PAGE = 100
_NEXT = re.compile(r'<([^>]+)>;\s*rel="next"')
_SINCE = re.compile(r"^(\d+)\s*([smhd])$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_since(text: str) -> dt.timedelta:
    """``24h``, ``90m``, ``2d``, ``30s``; ValueError saying the accepted form otherwise."""
    match = _SINCE.match(text.strip())
    if match is None or int(match.group(1)) == 0:
        raise ValueError(f"--since wants a number and a unit (s, m, h, d), like 24h: {text!r}")
    return dt.timedelta(seconds=int(match.group(1)) * _UNITS[match.group(2)])


@dataclass
class RedeliveryReport:
    seen: int = 0  # attempts listed within the window
    failed_guids: list[str] = field(default_factory=list)  # no attempt succeeded
    requested: list[int] = field(default_factory=list)  # delivery ids asked for again
    errors: list[str] = field(default_factory=list)


def _ok(attempt: dict[str, Any]) -> bool:
    return 200 <= int(attempt.get("status_code") or 0) < 300


def _when(attempt: dict[str, Any]) -> dt.datetime:
    return dt.datetime.fromisoformat(str(attempt["delivered_at"]).replace("Z", "+00:00"))


def _cursor(link: str | None) -> str | None:
    match = _NEXT.search(link or "")
    if match is None:
        return None
    cursor = httpx.URL(match.group(1)).params.get("cursor")
    return str(cursor) if cursor is not None else None


async def attempts_since(github: GitHubApp, since: dt.datetime) -> AsyncIterator[dict[str, Any]]:
    """Every listed attempt delivered at or after ``since``, newest first."""
    cursor: str | None = None
    async with github.as_app() as gh:
        while True:
            params: dict[str, Any] = {"per_page": PER_PAGE}
            if cursor is not None:
                params["cursor"] = cursor
            response = await gh.arequest("GET", "/app/hook/deliveries", params=params)
            page = response.json()
            for attempt in page:
                if _when(attempt) < since:
                    return
                yield attempt
            cursor = _cursor(response.headers.get("link"))
            if cursor is None or not page:
                return


def failed_deliveries(attempts: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """guid -> its latest attempt, for the guids none of whose attempts succeeded."""
    latest: dict[str, dict[str, Any]] = {}
    succeeded: set[str] = set()
    for attempt in attempts:
        guid = str(attempt["guid"])
        if _ok(attempt):
            succeeded.add(guid)
        if guid not in latest or _when(attempt) > _when(latest[guid]):
            latest[guid] = attempt
    return {guid: a for guid, a in latest.items() if guid not in succeeded}


async def redeliver_failed(
    github: GitHubApp, window: dt.timedelta, *, now: dt.datetime | None = None
) -> RedeliveryReport:
    """Ask GitHub to redeliver each delivery of the last ``window`` that never succeeded."""
    since = (now or dt.datetime.now(dt.UTC)) - window
    report = RedeliveryReport()
    attempts = [a async for a in attempts_since(github, since)]
    report.seen = len(attempts)
    failed = failed_deliveries(attempts)
    report.failed_guids = sorted(failed)
    async with github.as_app() as gh:
        for guid, attempt in failed.items():
            try:
                await gh.arequest("POST", f"/app/hook/deliveries/{attempt['id']}/attempts")
            except Exception as exc:
                report.errors.append(f"{guid}: {type(exc).__name__}")
                log.warning("redelivery.failed", guid=guid, error=type(exc).__name__)
                continue
            report.requested.append(int(attempt["id"]))
            log.info("redelivery.requested", guid=guid, delivery=attempt["id"])
    return report


async def redeliver_periodically(
    github: GitHubApp, window: dt.timedelta, every_s: float, stop: asyncio.Event
) -> None:
    """``serve``'s task: the same, every ``every_s`` seconds, until ``stop``."""
    while not stop.is_set():
        try:
            report = await redeliver_failed(github, window)
            log.info("redelivery.swept", seen=report.seen, requested=len(report.requested))
        except Exception as exc:
            log.warning("redelivery.sweep_failed", error=type(exc).__name__)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), every_s)

"""``plugin-bot redeliver``: failed deliveries (grouped by guid, skipping guids that
succeeded) are asked for again, through every page of GET /app/hook/deliveries, against
the OpenAPI-validated stand-in."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging

import pytest
import structlog

from bot.cli import main
from bot.github.client import GitHubApp
from bot.github.redeliver import parse_since, redeliver_failed, redeliver_periodically
from bot.settings import Settings
from tests.fakes.github import FakeGitHub

NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)


def ago(**delta: float) -> dt.datetime:
    return NOW - dt.timedelta(**delta)


def arrange(github: FakeGitHub) -> dict[str, int]:
    """Deliveries of the last day and older; the ids to expect asked for again."""
    ids = {}
    github.add_delivery("ok-first-time", 200, ago(hours=1))
    github.add_delivery("failed-then-ok", 500, ago(hours=3))
    github.add_delivery("failed-then-ok", 202, ago(hours=2))
    github.add_delivery("failed-twice", 502, ago(hours=5))
    ids["failed-twice"] = github.add_delivery("failed-twice", 504, ago(hours=4))
    ids["timed-out"] = github.add_delivery("timed-out", 0, ago(hours=20))
    github.add_delivery("too-old", 500, ago(hours=30))
    # Enough successful noise that the failures are spread over several pages.
    for n in range(230):
        github.add_delivery(f"noise-{n}", 200, ago(hours=6, seconds=n))
    return ids


async def test_failed_deliveries_of_the_window_are_redelivered_once_per_guid(
    app: GitHubApp, github: FakeGitHub
) -> None:
    expected = arrange(github)
    report = await redeliver_failed(app, dt.timedelta(hours=24), now=NOW)
    assert report.failed_guids == ["failed-twice", "timed-out"]
    # The latest attempt of each: one request per guid, none for the succeeded or too old.
    assert sorted(github.redelivered) == sorted(expected.values())
    assert report.requested == github.redelivered
    # Every page was read: 237 attempts within the window, 100 a page.
    listed = github.calls("GET", "/app/hook/deliveries")
    assert len(listed) == 3
    assert report.seen == 236
    assert report.errors == []


async def test_a_shorter_window_reads_fewer_pages_and_redelivers_only_within_it(
    app: GitHubApp, github: FakeGitHub
) -> None:
    expected = arrange(github)
    report = await redeliver_failed(app, dt.timedelta(hours=4, minutes=30), now=NOW)
    assert report.failed_guids == ["failed-twice"]
    assert github.redelivered == [expected["failed-twice"]]
    assert len(github.calls("GET", "/app/hook/deliveries")) == 1


async def test_a_refused_redelivery_is_reported_and_the_rest_go_on(
    app: GitHubApp, github: FakeGitHub
) -> None:
    expected = arrange(github)
    github.fail("POST", "/app/hook/deliveries/{delivery_id}/attempts", 422, times=1)
    report = await redeliver_failed(app, dt.timedelta(hours=24), now=NOW)
    assert len(report.errors) == 1 and report.errors[0].endswith("RequestFailed")
    assert len(report.requested) == 1 and report.requested[0] in expected.values()


async def test_the_periodic_task_sweeps_until_stopped(app: GitHubApp, github: FakeGitHub) -> None:
    expected = arrange(github)
    stop = asyncio.Event()
    task = asyncio.create_task(redeliver_periodically(app, dt.timedelta(hours=24), 3600, stop))
    while len(github.redelivered) < 2:  # noqa: ASYNC110 (the stand-in has no event)
        await asyncio.sleep(0.01)
    stop.set()
    await asyncio.wait_for(task, 30)
    assert sorted(github.redelivered) == sorted(expected.values())


def test_the_command_redelivers_and_says_what_it_did(
    settings: Settings,
    github: FakeGitHub,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    arrange(github)
    monkeypatch.setenv("GITHUB_APP_ID", settings.github_app_id or "")
    assert settings.github_app_private_key is not None
    monkeypatch.setenv("GITHUB_APP_PRIVATE_KEY", settings.github_app_private_key.get_secret_value())
    monkeypatch.setenv("GITHUB_API_URL", settings.github_api_url)
    assert main(["redeliver", "--since", "24h"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    structlog.reset_defaults()
    logging.getLogger().handlers.clear()
    assert "2 deliveries never succeeded; asked GitHub to redeliver 2" in out
    assert len(github.redelivered) == 2


@pytest.mark.parametrize("text", ["", "24", "h", "0h", "-1h", "24y"])
def test_since_needs_a_number_and_a_unit(text: str) -> None:
    with pytest.raises(ValueError, match="a number and a unit"):
        parse_since(text)


def test_since_units() -> None:
    assert parse_since("90m") == dt.timedelta(minutes=90)
    assert parse_since("2d") == dt.timedelta(days=2)

"""The tracking comment is found again only among the app's own comments: a marker pasted
by a person or by another App is never adopted (it would edit their comment, or let them
take over a job's status)."""

from __future__ import annotations

import datetime as dt

import pytest

from bot import status
from bot.github.client import GitHubApp
from bot.github.operations.comments import ensure_comment
from tests.fakes.github import FakeGitHub
from tests.github import test_end_to_end as e2e
from tests.github.conftest import APP_ID
from tests.github.test_operations import REPO

bot = e2e.bot  # the end-to-end fixture: server, dispatcher, stand-in GitHub, store
EDITS = "/issues/comments/"
JOB = "0123456789abcdef0123456789abcdef"
MARKER = status.tracking_marker(JOB)


async def test_a_persons_comment_with_the_marker_is_not_adopted(
    app: GitHubApp, github: FakeGitHub
) -> None:
    pasted = github.add_comment(1, f"{MARKER}\nthis job is mine now", "octocat")
    async with app.installation(1) as inst:
        found = await ensure_comment(inst, REPO, 1, MARKER, f"{MARKER}\nqueued")
    [ours] = github.bot_comments(1)
    assert found == ours.id != pasted.id
    assert ours.body == f"{MARKER}\nqueued"
    assert github.comments[pasted.id].history == [f"{MARKER}\nthis job is mine now"]


async def test_another_apps_bot_comment_with_the_marker_is_not_adopted(
    app: GitHubApp, github: FakeGitHub
) -> None:
    other = github.add_comment(1, MARKER, "other-app[bot]", bot=True, app_id=int(APP_ID) + 1)
    async with app.installation(1) as inst:
        found = await ensure_comment(inst, REPO, 1, MARKER, MARKER)
    assert found != other.id and found == github.bot_comments(1)[0].id


async def test_the_apps_own_comment_is_adopted_by_app_id_or_by_its_bot_login(
    app: GitHubApp, github: FakeGitHub
) -> None:
    through_app = github.add_comment(1, MARKER, "plugin-bot[bot]", bot=True, app_id=int(APP_ID))
    other_marker = status.tracking_marker("f" * 32)
    by_login = github.add_comment(2, other_marker, "plugin-bot[bot]", bot=True)
    async with app.installation(1) as inst:
        assert await ensure_comment(inst, REPO, 1, MARKER, MARKER) == through_app.id
        assert await ensure_comment(inst, REPO, 2, other_marker, other_marker) == by_login.id
    assert github.calls("POST", "/comments") == []


async def test_the_apps_comment_for_another_job_is_not_adopted(
    app: GitHubApp, github: FakeGitHub
) -> None:
    """The marker names its job: a comment of the app for another job stays that job's."""
    other = github.add_comment(
        1, status.tracking_marker(JOB[:-1] + "0"), "plugin-bot[bot]", bot=True, app_id=int(APP_ID)
    )
    async with app.installation(1) as inst:
        found = await ensure_comment(inst, REPO, 1, MARKER, MARKER)
    assert found != other.id and len(github.calls("POST", "/comments")) == 1


async def test_a_marker_pasted_after_a_dispatcher_crash_does_not_take_the_job(
    bot: e2e.Bot,
) -> None:
    """The job exists but its comment was never posted; a reader learns its id from
    /plugin-jobs and pastes the marker. The dispatcher's retry posts its own comment and
    never touches theirs; the job's comment is the bot's."""

    def crash_at_tracking_comment(method: str, template: str) -> None:
        if (method, template) == ("POST", "/repos/{owner}/{repo}/issues/{issue_number}/comments"):
            bot.github.on_request = None
            raise e2e.WorkerKilled

    bot.github.on_request = crash_at_tracking_comment
    await bot.comment()
    with pytest.raises(e2e.WorkerKilled):
        await bot.dispatch()
    [job] = await bot.jobs()
    pasted = bot.github.add_comment(
        e2e.ISSUE, status.tracking_marker(job.id) + "\nowned", "octocat"
    )
    bot.clock.now += dt.timedelta(minutes=2)
    await bot.dispatch()
    [ours] = bot.github.bot_comments(e2e.ISSUE)
    [again] = await bot.jobs()
    assert again.tracking_comment_id == ours.id != pasted.id
    await bot.work()
    assert bot.github.comments[pasted.id].history == [pasted.body]
    assert not any(str(pasted.id) in path for _, path, _ in bot.github.calls("PATCH", EDITS))
    assert ours.body.endswith(e2e.pull_url(1))

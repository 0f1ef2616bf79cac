"""Admission through the real server and dispatcher: who may start a job (custom
repository roles), and that a command makes at most one job however often it is handled."""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from githubkit.exception import RequestFailed

from bot.jobs.store import Command, JobOutcome, JobState
from tests.github import test_end_to_end as e2e

bot = e2e.bot  # the end-to-end fixture: server, dispatcher, stand-in GitHub, store


async def test_a_custom_role_with_write_may_create(bot: e2e.Bot) -> None:
    bot.github.custom_roles["plugin-shipper"] = "write"
    bot.github.collaborators["Codertocat"] = "plugin-shipper"
    await bot.comment()
    await bot.dispatch()
    [job] = await bot.jobs()
    assert job.requester == "Codertocat"
    [tracking] = bot.github.bot_comments(e2e.ISSUE)
    assert tracking.id == job.tracking_comment_id


async def test_a_custom_role_based_on_read_is_refused_naming_the_role(bot: e2e.Bot) -> None:
    bot.github.custom_roles["docs-reviewer"] = "read"
    bot.github.collaborators["Codertocat"] = "docs-reviewer"
    await bot.comment()
    await bot.dispatch()
    assert bot.replies() == [
        "🚫 `Codertocat` has the custom role `docs-reviewer` on this repository, which gives "
        "`read` access; this command needs `write` or higher, or a place in `trigger.users` / "
        "`trigger.teams` of `.github/plugin-bot.yml`."
    ]
    await e2e.no_job_no_pull(bot)
    command = await stored_command(bot, 1)
    assert command.outcome == "refused:permission:read"


READ_MAY_CREATE = {".github/plugin-bot.yml": b"trigger:\n  min_permission: read\n"}


async def test_min_permission_read_on_a_public_repository_admits_no_stranger(
    bot: e2e.Bot,
) -> None:
    # On a public repository GitHub's permission API answers `read` for every account:
    # `read` as the minimum must not mean "anyone on GitHub may spend the model's budget".
    bot.github.set_base_files(READ_MAY_CREATE)
    assert not bot.github.private and "Codertocat" in bot.github.collaborators
    del bot.github.collaborators["Codertocat"]  # no access given: a passer-by
    await bot.comment()
    await bot.dispatch()
    assert bot.replies() == [
        "🚫 `Codertocat` is not a collaborator on this repository (on a public repository "
        "everyone may read it: `read` and `triage` count only when given to a collaborator); "
        "this command needs `read` or higher, or a place in `trigger.users` / "
        "`trigger.teams` of `.github/plugin-bot.yml`."
    ]
    await e2e.no_job_no_pull(bot)
    command = await stored_command(bot, 1)
    assert command.outcome == "refused:permission:none"


@pytest.mark.parametrize("role", ["read", "triage"])
async def test_min_permission_read_admits_a_collaborator_given_read_or_triage(
    bot: e2e.Bot, role: str
) -> None:
    bot.github.set_base_files(READ_MAY_CREATE)
    bot.github.collaborators["Codertocat"] = role
    await bot.comment()
    await bot.dispatch()
    assert len(await bot.jobs()) == 1


async def stored_command(bot: e2e.Bot, command_id: int) -> Command:
    command = await bot.store.get_command(command_id)
    assert command is not None
    return command


class DispatcherKilled(BaseException):
    """The dispatcher's process dies here (SIGKILL): nothing after it runs."""


def kill_once(target: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
    killed = False

    async def dying(*args: Any, **kw: Any) -> Any:
        nonlocal killed
        if not killed:
            killed = True
            raise DispatcherKilled
        return await target(*args, **kw)

    return dying


COMMENTS = "/repos/{owner}/{repo}/issues/{issue_number}/comments"
CRASH_POINTS = ["before-tracking-comment", "before-comment-recorded", "before-command-finished"]


def crash_at(bot: e2e.Bot, point: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A dispatcher crash after the job row exists, at one of the later steps."""
    if point == "before-tracking-comment":

        def at_comment(method: str, template: str) -> None:
            if (method, template) == ("POST", COMMENTS):
                bot.github.on_request = None
                raise DispatcherKilled

        bot.github.on_request = at_comment
    elif point == "before-comment-recorded":
        recorded = kill_once(bot.desk.set_tracking_comment)
        monkeypatch.setattr(bot.desk, "set_tracking_comment", recorded)
    else:
        monkeypatch.setattr(bot.desk, "finish_command", kill_once(bot.desk.finish_command))


@pytest.mark.parametrize("point", CRASH_POINTS)
async def test_a_dispatcher_crash_after_admission_then_a_retry_makes_one_job(
    bot: e2e.Bot, point: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    crash_at(bot, point, monkeypatch)
    await bot.comment()
    with pytest.raises(DispatcherKilled):
        await bot.dispatch()
    [job] = await bot.jobs()  # admitted before the crash
    assert (await stored_command(bot, 1)).state == "dispatching"

    # The dead dispatcher's claim on the command expires; another one takes it up.
    bot.clock.now += dt.timedelta(minutes=2)
    await bot.dispatch()
    assert [j.id for j in await bot.jobs()] == [job.id]
    [tracking] = bot.github.bot_comments(e2e.ISSUE)
    assert tracking.body.startswith(f"<!-- plugin-bot:tracking job={job.id} -->")
    [again] = await bot.jobs()
    assert again.tracking_comment_id == tracking.id
    command = await stored_command(bot, 1)
    assert (command.state, command.outcome, command.job_id) == (
        "handled",
        f"accepted:{job.id}",
        job.id,
    )
    # The one job runs to one pull request.
    finished = await bot.work()
    assert finished.id == job.id and len(bot.github.pulls) == 1


async def test_the_same_comment_delivered_twice_makes_one_job(bot: e2e.Bot) -> None:
    payload = e2e.webhook_example("issue_comment", "created")
    payload["comment"]["body"] = e2e.COMMAND
    first, second = await bot.send(payload), await bot.send(payload)  # two delivery ids
    assert (first.status_code, second.status_code) == (202, 202)
    await bot.dispatch()
    [job] = await bot.jobs()
    assert len(bot.github.bot_comments(e2e.ISSUE)) == 1
    for command_id in (1, 2):
        command = await stored_command(bot, command_id)
        assert (command.outcome, command.job_id) == (f"accepted:{job.id}", job.id)


async def test_a_retry_after_the_hourly_limit_filled_still_finds_its_job(
    bot: e2e.Bot, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The job the crashed dispatcher made counts against the limit; its retry is not
    refused by it."""
    bot.github.set_base_files({".github/plugin-bot.yml": b"limits:\n  jobs_per_hour: 1\n"})
    crash_at(bot, "before-command-finished", monkeypatch)
    await bot.comment()
    with pytest.raises(DispatcherKilled):
        await bot.dispatch()
    bot.clock.now += dt.timedelta(minutes=2)
    await bot.dispatch()
    [job] = await bot.jobs()
    assert (await stored_command(bot, 1)).outcome == f"accepted:{job.id}"
    assert not any(body.startswith("⏱️") for body in bot.replies())


async def test_a_retry_command_handled_again_after_a_crash_makes_one_retry(
    bot: e2e.Bot, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``/plugin-retry`` takes the latest job: never the one it made itself before the
    crash (that would refuse it as "not retryable")."""
    await bot.comment()
    await bot.dispatch()
    [failed] = await bot.jobs()
    await bot.store.finish(
        (await bot.claim()).id, "worker-1", JobOutcome(state=JobState.FAILED, error="x")
    )
    bot.clock.now += dt.timedelta(minutes=1)
    crash_at(bot, "before-command-finished", monkeypatch)
    await bot.comment("/plugin-retry")
    with pytest.raises(DispatcherKilled):
        await bot.dispatch()
    bot.clock.now += dt.timedelta(minutes=2)
    await bot.dispatch()
    jobs = await bot.jobs()
    assert len(jobs) == 2
    [retry] = [j for j in jobs if j.id != failed.id]
    assert (await stored_command(bot, 2)).outcome == f"accepted:{retry.id}"
    assert not any("only a failed or cancelled job can be retried" in b for b in bot.replies())


@pytest.mark.parametrize("answer", [403, 500])
async def test_min_permission_read_fails_closed_when_the_collaborator_check_fails(
    bot: e2e.Bot, answer: int
) -> None:
    # GitHub refuses or breaks on the collaborator check (a rate limit, an outage): the
    # commenter is never taken for a collaborator; nothing starts.
    bot.github.set_base_files(READ_MAY_CREATE)
    bot.github.collaborators["Codertocat"] = "read"
    bot.github.fail("GET", "/repos/{owner}/{repo}/collaborators/{username}", answer, times=50)
    await bot.comment()
    with pytest.raises(RequestFailed):  # the command stays, for the dispatcher's next try
        await bot.dispatch()
    await e2e.no_job_no_pull(bot)
    command = await stored_command(bot, 1)
    assert command.outcome is None or not command.outcome.startswith(("accepted", "queued"))

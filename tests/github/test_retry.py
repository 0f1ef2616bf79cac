"""/plugin-retry of a job that failed after its pull request was opened: the retry runs
again onto the same branch and pull request (one new commit, fast-forward; the body and a
check run for it), never a second pull request, and never a refusal pointing at the first.
"""

# ruff: noqa: F811
from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest

from bot import status
from bot.github.desk import job_view
from bot.jobs.store import JobOutcome, JobState
from bot.manifest import MANIFEST_FILE, load_keys, verify_manifest
from tests.github.test_end_to_end import (  # noqa: F401  (bot is a fixture)
    ISSUE,
    Bot,
    WorkerKilled,
    bot,
    materialise,
    pull_url,
)

FOLDER = "plugins/plugin-weather"
CHECK_RUNS = "/repos/{owner}/{repo}/check-runs"


def predicate_of(manifest: bytes) -> dict[str, Any]:
    return dict(json.loads(base64.b64decode(json.loads(manifest)["payload"]))["predicate"])


async def failed_with_its_pull_request_open(bot: Bot) -> tuple[str, str]:
    """A job whose worker died once its pull request was open (before its check run), and
    which then failed for good; its id and branch."""
    await bot.comment()
    await bot.dispatch()

    def kill_at_the_check_run(method: str, template: str) -> None:
        if (method, template) == ("POST", CHECK_RUNS):
            bot.github.on_request = None
            raise WorkerKilled

    bot.github.on_request = kill_at_the_check_run
    job = await bot.claim("worker-1")
    with pytest.raises(WorkerKilled):
        await bot.jobs_runner().run(job_view(job))
    gave_up = JobOutcome(state=JobState.FAILED, error="the worker stopped")
    await bot.store.finish(job.id, "worker-1", gave_up)
    [pull] = bot.github.pulls
    assert pull.head == f"plugin-bot/plugin-weather-{job.id[:8]}"
    return job.id, pull.head


async def test_a_retry_publishes_onto_the_first_jobs_branch_and_pull_request(
    bot: Bot, tmp_path: Path
) -> None:
    first_id, branch = await failed_with_its_pull_request_open(bot)
    first_head = bot.github.refs[branch]
    [pull_base] = bot.github.commits[first_head]["parents"]
    # The default branch moves on meanwhile; the pull request's merge base stays.
    bot.github.push(bot.github.default_branch, {"NEWS.md": b"news\n"}, "unrelated")

    await bot.comment(f"/plugin-retry {first_id[:8]}")
    await bot.dispatch()
    [retry] = [j for j in await bot.jobs() if j.id != first_id]
    assert retry.id != first_id and retry.retry_of == first_id
    finished = await bot.work()
    assert finished.state == JobState.SUCCEEDED, finished.error
    assert finished.pr_url == pull_url(1)

    # The same pull request from the same branch; one new commit on top of the first.
    [pull] = bot.github.pulls
    assert pull.head == branch
    head = bot.github.refs[branch]
    assert bot.github.commits[head]["parents"] == [first_head]
    assert bot.github.commits[head]["message"].endswith(f"{status.BOT_COMMIT_TRAILER}{retry.id}")
    assert [body["force"] for _, _, body in bot.github.calls("PATCH", "/git/refs/")] == [False]
    # Its files are exactly the retry's signed set, bound to this branch.
    files = bot.github.files_at(branch)
    plugin = materialise(files, f"{FOLDER}/", tmp_path / "checkout")
    # As verify-plugin.yml verifies it: bound to the pull request's merge base and branch.
    verified = verify_manifest(
        plugin,
        load_keys(bot.keys),
        repository="Codertocat/Hello-World",
        plugin_path=FOLDER,
        base_commit=pull_base,
        branch=branch,
    )
    subjects = {s["name"] for s in verified.statement["subject"]}
    assert {p.removeprefix(FOLDER + "/") for p in files if p.startswith(FOLDER)} == (
        subjects | {MANIFEST_FILE}
    )
    predicate = predicate_of(files[f"{FOLDER}/{MANIFEST_FILE}"])
    assert (predicate["job"]["id"], predicate["branch"]) == (retry.id, branch)
    assert (predicate["baseCommit"], predicate["parentCommit"]) == (pull_base, first_head)
    # The body is the retry's, and its check run is on the new head.
    assert f"built by plugin-bot job `{retry.id}`" in pull.body
    [run] = bot.github.check_runs
    assert (run["head_sha"], run["conclusion"]) == (head, "success")
    # Two tracking comments, one per job, and nothing else: no refusal, no second link.
    comments = bot.github.bot_comments(ISSUE)
    assert [
        c.body.startswith(status.tracking_marker(j))
        for c, j in zip(comments, [first_id, retry.id], strict=True)
    ] == [True, True]
    assert comments[1].body.endswith(f"**Done:** the pull request is {pull_url(1)}")
    assert len(bot.github.calls("POST", "/pulls")) == 1


async def test_a_retry_of_a_retry_stays_on_the_first_branch(bot: Bot) -> None:
    first_id, branch = await failed_with_its_pull_request_open(bot)
    await bot.comment(f"/plugin-retry {first_id[:8]}")
    await bot.dispatch()
    [second] = [j for j in await bot.jobs() if j.id != first_id]
    claimed = await bot.claim()
    await bot.store.finish(claimed.id, "worker-1", JobOutcome(state=JobState.FAILED, error="x"))
    await bot.comment(f"/plugin-retry {second.id[:8]}")
    await bot.dispatch()
    [third] = [j for j in await bot.jobs() if j.id not in {first_id, second.id}]
    assert third.retry_of == first_id
    finished = await bot.work()
    assert finished.state == JobState.SUCCEEDED, finished.error
    [pull] = bot.github.pulls
    assert pull.head == branch
    assert bot.github.commits[bot.github.refs[branch]]["message"].endswith(third.id)


async def test_a_retry_onto_a_branch_changed_outside_the_plugin_is_refused(bot: Bot) -> None:
    # The same rule as a revision's: the bot builds on others' commits only when they touch
    # nothing but the plugin's files.
    first_id, branch = await failed_with_its_pull_request_open(bot)
    theirs = bot.github.push(branch, {"README.md": b"# changed\n"}, "readme")
    await bot.comment(f"/plugin-retry {first_id[:8]}")
    await bot.dispatch()
    finished = await bot.work()
    assert finished.state == JobState.FAILED
    assert bot.github.refs[branch] == theirs and len(bot.github.pulls) == 1
    reason = status.revise_foreign_change(theirs, ["README.md"], FOLDER)
    tracking = bot.github.bot_comments(ISSUE)[-1]
    assert status.md(reason, 1000) in tracking.body


async def test_a_retry_whose_pull_request_was_closed_opens_a_new_one_on_a_fresh_branch(
    bot: Bot,
) -> None:
    # A maintainer closed the first pull request (say, to start over). A retry is a request
    # for the plugin again: a new pull request, not a link to the closed one, nothing pushed.
    first_id, branch = await failed_with_its_pull_request_open(bot)
    first_head = bot.github.refs[branch]
    bot.github.pulls[0].state = "closed"

    await bot.comment(f"/plugin-retry {first_id[:8]}")
    await bot.dispatch()
    [retry] = [j for j in await bot.jobs() if j.id != first_id]
    finished = await bot.work()
    assert finished.state == JobState.SUCCEEDED, finished.error

    fresh = f"plugin-bot/plugin-weather-{retry.id[:8]}"
    assert [p.head for p in bot.github.pulls] == [branch, fresh]
    assert finished.pr_url == pull_url(2)
    assert bot.github.refs[branch] == first_head  # the closed one's branch is left alone
    predicate = predicate_of(bot.github.files_at(fresh)[f"{FOLDER}/{MANIFEST_FILE}"])
    assert (predicate["job"]["id"], predicate["branch"]) == (retry.id, fresh)
    tracking = bot.github.bot_comments(ISSUE)[-1]
    assert tracking.body.endswith(f"**Done:** the pull request is {pull_url(2)}")


async def test_a_retry_whose_pull_request_was_merged_says_the_plugin_exists(bot: Bot) -> None:
    first_id, branch = await failed_with_its_pull_request_open(bot)
    bot.github.pulls[0].state, bot.github.pulls[0].merged = "closed", True
    merged = {p: d for p, d in bot.github.files_at(branch).items() if p.startswith(FOLDER)}
    bot.github.push(bot.github.default_branch, merged, "Merge the plugin")

    await bot.comment(f"/plugin-retry {first_id[:8]}")
    await bot.dispatch()
    finished = await bot.work()
    assert finished.state == JobState.FAILED
    assert len(bot.github.pulls) == 1 and len(bot.github.calls("POST", "/pulls")) == 1
    tracking = bot.github.bot_comments(ISSUE)[-1]
    assert status.md(status.plugin_exists(FOLDER, "master"), 1000) in tracking.body
    assert pull_url(1) not in tracking.body


async def test_a_second_retry_while_the_first_is_queued_is_refused(bot: Bot) -> None:
    # Two retries of one job at once would both publish onto its branch: the second, run
    # on the first's unfinished pull request or racing it, would build on a head that moves.
    first_id, _ = await failed_with_its_pull_request_open(bot)
    await bot.comment(f"/plugin-retry {first_id[:8]}")
    await bot.dispatch()
    [retry] = [j for j in await bot.jobs() if j.id != first_id]
    assert retry.state == JobState.QUEUED

    await bot.comment(f"/plugin-retry {first_id[:8]}")
    await bot.dispatch()
    assert [j.id for j in await bot.jobs() if j.id != first_id] == [retry.id]
    assert bot.replies()[-1] == status.retry_in_progress(first_id, retry.id, "queued")

    # Once it has finished (failed here), the job may be retried again.
    claimed = await bot.claim()
    await bot.store.finish(claimed.id, "worker-1", JobOutcome(state=JobState.FAILED, error="x"))
    await bot.comment(f"/plugin-retry {first_id[:8]}")
    await bot.dispatch()
    assert len([j for j in await bot.jobs() if j.id != first_id]) == 2

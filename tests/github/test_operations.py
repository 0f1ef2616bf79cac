"""Writes to GitHub: the pull request through the git data API, comments by marker,
the retry policy and the spacing of content-creating requests."""

from __future__ import annotations

import datetime as dt

import pytest
from githubkit.exception import RequestFailed

from bot.github.client import GitHubApp, WriteSpacer
from bot.github.data.repository import BranchHead, RepoRef, default_branch_head
from bot.github.operations.comments import ensure_comment
from bot.github.operations.pull_request import (
    PublishRefused,
    PullRequestPlan,
    git_blob_sha,
    publish_pull_request,
)
from tests.fakes.github import FakeGitHub

REPO = RepoRef("Codertocat", "Hello-World")
FILES = {"package.json": b'{"name": "plugin-weather"}\n', "src/index.ts": b"export {};\n"}
PULLS = "/repos/{owner}/{repo}/pulls"


def plan(base: BranchHead, files: dict[str, bytes] = FILES, **kw: object) -> PullRequestPlan:
    return PullRequestPlan(
        repo=REPO,
        base=base,
        branch="plugin-bot/plugin-weather-abcdef12",
        folder="plugins/plugin-weather",
        files=files,
        title="Add plugin plugin-weather",
        body="body",
        commit_message="Add plugin plugin-weather",
        **kw,  # type: ignore[arg-type]
    )


async def test_pull_request_holds_exactly_the_files_on_the_recorded_base(
    app: GitHubApp, github: FakeGitHub
) -> None:
    async with app.installation(1) as inst:
        base = await default_branch_head(inst, REPO)
        github.set_base_files({"README.md": b"moved on\n"})  # the default branch moves on
        published = await publish_pull_request(
            inst, plan(base, labels=["plugin"], reviewers=["octocat"])
        )
    branch = "plugin-bot/plugin-weather-abcdef12"
    assert published.url == "https://github.com/Codertocat/Hello-World/pull/1"
    head = github.commits[github.refs[branch]]
    assert head["parents"] == [base.sha]
    assert github.files_at(branch) == {
        "README.md": b"# Hello World\n",
        "plugins/plugin-weather/package.json": FILES["package.json"],
        "plugins/plugin-weather/src/index.ts": FILES["src/index.ts"],
    }
    pull = github.pulls[0]
    assert (pull.head, pull.base, pull.draft) == (branch, "master", True)
    assert (pull.labels, pull.reviewers) == (["plugin"], ["octocat"])


async def test_crash_between_commit_and_pull_request_then_retry_opens_exactly_one(
    app: GitHubApp, github: FakeGitHub
) -> None:
    github.fail("POST", PULLS, 502)  # the process "dies" after the ref was created
    async with app.installation(1) as inst:
        base = await default_branch_head(inst, REPO)
        with pytest.raises(RequestFailed):
            await publish_pull_request(inst, plan(base))
        assert github.pulls == [] and "plugin-bot/plugin-weather-abcdef12" in github.refs
        blobs_before = len(github.calls("POST", "/git/blobs"))
        again = await publish_pull_request(inst, plan(base))
        third = await publish_pull_request(inst, plan(base))
    assert len(github.pulls) == 1
    assert (again.number, third.number, third.reused) == (1, 1, True)
    # The branch already held exactly these files: nothing was uploaded again.
    assert len(github.calls("POST", "/git/blobs")) == blobs_before
    assert len(github.calls("POST", "/git/refs")) == 1


async def test_a_truncated_tree_listing_is_not_taken_to_hold_the_files(
    app: GitHubApp, github: FakeGitHub, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The branch holds exactly the files, but GitHub says its listing was cut: the bot
    # cannot know what else is there, so it commits the set anew on the base.
    github.fail("POST", PULLS, 502)
    async with app.installation(1) as inst:
        base = await default_branch_head(inst, REPO)
        with pytest.raises(RequestFailed):
            await publish_pull_request(inst, plan(base))
        whole = github._tree_json

        def truncated(sha: str, method: str, status_code: int) -> object:
            answer = whole(sha, method, status_code)
            if method == "GET":
                answer["truncated"] = True
            return answer

        monkeypatch.setattr(github, "_tree_json", truncated)
        await publish_pull_request(inst, plan(base))
    assert len(github.calls("POST", "/git/commits")) == 2  # not reused: committed anew
    moved = github.refs["plugin-bot/plugin-weather-abcdef12"]
    assert github.commits[moved]["parents"] == [base.sha]
    assert len(github.pulls) == 1


async def test_retry_with_other_files_moves_its_branch_to_exactly_the_new_set(
    app: GitHubApp, github: FakeGitHub
) -> None:
    github.fail("POST", PULLS, 502)
    async with app.installation(1) as inst:
        base = await default_branch_head(inst, REPO)
        with pytest.raises(RequestFailed):
            await publish_pull_request(inst, plan(base))
        await publish_pull_request(inst, plan(base, files={"package.json": b"{}\n"}))
    files = github.files_at("plugin-bot/plugin-weather-abcdef12")
    assert sorted(p for p in files if p.startswith("plugins/")) == [
        "plugins/plugin-weather/package.json"
    ]
    assert len(github.pulls) == 1


async def test_a_pull_request_that_opened_despite_a_5xx_is_found_not_reopened(
    app: GitHubApp, github: FakeGitHub
) -> None:
    github.fail("POST", PULLS, 502, after=True)  # created, but the answer was lost
    async with app.installation(1) as inst:
        base = await default_branch_head(inst, REPO)
        published = await publish_pull_request(inst, plan(base))
    assert published.number == 1 and len(github.pulls) == 1
    assert len(github.calls("POST", "/pulls")) == 1  # never blindly re-POSTed


async def test_an_existing_plugin_folder_is_refused_never_overwritten(
    app: GitHubApp, github: FakeGitHub
) -> None:
    github.set_base_files({"plugins/plugin-weather/index.ts": b"mine\n"})
    async with app.installation(1) as inst:
        base = await default_branch_head(inst, REPO)
        with pytest.raises(PublishRefused) as refused:
            await publish_pull_request(inst, plan(base))
    assert str(refused.value).startswith(
        "`plugins/plugin-weather/` already exists on `master`; plugin-bot never overwrites"
    )
    assert github.calls("POST", "/git/") == [] and github.pulls == []


def test_blob_sha_is_gits() -> None:
    # `printf 'hello\n' | git hash-object --stdin`
    assert git_blob_sha(b"hello\n") == "ce013625030ba8dba906f756967f9e9ca394464a"


async def test_tracking_comment_is_found_by_its_marker_not_posted_twice(
    app: GitHubApp, github: FakeGitHub
) -> None:
    async with app.installation(1) as inst:
        first = await ensure_comment(inst, REPO, 1, "<!-- m -->", "<!-- m --> one")
        second = await ensure_comment(inst, REPO, 1, "<!-- m -->", "<!-- m --> two")
    assert first == second and len(github.bot_comments(1)) == 1


async def test_a_comment_create_lost_in_a_5xx_is_found_before_posting_again(
    app: GitHubApp, github: FakeGitHub
) -> None:
    github.fail("POST", "/repos/{owner}/{repo}/issues/{issue_number}/comments", 500, after=True)
    async with app.installation(1) as inst:
        await ensure_comment(inst, REPO, 1, "<!-- m -->", "<!-- m --> body")
    assert len(github.bot_comments(1)) == 1
    assert len(github.calls("POST", "/issues/1/comments")) == 1


async def test_5xx_on_a_read_is_retried_but_a_post_is_not(
    app: GitHubApp, github: FakeGitHub
) -> None:
    app.retry.base_s = 0.0
    github.fail("GET", "/repos/{owner}/{repo}", 503, times=2)
    github.fail("POST", "/repos/{owner}/{repo}/issues/{issue_number}/comments", 503)
    async with app.installation(1) as inst:
        await inst.request("GET", REPO.path)
        with pytest.raises(RequestFailed) as failed:
            await inst.request("POST", f"{REPO.path}/issues/1/comments", json={"body": "x"})
    assert len(github.calls("GET", REPO.path)) == 3
    assert failed.value.response.status_code == 503
    assert len(github.calls("POST", "/issues/1/comments")) == 1


async def test_rate_limit_waits_for_retry_after_then_succeeds(
    app: GitHubApp, github: FakeGitHub
) -> None:
    github.fail(
        "POST",
        "/repos/{owner}/{repo}/issues/{issue_number}/comments",
        429,
        headers={"retry-after": "0"},
    )
    async with app.installation(1) as inst:
        await inst.request("POST", f"{REPO.path}/issues/1/comments", json={"body": "x"})
    assert len(github.calls("POST", "/issues/1/comments")) == 2
    assert len(github.bot_comments(1)) == 1


async def test_rate_limit_reset_beyond_the_longest_wait_fails_instead_of_sleeping(
    app: GitHubApp, github: FakeGitHub
) -> None:
    reset = int((dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)).timestamp())
    github.fail(
        "GET",
        "/repos/{owner}/{repo}",
        403,
        headers={"x-ratelimit-remaining": "0", "x-ratelimit-reset": str(reset)},
    )
    async with app.installation(1) as inst:
        with pytest.raises(RequestFailed):
            await inst.request("GET", REPO.path)
    assert len(github.calls("GET", REPO.path)) == 1


async def test_content_creating_requests_are_spaced_per_installation() -> None:
    now = [100.0]
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    spacer = WriteSpacer(1.0, clock=lambda: now[0], sleep=sleep)
    async with spacer.turn(1):
        pass
    now[0] += 0.25
    async with spacer.turn(2):  # another installation does not wait
        pass
    async with spacer.turn(1):
        pass
    assert slept == [0.75]

"""/plugin-revise on the bot's pull request, end to end against the OpenAPI-validated
GitHub stand-in: the plugin read from the branch, the model (the scripted Messages API
through the real SDK and the checked tools) changing it, one new signed commit on the same
branch (fast-forward only), the body and a check run updated; and the refusals.

The checks inside the model loop are the fast fake of tests/unit/test_agent_loop (no npm);
the test phase writes real test results. The real sandbox is proven in tests/integration.
"""

# The `bot` fixture comes from test_end_to_end; tests take it as a parameter.
# ruff: noqa: F811
from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from bot import status
from bot.agent import ModelGenerator
from bot.github.jobs import GitHubRunner, publisher_for
from bot.jobs.queue import EmbeddedQueue
from bot.jobs.store import Job, JobState
from bot.jobs.worker import Worker
from bot.manifest import MANIFEST_FILE, load_keys, verify_manifest
from bot.pipeline.context import JobContext, Phase, PhaseFailed
from bot.pipeline.publish import publish_phase
from bot.pipeline.revise import fetch_phase
from bot.pipeline.sign import sign_phase
from bot.testresults import RESULTS_FILE, TestCase, TestResults
from tests.fakes.github import webhook_example
from tests.fakes.messages_api import ScriptedMessagesAPI, tool_use_reply
from tests.github.test_end_to_end import (  # noqa: F401  (bot is a fixture)
    Bot,
    WorkerKilled,
    bot,
    fast_test_phase,
    materialise,
)
from tests.unit.test_agent_loop import CHECK, FINISH, FakeChecks, types_dir, write

PULL = 7  # the pull request's number (the issue it came from is #1)
FOLDER = "plugins/plugin-weather"
UNITS = "export const UNIT = 'fahrenheit';\n"


def revise_phases(
    api: ScriptedMessagesAPI, tmp_path: Path, test: Phase = fast_test_phase
) -> list[tuple[str, Phase]]:
    """fetch and publish as in production; the model through the scripted API."""

    async def model_generate(ctx: JobContext) -> None:
        provider = api.provider(meter=ctx.tools.meter)
        generator = ModelGenerator(
            provider, checks=FakeChecks(), core_types_dir=types_dir(tmp_path)
        )
        await generator.generate(ctx)

    return [
        ("fetch", fetch_phase),
        ("generate", model_generate),
        ("test", test),
        ("sign", sign_phase),
        ("publish", publish_phase),
    ]


def model_script() -> ScriptedMessagesAPI:
    return ScriptedMessagesAPI().add(
        tool_use_reply(write("src/units.ts", UNITS), CHECK), tool_use_reply(FINISH)
    )


async def opened(bot: Bot) -> str:
    """A published pull request (#7) from /create-plugin on issue #1; its branch."""
    await bot.comment()
    await bot.dispatch()
    await bot.work()
    [pull] = bot.github.pulls
    pull.number = PULL
    return pull.head


async def opened_with_model(bot: Bot) -> str:
    branch = await opened(bot)
    with_model(bot)
    return branch


async def revise_comment(bot: Bot, body: str, login: str = "Codertocat") -> None:
    payload = webhook_example("issue_comment", "created")
    payload["comment"]["body"] = body
    payload["issue"]["number"] = PULL
    payload["issue"]["pull_request"] = {"url": "https://example.test/pulls/7"}
    payload["sender"]["login"] = login
    payload["comment"]["user"]["login"] = login
    answer = await bot.send(bot.new_comment(payload))
    assert answer.status_code == 202
    await bot.dispatch()


async def work_revision(bot: Bot, phases: list[tuple[str, Phase]]) -> Job:
    runner = GitHubRunner(bot.settings, bot.app, bot.store, revise_phases=phases)
    worker = Worker(
        bot.store,
        EmbeddedQueue(bot.store, bot.settings),
        bot.settings,
        runner=runner,
        publisher_for=publisher_for(bot.settings, bot.app),
        name="worker-1",
    )
    job = await bot.store.claim_next("worker-1", lease_s=30)
    assert job is not None
    finished = await worker.run_claimed(job)
    assert finished is not None
    return finished


def statement_of(manifest: bytes) -> dict[str, Any]:
    envelope = json.loads(manifest)
    return dict(json.loads(base64.b64decode(envelope["payload"])))


def with_model(bot: Bot) -> None:
    """A model configured from now on (the dispatcher and the workers read it). Its base
    URL is a closed loopback port: the scripted API is the only model that answers."""
    bot.settings = bot.settings.model_copy(
        update={
            "anthropic_api_key": SecretStr("sk-ant-fake"),
            "anthropic_base_url": "http://127.0.0.1:9",
        }
    )
    bot.dispatcher.settings = bot.settings


async def test_a_revision_is_one_new_signed_commit_on_the_same_branch(
    bot: Bot, tmp_path: Path
) -> None:
    branch = await opened_with_model(bot)
    github = bot.github
    first_head = github.refs[branch]
    [pull_base] = github.commits[first_head]["parents"]
    github.push(github.default_branch, {"NEWS.md": b"news\n"}, "unrelated")  # main moves on
    old_manifest = github.files_at(branch)[f"{FOLDER}/{MANIFEST_FILE}"]
    # Review threads: one open on the plugin, one resolved (tests/github/test_review_threads
    # covers outdated threads, pages and GraphQL errors), by someone who may write.
    github.collaborators["octocat"] = "write"
    github.review_thread(PULL, f"{FOLDER}/src/index.ts", 3, "Report °F, not °C")
    settled = github.review_thread(PULL, f"{FOLDER}/README.md", 1, "typo in the title")
    github.reply(settled, "fixed")
    settled.resolved = True

    await revise_comment(bot, "/plugin-revise report temperatures in Fahrenheit")
    revision = [j for j in await bot.jobs() if j.issue == PULL]
    assert len(revision) == 1
    api = model_script()
    finished = await work_revision(bot, revise_phases(api, tmp_path))
    assert finished.state == JobState.SUCCEEDED, finished.error
    api.assert_done()

    # The model got the plugin as it is on the branch, the request and the open comment.
    first = api.bodies[0]["messages"][0]["content"]
    assert "report temperatures in Fahrenheit" in first
    assert "- src/index.ts:3 (octocat): octocat: Report °F, not °C" in first
    assert "typo in the title" not in first
    assert "src/index.ts" in first and "package.json" in first

    # ONE new commit, on top of the old head, on the same branch; same pull request.
    new_head = github.refs[branch]
    assert github.commits[new_head]["parents"] == [first_head]
    assert github.commits[new_head]["message"].startswith("Revise plugin plugin-weather")
    assert len(github.pulls) == 1
    update = github.calls("PATCH", f"/git/refs/heads/{branch}")
    assert [body["force"] for _, _, body in update] == [False]

    # Its plugin files are exactly the new signed set, and it verifies.
    files = github.files_at(branch)
    plugin = materialise(files, f"{FOLDER}/", tmp_path / "checkout")
    # As verify-plugin.yml verifies it: bound to the pull request's merge base and branch
    # (the head it was made on is recorded apart).
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
    assert files[f"{FOLDER}/src/units.ts"] == UNITS.encode()
    assert verified.statement["predicate"]["parentCommit"] == first_head
    # The manifest records the revision: previous digest, request, requester.
    predicate = statement_of(files[f"{FOLDER}/{MANIFEST_FILE}"])["predicate"]
    assert predicate["revision"] == {
        "previousManifestSha256": hashlib.sha256(old_manifest).hexdigest(),
        "request": "report temperatures in Fahrenheit",
        "requester": "Codertocat",
        "pullRequest": PULL,
        "parentCommit": first_head,
    }

    # The body: the new digest, the revision, and the two verification lines.
    body = github.pulls[0].body
    new_digest = hashlib.sha256(files[f"{FOLDER}/{MANIFEST_FILE}"]).hexdigest()
    assert f"manifest sha256 `{new_digest}`" in body
    assert hashlib.sha256(old_manifest).hexdigest() in body
    assert "> report temperatures in Fahrenheit" in body
    assert f"**Repeat it:** `plugin-bot verify {FOLDER}`" in body

    # A completed check run on each commit the bot pushed.
    runs = {r["head_sha"]: r for r in github.check_runs}
    assert set(runs) == {first_head, new_head}
    run = runs[new_head]
    assert (run["status"], run["conclusion"]) == ("completed", "success")
    assert run["output"]["title"] == "plugin tests — 1 passed, 0 failed"
    assert (
        "| ✅ | `src/__tests__/plugin.test.ts` | loads in a runtime |" in run["output"]["summary"]
    )

    # The revision's tracking comment lives on the pull request, and ends with its link.
    [tracking] = github.bot_comments(PULL)
    assert tracking.body.startswith(status.tracking_marker(revision[0].id))
    assert "✅ fetch (" in tracking.body
    pull_url = f"https://github.com/Codertocat/Hello-World/pull/{PULL}"
    assert tracking.body.endswith(f"**Done:** the pull request is {pull_url}")


async def test_commits_by_others_on_the_plugin_only_are_built_upon(
    bot: Bot, tmp_path: Path
) -> None:
    branch = await opened_with_model(bot)
    theirs = bot.github.push(branch, {f"{FOLDER}/NOTES.md": b"by a person\n"}, "notes")
    await revise_comment(bot, "/plugin-revise report temperatures in Fahrenheit")
    finished = await work_revision(bot, revise_phases(model_script(), tmp_path))
    assert finished.state == JobState.SUCCEEDED, finished.error
    head = bot.github.refs[branch]
    assert bot.github.commits[head]["parents"] == [theirs]
    assert bot.github.files_at(branch)[f"{FOLDER}/NOTES.md"] == b"by a person\n"


async def test_a_branch_changed_outside_the_plugin_is_refused_with_the_reason(
    bot: Bot, tmp_path: Path
) -> None:
    branch = await opened_with_model(bot)
    theirs = bot.github.push(branch, {"README.md": b"# changed\n"}, "readme")
    await revise_comment(bot, "/plugin-revise report temperatures in Fahrenheit")
    api = model_script()
    finished = await work_revision(bot, revise_phases(api, tmp_path))
    assert finished.state == JobState.FAILED
    assert api.bodies == []  # the model never ran
    assert bot.github.refs[branch] == theirs  # nothing pushed
    reason = status.revise_foreign_change(theirs, ["README.md"], FOLDER)
    [tracking] = bot.github.bot_comments(PULL)
    assert reason.startswith(f"Refused: commit {theirs[:12]} on this branch changes files ")
    assert "outside plugins/plugin-weather/ (README.md)." in reason
    assert status.md(reason, 1000) in tracking.body
    # A failed check on the head, with the reason.
    run = bot.github.check_runs[-1]
    assert (run["head_sha"], run["conclusion"]) == (theirs, "failure")
    assert "changes files outside" in run["output"]["title"]
    assert status.md(reason, 1000) in run["output"]["summary"]


async def test_a_forged_bot_trailer_does_not_hide_a_change_outside_the_plugin(
    bot: Bot, tmp_path: Path
) -> None:
    # Found in review: the walk used to stop at any commit whose message carried the bot's
    # trailer. Where the bot's work begins now comes from its signed manifest.
    branch = await opened_with_model(bot)
    theirs = bot.github.push(
        branch,
        {".github/workflows/evil.yml": b"on: push\n"},
        "ci tweak\n\nPlugin-Bot-Job: deadbeef",
    )
    await revise_comment(bot, "/plugin-revise report temperatures in Fahrenheit")
    api = model_script()
    finished = await work_revision(bot, revise_phases(api, tmp_path))
    assert finished.state == JobState.FAILED
    assert api.bodies == []
    assert bot.github.refs[branch] == theirs
    reason = status.revise_foreign_change(theirs, [".github/workflows/evil.yml"], FOLDER)
    [tracking] = bot.github.bot_comments(PULL)
    assert status.md(reason, 1000) in tracking.body


async def test_a_manifest_not_signed_for_this_branch_is_not_trusted(
    bot: Bot, tmp_path: Path
) -> None:
    branch = await opened_with_model(bot)
    manifest_path = f"{FOLDER}/plugin-manifest.dsse.json"
    forged = b'{"payloadType": "application/vnd.in-toto+json", "payload": "e30=", "signatures": []}'
    theirs = bot.github.push(branch, {manifest_path: forged}, "new manifest")
    await revise_comment(bot, "/plugin-revise report temperatures in Fahrenheit")
    api = model_script()
    finished = await work_revision(bot, revise_phases(api, tmp_path))
    assert finished.state == JobState.FAILED
    assert api.bodies == []
    assert bot.github.refs[branch] == theirs
    [tracking] = bot.github.bot_comments(PULL)
    assert "cannot tell where my own work on this branch begins" in tracking.body


async def failing_tests(ctx: JobContext) -> None:
    ctx.require_plugin()
    failure = "AssertionError: expected 'C' to be 'F'\n at src/__tests__/plugin.test.ts:12:5"
    tests = [
        TestCase("src/__tests__/plugin.test.ts", "loads in a runtime", "passed", 3.0),
        TestCase("src/__tests__/plugin.test.ts", "reports °F", "failed", 2.0, failure),
    ]
    ctx.result.test_results = TestResults(
        "vitest", ["npx", "vitest", "run"], 1, 2, 1, 1, 0, 0, [], tests, 0.1, "0" * 64, 0
    )
    ctx.require_files().write(RESULTS_FILE, ctx.result.test_results.encode())
    raise PhaseFailed("1 of 2 tests failed")


async def test_a_failed_revision_is_a_failed_check_with_annotations(
    bot: Bot, tmp_path: Path
) -> None:
    branch = await opened_with_model(bot)
    head = bot.github.refs[branch]
    await revise_comment(bot, "/plugin-revise report temperatures in Fahrenheit")
    finished = await work_revision(bot, revise_phases(model_script(), tmp_path, failing_tests))
    assert finished.state == JobState.FAILED
    assert bot.github.refs[branch] == head
    run = bot.github.check_runs[-1]
    assert (run["head_sha"], run["status"], run["conclusion"]) == (head, "completed", "failure")
    assert run["output"]["title"] == "plugin tests — 1 passed, 1 failed — 1 of 2 tests failed"
    [note] = run["annotations"]
    assert (note["path"], note["start_line"], note["annotation_level"]) == (
        f"{FOLDER}/src/__tests__/plugin.test.ts",
        12,
        "failure",
    )
    assert note["title"] == "failing test: reports °F"


async def test_a_readers_revise_is_refused(bot: Bot) -> None:
    await opened_with_model(bot)
    bot.github.collaborators["reader"] = "read"
    await revise_comment(bot, "/plugin-revise make it better", login="reader")
    assert [j for j in await bot.jobs() if j.issue == PULL] == []
    [reply] = bot.github.bot_comments(PULL)
    assert reply.body == status.refused_permission("reader", "read", "write")
    assert reply.body.startswith("🚫 `reader` has `read` access to this repository")
    assert len(bot.github.check_runs) == 1  # only the create's


async def test_without_a_model_a_revision_is_answered_that_it_needs_one(bot: Bot) -> None:
    await opened(bot)
    await revise_comment(bot, "/plugin-revise make it better")
    assert [j for j in await bot.jobs() if j.issue == PULL] == []
    [reply] = bot.github.bot_comments(PULL)
    assert reply.body == status.revise_needs_model()


async def test_revise_on_a_branch_not_the_bots_is_refused(bot: Bot) -> None:
    await opened_with_model(bot)
    bot.github.pulls[0].head = "feature/mine"
    bot.github.refs["feature/mine"] = bot.github.refs["master"]
    await revise_comment(bot, "/plugin-revise make it better")
    [reply] = bot.github.bot_comments(PULL)
    assert reply.body == status.revise_not_ours("feature/mine")


async def test_revise_on_a_forks_branch_named_like_the_bots_is_refused(bot: Bot) -> None:
    # Found in review: a fork's pull request from a branch named plugin-bot/… passed.
    await opened_with_model(bot)
    pull = bot.github.pulls[0]
    pull.head_repository = "mallory/Hello-World"
    await revise_comment(bot, "/plugin-revise make it better")
    [reply] = bot.github.bot_comments(PULL)
    assert reply.body == status.revise_not_ours(pull.head)
    assert [j for j in await bot.jobs() if j.issue == PULL] == []


async def test_a_review_requesting_changes_starts_a_revision(bot: Bot) -> None:
    branch = await opened_with_model(bot)
    payload = webhook_example("pull_request_review", "submitted")
    payload["review"]["state"] = "changes_requested"
    payload["review"]["body"] = "Please report temperatures in Fahrenheit."
    payload["pull_request"]["number"] = PULL
    payload["pull_request"]["head"]["ref"] = branch  # as GitHub sends it
    payload["sender"]["login"] = "Codertocat"
    answer = await bot.send(payload, event="pull_request_review")
    assert answer.status_code == 202
    await bot.dispatch()
    [job] = [j for j in await bot.jobs() if j.issue == PULL]
    assert status.revision_request(job.description) == "Please report temperatures in Fahrenheit."
    # An approval starts nothing.
    payload["review"]["state"] = "approved"
    answer = await bot.send(payload, event="pull_request_review")
    await bot.dispatch()
    assert len([j for j in await bot.jobs() if j.issue == PULL]) == 1


async def test_a_worker_without_a_model_fails_the_revision_and_pushes_nothing(
    bot: Bot, tmp_path: Path
) -> None:
    branch = await opened_with_model(bot)
    head = bot.github.refs[branch]
    await revise_comment(bot, "/plugin-revise report temperatures in Fahrenheit")
    bot.settings = bot.settings.model_copy(update={"anthropic_api_key": None})
    api = model_script()
    finished = await work_revision(bot, revise_phases(api, tmp_path))
    assert finished.state == JobState.FAILED
    assert api.bodies == [] and bot.github.refs[branch] == head
    [tracking] = bot.github.bot_comments(PULL)
    assert status.md(status.revise_needs_model(), 1000) in tracking.body


async def onboarding_pull(bot: Bot) -> str:
    """The onboarding pull request (#7) that /plugin-help opened; its branch."""
    with_model(bot)
    await bot.comment("/plugin-help")
    await bot.dispatch()
    [pull] = bot.github.pulls
    pull.number = PULL
    assert pull.head == status.ONBOARDING_BRANCH
    return pull.head


async def test_revise_on_the_onboarding_pull_request_is_refused(bot: Bot) -> None:
    # Its branch is plugin-bot/onboarding: the bot's, but no generated plugin is on it.
    branch = await onboarding_pull(bot)
    await revise_comment(bot, "/plugin-revise add a CODEOWNERS file")
    assert [j for j in await bot.jobs() if j.issue == PULL] == []
    [reply] = bot.github.bot_comments(PULL)
    assert reply.body == status.revise_not_ours(branch)
    assert bot.github.check_runs == []


async def test_a_review_requesting_changes_on_the_onboarding_pull_request_starts_nothing(
    bot: Bot,
) -> None:
    branch = await onboarding_pull(bot)
    payload = webhook_example("pull_request_review", "submitted")
    payload["review"]["state"] = "changes_requested"
    payload["review"]["body"] = "Please pin the verifier's Python version."
    payload["pull_request"]["number"] = PULL
    payload["pull_request"]["head"]["ref"] = branch
    payload["sender"]["login"] = "Codertocat"
    answer = await bot.send(payload, event="pull_request_review")
    assert answer.status_code == 200
    assert answer.json() == {"ignored": "a review on a pull request that is not plugin-bot's"}
    await bot.dispatch()
    assert [j for j in await bot.jobs() if j.issue == PULL] == []
    assert bot.github.bot_comments(PULL) == []


async def test_a_revision_recovered_after_its_push_writes_the_same_body_and_check_run(
    bot: Bot, tmp_path: Path
) -> None:
    # Its worker dies right after moving the branch, before the body and the check run. The
    # recovered attempt finds its own commit and finishes from it: the body and the check
    # run are the ones the first attempt would have written (test table, usage included).
    branch = await opened_with_model(bot)
    await revise_comment(bot, "/plugin-revise report temperatures in Fahrenheit")
    github = bot.github

    def kill_at_the_body(method: str, template: str) -> None:
        if (method, template) == ("PATCH", "/repos/{owner}/{repo}/pulls/{pull_number}"):
            github.on_request = None
            raise WorkerKilled

    github.on_request = kill_at_the_body
    api = model_script()
    with pytest.raises(WorkerKilled):
        await work_revision(bot, revise_phases(api, tmp_path))
    pushed = github.refs[branch]
    assert github.commits[pushed]["message"].startswith("Revise plugin plugin-weather")
    assert pushed not in {r["head_sha"] for r in github.check_runs}
    # What the first attempt had when it died: its usage (the model ran once, two turns).
    manifest = github.files_at(branch)[f"{FOLDER}/{MANIFEST_FILE}"]
    usage = statement_of(manifest)["predicate"]["usage"]
    assert usage["tokens"] > 0 and usage["costUsd"] > 0

    bot.clock.now += dt.timedelta(minutes=5)
    [recovery] = await bot.store.recover_expired()
    assert recovery.requeued
    finished = await work_revision(bot, revise_phases(model_script(), tmp_path))
    assert finished.state == JobState.SUCCEEDED, finished.error
    assert github.refs[branch] == pushed  # nothing pushed twice

    body = github.pulls[0].body
    digest = hashlib.sha256(manifest).hexdigest()
    assert f"manifest sha256 `{digest}`" in body
    assert "| ✅ | `src/__tests__/plugin.test.ts` | loads in a runtime |" in body
    assert f"{usage['tokens']} tokens" in body and f"${usage['costUsd']:.4f}" in body
    assert "> report temperatures in Fahrenheit" in body
    [run] = [r for r in github.check_runs if r["head_sha"] == pushed]
    assert (run["status"], run["conclusion"]) == ("completed", "success")
    assert run["output"]["title"] == "plugin tests — 1 passed, 0 failed"
    assert (
        "| ✅ | `src/__tests__/plugin.test.ts` | loads in a runtime |" in run["output"]["summary"]
    )
    [tracking] = github.bot_comments(PULL)
    assert "tests 1 passed, 0 failed" in tracking.body


@pytest.mark.parametrize("how", ["on-top", "replacing"])
async def test_a_forged_commit_keeping_the_bots_manifest_is_not_taken_for_its_push(
    bot: Bot, tmp_path: Path, how: str
) -> None:
    # The revision's worker dies after its push. Before the recovery, someone with write
    # access pushes a commit that keeps the bot's manifest and test results, changes the
    # plugin's code, and ends its message with the job's trailer: on top of the bot's
    # commit, or replacing it (its parent the one the bot built on). The recovered job must
    # not take that commit for its own and pass a check on code it never tested: it revises
    # again on top of it (others' commits on the plugin's files are built upon).
    branch = await opened_with_model(bot)
    await revise_comment(bot, "/plugin-revise report temperatures in Fahrenheit")
    github = bot.github
    [job] = [j for j in await bot.jobs() if j.kind == "revise"]

    def kill_at_the_body(method: str, template: str) -> None:
        if (method, template) == ("PATCH", "/repos/{owner}/{repo}/pulls/{pull_number}"):
            github.on_request = None
            raise WorkerKilled

    github.on_request = kill_at_the_body
    with pytest.raises(WorkerKilled):
        await work_revision(bot, revise_phases(model_script(), tmp_path))
    pushed = github.refs[branch]
    [built_on] = github.commits[pushed]["parents"]
    forged_message = f"Revise plugin plugin-weather\n\n{status.BOT_COMMIT_TRAILER}{job.id}"
    evil = {f"{FOLDER}/src/index.ts": b"export default { name: 'stolen' };\n"}
    if how == "replacing":
        everything = dict(github.files_at(branch))
        github.refs[branch] = built_on
        forged = github.push(branch, {**everything, **evil}, forged_message)
    else:
        forged = github.push(branch, evil, forged_message)
    assert github.commits[forged]["parents"] == [built_on if how == "replacing" else pushed]

    bot.clock.now += dt.timedelta(minutes=5)
    [recovery] = await bot.store.recover_expired()
    assert recovery.requeued
    finished = await work_revision(bot, revise_phases(model_script(), tmp_path))
    assert finished.state == JobState.SUCCEEDED, finished.error
    assert forged not in {r["head_sha"] for r in github.check_runs}
    head = github.refs[branch]
    assert github.commits[head]["parents"] == [forged]  # a new revision on top of it
    [run] = [r for r in github.check_runs if r["head_sha"] == head]
    assert run["conclusion"] == "success"


async def test_a_review_requesting_changes_on_a_forks_branch_named_like_the_bots_is_ignored(
    bot: Bot,
) -> None:
    # A fork's pull request from plugin-bot/<name>-<8 hex>: no revision, and no reply either
    # (anyone may open one and request changes on it, as often as they like).
    branch = await opened_with_model(bot)
    payload = webhook_example("pull_request_review", "submitted")
    payload["review"]["state"] = "changes_requested"
    payload["review"]["body"] = "Please report temperatures in Fahrenheit."
    payload["pull_request"]["number"] = PULL
    payload["pull_request"]["head"]["ref"] = branch
    payload["pull_request"]["head"]["repo"]["full_name"] = "mallory/Hello-World"
    bot.github.pulls[0].head_repository = "mallory/Hello-World"
    payload["sender"]["login"] = "Codertocat"
    answer = await bot.send(payload, event="pull_request_review")
    assert answer.status_code == 200
    assert answer.json() == {"ignored": "a review on a pull request that is not plugin-bot's"}
    await bot.dispatch()
    assert [j for j in await bot.jobs() if j.issue == PULL] == []
    assert bot.github.bot_comments(PULL) == []

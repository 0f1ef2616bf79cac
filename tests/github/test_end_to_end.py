"""From a signed webhook to a pull request, through the real server, dispatcher, runner,
publisher and tracking comment; GitHub is the stand-in that validates every request.

The pipeline is the real one (spec, scaffold with the publisher's preflight, sign,
publish) with its npm install/build/test replaced by a fast phase that writes real test
results: that part is proven in tests/integration.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from bot import manifest, paths, status
from bot.github.client import GitHubApp
from bot.github.desk import StoreDesk, job_view
from bot.github.dispatcher import Dispatcher
from bot.github.jobs import GitHubJobs, GitHubRunner, publisher_for
from bot.github.ports import JobView
from bot.github.service import onboarding_for
from bot.github.validation.config import parse_repo_config
from bot.github.webhooks import signature_of
from bot.jobs.queue import EmbeddedQueue
from bot.jobs.store import Job, JobOutcome, JobState, Store
from bot.jobs.worker import Worker
from bot.manifest import MANIFEST_FILE, generate_key, load_keys, verify_manifest
from bot.pipeline import PHASE_NAMES
from bot.pipeline.context import JobContext, Phase, PhaseFailed
from bot.pipeline.generate import generate_phase
from bot.pipeline.publish import publish_phase
from bot.pipeline.scaffold import scaffold_phase
from bot.pipeline.sign import sign_phase
from bot.pipeline.spec import spec_phase
from bot.runner import Runner
from bot.sandbox import DirectBackend, Sandbox
from bot.server import create_app
from bot.settings import REPO_ROOT, RepoConfig, Settings
from bot.testresults import RESULTS_FILE, TestCase, TestResults
from tests.fakes.github import FakeGitHub, webhook_example, webhook_sender
from tests.github.conftest import SECRET, Clock

COMMAND = "/create-plugin a weather plugin that reports the current temperature for a city"
ISSUE = 1
COMMENT_ID = 492700400  # the example payload's comment
PULLS = "/repos/{owner}/{repo}/pulls"


async def fast_test_phase(ctx: JobContext) -> None:
    """Real test results, as the test phase writes them, without npm."""
    ctx.require_plugin()
    tests = [TestCase("src/__tests__/plugin.test.ts", "loads in a runtime", "passed", 3.0)]
    results = TestResults(
        tool="vitest",
        command=["npx", "vitest", "run"],
        exit_code=0,
        total=1,
        passed=1,
        failed=0,
        skipped=0,
        todo=0,
        files=[],
        tests=tests,
        wall_s=0.1,
        log_sha256="0" * 64,
        log_bytes=0,
    )
    ctx.result.test_results = results
    ctx.require_files().write(RESULTS_FILE, results.encode())
    ctx.tools.reporter.phase_note("test", "1/1 passed")


FAST_PHASES: list[tuple[str, Phase]] = [
    ("spec", spec_phase),
    ("scaffold", scaffold_phase),
    ("generate", generate_phase),
    ("test", fast_test_phase),
    ("sign", sign_phase),
    ("publish", publish_phase),
]


class WorkerKilled(BaseException):
    """The process dies (SIGKILL): nothing after it runs, no handler sees it."""


@dataclass
class Bot:
    settings: Settings
    github: FakeGitHub
    store: Store
    desk: StoreDesk
    clock: Clock
    app: GitHubApp
    http: httpx.AsyncClient
    dispatcher: Dispatcher
    keys: Path
    comments_sent: int = 0

    async def send(self, payload: dict[str, Any], event: str = "issue_comment") -> httpx.Response:
        body = json.dumps(payload).encode()
        headers = {
            "content-type": "application/json",
            "x-github-event": event,
            "x-github-delivery": str(uuid.uuid4()),
            "x-hub-signature-256": signature_of(SECRET, body),
        }
        return await self.http.post("/webhook", content=body, headers=headers)

    def new_comment(self, payload: dict[str, Any]) -> dict[str, Any]:
        """The example's comment as a new one: the first keeps its id, each later one gets
        its own (as on GitHub; the bot makes at most one job per comment)."""
        payload["comment"]["id"] += self.comments_sent
        self.comments_sent += 1
        return payload

    async def comment(self, body: str = COMMAND) -> httpx.Response:
        payload = webhook_example("issue_comment", "created")
        payload["comment"]["body"] = body
        return await self.send(self.new_comment(payload))

    async def dispatch(self) -> None:
        while await self.dispatcher.run_once():
            pass

    def jobs_runner(self) -> GitHubJobs:
        """A worker process: its own runner, as after a restart."""
        runner = Runner(self.settings, sandbox=Sandbox(backend=DirectBackend()))
        return GitHubJobs(self.settings, self.app, runner, generator="scaffold", phases=FAST_PHASES)

    async def claim(self, owner: str = "worker-1") -> Job:
        job = await self.store.claim_next(owner, lease_s=30)
        assert job is not None
        return job

    async def work(self, owner: str = "worker-1") -> Job:
        """The jobs layer's worker (a fresh process: its own runner) runs the next job."""
        runner = GitHubRunner(self.settings, self.app, self.store)
        worker = Worker(
            self.store,
            EmbeddedQueue(self.store, self.settings),
            self.settings,
            runner=runner,
            publisher_for=publisher_for(self.settings, self.app),
            phases=FAST_PHASES,
            name=owner,
        )
        finished = await worker.run_claimed(await self.claim(owner))
        assert finished is not None
        return finished

    async def jobs(self) -> list[JobView]:
        return [job_view(j) for j in await self.store.list_jobs()]

    def replies(self) -> list[str]:
        return [c.body for c in self.github.bot_comments(ISSUE)]


@pytest.fixture
async def bot(
    settings: Settings,
    github: FakeGitHub,
    store: Store,
    clock: Clock,
    tmp_path: Path,
) -> AsyncIterator[Bot]:
    key_path, entry = generate_key(tmp_path / "keys")
    keys = tmp_path / "keys.json"
    keys.write_text(json.dumps([entry]))
    data = tmp_path / "data"
    settings = settings.model_copy(
        update={"bot_data_dir": data, "signing_key_path": key_path, "sandbox": "none"}
    )
    app = GitHubApp(settings)
    desk = StoreDesk(store, settings)
    github.collaborators["Codertocat"] = "write"
    dispatcher = Dispatcher(
        settings, app, desk, desk, phases=PHASE_NAMES, onboarding=onboarding_for(settings)
    )
    asgi = httpx.ASGITransport(app=create_app(settings, desk, app))
    async with httpx.AsyncClient(transport=asgi, base_url="http://bot.test") as http:
        yield Bot(settings, github, store, desk, clock, app, http, dispatcher, keys)


def materialise(files: dict[str, bytes], prefix: str, into: Path) -> Path:
    for path, data in files.items():
        if path.startswith(prefix):
            target = into / path.removeprefix(prefix)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
    return into


async def test_a_comment_becomes_one_pull_request_with_exactly_the_signed_files(
    bot: Bot, tmp_path: Path
) -> None:
    answer = await bot.comment()
    assert answer.status_code == 202
    await bot.dispatch()
    assert bot.github.reactions == [("comment", COMMENT_ID, "eyes")]
    [job] = await bot.jobs()
    [tracking] = bot.github.bot_comments(ISSUE)
    assert job.tracking_comment_id == tracking.id
    assert tracking.body.startswith(status.tracking_marker(job.id))
    base_sha = bot.github.refs["master"]

    finished = await bot.work()
    assert (finished.state, finished.pr_url) == (JobState.SUCCEEDED, pull_url(1))

    # One pull request, on its own branch from the recorded base, draft by default.
    [pull] = bot.github.pulls
    branch = f"plugin-bot/plugin-weather-{job.id[:8]}"
    assert (pull.head, pull.base, pull.draft) == (branch, "master", True)
    assert bot.github.commits[bot.github.refs[branch]]["parents"] == [base_sha]
    # Exactly the signed set, and it verifies against the keys for this repository.
    files = bot.github.files_at(branch)
    plugin = materialise(files, "plugins/plugin-weather/", tmp_path / "checkout")
    verified = verify_manifest(
        plugin,
        load_keys(bot.keys),
        repository="Codertocat/Hello-World",
        plugin_path="plugins/plugin-weather",
    )
    statement_files = {s["name"] for s in verified.statement["subject"]}
    assert {
        p.removeprefix("plugins/plugin-weather/") for p in files if p.startswith("plugins/")
    } == (statement_files | {MANIFEST_FILE})
    assert set(files) - {
        f"plugins/plugin-weather/{n}" for n in statement_files | {MANIFEST_FILE}
    } == {"README.md"}
    # The body: who asked, the components, the tests, how to verify; no Closes by default.
    assert "for `Codertocat` (#1)" in pull.body
    assert "| ✅ | `src/__tests__/plugin.test.ts` | loads in a runtime |" in pull.body
    assert "verify_manifest.py verify plugins/plugin-weather" in pull.body
    assert "Closes #1" not in pull.body

    # One tracking comment, edited through the phases, ending with the link.
    assert bot.github.bot_comments(ISSUE) == [tracking]
    history = tracking.history
    assert len(history) >= 4
    assert all(body.startswith(status.tracking_marker(job.id)) for body in history)
    # Edits are throttled (phases without a pause share one), but they move forward in
    # phase order and an intermediate state is shown before the last.
    done_counts = [body.count("✅") for body in history]
    assert done_counts == sorted(done_counts) and done_counts[-1] == len(FAST_PHASES)
    assert any("🔄 publish" in body for body in history[1:-1])
    final = history[-1]
    for name, _ in FAST_PHASES:
        assert f"✅ {name} (" in final
    assert final.endswith(f"**Done:** the pull request is {pull_url(1)}")


def pull_url(number: int) -> str:
    return f"https://github.com/Codertocat/Hello-World/pull/{number}"


async def test_a_crash_between_commit_and_pull_request_recovers_to_exactly_one(
    bot: Bot,
) -> None:
    await bot.comment()
    await bot.dispatch()

    def kill_at_pull_request(method: str, template: str) -> None:
        if (method, template) == ("POST", PULLS):
            bot.github.on_request = None
            raise WorkerKilled

    bot.github.on_request = kill_at_pull_request
    job = await bot.claim("worker-1")
    with pytest.raises(WorkerKilled):
        await bot.jobs_runner().run(job_view(job))
    branch = f"plugin-bot/plugin-weather-{job.id[:8]}"
    assert branch in bot.github.refs and bot.github.pulls == []

    # Its lease expires; recovery puts it back; a fresh worker runs attempt 2.
    bot.clock.now += dt.timedelta(minutes=5)
    [recovery] = await bot.store.recover_expired()
    assert (recovery.job_id, recovery.requeued) == (job.id, True)
    finished = await bot.work("worker-2")
    assert (finished.state, finished.attempts) == (JobState.SUCCEEDED, 2)
    assert len(bot.github.pulls) == 1
    assert len(bot.github.calls("POST", "/git/refs")) == 1
    [tracking] = bot.github.bot_comments(ISSUE)
    assert "attempt 2" in tracking.body and tracking.body.endswith(pull_url(1))


async def test_recovery_that_gives_up_leaves_the_comment_failed_not_running(bot: Bot) -> None:
    await bot.comment()
    await bot.dispatch()
    [job] = await bot.jobs()
    await bot.jobs_runner().abandoned(job, "the worker stopped and the job ran out of attempts")
    [tracking] = bot.github.bot_comments(ISSUE)
    assert "· **failed**" in tracking.body
    assert "**Failed:** the worker stopped and the job ran out of attempts" in tracking.body


async def failing_test_phase(ctx: JobContext) -> None:
    raise PhaseFailed("1 of 3 tests failed", "FAIL src/__tests__/plugin.test.ts\n@octocat ```")


async def test_a_failed_job_says_what_failed_with_the_tail_and_can_be_retried(
    bot: Bot,
) -> None:
    await bot.comment()
    await bot.dispatch()
    job = await bot.claim()
    runner = bot.jobs_runner()
    runner.phases = [*FAST_PHASES[:3], ("test", failing_test_phase), *FAST_PHASES[4:]]
    await runner.run(job_view(job))
    await bot.store.finish(job.id, "worker-1", JobOutcome(state=JobState.FAILED, error="x"))
    [tracking] = bot.github.bot_comments(ISSUE)
    body = tracking.body
    assert "- ❌ test (" in body and "- ➖ sign" in body and "- ➖ publish" in body
    assert "**Failed in `test`:** 1 of 3 tests failed" in body
    assert "FAIL src/\\_\\_tests" not in body  # the tail is verbatim, in a fence
    assert "````text\nFAIL src/__tests__/plugin.test.ts\n@octocat ```\n````" in body
    assert body.endswith(f"What next: fix the description or `/plugin-retry {job.id}`.")
    assert bot.github.pulls == []

    await bot.comment(f"/plugin-retry {job.short_id}")
    await bot.dispatch()
    jobs = await bot.jobs()
    assert len(jobs) == 2 and jobs[0].description == jobs[1].description
    assert len(bot.github.bot_comments(ISSUE)) == 2  # the new job's own tracking comment


async def test_repo_config_sets_folder_labels_reviewers_ready_and_closes(
    bot: Bot,
) -> None:
    bot.github.set_base_files(
        {
            ".github/plugin-bot.yml": b"plugins_folder: packages/eliza\nlabels: [plugin]\n"
            b"reviewers: [octocat]\ndraft: false\nclose_issue: true\n"
        }
    )
    await bot.comment()
    await bot.dispatch()
    await bot.work()
    [pull] = bot.github.pulls
    assert (pull.draft, pull.labels, pull.reviewers) == (False, ["plugin"], ["octocat"])
    assert pull.body.endswith("Closes #1")
    files = bot.github.files_at(pull.head)
    assert any(p.startswith("packages/eliza/plugin-weather/") for p in files)


async def test_a_plugin_that_already_exists_is_refused_before_any_work(bot: Bot) -> None:
    bot.github.set_base_files({"plugins/plugin-weather/package.json": b"{}"})
    await bot.comment()
    await bot.dispatch()
    finished = await bot.work()
    assert finished.state == JobState.FAILED
    [tracking] = bot.github.bot_comments(ISSUE)
    assert "**Failed in `scaffold`:**" in tracking.body
    assert "already exists on" in tracking.body and "never overwrites a plugin" in tracking.body
    assert bot.github.pulls == [] and bot.github.calls("POST", "/git/") == []


# ------------------------------------------------------------------ refusals


async def no_job_no_pull(bot: Bot) -> None:
    assert await bot.jobs() == []
    assert bot.github.pulls == [] and bot.github.calls("POST", "/git/") == []


async def test_a_reader_is_refused_with_the_reason(bot: Bot) -> None:
    bot.github.collaborators["Codertocat"] = "read"
    await bot.comment()
    await bot.dispatch()
    assert bot.replies() == [
        "🚫 `Codertocat` has `read` access to this repository; this command needs `write` or "
        "higher, or a place in `trigger.users` / `trigger.teams` of `.github/plugin-bot.yml`."
    ]
    await no_job_no_pull(bot)


async def test_a_reader_on_the_configs_user_list_may_create(bot: Bot) -> None:
    bot.github.collaborators["Codertocat"] = "read"
    bot.github.set_base_files({".github/plugin-bot.yml": b"trigger:\n  users: [Codertocat]\n"})
    await bot.comment()
    await bot.dispatch()
    assert len(await bot.jobs()) == 1


async def test_invalid_config_is_refused_naming_the_field(bot: Bot) -> None:
    bot.github.set_base_files(
        {".github/plugin-bot.yml": b"draft: sometimes\nlimits:\n  jobs_per_hour: 50\n"}
    )
    await bot.comment()
    await bot.dispatch()
    assert bot.replies() == [
        "⚠️ `.github/plugin-bot.yml` is not valid, so nothing was started:\n\n"
        "- draft\\: Input should be a valid boolean, unable to interpret input\n"
        "- limits\\.jobs\\_per\\_hour\\: must be at most 10 \\(the bot\\'s limit\\)"
    ]
    await no_job_no_pull(bot)


async def test_over_the_hourly_limit_is_refused_with_the_time_of_the_next_slot(
    bot: Bot,
) -> None:
    bot.github.set_base_files({".github/plugin-bot.yml": b"limits:\n  jobs_per_hour: 1\n"})
    await bot.comment()
    await bot.dispatch()
    bot.clock.now += dt.timedelta(minutes=10)
    await bot.comment()
    await bot.dispatch()
    [job] = await bot.store.list_jobs()
    when = (job.created_at + dt.timedelta(hours=1)).strftime("%Y-%m-%d %H:%M UTC")
    assert when == "2026-12-01 13:00 UTC"
    assert bot.replies()[-1] == (
        f"⏱️ Not started: at most 1 jobs an hour per repository. The next one can start at {when}."
    )


async def test_over_the_running_limit_is_queued_with_its_position(bot: Bot) -> None:
    bot.github.set_base_files({".github/plugin-bot.yml": b"limits:\n  max_running: 1\n"})
    await bot.comment()
    await bot.dispatch()
    await bot.claim()  # the first one runs
    bot.clock.now += dt.timedelta(seconds=1)
    await bot.comment()
    await bot.dispatch()
    second = (await bot.jobs())[0]
    tracking = bot.github.comments[second.tracking_comment_id or 0]
    assert f"\n⏳ Queued as job `{second.id}`, position 1; it starts when a slot frees." in (
        tracking.body
    )


@pytest.mark.parametrize("kind", ["forged", "replayed", "oversized", "bot"])
async def test_refused_deliveries_make_no_job_and_no_pull_request(bot: Bot, kind: str) -> None:
    payload = webhook_example("issue_comment", "created")
    payload["comment"]["body"] = COMMAND
    body = json.dumps(payload).encode()
    headers = {
        "content-type": "application/json",
        "x-github-event": "issue_comment",
        "x-github-delivery": "d-1",
        "x-hub-signature-256": signature_of(SECRET, body),
    }
    if kind == "forged":
        headers["x-hub-signature-256"] = signature_of("guess", body)
    if kind == "replayed":
        assert (await bot.http.post("/webhook", content=body, headers=headers)).status_code == 202
        await bot.dispatch()
        jobs_before = await bot.jobs()
    if kind == "oversized":
        headers["content-length"] = str(bot.settings.webhook_max_bytes + 1)
    if kind == "bot":
        payload["sender"] = webhook_sender("check_suite", lambda s: s.get("type") == "Bot")
        body = json.dumps(payload).encode()
        headers["x-hub-signature-256"] = signature_of(SECRET, body)
    answer = await bot.http.post("/webhook", content=body, headers=headers)
    await bot.dispatch()
    expected = {
        "forged": (401, {"error": "the signature does not match"}),
        "replayed": (200, {"duplicate": True}),
        "oversized": (
            413,
            {"error": f"the body is larger than {bot.settings.webhook_max_bytes} bytes"},
        ),
        "bot": (200, {"ignored": "written by a bot"}),
    }[kind]
    assert (answer.status_code, answer.json()) == expected
    if kind == "replayed":
        assert await bot.jobs() == jobs_before and len(jobs_before) == 1
        return
    await no_job_no_pull(bot)


async def test_an_unknown_command_gets_the_closest_one(bot: Bot) -> None:
    await bot.comment("/plugin-stauts")
    await bot.dispatch()
    assert bot.replies() == [
        "❓ `/plugin-stauts` is not a plugin-bot command. Did you mean `/plugin-status`? "
        "`/plugin-help` lists them."
    ]


async def test_status_jobs_and_cancel_answer_from_the_store(bot: Bot) -> None:
    await bot.comment()
    await bot.dispatch()
    [job] = await bot.jobs()
    await bot.comment("/plugin-jobs")
    await bot.comment(f"/plugin-cancel {job.short_id}")
    await bot.dispatch()
    replies = bot.replies()
    assert replies[-2] == f"Jobs on this issue:\n\n- `{job.id}` · queued"
    assert replies[-1] == f"🛑 Cancelling job `{job.id}`."
    [cancelled] = await bot.store.list_jobs()
    assert cancelled.state == JobState.CANCELLED


async def test_a_command_in_a_new_issue_without_installation_id_is_looked_up(bot: Bot) -> None:
    payload = webhook_example("issues", "opened", with_installation=False)
    payload["issue"]["body"] = COMMAND
    assert (await bot.send(payload, event="issues")).status_code == 202
    await bot.dispatch()
    number = payload["issue"]["number"]
    assert bot.github.reactions == [("issue", number, "eyes")]
    assert len(await bot.jobs()) == 1
    assert bot.github.calls("GET", "/repos/Codertocat/Hello-World/installation")


# ------------------------------------------------------------------ onboarding


async def test_help_in_a_repository_without_keys_offers_onboarding_once(bot: Bot) -> None:
    await bot.comment("/plugin-help")
    await bot.comment("/plugin-help")
    await bot.dispatch()
    [pull] = bot.github.pulls
    assert (pull.head, pull.title, pull.draft) == (
        "plugin-bot/onboarding",
        "Set up plugin-bot verification",
        False,
    )
    files = bot.github.files_at("plugin-bot/onboarding")
    assert sorted(p for p in files if p.startswith(".github/")) == [
        ".github/plugin-bot.yml",
        ".github/plugin-bot/keys.json",
        ".github/plugin-bot/plugin_paths.py",
        ".github/plugin-bot/verify_manifest.py",
    ]
    assert json.loads(files[".github/plugin-bot/keys.json"]) == json.loads(bot.keys.read_text())
    assert files[".github/plugin-bot/verify_manifest.py"] == Path(manifest.__file__).read_bytes()
    assert files[".github/plugin-bot/plugin_paths.py"] == Path(paths.__file__).read_bytes()
    workflow = (REPO_ROOT / ".github/workflows/verify-plugin.yml").read_text()
    assert workflow.rstrip() in pull.body
    assert bot.replies() == [status.help_text(True), status.help_text(True)]


async def test_help_in_a_repository_with_keys_only_answers(bot: Bot) -> None:
    bot.github.set_base_files({".github/plugin-bot/keys.json": b"[]"})
    await bot.comment("/plugin-help")
    await bot.dispatch()
    assert bot.github.pulls == []
    assert bot.replies() == [status.help_text(False)]


def test_the_onboarding_config_is_valid_and_says_the_defaults(settings: Settings) -> None:
    text = (REPO_ROOT / "templates/repo/plugin-bot.yml").read_text()
    assert parse_repo_config(text, settings) == RepoConfig()


async def test_installing_the_app_offers_onboarding_on_its_repositories(bot: Bot) -> None:
    payload = webhook_example("installation", "created")  # unedited
    assert (await bot.send(payload, event="installation")).status_code == 202
    await bot.dispatch()
    [pull] = bot.github.pulls
    assert pull.head == "plugin-bot/onboarding"
    assert bot.github.reactions == [] and bot.github.bot_comments() == []
    assert await bot.jobs() == []


async def test_a_cancelled_job_says_so_and_opens_nothing(bot: Bot) -> None:
    await bot.comment()
    await bot.dispatch()
    job = await bot.claim()
    cancel = asyncio.Event()
    cancel.set()
    await bot.jobs_runner().run(job_view(job), cancel)
    [tracking] = bot.github.bot_comments(ISSUE)
    assert "- 🚫 spec (" in tracking.body and "· **cancelled**" in tracking.body
    assert tracking.body.endswith(f"**Cancelled.** `/plugin-retry {job.id}` starts it again.")
    assert bot.github.pulls == []


async def test_a_reader_in_a_team_of_the_configs_list_may_create(bot: Bot) -> None:
    bot.github.collaborators["Codertocat"] = "read"
    bot.github.teams["plugin-makers"] = {"Codertocat"}
    bot.github.set_base_files({".github/plugin-bot.yml": b"trigger:\n  teams: [plugin-makers]\n"})
    await bot.comment()
    await bot.dispatch()
    assert len(await bot.jobs()) == 1
    assert bot.github.calls("GET", "/orgs/Codertocat/teams/plugin-makers/memberships/Codertocat")

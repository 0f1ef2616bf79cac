"""A revision through the real sandbox: the plugin that /create-plugin published is read
back from the branch, changed by the model (the scripted Messages API through the real
SDK) with its checks run in bubblewrap, installed, built and tested again in bubblewrap,
re-signed and pushed as one new commit on the same branch with a check run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import SecretStr

from bot import status
from bot.agent import ModelGenerator
from bot.github.client import GitHubApp
from bot.github.desk import job_view
from bot.github.jobs import GitHubJobs
from bot.jobs.limits import JobLimits
from bot.jobs.store import NewJob, Store
from bot.manifest import generate_key, load_keys, verify_manifest
from bot.pipeline import REVISE_PHASES
from bot.pipeline.context import JobContext, Origin, Phase
from bot.runner import Runner
from bot.settings import Settings
from tests.fakes.github import FakeGitHub
from tests.fakes.messages_api import ScriptedMessagesAPI, tool_use_reply
from tests.github.test_end_to_end_sandbox import data_dir  # noqa: F401  (a fixture)
from tests.unit.test_agent_loop import CHECK, FINISH, write

pytestmark = pytest.mark.integration
FOLDER = "plugins/plugin-weather"
UNITS = "export const UNIT = 'fahrenheit';\n"


async def test_a_revision_is_checked_in_the_sandbox_and_pushed_as_one_signed_commit(
    settings: Settings,
    github: FakeGitHub,
    store: Store,
    data_dir: Path,  # noqa: F811
    tmp_path: Path,
) -> None:
    key_path, entry = generate_key(tmp_path)
    settings = settings.model_copy(
        update={"bot_data_dir": data_dir, "signing_key_path": key_path, "sandbox": "bwrap"}
    )
    app = GitHubApp(settings)
    runner = Runner(settings)
    origin = Origin("Codertocat/Hello-World", 1, 1, None, "Codertocat", "d-1")
    limits = JobLimits.from_settings(settings)
    await store.submit(NewJob("a weather plugin for a city", origin), limits)
    job = await store.claim_next("worker", lease_s=600)
    assert job is not None
    first = await GitHubJobs(settings, app, runner, generator="scaffold").run(job_view(job))
    assert first.ok, first.ctx.failed_phase
    [pull] = github.pulls
    before = github.refs[pull.head]

    api = ScriptedMessagesAPI().add(
        tool_use_reply(write("src/units.ts", UNITS), CHECK), tool_use_reply(FINISH)
    )

    async def model_generate(ctx: JobContext) -> None:
        await ModelGenerator(api.provider(meter=ctx.tools.meter)).generate(ctx)

    phases: list[tuple[str, Phase]] = [
        (name, model_generate if name == "generate" else phase) for name, phase in REVISE_PHASES
    ]
    pr_origin = Origin("Codertocat/Hello-World", 1, pull.number, None, "Codertocat", "d-2")
    revise = NewJob(status.revision_description("use Fahrenheit"), pr_origin, kind="revise")
    await store.submit(revise, limits)
    revision = await store.claim_next("worker", lease_s=600)
    assert revision is not None
    # The worker has a model configured (its base URL a closed loopback port: only the
    # scripted API answers, through the generate phase above).
    with_model = settings.model_copy(
        update={
            "anthropic_api_key": SecretStr("sk-ant-fake"),
            "anthropic_base_url": "http://127.0.0.1:9",
        }
    )
    jobs = GitHubJobs(with_model, app, Runner(with_model), revise_phases=phases)
    outcome = await jobs.run(job_view(revision))
    failed = outcome.ctx.failed_phase
    assert outcome.ok, (failed.name, failed.error, failed.detail) if failed else None
    api.assert_done()

    head = github.refs[pull.head]
    assert github.commits[head]["parents"] == [before]
    files = github.files_at(pull.head)
    checkout = tmp_path / "checkout"
    for path, data in files.items():
        if path.startswith(FOLDER + "/"):
            target = checkout / path.removeprefix(FOLDER + "/")
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
    keys = tmp_path / "keys.json"
    keys.write_text(json.dumps([entry]))
    verified = verify_manifest(checkout, load_keys(keys), plugin_path=FOLDER)
    assert verified.statement["predicate"]["revision"]["request"] == "use Fahrenheit"
    assert files[f"{FOLDER}/src/units.ts"] == UNITS.encode()
    results = json.loads(files[f"{FOLDER}/test-results.json"])
    assert results["failed"] == 0 and results["passed"] > 0
    run = next(r for r in github.check_runs if r["head_sha"] == head)
    assert run["conclusion"] == "success"
    assert run["output"]["title"] == f"plugin tests — {results['passed']} passed, 0 failed"

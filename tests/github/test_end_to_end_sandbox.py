"""The whole way with the real pipeline: a signed webhook, the dispatcher, the real runner
(spec, scaffold, generate, npm install, build and vitest in bubblewrap, sign, publish), and
the pull request on the GitHub stand-in, whose files verify."""

from __future__ import annotations

import json
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from bot.github.client import GitHubApp
from bot.github.desk import StoreDesk, job_view
from bot.github.dispatcher import Dispatcher
from bot.github.jobs import GitHubJobs
from bot.github.webhooks import signature_of
from bot.jobs.store import Store
from bot.manifest import generate_key, load_keys, verify_manifest
from bot.pipeline import PHASE_NAMES
from bot.runner import Runner
from bot.server import create_app
from bot.settings import Settings
from tests.fakes.github import FakeGitHub, webhook_example
from tests.github.conftest import SECRET

pytestmark = pytest.mark.integration


@pytest.fixture
def data_dir() -> Iterator[Path]:
    # Under /tmp, mode 0755: the sandbox uid must reach the workspaces.
    base = Path(tempfile.mkdtemp(prefix="plugin-bot-gh-", dir="/tmp"))
    base.chmod(0o755)
    yield base
    shutil.rmtree(base, ignore_errors=True)


async def test_a_comment_becomes_a_pull_request_built_and_tested_in_the_sandbox(
    settings: Settings, github: FakeGitHub, store: Store, data_dir: Path, tmp_path: Path
) -> None:
    key_path, entry = generate_key(tmp_path)
    settings = settings.model_copy(
        update={"bot_data_dir": data_dir, "signing_key_path": key_path, "sandbox": "bwrap"}
    )
    github.collaborators["Codertocat"] = "admin"
    app = GitHubApp(settings)
    desk = StoreDesk(store, settings)
    payload = webhook_example("issue_comment", "created")
    payload["comment"]["body"] = (
        "/create-plugin a weather plugin that reports the current temperature for a city"
    )
    body = json.dumps(payload).encode()
    asgi = httpx.ASGITransport(app=create_app(settings, desk, app))
    async with httpx.AsyncClient(transport=asgi, base_url="http://bot.test") as http:
        answer = await http.post(
            "/webhook",
            content=body,
            headers={
                "content-type": "application/json",
                "x-github-event": "issue_comment",
                "x-github-delivery": str(uuid.uuid4()),
                "x-hub-signature-256": signature_of(SECRET, body),
            },
        )
    assert answer.status_code == 202
    assert await Dispatcher(settings, app, desk, desk, phases=PHASE_NAMES).run_once()

    job = await store.claim_next("worker", lease_s=600)
    assert job is not None
    outcome = await GitHubJobs(settings, app, Runner(settings), generator="scaffold").run(
        job_view(job)
    )
    failed = outcome.ctx.failed_phase
    assert outcome.ok, (failed.name, failed.error, failed.detail) if failed else None

    [pull] = github.pulls
    files = github.files_at(pull.head)
    checkout = tmp_path / "checkout"
    for path, data in files.items():
        if path.startswith("plugins/plugin-weather/"):
            target = checkout / path.removeprefix("plugins/plugin-weather/")
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
    keys = tmp_path / "keys.json"
    keys.write_text(json.dumps([entry]))
    verified = verify_manifest(
        checkout,
        load_keys(keys),
        repository="Codertocat/Hello-World",
        plugin_path="plugins/plugin-weather",
    )
    predicate = verified.statement["predicate"]
    assert predicate["job"]["id"] == job.id
    assert (predicate["repository"], predicate["issue"], predicate["requester"]) == (
        "Codertocat/Hello-World",
        1,
        "Codertocat",
    )
    assert predicate["baseCommit"] == github.commits[github.refs[pull.head]]["parents"][0]
    results = json.loads(files["plugins/plugin-weather/test-results.json"])
    assert results["failed"] == 0 and results["passed"] > 0
    assert f"### Tests: {results['passed']} passed, 0 failed" in pull.body
    assert "node_modules" not in " ".join(files) and "dist/" not in " ".join(files)
    [tracking] = github.bot_comments(1)
    assert tracking.body.endswith(f"**Done:** the pull request is {pull_url(pull.number)}")
    assert "- ✅ install (" in tracking.body and "- ✅ test (" in tracking.body


def pull_url(number: int) -> str:
    return f"https://github.com/Codertocat/Hello-World/pull/{number}"

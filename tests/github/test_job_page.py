"""The job page: a whole job (webhook → PR on the stand-in), then its page as the tracking
comment links it; public and private repositories; paging; neutralised text; and the page
in headless Chromium (the system's, driven by playwright-core) with a screenshot."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import re
import shutil
import socket
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import uvicorn
from pydantic import SecretStr

from bot import jobpage
from bot.jobs.states import EventKind
from bot.server import create_app
from bot.settings import REPO_ROOT
from tests.conftest import eventually
from tests.github.test_end_to_end import ISSUE, Bot, bot  # noqa: F401  (the fixture)

PAGE_SECRET = "job-page-secret-for-the-test"
PUBLIC_URL = "http://127.0.0.1:8000"
BROWSER = REPO_ROOT / "tests" / "fixtures" / "browser"
LINK = re.compile(r"\[Job page: phases, log, usage\]\((\S+)\)")


@dataclasses.dataclass
class Done:
    bot: Bot
    http: httpx.AsyncClient
    job_id: str
    link: str


async def finished_job(base: Bot, *, private: bool, per_page: int = 50) -> AsyncIterator[Done]:
    base.github.private = private
    settings = base.settings.model_copy(
        update={
            "job_page_secret": SecretStr(PAGE_SECRET),
            "public_url": PUBLIC_URL,
            "job_page_events_per_page": per_page,
        }
    )
    running = dataclasses.replace(base, settings=settings)
    assert (await running.comment()).status_code == 202
    await running.dispatch()
    job = await running.work()
    [tracking] = running.github.bot_comments(ISSUE)
    match = LINK.search(tracking.body)
    assert match is not None, tracking.body
    web = create_app(settings, running.desk, running.app, jobs=running.store)
    transport = httpx.ASGITransport(app=web)
    async with httpx.AsyncClient(transport=transport, base_url=PUBLIC_URL) as http:
        yield Done(running, http, job.id, match.group(1))


@pytest.fixture
async def public_job(bot: Bot) -> AsyncIterator[Done]:  # noqa: F811
    async for done in finished_job(bot, private=False):
        yield done


@pytest.fixture
async def private_job(bot: Bot) -> AsyncIterator[Done]:  # noqa: F811
    async for done in finished_job(bot, private=True, per_page=4):
        yield done


async def test_the_tracking_comment_links_the_page_with_a_signed_token(public_job: Done) -> None:
    assert public_job.link.startswith(f"{PUBLIC_URL}/jobs/{public_job.job_id}?token=")
    expires, _, mac = public_job.link.partition("token=")[2].partition(".")
    assert int(expires) > time.time() + 6 * 24 * 3600 and len(mac) == 64


async def test_a_public_job_page_shows_phases_usage_and_links_without_a_token(
    public_job: Done,
) -> None:
    page = await public_job.http.get(f"/jobs/{public_job.job_id}")
    assert page.status_code == 200
    html = page.text
    for phase in ("spec", "scaffold", "generate", "test", "sign", "publish"):
        assert f'<tr><td>{phase}</td><td class="passed">passed</td>' in html
    assert '<a id="pr" href="https://github.com/Codertocat/Hello-World/pull/1">' in html
    comment = public_job.bot.github.bot_comments(ISSUE)[0]
    assert f'#issuecomment-{comment.id}"' in html
    assert '<table id="usage">' in html and "cost</td><td>$0.0000" in html
    assert page.headers["cache-control"] == "private, no-store"


async def test_a_private_job_page_needs_the_signed_link_and_says_why(private_job: Done) -> None:
    http, job_id = private_job.http, private_job.job_id
    bare = await http.get(f"/jobs/{job_id}")
    assert bare.status_code == 403
    assert "this job is of a private repository: open it from its tracking comment" in bare.text
    assert "phases" not in bare.text.lower().split("<body>")[1]

    opened = await http.get(private_job.link)
    assert opened.status_code == 200 and '<table id="phases">' in opened.text

    other = jobpage.sign_token(private_job.bot.settings, "0" * 32)
    wrong = await http.get(f"/jobs/{job_id}", params={"token": other})
    assert wrong.status_code == 403 and "not valid for this job" in wrong.text

    settings = private_job.bot.settings
    old = jobpage.sign_token(settings, job_id, now=time.time() - settings.job_page_token_ttl_s - 5)
    expired = await http.get(f"/jobs/{job_id}", params={"token": old})
    assert expired.status_code == 403 and "the link has expired" in expired.text

    forged = await http.get(f"/jobs/{job_id}", params={"token": f"{int(time.time()) + 99}.ab"})
    assert forged.status_code == 403 and "not valid for this job" in forged.text

    # Found in review: 5000 digits made int() raise, a 500 for anyone.
    huge = await http.get(f"/jobs/{job_id}", params={"token": "9" * 5000 + ".00"})
    assert huge.status_code == 403 and "malformed" in huge.text


async def test_an_unknown_job_is_a_404(public_job: Done) -> None:
    page = await public_job.http.get("/jobs/" + "f" * 32)
    assert page.status_code == 404 and "no such job" in page.text


async def test_the_log_is_paged_neutralised_and_shows_no_secret_or_host_path(
    private_job: Done,
) -> None:
    the_bot, job_id = private_job.bot, private_job.job_id
    workspace = the_bot.settings.work_dir / job_id / "plugin"
    await the_bot.store.add_event(
        job_id,
        EventKind.PHASE_NOTE,
        phase="test",
        message=f"FAIL {workspace}/src/index.ts\x1b[31m <script>alert(1)</script> {PAGE_SECRET}",
    )
    events = await the_bot.store.events(job_id)
    pages = -(-len(events) // 4)
    seen: list[str] = []
    for number in range(1, pages + 1):
        page = await private_job.http.get(f"{private_job.link}&page={number}")
        assert page.status_code == 200
        rows = re.findall(r"<tr><td>\d\d:\d\d:\d\d</td>.*?</tr>", page.text, re.S)
        assert len(rows) == min(4, len(events) - 4 * (number - 1))
        assert f"page {number} of {pages}" in page.text
        seen += rows
    assert len(seen) == len(events)
    last = (await private_job.http.get(f"{private_job.link}&page={pages}")).text
    assert "FAIL &lt;data&gt;/" in last and "/src/index.ts" in last
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in last and "<script>" not in last
    assert "\x1b" not in last
    settings = the_bot.settings
    for leaked in (PAGE_SECRET, str(settings.work_dir), str(settings.bot_data_dir)):
        assert leaked not in last


# ---------------------------------------------------------------------- in a browser


def browser_missing() -> str | None:
    if not Path("/usr/bin/chromium").exists():
        return "Debian's chromium is not installed (/usr/bin/chromium)"
    if not (BROWSER / "node_modules" / "playwright-core").is_dir():
        return "run `npm ci --ignore-scripts --prefix tests/fixtures/browser`"
    return None


async def test_the_job_page_in_headless_chromium(
    private_job: Done, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    missing = browser_missing()
    if missing is not None:
        if os.environ.get("CI") == "true":
            pytest.fail(missing)
        pytest.skip(missing)
    the_bot = private_job.bot
    # Bound here and handed to uvicorn: no free port looked up and bound later (another
    # process on the machine could take it in between).
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    port = int(listener.getsockname()[1])
    web = create_app(the_bot.settings, the_bot.desk, the_bot.app, jobs=the_bot.store)
    server = uvicorn.Server(uvicorn.Config(web, log_config=None))
    serving = asyncio.create_task(server.serve(sockets=[listener]))
    await eventually(lambda: server.started or serving.done(), what="uvicorn started")
    assert server.started, serving
    base = f"http://127.0.0.1:{port}"
    link = private_job.link.replace(PUBLIC_URL, base)
    out = Path(os.environ.get("TEST_OUTPUT_DIR", REPO_ROOT / "test-output")) / "job-page"
    out.mkdir(parents=True, exist_ok=True)
    try:
        node = await asyncio.create_subprocess_exec(
            shutil.which("node") or "node",
            str(BROWSER / "job_page.mjs"),
            str(tmp_path / "profile"),
            str(out),
            link,
            f"{base}/jobs/{private_job.job_id}",
            cwd=BROWSER,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        stdout, stderr = await asyncio.wait_for(node.communicate(), 90)
    finally:
        server.should_exit = True
        await serving
        listener.close()
    assert node.returncode == 0, stderr.decode()
    opened, refused = (json.loads(line) for line in stdout.decode().splitlines())
    assert opened["status"] == 200
    assert opened["title"] == f"plugin-bot job {private_job.job_id[:8]}"
    assert [row[:2] for row in opened["phases"]] == [
        [p, "passed"] for p in ("spec", "scaffold", "generate", "test", "sign", "publish")
    ]
    assert opened["links"]["pr"] == "https://github.com/Codertocat/Hello-World/pull/1"
    assert "#issuecomment-" in opened["links"]["comment"]
    assert opened["logRows"] == 4 and "page 1 of" in opened["text"]
    assert opened["scripts"] == 0
    assert str(the_bot.settings.work_dir) not in opened["text"]
    assert refused["status"] == 403 and "private repository" in refused["text"]
    screenshot = Path(opened["screenshot"])
    assert screenshot.stat().st_size > 10_000
    request.node.user_properties.append(("screenshot", str(screenshot)))

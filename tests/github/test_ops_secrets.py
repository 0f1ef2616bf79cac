"""No secret is ever written: a whole job (signed webhook → pull request on the stand-in)
with every secret setting set to a known value, and every output scanned for them: the
process's log lines (structlog and the standard library, at debug), stdout/stderr, the
comments (every edit), the pull request's title, body and files, the job's events and row,
and its job page."""

from __future__ import annotations

import base64
import io
import json
import logging
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import structlog
from sqlalchemy import update

from bot import logs
from bot.github.client import GitHubApp
from bot.github.desk import StoreDesk
from bot.github.dispatcher import Dispatcher
from bot.github.service import onboarding_for
from bot.jobs.tables import jobs
from bot.manifest import generate_key
from bot.pipeline import PHASE_NAMES
from bot.server import create_app
from bot.settings import Settings
from tests.fakes.github import FakeGitHub
from tests.github.conftest import SECRET, Clock
from tests.github.test_end_to_end import Bot

ANTHROPIC_KEY = "sk-ant-api03-KNOWN-anthropic-key-0123456789"
PASSPHRASE = "known-signing-passphrase-5678"
DB_PASSWORD = "known-db-password-9012"
PAGE_SECRET = "known-job-page-secret-3456"


def secrets_of(settings: Settings) -> list[str]:
    key = settings.app_private_key()
    assert key is not None
    body = "".join(line for line in key.splitlines() if not line.startswith("-----"))
    der = base64.b64decode(body)
    return [
        SECRET,
        "old-secret",
        ANTHROPIC_KEY,
        PASSPHRASE,
        DB_PASSWORD,
        PAGE_SECRET,
        body[:64],  # any line of the PEM
        body[-64:],
        der[:48].hex(),
        base64.b64encode(der[100:148]).decode(),
    ]


@pytest.fixture
async def secret_bot(
    settings: Settings, github: FakeGitHub, store: object, clock: Clock, tmp_path: Path
) -> AsyncIterator[tuple[Bot, io.StringIO]]:
    key_path, entry = generate_key(tmp_path / "keys", PASSPHRASE.encode())
    keys = tmp_path / "keys.json"
    keys.write_text(json.dumps([entry]))
    settings = settings.model_copy(
        update={
            "bot_data_dir": tmp_path / "data",
            "signing_key_path": key_path,
            "signing_key_passphrase": PASSPHRASE,
            "anthropic_api_key": ANTHROPIC_KEY,
            # Loopback, closed: nothing of this test can reach a model off this machine.
            "anthropic_base_url": "http://127.0.0.1:9",
            "database_url": f"postgresql+psycopg://bot:{DB_PASSWORD}@127.0.0.1:9/bot",
            "job_page_secret": PAGE_SECRET,
            "public_url": "http://127.0.0.1:8000",
            "sandbox": "none",
            "log_level": "debug",
        }
    )
    settings = Settings.model_validate(settings.model_dump())  # SecretStr fields typed again
    out = io.StringIO()
    logs.configure(settings, stream=out)
    app = GitHubApp(settings)
    desk = StoreDesk(store, settings)  # type: ignore[arg-type]
    github.collaborators["Codertocat"] = "write"
    dispatcher = Dispatcher(
        settings, app, desk, desk, phases=PHASE_NAMES, onboarding=onboarding_for(settings)
    )
    web = create_app(settings, desk, app, jobs=store)  # type: ignore[arg-type]
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=web), base_url="http://bot.test"
    ) as http:
        yield Bot(settings, github, store, desk, clock, app, http, dispatcher, keys), out  # type: ignore[arg-type]
    structlog.reset_defaults()
    logging.getLogger().handlers.clear()


async def test_a_whole_job_writes_no_secret_anywhere(
    secret_bot: tuple[Bot, io.StringIO], capfd: pytest.CaptureFixture[str]
) -> None:
    bot, log_stream = secret_bot
    assert (await bot.comment()).status_code == 202
    bad = await bot.http.post(
        "/webhook",
        content=b"{}",
        headers={
            "content-type": "application/json",
            "x-github-event": "issue_comment",
            "x-github-delivery": "bad-signature",
            "x-hub-signature-256": "sha256=" + "0" * 64,
        },
    )
    assert bad.status_code == 401
    await bot.dispatch()
    # The model is not what this test is about: the job runs the scaffold generator (the
    # key stays set, so every place that could print the settings would print it).
    async with bot.store.engine.begin() as conn:
        await conn.execute(update(jobs).values(generator="scaffold"))
    finished = await bot.work()
    assert finished.pr_url is not None and bot.github.pulls

    outputs: dict[str, str] = {"log": log_stream.getvalue()}
    captured = capfd.readouterr()
    outputs["stdout+stderr"] = captured.out + captured.err
    outputs["comments"] = "\n".join(
        body for c in bot.github.comments.values() for body in [*c.history, c.body]
    )
    outputs["pull requests"] = "\n".join(f"{p.title}\n{p.body}" for p in bot.github.pulls)
    outputs["pushed files"] = "\n".join(
        blob.decode("utf-8", "replace") for blob in bot.github.blobs.values()
    )
    events = await bot.store.events(finished.id)
    outputs["job events"] = json.dumps([e.to_json() for e in events], default=str)
    job = await bot.store.get_job(finished.id)
    outputs["job row"] = repr(job)
    page = await bot.http.get(f"/jobs/{finished.id}")
    assert page.status_code == 200
    outputs["job page"] = page.text
    outputs["requests to GitHub"] = json.dumps(bot.github.requests, default=str)

    # The scan is real: the log has the job's lines, with its context, at debug.
    lines = [json.loads(line) for line in outputs["log"].splitlines() if line.startswith("{")]
    claimed = [line for line in lines if line["event"] == "job.claimed"]
    assert claimed and claimed[0]["job_id"] == finished.id
    assert {"webhook.accepted", "phase.finished", "job.finished"} <= {e["event"] for e in lines}
    assert all(line["job_id"] == finished.id for line in lines if line["event"] == "phase.finished")
    [handled] = [line for line in lines if line["event"] == "command.handled"]
    assert handled["delivery_id"] == claimed[0]["delivery_id"]
    assert (handled["repository"], handled["installation_id"]) == ("Codertocat/Hello-World", 1)
    assert "Job page" in outputs["comments"]

    leaks = {
        (where, secret[:12])
        for where, text in outputs.items()
        for secret in secrets_of(bot.settings)
        if secret in text
    }
    assert leaks == set()

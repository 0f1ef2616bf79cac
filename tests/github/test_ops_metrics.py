"""/metrics, /healthz and /readyz through the real server over the real store."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from bot.github.client import GitHubApp
from bot.github.desk import StoreDesk
from bot.github.webhooks import signature_of
from bot.health import Readiness
from bot.jobs.limits import JobLimits
from bot.jobs.store import NewJob, Store
from bot.metrics import Metrics
from bot.sandbox import SandboxError
from bot.server import create_app
from bot.settings import Settings
from tests.fakes.github import FakeGitHub, webhook_example
from tests.github.conftest import SECRET, Clock

COMMAND = "/create-plugin a weather plugin that reports the current temperature for a city"


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def passing_probe() -> None:
    return None


def client_for(app: object) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://bot.test")  # type: ignore[arg-type]


@pytest.fixture
async def server(
    settings: Settings, store: Store, app: GitHubApp
) -> AsyncIterator[tuple[httpx.AsyncClient, Metrics]]:
    metrics = Metrics()
    readiness = Readiness(settings, store, passing_probe)
    web = create_app(
        settings, StoreDesk(store, settings), app, jobs=store, readiness=readiness, metrics=metrics
    )
    async with client_for(web) as http:
        yield http, metrics


async def send(http: httpx.AsyncClient, body: bytes, *, delivery: str, secret: str = SECRET) -> int:
    headers = {
        "content-type": "application/json",
        "x-github-event": "issue_comment",
        "x-github-delivery": delivery,
        "x-hub-signature-256": signature_of(secret, body),
    }
    return (await http.post("/webhook", content=body, headers=headers)).status_code


async def test_metrics_count_webhooks_by_event_and_outcome_with_ack_latency(
    server: tuple[httpx.AsyncClient, Metrics],
) -> None:
    http, _ = server
    payload = webhook_example("issue_comment", "created")
    payload["comment"]["body"] = COMMAND
    body = json.dumps(payload).encode()
    assert await send(http, body, delivery="d-1") == 202
    assert await send(http, body, delivery="d-1") == 200  # the same delivery again
    assert await send(http, body, delivery="d-2", secret="wrong") == 401
    payload["comment"]["body"] = "thanks!"
    assert await send(http, json.dumps(payload).encode(), delivery="d-3") == 200

    answer = await http.get("/metrics")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/plain")
    got = samples(answer.text)
    counted = {
        outcome: got[
            ("plugin_bot_webhooks_total", (("event", "issue_comment"), ("outcome", outcome)))
        ]
        for outcome in ("accepted", "duplicate", "refused", "ignored")
    }
    assert counted == {"accepted": 1, "duplicate": 1, "refused": 1, "ignored": 1}
    assert got[("plugin_bot_webhook_ack_seconds_count", ())] == 4
    # The accepted command became a queued job? Not yet: the dispatcher has not run.
    assert got[("plugin_bot_queue_depth", ())] == 0


async def test_queue_depth_and_the_oldest_queued_job_age_come_from_the_database(
    server: tuple[httpx.AsyncClient, Metrics], store: Store, clock: Clock, settings: Settings
) -> None:
    http, _ = server
    for n in range(3):
        await store.submit(NewJob(description=f"plugin {n}"), JobLimits.from_settings(settings))
        clock.now += dt.timedelta(minutes=1)
    got = samples((await http.get("/metrics")).text)
    assert got[("plugin_bot_queue_depth", ())] == 3
    assert got[("plugin_bot_queue_oldest_age_seconds", ())] == 180.0


def test_job_phase_token_cost_rate_limit_and_kill_metrics_are_exposed() -> None:
    metrics = Metrics()
    metrics.job_finished("succeeded", {"input_tokens": 1200, "output_tokens": 300}, 0.0216)
    metrics.job_finished("failed", {"input_tokens": 0}, 0.0)
    metrics.phase("build", "passed", 2.0)
    metrics.github_answer({"x-ratelimit-remaining": "4987", "x-ratelimit-resource": "core"})
    metrics.sandbox_killed("timeout")
    got = samples(metrics.render().decode())
    assert got[("plugin_bot_jobs_finished_total", (("state", "succeeded"),))] == 1
    assert got[("plugin_bot_jobs_finished_total", (("state", "failed"),))] == 1
    assert got[("plugin_bot_model_tokens_total", (("kind", "input"),))] == 1200
    assert got[("plugin_bot_model_tokens_total", (("kind", "output"),))] == 300
    assert got[("plugin_bot_model_cost_usd_total", ())] == pytest.approx(0.0216)
    assert got[("plugin_bot_phase_seconds_count", (("phase", "build"), ("state", "passed")))] == 1
    assert got[("plugin_bot_github_rate_limit_remaining", (("resource", "core"),))] == 4987
    assert got[("plugin_bot_sandbox_kills_total", (("reason", "timeout"),))] == 1


async def test_a_real_sandbox_timeout_is_counted_as_a_kill(tmp_path: Path) -> None:
    from bot.metrics import METRICS
    from bot.sandbox import DirectBackend, Limits, Sandbox

    def kills() -> float:
        value = METRICS.registry.get_sample_value(
            "plugin_bot_sandbox_kills_total", {"reason": "timeout"}
        )
        return value or 0.0

    before = kills()
    sandbox = Sandbox(backend=DirectBackend())
    result = await sandbox.run(["sleep", "5"], tmp_path, Limits(timeout_s=0.3, kill_grace_s=0.1))
    assert result.timed_out
    assert kills() == before + 1


async def test_github_answers_set_the_rate_limit_gauge(app: GitHubApp, github: FakeGitHub) -> None:
    from bot.metrics import METRICS

    async with app.installation(1) as inst:
        await inst.request("GET", "/repos/Codertocat/Hello-World")
    github_remaining = github.rate_remaining
    value = METRICS.registry.get_sample_value(
        "plugin_bot_github_rate_limit_remaining", {"resource": "core"}
    )
    assert value == github_remaining < 5000


async def test_healthz_answers_while_alive(server: tuple[httpx.AsyncClient, Metrics]) -> None:
    http, _ = server
    answer = await http.get("/healthz")
    assert (answer.status_code, answer.json()) == (200, {"ok": True})


async def test_readyz_is_ready_with_a_migrated_database_a_sandbox_and_credentials(
    server: tuple[httpx.AsyncClient, Metrics],
) -> None:
    http, _ = server
    answer = await http.get("/readyz")
    assert answer.status_code == 200
    body = answer.json()
    assert body["ready"] is True
    assert {name: check["ok"] for name, check in body["checks"].items()} == {
        "database": True,
        "sandbox": True,
        "github": True,
    }


async def test_readyz_is_not_ready_on_an_unmigrated_database_and_says_so(
    settings: Settings, tmp_path: Path, app: GitHubApp
) -> None:
    empty = Store.from_url(f"sqlite+aiosqlite:///{tmp_path / 'empty.db'}")
    web = create_app(
        settings,
        StoreDesk(empty, settings),
        app,
        jobs=empty,
        readiness=Readiness(settings, empty, passing_probe),
        metrics=Metrics(),
    )
    async with client_for(web) as http:
        answer = await http.get("/readyz")
    await empty.close()
    assert answer.status_code == 503
    database = answer.json()["checks"]["database"]
    assert database["ok"] is False
    assert "behind" in database["reason"] and "plugin-bot db upgrade" in database["reason"]


async def test_readyz_is_not_ready_when_the_sandbox_probe_fails(
    settings: Settings, store: Store, app: GitHubApp
) -> None:
    def broken() -> None:
        raise SandboxError("the bwrap sandbox does not work here (no user namespaces)")

    web = create_app(
        settings,
        StoreDesk(store, settings),
        app,
        jobs=store,
        readiness=Readiness(settings, store, broken),
        metrics=Metrics(),
    )
    async with client_for(web) as http:
        answer = await http.get("/readyz")
    assert answer.status_code == 503
    assert answer.json()["checks"]["sandbox"] == {
        "ok": False,
        "reason": "the bwrap sandbox does not work here (no user namespaces)",
    }


async def test_readyz_is_not_ready_when_the_app_key_does_not_load(
    settings: Settings, store: Store, tmp_path: Path
) -> None:
    broken = settings.model_copy(
        update={"github_app_private_key": None, "github_app_private_key_path": tmp_path / "key.pem"}
    )
    (tmp_path / "key.pem").write_text("-----BEGIN PRIVATE KEY-----\nnot a key\n")
    web = create_app(
        broken,
        StoreDesk(store, broken),
        None,
        jobs=store,
        readiness=Readiness(broken, store, passing_probe),
        metrics=Metrics(),
    )
    async with client_for(web) as http:
        answer = await http.get("/readyz")
    assert answer.status_code == 503
    github = answer.json()["checks"]["github"]
    assert github == {"ok": False, "reason": "the App's private key is not a PEM private key"}
    assert answer.json()["checks"]["database"]["ok"] is True

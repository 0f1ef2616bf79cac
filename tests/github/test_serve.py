"""``plugin-bot serve``: what it refuses to start without, and a real start on loopback."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from bot.cli import main
from bot.github.webhooks import signature_of
from bot.jobs.migrations import upgrade
from bot.jobs.store import Store
from bot.jobs.tables import commands
from tests.conftest import eventually
from tests.fakes.github import webhook_example


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (
            {"GITHUB_WEBHOOK_SECRET": ""},
            "plugin-bot serve needs GITHUB_WEBHOOK_SECRET (one or more, comma-separated)",
        ),
        (
            {"SANDBOX": "none"},
            "plugin-bot serve refuses SANDBOX=none: untrusted code must run in the sandbox",
        ),
        (
            {"GITHUB_APP_ID": ""},
            "plugin-bot serve needs GITHUB_APP_ID and GITHUB_APP_PRIVATE_KEY "
            "(or GITHUB_APP_PRIVATE_KEY_PATH)",
        ),
    ],
)
def test_serve_refuses_to_start(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    app_key: tuple[str, bytes],
    env: dict[str, str],
    message: str,
) -> None:
    base = {"GITHUB_APP_ID": "4242", "GITHUB_APP_PRIVATE_KEY": app_key[0]}
    base["GITHUB_WEBHOOK_SECRET"] = "s"
    for name, value in {**base, **env}.items():
        if value:
            monkeypatch.setenv(name, value)
        else:
            monkeypatch.delenv(name, raising=False)
    assert main(["serve", "--port", "1"]) == 2
    assert message in " ".join(capsys.readouterr().out.split())


@contextlib.contextmanager
def _closed_port() -> Iterator[int]:
    """A loopback port that refuses connections while the block runs: bound, never
    listening (a port only looked up and let go could be taken by anyone meanwhile)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield int(sock.getsockname()[1])


def _bound_port(log: Path, process: subprocess.Popen[bytes]) -> int | None:
    """The port ``serve --port 0`` got from the kernel, once its log says it listens."""
    assert process.poll() is None, log.read_text()
    found = re.search(r"Uvicorn running on http://127\.0\.0\.1:(\d+)", log.read_text())
    return int(found[1]) if found else None


@contextlib.asynccontextmanager
async def serving(app_key: tuple[str, bytes]) -> AsyncIterator[tuple[httpx.AsyncClient, Served]]:
    """``plugin-bot serve`` on a loopback port over a fresh SQLite database, once it
    answers /healthz; its output goes to a file (a pipe nobody drains would stall it).
    Port 0: the server binds a free port itself and logs it (no port chosen here and
    bound there later, which another process on the machine could take in between)."""
    with _closed_port() as api_port:
        async with _serving(app_key, api_port) as served:
            yield served


@contextlib.asynccontextmanager
async def _serving(
    app_key: tuple[str, bytes], api_port: int
) -> AsyncIterator[tuple[httpx.AsyncClient, Served]]:
    # Under /tmp, mode 0755: the sandbox uid must reach the data dir (pytest's is 0700).
    data = Path(tempfile.mkdtemp(prefix="plugin-bot-serve-", dir="/tmp"))
    data.chmod(0o755)
    url = f"sqlite+aiosqlite:///{data / 'plugin-bot.db'}"
    store = Store.from_url(url)
    await upgrade(store)
    await store.close()
    env = {
        "PATH": os.environ["PATH"],
        "BOT_DATA_DIR": str(data),
        "DATABASE_URL": url,
        "GITHUB_APP_ID": "4242",
        "GITHUB_APP_PRIVATE_KEY": app_key[0],
        "GITHUB_WEBHOOK_SECRET": SERVE_SECRET,
        # Nothing may leave the machine: the API is a closed loopback port.
        "GITHUB_API_URL": f"http://127.0.0.1:{api_port}/api/v3",
    }
    output = (data / "serve.log").open("wb")
    process = subprocess.Popen(  # noqa: ASYNC220 - the server lives for the whole test
        [sys.executable, "-m", "bot", "serve", "--port", "0"],
        env=env,
        stdout=output,
        stderr=subprocess.STDOUT,
    )
    served = Served(process, url, data / "serve.log")
    try:
        port = await eventually(
            lambda: _bound_port(served.log, process), within=60, every=0.2, what="serve listening"
        )
        # Generous: forty deliveries at once on a loaded machine.
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=60) as http:
            health = await http.get("/healthz")
            assert (health.status_code, health.json()) == (200, {"ok": True})
            yield http, served
    finally:
        if process.poll() is None:
            process.terminate()
            process.wait(timeout=20)
        output.close()
        shutil.rmtree(data, ignore_errors=True)


@dataclass
class Served:
    process: subprocess.Popen[bytes]
    database_url: str
    log: Path


SERVE_SECRET = "s3cret"


def signed(event: str, delivery: str, payload: dict[str, Any]) -> tuple[bytes, dict[str, str]]:
    body = json.dumps(payload).encode()
    return body, {
        "content-type": "application/json",
        "x-github-event": event,
        "x-github-delivery": delivery,
        "x-hub-signature-256": signature_of(SERVE_SECRET, body),
    }


async def test_serve_answers_healthz_and_a_signed_ping(app_key: tuple[str, bytes]) -> None:
    async with serving(app_key) as (http, _):
        ping = webhook_example("ping", None, with_installation=False)  # type: ignore[arg-type]
        body, headers = signed("ping", "d-ping", ping)
        answer = await http.post("/webhook", content=body, headers=headers)
        assert answer.status_code == 200


async def test_every_acknowledged_delivery_survives_the_server_being_killed(
    app_key: tuple[str, bytes],
) -> None:
    async with serving(app_key) as (http, served):
        payload = webhook_example("issue_comment", "created")
        payload["comment"]["body"] = "/create-plugin a weather plugin"
        deliveries = [f"d-kill-{i}" for i in range(40)]

        async def send(delivery: str) -> tuple[str, int]:
            body, headers = signed("issue_comment", delivery, payload)
            answer = await http.post("/webhook", content=body, headers=headers)
            return delivery, answer.status_code

        answers = await asyncio.gather(*(send(d) for d in deliveries))
        # Killed the moment the last answer is in: no shutdown, no flush, no goodbye.
        served.process.send_signal(signal.SIGKILL)
        served.process.wait(timeout=20)
        acknowledged = sorted(d for d, status in answers if status == 202)
        assert acknowledged == sorted(deliveries)
        store = Store.from_url(served.database_url)
        try:
            async with store.engine.begin() as conn:
                rows = await conn.execute(
                    select(commands.c.delivery_id).where(commands.c.delivery_id.in_(deliveries))
                )
                assert sorted(rows.scalars()) == acknowledged
        finally:
            await store.close()

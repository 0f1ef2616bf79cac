"""``plugin-bot serve``: what it refuses to start without, and a real start on loopback."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import pytest

from bot.cli import main
from bot.github.webhooks import signature_of
from bot.jobs.migrations import upgrade
from bot.jobs.store import Store
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


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_serve_answers_healthz_and_a_signed_ping(app_key: tuple[str, bytes]) -> None:
    # Under /tmp, mode 0755: the sandbox uid must reach the data dir (pytest's is 0700).
    data = Path(tempfile.mkdtemp(prefix="plugin-bot-serve-", dir="/tmp"))
    data.chmod(0o755)
    url = f"sqlite+aiosqlite:///{data / 'plugin-bot.db'}"
    store = Store.from_url(url)
    await upgrade(store)
    await store.close()
    port = _free_port()
    env = {
        "PATH": os.environ["PATH"],
        "BOT_DATA_DIR": str(data),
        "DATABASE_URL": url,
        "GITHUB_APP_ID": "4242",
        "GITHUB_APP_PRIVATE_KEY": app_key[0],
        "GITHUB_WEBHOOK_SECRET": "s3cret",
        # Nothing may leave the machine: the API is a closed loopback port.
        "GITHUB_API_URL": f"http://127.0.0.1:{_free_port()}/api/v3",
    }
    process = subprocess.Popen(  # noqa: ASYNC220 - the server lives for the whole test
        [sys.executable, "-m", "bot", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
            deadline = time.monotonic() + 30
            while True:
                try:
                    health = await http.get("/healthz")
                    break
                except httpx.TransportError:
                    assert process.poll() is None, process.stdout.read() if process.stdout else ""
                    assert time.monotonic() < deadline, "serve did not start"
                    await asyncio.sleep(0.2)
            assert (health.status_code, health.json()) == (200, {"ok": True})
            body = json.dumps(webhook_example("ping", None, with_installation=False)).encode()  # type: ignore[arg-type]
            ping = await http.post(
                "/webhook",
                content=body,
                headers={
                    "content-type": "application/json",
                    "x-github-event": "ping",
                    "x-github-delivery": "d-ping",
                    "x-hub-signature-256": signature_of("s3cret", body),
                },
            )
            assert ping.status_code == 200
    finally:
        process.terminate()
        process.wait(timeout=20)
        shutil.rmtree(data, ignore_errors=True)

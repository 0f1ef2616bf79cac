"""The sandbox suites' box: a real bubblewrap sandbox from the settings, a data dir with
secrets beside the workspace, and helpers to look for processes on the host."""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

from bot.sandbox import Limits, Result, Sandbox, sandbox_from_settings
from bot.settings import Settings
from tests.conftest import require_bwrap

PY = "/usr/bin/python3"
CANARY = f"canary-{uuid.uuid4().hex}"
SECRET_KEY = f"-----BEGIN PRIVATE KEY-----\n{CANARY}\n-----END PRIVATE KEY-----\n"


@dataclass
class Box:
    sandbox: Sandbox
    workspace: Path
    data_dir: Path
    key: Path
    limits: Limits

    async def py(self, code: str, limits: Limits | None = None) -> Result:
        return await self.sandbox.run([PY, "-c", code], self.workspace, limits or self.limits)


def processes_with(marker: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if marker.encode() in cmdline:
            found.append(int(entry.name))
    return found


@pytest.fixture
def box(monkeypatch: pytest.MonkeyPatch) -> Iterator[Box]:
    require_bwrap()
    # Under /tmp with mode 0755: the sandbox uid must be able to reach the workspace
    # (pytest's tmp_path lives in a 0700 directory of root's).
    base = Path(tempfile.mkdtemp(prefix="plugin-bot-escape-", dir="/tmp"))
    os.chmod(base, 0o755)
    data_dir = base / "data"
    data_dir.mkdir()
    key = data_dir / "signing-key.pem"
    key.write_text(SECRET_KEY)
    key.chmod(0o644)  # readable by anyone on the host: only the mount hides it
    (data_dir / "plugin-bot.db").write_text(CANARY)
    workspace = data_dir / "work" / "job-1"
    workspace.mkdir(parents=True)
    monkeypatch.setenv("ANTHROPIC_API_KEY", f"sk-{CANARY}")
    monkeypatch.setenv("GITHUB_WEBHOOK_SECRET", CANARY)
    settings = Settings(bot_data_dir=data_dir, sandbox="bwrap")
    sandbox = sandbox_from_settings(settings)
    assert sandbox.backend.name == "bwrap"
    limits = replace(sandbox.limits, timeout_s=20, kill_grace_s=0.5)
    try:
        yield Box(sandbox, workspace, data_dir, key, limits)
    finally:
        shutil.rmtree(base, ignore_errors=True)

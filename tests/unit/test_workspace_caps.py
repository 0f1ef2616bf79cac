"""A job whose commands fill its workspace past the per-job caps fails with the reason."""

from __future__ import annotations

import asyncio
import sys
from dataclasses import replace
from pathlib import Path

from bot.pipeline import run_phases, verify
from bot.quota import measure, over_cap
from bot.sandbox import DirectBackend, Sandbox
from tests.unit.test_agent_loop import make_ctx

ENDLESS_FILES = "import itertools\nfor i in itertools.count():\n    open(f'f{i}', 'w').close()\n"


async def test_a_build_past_the_file_cap_fails_the_phase_saying_which_cap(tmp_path: Path) -> None:
    ctx = make_ctx(tmp_path, None, sandbox=Sandbox(backend=DirectBackend()))
    ctx.tools.limits = replace(ctx.tools.limits, workspace_files=500, workspace_poll_s=0.1)
    ctx.tools.pack = replace(ctx.tools.pack, build=(sys.executable, "-c", ENDLESS_FILES))
    # Endless: only the cap can stop it before the command's own timeout (60 s).
    passed = await asyncio.wait_for(run_phases(ctx, [("build", verify.build_phase)]), 50)
    assert not passed
    record = ctx.result.records["build"]
    assert record.state == "failed"
    assert record.error.startswith("the build failed:")
    assert "was stopped: the workspace holds more than 500 files" in record.error


def test_hard_links_count_once_for_bytes_and_every_name_for_files(tmp_path: Path) -> None:
    blob = tmp_path / "blob"
    blob.write_bytes(b"x" * 100_000)
    for i in range(5):
        (tmp_path / f"link{i}").hardlink_to(blob)
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "to-blob").symlink_to(blob)
    usage = measure(tmp_path)
    assert usage.files == 8  # blob, 5 links, sub, the symlink
    assert 100_000 <= usage.bytes < 200_000  # one inode's bytes, not six
    assert over_cap(tmp_path, None, 7) is not None and over_cap(tmp_path, None, 8) is None
    assert over_cap(tmp_path, 50_000, None) is not None

"""Sandbox.start: a long-lived run keeps run's guarantees (deadline, cancel, whole group)."""

import asyncio
from pathlib import Path

import pytest

from bot.sandbox import Limits, Sandbox
from tests.conftest import eventually


def group_gone(pgid: int) -> bool:
    """No process of the group still runs (a zombie waiting for its reaper does not)."""
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[2]) == pgid and fields[0] != "Z":
                return False
    return True


async def test_a_live_run_is_killed_at_its_deadline(tmp_path: Path) -> None:
    live = await Sandbox().start(["sleep", "30"], tmp_path, Limits(timeout_s=0.3, kill_grace_s=0.1))
    await asyncio.wait_for(live.exited.wait(), 60)
    result = await live.stop()
    assert result.timed_out and not result.cancelled and not result.ok


async def test_a_cancel_reaches_a_live_run(tmp_path: Path) -> None:
    cancel = asyncio.Event()
    live = await Sandbox().start(["sleep", "30"], tmp_path, Limits(kill_grace_s=0.1), cancel=cancel)
    await asyncio.sleep(0.2)
    assert live.alive
    cancel.set()
    await asyncio.wait_for(live.exited.wait(), 60)
    result = await live.stop()
    assert result.cancelled and not result.timed_out


async def test_stop_ends_the_whole_process_group_and_keeps_the_output(tmp_path: Path) -> None:
    script = "echo started; sleep 600 & sleep 600"
    live = await Sandbox().start(["sh", "-c", script], tmp_path, Limits(kill_grace_s=0.1))
    await eventually(lambda: "started" in live.output(), what="the script started")
    result = await live.stop()
    assert "started" in result.output
    # The group was sent SIGKILL; its background sleep (600 s) dies a moment later.
    await eventually(lambda: group_gone(live.pid), what=f"process group {live.pid} gone")
    assert await live.stop() is result  # stopping twice is harmless


async def test_a_live_run_that_cannot_start_says_why(tmp_path: Path) -> None:
    from bot.sandbox import SandboxError

    with pytest.raises(SandboxError, match="cannot start"):
        await Sandbox().start(["/nonexistent/program"], tmp_path)


async def test_a_live_run_past_the_workspace_cap_is_stopped_and_says_why(tmp_path: Path) -> None:
    limits = Limits(workspace_bytes=10_000, workspace_poll_s=0.1, kill_grace_s=0.1)
    script = "head -c 50000 /dev/zero > big; sleep 30"
    live = await Sandbox().start(["sh", "-c", script], tmp_path, limits)
    await asyncio.wait_for(live.exited.wait(), 60)
    result = await live.stop()
    assert result.workspace_exceeded is not None and not result.ok
    assert "per-job cap" in result.describe_outcome()

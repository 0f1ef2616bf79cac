"""Limits that rlimits alone do not give: a run's memory and processes as a whole (its
cgroup), a read-only /dev with a size-capped /dev/shm, and the per-job workspace caps."""

from __future__ import annotations

import asyncio
import os
from dataclasses import replace
from pathlib import Path

from bot.cgroups import BASE_NAME, CgroupHost
from bot.sandbox import Limits
from bot.settings import Settings
from tests.conftest import IN_CI, eventually, require, require_root
from tests.sandbox.conftest import Box

MIB = 1024**2

TOUCH_SHARED = (
    "import mmap, sys\n"
    "size = int(sys.argv[1])\n"
    "m = mmap.mmap(-1, size, flags=mmap.MAP_SHARED)\n"
    "print('MAPPED', flush=True)\n"
    "for i in range(0, size, 4096):\n"
    "    m[i] = 1\n"
    "print('TOUCHED', flush=True)\n"
)


def require_cgroups(box: Box) -> CgroupHost:
    # This machine (and CI, as root) has cgroup v1 memory and pids writable: prove that path.
    if os.geteuid() == 0 or IN_CI:
        require_root()
    require(box.sandbox.cgroups is not None, "no cgroup the bot may create on this host")
    assert box.sandbox.cgroups is not None
    return box.sandbox.cgroups


def run_cgroups(host: CgroupHost) -> list[Path]:
    """This process's run cgroups (another suite on the machine, or a killed one's
    leftovers, may have its own beside them)."""
    mine = f"run-{os.getpid()}-"
    return [d for parent in host.parents if parent.is_dir() for d in parent.iterdir()
            if d.is_dir() and d.name.startswith(mine)]  # fmt: skip


async def test_a_shared_mapping_past_the_memory_cap_is_killed(box: Box) -> None:
    host = require_cgroups(box)
    limits = replace(box.limits, memory_bytes=256 * MIB)
    result = await box.sandbox.run(
        ["/usr/bin/python3", "-c", TOUCH_SHARED, str(1536 * MIB)], box.workspace, limits
    )
    # It started (the mapping itself is allowed: MAP_SHARED is no data segment) and was
    # killed while touching it, by the cgroup: rlimits never see this memory.
    assert "MAPPED" in result.output, result.output
    assert "TOUCHED" not in result.output
    assert not result.ok and result.memory_capped
    assert "memory cap" in result.describe_outcome()
    assert run_cgroups(host) == []  # removed after the run


async def test_the_same_mapping_under_the_cap_is_fine(box: Box) -> None:
    require_cgroups(box)
    limits = replace(box.limits, memory_bytes=256 * MIB)
    result = await box.sandbox.run(
        ["/usr/bin/python3", "-c", TOUCH_SHARED, str(64 * MIB)], box.workspace, limits
    )
    assert result.ok and "TOUCHED" in result.output and not result.memory_capped


async def test_a_run_is_in_its_own_cgroup_with_the_caps(box: Box) -> None:
    host = require_cgroups(box)
    limits = replace(box.limits, memory_bytes=300 * MIB, processes=77)
    # It runs until the test has looked at its cgroup (the file appears in its workspace).
    code = (
        "import os, time\nprint(open('/proc/self/cgroup').read(), flush=True)\n"
        "deadline = time.monotonic() + 60\n"
        "while not os.path.exists('looked') and time.monotonic() < deadline: time.sleep(0.02)\n"
    )
    running = asyncio.ensure_future(
        box.sandbox.run(["/usr/bin/python3", "-c", code], box.workspace, limits)
    )
    groups: list[Path] = []
    pids: set[int] = set()

    def in_its_cgroups() -> bool:
        nonlocal groups, pids
        groups = run_cgroups(host)
        try:
            pids = {int(p) for d in groups for p in (d / "cgroup.procs").read_text().split()}
        except FileNotFoundError:  # removed between the listing and the read
            pids = set()
        return len(groups) == len(host.parents) and bool(pids)

    try:
        await eventually(in_its_cgroups, what="the run in its cgroups")
        caps = {}
        for d in groups:
            for name in ("memory.limit_in_bytes", "memory.max", "pids.max"):
                if (d / name).exists():
                    caps[name] = (d / name).read_text().strip()
    finally:
        (box.workspace / "looked").write_text("")
    result = await running
    assert result.ok, result.output
    assert caps.get("pids.max") == "77"
    assert caps.get("memory.limit_in_bytes", caps.get("memory.max")) == str(300 * MIB)
    assert pids, "the run's processes were not in its cgroup"
    assert run_cgroups(host) == []


async def test_dev_is_read_only_and_dev_shm_is_capped(box: Box) -> None:
    code = (
        "import errno\n"
        "try:\n"
        "    open('/dev/planted', 'w'); print('PLANTED')\n"
        "except OSError as e:\n"
        "    print('dev', errno.errorcode[e.errno])\n"
        "open('/dev/null', 'w').write('still works')\n"
        "n = 0\n"
        "try:\n"
        "    with open('/dev/shm/fill', 'wb') as f:\n"
        "        for n in range(1, 1000):\n"
        "            f.write(b'x' * 1048576); f.flush()\n"
        "    print('FILLED')\n"
        "except OSError as e:\n"
        "    print('shm', errno.errorcode[e.errno], n)\n"
    )
    limits = replace(box.limits, shm_bytes=16 * MIB)
    result = await box.py(code, limits)
    assert result.ok, result.output
    assert "dev EROFS" in result.output and "PLANTED" not in result.output
    assert "shm ENOSPC" in result.output, result.output
    assert int(result.output.split()[-1]) <= 17


async def test_a_workspace_past_its_file_cap_stops_the_run_with_the_reason(box: Box) -> None:
    code = (
        "import itertools, time\n"
        "for i in itertools.count():\n"
        "    open(f'f{i}', 'w').close()\n"
        "    if i % 500 == 0: time.sleep(0.01)\n"
    )
    limits = replace(box.limits, workspace_files=2000, workspace_poll_s=0.2, timeout_s=30)
    result = await box.py(code, limits)
    assert not result.ok and not result.timed_out and not result.cancelled
    assert result.workspace_exceeded is not None
    assert "more than 2000 files" in result.describe_outcome()


async def test_a_workspace_past_its_byte_cap_fails_even_when_the_command_exits_0(
    box: Box,
) -> None:
    code = "open('blob', 'wb').write(b'x' * (12 * 1048576))\n"
    limits = replace(box.limits, workspace_bytes=8 * MIB, workspace_poll_s=30)
    result = await box.py(code, limits)
    assert result.exit_code == 0  # the command itself finished before any look
    assert not result.ok
    assert "more than the per-job cap of 8 MiB" in result.describe_outcome()


async def test_a_workspace_within_its_caps_is_untouched(box: Box) -> None:
    code = "for i in range(50): open(f'f{i}', 'w').write('x' * 1000)\n"
    limits = replace(box.limits, workspace_files=200, workspace_bytes=8 * MIB)
    result = await box.py(code, limits)
    assert result.ok and result.workspace_exceeded is None


def test_cgroups_are_detected_here_when_root() -> None:
    require_root()
    host = CgroupHost.detect("required")
    assert host is not None
    assert all(p.name == BASE_NAME for p in host.parents) or host.version == 2


def test_limits_from_settings_carry_the_new_caps() -> None:
    limits = Limits.from_settings(
        Settings(sandbox_shm_bytes=3 * MIB, workspace_max_bytes=5 * MIB, workspace_max_files=700)
    )
    assert (limits.shm_bytes, limits.workspace_bytes, limits.workspace_files) == (
        3 * MIB, 5 * MIB, 700
    )  # fmt: skip

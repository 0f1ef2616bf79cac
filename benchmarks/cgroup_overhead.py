"""What a per-run cgroup costs a command: ``true`` in bubblewrap with SANDBOX_CGROUPS=off
(the baseline) and auto (a cgroup made, joined, emptied and removed per run).

    .venv/bin/python benchmarks/cgroup_overhead.py [--runs 15]
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from bot.sandbox import sandbox_from_settings
from bot.settings import Settings


async def median_s(mode: str, base: Path, runs: int) -> tuple[bool, float]:
    sandbox = sandbox_from_settings(Settings(bot_data_dir=base, sandbox_cgroups=mode))  # type: ignore[arg-type]
    workdir = base / "work"
    workdir.mkdir(exist_ok=True)
    walls = []
    for _ in range(runs):
        started = time.monotonic()
        await sandbox.run(["true"], workdir)
        walls.append(time.monotonic() - started)
    return sandbox.cgroups is not None, statistics.median(walls)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    base = Path(tempfile.mkdtemp(prefix="plugin-bot-bench-", dir="/tmp"))
    base.chmod(0o755)
    try:
        results = {mode: await median_s(mode, base, args.runs) for mode in ("off", "auto")}
    finally:
        shutil.rmtree(base, ignore_errors=True)
    baseline = results["off"][1]
    print(f"{'SANDBOX_CGROUPS':<16} {'cgroup':>7} {'median s':>9} {'x off':>6}")
    for mode, (has, wall) in results.items():
        print(f"{mode:<16} {has!s:>7} {wall:>9.3f} {wall / baseline:>6.2f}")


if __name__ == "__main__":
    asyncio.run(main())

"""How soon a run returns after its timeout or cancel, against a run that exits by itself
(moved here from timed unit assertions).

    .venv/bin/python benchmarks/kill_latency.py [--runs 5] [--sandbox none|bwrap]

Cases: the baseline (``true``), a timeout of 1 s on ``sleep``, a timeout of 1 s on a
program that ignores SIGTERM (so the 0.5 s grace and SIGKILL are needed), and a cancel
after 1 s. Prints the median wall time, the part after the deadline (the kill latency)
and the ratio of the wall time to the baseline's.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

from bot.sandbox import Limits, Sandbox, sandbox_from_settings
from bot.settings import Settings

IGNORE_TERM = "import signal, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\ntime.sleep(600)"


async def one(sandbox: Sandbox, case: str, workdir: Path) -> float:
    py = "/usr/bin/python3" if sandbox.backend.name == "bwrap" else sys.executable
    limits = Limits(timeout_s=1.0, kill_grace_s=0.5)
    cancel: asyncio.Event | None = None
    argv: list[str] = {
        "baseline: true": ["true"],
        "timeout: sleep": ["sleep", "600"],
        "timeout: ignores TERM": [py, "-c", IGNORE_TERM],
        "cancel: sleep": ["sleep", "600"],
    }[case]
    if case.startswith("cancel"):
        cancel = asyncio.Event()
        asyncio.get_running_loop().call_later(1.0, cancel.set)
        limits = Limits(timeout_s=60, kill_grace_s=0.5)
    started = time.monotonic()
    await sandbox.run(argv, workdir, limits, cancel=cancel)
    return time.monotonic() - started


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--sandbox", choices=["none", "bwrap"], default="none")
    args = parser.parse_args()
    base_dir = Path(tempfile.mkdtemp(prefix="plugin-bot-bench-", dir="/tmp"))
    base_dir.chmod(0o755)
    settings = Settings(bot_data_dir=base_dir, sandbox=args.sandbox)
    sandbox = sandbox_from_settings(settings) if args.sandbox == "bwrap" else Sandbox()
    workdir = base_dir / "work"
    workdir.mkdir()
    cases = ["baseline: true", "timeout: sleep", "timeout: ignores TERM", "cancel: sleep"]
    medians = {}
    for case in cases:
        walls = [await one(sandbox, case, workdir) for _ in range(args.runs)]
        medians[case] = statistics.median(walls)
    base = medians["baseline: true"]
    print(f"sandbox={args.sandbox} runs={args.runs}")
    print(f"{'case':<24} {'median s':>9} {'after deadline s':>17} {'x baseline':>11}")
    for case in cases:
        after = medians[case] - (0 if case.startswith("baseline") else 1.0)
        print(f"{case:<24} {medians[case]:>9.3f} {after:>17.3f} {medians[case] / base:>11.1f}")


if __name__ == "__main__":
    asyncio.run(main())

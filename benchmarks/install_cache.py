"""Cold vs warm `create`: wall time per phase, and whether the install ran npm."""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import tempfile
from pathlib import Path
from typing import Literal

from bot.runner import Outcome, Runner
from bot.settings import Settings

DESCRIPTIONS = [
    "a weather plugin that reports the current temperature for a city",
    "a plugin that translates a message into a given language",
    "a plugin that calculates a tip for an amount",
    "a todo list plugin that lets users add tasks",
    "a plugin that sends a greeting to a user",
    "a stock plugin that reports the price of a symbol",
    "a plugin that converts a temperature into fahrenheit",
]
PHASES = ["spec", "scaffold", "generate", "install", "build", "test"]


async def one(jobs: Runner, description: str, out: Path) -> Outcome:
    outcome = await jobs.create(description, out=out, overwrite=True)
    if not outcome.ok:
        failed = outcome.ctx.failed_phase
        raise SystemExit(f"create failed: {failed}")
    return outcome


def row(label: str, outcomes: list[Outcome]) -> dict[str, float]:
    med = {p: statistics.median(o.ctx.result.records[p].wall_s for o in outcomes) for p in PHASES}
    npm_runs = sorted(
        {len(o.ctx.result.install.commands) for o in outcomes if o.ctx.result.install}
    )
    total = statistics.median(o.wall_s for o in outcomes)
    cells = "  ".join(f"{med[p]:7.2f}" for p in PHASES)
    print(f"{label:<9} {len(outcomes):>4}  {cells}  {total:7.2f}  {npm_runs}")
    return med


async def main(runs: int, sandbox: Literal["bwrap", "none"]) -> None:
    root = Path(tempfile.mkdtemp(prefix="plugin-bot-bench-", dir="/tmp"))
    root.chmod(0o755)  # the sandbox uid must reach the workspaces
    try:
        settings = Settings(bot_data_dir=root / "data", sandbox=sandbox)
        jobs = Runner(settings)
        out = root / "out"
        print(
            f"{'scenario':<9} {'runs':>4}  "
            + "  ".join(f"{p:>7}" for p in PHASES)
            + "    total  npm commands in install"
        )
        cold = [await one(jobs, DESCRIPTIONS[0], out)]
        cold_med = row("cold", cold)

        npm_warm = []
        for i in range(runs):
            shutil.rmtree(settings.cache_dir / "node_modules")
            npm_warm.append(await one(jobs, DESCRIPTIONS[(i + 1) % len(DESCRIPTIONS)], out))
        npm_med = row("npm-warm", npm_warm)

        warm = [
            await one(jobs, DESCRIPTIONS[(i + 1) % len(DESCRIPTIONS)], out) for i in range(runs)
        ]
        warm_med = row("warm", warm)
        print()
        print(f"install warm/cold     = {warm_med['install'] / cold_med['install']:.3f}")
        print(f"install npm-warm/cold = {npm_med['install'] / cold_med['install']:.3f}")
        print(
            f"warm install median   = {warm_med['install']:.2f}s "
            f"(max {max(o.ctx.result.records['install'].wall_s for o in warm):.2f}s)"
        )
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--sandbox", choices=["bwrap", "none"], default="bwrap")
    args = parser.parse_args()
    asyncio.run(main(args.runs, args.sandbox))

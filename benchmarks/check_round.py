"""One check round (build + test, what the agent's run_checks repeats) at 1, 10, 40 components.

For each size the scaffold is rendered and installed once, then rounds alternate between
today's commands (the pack as it was: ``npm run build`` = ``tsc --noEmit && tsup`` with the
config files in the type-check, ``npm run test`` with vitest isolating every file, PGlite
running initdb and plugin-sql's migrations in every round) and the pack's current commands
(``node scripts/check.mjs``: one TypeScript pass and an esbuild bundle; vitest from
node_modules without per-file isolation; PGlite from the data directory the dependency
cache prepared once per lockfile). Both run in the bot's sandbox
exactly as ``sandbox_checks`` runs them. Printed: medians per command, the round, the ratio
new/today, and the tests each run reported (they must be equal: no test is skipped).

    .venv/bin/python benchmarks/check_round.py --runs 5 [--sizes 1,10,40] [--sandbox bwrap|none]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import statistics
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

from bot.llm import Meter
from bot.pack import TemplatePack, render_pack
from bot.pipeline.context import JobContext, JobRequest
from bot.pipeline.generate import ScaffoldGenerator
from bot.pipeline.verify import run_tests
from bot.runner import Runner, SilentReporter, new_job_id
from bot.settings import Settings
from bot.spec.schema import PluginSpec, validate_spec
from bot.spec.writers import KeywordSpecWriter

TODAY_BUILD = ("npm", "run", "--ignore-scripts", "build")
TODAY_TEST = (
    "npm",
    "run",
    "--ignore-scripts",
    "test",
    "--",
    "--reporter=default",
    "--reporter=json",
    "--outputFile.json={results_json}",
)
# What the pack's tsconfig and vitest config were before the fast checks.
TODAY_INCLUDE = ["src", "__tests__", "tsup.config.ts", "vitest.config.ts"]

KINDS = ("actions", "providers", "services", "evaluators")
PREPARED = ".plugin-bot"  # what the pack's prepare script adds to the dependency tree


def spec_of(size: int) -> PluginSpec:
    """``size`` components, kinds in turn; actions take a parameter, services a method."""
    data: dict[str, Any] = {"name": f"plugin-bench-{size}", "description": "Benchmark plugin."}
    lists: dict[str, list[dict[str, Any]]] = {k: [] for k in KINDS}
    for i in range(size):
        kind = KINDS[i % 4]
        name = f"Item{i}"
        entry: dict[str, Any] = {"name": f"Get{name}" if kind == "actions" else name}
        entry["description"] = f"Component {i}."
        if kind == "actions":
            entry["parameters"] = [{"name": "city", "description": "The city."}]
        if kind == "services":
            entry["methods"] = [{"name": f"lookup{i}", "description": "Looks up."}]
        lists[kind].append(entry)
    data.update({k: v for k, v in lists.items() if v})
    return validate_spec(data)


def today_variant(plugin: Path) -> Path:
    """A copy of the plugin with the pack's old tsconfig include and vitest cache dir, and
    without the prepared PGlite data directory (today PGlite runs initdb in every round)."""
    old = plugin.parent / (plugin.name + "-today")
    shutil.copytree(plugin, old, symlinks=True)
    shutil.rmtree(old / "node_modules" / PREPARED)
    tsconfig = json.loads((old / "tsconfig.json").read_text())
    tsconfig["include"] = TODAY_INCLUDE
    (old / "tsconfig.json").write_text(json.dumps(tsconfig, indent=2))
    config = old / "vitest.config.ts"
    config.write_text(config.read_text().replace("'dist/.vitest'", "'.vitest-cache'"))
    return old


@dataclass
class Round:
    build_s: float
    test_s: float
    tests: int
    ok: bool


async def one_round(ctx: JobContext, plugin: Path, pack: TemplatePack) -> Round:
    ctx.tools.pack = pack
    shutil.rmtree(plugin / "dist", ignore_errors=True)
    started = time.monotonic()
    build = await ctx.run(pack.build, plugin)
    build_s = time.monotonic() - started
    if not build.ok:
        raise SystemExit(f"build failed in {plugin.name}:\n{build.output_tail(30)}")
    started = time.monotonic()
    run = await run_tests(ctx, plugin)
    test_s = time.monotonic() - started
    results = run.results
    if results is None or not results.success:
        raise SystemExit(f"tests failed in {plugin.name}:\n{run.result.output_tail(30)}")
    return Round(build_s, test_s, results.total, results.success)


def med(values: list[float]) -> float:
    return statistics.median(values)


async def main(runs: int, sizes: list[int], sandbox: Literal["bwrap", "none"]) -> None:
    root = Path(tempfile.mkdtemp(prefix="plugin-bot-rounds-", dir="/tmp"))
    root.chmod(0o755)  # the sandbox uid must reach the workspaces
    runner = Runner(Settings(bot_data_dir=root / "data", sandbox=sandbox))
    new_pack = runner.pack
    today_pack = replace(new_pack, build=TODAY_BUILD, test=TODAY_TEST)
    print(
        f"{'components':>10} {'commands':<8} {'build':>7} {'test':>7} {'round':>7} "
        f"{'tests':>6}  (medians of {runs}, seconds)"
    )
    try:
        for size in sizes:
            await bench_size(runner, root, size, runs, new_pack, today_pack)
    finally:
        shutil.rmtree(root, ignore_errors=True)


async def bench_size(
    runner: Runner,
    root: Path,
    size: int,
    runs: int,
    new_pack: TemplatePack,
    today_pack: TemplatePack,
) -> None:
    tools = await runner._tools(
        meter=Meter(runner.settings),
        spec_writer=KeywordSpecWriter(runner.settings.allowed_dependencies),
        generator=ScaffoldGenerator(),
        reporter=SilentReporter(),
        publisher=None,
        cancel=asyncio.Event(),
    )
    request = JobRequest(job_id=new_job_id(), description="")
    ctx = JobContext(request, tools, runner.workspace_for(request.job_id))
    spec = spec_of(size)
    plugin = spec.directory_in(ctx.workspace)
    render_pack(new_pack, spec, plugin)
    ctx.result.spec = spec
    ctx.result.plugin_dir = plugin
    await tools.deps.install(
        plugin, new_pack.install, ctx.command_limits(), prepare=new_pack.prepare_dependencies
    )
    old = today_variant(plugin)
    rounds: dict[str, list[Round]] = {"today": [], "new": []}
    for _ in range(runs):
        rounds["today"].append(await one_round(ctx, old, today_pack))
        rounds["new"].append(await one_round(ctx, plugin, new_pack))
    rows = {}
    for label, items in rounds.items():
        build = med([r.build_s for r in items])
        test = med([r.test_s for r in items])
        total = med([r.build_s + r.test_s for r in items])
        tests = sorted({r.tests for r in items})
        rows[label] = total
        print(f"{size:>10} {label:<8} {build:7.2f} {test:7.2f} {total:7.2f} {tests!s:>6}")
    same = {r.tests for r in rounds["today"]} == {r.tests for r in rounds["new"]}
    print(
        f"{size:>10} {'ratio':<8} {'':>7} {'':>7} {rows['new'] / rows['today']:7.2f} "
        f"{'same tests' if same else 'TEST COUNTS DIFFER'}"
    )
    shutil.rmtree(ctx.workspace, ignore_errors=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--sizes", default="1,10,40")
    parser.add_argument("--sandbox", choices=["bwrap", "none"], default="bwrap")
    args = parser.parse_args()
    asyncio.run(main(args.runs, [int(s) for s in args.sizes.split(",")], args.sandbox))

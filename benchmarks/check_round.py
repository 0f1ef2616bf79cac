"""One check round (build + test, what the agent's run_checks repeats) at 1, 10, 40 components.

Three ways of doing a round, in the same run, on the same scaffold (rendered and installed
once per size; every variant in the bot's sandbox, each in its own job workspace):

* today: the commands before the fast checks: ``npm run build`` (``tsc --noEmit && tsup``,
  the config files in the type-check), ``npm run test`` (vitest isolating every file), and
  no prepared PGlite directory (initdb and plugin-sql's migrations in every round);
* cold: the pack's commands, each a fresh process: ``node scripts/check.mjs`` (one
  TypeScript pass and an esbuild bundle), vitest without per-file isolation, PGlite from the
  data directory the dependency cache prepared once per lockfile (what the final round is);
* warm: the same work from the job's warm checker (``bot/pipeline/warm.py``), the process
  kept between rounds; its first round (the process starting) is shown on its own.

Before every round one source file is edited (a comment appended), as a model's fix would.
Printed: median build, test and round seconds per variant, the ratios to today, and the
tests each variant reported (equal: nothing is skipped).

    .venv/bin/python benchmarks/check_round.py --runs 5 [--sizes 1,10,40] [--sandbox bwrap|none]
        [--cache-dir /var/cache/plugin-bot-tests]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

from bot.llm import Meter
from bot.logs import configure as configure_logs
from bot.pipeline.context import JobContext, JobRequest, JobTools
from bot.pipeline.generate import ScaffoldGenerator
from bot.pipeline.scaffold import scaffold_phase
from bot.pipeline.verify import (
    VITEST_CONFIG,
    install_dependencies,
    read_test_run,
    remove_report,
    run_tests,
)
from bot.pipeline.warm import WarmChecker
from bot.runner import Runner, SilentReporter, new_job_id
from bot.settings import Settings
from bot.spec.schema import PluginSpec, validate_spec
from bot.spec.writers import KeywordSpecWriter
from bot.workspace import BUILD_OUTPUT

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
PREPARED = ".plugin-bot"  # what the pack's prepare script adds to a dependency tree
EDITED = "src/index.ts"
KINDS = ("actions", "providers", "services", "evaluators")
VARIANTS = ("today", "cold", "warm")


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


@dataclass
class Round:
    build_s: float
    test_s: float
    round_s: float
    tests: int


async def context(runner: Runner, tools: JobTools, spec: PluginSpec) -> JobContext:
    request = JobRequest(job_id=new_job_id(), description="")
    ctx = JobContext(request, replace(tools), runner.workspace_for(request.job_id))
    ctx.result.spec = spec
    await scaffold_phase(ctx)
    await install_dependencies(ctx)
    return ctx


def make_today(ctx: JobContext, root: Path) -> None:
    """The plugin as it was: old tsconfig include and vitest cache dir, old commands, and a
    dependency tree without the prepared PGlite directory (hard links of the shared one)."""
    files = ctx.require_files()
    tsconfig = json.loads(files.get("tsconfig.json") or b"{}")
    tsconfig["include"] = TODAY_INCLUDE
    files.write("tsconfig.json", json.dumps(tsconfig, indent=2).encode())
    config = (files.get(VITEST_CONFIG) or b"").replace(b"'dist/.vitest'", b"'.vitest-cache'")
    files.write(VITEST_CONFIG, config)
    ctx.result.held_config[VITEST_CONFIG] = config
    ctx.tools.pack = replace(ctx.tools.pack, build=TODAY_BUILD, test=TODAY_TEST)
    install = ctx.result.install
    assert install is not None
    tree = install.node_modules
    bare = tree.parent.parent / f".bench-today-{install.key}" / "node_modules"

    def unprepared(folder: str, names: list[str]) -> set[str]:
        return {PREPARED} & set(names) if folder == str(tree) else set()

    if not bare.is_dir():  # hard links: the same files, without the prepared directory
        shutil.copytree(tree, bare, symlinks=True, copy_function=os.link, ignore=unprepared)
    ctx.result.install = replace(install, node_modules=bare)


def edit(ctx: JobContext, n: int) -> None:
    files = ctx.require_files()
    files.write(EDITED, (files.get(EDITED) or b"") + f"// round {n}\n".encode())


async def cold_round(ctx: JobContext) -> Round:
    plugin = ctx.require_plugin()
    shutil.rmtree(plugin / BUILD_OUTPUT, ignore_errors=True)
    started = time.monotonic()
    build = await ctx.run(ctx.tools.pack.build, plugin, outputs=[BUILD_OUTPUT])
    build_s = time.monotonic() - started
    if not build.ok:
        raise SystemExit(f"build failed in {plugin.name}:\n{build.output_tail(30)}")
    run = await run_tests(ctx, plugin)
    done = time.monotonic()
    if run.results is None or not run.results.success:
        raise SystemExit(f"tests failed in {plugin.name}:\n{run.result.output_tail(30)}")
    return Round(build_s, done - started - build_s, done - started, run.results.total)


async def warm_round(ctx: JobContext, checker: WarmChecker) -> Round:
    plugin = ctx.require_plugin()
    remove_report(plugin)
    started = time.monotonic()
    done = await checker.round(ctx)
    if done.test is None:
        raise SystemExit(f"warm build failed in {plugin.name}:\n{done.build.output_tail(30)}")
    run = read_test_run(ctx, plugin, done.test)
    round_s = time.monotonic() - started
    ctx.require_files().refuse_changes()
    if run.results is None or not run.results.success:
        raise SystemExit(f"warm tests failed in {plugin.name}:\n{done.test.output_tail(30)}")
    return Round(done.build.wall_s, done.test.wall_s, round_s, run.results.total)


def med(values: list[float]) -> float:
    return statistics.median(values)


async def main(
    runs: int, sizes: list[int], sandbox: Literal["bwrap", "none"], cache: Path | None
) -> None:
    root = Path(tempfile.mkdtemp(prefix="plugin-bot-rounds-", dir="/tmp"))
    root.chmod(0o755)  # the sandbox uid must reach the workspaces
    settings = Settings(bot_data_dir=root / "data", bot_cache_dir=cache, sandbox=sandbox)
    configure_logs(settings, level="warning")  # log lines to stderr, the table alone on stdout
    runner = Runner(settings)
    print(
        f"{'components':>10} {'variant':<11} {'build':>7} {'test':>7} {'round':>7} "
        f"{'/today':>7} {'tests':>6}  (medians of {runs}, seconds)"
    )
    try:
        for size in sizes:
            await bench_size(runner, root, size, runs)
    finally:
        shutil.rmtree(root, ignore_errors=True)


async def bench_size(runner: Runner, root: Path, size: int, runs: int) -> None:
    tools = await runner._tools(
        meter=Meter(runner.settings),
        spec_writer=KeywordSpecWriter(runner.settings.allowed_dependencies),
        generator=ScaffoldGenerator(),
        reporter=SilentReporter(),
        publisher=None,
        cancel=asyncio.Event(),
    )
    spec = spec_of(size)
    ctxs = {variant: await context(runner, tools, spec) for variant in VARIANTS}
    make_today(ctxs["today"], root)
    assert tools.warm is not None
    checker = WarmChecker(tools.warm)
    rounds: dict[str, list[Round]] = {variant: [] for variant in VARIANTS}
    try:
        edit(ctxs["warm"], 0)
        first = await warm_round(ctxs["warm"], checker)
        for n in range(1, runs + 1):
            for variant, ctx in ctxs.items():
                edit(ctx, n)
                if variant == "warm":
                    rounds[variant].append(await warm_round(ctx, checker))
                else:
                    rounds[variant].append(await cold_round(ctx))
    finally:
        await checker.close()
    report(size, rounds, first, checker)
    for ctx in ctxs.values():
        shutil.rmtree(ctx.workspace, ignore_errors=True)


def report(size: int, rounds: dict[str, list[Round]], first: Round, checker: WarmChecker) -> None:
    today = med([r.round_s for r in rounds["today"]])
    rows = [(v, items) for v, items in rounds.items()] + [("warm first", [first])]
    for label, items in rows:
        total = med([r.round_s for r in items])
        tests = sorted({r.tests for r in items})
        print(
            f"{size:>10} {label:<11} {med([r.build_s for r in items]):7.2f} "
            f"{med([r.test_s for r in items]):7.2f} {total:7.2f} {total / today:7.2f} "
            f"{tests!s:>6}"
        )
    counts = {r.tests for items in rounds.values() for r in items} | {first.tests}
    cold = med([r.round_s for r in rounds["cold"]])
    warm = med([r.round_s for r in rounds["warm"]])
    print(
        f"{size:>10} {'warm/cold':<11} {'':>7} {'':>7} {warm / cold:7.2f} {'':>7} "
        f"{'same tests' if len(counts) == 1 else 'TEST COUNTS DIFFER'}"
        f"{'' if not checker.fallbacks else ' FALLBACKS: ' + '; '.join(checker.fallbacks)}"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--sizes", default="1,10,40")
    parser.add_argument("--sandbox", choices=["bwrap", "none"], default="bwrap")
    parser.add_argument("--cache-dir", type=Path, help="a dependency cache to reuse")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    asyncio.run(main(args.runs, sizes, args.sandbox, args.cache_dir))

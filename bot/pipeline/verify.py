"""install, build, test: the plugin proves itself from a clean state in the sandbox."""

from __future__ import annotations

import shutil
from dataclasses import dataclass, replace
from pathlib import Path

from bot.pipeline.context import JobContext, PhaseFailed
from bot.sandbox import ProcessFailed, Result
from bot.testresults import ReportError, TestResults, load_report, parse_vitest_report

REPORT_DIR = ".plugin-bot"
REPORT_FILE = f"{REPORT_DIR}/vitest-report.json"
MAX_LISTED_FAILURES = 10


def _failed(message: str, result: Result) -> PhaseFailed:
    return PhaseFailed(
        f"{message}: {result.command} {result.describe_outcome()}",
        result.output_tail(),
        result,
    )


async def install_phase(ctx: JobContext) -> None:
    plugin_dir = ctx.require_plugin()
    try:
        ctx.result.install = await ctx.tools.deps.install(
            plugin_dir, ctx.tools.pack.install, ctx.command_limits(), cancel=ctx.tools.cancel
        )
    except ProcessFailed as exc:
        ctx.raise_if_cancelled()
        raise _failed("installing dependencies failed", exc.result) from None
    except (OSError, ValueError) as exc:  # a missing or malformed package.json / lockfile
        raise PhaseFailed(f"cannot install dependencies: {exc}") from None
    report = ctx.result.install
    how = "from the cache" if report.cache_hit else "installed with npm (now cached)"
    if report.lock_updated:
        how += ", lockfile updated for added dependencies"
    ctx.tools.reporter.phase_note("install", how)


async def build_phase(ctx: JobContext) -> None:
    plugin_dir = ctx.require_plugin()
    ctx.result.build = await ctx.run(ctx.tools.pack.build, plugin_dir)
    if not ctx.result.build.ok:
        raise _failed("the build failed", ctx.result.build)


@dataclass(frozen=True)
class TestRun:
    """One vitest run: the command's result and, when it reported, the parsed results."""

    __test__ = False  # not a pytest class
    result: Result
    results: TestResults | None
    problem: str | None = None  # why there are no results


async def run_tests(ctx: JobContext, plugin_dir: Path) -> TestRun:
    """Run the pack's test command with vitest's JSON reporter and parse what it wrote."""
    report_dir = plugin_dir / REPORT_DIR
    _remove(report_dir)
    report_dir.mkdir()
    argv = ctx.tools.pack.test_command(REPORT_FILE)
    try:
        result = await ctx.run(argv, plugin_dir)
        try:
            results = parse_vitest_report(
                load_report(plugin_dir / REPORT_FILE),
                root=plugin_dir,
                command=argv,
                exit_code=result.exit_code,
                wall_s=result.wall_s,
                log_sha256=result.output_sha256,
                log_bytes=result.output_bytes,
            )
        except ReportError as exc:
            return TestRun(result, None, str(exc))
    finally:
        _remove(report_dir)
    return TestRun(result, results)


async def test_phase(ctx: JobContext) -> None:
    plugin_dir = ctx.require_plugin()
    run = await run_tests(ctx, plugin_dir)
    result = run.result
    if run.results is None:
        raise _failed(f"no test results ({run.problem})", result)
    results = run.results
    durations: dict[str, float] = {
        name: round(ctx.result.records[name].wall_s, 3)
        for name in ("install", "build")
        if name in ctx.result.records
    }
    durations["test"] = round(result.wall_s, 3)
    ctx.result.test_results = results = replace(results, durations_s=durations)
    results.write(plugin_dir)
    ctx.tools.reporter.phase_note("test", f"{results.passed}/{results.total} passed")
    if not results.success:
        raise PhaseFailed(_test_failure_summary(results, result), _failure_detail(results, result))


def _remove(path: Path) -> None:
    if path.is_symlink() or path.is_file():
        path.unlink()
    elif path.exists():
        shutil.rmtree(path)


def _test_failure_summary(results: TestResults, result: Result) -> str:
    if results.failed:
        return f"{results.failed} of {results.total} tests failed"
    if results.broken_files:
        return f"{len(results.broken_files)} test files could not run"
    if results.total == 0:
        return "the test run found no tests"
    return f"the test command {result.describe_outcome()}"


def _failure_detail(results: TestResults, result: Result) -> str:
    lines: list[str] = []
    for test in [t for t in results.tests if t.state == "failed"][:MAX_LISTED_FAILURES]:
        first = (test.failure or "").strip().splitlines()[:1]
        lines.append(f"✗ {test.file} › {test.name}" + (f"\n    {first[0]}" if first else ""))
    for file in results.broken_files[:MAX_LISTED_FAILURES]:
        first = (file.message or "").strip().splitlines()[:1]
        lines.append(f"✗ {file.file}" + (f"\n    {first[0]}" if first else ""))
    return "\n".join(lines) or result.output_tail()

"""install, build, test: the plugin proves itself from a clean state in the sandbox."""

from __future__ import annotations

import shutil
from dataclasses import replace
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
        ctx.install = await ctx.deps.install(plugin_dir, ctx.pack.install, ctx.command_limits())
    except ProcessFailed as exc:
        raise _failed("installing dependencies failed", exc.result) from None
    except (OSError, ValueError) as exc:  # a missing or malformed package.json / lockfile
        raise PhaseFailed(f"cannot install dependencies: {exc}") from None
    report = ctx.install
    how = "from the cache" if report.cache_hit else "installed with npm (now cached)"
    if report.lock_updated:
        how += ", lockfile updated for added dependencies"
    ctx.reporter.phase_note("install", how)


async def build_phase(ctx: JobContext) -> None:
    plugin_dir = ctx.require_plugin()
    ctx.build = await ctx.sandbox.run(ctx.pack.build, plugin_dir, ctx.command_limits())
    if not ctx.build.ok:
        raise _failed("the build failed", ctx.build)


async def test_phase(ctx: JobContext) -> None:
    plugin_dir = ctx.require_plugin()
    report_path = plugin_dir / REPORT_FILE
    _remove(plugin_dir / REPORT_DIR)
    report_path.parent.mkdir()
    argv = ctx.pack.test_command(REPORT_FILE)
    result = await ctx.sandbox.run(argv, plugin_dir, ctx.command_limits())
    try:
        raw = load_report(report_path)
        results = parse_vitest_report(
            raw,
            root=plugin_dir,
            command=argv,
            exit_code=result.exit_code,
            wall_s=result.wall_s,
            log_sha256=result.output_sha256,
            log_bytes=result.output_bytes,
        )
    except ReportError as exc:
        raise _failed(f"no test results ({exc})", result) from None
    finally:
        _remove(plugin_dir / REPORT_DIR)
    durations: dict[str, float] = {
        name: round(ctx.records[name].wall_s, 3)
        for name in ("install", "build")
        if name in ctx.records
    }
    durations["test"] = round(result.wall_s, 3)
    ctx.test_results = results = replace(results, durations_s=durations)
    results.write(plugin_dir)
    ctx.reporter.phase_note("test", f"{results.passed}/{results.total} passed")
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

"""install, build, test: the plugin proves itself from a clean state in the sandbox."""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, replace
from pathlib import Path

from bot import paths
from bot.deps import DependencyRefused, InstallReport
from bot.pack import PACKAGE_JSON, PACKAGE_LOCK
from bot.pipeline.context import JobContext, PhaseFailed
from bot.sandbox import ProcessFailed, Result
from bot.testresults import (
    RESULTS_FILE,
    ReportError,
    TestResults,
    parse_vitest_report,
)
from bot.workspace import BUILD_OUTPUT, CONFIG_DIR, REPORT_DIR

REPORT_NAME = "vitest-report.json"
REPORT_FILE = f"{REPORT_DIR}/{REPORT_NAME}"
MAX_REPORT_BYTES = 32 * 1024 * 1024
MAX_LISTED_FAILURES = 10
VITEST_CONFIG = "vitest.config.ts"  # the pack's config; the bot runs vitest with its own copy


def _failed(message: str, result: Result) -> PhaseFailed:
    return PhaseFailed(
        f"{message}: {result.command} {result.describe_outcome()}",
        result.output_tail(),
        result,
    )


async def install_dependencies(ctx: JobContext) -> InstallReport:
    """Install from the bot's own package.json and lockfile (never the directory's); a
    lockfile npm had to regenerate becomes the plugin's, written by the bot."""
    files = ctx.require_files()
    report = await ctx.tools.deps.install(
        files.get(PACKAGE_JSON),
        files.get(PACKAGE_LOCK),
        ctx.tools.pack.install,
        ctx.command_limits(),
        prepare=ctx.tools.pack.prepare_dependencies,
        cancel=ctx.tools.cancel,
    )
    if report.lock_updated:
        files.write(PACKAGE_LOCK, report.lock_text)
    ctx.result.install = report
    return report


async def install_phase(ctx: JobContext) -> None:
    try:
        report = await install_dependencies(ctx)
    except ProcessFailed as exc:
        ctx.raise_if_cancelled()
        raise _failed("installing dependencies failed", exc.result) from None
    except DependencyRefused as exc:
        raise PhaseFailed(f"the dependencies are refused: {exc}") from None
    except (OSError, ValueError) as exc:  # a missing or malformed package.json / lockfile
        raise PhaseFailed(f"cannot install dependencies: {exc}") from None
    how = "from the cache" if report.cache_hit else "installed with npm (now cached)"
    if report.lock_updated:
        how += ", lockfile updated for added dependencies"
    ctx.tools.reporter.phase_note("install", how)


async def build_phase(ctx: JobContext) -> None:
    plugin_dir = ctx.require_plugin()
    ctx.result.build = await ctx.run(ctx.tools.pack.build, plugin_dir, outputs=[BUILD_OUTPUT])
    if not ctx.result.build.ok:
        raise _failed("the build failed", ctx.result.build)


@dataclass(frozen=True)
class TestRun:
    """One vitest run: the command's result and, when it reported, the parsed results."""

    __test__ = False  # not a pytest class
    result: Result
    results: TestResults | None
    problem: str | None = None  # why there are no results
    unreported: tuple[str, ...] = ()  # test files of the plugin the run did not include

    @property
    def unreported_note(self) -> str:
        shown = ", ".join(self.unreported[:MAX_LISTED_FAILURES])
        return f"the test run did not include these test files of the plugin: {shown}"


def test_argv(ctx: JobContext) -> tuple[str, ...]:
    """The pack's test command, with the bot's own copy of the vitest config."""
    argv = ctx.tools.pack.test_command(REPORT_FILE)
    if VITEST_CONFIG in ctx.result.held_config:
        argv = (*argv, f"--config={CONFIG_DIR}/{VITEST_CONFIG}")
    return argv


def _read_report(plugin_dir: Path) -> dict[str, object]:
    """The report vitest wrote, read without following a link the run may have planted."""
    try:
        data = json.loads(
            paths.read_bytes(plugin_dir / REPORT_DIR, REPORT_NAME, limit=MAX_REPORT_BYTES)
        )
    except FileNotFoundError:
        raise ReportError("the test run wrote no JSON report") from None
    except paths.PathRefused as exc:
        raise ReportError(f"the test report is refused: {exc}") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ReportError(f"the test report is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ReportError("the test report is not a JSON object")
    return data


def _unreported_test_files(ctx: JobContext, results: TestResults) -> list[str]:
    """Test files of the plugin the run did not report on (so did not run)."""
    reported = {f.file for f in results.files}
    names = ctx.require_files().names()
    return [rel for rel in names if paths.is_test_file(rel) and rel not in reported]


async def run_tests(ctx: JobContext, plugin_dir: Path) -> TestRun:
    """Run the pack's test command with vitest's JSON reporter and parse what it wrote."""
    report_dir = plugin_dir / REPORT_DIR
    _remove(report_dir)
    argv = test_argv(ctx)
    try:
        result = await ctx.run(argv, plugin_dir, outputs=[REPORT_DIR])
        return read_test_run(ctx, plugin_dir, result)
    finally:
        _remove(report_dir)


def read_test_run(ctx: JobContext, plugin_dir: Path, result: Result) -> TestRun:
    """What a finished test run (cold or warm) reported, from the JSON report it wrote."""
    try:
        results = parse_vitest_report(
            _read_report(plugin_dir),
            root=plugin_dir,
            command=result.argv,
            exit_code=result.exit_code,
            wall_s=result.wall_s,
            log_sha256=result.output_sha256,
            log_bytes=result.output_bytes,
        )
    except ReportError as exc:
        return TestRun(result, None, str(exc))
    return TestRun(result, results, unreported=tuple(_unreported_test_files(ctx, results)))


def remove_report(plugin_dir: Path) -> None:
    """The last run's report file, not its folder (a warm checker has it mounted)."""
    report = plugin_dir / REPORT_DIR / REPORT_NAME
    if report.is_symlink() or report.exists():
        _remove(report)


async def test_phase(ctx: JobContext) -> None:
    plugin_dir = ctx.require_plugin()
    run = await run_tests(ctx, plugin_dir)
    result = run.result
    if run.results is None:
        raise _failed(f"no test results ({run.problem})", result)
    results = run.results
    if run.unreported:
        raise PhaseFailed(run.unreported_note)
    durations: dict[str, float] = {
        name: round(ctx.result.records[name].wall_s, 3)
        for name in ("install", "build")
        if name in ctx.result.records
    }
    durations["test"] = round(result.wall_s, 3)
    ctx.result.test_results = results = replace(results, durations_s=durations)
    ctx.require_files().write(RESULTS_FILE, results.encode())
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

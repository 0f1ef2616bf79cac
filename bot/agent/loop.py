"""The generate loop: the model works on the scaffold through checked tools.

A *round* is one ``run_checks`` call (a check/fix round): the model may read and write as
many files as it likes between checks, but gets at most ``max_rounds`` builds and test runs
(default 5, the original system's number). A separate cap on model turns
(``max_turns``) stops a model that never checks; the job deadline and the token/cost budget
bound the rest.

No cheating past the checks: the scaffold's test count is taken *statically* before the
model edits anything (``it(`` / ``test(`` calls in the scaffold's ``__tests__`` files, so
no extra build is needed). A passing ``run_checks`` only counts when every component of the
spec still has its test file with at least one test in it, the pack's integration test
still has a test named after every component and still drives each kind through its
runtime path (processActions, composeState, evaluate, the service registry), and the
number of tests the run reported is at least the scaffold's count. ``finish`` is accepted
only after such a run with no edits since, and the same guard runs once more after the loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from bot import status
from bot.agent import prompt
from bot.agent.tools import (
    PluginFiles,
    ToolOutcome,
    ToolRefused,
    build_summary,
    cap,
    count_test_calls,
    results_summary,
    static_test_count,
    tool_definitions,
    validate_input,
)
from bot.deps import DependencyRefused
from bot.llm import (
    BudgetExceeded,
    LLMError,
    ModelProvider,
    ModelReply,
    ToolCall,
    is_transient,
)
from bot.pack import KEBAB_PLACEHOLDER, component_identifiers
from bot.pipeline.context import FilesChanged, JobCancelled, JobContext, PhaseFailed
from bot.pipeline.verify import (
    TestRun,
    install_dependencies,
    read_test_run,
    remove_report,
    run_tests,
)
from bot.pipeline.warm import WarmChecker, WarmUnavailable
from bot.sandbox import ProcessFailed, Result
from bot.spec.schema import constant, kebab
from bot.workspace import BUILD_OUTPUT, TreeChanged

DEFAULT_MAX_ROUNDS = 5
DEFAULT_MAX_TURNS = 40
DEFAULT_MAX_TOKENS = 8192


@dataclass(frozen=True)
class CheckReport:
    """What one run_checks produced."""

    passed: bool
    summary: str
    tests_total: int = 0
    install_failed: bool = False


class Checks(Protocol):
    """Builds and tests the plugin: the sandbox by default, a fake in unit tests."""

    async def __call__(self, ctx: JobContext, *, install: bool) -> CheckReport: ...


async def sandbox_checks(ctx: JobContext, *, install: bool) -> CheckReport:
    """Install if needed, then build and test in the sandbox with the network off.

    A build or test that changed the plugin's files fails the checks with the reason;
    the files were put back (see JobContext.run)."""
    plugin_dir = ctx.require_plugin()
    if install or ctx.result.install is None:
        try:
            await install_dependencies(ctx)
        except ProcessFailed as exc:
            ctx.raise_if_cancelled()
            tail = exc.result.output_tail(20)
            return CheckReport(False, f"INSTALL FAILED:\n{tail}", install_failed=True)
        except (OSError, ValueError, DependencyRefused) as exc:
            return CheckReport(False, f"INSTALL FAILED: {exc}", install_failed=True)
    try:
        warm = await _warm_round(ctx)
        if warm is not None:
            build, run = warm
        else:
            build = await ctx.run(ctx.tools.pack.build, plugin_dir, outputs=[BUILD_OUTPUT])
            run = await run_tests(ctx, plugin_dir) if build.ok else None
        if run is None:
            return CheckReport(False, build_summary(build.output, build.output_tail(30)))
    except FilesChanged as exc:
        return CheckReport(False, f"CHECKS REFUSED: {exc.message}")
    if run.results is None:
        return CheckReport(
            False, f"BUILD OK. TESTS DID NOT REPORT ({run.problem}):\n{run.result.output_tail(30)}"
        )
    results = run.results
    summary = "BUILD OK.\n" + results_summary(results)
    if run.unreported:
        summary += f"\nNOT ACCEPTED: {run.unreported_note}"
    return CheckReport(results.success and not run.unreported, summary, results.total)


async def _warm_round(ctx: JobContext) -> tuple[Result, TestRun | None] | None:
    """The round from the job's warm checker (bot/pipeline/warm.py), or None: run it cold.

    Never the job's verdict: the install, build and test phases after generate are cold."""
    if ctx.tools.warm is None:
        return None
    if ctx.warm is None:
        ctx.warm = WarmChecker(ctx.tools.warm)
    checker = ctx.warm
    why = checker.why_cold(ctx)
    if why is not None:
        await checker.close()
        return None
    plugin_dir = ctx.require_plugin()
    remove_report(plugin_dir)
    try:
        done = await checker.round(ctx)
        run = read_test_run(ctx, plugin_dir, done.test) if done.test is not None else None
    except WarmUnavailable as exc:
        checker.failed(str(exc))
        ctx.raise_if_cancelled()
        return None
    finally:
        remove_report(plugin_dir)
        _refuse_changes(ctx)
    if run is not None and run.results is None:
        checker.failed(f"the warm test run did not report ({run.problem})")
        await checker.close()
        return None
    return done.build, run


def _refuse_changes(ctx: JobContext) -> None:
    """As after every sandboxed run: a changed plugin file is put back and refused."""
    try:
        ctx.require_files().refuse_changes()
    except TreeChanged as exc:
        raise FilesChanged(str(exc)) from None


@dataclass
class _State:
    files: PluginFiles
    scaffold_tests: int
    component_tests: list[str]
    rounds: int = 0
    dirty: bool = True
    passed_tests: int | None = None  # test count of the last passing, guarded run
    finished: str | None = None
    last_summary: str = ""
    guard_problems: list[str] = field(default_factory=list)
    runtime: RuntimeCoverage | None = None


# The runtime path each kind of component must be driven through in the integration test.
RUNTIME_PATHS: dict[str, str] = {
    "action": "processActions",
    "provider": "composeState",
    "service": "getService",
    "evaluator": "evaluate",
}
_IT_TITLE = re.compile(r"""\bit\(\s*(?:"((?:[^"\\]|\\.)*)"|'((?:[^'\\]|\\.)*)'|`([^`]*)`)""")


@dataclass(frozen=True)
class RuntimeCoverage:
    """What the integration test must keep: a test per component, named after it, and
    the runtime path (processActions, composeState, evaluate, the registry) of each kind."""

    test_file: str
    suite_file: str | None
    names: dict[str, str]  # component name -> the name it has in the runtime
    kinds: dict[str, str]  # component name -> its kind

    def problems(self, content: Callable[[str], bytes | None]) -> list[str]:
        """What is missing, read from the bot's file set (``content``), never the disk."""
        data = content(self.test_file)
        if data is None:
            return [f"the integration test {self.test_file} was removed"]
        text = data.decode("utf-8", "replace")
        titles = [next(g for g in m.groups() if g is not None) for m in _IT_TITLE.finditer(text)]
        suite = content(self.suite_file) if self.suite_file else None
        if suite is not None:
            text += suite.decode("utf-8", "replace")
        problems: list[str] = []
        for runtime_name in self.names.values():
            if not any(runtime_name in title for title in titles):
                problems.append(
                    f"the integration test {self.test_file} no longer has a test for "
                    f"{runtime_name} in a real AgentRuntime"
                )
        for kind in sorted(set(self.kinds.values())):
            if f".{RUNTIME_PATHS[kind]}(" not in text and f".{RUNTIME_PATHS[kind]}<" not in text:
                problems.append(
                    f"the integration test no longer drives {kind}s through "
                    f"runtime.{RUNTIME_PATHS[kind]}"
                )
        return problems


def _target_of(arguments: Any) -> str:
    """What a tool call works on (a path, a package name), for the live activity line."""
    if not isinstance(arguments, dict):
        return ""
    target = arguments.get("path", arguments.get("name", ""))
    return target if isinstance(target, str) else ""


class ModelGenerator:
    """Generates the plugin with a model through tools (see the module docstring)."""

    def __init__(
        self,
        provider: ModelProvider,
        *,
        max_rounds: int = DEFAULT_MAX_ROUNDS,
        max_turns: int = DEFAULT_MAX_TURNS,
        max_tokens: int = DEFAULT_MAX_TOKENS,
        checks: Checks | None = None,
        core_types_dir: Path | None = None,
    ) -> None:
        if max_rounds < 1 or max_turns < 1:
            raise ValueError("max_rounds and max_turns must be at least 1")
        self.provider = provider
        self.max_rounds = max_rounds
        self.max_turns = max_turns
        self.max_tokens = max_tokens
        self.checks: Checks = checks or sandbox_checks
        self.core_types_dir = core_types_dir

    @property
    def name(self) -> str:
        return self.provider.name

    @property
    def model(self) -> str:
        return self.provider.model

    async def generate(self, ctx: JobContext) -> None:
        ctx.result.max_rounds = self.max_rounds
        try:
            await self._run(ctx)
        finally:
            usage = ctx.tools.meter.usage
            ctx.tools.reporter.phase_note(
                "generate",
                f"{self.provider.name} {self.provider.model}: "
                f"{ctx.result.rounds_used} check round(s) of {self.max_rounds}, "
                f"{ctx.result.model_turns} model turn(s), "
                f"{usage.total_input} input + {usage.output_tokens} output tokens, "
                f"{usage.cache_share:.0%} of input from cache",
            )

    # ------------------------------------------------------------------------ loop

    async def _run(self, ctx: JobContext) -> None:
        plugin_dir = ctx.require_plugin()
        if ctx.result.spec is None:
            raise PhaseFailed("no spec to generate from")
        files = PluginFiles(
            ctx.result.files if ctx.result.files is not None else plugin_dir,
            ctx.tools.allowed_dependencies,
        )
        ctx.result.files = files.set
        state = _State(
            files=files,
            scaffold_tests=static_test_count(files.set),
            component_tests=self._component_tests(ctx),
            runtime=self._runtime_coverage(ctx),
        )
        types_dir = self.core_types_dir
        if types_dir is None:
            if ctx.result.install is None:
                await self._install_for_digest(ctx)
            assert ctx.result.install is not None
            # The digest is cut from the shared tree's .d.ts files (prompt.CORE_TYPES).
            types_dir = ctx.result.install.node_modules.parent / prompt.CORE_TYPES
        system = prompt.system_blocks(types_dir)
        tools = tool_definitions()
        messages: list[dict[str, Any]] = [
            {"role": "user", "content": self._first_message(ctx, files)}
        ]
        while state.finished is None:
            if ctx.result.model_turns >= self.max_turns:
                raise self._out_of_rounds(state, f"the model used all {self.max_turns} turns")
            reply = await self._complete(ctx, system, messages, tools)
            ctx.result.model_turns += 1
            calls = [(call.name, _target_of(call.input)) for call in reply.tool_calls]
            ctx.report_progress(status.activity_model_turn(ctx.result.model_turns, calls))
            messages.append({"role": "assistant", "content": _assistant_content(reply)})
            if not reply.tool_calls:
                messages.append(
                    {
                        "role": "user",
                        "content": "Continue through the tools: edit, run_checks, and call "
                        "finish once the checks pass.",
                    }
                )
                continue
            results: list[dict[str, Any]] = []
            for call in reply.tool_calls:
                ctx.raise_if_cancelled()
                outcome = await self._execute(ctx, state, call)
                results.append(
                    {
                        "type": "tool_result",
                        "tool_use_id": call.id,
                        "content": outcome.content,
                        "is_error": outcome.is_error,
                    }
                )
                if state.finished is not None:
                    break
            messages.append({"role": "user", "content": results})
        problems = self._guard(state, state.passed_tests)
        if problems or state.dirty or state.passed_tests is None:
            raise PhaseFailed(
                "the model's tests do not hold up: " + "; ".join(problems or ["no passing checks"])
            )
        ctx.tools.reporter.phase_note("generate", f"model summary: {state.finished[:500]}")

    def _first_message(self, ctx: JobContext, files: PluginFiles) -> str:
        """The task: build from the scaffold, or (a revision) change the plugin as asked."""
        assert ctx.result.spec is not None
        spec = ctx.result.spec.model_dump(mode="json")
        allowed = dict(ctx.tools.allowed_dependencies)
        revision = ctx.result.revision
        if revision is None:
            return prompt.first_message(spec, files.list_files(), allowed)
        return prompt.revision_message(
            spec, files.list_files(), allowed, revision.request, revision.review_notes
        )

    async def _install_for_digest(self, ctx: JobContext) -> None:
        """node_modules holds the .d.ts files the digest is cut from (and checks need it)."""
        try:
            await install_dependencies(ctx)
        except ProcessFailed as exc:
            raise PhaseFailed(
                f"installing the scaffold's dependencies failed: {exc}",
                exc.result.output_tail(),
                exc.result,
            ) from None
        except (OSError, ValueError, DependencyRefused) as exc:
            raise PhaseFailed(f"cannot install the scaffold's dependencies: {exc}") from None

    async def _complete(
        self,
        ctx: JobContext,
        system: list[dict[str, Any]],
        messages: list[dict[str, Any]],
        tools: list[dict[str, Any]],
    ) -> ModelReply:
        limits = ctx.command_limits()  # PhaseFailed when the job is out of time
        ctx.raise_if_cancelled()
        call = asyncio.ensure_future(
            self.provider.complete(
                system=system, messages=messages, tools=tools, max_tokens=self.max_tokens
            )
        )
        waiters: set[asyncio.Future[Any]] = {call}
        stop = asyncio.ensure_future(ctx.tools.cancel.wait())
        waiters.add(stop)
        try:
            done, _ = await asyncio.wait(
                waiters, timeout=limits.timeout_s, return_when=asyncio.FIRST_COMPLETED
            )
            if call not in done:
                call.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await call
                if stop in done:
                    raise JobCancelled()
                raise PhaseFailed(f"the job ran out of time ({ctx.tools.job_timeout_s:.0f}s)")
            reply = call.result()
        except BudgetExceeded as exc:
            raise PhaseFailed(str(exc)) from None
        except LLMError as exc:
            raise PhaseFailed(
                f"the model call failed: {exc}", transient=is_transient(exc)
            ) from None
        finally:
            stop.cancel()
            if not call.done():
                call.cancel()
        return reply

    # ----------------------------------------------------------------------- tools

    async def _execute(self, ctx: JobContext, state: _State, call: ToolCall) -> ToolOutcome:
        try:
            args = validate_input(call.name, call.input)
            handler = self._handlers()[call.name]
            return await handler(ctx, state, args)
        except ToolRefused as exc:
            return ToolOutcome(f"refused: {exc}", is_error=True)
        except OSError as exc:  # the disk, not the model: say so, change nothing more
            return ToolOutcome(f"failed: {exc.strerror or exc}", is_error=True)

    def _handlers(
        self,
    ) -> dict[str, Callable[[JobContext, _State, dict[str, str]], Awaitable[ToolOutcome]]]:
        return {
            "list_files": self._list_files,
            "read_file": self._read_file,
            "write_file": self._write_file,
            "delete_file": self._delete_file,
            "request_dependency": self._request_dependency,
            "run_checks": self._run_checks,
            "finish": self._finish,
        }

    async def _list_files(
        self, ctx: JobContext, state: _State, args: dict[str, str]
    ) -> ToolOutcome:
        return ToolOutcome(state.files.list_files())

    async def _read_file(self, ctx: JobContext, state: _State, args: dict[str, str]) -> ToolOutcome:
        return ToolOutcome(state.files.read_file(args["path"]))

    async def _write_file(
        self, ctx: JobContext, state: _State, args: dict[str, str]
    ) -> ToolOutcome:
        done = state.files.write_file(args["path"], args["content"])
        state.dirty = True
        return ToolOutcome(done)

    async def _delete_file(
        self, ctx: JobContext, state: _State, args: dict[str, str]
    ) -> ToolOutcome:
        done = state.files.delete_file(args["path"])
        state.dirty = True
        return ToolOutcome(done)

    async def _request_dependency(
        self, ctx: JobContext, state: _State, args: dict[str, str]
    ) -> ToolOutcome:
        done = state.files.request_dependency(args["name"])
        state.dirty = True
        return ToolOutcome(done)

    async def _run_checks(
        self, ctx: JobContext, state: _State, args: dict[str, str]
    ) -> ToolOutcome:
        if state.rounds >= self.max_rounds:
            raise self._out_of_rounds(state, f"all {self.max_rounds} check rounds are used")
        state.rounds += 1
        ctx.result.rounds_used = state.rounds
        ctx.report_progress(status.activity_check_round(state.rounds, self.max_rounds))
        install = state.files.package_changed
        report = await self.checks(ctx, install=install)
        ctx.raise_if_cancelled()
        if install and not report.install_failed:
            state.files.package_changed = False
        state.dirty = False
        state.passed_tests = None
        state.guard_problems = []
        summary = report.summary
        passed = report.passed
        if passed:
            problems = self._guard(state, report.tests_total)
            if problems:
                passed = False
                state.guard_problems = problems
                summary += "\nNOT ACCEPTED: " + "; ".join(problems)
            else:
                state.passed_tests = report.tests_total
        left = self.max_rounds - state.rounds
        state.last_summary = summary
        if not passed and left == 0:
            raise self._out_of_rounds(state, f"all {self.max_rounds} check/fix rounds are used")
        if passed:
            summary += "\nAll checks passed: call finish (edits after this need another check)."
        else:
            summary += f"\n{left} check round(s) left."
        return ToolOutcome(cap(summary), is_error=not passed)

    async def _finish(self, ctx: JobContext, state: _State, args: dict[str, str]) -> ToolOutcome:
        if state.passed_tests is None or state.dirty:
            why = (
                "files changed since the last run_checks"
                if state.dirty and state.rounds
                else "the last run_checks did not pass"
                if state.rounds
                else "run_checks has not been called"
            )
            raise ToolRefused(f"finish needs a passing run_checks with no edits since ({why})")
        problems = self._guard(state, state.passed_tests)
        if problems:
            raise ToolRefused("; ".join(problems))
        state.finished = args["summary"]
        return ToolOutcome("accepted")

    # ----------------------------------------------------------------------- guard

    @staticmethod
    def _component_tests(ctx: JobContext) -> list[str]:
        """The test file of every component of the spec, as the pack names it."""
        assert ctx.result.spec is not None
        paths: list[str] = []
        kinds = {"actions": "action", "providers": "provider", "services": "service"}
        kinds["evaluators"] = "evaluator"
        by_kind: dict[str, list[str]] = {}
        for kind, component in ctx.result.spec.components():
            by_kind.setdefault(kind, []).append(component.name)
        for entry in ctx.tools.pack.files:
            if entry.each is None or ".test." not in entry.output:
                continue
            for name in by_kind.get(kinds[entry.each], []):
                paths.append(entry.output.replace(KEBAB_PLACEHOLDER, kebab(name)))
        return paths

    @staticmethod
    def _runtime_coverage(ctx: JobContext) -> RuntimeCoverage | None:
        """What the pack's integration test covers, when the pack has one."""
        pack = ctx.tools.pack
        spec = ctx.result.spec
        if pack.integration_test is None or spec is None:
            return None
        if not (ctx.require_plugin() / pack.integration_test).is_file():
            return None
        identifiers = component_identifiers(spec)
        names: dict[str, str] = {}
        kinds: dict[str, str] = {}
        for kind, component in spec.components():
            kinds[component.name] = kind
            names[component.name] = (
                identifiers[component.name] if kind == "service" else constant(component.name)
            )
        return RuntimeCoverage(pack.integration_test, pack.runtime_suite, names, kinds)

    @staticmethod
    def _guard(state: _State, tests_total: int | None) -> list[str]:
        problems: list[str] = []
        if state.runtime is not None:
            problems += state.runtime.problems(state.files.content)
        for rel in state.component_tests:
            data = state.files.content(rel)
            if data is None:
                problems.append(f"the component test file {rel} was removed")
            elif count_test_calls(data.decode("utf-8", "replace")) == 0:
                problems.append(f"the component test file {rel} has no tests left")
        if tests_total is not None and tests_total < state.scaffold_tests:
            problems.append(
                f"the run has {tests_total} tests, fewer than the scaffold's "
                f"{state.scaffold_tests}; tests may be added, not removed"
            )
        return problems

    def _out_of_rounds(self, state: _State, why: str) -> PhaseFailed:
        detail = cap(state.last_summary) if state.last_summary else ""
        message = f"the model did not finish with passing checks: {why}"
        if state.guard_problems:
            message += "; its checks passed only with tests removed: " + "; ".join(
                state.guard_problems
            )
        return PhaseFailed(message, detail)


def _assistant_content(reply: ModelReply) -> list[dict[str, Any]]:
    if reply.content:
        return list(reply.content)
    blocks: list[dict[str, Any]] = []
    if reply.text:
        blocks.append({"type": "text", "text": reply.text})
    for call in reply.tool_calls:
        blocks.append({"type": "tool_use", "id": call.id, "name": call.name, "input": call.input})
    return blocks or [{"type": "text", "text": "(no answer)"}]


__all__ = [
    "DEFAULT_MAX_ROUNDS",
    "CheckReport",
    "Checks",
    "ModelGenerator",
    "sandbox_checks",
]

"""Warm check rounds in the real sandbox: the same report as a cold round, edits seen
between rounds, a dead process replaced by a cold round, and a cold final round."""

import asyncio
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.agent.loop import CheckReport, sandbox_checks
from bot.llm import Meter
from bot.pipeline import verify
from bot.pipeline.context import JobContext, JobRequest
from bot.pipeline.generate import ScaffoldGenerator
from bot.pipeline.scaffold import scaffold_phase
from bot.pipeline.verify import install_dependencies
from bot.runner import Runner, SilentReporter, new_job_id
from bot.spec.schema import validate_spec
from bot.spec.writers import KeywordSpecWriter
from tests.integration.conftest import exported

SPEC = {
    "name": "plugin-warm-weather",
    "description": "Weather for a city.",
    "actions": [
        {
            "name": "GetForecast",
            "description": "Gets the forecast.",
            "parameters": [{"name": "city", "description": "The city."}],
        }
    ],
    "providers": [{"name": "CurrentTemperature", "description": "The temperature now."}],
}
BROKEN_LINE = "const broken: number = 'not a number';"


async def scaffolded(jobs: Runner, *, warm: bool) -> JobContext:
    tools = await jobs._tools(
        meter=Meter(jobs.settings),
        spec_writer=KeywordSpecWriter(jobs.settings.allowed_dependencies),
        generator=ScaffoldGenerator(),
        reporter=SilentReporter(),
        publisher=None,
        cancel=asyncio.Event(),
    )
    if not warm:
        tools.warm = None
    request = JobRequest(job_id=new_job_id(), description="")
    ctx = JobContext(request, tools, jobs.workspace_for(request.job_id))
    ctx.result.spec = validate_spec(SPEC)
    await scaffold_phase(ctx)
    await install_dependencies(ctx)
    return ctx


@pytest.fixture
async def warm_ctx(jobs: Runner) -> AsyncIterator[JobContext]:
    ctx = await scaffolded(jobs, warm=True)
    yield ctx
    if ctx.warm is not None:
        await ctx.warm.close()


@pytest.fixture
async def cold_ctx(jobs: Runner) -> JobContext:
    return await scaffolded(jobs, warm=False)


def edit(ctx: JobContext, rel: str, change: str) -> int:
    """Append (or, with ``change=''``, remove) the broken line; returns its line number."""
    files = ctx.require_files()
    lines = [line for line in files.get(rel).decode().splitlines() if line != BROKEN_LINE]  # type: ignore[union-attr]
    if change:
        lines.append(change)
    files.write(rel, ("\n".join(lines) + "\n").encode())
    return len(lines)


async def both(warm: JobContext, cold: JobContext) -> tuple[CheckReport, CheckReport]:
    served = warm.warm.served if warm.warm is not None else 0
    warm_report = await sandbox_checks(warm, install=False)
    assert warm.warm is not None and warm.warm.served == served + 1, warm.warm.fallbacks
    cold_report = await sandbox_checks(cold, install=False)
    return warm_report, cold_report


async def test_warm_rounds_report_what_cold_rounds_report_and_see_every_edit(
    warm_ctx: JobContext, cold_ctx: JobContext
) -> None:
    first, cold = await both(warm_ctx, cold_ctx)
    assert first.passed and cold.passed
    assert first.tests_total == cold.tests_total > 0
    assert first.summary == cold.summary

    # A type error introduced between rounds, in a test file: named by file:line.
    for ctx in (warm_ctx, cold_ctx):
        line = edit(ctx, "__tests__/plugin.test.ts", BROKEN_LINE)
    broken, cold = await both(warm_ctx, cold_ctx)
    assert not broken.passed
    assert f"__tests__/plugin.test.ts:{line}:7 error TS2322" in broken.summary
    assert broken.summary == cold.summary

    # Fixed in the test file, a new one in a source file: only the new one is reported.
    for ctx in (warm_ctx, cold_ctx):
        edit(ctx, "__tests__/plugin.test.ts", "")
        line = edit(ctx, "src/index.ts", BROKEN_LINE)
    moved, cold = await both(warm_ctx, cold_ctx)
    assert f"src/index.ts:{line}:7 error TS2322" in moved.summary
    assert "__tests__/plugin.test.ts" not in moved.summary
    assert moved.summary == cold.summary

    # Fixed: the round passes again with every test, warm from the same process.
    for ctx in (warm_ctx, cold_ctx):
        edit(ctx, "src/index.ts", "")
    fixed, cold = await both(warm_ctx, cold_ctx)
    assert fixed.passed and fixed.tests_total == first.tests_total
    assert fixed.summary == cold.summary
    assert warm_ctx.warm is not None and warm_ctx.warm.fallbacks == []


async def test_a_failing_test_is_reported_by_a_warm_round_like_a_cold_one(
    warm_ctx: JobContext, cold_ctx: JobContext
) -> None:
    await sandbox_checks(warm_ctx, install=False)
    for ctx in (warm_ctx, cold_ctx):
        files = ctx.require_files()
        text = files.get("__tests__/plugin.test.ts").decode()  # type: ignore[union-attr]
        files.write(
            "__tests__/plugin.test.ts",
            text.replace(
                "it('has its name and description'", "it.fails('has its name and description'", 1
            ).encode(),
        )
    warm, cold = await both(warm_ctx, cold_ctx)
    assert not warm.passed and "has its name and description" in warm.summary
    assert warm.summary == cold.summary


async def test_a_source_change_that_breaks_a_test_is_seen_by_the_next_warm_round(
    warm_ctx: JobContext, cold_ctx: JobContext
) -> None:
    first = await sandbox_checks(warm_ctx, install=False)
    assert first.passed
    for ctx in (warm_ctx, cold_ctx):
        files = ctx.require_files()
        text = files.get("src/index.ts").decode()  # type: ignore[union-attr]
        assert '"Weather for a city."' in text
        files.write("src/index.ts", text.replace('"Weather for a city."', '"Changed."').encode())
    warm, cold = await both(warm_ctx, cold_ctx)
    assert not warm.passed and "has its name and description" in warm.summary
    assert warm.summary == cold.summary


async def test_a_killed_warm_process_gives_a_cold_round_and_the_next_round_a_new_process(
    warm_ctx: JobContext,
) -> None:
    first = await sandbox_checks(warm_ctx, install=False)
    checker = warm_ctx.warm
    assert checker is not None and checker.process is not None and checker.served == 1
    killed = checker.process.pid
    checker.process.kill()
    await asyncio.wait_for(checker.process.exited.wait(), 60)

    fallback = await sandbox_checks(warm_ctx, install=False)
    assert fallback.passed and fallback.summary == first.summary  # a cold round
    assert checker.served == 1 and checker.failures == 1
    assert "exited" in checker.fallbacks[0]

    again = await sandbox_checks(warm_ctx, install=False)
    assert again.summary == first.summary
    assert checker.served == 2 and checker.process is not None
    assert checker.process.pid != killed


async def test_a_cancel_stops_the_warm_process_and_the_job(warm_ctx: JobContext) -> None:
    await sandbox_checks(warm_ctx, install=False)
    checker = warm_ctx.warm
    assert checker is not None and checker.process is not None
    process = checker.process
    warm_ctx.tools.cancel.set()
    await asyncio.wait_for(process.exited.wait(), 60)  # its watchdog killed it
    assert not process.alive
    result = await process.stop()
    assert result.cancelled


class CheckingGenerator:
    """Runs two warm check rounds, as a model's run_checks would, and keeps what it saw."""

    name = "checking"
    model = None

    def __init__(self) -> None:
        self.seen: dict[str, object] = {}

    async def generate(self, ctx: JobContext) -> None:
        for _ in range(2):
            report = await sandbox_checks(ctx, install=False)
            assert report.passed, report.summary
        assert ctx.warm is not None and ctx.warm.process is not None
        self.seen.update(pid=ctx.warm.process.pid, served=ctx.warm.served, ctx=ctx)


async def test_the_final_build_and_test_are_cold_after_the_warm_process_is_stopped(
    jobs: Runner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    generator = CheckingGenerator()
    monkeypatch.setattr("bot.runner.generator_for", lambda *args: generator)
    made = await jobs.create("x", spec=validate_spec(SPEC), out=tmp_path)
    assert made.ok and exported(made) is not None
    assert generator.seen["served"] == 2
    pid = generator.seen["pid"]
    assert isinstance(pid, int)
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)  # stopped when generate ended, before install, build and test
    ctx = made.ctx
    assert ctx.warm is not None and ctx.warm.process is None
    assert ctx.result.build is not None and ctx.result.build.argv == jobs.pack.build
    results = ctx.result.test_results
    assert results is not None and tuple(results.command) == verify.test_argv(ctx)
    assert results.total > 0 and results.success


ATTACK = """// @ts-nocheck
import { it, expect } from 'vitest';
import * as fs from 'node:fs';
import * as net from 'node:net';
// Refused either way: a read-only mount (EROFS) or a file the sandbox uid may not write.
const refused = (e) => ['EROFS', 'EACCES'].includes(e.code);
const code = (fn) => {
  try { fn(); return 'done'; } catch (e) { return refused(e) ? 'refused' : e.code; }
};
it('cannot write the sources, the shared tree or the checker', () => {
  expect(code(() => fs.appendFileSync('src/index.ts', '// changed\\n'))).toBe('refused');
  expect(code(() => fs.writeFileSync('node_modules/planted.js', 'x'))).toBe('refused');
  expect(code(() => fs.writeFileSync('.plugin-bot-warm/warm-checker.mjs', 'x'))).toBe('refused');
});
it('has no network', async () => {
  const outcome = await new Promise((resolve) => {
    const socket = net.connect({ host: '1.1.1.1', port: 53 });
    socket.on('connect', () => { socket.destroy(); resolve('connected'); });
    socket.on('error', (e) => resolve(e.code));
  });
  expect(outcome).toBe('ENETUNREACH');
});
"""


async def test_a_warm_round_runs_in_the_same_sandbox_as_a_cold_one(warm_ctx: JobContext) -> None:
    warm_ctx.require_files().write("__tests__/attack.test.ts", ATTACK.encode())
    report = await sandbox_checks(warm_ctx, install=False)
    assert warm_ctx.warm is not None and warm_ctx.warm.served == 1, warm_ctx.warm
    assert report.passed, report.summary
    assert b"// changed" not in (warm_ctx.require_plugin() / "src" / "index.ts").read_bytes()


# Round 1 leaves state behind in every place the kept test thread could carry it: a module
# of the plugin, a global, process.env and plugin-sql's registry of database clients.
COUNTER = "let count = 0;\nexport function bump(): number {\n  count += 1;\n  return count;\n}\n"
LEAVES = """// @ts-nocheck
import { it, expect } from 'vitest';
import { bump } from '../src/counter';
const registry = () => globalThis[Symbol.for('@elizaos/plugin-sql/global-singletons')];
it('counts from one', () => { expect(bump()).toBe(1); });
it('leaves state behind', () => {
  globalThis.leftOver = 'round 1';
  process.env.LEFT_OVER = 'round 1';
  if (registry()) registry().leftOver = 'round 1';
});
"""
# Round 2 passes only if that state is still there: a cold round fails every one of these.
NEEDS = """// @ts-nocheck
import { it, expect } from 'vitest';
import { bump } from '../src/counter';
const registry = () => globalThis[Symbol.for('@elizaos/plugin-sql/global-singletons')];
it('counts on from the last round', () => { expect(bump()).toBe(2); });
it('finds the global of the last round', () => { expect(globalThis.leftOver).toBe('round 1'); });
it('finds the env of the last round', () => { expect(process.env.LEFT_OVER).toBe('round 1'); });
it('finds the registry entry of the last round', () => {
  expect(registry()?.leftOver).toBe('round 1');
});
"""
# A global a round made non-configurable cannot be taken back: the next round gets a new
# test thread.
STUCK = """// @ts-nocheck
import { it } from 'vitest';
it('leaves a global that cannot be deleted', () => {
  Object.defineProperty(globalThis, 'stuck', { value: 'round 3', configurable: false });
});
"""
NEEDS_STUCK = """// @ts-nocheck
import { it, expect } from 'vitest';
it('finds the stuck global of the last round', () => { expect(globalThis.stuck).toBe('round 3'); });
"""
ADDED = """import { it, expect } from 'vitest';
it('was added between rounds', () => { expect(1 + 1).toBe(2); });
"""


async def test_state_a_round_leaves_cannot_make_the_next_round_pass(
    warm_ctx: JobContext, cold_ctx: JobContext
) -> None:
    for ctx in (warm_ctx, cold_ctx):
        ctx.require_files().write("src/counter.ts", COUNTER.encode())
        ctx.require_files().write("__tests__/state.test.ts", LEAVES.encode())
    first, cold = await both(warm_ctx, cold_ctx)
    assert first.passed and cold.passed, first.summary
    assert first.tests_total == cold.tests_total

    for ctx in (warm_ctx, cold_ctx):
        ctx.require_files().write("__tests__/state.test.ts", NEEDS.encode())
    second, cold = await both(warm_ctx, cold_ctx)
    assert not second.passed
    for name in ("counts on from", "finds the global", "finds the env", "finds the registry"):
        assert name in second.summary, second.summary
    assert second.summary == cold.summary
    assert second.tests_total == cold.tests_total == first.tests_total + 2

    # The integration test (a real AgentRuntime on PGlite) passed in both warm rounds: each
    # got its own database, not the closed client the previous round left in plugin-sql.
    assert "the plugin in a real AgentRuntime" not in second.summary

    for ctx in (warm_ctx, cold_ctx):
        ctx.require_files().write("__tests__/state.test.ts", STUCK.encode())
    third, cold = await both(warm_ctx, cold_ctx)
    assert third.passed and cold.passed, third.summary
    for ctx in (warm_ctx, cold_ctx):
        ctx.require_files().write("__tests__/state.test.ts", NEEDS_STUCK.encode())
    fourth, cold = await both(warm_ctx, cold_ctx)
    assert not fourth.passed and "finds the stuck global" in fourth.summary, fourth.summary
    assert fourth.summary == cold.summary
    assert warm_ctx.warm is not None and warm_ctx.warm.fallbacks == []


async def test_a_test_file_added_between_warm_rounds_runs_and_a_fixed_one_passes(
    warm_ctx: JobContext, cold_ctx: JobContext
) -> None:
    first = await sandbox_checks(warm_ctx, install=False)
    assert first.passed
    for ctx in (warm_ctx, cold_ctx):
        ctx.require_files().write("__tests__/added.test.ts", ADDED.replace("2);", "3);").encode())
    failing, cold = await both(warm_ctx, cold_ctx)
    assert not failing.passed and "was added between rounds" in failing.summary
    assert failing.summary == cold.summary
    assert failing.tests_total == first.tests_total + 1
    for ctx in (warm_ctx, cold_ctx):
        ctx.require_files().write("__tests__/added.test.ts", ADDED.encode())
    fixed, cold = await both(warm_ctx, cold_ctx)
    assert fixed.passed and fixed.tests_total == first.tests_total + 1
    assert fixed.summary == cold.summary
    assert warm_ctx.warm is not None and warm_ctx.warm.fallbacks == []


# Round 1 leaves state where restoring globals, plain registries and process.env does not
# reach: builtin prototypes, @elizaos/core's exports (a module of node_modules the kept
# thread imported once), a timer still running, a process listener, process.exitCode.
PATCHES = """// @ts-nocheck
import { it } from 'vitest';
import * as core from '@elizaos/core';
it('patches what the thread keeps', () => {
  Object.defineProperty(Array.prototype, 'leftOver', { value: 'round 1', configurable: true });
  Object.defineProperty(Object.prototype, 'leftOverToo', { value: 'round 1', configurable: true });
  core.AgentRuntime.prototype.leftOver = 'round 1';
  core.ModelType.LEFT_OVER = 'round 1';
  setInterval(() => { globalThis.fromTimer = 'round 1'; }, 5);
  process.on('leftOver', () => undefined);
  process.exitCode = 7;
});
"""
# Round 2 passes only where that state survived; a cold round fails every test.
NEEDS_PATCHES = """// @ts-nocheck
import { it, expect } from 'vitest';
import * as core from '@elizaos/core';
it('sees the patched Array.prototype', () => { expect([].leftOver).toBe('round 1'); });
it('sees the patched Object.prototype', () => { expect({}.leftOverToo).toBe('round 1'); });
it('sees the patched core class', () => {
  expect(core.AgentRuntime.prototype.leftOver).toBe('round 1');
});
it('sees the patched core object', () => { expect(core.ModelType.LEFT_OVER).toBe('round 1'); });
it('sees the timer of the last round', async () => {
  await new Promise((resolve) => setTimeout(resolve, 100));
  expect(globalThis.fromTimer).toBe('round 1');
});
it('sees the listener of the last round', () => {
  expect(process.listenerCount('leftOver')).toBe(1);
});
it('sees the exit code of the last round', () => { expect(process.exitCode).toBe(7); });
"""


async def test_patched_builtins_core_exports_timers_and_listeners_do_not_reach_the_next_round(
    warm_ctx: JobContext, cold_ctx: JobContext
) -> None:
    first, cold = await both(warm_ctx, cold_ctx)
    for ctx in (warm_ctx, cold_ctx):
        ctx.require_files().write("__tests__/patches.test.ts", PATCHES.encode())
    patched, cold = await both(warm_ctx, cold_ctx)
    assert patched.tests_total == cold.tests_total == first.tests_total + 1
    for ctx in (warm_ctx, cold_ctx):
        ctx.require_files().write("__tests__/patches.test.ts", NEEDS_PATCHES.encode())
    needs, cold = await both(warm_ctx, cold_ctx)
    assert not needs.passed and not cold.passed
    for name in (
        "patched Array.prototype",
        "patched Object.prototype",
        "patched core class",
        "patched core object",
        "timer of the last round",
        "listener of the last round",
        "exit code of the last round",
    ):
        assert f"sees the {name}" in needs.summary, needs.summary
    assert needs.summary == cold.summary
    assert needs.tests_total == cold.tests_total == first.tests_total + 7

    # A test file deleted between rounds does not run any more, warm as cold.
    for ctx in (warm_ctx, cold_ctx):
        ctx.require_files().remove("__tests__/patches.test.ts")
    gone, cold = await both(warm_ctx, cold_ctx)
    assert gone.passed and cold.passed, (gone.summary, cold.summary)
    assert gone.tests_total == cold.tests_total == first.tests_total
    assert gone.summary == cold.summary
    assert warm_ctx.warm is not None and warm_ctx.warm.fallbacks == []

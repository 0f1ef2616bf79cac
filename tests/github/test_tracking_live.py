"""The tracking comment while a model job runs: tokens, cost, "check round N of M" and the
latest activity show as they change, not only at the end; the edit throttle holds and the
last state is always written; the model's text is neutralised.

The job runs through the real runner, the GitHub stand-in and the tracking comment; the
model is the scripted Messages API through the real SDK and the checked tools, with the
fast checks of tests/unit/test_agent_loop (no npm).
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

from bot import status
from bot.agent import ModelGenerator
from bot.github.desk import job_view
from bot.github.tracking import TrackingReporter
from bot.pipeline.context import JobContext, JobProgress, Phase, PhaseRecord
from tests.fakes.messages_api import ScriptedMessagesAPI, tool_use_reply, usage
from tests.github import test_end_to_end as e2e
from tests.unit.test_agent_loop import CHECK, FINISH, FakeChecks, types_dir, write

bot = e2e.bot  # the end-to-end fixture: server, dispatcher, stand-in GitHub, store
HOSTILE = "docs/@everyone [win](https://evil.example) <img src=x>.md"


def model_phases(api: ScriptedMessagesAPI, tmp_path: Path) -> list[tuple[str, Phase]]:
    async def model_generate(ctx: JobContext) -> None:
        provider = api.provider(meter=ctx.tools.meter)  # the job's one meter
        generator = ModelGenerator(
            provider, max_rounds=3, checks=FakeChecks(), core_types_dir=types_dir(tmp_path)
        )
        await generator.generate(ctx)

    phases = dict(e2e.FAST_PHASES)
    phases["generate"] = model_generate
    return list(phases.items())


async def test_tokens_cost_and_the_check_round_show_while_the_model_works(
    bot: e2e.Bot, tmp_path: Path
) -> None:
    api = ScriptedMessagesAPI().add(
        tool_use_reply(
            write("src/units.ts", "export const UNIT = 'c';\n"),
            write(HOSTILE, "x"),
            usage_=usage(1000, 200),
        ),
        tool_use_reply(CHECK, usage_=usage(1500, 100)),
        tool_use_reply(FINISH, usage_=usage(1700, 50)),
    )
    await bot.comment()
    await bot.dispatch()
    job = await bot.claim()
    runner = bot.jobs_runner()
    runner.phases = model_phases(api, tmp_path)
    outcome = await runner.run(job_view(job))
    assert outcome.ok, outcome.ctx.failed_phase
    api.assert_done()

    [tracking] = bot.github.bot_comments(e2e.ISSUE)
    during = [body for body in tracking.history if "- 🔄 generate" in body]
    assert during, "no edit while the model worked"
    # While generate runs: the tokens of the calls so far, their cost, the round.
    live = [re.search(r"\b(\d+) tokens, \$\d+\.\d{4}", body) for body in during]
    assert any(found and 0 < int(found[1]) < 1200 + 1600 + 1750 for found in live)
    assert any("check round 1 of 3" in body for body in during)
    assert any("Latest: check round 1 of 3" in body for body in during)
    # The last state: every call counted, one check round of three.
    meter = outcome.meter
    assert meter.usage.total == 1200 + 1600 + 1750
    final = tracking.history[-1]
    assert f"check round 1 of 3 · tests 1 passed, 0 failed · {meter.usage.total} tokens, $" in (
        final
    )
    assert f"${meter.cost_usd:.4f}" in final
    # What the model sent is shown as text, never as a mention, link or image.
    for body in tracking.history:
        assert "@everyone" not in body and "](https" not in body
        assert re.search(r"(?<!\\)<img", body) is None


def tracking(edits: list[str], interval_s: float) -> TrackingReporter:
    async def edit(body: str) -> None:
        edits.append(body)

    return TrackingReporter(
        edit, job_id="abc123", requester="octocat", phases=("generate",), interval_s=interval_s
    )


async def test_live_counters_are_throttled_and_the_last_ones_are_written() -> None:
    edits: list[str] = []
    reporter = tracking(edits, interval_s=1.5)
    reporter.phase_started("generate")
    await asyncio.sleep(0)
    for turn in range(1, 21):
        reporter.progress_changed(
            JobProgress(
                tokens=100 * turn,
                cost_usd=0.001 * turn,
                round=turn // 5,
                max_rounds=5,
                activity=status.activity_model_turn(turn, [("run_checks", "")]),
            )
        )
        await asyncio.sleep(0)
    reporter.phase_finished("generate", PhaseRecord("generate", "passed", 3.0))
    await reporter.close(state="succeeded", pr_url="https://github.com/o/r/pull/1")
    assert len(edits) == 2  # the first change, then (within the hour) only the last state
    assert "check round 4 of 5 · 2000 tokens, $0.0200" in edits[-1]


async def test_the_model_activity_line_is_neutralised() -> None:
    edits: list[str] = []
    reporter = tracking(edits, interval_s=0.0)
    reporter.phase_started("generate")
    reporter.progress_changed(
        JobProgress(
            tokens=10,
            cost_usd=0.0,
            round=0,
            max_rounds=5,
            activity=status.activity_model_turn(1, [("write_file", HOSTILE)]),
        )
    )
    for _ in range(5):
        await asyncio.sleep(0)
    [body] = [b for b in edits if "Latest: model turn 1" in b]
    assert "@everyone" not in body and "](https" not in body
    assert re.search(r"(?<!\\)<img", body) is None
    assert "write\\_file docs/" in body
    await reporter.close(state="failed", error="stopped")

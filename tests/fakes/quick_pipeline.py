"""A fast stand-in pipeline for job tests: the real spec and publish phases around a
``work`` phase steered by words in the description.

    sleep N            run ``sleep N`` as a sandboxed command of the job (cancel kills it)
    sleep-once N PATH  sleep only while PATH does not exist (and create it): the first
                       attempt hangs, a retry passes
    hold PATH          run (a sandboxed command, as ``sleep``) until PATH exists: the test
                       decides when the job ends
    fail-own           fail as the plugin's own code would (never retried)
    fail-transient-once PATH  fail with a transient error while PATH does not exist
"""

from __future__ import annotations

import shlex
from pathlib import Path

from bot.llm import ModelAPIError
from bot.pipeline.context import JobContext, Phase, PhaseFailed
from bot.pipeline.publish import publish_phase
from bot.pipeline.spec import spec_phase
from bot.workspace import FileSet

MARKER = "plugin-bot-quick-job"


def _word_after(words: list[str], word: str, n: int = 1) -> list[str]:
    at = words.index(word)
    return words[at + 1 : at + 1 + n]


async def work_phase(ctx: JobContext) -> None:
    assert ctx.tools.publisher is not None
    await ctx.tools.publisher.preflight(ctx)
    spec = ctx.result.spec
    assert spec is not None
    plugin = ctx.workspace / spec.name
    plugin.mkdir()
    ctx.result.plugin_dir = plugin
    ctx.result.files = FileSet(plugin)
    ctx.result.files.write("README.md", f"{spec.name}\n{ctx.request.job_id}\n".encode())
    words = ctx.request.description.split()
    if "sleep" in words:
        (seconds,) = _word_after(words, "sleep")
        await _sleep(ctx, seconds)
    if "hold" in words:
        (path,) = _word_after(words, "hold")
        await _command(ctx, f"while [ ! -e {shlex.quote(path)} ]; do sleep 0.05; done", "hold")
    if "sleep-once" in words:
        seconds, path = _word_after(words, "sleep-once", 2)
        if not Path(path).exists():
            Path(path).write_text(ctx.request.job_id)
            await _sleep(ctx, seconds)
    if "fail-own" in words:
        raise PhaseFailed("the plugin's tests failed", "1 failed")
    if "fail-transient-once" in words:
        (path,) = _word_after(words, "fail-transient-once")
        if not Path(path).exists():
            Path(path).write_text(ctx.request.job_id)
            raise ModelAPIError("the model API is overloaded (529) after 3 attempts", status=529)


async def _sleep(ctx: JobContext, seconds: str) -> None:
    await _command(ctx, f"sleep {seconds}", "sleep")


async def _command(ctx: JobContext, script: str, what: str) -> None:
    # The marker lets a test find the process (and prove it is gone after a cancel).
    argv = ["sh", "-c", f"{script}; : {MARKER}-{ctx.request.job_id}"]
    result = await ctx.run(argv, ctx.workspace)
    if not result.ok:
        raise PhaseFailed(f"{what} {result.describe_outcome()}")


QUICK_PHASES: list[tuple[str, Phase]] = [
    ("spec", spec_phase),
    ("work", work_phase),
    ("publish", publish_phase),
]

"""The whole generate loop at the HTTP layer: ModelGenerator, the real AnthropicProvider
and Meter, and the real ``anthropic`` SDK, against a scripted fake of POST /v1/messages.

No network and no model: every answer comes from ``ScriptedMessagesAPI``, every request
the SDK sent is recorded (``api.bodies``), and retries sleep into ``api.delays``. The build
and tests are faked (``FakeChecks``, no npm) except for the cancellation test, which runs a
real process tree through the sandbox's DirectBackend and checks /proc afterwards.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from bot.agent import ModelGenerator
from bot.llm import Meter, Usage
from bot.pipeline.context import JobCancelled, JobContext, PhaseFailed
from bot.sandbox import DirectBackend, Sandbox
from bot.settings import Settings
from tests.conftest import eventually
from tests.fakes.messages_api import (
    ScriptedMessagesAPI,
    error_reply,
    tool_use_reply,
    usage,
)
from tests.unit.test_agent_loop import (
    BROKEN,
    CHECK,
    FINISH,
    FIXED,
    FakeChecks,
    make_ctx,
    snapshot,
    types_dir,
    write,
)


@pytest.fixture(autouse=True)
def _no_anthropic_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "ANTHROPIC_API_KEY",
        "ANTHROPIC_MODEL",
        "ANTHROPIC_BASE_URL",
        "ANTHROPIC_AUTH_TOKEN",
    ):
        monkeypatch.delenv(name, raising=False)


def make_settings(**overrides: Any) -> Settings:
    values: dict[str, Any] = {"anthropic_api_key": "sk-ant-test"}
    values.update(overrides)
    return Settings(**values)


def setup(
    tmp_path: Path,
    api: ScriptedMessagesAPI,
    *,
    settings: Settings | None = None,
    checks: Any = None,
    **ctx_overrides: Any,
) -> tuple[ModelGenerator, JobContext, Meter]:
    """A generator on the real provider wired to ``api``, and a job with a rendered scaffold."""
    settings = settings or make_settings()
    meter = Meter(settings)
    provider = api.provider(settings=settings, meter=meter)
    gen = ModelGenerator(
        provider, checks=checks or FakeChecks(), core_types_dir=types_dir(tmp_path)
    )
    return gen, make_ctx(tmp_path, gen, **ctx_overrides), meter


def tool_results(body: dict[str, Any]) -> list[dict[str, Any]]:
    """The tool_result blocks of the last (user) message of a recorded request body."""
    last = body["messages"][-1]
    assert last["role"] == "user"
    blocks: list[dict[str, Any]] = last["content"]
    assert all(b["type"] == "tool_result" for b in blocks)
    return blocks


def tool_use_ids(body: dict[str, Any]) -> list[str]:
    """The ids of the tool_use blocks of the assistant turn sent back in ``body``."""
    assistant = body["messages"][-2]
    assert assistant["role"] == "assistant"
    return [b["id"] for b in assistant["content"] if b["type"] == "tool_use"]


# ------------------------------------------------------------------------------- 1


async def test_http_compile_error_is_seen_and_fixed_with_cache_reads(tmp_path: Path) -> None:
    api = ScriptedMessagesAPI().add(
        tool_use_reply(
            write("src/helper.ts", BROKEN),
            CHECK,
            thinking=True,
            usage_=usage(500, 40, cache_creation_input_tokens=3000),
        ),
        tool_use_reply(
            write("src/helper.ts", FIXED),
            CHECK,
            usage_=usage(300, 30, cache_read_input_tokens=3000),
        ),
        tool_use_reply(FINISH, usage_=usage(200, 5, cache_read_input_tokens=3000)),
    )
    gen, ctx, meter = setup(tmp_path, api)
    await gen.generate(ctx)
    api.assert_done()

    assert (ctx.require_plugin() / "src/helper.ts").read_text() == FIXED
    assert len(api.bodies) == 3

    # Request 2 carries the compiler error, file:line, as the run_checks tool_result.
    second = tool_results(api.bodies[1])
    assert [r["tool_use_id"] for r in second] == tool_use_ids(api.bodies[1])
    assert [r["is_error"] for r in second] == [False, True]
    assert "BUILD FAILED" in second[1]["content"]
    assert "src/helper.ts:3:7 error TS2322" in second[1]["content"]
    # the signed thinking block travelled back unmodified
    assert api.bodies[1]["messages"][-2]["content"][0] == {
        "type": "thinking",
        "thinking": "",
        "signature": "sig-fake",
    }
    third = tool_results(api.bodies[2])
    assert third[1]["is_error"] is False and "TESTS PASSED" in third[1]["content"]

    assert ctx.result.rounds_used == 2
    assert ctx.result.model_turns == 3
    expected = Usage(500 + 300 + 200, 40 + 30 + 5, 3000, 3000 + 3000)
    assert ctx.tools.meter.usage == expected
    assert meter.usage == expected and meter.calls == 3 and meter.cost_usd > 0
    assert ctx.tools.meter.usage is not None
    assert ctx.tools.meter.usage.cache_share == pytest.approx(6000 / 10000)
    assert ctx.tools.meter.usage.cache_share > 0

    # Prompt caching: the last system block and the last tool are the cache breakpoints,
    # and the prefix is identical every request so the cache can serve it.
    for body in api.bodies:
        assert body["system"][-1]["cache_control"] == {"type": "ephemeral"}
        assert all("cache_control" not in b for b in body["system"][:-1])
        assert body["tools"][-1]["cache_control"] == {"type": "ephemeral"}
        assert all("cache_control" not in t for t in body["tools"][:-1])
        assert body["system"] == api.bodies[0]["system"]
        assert body["tools"] == api.bodies[0]["tools"]
    note = ctx.tools.reporter.notes[-1]  # type: ignore[attr-defined]
    assert "2 check round(s) of 5" in note and "60% of input from cache" in note


# ------------------------------------------------------------------------------- 2


async def test_http_hostile_paths_are_refused_and_disk_untouched(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "passwd").write_text("root:x:0:0\n")
    absolute = str(outside / "passwd")
    api = ScriptedMessagesAPI().add(
        tool_use_reply(
            write("../../etc/passwd", "pwned"),
            write(".github/workflows/x.yml", "on: push"),
            write(absolute, "pwned"),
            write("src/linkdir/passwd", "pwned"),  # through a symlinked directory
            write("src/linked.ts", "pwned"),  # a symlinked file
            ("delete_file", {"path": "src/linked.ts"}),
        ),
        tool_use_reply(CHECK),
        tool_use_reply(FINISH),
    )
    gen, ctx, _ = setup(tmp_path, api)
    plugin = ctx.require_plugin()
    (plugin / "src" / "linkdir").symlink_to(outside, target_is_directory=True)
    (plugin / "src" / "linked.ts").symlink_to(outside / "passwd")
    before_plugin, before_outside = snapshot(plugin), snapshot(outside)

    await gen.generate(ctx)
    api.assert_done()

    assert snapshot(plugin) == before_plugin
    assert snapshot(outside) == before_outside
    assert (outside / "passwd").read_text() == "root:x:0:0\n"
    assert not (plugin / ".github").exists()

    results = tool_results(api.bodies[1])
    assert [r["tool_use_id"] for r in results] == tool_use_ids(api.bodies[1])
    assert [r["is_error"] for r in results] == [True] * 6
    assert all(r["content"].startswith("refused: ") for r in results)
    assert "'..'" in results[0]["content"]
    assert ".github/" in results[1]["content"]
    assert "absolute" in results[2]["content"]
    assert "symlink" in results[3]["content"]
    assert "symlink" in results[4]["content"]
    assert "not an existing file" in results[5]["content"]  # a planted link is no plugin file
    assert ctx.result.rounds_used == 1


# ------------------------------------------------------------------------------- 3


async def test_http_malformed_tool_input_is_an_error_and_the_loop_goes_on(
    tmp_path: Path,
) -> None:
    api = ScriptedMessagesAPI().add(
        tool_use_reply(
            ("write_file", {"path": "src/a.ts"}),
            ("write_file", {"path": 5, "content": "x"}),
            ("read_file", {}),
        ),
        tool_use_reply(write("src/a.ts", FIXED), CHECK),
        tool_use_reply(FINISH),
    )
    gen, ctx, _ = setup(tmp_path, api)
    before = snapshot(ctx.require_plugin())
    await gen.generate(ctx)
    api.assert_done()

    results = tool_results(api.bodies[1])
    assert [r["is_error"] for r in results] == [True, True, True]
    assert "missing field(s) content" in results[0]["content"]
    assert "'path' must be a string" in results[1]["content"]
    assert "missing field(s) path" in results[2]["content"]
    # the loop went on: the next turn's write and checks worked
    after = tool_results(api.bodies[2])
    assert [r["is_error"] for r in after] == [False, False]
    assert snapshot(ctx.require_plugin()) == {**before, "src/a.ts": ("file", FIXED.encode())}
    assert ctx.result.rounds_used == 1


# ------------------------------------------------------------------------------- 4


async def test_http_429_with_retry_after_then_success(tmp_path: Path) -> None:
    api = ScriptedMessagesAPI().add(
        error_reply(429, retry_after=2),
        tool_use_reply(CHECK),
        tool_use_reply(FINISH),
    )
    gen, ctx, meter = setup(tmp_path, api)
    await gen.generate(ctx)
    api.assert_done()
    assert api.delays == [2.0]
    assert len(api.bodies) == 3
    assert api.bodies[0] == api.bodies[1]  # the retry re-sent the same request
    assert ctx.result.model_turns == 2 and ctx.result.rounds_used == 1
    assert meter.calls == 2  # the 429 is not counted as a call with usage


# ------------------------------------------------------------------------------- 5


async def test_http_529_three_times_fails_clearly(tmp_path: Path) -> None:
    api = ScriptedMessagesAPI().add(error_reply(529), error_reply(529), error_reply(529))
    settings = make_settings(anthropic_max_retries=2)
    gen, ctx, meter = setup(tmp_path, api, settings=settings)
    with pytest.raises(PhaseFailed) as failed:
        await gen.generate(ctx)
    api.assert_done()
    message = failed.value.message
    assert "529" in message and "overloaded" in message
    assert message == "the model call failed: the model API is overloaded (529) after 3 attempts"
    assert len(api.bodies) == 3
    assert len(api.delays) == 2
    assert ctx.result.model_turns == 0 and meter.calls == 0


# ------------------------------------------------------------------------------- 6


async def test_http_budget_exhausted_mid_loop_sends_nothing_more(tmp_path: Path) -> None:
    api = ScriptedMessagesAPI().add(
        tool_use_reply(write("src/helper.ts", FIXED), CHECK, usage_=usage(900, 200)),
    )
    settings = make_settings(job_budget_tokens=1000)
    gen, ctx, meter = setup(tmp_path, api, settings=settings)
    with pytest.raises(PhaseFailed) as failed:
        await gen.generate(ctx)
    api.assert_done()
    assert failed.value.message == "token budget of 1,000 reached (used 1,100)"
    assert len(api.bodies) == 1  # the second call was stopped before any request
    assert ctx.result.rounds_used == 1 and ctx.result.model_turns == 1
    assert ctx.tools.meter.usage == Usage(900, 200) == meter.usage
    assert (ctx.require_plugin() / "src/helper.ts").read_text() == FIXED


# ------------------------------------------------------------------------------- 7


def processes_with(marker: str) -> list[int]:
    """Pids of live (non-zombie) processes whose argv contains ``marker``."""
    found: list[int] = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        state = stat.rsplit(")", 1)[-1].split()[0] if ")" in stat else ""
        if marker.encode() in cmdline and state != "Z":
            found.append(int(entry))
    return found


async def test_http_cancel_mid_round_kills_the_process_tree(tmp_path: Path) -> None:
    # A unique duration is the marker: it is in the argv of the shell and both sleeps.
    marker = f"600.{secrets.randbelow(10**9):09d}"
    script = f"sleep {marker} & sleep {marker}; wait"
    api = ScriptedMessagesAPI().add(tool_use_reply(write("src/helper.ts", FIXED), CHECK))
    settings = make_settings()
    meter = Meter(settings)
    gen = ModelGenerator(
        api.provider(settings=settings, meter=meter), core_types_dir=types_dir(tmp_path)
    )
    cancel = asyncio.Event()
    ctx = make_ctx(tmp_path, gen, cancel=cancel, sandbox=Sandbox(backend=DirectBackend()))
    ctx.tools.pack = replace(ctx.tools.pack, build=("sh", "-c", script))
    (ctx.require_plugin() / "node_modules").mkdir()  # so the checks do not install

    seen: list[int] = []

    async def cancel_once_running() -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            pids = processes_with(marker)
            if len(pids) >= 3:  # sh and both sleeps
                seen.extend(pids)
                cancel.set()
                return
            await asyncio.sleep(0.02)
        cancel.set()

    watcher = asyncio.create_task(cancel_once_running())
    try:
        with pytest.raises(PhaseFailed) as failed:
            await asyncio.wait_for(gen.generate(ctx), 120)
    finally:
        watcher.cancel()
    assert isinstance(failed.value, JobCancelled)
    assert len(seen) >= 3, "the build never started"
    assert failed.value.result is not None and failed.value.result.cancelled
    api.assert_done()
    assert len(api.bodies) == 1  # no request after the cancel
    assert ctx.result.rounds_used == 1
    # the whole tree is gone, the background sleep included
    await eventually(lambda: processes_with(marker) == [], what="no process of the build left")

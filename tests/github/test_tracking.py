"""The tracking comment: its Markdown, its throttle, and its last state always written."""

from __future__ import annotations

import asyncio
import re
import time

from bot import status
from bot.github.tracking import TrackingReporter
from bot.pipeline.context import PhaseRecord
from tests.conftest import eventually

PHASES = ("spec", "scaffold", "test")


def reporter(edits: list[str], interval_s: float) -> TrackingReporter:
    async def edit(body: str) -> None:
        edits.append(body)

    return TrackingReporter(
        edit, job_id="abc123", requester="octocat", phases=PHASES, interval_s=interval_s
    )


async def test_every_phase_is_shown_when_the_job_pauses_between_them() -> None:
    edits: list[str] = []
    tracking = reporter(edits, interval_s=0.0)
    for name in PHASES:
        tracking.phase_started(name)
        for _ in range(3):
            await asyncio.sleep(0)
        tracking.phase_finished(name, PhaseRecord(name, "passed", 1.5))
    await tracking.close(state="succeeded", pr_url="https://github.com/o/r/pull/7")
    for name in PHASES:
        assert any(f"🔄 {name}" in body for body in edits), name
    assert "- ✅ test (1.5s)" in edits[-1]
    assert edits[-1].endswith("**Done:** the pull request is https://github.com/o/r/pull/7")


async def test_changes_faster_than_the_interval_are_coalesced_and_the_last_is_written() -> None:
    edits: list[str] = []
    tracking = reporter(edits, interval_s=1.5)
    for name in PHASES:
        tracking.phase_started(name)
        await asyncio.sleep(0)
        tracking.phase_finished(name, PhaseRecord(name, "passed", 0.1))
        await asyncio.sleep(0)
    await tracking.close(state="failed", failed_phase="test", error="2 tests failed")
    assert len(edits) == 2  # the first change, then (1.5 s on) only the final state
    assert "- ✅ test" in edits[-1]
    assert "**Failed in `test`:** 2 tests failed" in edits[-1]
    assert "`/plugin-retry abc123`" in edits[-1]


def test_the_comment_shows_facts_and_neutralises_outside_text() -> None:
    view = status.TrackingView(
        job_id="abc123",
        requester="octocat",
        state="failed",
        phases=[status.PhaseLine("test", "failed", 2.0, "@team see <img src=x>")],
        plugin_name="plugin-weather",
        round=2,
        max_rounds=5,
        tests_passed=3,
        tests_failed=1,
        tokens=1200,
        cost_usd=0.0123,
        elapsed_s=75.0,
        failed_phase="test",
        error="[click](https://evil.example) @everyone",
        failure_tail="FAIL x\n```\n@octocat",
    )
    body = status.tracking_comment(view)
    assert body.startswith("<!-- plugin-bot:tracking job=abc123 -->\n")
    assert "check round 2 of 5 · tests 3 passed, 1 failed · 1200 tokens, $0.0123" in body
    assert "elapsed 1m 15s" in body
    # Markup arrives escaped (it renders as the characters themselves), never live.
    assert re.search(r"(?<!\\)<img", body) is None and "](https" not in body
    assert "\\<img src\\=x\\>" in body
    assert "@team" not in body and "@everyone" not in body
    # The log tail sits in a fence that its own backticks cannot close.
    assert "````text\nFAIL x\n```\n@octocat\n````" in body


async def test_the_final_write_waits_out_the_interval_after_the_previous_edit() -> None:
    # A job that fails right after a phase change: the flusher has just edited the comment;
    # the final state still goes out, but not sooner than the interval allows.
    stamps: list[float] = []

    async def edit(body: str) -> None:
        stamps.append(time.monotonic())

    tracking = TrackingReporter(
        edit, job_id="abc123", requester="octocat", phases=("spec",), interval_s=0.4
    )
    tracking.phase_started("spec")
    await eventually(lambda: stamps, what="the flusher's first edit")
    tracking.phase_finished("spec", PhaseRecord("spec", "failed", 0.1, error="bad spec"))
    final = await tracking.close(state="failed", failed_phase="spec", error="bad spec")
    assert len(stamps) == 2
    assert stamps[1] - stamps[0] >= 0.4, stamps
    assert "bad spec" in final


async def test_the_interval_runs_from_the_end_of_the_previous_edit() -> None:
    # A slow GitHub answer (or a slow render) must not eat into the interval: the next edit
    # starts no sooner than interval_s after the previous one ended.
    starts: list[float] = []
    ends: list[float] = []

    async def slow_edit(body: str) -> None:
        starts.append(time.monotonic())
        await asyncio.sleep(0.3)
        ends.append(time.monotonic())

    tracking = TrackingReporter(
        slow_edit, job_id="abc123", requester="octocat", phases=("spec",), interval_s=0.4
    )
    tracking.phase_started("spec")
    await eventually(lambda: ends, what="the flusher's first edit answered")
    tracking.phase_finished("spec", PhaseRecord("spec", "failed", 0.1, error="bad spec"))
    await tracking.close(state="failed", failed_phase="spec", error="bad spec")
    assert len(starts) == 2 and len(ends) == 2
    assert starts[1] - ends[0] >= 0.4, (starts, ends)

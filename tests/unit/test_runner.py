"""The one runner: a job's parts, its cancel signal in every command, its publisher."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from dataclasses import replace
from pathlib import Path

import pytest

from bot.pipeline import run_phases, verify
from bot.pipeline.context import JobContext, JobRequest, Origin, PhaseFailed
from bot.pipeline.publish import LocalExport
from bot.pipeline.scaffold import scaffold_phase
from bot.pipeline.sign import predicate_for
from bot.sandbox import DirectBackend, Sandbox
from bot.testresults import TestResults
from tests.unit.test_agent_loop import ScriptedProvider, generator, make_ctx

# Unique to this run: another suite on the machine may be running the same test.
MARKER = f"plugin-bot-cancel-marker-{uuid.uuid4().hex}"


def _processes_with(marker: str) -> list[str]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if marker.encode() in cmdline:
                found.append(entry.name)
    return found


@pytest.mark.parametrize(
    ("name", "phase"), [("build", verify.build_phase), ("test", verify.test_phase)]
)
async def test_cancel_kills_the_build_and_test_commands_and_records_cancelled(
    tmp_path: Path, name: str, phase: object
) -> None:
    ctx = make_ctx(tmp_path, None, sandbox=Sandbox(backend=DirectBackend()))
    # A command that would run 30 s; its process carries a marker we can look for.
    slow = ("sh", "-c", f"sleep 30; echo {MARKER}")
    ctx.tools.pack = replace(ctx.tools.pack, build=slow, test=slow)
    asyncio.get_running_loop().call_later(0.3, ctx.tools.cancel.set)
    # Without the cancel the command would finish after 30 s and the phase would pass.
    assert not await run_phases(ctx, [(name, phase), ("sign", _never)])  # type: ignore[list-item]
    assert ctx.result.records[name].state == "cancelled"
    assert ctx.result.records["sign"].state == "skipped"
    assert ctx.failed_phase is None
    assert _processes_with(MARKER) == []


async def test_cancel_reaches_the_install(tmp_path: Path) -> None:
    seen: list[asyncio.Event | None] = []

    class Deps:
        node_version = "20"

        async def install(
            self, *args: object, prepare: object = None, cancel: asyncio.Event | None = None
        ) -> None:
            seen.append(cancel)
            raise AssertionError("stop here")

    ctx = make_ctx(tmp_path, None, deps=Deps())
    await run_phases(ctx, [("install", verify.install_phase)])
    assert seen == [ctx.tools.cancel]


async def _never(ctx: JobContext) -> None:
    raise AssertionError("a phase after a cancel must not run")


async def test_a_cancel_before_a_phase_starts_stops_the_job_there(tmp_path: Path) -> None:
    ctx = make_ctx(tmp_path, None)
    ctx.tools.cancel.set()
    assert not await run_phases(ctx, [("sign", _never), ("publish", _never)])
    assert [r.state for r in ctx.result.records.values()] == ["cancelled", "skipped"]


async def test_local_export_refuses_an_existing_plugin_before_anything_is_rendered(
    tmp_path: Path,
) -> None:
    ctx = make_ctx(tmp_path, None, plugin_dir=None)
    out = tmp_path / "out"
    (out / "plugin-weather").mkdir(parents=True)
    (out / "plugin-weather" / "keep.txt").write_text("mine")
    ctx.tools.publisher = LocalExport(out)
    with pytest.raises(PhaseFailed, match="already exists"):
        await scaffold_phase(ctx)
    assert ctx.result.plugin_dir is None
    assert (out / "plugin-weather" / "keep.txt").read_text() == "mine"


async def test_local_export_with_overwrite_replaces_only_at_publish(tmp_path: Path) -> None:
    ctx = make_ctx(tmp_path, None)
    out = tmp_path / "out"
    (out / "plugin-weather").mkdir(parents=True)
    (out / "plugin-weather" / "old.txt").write_text("old")
    export = LocalExport(out, overwrite=True)
    await export.preflight(ctx)
    assert (out / "plugin-weather" / "old.txt").exists()
    published = await export.publish(ctx)
    assert published.location == str(out / "plugin-weather")
    assert not (out / "plugin-weather" / "old.txt").exists()
    assert (out / "plugin-weather" / "src" / "index.ts").is_file()


def test_the_signed_predicate_names_the_model_and_where_the_job_came_from(
    tmp_path: Path,
) -> None:
    provider = ScriptedProvider([])
    gen = generator(tmp_path, provider)

    class Deps:
        node_version = "20.20.2"

    ctx = make_ctx(tmp_path, gen, deps=Deps())
    origin = Origin(
        repository="octo/repo",
        installation_id=7,
        issue=12,
        comment_id=345,
        requester="alice",
        delivery_id="d-1",
    )
    ctx.request = JobRequest(job_id="job-42", description="x", origin=origin)
    ctx.result.base_commit, ctx.result.branch = "a" * 40, "plugin-bot/plugin-weather-job-42"
    ctx.result.test_results = TestResults(
        tool="vitest",
        command=["npm", "test"],
        exit_code=0,
        total=1,
        passed=1,
        failed=0,
        skipped=0,
        todo=0,
        files=[],
        tests=[],
        wall_s=1.0,
        log_sha256="0" * 64,
        log_bytes=0,
    )
    predicate = predicate_for(ctx)
    assert predicate["generator"] == {"name": "fake", "model": "fake-model-1"}
    assert predicate["job"] == {"id": "job-42"}
    assert (predicate["repository"], predicate["issue"], predicate["comment"]) == (
        "octo/repo",
        12,
        345,
    )
    assert (predicate["requester"], predicate["delivery"]) == ("alice", "d-1")
    assert predicate["baseCommit"] == "a" * 40
    assert predicate["branch"] == "plugin-bot/plugin-weather-job-42"


def test_the_command_does_not_load_the_model_sdk_until_a_model_is_used() -> None:
    code = (
        "import sys\n"
        "from bot.cli import build_parser, main\n"
        "import bot.runner\n"
        "assert 'anthropic' not in sys.modules, 'anthropic imported at start-up'\n"
        "print('ok')\n"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"

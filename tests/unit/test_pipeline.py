"""Phases run in order, and every failure names its phase."""

from pathlib import Path
from typing import Any

import pytest

from bot.cli import main
from bot.pipeline import run_phases
from bot.pipeline.context import (
    JobContext,
    JobProgress,
    JobRequest,
    JobTools,
    PhaseFailed,
    PhaseRecord,
)
from bot.workspace import WorkspaceError, plugin_files


class Recorder:
    def __init__(self) -> None:
        self.events: list[tuple[str, str]] = []

    def phase_started(self, phase: str) -> None:
        self.events.append(("start", phase))

    def phase_note(self, phase: str, note: str) -> None:
        self.events.append(("note", phase))

    def phase_finished(self, phase: str, record: PhaseRecord) -> None:
        self.events.append((record.state, phase))

    def progress_changed(self, progress: JobProgress) -> None:
        self.events.append(("progress", progress.activity))


def context(reporter: Recorder) -> JobContext:
    # Phases here touch nothing but the reporter and the records.
    unused: dict[str, Any] = dict.fromkeys(
        ("sandbox", "limits", "deps", "pack", "spec_writer", "generator", "meter")
    )
    tools = JobTools(reporter=reporter, job_timeout_s=60, allowed_dependencies={}, **unused)
    return JobContext(JobRequest(job_id="t", description="x"), tools, Path("/nonexistent"))


async def ok(ctx: JobContext) -> None:
    pass


async def fails(ctx: JobContext) -> None:
    raise PhaseFailed("it broke", "detail lines")


async def crashes(ctx: JobContext) -> None:
    raise OSError("disk on fire")


async def test_a_failed_phase_stops_the_run_and_skips_the_rest() -> None:
    reporter = Recorder()
    ctx = context(reporter)
    assert not await run_phases(ctx, [("a", ok), ("b", fails), ("c", ok)])
    assert [r.state for r in ctx.result.records.values()] == ["passed", "failed", "skipped"]
    assert ctx.failed_phase is not None and ctx.failed_phase.name == "b"
    assert ctx.failed_phase.detail == "detail lines"
    assert ("start", "c") not in reporter.events
    assert not ctx.succeeded


async def test_an_unexpected_exception_still_names_its_phase() -> None:
    ctx = context(Recorder())
    assert not await run_phases(ctx, [("a", ok), ("install", crashes), ("c", ok)])
    failed = ctx.failed_phase
    assert failed is not None and failed.name == "install"
    assert failed.error == "OSError: disk on fire"


async def test_all_phases_passing_is_a_success() -> None:
    ctx = context(Recorder())
    assert await run_phases(ctx, [("a", ok), ("b", ok)])
    assert ctx.succeeded


def test_plugin_files_refuses_a_github_folder(tmp_path: Path) -> None:
    (tmp_path / ".github" / "workflows").mkdir(parents=True)
    (tmp_path / ".github" / "workflows" / "x.yml").write_text("on: push")
    with pytest.raises(WorkspaceError, match=r"\.github"):
        plugin_files(tmp_path)


def test_plugin_files_refuses_symlinks(tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "key").symlink_to("/etc/passwd")
    with pytest.raises(WorkspaceError, match="src/key is a symlink"):
        plugin_files(tmp_path)


def test_plugin_files_leaves_out_build_products(tmp_path: Path) -> None:
    for rel in ("src/index.ts", "node_modules/x/index.js", "dist/index.js", "README.md"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text("x")
    assert plugin_files(tmp_path) == ["README.md", "src/index.ts"]


def test_cli_reports_an_invalid_yaml_spec_without_a_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text("name: [unclosed\n")
    assert main(["create", "--spec", str(spec), "--out", str(tmp_path)]) == 2
    out = capsys.readouterr().out
    assert "not valid YAML" in out and "Traceback" not in out


def test_cli_reports_an_invalid_spec_field_by_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = tmp_path / "spec.json"
    spec.write_text('{"name": "../evil", "description": "x", "actions": [{"name": "a_b"}]}')
    assert main(["create", "--spec", str(spec), "--out", str(tmp_path)]) == 2
    out = capsys.readouterr().out
    assert "- name: must not contain '..'" in out
    assert "- actions.0.name:" in out and "- actions.0.description: Field required" in out


def test_cli_reports_a_directory_given_as_spec(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["create", "--spec", str(tmp_path), "--out", str(tmp_path)]) == 2
    assert "error:" in capsys.readouterr().out


def test_cli_reports_invalid_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("COMMAND_TIMEOUT_S", "-5")
    assert main(["check", str(tmp_path)]) == 2
    out = capsys.readouterr().out
    assert "invalid settings" in out and "command_timeout_s" in out

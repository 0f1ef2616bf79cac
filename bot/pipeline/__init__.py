"""The pipeline: phase functions with one signature, run top to bottom.

    spec      description -> validated PluginSpec
    scaffold  render the template pack into a fresh workspace
    generate  the generator turns the scaffold into the plugin
    install   dependencies from the lockfile, through the shared cache  ┐
    build     type-check and bundle, no network                         ├ verify
    test      vitest with its JSON reporter -> test-results.json        ┘
    sign      DSSE-signed in-toto statement over every file (when a key is set)

A phase reads and writes the JobContext and raises PhaseFailed to stop the job.
"""

from __future__ import annotations

import time

from bot.pipeline.context import JobContext, Phase, PhaseFailed, PhaseRecord
from bot.pipeline.generate import generate_phase
from bot.pipeline.scaffold import scaffold_phase
from bot.pipeline.sign import sign_phase
from bot.pipeline.spec import spec_phase
from bot.pipeline.verify import build_phase, install_phase, test_phase

PHASES: list[tuple[str, Phase]] = [
    ("spec", spec_phase),
    ("scaffold", scaffold_phase),
    ("generate", generate_phase),
    ("install", install_phase),
    ("build", build_phase),
    ("test", test_phase),
    ("sign", sign_phase),
]
CHECK_PHASES: list[tuple[str, Phase]] = [p for p in PHASES if p[0] in {"install", "build", "test"}]

__all__ = ["CHECK_PHASES", "PHASES", "JobContext", "PhaseFailed", "PhaseRecord", "run_phases"]


async def run_phases(ctx: JobContext, phases: list[tuple[str, Phase]]) -> bool:
    """Run phases in order until one fails; every phase gets a record."""
    for name, _ in phases:
        ctx.records[name] = PhaseRecord(name)
    for name, phase in phases:
        record = ctx.records[name]
        record.state = "running"
        ctx.reporter.phase_started(name)
        started = time.monotonic()
        try:
            await phase(ctx)
        except PhaseFailed as exc:
            record.state, record.error, record.detail = "failed", exc.message, exc.detail
        except Exception as exc:  # any failure must still name its phase
            record.state, record.error = "failed", f"{type(exc).__name__}: {exc}"
        else:
            record.state = "passed"
        record.wall_s = time.monotonic() - started
        ctx.reporter.phase_finished(name, record)
        if record.state == "failed":
            for rest in ctx.records.values():
                if rest.state == "pending":
                    rest.state = "skipped"
            return False
    return True

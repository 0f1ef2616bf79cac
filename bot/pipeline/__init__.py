"""The pipeline: phase functions with one signature, run top to bottom.

    spec      description -> validated PluginSpec
    scaffold  the publisher's preflight, then the template pack rendered into the workspace
    generate  the generator turns the scaffold into the plugin
    install   dependencies from the lockfile, through the shared cache  ┐
    build     type-check and bundle, no network                         ├ the checks
    test      vitest with its JSON reporter -> test-results.json        ┘
    sign      DSSE-signed in-toto statement over every file (when a key is set)
    publish   the publisher delivers the plugin (a local folder, a pull request)

A phase reads the JobContext's request and tools, writes its result, and raises
PhaseFailed to stop the job (JobCancelled when the job's cancel signal is set).
"""

from __future__ import annotations

import time

import structlog

from bot.llm import is_transient
from bot.metrics import METRICS
from bot.pipeline.context import (
    AlreadyPublished,
    JobCancelled,
    JobContext,
    Phase,
    PhaseFailed,
    PhaseRecord,
)
from bot.pipeline.generate import generate_phase
from bot.pipeline.publish import publish_phase
from bot.pipeline.revise import fetch_phase
from bot.pipeline.scaffold import scaffold_phase
from bot.pipeline.sign import sign_phase
from bot.pipeline.spec import spec_phase
from bot.pipeline.verify import build_phase, install_phase, test_phase

log = structlog.get_logger("bot.pipeline")

PHASES: list[tuple[str, Phase]] = [
    ("spec", spec_phase),
    ("scaffold", scaffold_phase),
    ("generate", generate_phase),
    ("install", install_phase),
    ("build", build_phase),
    ("test", test_phase),
    ("sign", sign_phase),
    ("publish", publish_phase),
]
# A revision: the plugin from the pull request's branch instead of spec and scaffold.
REVISE_PHASES: list[tuple[str, Phase]] = [("fetch", fetch_phase)] + [
    p for p in PHASES if p[0] not in {"spec", "scaffold"}
]
CHECK_PHASES: list[tuple[str, Phase]] = [p for p in PHASES if p[0] in {"install", "build", "test"}]
PHASE_NAMES: tuple[str, ...] = tuple(name for name, _ in PHASES)

__all__ = [
    "CHECK_PHASES",
    "PHASES",
    "PHASE_NAMES",
    "REVISE_PHASES",
    "JobContext",
    "PhaseFailed",
    "PhaseRecord",
    "run_phases",
]


async def run_phases(ctx: JobContext, phases: list[tuple[str, Phase]]) -> bool:
    """Run phases in order until one fails or the job is cancelled; each gets a record."""
    records = ctx.result.records
    for name, _ in phases:
        records[name] = PhaseRecord(name)
    for name, phase in phases:
        record = records[name]
        record.state = "running"
        structlog.contextvars.bind_contextvars(phase=name)
        log.info("phase.started")
        ctx.tools.reporter.phase_started(name)
        started = time.monotonic()
        done = False
        try:
            ctx.raise_if_cancelled()
            await phase(ctx)
        except AlreadyPublished as exc:
            record.state, done = "passed", True
            ctx.result.published = exc.published
        except JobCancelled as exc:
            record.state, record.error = "cancelled", exc.message
        except PhaseFailed as exc:
            record.state, record.error, record.detail = "failed", exc.message, exc.detail
            record.transient = exc.transient
        except Exception as exc:  # any failure must still name its phase
            record.state, record.error = "failed", f"{type(exc).__name__}: {exc}"
            record.transient = is_transient(exc)
        else:
            record.state = "passed"
        if record.state == "failed" and ctx.cancelled:
            # A command killed by the cancel fails; the job was still cancelled, not broken.
            record.state, record.error, record.detail = "cancelled", "the job was cancelled", ""
        record.wall_s = time.monotonic() - started
        METRICS.phase(name, record.state, record.wall_s)
        log.info("phase.finished", phase=name, state=record.state, wall_s=round(record.wall_s, 3))
        ctx.tools.reporter.phase_finished(name, record)
        if record.state != "passed" or done:
            for rest in records.values():
                if rest.state == "pending":
                    rest.state = "skipped"
            return done
    return True

"""What every phase gets: the job's context, its records, and how it fails."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from bot.deps import DependencyCache, InstallReport
from bot.llm import Usage
from bot.pack import TemplatePack
from bot.sandbox import Limits, Result, Sandbox
from bot.spec.schema import PluginSpec
from bot.spec.writers import SpecWriter
from bot.testresults import TestResults


class PhaseFailed(Exception):
    """A phase could not complete; ``detail`` is what a person needs to see."""

    def __init__(self, message: str, detail: str = "", result: Result | None = None) -> None:
        self.message = message
        self.detail = detail
        self.result = result
        super().__init__(message)


class Reporter(Protocol):
    def phase_started(self, phase: str) -> None: ...

    def phase_note(self, phase: str, note: str) -> None: ...

    def phase_finished(self, phase: str, record: PhaseRecord) -> None: ...


class Generator(Protocol):
    """Turns the scaffold in ``ctx.plugin_dir`` into the plugin (in place)."""

    @property
    def name(self) -> str: ...

    async def generate(self, ctx: JobContext) -> None: ...


@dataclass
class PhaseRecord:
    name: str
    state: str = "pending"  # pending | running | passed | failed | skipped
    wall_s: float = 0.0
    note: str = ""
    error: str = ""
    detail: str = ""


@dataclass
class JobContext:
    description: str
    workspace: Path
    pack: TemplatePack
    sandbox: Sandbox
    limits: Limits
    deps: DependencyCache
    spec_writer: SpecWriter
    generator: Generator
    reporter: Reporter
    job_timeout_s: float
    allowed_dependencies: Mapping[str, str]
    # Where `create` exports the plugin; scaffold refuses to clobber it unless allowed.
    output_root: Path | None = None
    overwrite: bool = False
    # Signing: no key means the plugin is not signed (and the summary says so).
    signing_key: Ed25519PrivateKey | None = None
    provenance: Mapping[str, Any] = field(default_factory=dict)
    manifest: Path | None = None
    spec: PluginSpec | None = None
    plugin_dir: Path | None = None
    files: list[str] = field(default_factory=list)
    install: InstallReport | None = None
    build: Result | None = None
    test_results: TestResults | None = None
    records: dict[str, PhaseRecord] = field(default_factory=dict)
    started: float = field(default_factory=time.monotonic)
    # Model generation: check/fix rounds used, summed usage, and a cancel signal.
    rounds_used: int = 0
    model_turns: int = 0
    model_usage: Usage | None = None
    cancel: asyncio.Event | None = None

    def command_limits(self) -> Limits:
        """Per-command limits, shortened so no command outlives the job's deadline."""
        remaining = self.job_timeout_s - (time.monotonic() - self.started)
        if remaining <= 0:
            raise PhaseFailed(f"the job ran out of time ({self.job_timeout_s:.0f}s)")
        return self.limits.with_timeout(remaining)

    def require_plugin(self) -> Path:
        if self.plugin_dir is None:
            raise PhaseFailed("no plugin scaffolded yet")
        return self.plugin_dir

    @property
    def succeeded(self) -> bool:
        return bool(self.records) and all(r.state == "passed" for r in self.records.values())

    @property
    def failed_phase(self) -> PhaseRecord | None:
        return next((r for r in self.records.values() if r.state == "failed"), None)


Phase = Callable[[JobContext], Awaitable[None]]

"""What every phase gets: what the job was asked, the tools it uses, and what it produced.

``JobContext`` is three small parts and a clock:

* ``request`` (:class:`JobRequest`): the description, a given spec, and where the job came
  from (:class:`Origin`: repository, issue, comment, requester, delivery). Never changed.
* ``tools`` (:class:`JobTools`): the sandbox, caches, template pack, spec writer, generator,
  reporter, publisher, meter, signing key, limits and the cancel signal.
* ``result`` (:class:`JobResult`): what the phases made, in order: spec, plugin directory,
  files, install, build, test results, manifest, where it was published, phase records.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal, Protocol

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from bot.deps import DependencyCache, InstallReport
from bot.llm import Meter
from bot.pack import TemplatePack
from bot.sandbox import Limits, Result, Sandbox
from bot.spec.schema import PluginSpec
from bot.spec.writers import SpecWriter
from bot.testresults import TestResults
from bot.workspace import FileSet, TreeChanged, run_layout

if TYPE_CHECKING:
    from bot.pipeline.warm import WarmChecker, WarmPolicy

PhaseState = Literal["pending", "running", "passed", "failed", "cancelled", "skipped"]


class AlreadyPublished(Exception):
    """A recovered job finds its own work already delivered (its worker died after the
    push, before the last steps): the phase that finds it finished those steps, and the
    phases after it are skipped, the job succeeded with ``published``."""

    def __init__(self, published: Published) -> None:
        self.published = published
        super().__init__(published.location)


class PhaseFailed(Exception):
    """A phase could not complete; ``detail`` is what a person needs to see."""

    def __init__(
        self,
        message: str,
        detail: str = "",
        result: Result | None = None,
        *,
        transient: bool = False,
    ) -> None:
        self.message = message
        self.detail = detail
        self.result = result
        self.transient = transient  # not the plugin's fault (model overloaded, network)
        super().__init__(message)


class JobCancelled(PhaseFailed):
    """The job was cancelled while a phase ran; the phase and the rest stop."""

    def __init__(self, result: Result | None = None) -> None:
        super().__init__("the job was cancelled", result=result)


class FilesChanged(PhaseFailed):
    """A sandboxed run changed the plugin's files; they were put back and the run refused."""


@dataclass
class PhaseRecord:
    name: str
    state: PhaseState = "pending"
    wall_s: float = 0.0
    note: str = ""
    error: str = ""
    detail: str = ""
    transient: bool = False  # failed on something a later attempt may not meet


@dataclass(frozen=True)
class JobProgress:
    """A running job's counters, from its one meter and its records, for a live view."""

    tokens: int
    cost_usd: float
    round: int | None = None  # the check round running or last run; None before the first
    max_rounds: int | None = None
    activity: str = ""  # what happens now; model text in it is the reporter's to neutralise


class Reporter(Protocol):
    def phase_started(self, phase: str) -> None: ...

    def phase_note(self, phase: str, note: str) -> None: ...

    def phase_finished(self, phase: str, record: PhaseRecord) -> None: ...

    def progress_changed(self, progress: JobProgress) -> None:
        """Tokens, cost and check rounds as they change (a model call, a check round)."""
        ...


class Generator(Protocol):
    """Turns the scaffold into the plugin through ``ctx.result.files`` (the authoritative
    set, which writes the plugin directory too); a direct write to the directory is a
    change the next sandboxed run refuses and puts back."""

    @property
    def name(self) -> str: ...

    @property
    def model(self) -> str | None:
        """The model that writes the code, or None when no model does."""
        ...

    async def generate(self, ctx: JobContext) -> None: ...


@dataclass(frozen=True)
class Published:
    """Where a finished plugin went: a local directory, or a branch and pull request."""

    location: str
    url: str | None = None
    branch: str | None = None
    commit: str | None = None
    notes: tuple[str, ...] = ()  # steps past the delivery that did not take (a check run)


class Publisher(Protocol):
    """The last step of a job, injected by whoever runs it (the CLI, the GitHub worker).

    ``preflight`` runs before anything is built: it refuses a target that must not be
    replaced and records what the job starts from (``ctx.result.base_commit``).
    ``publish`` delivers exactly the plugin directory's files.
    """

    async def preflight(self, ctx: JobContext) -> None: ...

    async def publish(self, ctx: JobContext) -> Published: ...


@dataclass(frozen=True)
class Origin:
    """Where a job came from; every field is None for a local ``create``."""

    repository: str | None = None
    installation_id: int | None = None
    issue: int | None = None
    comment_id: int | None = None
    requester: str | None = None
    delivery_id: str | None = None


@dataclass(frozen=True)
class JobRequest:
    """What the job was asked."""

    job_id: str
    description: str
    spec: PluginSpec | None = None  # a spec given as it is (``create --spec FILE``)
    origin: Origin = field(default_factory=Origin)
    # The dependencies the plugin may use; None: the bot's settings. A repository's config
    # may add some of those the bot offers (``RepoConfig.allowed_dependencies``).
    allowed_dependencies: Mapping[str, str] | None = None


@dataclass
class JobTools:
    """What the job works with: shared across jobs (sandbox, caches, pack) or its own."""

    sandbox: Sandbox
    limits: Limits
    deps: DependencyCache
    pack: TemplatePack
    spec_writer: SpecWriter
    generator: Generator
    reporter: Reporter
    meter: Meter
    allowed_dependencies: Mapping[str, str]
    job_timeout_s: float
    publisher: Publisher | None = None  # None: the job stops after its checks (``check``)
    signing_key: Ed25519PrivateKey | None = None  # None: not signed, and the summary says so
    cancel: asyncio.Event = field(default_factory=asyncio.Event)
    warm: WarmPolicy | None = None  # None: every check round of the generate loop runs cold


@dataclass(frozen=True)
class ReviewNote:
    """An unresolved review thread on the plugin: where it is and what it says."""

    path: str  # relative to the plugin folder
    line: int | None  # on the current diff; an outdated thread's on its commit; None: the file
    comments: tuple[str, ...]  # every comment of the thread, oldest first: "author: text"
    author: str  # who started the thread
    outdated: bool = False  # its line is gone from the current diff
    removed_side: bool = False  # on the diff's removed lines (the old file), not the new


@dataclass(frozen=True)
class Revision:
    """A revision of a published plugin: what it starts from and what was asked."""

    pull_number: int
    branch: str
    head_sha: str  # the branch head the revision builds on
    folder: str  # plugins/<name> in the repository
    previous_files: tuple[str, ...]  # the plugin's files on the branch (relative)
    previous_manifest_sha256: str | None
    request: str
    requester: str
    review_notes: tuple[ReviewNote, ...] = ()


@dataclass
class JobResult:
    """What the phases produced, in the order they produce it."""

    spec: PluginSpec | None = None
    # The pull request's base: the default branch's commit it starts from, which is what
    # verify-plugin.yml binds a manifest to (its merge base). Set in preflight.
    base_commit: str | None = None
    # The commit the bot's commit goes on: the base for a new pull request, the head for a
    # revision or a retry onto an open one (None: the base).
    parent_commit: str | None = None
    branch: str | None = None
    plugin_path: str | None = None  # its folder in the target repository (set in preflight)
    plugin_dir: Path | None = None
    # The authoritative files: what the scaffold rendered, what the model wrote through
    # its tools, and the bot's test-results.json. The directory is only a copy of them.
    files: FileSet | None = None
    held_config: dict[str, bytes] = field(default_factory=dict)  # the bot's tool configs
    install: InstallReport | None = None
    build: Result | None = None
    test_results: TestResults | None = None
    manifest: Path | None = None
    published: Published | None = None
    revision: Revision | None = None  # set by a revision's preflight
    rounds_used: int = 0  # model check/fix rounds
    max_rounds: int | None = None  # the check/fix rounds a model job may use
    model_turns: int = 0
    records: dict[str, PhaseRecord] = field(default_factory=dict)


@dataclass
class JobContext:
    request: JobRequest
    tools: JobTools
    workspace: Path
    result: JobResult = field(default_factory=JobResult)
    started: float = field(default_factory=time.monotonic)
    # The generate loop's warm checker process, while one runs (bot/pipeline/warm.py).
    warm: WarmChecker | None = None

    def command_limits(self) -> Limits:
        """Per-command limits, shortened so no command outlives the job's deadline."""
        remaining = self.tools.job_timeout_s - (time.monotonic() - self.started)
        if remaining <= 0:
            raise PhaseFailed(f"the job ran out of time ({self.tools.job_timeout_s:.0f}s)")
        return self.tools.limits.with_timeout(remaining)

    def report_progress(self, activity: str = "") -> None:
        """The job's counters as they are now, to its reporter."""
        meter = self.tools.meter
        used = self.result.rounds_used
        self.tools.reporter.progress_changed(
            JobProgress(
                tokens=meter.usage.total,
                cost_usd=meter.cost_usd,
                round=used if used and self.result.max_rounds is not None else None,
                max_rounds=self.result.max_rounds,
                activity=activity,
            )
        )

    def raise_if_cancelled(self, result: Result | None = None) -> None:
        if self.tools.cancel.is_set():
            raise JobCancelled(result)

    async def run(
        self, argv: Sequence[str], workdir: Path, *, outputs: Sequence[str] = ()
    ) -> Result:
        """A sandboxed command of this job: its deadline, its cancel signal, no network.

        In the plugin directory the run sees the authoritative files read-only (see
        ``bot.workspace.run_layout``) and may write only ``outputs``; afterwards the
        directory is compared with the set and any change is refused (TreeChanged).
        """
        self.raise_if_cancelled()
        files = self.result.files
        mounts = []
        if files is not None and workdir.resolve() == files.root.resolve():
            install = self.result.install
            mounts = run_layout(
                files,
                node_modules=install.node_modules if install is not None else None,
                config_dir=self.config_dir(),
                outputs=outputs,
            )
        result = await self.tools.sandbox.run(
            argv, workdir, self.command_limits(), cancel=self.tools.cancel, mounts=mounts
        )
        self.raise_if_cancelled(result)
        if files is not None:
            try:
                files.refuse_changes()  # puts the files back whatever else went wrong
            except TreeChanged as exc:
                if result.workspace_exceeded is None:
                    raise FilesChanged(str(exc), result=result) from None
                # A run stopped at the workspace cap: that is the failure to report.
        return result

    def config_dir(self) -> Path | None:
        """The bot's copies of the pack's tool configs, in a folder no run can write."""
        if not self.result.held_config:
            return None
        folder = self.workspace / "bot-config"
        if not folder.is_dir():
            folder.mkdir(mode=0o755)
            for name, data in self.result.held_config.items():
                (folder / name).write_bytes(data)
                (folder / name).chmod(0o644)
        return folder

    def require_plugin(self) -> Path:
        if self.result.plugin_dir is None:
            raise PhaseFailed("no plugin scaffolded yet")
        return self.result.plugin_dir

    def require_files(self) -> FileSet:
        if self.result.files is None:
            raise PhaseFailed("no plugin scaffolded yet")
        return self.result.files

    @property
    def succeeded(self) -> bool:
        # "skipped" with no failure: only after AlreadyPublished (a failure skips the rest too).
        states = {r.state for r in self.result.records.values()}
        return "passed" in states and states <= {"passed", "skipped"}

    @property
    def cancelled(self) -> bool:
        return self.tools.cancel.is_set()

    @property
    def failed_phase(self) -> PhaseRecord | None:
        return next((r for r in self.result.records.values() if r.state == "failed"), None)


Phase = Callable[[JobContext], Awaitable[None]]

"""One runner for every job: a job's context from settings, the phases, an outcome.

The CLI's ``create`` and ``check`` and the queue's workers all come through here. The
runner owns what jobs share (the sandbox, the template pack, the dependency cache, the
signing key); each job gets its own workspace, meter, generator, reporter, publisher and
cancel signal.
"""

from __future__ import annotations

import asyncio
import shutil
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from bot.deps import DependencyCache
from bot.llm import Meter, ModelProvider, provider_from_settings
from bot.manifest import load_private_key
from bot.pack import load_pack
from bot.pipeline import CHECK_PHASES, PHASES, run_phases
from bot.pipeline.context import (
    Generator,
    JobContext,
    JobProgress,
    JobRequest,
    JobTools,
    Phase,
    PhaseRecord,
    Published,
    Publisher,
    Reporter,
)
from bot.pipeline.generate import ScaffoldGenerator
from bot.pipeline.publish import LocalExport
from bot.pipeline.scaffold import hold_configs
from bot.pipeline.warm import WarmPolicy
from bot.sandbox import Limits, Sandbox, SandboxError, sandbox_from_settings
from bot.settings import Settings
from bot.spec.schema import PluginSpec
from bot.spec.writers import GivenSpecWriter, KeywordSpecWriter, SpecWriter
from bot.workspace import FileSet

if TYPE_CHECKING:
    import httpx2

GENERATORS = ("auto", "anthropic", "scaffold")


class SilentReporter:
    def phase_started(self, phase: str) -> None:
        pass

    def phase_note(self, phase: str, note: str) -> None:
        pass

    def phase_finished(self, phase: str, record: PhaseRecord) -> None:
        pass

    def progress_changed(self, progress: JobProgress) -> None:
        pass


@dataclass
class Outcome:
    ctx: JobContext
    wall_s: float
    kept_workspace: Path | None = None

    @property
    def ok(self) -> bool:
        return self.ctx.succeeded

    @property
    def published(self) -> Published | None:
        return self.ctx.result.published

    @property
    def meter(self) -> Meter:
        return self.ctx.tools.meter


def new_job_id() -> str:
    """A local job's id: sortable by time, unique across processes."""
    return f"{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:8]}"


async def node_version(sandbox: Sandbox, workdir: Path) -> str:
    # Own limits: the workdir is the whole cache, which the per-job workspace caps are not for.
    result = await sandbox.run(["node", "--version"], workdir, Limits(timeout_s=60))
    if not result.ok:
        raise SandboxError(f"node --version {result.describe_outcome()}")
    return result.output.strip().lstrip("v")


def generator_for(name: str, settings: Settings, provider: ModelProvider | None) -> Generator:
    """``auto``: the model when an API key is set, else the scaffold."""
    if name not in GENERATORS:
        raise ValueError(f"unknown generator {name!r} (available: {', '.join(GENERATORS)})")
    if name == "scaffold" or (name == "auto" and provider is None):
        return ScaffoldGenerator()
    if provider is None:
        raise ValueError("--generator anthropic needs ANTHROPIC_API_KEY")
    from bot.agent import ModelGenerator  # only a job that uses the model loads it

    return ModelGenerator(
        provider, max_rounds=settings.generate_max_rounds, max_tokens=settings.anthropic_max_tokens
    )


def allowed_dependencies_for(request: JobRequest, settings: Settings) -> Mapping[str, str]:
    """What the job's plugin may depend on: its repository's list, else the bot's."""
    if request.allowed_dependencies is not None:
        return request.allowed_dependencies
    return settings.allowed_dependencies


def spec_writer_for_job(
    request: JobRequest, settings: Settings, provider: ModelProvider | None
) -> SpecWriter:
    """A given spec as it is; else the model (for a model job), else the keyword parser."""
    allowed = allowed_dependencies_for(request, settings)
    if request.spec is not None:
        return GivenSpecWriter(request.spec)
    if provider is None:
        return KeywordSpecWriter(allowed)
    from bot.spec.model_writer import ModelSpecWriter

    return ModelSpecWriter(provider, allowed)


def signing_key_from(settings: Settings) -> Ed25519PrivateKey | None:
    if settings.signing_key_path is None:
        return None
    secret = settings.signing_key_passphrase
    return load_private_key(
        settings.signing_key_path, secret.get_secret_value().encode() if secret else None
    )


class Runner:
    """Builds a JobContext per job from settings and runs its phases."""

    def __init__(self, settings: Settings, sandbox: Sandbox | None = None) -> None:
        self.settings = settings
        self.sandbox = sandbox or sandbox_from_settings(settings)
        self.pack = load_pack(settings.template_dir)
        self._deps: DependencyCache | None = None
        self.signing_key = signing_key_from(settings)

    async def deps(self) -> DependencyCache:
        if self._deps is None:
            self.settings.cache_dir.mkdir(parents=True, exist_ok=True)
            version = await node_version(self.sandbox, self.settings.cache_dir)
            cafile = self.settings.npm_cafile
            self._deps = DependencyCache(
                self.settings.cache_dir,
                self.sandbox,
                version,
                self.settings.npm_registry,
                cafile=cafile if cafile is not None and cafile.is_file() else None,
            )
        return self._deps

    def workspace_for(self, job_id: str) -> Path:
        """The job's own folder; a retried job starts from a fresh one."""
        path = self.settings.work_dir / f"job-{job_id}"
        if path.exists():
            shutil.rmtree(path)
        path.mkdir(parents=True)
        return path.resolve()

    async def _tools(
        self,
        *,
        meter: Meter,
        spec_writer: SpecWriter,
        generator: Generator,
        reporter: Reporter,
        publisher: Publisher | None,
        cancel: asyncio.Event,
        allowed_dependencies: Mapping[str, str] | None = None,
    ) -> JobTools:
        return JobTools(
            sandbox=self.sandbox,
            limits=self.sandbox.limits,
            deps=await self.deps(),
            pack=self.pack,
            spec_writer=spec_writer,
            generator=generator,
            reporter=reporter,
            meter=meter,
            allowed_dependencies=(
                self.settings.allowed_dependencies
                if allowed_dependencies is None
                else allowed_dependencies
            ),
            job_timeout_s=self.settings.job_timeout_s,
            publisher=publisher,
            signing_key=self.signing_key,
            cancel=cancel,
            warm=self._warm_policy(),
        )

    def _warm_policy(self) -> WarmPolicy | None:
        """Warm check rounds for the generate loop, when the settings allow them."""
        if not self.settings.warm_checks:
            return None
        return WarmPolicy(
            start_timeout_s=self.settings.warm_start_timeout_s,
            max_failures=self.settings.warm_max_failures,
        )

    async def run(
        self,
        request: JobRequest,
        *,
        publisher: Publisher,
        generator: str = "auto",
        reporter: Reporter | None = None,
        cancel: asyncio.Event | None = None,
        http_client: httpx2.AsyncClient | None = None,
        phases: list[tuple[str, Phase]] = PHASES,
    ) -> Outcome:
        """The whole pipeline for one job. A failed job keeps its workspace for a look;
        a finished one has been published and its workspace is removed."""
        started = time.monotonic()
        meter = Meter(self.settings)
        provider = provider_from_settings(self.settings, meter, http_client=http_client)
        chosen = generator_for(generator, self.settings, provider)
        # The model writes the spec only for a job it generates; otherwise the parser does.
        model_job = not isinstance(chosen, ScaffoldGenerator)
        tools = await self._tools(
            meter=meter,
            spec_writer=spec_writer_for_job(
                request, self.settings, provider if model_job else None
            ),
            generator=chosen,
            reporter=reporter or SilentReporter(),
            publisher=publisher,
            cancel=cancel or asyncio.Event(),
            allowed_dependencies=allowed_dependencies_for(request, self.settings),
        )
        ctx = JobContext(request, tools, self.workspace_for(request.job_id))
        keep = False
        try:
            await run_phases(ctx, phases)
            keep = not ctx.succeeded and ctx.result.plugin_dir is not None
            kept = ctx.result.plugin_dir if keep else None
            return Outcome(ctx, time.monotonic() - started, kept_workspace=kept)
        finally:
            if not keep:
                shutil.rmtree(ctx.workspace, ignore_errors=True)

    async def create(
        self,
        description: str,
        *,
        out: Path,
        spec: PluginSpec | None = None,
        generator: str = "scaffold",
        reporter: Reporter | None = None,
        overwrite: bool = False,
        http_client: httpx2.AsyncClient | None = None,
    ) -> Outcome:
        """``plugin-bot create``: a local job whose plugin is exported to ``out/<name>``."""
        request = JobRequest(job_id=new_job_id(), description=description, spec=spec)
        return await self.run(
            request,
            publisher=LocalExport(out, overwrite=overwrite),
            generator=generator,
            reporter=reporter,
            http_client=http_client,
        )

    async def check(
        self,
        plugin_dir: Path,
        *,
        reporter: Reporter | None = None,
        cancel: asyncio.Event | None = None,
    ) -> Outcome:
        """Install, build and test a copy of ``plugin_dir``; the directory is not changed."""
        started = time.monotonic()
        source = plugin_dir.resolve()
        if not (source / "package.json").is_file():
            raise FileNotFoundError(f"{plugin_dir} has no package.json")
        tools = await self._tools(
            meter=Meter(self.settings),
            spec_writer=KeywordSpecWriter(self.settings.allowed_dependencies),
            generator=ScaffoldGenerator(),
            reporter=reporter or SilentReporter(),
            publisher=None,
            cancel=cancel or asyncio.Event(),
        )
        request = JobRequest(job_id=new_job_id(), description="")
        ctx = JobContext(request, tools, self.workspace_for(request.job_id))
        try:
            ctx.result.plugin_dir = ctx.workspace / source.name
            copied = FileSet.read_from(source)
            copied.export(ctx.result.plugin_dir)
            ctx.result.files = FileSet(ctx.result.plugin_dir, copied.contents)
            hold_configs(ctx)
            await run_phases(ctx, CHECK_PHASES)
            return Outcome(ctx, time.monotonic() - started)
        finally:
            shutil.rmtree(ctx.workspace, ignore_errors=True)

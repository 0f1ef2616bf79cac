"""Local jobs: ``create`` and ``check`` without GitHub, wired from settings."""

from __future__ import annotations

import shutil
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import httpx2
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from bot.agent import ModelGenerator
from bot.deps import DependencyCache
from bot.llm import Meter, ModelProvider, provider_from_settings
from bot.manifest import load_private_key
from bot.pack import load_pack
from bot.pipeline import CHECK_PHASES, PHASES, run_phases
from bot.pipeline.context import Generator, JobContext, PhaseRecord, Reporter
from bot.pipeline.generate import ScaffoldGenerator
from bot.sandbox import Sandbox, SandboxError, sandbox_from_settings
from bot.settings import Settings
from bot.spec.model_writer import spec_writer_for
from bot.spec.schema import PluginSpec
from bot.spec.writers import GivenSpecWriter, KeywordSpecWriter, SpecWriter
from bot.workspace import copy_plugin, replace_dir


class SilentReporter:
    def phase_started(self, phase: str) -> None:
        pass

    def phase_note(self, phase: str, note: str) -> None:
        pass

    def phase_finished(self, phase: str, record: PhaseRecord) -> None:
        pass


@dataclass
class Outcome:
    ctx: JobContext
    output_dir: Path | None
    wall_s: float
    kept_workspace: Path | None = None
    meter: Meter | None = None

    @property
    def ok(self) -> bool:
        return self.ctx.succeeded


async def node_version(sandbox: Sandbox, workdir: Path) -> str:
    result = await sandbox.run(["node", "--version"], workdir)
    if not result.ok:
        raise SandboxError(f"node --version {result.describe_outcome()}")
    return result.output.strip().lstrip("v")


GENERATORS = ("auto", "anthropic", "scaffold")


def generator_for(name: str, settings: Settings, provider: ModelProvider | None) -> Generator:
    """``auto``: the model when an API key is set, else the scaffold."""
    if name not in GENERATORS:
        raise ValueError(f"unknown generator {name!r} (available: {', '.join(GENERATORS)})")
    if name == "scaffold" or (name == "auto" and provider is None):
        return ScaffoldGenerator()
    if provider is None:
        raise ValueError("--generator anthropic needs ANTHROPIC_API_KEY")
    return ModelGenerator(
        provider, max_rounds=settings.generate_max_rounds, max_tokens=settings.anthropic_max_tokens
    )


def signing_key_from(settings: Settings) -> Ed25519PrivateKey | None:
    if settings.signing_key_path is None:
        return None
    secret = settings.signing_key_passphrase
    return load_private_key(
        settings.signing_key_path, secret.get_secret_value().encode() if secret else None
    )


class LocalJobs:
    """Builds a JobContext per job from settings; shares the sandbox and the caches."""

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
            self._deps = DependencyCache(self.settings.cache_dir, self.sandbox, version)
        return self._deps

    def new_workspace(self) -> Path:
        path = (
            self.settings.work_dir / f"job-{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:8]}"
        )
        path.mkdir(parents=True)
        return path.resolve()

    async def context(
        self,
        description: str,
        workspace: Path,
        reporter: Reporter,
        spec_writer: SpecWriter,
        generator: Generator,
    ) -> JobContext:
        return JobContext(
            description=description,
            workspace=workspace,
            pack=self.pack,
            sandbox=self.sandbox,
            limits=self.sandbox.limits,
            deps=await self.deps(),
            spec_writer=spec_writer,
            generator=generator,
            reporter=reporter,
            job_timeout_s=self.settings.job_timeout_s,
            allowed_dependencies=self.settings.allowed_dependencies,
        )

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
        """The whole pipeline. A plugin that built and passed lands in ``out/<name>``;
        a failed one stays in its workspace for a look, and ``out`` is left alone."""
        started = time.monotonic()
        meter = Meter(self.settings)
        provider = provider_from_settings(self.settings, meter, http_client=http_client)
        chosen = generator_for(generator, self.settings, provider)
        # The model writes the spec only for a job it generates; otherwise the parser does.
        model_job = not isinstance(chosen, ScaffoldGenerator)
        writer: SpecWriter = (
            GivenSpecWriter(spec)
            if spec is not None
            else spec_writer_for(self.settings, provider if model_job else None)
        )
        workspace = self.new_workspace()
        keep = False
        try:
            ctx = await self.context(
                description,
                workspace,
                reporter or SilentReporter(),
                writer,
                chosen,
            )
            ctx.output_root, ctx.overwrite = out, overwrite
            ctx.signing_key = self.signing_key
            await run_phases(ctx, PHASES)
            if ctx.succeeded and ctx.spec is not None and ctx.plugin_dir is not None:
                out.mkdir(parents=True, exist_ok=True)
                output_dir = ctx.spec.directory_in(out)
                replace_dir(ctx.plugin_dir, output_dir)
                return Outcome(ctx, output_dir, time.monotonic() - started, meter=meter)
            keep = ctx.plugin_dir is not None
            wall = time.monotonic() - started
            return Outcome(ctx, None, wall, kept_workspace=ctx.plugin_dir, meter=meter)
        finally:
            if not keep:
                shutil.rmtree(workspace, ignore_errors=True)

    async def check(self, plugin_dir: Path, *, reporter: Reporter | None = None) -> Outcome:
        """Install, build and test a copy of ``plugin_dir``; the directory is not changed."""
        started = time.monotonic()
        source = plugin_dir.resolve()
        if not (source / "package.json").is_file():
            raise FileNotFoundError(f"{plugin_dir} has no package.json")
        workspace = self.new_workspace()
        try:
            ctx = await self.context(
                "",
                workspace,
                reporter or SilentReporter(),
                KeywordSpecWriter(self.settings.allowed_dependencies),
                ScaffoldGenerator(),
            )
            ctx.plugin_dir = workspace / source.name
            copy_plugin(source, ctx.plugin_dir)
            await run_phases(ctx, CHECK_PHASES)
            return Outcome(ctx, None, time.monotonic() - started)
        finally:
            shutil.rmtree(workspace, ignore_errors=True)

"""scaffold: the template pack rendered for the spec into a fresh workspace."""

from __future__ import annotations

from bot import paths
from bot.pack import PackageMeta, PackError, render_pack
from bot.pipeline.context import JobContext, PhaseFailed
from bot.pipeline.verify import VITEST_CONFIG
from bot.workspace import FileSet


async def scaffold_phase(ctx: JobContext) -> None:
    spec = ctx.result.spec
    if spec is None:
        raise PhaseFailed("no spec to scaffold")
    try:
        plugin_dir = spec.directory_in(ctx.workspace)
    except ValueError as exc:
        raise PhaseFailed("the plugin's directory name is unsafe", str(exc)) from None
    if ctx.tools.publisher is not None:
        # Before any work: a target that must not be replaced stops the job here.
        await ctx.tools.publisher.preflight(ctx)
    if plugin_dir.exists():
        raise PhaseFailed(f"the workspace already holds {plugin_dir.name}")
    pack = ctx.tools.pack
    try:
        # The publisher's preflight has set where the plugin goes (the repository's folder).
        meta = PackageMeta.for_repository(
            ctx.request.origin.repository, spec.directory_name, plugin_path=ctx.result.plugin_path
        )
        rendered = render_pack(
            pack,
            spec,
            plugin_dir,
            allowed_dependencies=ctx.tools.allowed_dependencies,
            package_meta=meta,
        )
    except PackError as exc:
        raise PhaseFailed("the template pack could not render this spec", str(exc)) from None
    # Nothing but the bot has touched the directory yet: this is the authoritative set.
    files = FileSet(plugin_dir, {rel: paths.read_bytes(plugin_dir, rel) for rel in rendered})
    ctx.result.files = files
    hold_configs(ctx)
    ctx.result.plugin_dir = plugin_dir
    ctx.tools.reporter.phase_note(
        "scaffold", f"{len(ctx.result.files)} files from {pack.name} {pack.version}"
    )


def hold_configs(ctx: JobContext) -> None:
    """Keep the bot's own copy of the pack's vitest config (tests run with it)."""
    files = ctx.require_files()
    config = files.get(VITEST_CONFIG)
    source = ctx.tools.pack.root / VITEST_CONFIG
    if source.is_file() and not source.is_symlink():
        config = source.read_bytes()
    if config is not None:
        ctx.result.held_config[VITEST_CONFIG] = config

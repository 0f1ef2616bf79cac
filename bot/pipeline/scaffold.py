"""scaffold: the template pack rendered for the spec into a fresh workspace."""

from __future__ import annotations

from bot.pack import PackError, render_pack
from bot.pipeline.context import JobContext, PhaseFailed


async def scaffold_phase(ctx: JobContext) -> None:
    if ctx.spec is None:
        raise PhaseFailed("no spec to scaffold")
    try:
        plugin_dir = ctx.spec.directory_in(ctx.workspace)
    except ValueError as exc:
        raise PhaseFailed("the plugin's directory name is unsafe", str(exc)) from None
    if ctx.output_root is not None:
        target = ctx.spec.directory_in(ctx.output_root)
        if target.exists() and not ctx.overwrite:
            raise PhaseFailed(f"{target} already exists (use --force to replace it)")
    if plugin_dir.exists():
        raise PhaseFailed(f"the workspace already holds {plugin_dir.name}")
    try:
        ctx.files = render_pack(
            ctx.pack, ctx.spec, plugin_dir, allowed_dependencies=ctx.allowed_dependencies
        )
    except PackError as exc:
        raise PhaseFailed("the template pack could not render this spec", str(exc)) from None
    ctx.plugin_dir = plugin_dir
    ctx.reporter.phase_note(
        "scaffold", f"{len(ctx.files)} files from {ctx.pack.name} {ctx.pack.version}"
    )

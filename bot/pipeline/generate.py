"""generate: the generator turns the scaffold into the plugin."""

from __future__ import annotations

from bot.pipeline.context import JobContext


class ScaffoldGenerator:
    """No model: the scaffold's working, simple handlers are the plugin."""

    name = "scaffold"
    model: str | None = None

    async def generate(self, ctx: JobContext) -> None:
        ctx.tools.reporter.phase_note("generate", "scaffold generator: the template's code is kept")


async def generate_phase(ctx: JobContext) -> None:
    ctx.require_plugin()
    try:
        await ctx.tools.generator.generate(ctx)
    finally:
        # The warm checker ends with generate: the phases after it are cold (warm.py).
        if ctx.warm is not None:
            await ctx.warm.close()

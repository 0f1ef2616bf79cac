"""spec: the description becomes a validated PluginSpec."""

from __future__ import annotations

from bot.pipeline.context import JobContext, PhaseFailed
from bot.spec.schema import SpecError, render_problems


async def spec_phase(ctx: JobContext) -> None:
    try:
        ctx.result.spec = await ctx.tools.spec_writer.write(ctx.request.description)
    except SpecError as exc:
        raise PhaseFailed("the plugin spec is invalid", render_problems(exc.problems)) from None
    if ctx.tools.meter.calls:  # the model wrote it: its tokens show while the job runs
        ctx.report_progress()
    spec = ctx.result.spec
    counts = [
        f"{len(items)} {kind}{'s' if len(items) > 1 else ''}"
        for kind, items in (
            ("action", spec.actions),
            ("provider", spec.providers),
            ("service", spec.services),
            ("evaluator", spec.evaluators),
        )
        if items
    ]
    how = {"model": "written by the model", "keywords": "keyword parser, no model"}.get(
        ctx.tools.spec_writer.name
    )
    ctx.tools.reporter.phase_note(
        "spec", f"{spec.name}: {', '.join(counts)}" + (f" ({how})" if how else "")
    )

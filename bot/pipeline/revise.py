"""fetch: a revision's start: the publisher reads the plugin from the pull request's
branch into the workspace (spec, files, the revision's request and review comments)."""

from __future__ import annotations

from bot.pipeline.context import JobContext, PhaseFailed


async def fetch_phase(ctx: JobContext) -> None:
    # bot.status imports the jobs layer, which imports the pipeline: import it here.
    from bot import status

    if ctx.tools.generator.model is None:  # a worker without a model: never the scaffold
        raise PhaseFailed(status.revise_needs_model())
    if ctx.tools.publisher is None:
        raise PhaseFailed("a revision needs its pull request: no publisher")
    await ctx.tools.publisher.preflight(ctx)
    revision = ctx.result.revision
    if revision is not None:
        ctx.tools.reporter.phase_note(
            "fetch",
            f"{len(revision.previous_files)} files from {revision.branch} at "
            f"{revision.head_sha[:12]}, {len(revision.review_notes)} unresolved review thread(s)",
        )

"""publish: the finished plugin goes where the job's publisher takes it.

The CLI's publisher exports it to ``--out``; the GitHub worker's opens a pull request.
"""

from __future__ import annotations

from pathlib import Path

from bot.pipeline.context import JobContext, PhaseFailed, Published
from bot.workspace import replace_dir


async def publish_phase(ctx: JobContext) -> None:
    ctx.require_plugin()
    if ctx.tools.publisher is None:
        raise PhaseFailed("this job has nowhere to publish to")
    ctx.raise_if_cancelled()
    ctx.result.published = published = await ctx.tools.publisher.publish(ctx)
    where = published.url or published.location
    ctx.tools.reporter.phase_note("publish", "; ".join((where, *published.notes)))


class LocalExport:
    """``create --out DIR``: the plugin lands in ``DIR/<name>/``.

    An existing directory is refused before any work unless ``overwrite`` is set, and it is
    replaced only by a plugin that passed every phase.
    """

    def __init__(self, root: Path, *, overwrite: bool = False) -> None:
        self.root = root
        self.overwrite = overwrite

    def _target(self, ctx: JobContext) -> Path:
        if ctx.result.spec is None:
            raise PhaseFailed("no spec: nothing to export")
        return ctx.result.spec.directory_in(self.root)

    async def preflight(self, ctx: JobContext) -> None:
        target = self._target(ctx)
        if target.exists() and not self.overwrite:
            raise PhaseFailed(f"{target} already exists (use --force to replace it)")

    async def publish(self, ctx: JobContext) -> Published:
        target = self._target(ctx)
        self.root.mkdir(parents=True, exist_ok=True)
        replace_dir(ctx.require_files(), target)  # exactly the bot's files
        return Published(location=str(target))

"""A GitHub job on a worker: the runner with the pull-request publisher and the tracking
comment as its reporter. The jobs layer's worker calls :meth:`GitHubJobs.run` for a claimed
job, and :meth:`GitHubJobs.abandoned` when recovery gives a job up, so no comment is left
saying "running"."""

from __future__ import annotations

import asyncio

import structlog

from bot import status
from bot.github.client import GitHubApp
from bot.github.data.repository import RepoRef
from bot.github.operations import comments
from bot.github.ports import JobView
from bot.github.publisher import PullRequestPublisher
from bot.github.tracking import TrackingReporter
from bot.pipeline import PHASES
from bot.pipeline.context import JobRequest, Origin, Phase
from bot.runner import Outcome, Runner
from bot.settings import Settings

log = structlog.get_logger("bot.github.jobs")


def final_state(outcome: Outcome) -> dict[str, object]:
    """The tracking comment's last fields, from what the job produced."""
    ctx, result = outcome.ctx, outcome.ctx.result
    fields: dict[str, object] = {
        "plugin_name": result.spec.name if result.spec else None,
        "elapsed_s": outcome.wall_s,
    }
    if result.test_results is not None:
        fields["tests_passed"] = result.test_results.passed
        fields["tests_failed"] = result.test_results.failed
    if ctx.tools.generator.model is not None:
        fields["tokens"] = outcome.meter.usage.total
        fields["cost_usd"] = outcome.meter.cost_usd
        fields["round"] = result.rounds_used
        fields["max_rounds"] = getattr(ctx.tools.generator, "max_rounds", None)
    if ctx.succeeded and outcome.published is not None:
        return {**fields, "state": "succeeded", "pr_url": outcome.published.url}
    if ctx.cancelled:
        return {**fields, "state": "cancelled"}
    failed = ctx.failed_phase
    return {
        **fields,
        "state": "failed",
        "failed_phase": failed.name if failed else None,
        "error": failed.error if failed else "the job stopped",
        "failure_tail": failed.detail if failed else "",
    }


class GitHubJobs:
    def __init__(
        self,
        settings: Settings,
        app: GitHubApp,
        runner: Runner,
        *,
        generator: str = "auto",
        phases: list[tuple[str, Phase]] = PHASES,
    ) -> None:
        self.settings = settings
        self.app = app
        self.runner = runner
        self.generator = generator
        self.phases = phases

    async def _tracking_comment(self, job: JobView, body: str) -> int:
        if job.tracking_comment_id is not None:
            return job.tracking_comment_id
        async with self.app.installation(job.installation_id) as inst:
            marker = status.tracking_marker(job.id)
            return await comments.ensure_comment(
                inst, RepoRef.parse(job.repository), job.issue, marker, body
            )

    def _reporter(self, job: JobView, comment_id: int) -> TrackingReporter:
        repo = RepoRef.parse(job.repository)

        async def edit(body: str) -> None:
            async with self.app.installation(job.installation_id) as inst:
                await comments.edit(inst, repo, comment_id, body)

        return TrackingReporter(
            edit,
            job_id=job.id,
            requester=job.requester,
            phases=[name for name, _ in self.phases],
            interval_s=self.settings.tracking_edit_interval_s,
            attempt=job.attempt,
        )

    async def run(self, job: JobView, cancel: asyncio.Event | None = None) -> Outcome:
        structlog.contextvars.bind_contextvars(
            delivery_id=job.delivery_id, repository=job.repository, job_id=job.id
        )
        comment_id = await self._tracking_comment(job, status.tracking_marker(job.id))
        reporter = self._reporter(job, comment_id)
        request = JobRequest(
            job_id=job.id,
            description=job.description,
            origin=Origin(
                repository=job.repository,
                installation_id=job.installation_id,
                issue=job.issue,
                comment_id=job.comment_id,
                requester=job.requester,
                delivery_id=job.delivery_id,
            ),
        )
        try:
            outcome = await self.runner.run(
                request,
                publisher=PullRequestPublisher(self.settings, self.app, job),
                generator=self.generator,
                reporter=reporter,
                cancel=cancel,
                phases=self.phases,
            )
        except Exception as exc:
            await reporter.close(state="failed", error=f"{type(exc).__name__}: {exc}")
            raise
        reporter.settle(outcome.ctx.result.records)
        await reporter.close(**final_state(outcome))
        log.info("job.finished", state=reporter.view.state)
        return outcome

    async def abandoned(self, job: JobView, error: str) -> None:
        """Recovery gave the job up (its worker died): the comment says so."""
        view = status.TrackingView(
            job_id=job.id,
            requester=job.requester,
            state="failed",
            phases=(),
            plugin_name=job.plugin_name,
            attempt=job.attempt,
            error=error,
        )
        comment_id = await self._tracking_comment(job, status.tracking_comment(view))
        async with self.app.installation(job.installation_id) as inst:
            await comments.edit(
                inst, RepoRef.parse(job.repository), comment_id, status.tracking_comment(view)
            )

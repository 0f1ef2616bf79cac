"""A GitHub job on a worker: the runner with the pull-request publisher and the tracking
comment as its reporter. The jobs layer's worker calls :meth:`GitHubJobs.run` for a claimed
job, and :meth:`GitHubJobs.abandoned` when recovery gives a job up, so no comment is left
saying "running"."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import TYPE_CHECKING

import structlog

from bot import jobpage, status
from bot.github.client import GitHubApp
from bot.github.data.repository import RepoRef, default_branch_head, read_text
from bot.github.desk import job_view
from bot.github.operations import comments
from bot.github.ports import JobView
from bot.github.publisher import PullRequestPublisher
from bot.github.revision import RevisionPublisher
from bot.github.tracking import TrackingReporter
from bot.github.validation.config import RepoConfigError, parse_repo_config
from bot.jobs.store import Job, Store
from bot.jobs.worker import local_publisher_for
from bot.pipeline import PHASES, REVISE_PHASES
from bot.pipeline.context import (
    JobProgress,
    JobRequest,
    Origin,
    Phase,
    PhaseRecord,
    Publisher,
    Reporter,
)
from bot.runner import Outcome, Runner
from bot.settings import REPO_CONFIG_PATH, Settings

if TYPE_CHECKING:
    import httpx2

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


def request_of(job: JobView) -> JobRequest:
    return JobRequest(
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


async def after_revision(publisher: Publisher, outcome: Outcome) -> None:
    """A failed revision shows as a failed check on the pull request, with the reason."""
    if not isinstance(publisher, RevisionPublisher) or outcome.ok or outcome.ctx.cancelled:
        return
    failed = outcome.ctx.failed_phase
    reason = failed.error if failed is not None else "the revision stopped"
    try:
        await publisher.report_failure(outcome.ctx, reason)
    except Exception as exc:  # the job's own outcome stands; the comment says what failed
        log.warning("revision.check_failed", error=f"{type(exc).__name__}: {exc}")


def publisher_of(settings: Settings, app: GitHubApp, job: JobView) -> Publisher:
    """A revision job's publisher is its pull request's branch; any other opens one. The
    kind is the job's own (set when it was admitted), never read from its text."""
    if job.kind == "revise":
        request = status.revision_request(job.description) or job.description
        return RevisionPublisher(settings, app, job, request)
    return PullRequestPublisher(settings, app, job)


class Tee:
    """Every reporter call to two reporters (the job's events and its comment)."""

    def __init__(self, first: Reporter, second: Reporter) -> None:
        self.first, self.second = first, second

    def phase_started(self, phase: str) -> None:
        self.first.phase_started(phase)
        self.second.phase_started(phase)

    def phase_note(self, phase: str, note: str) -> None:
        self.first.phase_note(phase, note)
        self.second.phase_note(phase, note)

    def phase_finished(self, phase: str, record: PhaseRecord) -> None:
        self.first.phase_finished(phase, record)
        self.second.phase_finished(phase, record)

    def progress_changed(self, progress: JobProgress) -> None:
        self.first.progress_changed(progress)
        self.second.progress_changed(progress)


class GitHubJobs:
    def __init__(
        self,
        settings: Settings,
        app: GitHubApp,
        runner: Runner,
        *,
        generator: str = "auto",
        phases: list[tuple[str, Phase]] = PHASES,
        revise_phases: list[tuple[str, Phase]] = REVISE_PHASES,
    ) -> None:
        self.settings = settings
        self.app = app
        self.runner = runner
        self.generator = generator
        self.phases = phases
        self.revise_phases = revise_phases

    async def with_repo_dependencies(self, job: JobView, request: JobRequest) -> JobRequest:
        """``request`` with the dependencies its repository's config allows (the bot's,
        plus those of the bot's optional ones the config adds), read from the default
        branch as the job starts. An invalid config leaves the bot's list: the publisher's
        preflight refuses the job with the config's problems."""
        repo = RepoRef.parse(job.repository)
        async with self.app.installation(job.installation_id) as inst:
            head = await default_branch_head(inst, repo)
            text = await read_text(inst, repo, REPO_CONFIG_PATH, head.sha)
        try:
            config = parse_repo_config(text, self.settings)
        except RepoConfigError:
            return request
        return replace(request, allowed_dependencies=config.allowed_dependencies(self.settings))

    async def _tracking_comment(self, job: JobView, body: str) -> int:
        if job.tracking_comment_id is not None:
            return job.tracking_comment_id
        async with self.app.installation(job.installation_id) as inst:
            marker = status.tracking_marker(job.id)
            return await comments.ensure_comment(
                inst, RepoRef.parse(job.repository), job.issue, marker, body
            )

    def _reporter(self, job: JobView, comment_id: int, revising: bool = False) -> TrackingReporter:
        repo = RepoRef.parse(job.repository)

        async def edit(body: str) -> None:
            async with self.app.installation(job.installation_id) as inst:
                await comments.edit(inst, repo, comment_id, body)

        reporter = TrackingReporter(
            edit,
            job_id=job.id,
            requester=job.requester,
            phases=[name for name, _ in (self.revise_phases if revising else self.phases)],
            interval_s=self.settings.tracking_edit_interval_s,
            attempt=job.attempt,
        )
        reporter.view = replace(reporter.view, job_page=jobpage.page_url(self.settings, job.id))
        return reporter

    async def tracked(
        self,
        job: JobView,
        run: Callable[[Reporter], Awaitable[Outcome]],
        also: Reporter | None,
        *,
        revising: bool = False,
    ) -> Outcome:
        """Run ``run`` with the tracking comment as (part of) its reporter, and write the
        comment's last state from the outcome; ``also`` gets every call too."""
        structlog.contextvars.bind_contextvars(
            delivery_id=job.delivery_id, repository=job.repository, job_id=job.id
        )
        comment_id = await self._tracking_comment(job, status.tracking_marker(job.id))
        tracking = self._reporter(job, comment_id, revising)
        try:
            outcome = await run(Tee(tracking, also) if also is not None else tracking)
        except Exception as exc:
            await tracking.close(state="failed", error=f"{type(exc).__name__}: {exc}")
            raise
        tracking.settle(outcome.ctx.result.records)
        await tracking.close(**final_state(outcome))
        log.info("job.finished", state=tracking.view.state)
        return outcome

    async def run(self, job: JobView, cancel: asyncio.Event | None = None) -> Outcome:
        """Run one job with this object's runner (tests, and workers without a queue)."""

        publisher = publisher_of(self.settings, self.app, job)
        revising = isinstance(publisher, RevisionPublisher)

        async def run(reporter: Reporter) -> Outcome:
            return await self.runner.run(
                await self.with_repo_dependencies(job, request_of(job)),
                publisher=publisher,
                generator=self.generator,
                reporter=reporter,
                cancel=cancel,
                phases=self.revise_phases if revising else self.phases,
            )

        outcome = await self.tracked(job, run, None, revising=revising)
        await after_revision(publisher, outcome)
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


class GitHubRunner(Runner):
    """The jobs layer's runner for a worker that serves GitHub: a job that came from a
    repository gets its tracking comment around the run; any other runs as it is."""

    def __init__(
        self,
        settings: Settings,
        app: GitHubApp,
        store: Store,
        *,
        revise_phases: list[tuple[str, Phase]] = REVISE_PHASES,
    ) -> None:
        super().__init__(settings)
        self.jobs = GitHubJobs(settings, app, self, revise_phases=revise_phases)
        self.store = store

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
        base = super().run
        row = await self.store.get_job(request.job_id)
        if row is None or row.repository is None or row.installation_id is None:
            return await base(
                request,
                publisher=publisher,
                generator=generator,
                reporter=reporter,
                cancel=cancel,
                http_client=http_client,
                phases=phases,
            )

        revising = isinstance(publisher, RevisionPublisher)
        if revising:
            phases = self.jobs.revise_phases

        async def run(tracked: Reporter) -> Outcome:
            return await base(
                await self.jobs.with_repo_dependencies(job_view(row), request),
                publisher=publisher,
                generator=generator,
                reporter=tracked,
                cancel=cancel,
                http_client=http_client,
                phases=phases,
            )

        outcome = await self.jobs.tracked(job_view(row), run, reporter, revising=revising)
        await after_revision(publisher, outcome)
        published = outcome.published
        if published is not None and published.url is not None:
            await self.store.set_published(
                request.job_id, branch=published.branch, pr_url=published.url
            )
        return outcome


def publisher_for(settings: Settings, app: GitHubApp) -> Callable[[Job], Publisher]:
    """The pull request for a job from a repository; the local export for any other."""
    local = local_publisher_for(settings)

    def choose(job: Job) -> Publisher:
        if job.repository is None or job.installation_id is None:
            return local(job)
        return publisher_of(settings, app, job_view(job))

    return choose

"""The dispatcher: a stored command becomes a job, a reply, or both.

Outside the webhook request, per command: 👀 on it at once, then the repository's config
(from the default branch), the commenter's permission, the limits (in the store), the job
row and its tracking comment, or a reply that says why not. Each handler returns a short
outcome the store keeps with the command.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import structlog

from bot import status
from bot.github.client import GitHubApp
from bot.github.commands import CommandName
from bot.github.context import EventContext
from bot.github.data.repository import BranchHead, RepoRef, default_branch_head, read_text
from bot.github.operations.comments import ensure_comment
from bot.github.ports import (
    FINISHED,
    Admission,
    CommandInbox,
    JobDesk,
    JobView,
    NewJob,
    RepoJobLimits,
)
from bot.github.revision import pull_head, refusal_to_revise
from bot.github.validation.config import RepoConfigError, parse_repo_config
from bot.github.validation.permissions import may_write
from bot.github.webhooks import Trigger
from bot.llm import model_configured
from bot.pipeline import REVISE_PHASES
from bot.settings import REPO_CONFIG_PATH, RepoConfig, Settings
from bot.status import PhaseLine, TrackingView

log = structlog.get_logger("bot.dispatcher")
Handler = Callable[[EventContext], Awaitable[str]]
REVISE_PHASE_NAMES = tuple(name for name, _ in REVISE_PHASES)
Onboarding = Callable[[EventContext, BranchHead], Awaitable[bool]]


def waiting_view(job: JobView, phases: tuple[str, ...], note: str = "") -> TrackingView:
    """A new job's comment; ``note`` is the bot's own text (the queue position)."""
    return TrackingView(
        job_id=job.id,
        requester=job.requester,
        state="queued",
        phases=[PhaseLine(name, "waiting") for name in phases],
        extra=(note,) if note else (),
    )


class Dispatcher:
    def __init__(
        self,
        settings: Settings,
        app: GitHubApp,
        inbox: CommandInbox,
        desk: JobDesk,
        *,
        phases: tuple[str, ...],
        onboarding: Onboarding | None = None,
        revise_phases: tuple[str, ...] = REVISE_PHASE_NAMES,
    ) -> None:
        self.revise_phases = revise_phases
        self.settings = settings
        self.app = app
        self.inbox = inbox
        self.desk = desk
        self.phases = phases
        self.onboarding = onboarding
        self.handlers: dict[CommandName, Handler] = {
            CommandName.CREATE: self._create,
            CommandName.STATUS: self._status,
            CommandName.CANCEL: self._cancel,
            CommandName.JOBS: self._jobs,
            CommandName.RETRY: self._retry,
            CommandName.REVISE: self._revise,
            CommandName.HELP: self._help,
            CommandName.UNKNOWN: self._unknown,
            CommandName.ONBOARD: self._onboard,
        }

    async def run_once(self) -> bool:
        """Handle the next stored command; False when there was none."""
        stored = await self.inbox.claim_command()
        if stored is None:
            return False
        trigger = stored.trigger
        if trigger.command.name is CommandName.NOTHING:
            # A line looked like a command, but GitHub shows none (in code, a quote, an
            # HTML comment…): nothing is said or done on GitHub.
            await self.inbox.finish_command(stored.id, "ignored:no command as rendered", None)
            return True
        with structlog.contextvars.bound_contextvars(
            delivery_id=trigger.delivery_id,
            repository=trigger.repository,
            installation_id=trigger.installation_id,
        ):
            await self._handle(stored.id, trigger)
        return True

    async def _handle(self, command_id: int, trigger: Trigger) -> None:
        installation_id = trigger.installation_id
        if installation_id is None:
            owner, _, name = trigger.repository.partition("/")
            installation_id = await self.app.installation_for(owner, name)
        async with self.app.installation(installation_id) as inst:
            ctx = EventContext.of(trigger, command_id, inst)
            if trigger.command.name is not CommandName.ONBOARD:
                await ctx.react()
            outcome = await self.handlers[trigger.command.name](ctx)
        ctx.log.info("command.handled", outcome=outcome)
        kind, _, job_id = outcome.partition(":")
        started = job_id if kind in {"accepted", "queued"} else None
        await self.inbox.finish_command(command_id, outcome, started)

    # ------------------------------------------------------------------ checks

    async def _config(self, ctx: EventContext, head: BranchHead) -> RepoConfig | list[str]:
        text = await read_text(ctx.inst, ctx.repo, REPO_CONFIG_PATH, head.sha)
        try:
            return parse_repo_config(text, self.settings)
        except RepoConfigError as exc:
            return exc.problems

    async def _allowed(self, ctx: EventContext, config: RepoConfig | list[str]) -> str | None:
        """None when the commenter may write; else the refusal, already replied."""
        trigger = config.trigger if isinstance(config, RepoConfig) else RepoConfig().trigger
        decision = await may_write(ctx.inst, ctx.repo, ctx.trigger.requester, trigger)
        if not decision.allowed:
            await ctx.reply(decision.refusal)
            return f"refused:permission:{decision.permission}"
        if isinstance(config, list):
            await ctx.reply(status.refused_config(REPO_CONFIG_PATH, config))
            return "refused:config"
        return None

    def _limits(self, config: RepoConfig) -> RepoJobLimits:
        return RepoJobLimits(config.limits.jobs_per_hour, config.limits.max_running)

    async def _find_job(self, ctx: EventContext) -> JobView | None:
        if ctx.command.argument:
            job = await self.desk.get_job(ctx.command.argument)
            same_issue = job is not None and (job.repository, job.issue) == (
                ctx.trigger.repository,
                ctx.issue,
            )
            return job if same_issue else None
        jobs = await self.desk.jobs_on_issue(ctx.trigger.repository, ctx.issue)
        # Not a job this very comment made (a retry handled again after a crash).
        mine = ctx.trigger.comment_id
        jobs = [j for j in jobs if mine is None or j.comment_id != mine]
        return jobs[-1] if jobs else None

    # ------------------------------------------------------------------ starting jobs

    async def _admit(
        self,
        ctx: EventContext,
        description: str,
        retry_of: str | None = None,
        kind: str = "create",
    ) -> str:
        head = await default_branch_head(ctx.inst, ctx.repo)
        config = await self._config(ctx, head)
        refused = await self._allowed(ctx, config)
        if refused is not None:
            return refused
        assert isinstance(config, RepoConfig)
        job = NewJob(ctx.command_id, ctx.trigger, description, retry_of=retry_of, kind=kind)
        admission = await self.desk.admit(job, self._limits(config))
        return await self._answer_admission(ctx, admission)

    async def _answer_admission(
        self, ctx: EventContext, admission: Admission, phases: tuple[str, ...] | None = None
    ) -> str:
        if admission.outcome == "refused" or admission.job_id is None:
            assert admission.retry_at is not None
            await ctx.reply(
                status.refused_rate(admission.scope, admission.limit, admission.retry_at)
            )
            return "refused:rate"
        job = await self.desk.get_job(admission.job_id)
        assert job is not None
        note = ""
        if admission.outcome == "queued":
            note = status.queued(job.id, admission.position)
        body = status.tracking_comment(waiting_view(job, phases or self.phases, note))
        comment_id = await ensure_comment(
            ctx.inst, ctx.repo, ctx.issue, status.tracking_marker(job.id), body
        )
        await self.desk.set_tracking_comment(job.id, comment_id)
        return f"{admission.outcome}:{job.id}"

    async def _create(self, ctx: EventContext) -> str:
        if not ctx.command.argument.strip():
            await ctx.reply(status.empty_description())
            return "refused:empty"
        return await self._admit(ctx, ctx.command.argument)

    async def _revise(self, ctx: EventContext) -> str:
        """``/plugin-revise`` on the bot's open pull request: a revision job, its tracking
        comment on the pull request."""
        request = ctx.command.argument.strip()
        if not request:
            await ctx.reply(status.revise_empty())
            return "refused:empty"
        refusal = refusal_to_revise(await pull_head(ctx.inst, ctx.repo, ctx.issue))
        if refusal is not None:
            await ctx.reply(refusal)
            return "refused:not-ours"
        head = await default_branch_head(ctx.inst, ctx.repo)
        config = await self._config(ctx, head)
        refused = await self._allowed(ctx, config)
        if refused is not None:
            return refused
        assert isinstance(config, RepoConfig)
        if not model_configured(self.settings):
            await ctx.reply(status.revise_needs_model())
            return "refused:no-model"
        job = NewJob(
            ctx.command_id, ctx.trigger, status.revision_description(request), kind="revise"
        )
        admission = await self.desk.admit(job, self._limits(config))
        return await self._answer_admission(ctx, admission, self.revise_phases)

    async def _retry(self, ctx: EventContext) -> str:
        job = await self._find_job(ctx)
        if job is None:
            await ctx.reply(status.reply_no_such_job(ctx.command.argument or "(latest)"))
            return "refused:no-job"
        if job.state not in {"failed", "cancelled"}:
            await ctx.reply(status.not_retryable(job.id, job.state))
            return "refused:not-retryable"
        first = job.retry_of or job.id  # a retry of a retry: the chain's first job
        busy = await self._chain_busy(ctx, first)
        if busy is not None:
            await ctx.reply(status.retry_in_progress(job.id, busy.id, busy.state))
            return "refused:retrying"
        return await self._admit(ctx, job.description, retry_of=first, kind=job.kind)

    async def _chain_busy(self, ctx: EventContext, first: str) -> JobView | None:
        """A queued or running job of the chain that starts at ``first`` (that job, or a
        retry of it): a second retry now would publish onto the same branch at the same
        time. The job this very comment made (a command handled again) does not count."""
        mine = ctx.trigger.comment_id
        for job in await self.desk.jobs_on_issue(ctx.trigger.repository, ctx.issue):
            ours = mine is not None and job.comment_id == mine
            chain = job.id == first or job.retry_of == first
            if chain and not ours and job.state in {"queued", "running"}:
                return job
        return None

    async def _cancel(self, ctx: EventContext) -> str:
        head = await default_branch_head(ctx.inst, ctx.repo)
        refused = await self._allowed(ctx, await self._config(ctx, head))
        if refused is not None:
            return refused
        job = await self._find_job(ctx)
        if job is None:
            await ctx.reply(status.reply_no_such_job(ctx.command.argument or "(latest)"))
            return "refused:no-job"
        if job.state in FINISHED or not await self.desk.request_cancel(job.id):
            await ctx.reply(status.not_cancellable(job.id, job.state))
            return "refused:finished"
        await ctx.reply(status.cancel_requested(job.id))
        return f"cancel:{job.id}"

    # ------------------------------------------------------------------ reading

    async def _status(self, ctx: EventContext) -> str:
        job = await self._find_job(ctx)
        if job is None:
            await ctx.reply(status.reply_no_such_job(ctx.command.argument or "(latest)"))
            return "status:none"
        await ctx.reply(
            status.reply_job_line(job.id, job.state, job.phase, job.plugin_name, job.pr_url)
        )
        return f"status:{job.id}"

    async def _jobs(self, ctx: EventContext) -> str:
        jobs = await self.desk.jobs_on_issue(ctx.trigger.repository, ctx.issue)
        lines = [
            status.reply_job_line(j.id, j.state, j.phase, j.plugin_name, j.pr_url) for j in jobs
        ]
        await ctx.reply(status.jobs_list(lines))
        return f"jobs:{len(jobs)}"

    async def _help(self, ctx: EventContext) -> str:
        offered = False
        config_problems = ""
        if self.onboarding is not None:
            try:
                head = await default_branch_head(ctx.inst, ctx.repo)
                offered = await self.onboarding(ctx, head)
            except RepoConfigError as exc:
                config_problems = status.onboarding_waits_for_config(REPO_CONFIG_PATH, exc.problems)
        reply = status.help_text(offered)
        await ctx.reply(f"{reply}\n\n{config_problems}" if config_problems else reply)
        return "help"

    async def _unknown(self, ctx: EventContext) -> str:
        await ctx.reply(status.unknown_command(ctx.command.typed, ctx.command.suggestion))
        return "unknown"

    async def _onboard(self, ctx: EventContext) -> str:
        """The app was installed: offer onboarding on each repository (no reply: no issue)."""
        offered = []
        for name in ctx.command.argument.split(","):
            repo = RepoRef.parse(name)
            if self.onboarding is None:
                break
            head = await default_branch_head(ctx.inst, repo)
            there = EventContext(ctx.trigger, ctx.command_id, ctx.inst, repo, ctx.log)
            try:
                if await self.onboarding(there, head):
                    offered.append(name)
            except RepoConfigError as exc:  # no one to tell here: /plugin-help says it
                ctx.log.info("onboarding.config_invalid", repo=name, problems=exc.problems)
        return f"onboarding:{len(offered)}"

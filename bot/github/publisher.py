"""The pull request as the job's Publisher: the pipeline's ``publish`` phase calls it.

``preflight`` (before anything is built) records the base the job started from and
refuses a plugin folder that already exists there; ``publish`` commits exactly the
signed file set through the git data API and opens (or finds) the pull request.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from typing import Any

from githubkit.exception import RequestFailed

from bot import status
from bot.github.branches import branch_for, is_branch_of
from bot.github.client import GitHubApp, Installation
from bot.github.data.branch import (
    check_foreign_commits,
    made_on,
    pull_base,
    signed_predicate,
    tree_of,
)
from bot.github.data.repository import (
    BranchHead,
    RepoRef,
    branch_sha,
    default_branch_head,
    find_pull_request,
    path_exists,
    read_text,
)
from bot.github.operations.checks import CheckReport, post_check_run, report_for
from bot.github.operations.pull_request import (
    BranchMoved,
    OnTop,
    PullRequestPlan,
    commit_on_top,
    fast_forward,
    publish_pull_request,
)
from bot.github.ports import JobView
from bot.github.pull_view import made_by_job, pull_request_view
from bot.github.validation.config import RepoConfigError, parse_repo_config
from bot.manifest import MANIFEST_FILE
from bot.pipeline.context import JobContext, PhaseFailed, Published
from bot.settings import REPO_CONFIG_PATH, RepoConfig, Settings
from bot.spec.schema import PluginSpec


async def open_pull_of(inst: Installation, repo: RepoRef, directory: str) -> str | None:
    """The URL of an open pull request from the bot's branch for this plugin, if one exists:
    another job's (a retry of a job that failed after opening it, a second request)."""
    pulls: list[Any] = await inst.request(
        "GET", f"{repo.path}/pulls", params={"state": "open", "per_page": 100}
    )
    for pull in pulls:
        head = pull.get("head") or {}
        same = (head.get("repo") or {}).get("full_name") == str(repo)
        ref = str(head.get("ref", ""))
        if same and pull.get("state", "open") == "open" and is_branch_of(ref, directory):
            return str(pull["html_url"])
    return None


def signed_files(ctx: JobContext) -> dict[str, bytes]:
    """The bot's file set (never the directory): when signed, exactly the manifest's
    subjects and the manifest, checked here once more before anything is committed."""
    files = ctx.require_files()
    published = {name: data for name in files.names() if (data := files.get(name)) is not None}
    manifest = published.get(MANIFEST_FILE)
    if manifest is not None:
        statement = json.loads(base64.b64decode(json.loads(manifest)["payload"]))
        subjects = {str(s["name"]) for s in statement["subject"]}
        if subjects != set(published) - {MANIFEST_FILE}:
            raise PhaseFailed("the signed subjects are not the plugin's files; nothing published")
    return published


async def check_run_after_opening(
    inst: Installation, repo: RepoRef, report: CheckReport
) -> tuple[str, ...]:
    """The check run once the pull request is open (or moved): GitHub may refuse it (an
    installation that has not accepted ``checks: write``: 403). The pull request stands, so
    that is a note, never a failed job."""
    try:
        await post_check_run(inst, repo, report)
    except RequestFailed as exc:
        return (status.pull_request_step_refused("check run", exc.response.status_code),)
    return ()


async def publish_on_top(
    inst: Installation,
    ctx: JobContext,
    onto: OnTop,
    files: Mapping[str, bytes],
    message: str,
    pull_number: int,
    pull_fields: dict[str, Any],
    command: str,
) -> Published:
    """One commit on the open pull request's head (a revision, or a retry onto it): the
    branch moved without force, the pull request's ``pull_fields`` updated and a check run
    for the new commit. Someone's push meanwhile fails the job, naming ``command``."""
    sha = await commit_on_top(inst, onto, files, message)
    try:
        await fast_forward(inst, onto, sha)
    except BranchMoved:
        raise PhaseFailed(status.branch_moved(onto.branch, command)) from None
    pull = await inst.create("PATCH", f"{onto.repo.path}/pulls/{pull_number}", pull_fields)
    report = report_for(ctx, sha, onto.folder, None)
    notes = await check_run_after_opening(inst, onto.repo, report)
    return Published(
        location=onto.folder, url=str(pull["html_url"]), branch=onto.branch, commit=sha, notes=notes
    )


class PullRequestPublisher:
    def __init__(self, settings: Settings, app: GitHubApp, job: JobView) -> None:
        self.settings = settings
        self.app = app
        self.job = job
        self.repo = RepoRef.parse(job.repository)
        self.base = BranchHead("", "")  # the default branch's head when the job starts
        self.config = RepoConfig()
        # A retry whose branch has an open pull request: the commit goes on its head.
        self.onto: OnTop | None = None
        self.onto_pull = 0
        self.onto_base = ""  # that pull request's base, from the manifest on its head
        self.branch = ""  # chosen by the preflight

    def _spec(self, ctx: JobContext) -> PluginSpec:
        if ctx.result.spec is None:
            raise PhaseFailed("no spec: nothing to publish")
        return ctx.result.spec

    def _folder(self, spec: PluginSpec) -> str:
        return f"{self.config.plugins_folder}/{spec.directory_name}"

    async def _branch(self, inst: Installation, spec: PluginSpec) -> str:
        """The job's branch. A retry's is the first job's of its chain (its pull request),
        unless that pull request was closed or merged: then the retry's own, a fresh branch
        and a new pull request (a merged plugin is refused as one that exists), never a link
        to the closed one with nothing pushed."""
        if self.job.retry_of is not None:
            first = branch_for(spec.directory_name, self.job.retry_of)
            pull = await find_pull_request(inst, self.repo, first)
            if pull is None or pull.get("state") == "open":
                return first
        return branch_for(spec.directory_name, self.job.id)

    async def preflight(self, ctx: JobContext) -> None:
        spec = self._spec(ctx)
        async with self.app.installation(self.job.installation_id) as inst:
            branch = self.branch = await self._branch(inst, spec)
            self.base = await default_branch_head(inst, self.repo)
            text = await read_text(inst, self.repo, REPO_CONFIG_PATH, self.base.sha)
            try:
                self.config = parse_repo_config(text, self.settings)
            except RepoConfigError as exc:
                raise PhaseFailed(status.refused_config(REPO_CONFIG_PATH, exc.problems)) from exc
            folder = self._folder(spec)
            if branch != branch_for(spec.directory_name, self.job.id):
                await self._onto_open_pull(inst, ctx, branch, folder)
            ours = await branch_sha(inst, self.repo, branch) is not None
            if not ours and await path_exists(inst, self.repo, folder, self.base.sha):
                raise PhaseFailed(status.plugin_exists(folder, self.base.branch))
            if not ours and (url := await open_pull_of(inst, self.repo, spec.directory_name)):
                raise PhaseFailed(status.plugin_pull_request_open(folder, url))
        # The manifest binds the pull request's base (the recorded default branch's head,
        # or the open pull request's, carried from its manifest) and the commit it is made
        # on (that base, or the head of the open pull request's branch a retry builds on).
        ctx.result.base_commit = self.onto_base if self.onto else self.base.sha
        ctx.result.parent_commit = self.onto.head_sha if self.onto else self.base.sha
        ctx.result.branch = branch
        ctx.result.plugin_path = self._folder(spec)

    async def _onto_open_pull(
        self, inst: Installation, ctx: JobContext, branch: str, folder: str
    ) -> None:
        """A retry whose branch has an open pull request publishes onto it: one commit on
        its head, as a revision does (the same rule for others' commits on it)."""
        pull = await find_pull_request(inst, self.repo, branch)
        head = await branch_sha(inst, self.repo, branch)
        if pull is None or pull.get("state") != "open" or head is None:
            return
        tree = await tree_of(inst, self.repo, head)
        manifest_sha = tree.get(f"{folder}/{MANIFEST_FILE}")
        if manifest_sha is None:
            raise PhaseFailed(status.revise_no_plugin(folder))
        blob = await inst.request("GET", f"{self.repo.path}/git/blobs/{manifest_sha}")
        manifest = base64.b64decode(str(blob.get("content", "")))
        predicate = signed_predicate(manifest, ctx.tools.signing_key, self.job.repository, branch)
        base = made_on(predicate)
        if base is None:
            raise PhaseFailed(status.revise_untrusted("it names no base commit"))
        await check_foreign_commits(inst, self.repo, head, base, folder)
        self.onto_base = pull_base(predicate) or head
        prefix = folder + "/"
        previous = sorted(p.removeprefix(prefix) for p in tree if p.startswith(prefix))
        self.onto = OnTop(self.repo, branch, head, folder, tuple(previous))
        self.onto_pull = int(pull["number"])

    async def publish(self, ctx: JobContext) -> Published:
        spec = self._spec(ctx)
        if not self.branch:
            raise PhaseFailed("no branch: the preflight did not run")
        plan = PullRequestPlan(
            repo=self.repo,
            base=self.base,
            branch=self.branch,
            folder=self._folder(spec),
            files=signed_files(ctx),
            title=status.pull_request_title(spec.name),
            body=status.pull_request_body(
                pull_request_view(
                    self.job,
                    spec,
                    self._folder(spec),
                    made_by_job(ctx),
                    description=self.job.description,
                    close_issue=self.config.close_issue,
                )
            ),
            commit_message=status.commit_message(spec.name, self.job.id, self.job.requester),
            draft=self.config.draft,
            labels=self.config.labels,
            reviewers=self.config.reviewers,
        )
        if self.onto is not None:
            return await self._publish_onto(ctx, self.onto, plan)
        async with self.app.installation(self.job.installation_id) as inst:
            pull = await publish_pull_request(inst, plan)
            notes = pull.notes
            if pull.commit_sha is not None:  # a commit the bot pushed: its check run
                report = report_for(ctx, pull.commit_sha, plan.folder, None)
                notes += await check_run_after_opening(inst, self.repo, report)
        return Published(
            location=plan.folder,
            url=pull.url,
            branch=pull.branch,
            commit=pull.commit_sha,
            notes=notes,
        )

    async def _publish_onto(self, ctx: JobContext, onto: OnTop, plan: PullRequestPlan) -> Published:
        """A retry onto its open pull request: one commit on the head it checked, the
        branch moved without force, the body and a check run for the new commit."""
        async with self.app.installation(self.job.installation_id) as inst:
            return await publish_on_top(
                inst,
                ctx,
                onto,
                plan.files,
                plan.commit_message,
                self.onto_pull,
                {"title": plan.title, "body": plan.body},
                "/plugin-retry",
            )

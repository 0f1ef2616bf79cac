"""A revision of the bot's pull request: the plugin as it is on the branch in, one new
commit on the same branch out (fast-forward only), the body and a check run updated.

``preflight`` reads the pull request, walks back from the branch head to the bot's own
last commit (someone else's commits are built upon only when they touch nothing but the
plugin's files), downloads the plugin's files through the git data API (tree, blobs) into
the job's workspace, takes the spec from the signed manifest there, and collects the
unresolved review threads. ``publish`` commits exactly the new signed set on top of the
head it started from and moves the ref with ``force: false``.

"Unresolved" is GitHub's own resolution state of each review thread (GraphQL
``reviewThreads.isResolved``, see ``bot/github/data/review_threads.py``).
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from bot import status
from bot.github.branches import generated_plugin
from bot.github.client import GitHubApp, Installation
from bot.github.data.branch import (
    check_foreign_commits,
    made_on,
    pull_base,
    signed_base_commit,
    signed_predicate,
    tree_of,
)
from bot.github.data.repository import (
    BranchHead,
    RepoRef,
    collaborator_permission,
    default_branch_head,
    read_text,
)
from bot.github.data.review_threads import (
    ReviewThreadsUnreadable,
    TooManyReviewComments,
    review_threads,
)
from bot.github.operations.checks import post_check_run, report_for
from bot.github.operations.pull_request import OnTop
from bot.github.ports import JobView
from bot.github.publisher import check_run_after_opening, publish_on_top, signed_files
from bot.github.pull_view import MadeWith, made_by_job, pull_request_view
from bot.github.validation.config import RepoConfigError, parse_repo_config
from bot.github.validation.permissions import effective_permission, rank
from bot.manifest import (
    MANIFEST_FILE,
)
from bot.paths import PathRefused
from bot.pipeline.context import (
    AlreadyPublished,
    JobContext,
    PhaseFailed,
    Published,
    ReviewNote,
    Revision,
)
from bot.pipeline.scaffold import hold_configs
from bot.settings import (
    REPO_CONFIG_PATH,
    REVIEW_NOTE_PERMISSION,
    REVISE_MAX_BYTES,
    REVISE_MAX_FILES,
    RepoConfig,
    Settings,
)
from bot.spec.schema import PluginSpec
from bot.status import PullRequestView, RevisionView
from bot.testresults import RESULTS_FILE, TestResults
from bot.workspace import FileSet


@dataclass(frozen=True)
class PullHead:
    number: int
    branch: str
    sha: str
    state: str
    from_this_repository: bool  # False for a fork's pull request, whatever its branch name


def refusal_to_revise(pull: PullHead | None) -> str | None:
    """Why this pull request is not revised, or None: only an open pull request from one
    of the bot's generated-plugin branches in this repository is (not the onboarding one,
    not a fork's named like the bot's)."""
    if pull is None:
        return status.revise_not_a_pull_request()
    if generated_plugin(pull.branch) is None or not pull.from_this_repository:
        return status.revise_not_ours(pull.branch)
    if pull.state != "open":
        return status.revise_not_open(pull.state)
    return None


async def pull_head(inst: Installation, repo: RepoRef, number: int) -> PullHead | None:
    found = await inst.get_or_none(f"{repo.path}/pulls/{number}")
    if found is None:
        return None
    head, base = found["head"], found["base"]
    same = (head.get("repo") or {}).get("full_name") == (base.get("repo") or {}).get("full_name")
    state = str(found.get("state", "open"))
    return PullHead(number, str(head["ref"]), str(head["sha"]), state, same)


async def pushed_by(
    inst: Installation,
    repo: RepoRef,
    head: str,
    predicate: Mapping[str, Any],
    job_id: str,
    files: Mapping[str, bytes],
) -> bool:
    """Whether ``head`` is this job's own revision commit (its worker died after the push):
    the signed manifest it holds names this job, the commit is on the one the manifest says
    it was made on, its plugin files are exactly the signed ones, and its trailer says so.
    A trailer and a copied manifest are no proof on their own: anyone who may push can
    write both onto a commit whose code the bot never tested."""
    job = predicate.get("job")
    if not isinstance(job, dict) or job.get("id") != job_id or not predicate.get("revision"):
        return False
    if not holds_the_signed_set(files):
        return False
    commit = await inst.request("GET", f"{repo.path}/git/commits/{head}")
    parents = [str(p.get("sha")) for p in commit.get("parents", [])]
    if parents != [made_on(predicate)]:
        return False
    lines = str(commit.get("message", "")).strip().splitlines()
    return bool(lines) and lines[-1].strip() == f"{status.BOT_COMMIT_TRAILER}{job_id}"


def holds_the_signed_set(files: Mapping[str, bytes]) -> bool:
    """Whether the plugin's files are exactly the subjects of its manifest (already checked
    to be the bot's), each with the signed digest, and the manifest."""
    statement = json.loads(base64.b64decode(json.loads(files[MANIFEST_FILE])["payload"]))
    digests = {str(s["name"]): str(s["digest"]["sha256"]) for s in statement["subject"]}
    return set(files) - {MANIFEST_FILE} == set(digests) and all(
        hashlib.sha256(data).hexdigest() == digests[name]
        for name, data in files.items()
        if name != MANIFEST_FILE
    )


async def download_plugin(
    inst: Installation, repo: RepoRef, tree: Mapping[str, str], folder: str
) -> dict[str, bytes]:
    prefix = folder + "/"
    mine = {p.removeprefix(prefix): sha for p, sha in tree.items() if p.startswith(prefix)}
    if len(mine) > REVISE_MAX_FILES:
        raise PhaseFailed(status.revise_too_big(len(mine), 0))
    files: dict[str, bytes] = {}
    total = 0
    for rel, sha in sorted(mine.items()):
        blob = await inst.request("GET", f"{repo.path}/git/blobs/{sha}")
        data = base64.b64decode(str(blob.get("content", "")))
        total += len(data)
        if total > REVISE_MAX_BYTES:
            raise PhaseFailed(status.revise_too_big(len(mine), total))
        files[rel] = data
    return files


def signed_file(manifest: bytes, files: Mapping[str, bytes], name: str) -> bytes:
    """A file of the plugin whose digest is the one a manifest (already checked to be the
    bot's, for this branch) names; anything else is not what the bot signed."""
    statement = json.loads(base64.b64decode(json.loads(manifest)["payload"]))
    digests = {s["name"]: s["digest"]["sha256"] for s in statement["subject"]}
    data = files.get(name)
    if data is None or digests.get(name) != hashlib.sha256(data).hexdigest():
        raise PhaseFailed(status.revise_untrusted(f"{name} is not the file it signed"))
    return data


def spec_from_manifest(data: bytes) -> PluginSpec:
    envelope = json.loads(data)
    statement = json.loads(base64.b64decode(envelope["payload"]))
    return PluginSpec.model_validate(statement["predicate"]["spec"])


class Writers:
    """Who may write to the repository (the collaborator permission API), asked once per
    author."""

    def __init__(self, inst: Installation, repo: RepoRef) -> None:
        self.inst, self.repo = inst, repo
        self.known: dict[str, bool] = {}

    async def may_write(self, login: str) -> bool:
        if login not in self.known:
            role = await collaborator_permission(self.inst, self.repo, login)
            self.known[login] = rank(effective_permission(role)) >= rank(REVIEW_NOTE_PERMISSION)
        return self.known[login]


async def review_notes(
    inst: Installation, repo: RepoRef, number: int, folder: str
) -> list[ReviewNote]:
    """Every unresolved review thread on the plugin's files, outdated ones included (GitHub
    keeps them open until someone resolves them: the request may still stand), each with
    its file and line and all of its comments. Resolved threads, and threads on files
    outside the plugin (which a revision cannot change), are left out; so are comments
    hidden on GitHub (minimized: what a maintainer hid is no request)."""
    try:
        threads = await review_threads(inst, repo, number)
    except ReviewThreadsUnreadable as exc:
        raise PhaseFailed(status.revise_threads_unreadable(exc.reason)) from None
    except TooManyReviewComments as exc:
        raise PhaseFailed(status.revise_too_many_review_comments(exc.limit, exc.path)) from None
    notes = []
    writers = Writers(inst, repo)
    for thread in threads:
        if thread.resolved or not thread.path.startswith(folder + "/"):
            continue
        # Only what people who may change the repository wrote is a request: on a public
        # repository anyone may comment on a diff, and the model must not take that as one.
        comments = [
            c for c in thread.comments if not c.hidden and await writers.may_write(c.author)
        ]
        if not comments:
            continue
        line = None if thread.on_file else thread.line or thread.original_line
        notes.append(
            ReviewNote(
                path=thread.path.removeprefix(folder + "/"),
                line=line,
                comments=tuple(f"{c.author}: {c.body}" for c in comments),
                author=comments[0].author,
                outdated=thread.outdated,
                removed_side=thread.side == "LEFT",
            )
        )
    return notes


class RevisionPublisher:
    """The Publisher of a revision job (``/plugin-revise`` on the bot's pull request)."""

    def __init__(self, settings: Settings, app: GitHubApp, job: JobView, request: str) -> None:
        self.settings = settings
        self.app = app
        self.job = job
        self.request = request
        self.repo = RepoRef.parse(job.repository)
        self.config = RepoConfig()
        self.base = BranchHead("", "")

    def _folder_of(self, branch: str) -> str:
        """plugin-bot/<directory>-<job8> -> <plugins folder>/<directory>."""
        directory = generated_plugin(branch)
        if directory is None:
            raise PhaseFailed(status.revise_not_ours(branch))
        return f"{self.config.plugins_folder}/{directory}"

    async def _read_config(self, inst: Installation) -> None:
        self.base = await default_branch_head(inst, self.repo)
        text = await read_text(inst, self.repo, REPO_CONFIG_PATH, self.base.sha)
        try:
            self.config = parse_repo_config(text, self.settings)
        except RepoConfigError as exc:
            raise PhaseFailed(status.refused_config(REPO_CONFIG_PATH, exc.problems)) from exc

    async def preflight(self, ctx: JobContext) -> None:
        async with self.app.installation(self.job.installation_id) as inst:
            await self._read_config(inst)
            pull = await pull_head(inst, self.repo, self.job.issue)
            refusal = refusal_to_revise(pull)
            if refusal is not None:
                raise PhaseFailed(refusal)
            assert pull is not None
            folder = self._folder_of(pull.branch)
            files = await download_plugin(
                inst, self.repo, await tree_of(inst, self.repo, pull.sha), folder
            )
            manifest = files.get(MANIFEST_FILE)
            if manifest is None:
                raise PhaseFailed(status.revise_no_plugin(folder))
            predicate = signed_predicate(
                manifest, ctx.tools.signing_key, self.job.repository, pull.branch
            )
            if await pushed_by(inst, self.repo, pull.sha, predicate, self.job.id, files):
                raise AlreadyPublished(
                    await self._finish_pushed(inst, ctx, pull, folder, files, predicate)
                )
            base = signed_base_commit(
                manifest, ctx.tools.signing_key, self.job.repository, pull.branch
            )
            await check_foreign_commits(inst, self.repo, pull.sha, base, folder)
            notes = await review_notes(inst, self.repo, pull.number, folder)
        manifest = files.get(MANIFEST_FILE)
        if manifest is None:
            raise PhaseFailed(status.revise_no_plugin(folder))
        try:
            spec = spec_from_manifest(manifest)
        except (ValueError, KeyError, TypeError) as exc:
            raise PhaseFailed(status.revise_no_plugin(folder), str(exc)) from None
        plugin_dir = ctx.workspace / spec.directory_name
        plugin_dir.mkdir(parents=True)
        # The branch's files become the authoritative set, each through the one path rule
        # (no links followed); the manifest is left out: it is signed anew after the checks.
        held = FileSet(plugin_dir)
        try:
            for rel in sorted(files):
                if rel != MANIFEST_FILE:
                    held.write(rel, files[rel])
        except PathRefused as exc:
            raise PhaseFailed(status.revise_no_plugin(folder), str(exc)) from None
        ctx.result.spec = spec
        ctx.result.plugin_dir = plugin_dir
        ctx.result.files = held
        hold_configs(ctx)
        # The manifest binds the pull request's base (as the first job's did), and the
        # head the commit goes on.
        ctx.result.base_commit = pull_base(predicate) or pull.sha
        ctx.result.parent_commit = pull.sha
        ctx.result.branch = pull.branch
        ctx.result.plugin_path = folder
        ctx.result.revision = Revision(
            pull_number=pull.number,
            branch=pull.branch,
            head_sha=pull.sha,
            folder=folder,
            previous_files=tuple(sorted(files)),
            previous_manifest_sha256=hashlib.sha256(manifest).hexdigest(),
            request=self.request,
            requester=self.job.requester,
            review_notes=tuple(notes),
        )

    async def _finish_pushed(
        self,
        inst: Installation,
        ctx: JobContext,
        pull: PullHead,
        folder: str,
        files: Mapping[str, bytes],
        predicate: Mapping[str, Any],
    ) -> Published:
        """The steps after the push, from what this job signed (its manifest, its test
        results, its usage): the same body and check run as an uninterrupted revision."""
        manifest = files[MANIFEST_FILE]
        spec = PluginSpec.model_validate(predicate["spec"])
        results = TestResults.decode(signed_file(manifest, files, RESULTS_FILE))
        ctx.result.spec, ctx.result.test_results = spec, results
        usage = predicate.get("usage") or {}
        model = (predicate.get("generator") or {}).get("model")
        made = MadeWith(
            results=results,
            manifest=manifest,
            keyid=json.loads(manifest)["signatures"][0].get("keyid"),
            model=model,
            tokens=usage.get("tokens") if model else None,
            cost_usd=usage.get("costUsd") if model else None,
        )
        asked = predicate.get("revision") or {}
        view = pull_request_view(
            self.job,
            spec,
            folder,
            made,
            description=spec.description,
            revision=RevisionView(
                str(asked.get("request", self.request)),
                str(asked.get("requester", self.job.requester)),
                asked.get("previousManifestSha256"),
            ),
        )
        body = status.pull_request_body(view)
        found = await inst.create("PATCH", f"{self.repo.path}/pulls/{pull.number}", {"body": body})
        report = report_for(ctx, pull.sha, folder, None)
        notes = await check_run_after_opening(inst, self.repo, report)
        url = str(found["html_url"])
        return Published(folder, url=url, branch=pull.branch, commit=pull.sha, notes=notes)

    def _view(self, ctx: JobContext, revision: Revision) -> PullRequestView:
        spec = ctx.result.spec
        assert spec is not None
        asked = RevisionView(
            revision.request, revision.requester, revision.previous_manifest_sha256
        )
        return pull_request_view(
            self.job,
            spec,
            revision.folder,
            made_by_job(ctx),
            description=spec.description,
            revision=asked,
        )

    async def publish(self, ctx: JobContext) -> Published:
        revision = ctx.result.revision
        if revision is None:
            raise PhaseFailed("no revision: the preflight did not run")
        spec = ctx.result.spec
        assert spec is not None
        message = status.revision_commit_message(
            spec.name, self.job.id, self.job.requester, revision.request
        )
        async with self.app.installation(self.job.installation_id) as inst:
            on_top = OnTop(
                self.repo,
                revision.branch,
                revision.head_sha,
                revision.folder,
                revision.previous_files,
            )
            body = status.pull_request_body(self._view(ctx, revision))
            return await publish_on_top(
                inst,
                ctx,
                on_top,
                signed_files(ctx),
                message,
                revision.pull_number,
                {"body": body},
                "/plugin-revise",
            )

    async def report_failure(self, ctx: JobContext, reason: str) -> None:
        """A failed revision: a failed check on the head it was asked for, with the reason."""
        async with self.app.installation(self.job.installation_id) as inst:
            revision = ctx.result.revision
            if revision is not None:
                head, folder = revision.head_sha, revision.folder
            else:
                pull = await pull_head(inst, self.repo, self.job.issue)
                if pull is None:
                    return
                head, folder = pull.sha, self._folder_of(pull.branch)
            await post_check_run(inst, self.repo, report_for(ctx, head, folder, reason))

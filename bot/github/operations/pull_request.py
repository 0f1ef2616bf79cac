"""The pull request: one commit through the git data API, on the job's own branch.

blobs -> tree (on the recorded base's tree) -> commit (parent: the recorded base) -> ref ->
pull request. Idempotent: a retried or recovered job finds its pull request, or its branch;
a branch that already holds exactly these files is reused, one that holds others is moved
to a new commit, and a second pull request is never opened.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from githubkit.exception import RequestFailed

from bot import status
from bot.github.client import Installation
from bot.github.data.repository import (
    BranchHead,
    RepoRef,
    branch_sha,
    find_pull_request,
    path_exists,
)

FILE_MODE = "100644"


class PublishRefused(Exception):
    """The pull request cannot be made as asked; the message is for the requester."""


@dataclass(frozen=True)
class PullRequestPlan:
    repo: RepoRef
    base: BranchHead
    branch: str
    folder: str  # plugins/<name>: where the files go in the repository
    files: Mapping[str, bytes]  # path inside the folder -> content: the signed set
    title: str
    body: str
    commit_message: str
    draft: bool = True
    labels: Sequence[str] = ()
    reviewers: Sequence[str] = ()


@dataclass(frozen=True)
class PublishedPullRequest:
    number: int
    url: str
    branch: str
    commit_sha: str | None
    reused: bool
    notes: tuple[str, ...] = ()  # what GitHub refused once the pull request was open


def git_blob_sha(content: bytes) -> str:
    """The object id git gives a blob: lets a branch's files be compared without a download."""
    header = f"blob {len(content)}\0".encode()
    return hashlib.sha1(header + content, usedforsecurity=False).hexdigest()


def _repo_paths(plan: PullRequestPlan) -> dict[str, str]:
    return {f"{plan.folder}/{rel}": git_blob_sha(data) for rel, data in plan.files.items()}


async def _branch_holds(inst: Installation, plan: PullRequestPlan, head: str) -> bool:
    """Whether the branch's head is on the base and holds exactly the plan's files."""
    commit = await inst.request("GET", f"{plan.repo.path}/git/commits/{head}")
    parents = [p["sha"] for p in commit.get("parents", [])]
    if parents != [plan.base.sha]:
        return False
    tree = await inst.request(
        "GET", f"{plan.repo.path}/git/trees/{commit['tree']['sha']}", params={"recursive": "1"}
    )
    if tree.get("truncated"):  # not the whole listing: not known to hold them; commit anew
        return False
    prefix = plan.folder + "/"
    present = {
        entry["path"]: entry["sha"]
        for entry in tree.get("tree", [])
        if entry.get("type") == "blob" and str(entry.get("path", "")).startswith(prefix)
    }
    return present == _repo_paths(plan)


async def commit_files(inst: Installation, plan: PullRequestPlan) -> str:
    repo = plan.repo.path
    base_commit = await inst.request("GET", f"{repo}/git/commits/{plan.base.sha}")
    entries = []
    for rel, data in sorted(plan.files.items()):
        blob = await inst.request(
            "POST",
            f"{repo}/git/blobs",
            json={"content": base64.b64encode(data).decode(), "encoding": "base64"},
        )
        entries.append(
            {"path": f"{plan.folder}/{rel}", "mode": FILE_MODE, "type": "blob", "sha": blob["sha"]}
        )
    tree = await inst.request(
        "POST",
        f"{repo}/git/trees",
        json={"base_tree": base_commit["tree"]["sha"], "tree": entries},
    )
    commit = await inst.request(
        "POST",
        f"{repo}/git/commits",
        json={"message": plan.commit_message, "tree": tree["sha"], "parents": [plan.base.sha]},
    )
    return str(commit["sha"])


async def point_branch(inst: Installation, plan: PullRequestPlan, sha: str, exists: bool) -> None:
    repo = plan.repo.path
    if exists:
        # Our own branch (plugin-bot/<name>-<job8>): moving it is how a retry replaces
        # an earlier attempt's files.
        async with inst.creating():
            await inst.request(
                "PATCH", f"{repo}/git/refs/heads/{plan.branch}", json={"sha": sha, "force": True}
            )
        return
    await inst.create("POST", f"{repo}/git/refs", {"ref": f"refs/heads/{plan.branch}", "sha": sha})


async def open_pull(inst: Installation, plan: PullRequestPlan) -> dict[str, Any]:
    payload = {
        "title": plan.title,
        "head": plan.branch,
        "base": plan.base.branch,
        "body": plan.body,
        "draft": plan.draft,
    }
    try:
        return dict(await inst.create("POST", f"{plan.repo.path}/pulls", payload))
    except RequestFailed as exc:
        # A 5xx may have opened it anyway; a 422 says one exists: look before failing.
        found = await find_pull_request(inst, plan.repo, plan.branch)
        if found is not None:
            return found
        raise exc from None


async def _decorate(inst: Installation, plan: PullRequestPlan, number: int) -> tuple[str, ...]:
    """Labels and reviewers on the open pull request. GitHub may refuse either (a reviewer
    who is not a collaborator: 422); the pull request stands all the same, so a refusal is
    a note for the tracking comment, never a failed job (whose retry would open another)."""
    repo = plan.repo.path
    steps: list[tuple[str, str, dict[str, Any]]] = []
    if plan.labels:
        steps.append(("labels", f"{repo}/issues/{number}/labels", {"labels": list(plan.labels)}))
    if plan.reviewers:
        reviewers = {"reviewers": list(plan.reviewers)}
        steps.append(("reviewers", f"{repo}/pulls/{number}/requested_reviewers", reviewers))
    notes = []
    for what, path, payload in steps:
        try:
            await inst.create("POST", path, payload)
        except RequestFailed as exc:
            notes.append(status.pull_request_step_refused(what, exc.response.status_code))
    return tuple(notes)


async def publish_pull_request(inst: Installation, plan: PullRequestPlan) -> PublishedPullRequest:
    existing = await find_pull_request(inst, plan.repo, plan.branch)
    if existing is not None:
        return PublishedPullRequest(
            int(existing["number"]), str(existing["html_url"]), plan.branch, None, reused=True
        )
    head = await branch_sha(inst, plan.repo, plan.branch)
    if head is None and await path_exists(inst, plan.repo, plan.folder, plan.base.sha):
        raise PublishRefused(status.plugin_exists(plan.folder, plan.base.branch))
    if head is not None and await _branch_holds(inst, plan, head):
        sha = head
    else:
        sha = await commit_files(inst, plan)
        await point_branch(inst, plan, sha, exists=head is not None)
    pull = await open_pull(inst, plan)
    notes = await _decorate(inst, plan, int(pull["number"]))
    return PublishedPullRequest(
        int(pull["number"]), str(pull["html_url"]), plan.branch, sha, reused=False, notes=notes
    )


# ------------------------------------------------------------------ onto an existing branch


class BranchMoved(Exception):
    """The branch is no longer at the head a commit was made on: someone pushed meanwhile."""


@dataclass(frozen=True)
class OnTop:
    """A new commit on an existing branch of the bot's, on top of its head (never forced)."""

    repo: RepoRef
    branch: str
    head_sha: str  # the head the commit goes on
    folder: str  # plugins/<name>: its files are replaced by the new set
    previous_files: Sequence[str]  # the folder's files at the head (relative): gone if unsigned


async def commit_on_top(
    inst: Installation, plan: OnTop, files: Mapping[str, bytes], message: str
) -> str:
    """One commit, parent ``plan.head_sha``: the head's tree with the plugin folder holding
    exactly ``files``; blobs the head already has are not sent again."""
    repo = plan.repo.path
    head = await inst.request("GET", f"{repo}/git/commits/{plan.head_sha}")
    before = {
        str(e["path"]): str(e["sha"])
        for e in (
            await inst.request(
                "GET", f"{repo}/git/trees/{head['tree']['sha']}", params={"recursive": "1"}
            )
        ).get("tree", [])
        if e.get("type") == "blob"
    }
    entries: list[dict[str, Any]] = []
    for rel, data in sorted(files.items()):
        path = f"{plan.folder}/{rel}"
        sha = git_blob_sha(data)
        if before.get(path) != sha:
            blob = await inst.request(
                "POST",
                f"{repo}/git/blobs",
                json={"content": base64.b64encode(data).decode(), "encoding": "base64"},
            )
            sha = str(blob["sha"])
        entries.append({"path": path, "mode": FILE_MODE, "type": "blob", "sha": sha})
    for old in plan.previous_files:
        if old not in files:  # not in the new signed set: gone from the branch
            path = f"{plan.folder}/{old}"
            entries.append({"path": path, "mode": FILE_MODE, "type": "blob", "sha": None})
    tree = await inst.request(
        "POST", f"{repo}/git/trees", json={"base_tree": head["tree"]["sha"], "tree": entries}
    )
    commit = await inst.request(
        "POST",
        f"{repo}/git/commits",
        json={"message": message, "tree": tree["sha"], "parents": [plan.head_sha]},
    )
    return str(commit["sha"])


async def fast_forward(inst: Installation, plan: OnTop, sha: str) -> None:
    """Move the branch to ``sha`` with ``force: false``; GitHub's 422 is :class:`BranchMoved`."""
    try:
        async with inst.creating():
            await inst.request(
                "PATCH",
                f"{plan.repo.path}/git/refs/heads/{plan.branch}",
                json={"sha": sha, "force": False},
            )
    except RequestFailed as exc:
        if exc.response.status_code == 422:
            raise BranchMoved(plan.branch) from None
        raise

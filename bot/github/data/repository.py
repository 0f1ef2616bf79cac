"""Reads about a repository: default branch head, files, collaborators, teams."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

from githubkit.exception import RequestFailed

from bot.github.client import Installation


@dataclass(frozen=True)
class RepoRef:
    owner: str
    name: str

    @classmethod
    def parse(cls, full_name: str) -> RepoRef:
        owner, _, name = full_name.partition("/")
        return cls(owner, name)

    @property
    def path(self) -> str:
        return f"/repos/{self.owner}/{self.name}"

    def __str__(self) -> str:
        return f"{self.owner}/{self.name}"


@dataclass(frozen=True)
class BranchHead:
    branch: str
    sha: str


async def default_branch_head(inst: Installation, repo: RepoRef) -> BranchHead:
    info = await inst.request("GET", repo.path)
    branch = str(info["default_branch"])
    ref = await inst.request("GET", f"{repo.path}/git/ref/heads/{branch}")
    return BranchHead(branch, str(ref["object"]["sha"]))


async def branch_sha(inst: Installation, repo: RepoRef, branch: str) -> str | None:
    ref = await inst.get_or_none(f"{repo.path}/git/ref/heads/{branch}")
    return None if ref is None else str(ref["object"]["sha"])


async def read_text(inst: Installation, repo: RepoRef, path: str, ref: str) -> str | None:
    """A file's text at ``ref``, or None when there is no such file."""
    found = await inst.get_or_none(f"{repo.path}/contents/{path}", params={"ref": ref})
    if found is None or not isinstance(found, dict) or found.get("type") != "file":
        return None
    return base64.b64decode(str(found.get("content", ""))).decode("utf-8", errors="replace")


async def path_exists(inst: Installation, repo: RepoRef, path: str, ref: str) -> bool:
    found = await inst.get_or_none(f"{repo.path}/contents/{path}", params={"ref": ref})
    return found is not None


@dataclass(frozen=True)
class CollaboratorRole:
    """A user's role on a repository as GitHub answers it."""

    role_name: str  # a built-in role (admin, maintain, write, triage, read) or a custom one
    permission: str  # the legacy permission behind it: admin, write, read or none


async def collaborator_permission(
    inst: Installation, repo: RepoRef, login: str
) -> CollaboratorRole:
    """The user's role on the repository; ``none`` for someone without access."""
    found = await inst.get_or_none(f"{repo.path}/collaborators/{login}/permission")
    if found is None:
        return CollaboratorRole("none", "none")
    permission = str(found.get("permission") or "none")
    return CollaboratorRole(str(found.get("role_name") or permission), permission)


async def is_collaborator(inst: Installation, repo: RepoRef, login: str) -> bool:
    """Whether the user was given access to the repository (directly, through a team or the
    organisation), as GitHub's collaborator check answers: 204 yes, 404 no."""
    try:
        await inst.request("GET", f"{repo.path}/collaborators/{login}")
    except RequestFailed as exc:
        if exc.response.status_code == 404:
            return False
        raise
    return True


async def is_team_member(inst: Installation, org: str, team: str, login: str) -> bool:
    try:
        found = await inst.get_or_none(f"/orgs/{org}/teams/{team}/memberships/{login}")
    except RequestFailed as exc:
        if exc.response.status_code == 403:  # the app cannot read teams: not a member
            return False
        raise
    return found is not None and found.get("state") == "active"


async def find_comment(
    inst: Installation, repo: RepoRef, issue: int, marker: str
) -> dict[str, Any] | None:
    """The first comment on the issue that this app wrote and that starts with ``marker``
    (a tracking comment's, which names its job). Anyone can paste a marker into a comment
    of their own; adopting it would edit someone else's comment or let them hijack a job's
    status."""
    page = 1
    while True:
        comments = await inst.request(
            "GET", f"{repo.path}/issues/{issue}/comments", params={"per_page": 100, "page": page}
        )
        for comment in comments:
            body = str(comment.get("body") or "")
            if body.startswith(marker) and inst.wrote(comment):
                return dict(comment)
        if len(comments) < 100:
            return None
        page += 1


async def find_pull_request(
    inst: Installation, repo: RepoRef, branch: str
) -> dict[str, Any] | None:
    """An open or closed pull request from ``branch`` of this repository."""
    pulls = await inst.request(
        "GET", f"{repo.path}/pulls", params={"head": f"{repo.owner}:{branch}", "state": "all"}
    )
    return dict(pulls[0]) if pulls else None

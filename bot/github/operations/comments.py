"""Comments: replies, and the one tracking comment per job found again by its marker."""

from __future__ import annotations

from githubkit.exception import RequestFailed

from bot.github.client import Installation
from bot.github.data.repository import RepoRef, find_comment


async def reply(inst: Installation, repo: RepoRef, issue: int, body: str) -> int:
    created = await inst.create("POST", f"{repo.path}/issues/{issue}/comments", {"body": body})
    return int(created["id"])


async def edit(inst: Installation, repo: RepoRef, comment_id: int, body: str) -> None:
    await inst.request("PATCH", f"{repo.path}/issues/comments/{comment_id}", json={"body": body})


async def ensure_comment(
    inst: Installation, repo: RepoRef, issue: int, marker: str, body: str
) -> int:
    """The comment holding ``marker``: found (a restarted process) or created once.

    A create that failed with a 5xx may still have landed, so it is looked for again
    before anything is re-sent.
    """
    found = await find_comment(inst, repo, issue, marker)
    if found is not None:
        return int(found["id"])
    try:
        return await reply(inst, repo, issue, body)
    except RequestFailed as exc:
        if exc.response.status_code < 500:
            raise
        found = await find_comment(inst, repo, issue, marker)
        if found is not None:
            return int(found["id"])
        return await reply(inst, repo, issue, body)

"""Reactions: 👀 on a command as soon as the dispatcher takes it."""

from __future__ import annotations

from bot.github.client import Installation
from bot.github.data.repository import RepoRef

SEEN = "eyes"


async def react(
    inst: Installation, repo: RepoRef, issue: int, comment_id: int | None, content: str = SEEN
) -> None:
    """On the comment, or on the issue itself for a command in an issue's body.
    GitHub answers an existing reaction with 200, so a repeat changes nothing."""
    path = (
        f"{repo.path}/issues/comments/{comment_id}/reactions"
        if comment_id is not None
        else f"{repo.path}/issues/{issue}/reactions"
    )
    await inst.create("POST", path, {"content": content})

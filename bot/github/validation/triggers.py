"""Which deliveries may start something: the events handled, and the senders ignored.

The bot's own comments (the tracking comment above all) must never trigger anything, and
neither may any other bot: two bots answering each other would never stop.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import Any

from bot.status import TRACKING_MARKER_PREFIX


class TriggerSource(enum.Enum):
    COMMENT = "issue_comment.created"
    ISSUE = "issues.opened"
    REVIEW = "pull_request_review.submitted"

    @classmethod
    def of(cls, event: str, action: object) -> TriggerSource | None:
        """Only new comments and new issues: an edited comment never re-triggers."""
        for source in cls:
            if source.value == f"{event}.{action}":
                return source
        return None


def is_bot(user: Mapping[str, Any]) -> bool:
    return user.get("type") == "Bot" or str(user.get("login", "")).endswith("[bot]")


def ignore_reason(
    payload: Mapping[str, Any],
    source: TriggerSource,
    *,
    app_id: str | None,
    app_slug: str | None,
) -> str | None:
    """Why a relevant event is still ignored, or None when it may carry a command."""
    if source is TriggerSource.REVIEW:
        return _review_ignore_reason(payload, app_slug=app_slug)
    for key in ("issue", "sender", "repository"):
        if not isinstance(payload.get(key), Mapping):
            return f"the payload has no {key}"
    holder = payload["issue"]
    if source is TriggerSource.COMMENT:
        if not isinstance(payload.get("comment"), Mapping):
            return "the payload has no comment"
        holder = payload["comment"]
    sender = payload["sender"]
    author = holder.get("user") if isinstance(holder.get("user"), Mapping) else {}
    via_app = holder.get("performed_via_github_app")
    if app_id is not None and isinstance(via_app, Mapping) and str(via_app.get("id")) == app_id:
        return "written by this app"
    if app_slug is not None and f"{app_slug}[bot]" in {sender.get("login"), author.get("login")}:
        return "written by this app"
    if is_bot(sender) or is_bot(author):
        return "written by a bot"
    if TRACKING_MARKER_PREFIX in str(holder.get("body") or ""):
        return "a plugin-bot tracking comment"
    return None


def _review_ignore_reason(payload: Mapping[str, Any], *, app_slug: str | None) -> str | None:
    """A review starts a revision only when it requests changes, from a person."""
    for key in ("pull_request", "review", "sender", "repository"):
        if not isinstance(payload.get(key), Mapping):
            return f"the payload has no {key}"
    review, sender = payload["review"], payload["sender"]
    if str(review.get("state", "")).lower() != "changes_requested":
        return "a review that does not request changes"
    author = review.get("user") if isinstance(review.get("user"), Mapping) else {}
    if app_slug is not None and f"{app_slug}[bot]" in {sender.get("login"), author.get("login")}:
        return "written by this app"
    if is_bot(sender) or is_bot(author):
        return "written by a bot"
    return None

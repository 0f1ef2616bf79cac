"""A pull request's review threads, with their resolution state, from GitHub's GraphQL API.

REST review comments carry no resolution state: only GraphQL's
``PullRequestReviewThread.isResolved`` says whether a reviewer still waits for an answer.
Threads come 50 a page, each with its first comments; a thread with more comments is read
on through ``node(id:)``. Every query here is validated against GitHub's published schema
in the tests (tests/github/test_review_threads.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from githubkit.exception import GraphQLFailed

from bot.github.client import Installation
from bot.github.data.repository import RepoRef
from bot.settings import (
    REVIEW_COMMENTS_PAGE_SIZE,
    REVIEW_MAX_COMMENTS_PER_THREAD,
    REVIEW_MAX_THREADS,
    REVIEW_THREADS_PAGE_SIZE,
)

_COMMENT_FIELDS = """
      nodes {
        databaseId
        body
        author { login }
        path
        line
        originalLine
        isMinimized
      }
      pageInfo { hasNextPage endCursor }
"""

THREADS_QUERY = (
    """
query PluginBotReviewThreads(
  $owner: String!, $name: String!, $number: Int!, $cursor: String, $threads: Int!, $comments: Int!
) {
  repository(owner: $owner, name: $name) {
    pullRequest(number: $number) {
      reviewThreads(first: $threads, after: $cursor) {
        nodes {
          id
          isResolved
          isOutdated
          path
          line
          originalLine
          diffSide
          subjectType
          comments(first: $comments) {"""
    + _COMMENT_FIELDS
    + """          }
        }
        pageInfo { hasNextPage endCursor }
      }
    }
  }
}
"""
)

THREAD_COMMENTS_QUERY = (
    """
query PluginBotReviewThreadComments($id: ID!, $cursor: String, $comments: Int!) {
  node(id: $id) {
    ... on PullRequestReviewThread {
      comments(first: $comments, after: $cursor) {"""
    + _COMMENT_FIELDS
    + """      }
    }
  }
}
"""
)

# Every query the bot sends (the tests validate each against GitHub's schema).
QUERIES = (THREADS_QUERY, THREAD_COMMENTS_QUERY)


class ReviewThreadsUnreadable(Exception):
    """GitHub did not answer with the threads (GraphQL errors, or no such pull request)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class TooManyReviewComments(Exception):
    """More threads (``path`` None), or more comments in the thread on ``path``, than a
    revision reads: every open one reaches the model, or the revision does not start."""

    def __init__(self, limit: int, path: str | None) -> None:
        super().__init__(f"more than {limit} review {'comments' if path else 'threads'}")
        self.limit = limit
        self.path = path


@dataclass(frozen=True)
class ThreadComment:
    database_id: int | None
    author: str  # "ghost" for a deleted account, as GitHub shows it
    body: str
    hidden: bool = False  # minimized on GitHub (spam, off-topic, outdated…)


@dataclass(frozen=True)
class ReviewThread:
    path: str
    line: int | None  # None when outdated (the line is gone from the diff) or on the file
    original_line: int | None  # the line on the commit the thread was started on
    side: Literal["LEFT", "RIGHT"]  # LEFT: on the removed lines of the diff
    resolved: bool
    outdated: bool
    on_file: bool  # about the whole file, not a line
    comments: tuple[ThreadComment, ...]


async def review_threads(inst: Installation, repo: RepoRef, number: int) -> list[ReviewThread]:
    """Every review thread of pull request ``number``, each with all of its comments."""
    threads: list[ReviewThread] = []
    cursor: str | None = None
    while True:
        data = await _query(
            inst,
            THREADS_QUERY,
            {
                "owner": repo.owner,
                "name": repo.name,
                "number": number,
                "cursor": cursor,
                "threads": REVIEW_THREADS_PAGE_SIZE,
                "comments": REVIEW_COMMENTS_PAGE_SIZE,
            },
        )
        pull = (data.get("repository") or {}).get("pullRequest")
        if pull is None:
            raise ReviewThreadsUnreadable(f"no pull request #{number} in {repo}")
        page = pull["reviewThreads"]
        for node in page["nodes"] or []:
            if node is not None:
                threads.append(await _thread(inst, node))
        if len(threads) > REVIEW_MAX_THREADS:
            raise TooManyReviewComments(REVIEW_MAX_THREADS, None)
        if not page["pageInfo"]["hasNextPage"]:
            return threads
        cursor = page["pageInfo"]["endCursor"]


async def _thread(inst: Installation, node: dict[str, Any]) -> ReviewThread:
    """One thread from its node; its comments past the first page read on."""
    comments = node["comments"]
    nodes: list[dict[str, Any] | None] = list(comments["nodes"] or [])
    info = comments["pageInfo"]
    while info["hasNextPage"]:
        if len(nodes) >= REVIEW_MAX_COMMENTS_PER_THREAD:
            raise TooManyReviewComments(REVIEW_MAX_COMMENTS_PER_THREAD, str(node["path"]))
        data = await _query(
            inst,
            THREAD_COMMENTS_QUERY,
            {"id": node["id"], "cursor": info["endCursor"], "comments": REVIEW_COMMENTS_PAGE_SIZE},
        )
        more = (data.get("node") or {}).get("comments")
        if more is None:
            raise ReviewThreadsUnreadable(f"the thread on {node['path']} is gone")
        nodes += more["nodes"] or []
        info = more["pageInfo"]
    return ReviewThread(
        path=str(node["path"]),
        line=node["line"],
        original_line=node["originalLine"],
        side="LEFT" if node["diffSide"] == "LEFT" else "RIGHT",
        resolved=bool(node["isResolved"]),
        outdated=bool(node["isOutdated"]),
        on_file=node["subjectType"] == "FILE",
        comments=tuple(_comment(c) for c in nodes if c is not None),
    )


def _comment(node: dict[str, Any]) -> ThreadComment:
    author = node["author"] or {}  # null for a deleted account
    return ThreadComment(
        node["databaseId"],
        str(author.get("login", "ghost")),
        node["body"],
        hidden=bool(node["isMinimized"]),
    )


async def _query(inst: Installation, query: str, variables: dict[str, Any]) -> dict[str, Any]:
    try:
        return await inst.graphql(query, variables)
    except GraphQLFailed as exc:
        errors = exc.response.errors or []
        reason = "; ".join(f"{e.type or 'ERROR'}: {e.message}" for e in errors[:3])
        raise ReviewThreadsUnreadable(reason or "an error without a message") from None

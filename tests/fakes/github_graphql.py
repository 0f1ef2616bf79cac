"""GitHub's GraphQL API for the stand-in: the published schema (``@octokit/graphql-schema``),
every query validated against it, and answers made by executing the query on that schema
over the stand-in's state, so their shapes are the schema's by construction.

GitHub's own rules on top of the schema: every connection needs ``first`` or ``last``,
at most 100; cursors are opaque.
"""

from __future__ import annotations

import base64
import functools
import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from graphql import (
    GraphQLError,
    GraphQLSchema,
    build_schema,
    execute_sync,
    parse,
    validate,
)

NPM_FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "npm" / "node_modules"
SCHEMA_FILE = NPM_FIXTURES / "@octokit" / "graphql-schema" / "schema.graphql"


@functools.cache
def load_schema() -> GraphQLSchema:
    """The schema, built once. GitHub's published SDL repeats a few fields and deprecates
    ``id`` on some Node types, which graphql-core's SDL rules refuse; queries are still
    validated in full against it."""
    return build_schema(SCHEMA_FILE.read_text(), assume_valid_sdl=True, assume_valid=True)


def query_errors(query: str) -> list[str]:
    """What is wrong with ``query`` against GitHub's schema (empty: it is valid)."""
    try:
        document = parse(query)
    except GraphQLError as exc:
        return [exc.message]
    return [e.message for e in validate(load_schema(), document)]


@dataclass
class ThreadComment:
    database_id: int
    node_id: str
    body: str
    login: str
    bot: bool
    minimized: bool = False  # hidden by a maintainer (spam, off-topic, outdated…)


@dataclass
class ReviewThread:
    node_id: str
    path: str
    line: int | None  # None: outdated, or about the whole file
    original_line: int | None
    side: str = "RIGHT"
    resolved: bool = False
    on_file: bool = False
    comments: list[ThreadComment] = field(default_factory=list)


class PaginationRefused(Exception):
    """A connection asked for without first/last, or for more than 100 nodes."""


def _cursor(index: int) -> str:
    return base64.b64encode(f"cursor:v2:{index}".encode()).decode()


def _index(cursor: str | None) -> int:
    if cursor is None:
        return 0
    return int(base64.b64decode(cursor).decode().rsplit(":", 1)[1]) + 1


def connection(
    items: Sequence[Any], node: Callable[[Any], dict[str, Any]], args: dict[str, Any]
) -> dict[str, Any]:
    """A forward page of a connection as GitHub gives it (``first``/``after``)."""
    first = args.get("first")
    if first is None or not 1 <= first <= 100:
        raise PaginationRefused(
            f"You must provide a `first` or `last` value (1..100) to properly paginate; got {first}"
        )
    start = _index(args.get("after"))
    page = list(items[start : start + first])
    end = start + len(page) - 1
    return {
        "nodes": [node(item) for item in page],
        "totalCount": len(items),
        "pageInfo": {
            "hasNextPage": start + len(page) < len(items),
            "hasPreviousPage": start > 0,
            "startCursor": _cursor(start) if page else None,
            "endCursor": _cursor(end) if page else None,
        },
    }


class GraphQLState:
    """Review threads per pull request, and the root object the queries run on."""

    def __init__(self, owner: str, repo: str, pulls: Callable[[], Sequence[int]]) -> None:
        self.owner, self.repo = owner, repo
        self._pulls = pulls
        self.threads: dict[int, list[ReviewThread]] = {}
        self._ids = itertools.count(5_000_000)

    def thread(
        self,
        pull: int,
        path: str,
        line: int | None,
        body: str,
        *,
        author: str,
        resolved: bool,
        side: str,
        on_file: bool,
    ) -> ReviewThread:
        number = next(self._ids)
        original = None if on_file else line or 1
        thread = ReviewThread(
            f"PRRT_kwDOfake{number}", path, line, original, side, resolved, on_file
        )
        self.threads.setdefault(pull, []).append(thread)
        self.reply(thread, body, author)
        return thread

    def reply(self, thread: ReviewThread, body: str, author: str) -> ThreadComment:
        number = next(self._ids)
        comment = ThreadComment(
            number, f"PRRC_kwDOfake{number}", body, author, author.endswith("[bot]")
        )
        thread.comments.append(comment)
        return comment

    # -------------------------------------------------------------- the graph

    def root(self) -> dict[str, Any]:
        return {"repository": self._repository, "node": self._node}

    def _repository(self, info: Any, owner: str, name: str, **_: Any) -> Any:
        if (owner.lower(), name.lower()) != (self.owner.lower(), self.repo.lower()):
            return None
        return {"__typename": "Repository", "pullRequest": self._pull_request}

    def _pull_request(self, info: Any, number: int) -> Any:
        if number not in self._pulls():
            return None
        threads = self.threads.get(number, [])
        return {
            "__typename": "PullRequest",
            "number": number,
            "reviewThreads": lambda info, **args: connection(threads, self._thread_node, args),
        }

    def _node(self, info: Any, id: str) -> Any:  # ``id``: the schema's argument name
        for thread in itertools.chain.from_iterable(self.threads.values()):
            if thread.node_id == id:
                return self._thread_node(thread)
        return None

    def _thread_node(self, thread: ReviewThread) -> dict[str, Any]:
        outdated = thread.line is None and not thread.on_file
        return {
            "__typename": "PullRequestReviewThread",
            "id": thread.node_id,
            "isResolved": thread.resolved,
            "isOutdated": outdated,
            "path": thread.path,
            "line": thread.line,
            "originalLine": thread.original_line,
            "diffSide": thread.side,
            "subjectType": "FILE" if thread.on_file else "LINE",
            "comments": lambda info, **args: connection(
                thread.comments, lambda c: self._comment_node(thread, c), args
            ),
        }

    def _comment_node(self, thread: ReviewThread, comment: ThreadComment) -> dict[str, Any]:
        return {
            "__typename": "PullRequestReviewComment",
            "id": comment.node_id,
            "databaseId": comment.database_id,
            "body": comment.body,
            "author": {"__typename": "Bot" if comment.bot else "User", "login": comment.login},
            "path": thread.path,
            "line": thread.line,
            "originalLine": thread.original_line,
            "outdated": thread.line is None and not thread.on_file,
            "isMinimized": comment.minimized,
            "minimizedReason": "spam" if comment.minimized else None,
        }


def execute(state: GraphQLState, body: Any) -> tuple[dict[str, Any], list[str]]:
    """The answer GitHub would give to ``body`` (a GraphQL POST), and what was wrong with
    the request (empty when it was valid)."""
    if not isinstance(body, dict) or not isinstance(body.get("query"), str):
        return {"errors": [{"message": "A query attribute must be specified"}]}, ["no query"]
    problems = query_errors(body["query"])
    if problems:
        return {"errors": [{"message": m} for m in problems]}, problems
    result = execute_sync(
        load_schema(),
        parse(body["query"]),
        root_value=state.root(),
        variable_values=body.get("variables") or {},
    )
    if result.errors:
        errors = [{"message": e.message, "path": e.path} for e in result.errors]
        return {"data": result.data, "errors": errors}, [e["message"] for e in errors]
    return {"data": result.data}, []

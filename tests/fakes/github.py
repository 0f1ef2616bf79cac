"""A GitHub stand-in for tests: a stateful httpx handler that answers with the response
examples of GitHub's own OpenAPI description (``@octokit/openapi``), adjusted with the ids
of the flow, and validates EVERY request against that description with openapi-core.

A request that does not validate, or that matches no documented route, or a route this
stand-in does not implement, is recorded in ``violations`` (and answered 400/404); the
``github`` fixture fails the test when any were recorded. GraphQL (``/graphql``, or
``/api/graphql`` beside GHES's ``/api/v3``) is validated against GitHub's published schema
and answered by executing the query on it (``tests/fakes/github_graphql.py``). Nothing
leaves the process: the fixture routes every request through respx with
``assert_all_mocked``.
"""

from __future__ import annotations

import base64
import copy
import datetime as dt
import functools
import hashlib
import itertools
import json
import re
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import jwt
from openapi_core import Config, OpenAPI
from openapi_core.datatypes import RequestParameters
from werkzeug.datastructures import Headers, ImmutableMultiDict

from tests.fakes import github_graphql
from tests.fakes.github_graphql import GraphQLState, ReviewThread, ThreadComment

NPM_FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "npm" / "node_modules"
SPEC_FILE = NPM_FIXTURES / "@octokit" / "openapi" / "generated" / "api.github.com.json"
WEBHOOK_EXAMPLES = NPM_FIXTURES / "@octokit" / "webhooks-examples" / "api.github.com"
SPEC_SERVER = "https://api.github.com"
# The name faults and calls use for the GraphQL endpoint.
GRAPHQL = "graphql"


# ---------------------------------------------------------------------- the description


# Parameters that span slashes: a file path, a ref such as heads/main.
_SLASHED = frozenset({"path", "ref"})


def _template_regex(template: str, *, capture: bool) -> str:
    def part(match: re.Match[str]) -> str:
        inner = ".+" if match.group(1) in _SLASHED else "[^/]+"
        return f"({inner})" if capture else inner

    return re.sub(r"\\\{([^}]+)\\\}", part, re.escape(template))


class GitHubSpec:
    """The REST description, its routes as regexes, and its response examples."""

    def __init__(self, path: Path) -> None:
        self.raw: dict[str, Any] = json.loads(path.read_text())
        self.api = OpenAPI.from_dict(
            self.raw, config=Config(spec_validator_cls=None, server_base_url=SPEC_SERVER)
        )
        self.routes: list[tuple[str, re.Pattern[str], str]] = []
        for template, item in self.raw["paths"].items():
            pattern = _template_regex(template, capture=False)
            for method in item:
                if method in {"get", "post", "put", "patch", "delete"}:
                    self.routes.append((method.upper(), re.compile(f"^{pattern}$"), template))
        # Literal segments first: /git/ref/heads/x is not /git/refs/{ref}.
        self.routes.sort(key=lambda r: (-r[2].count("/"), r[2].count("{")))

    def route(self, method: str, path: str) -> str | None:
        for route_method, pattern, template in self.routes:
            if route_method == method and pattern.match(path):
                return template
        return None

    def _resolve(self, node: Any) -> Any:
        while isinstance(node, dict) and "$ref" in node:
            parts = node["$ref"].removeprefix("#/").split("/")
            node = functools.reduce(lambda acc, key: acc[key], parts, self.raw)
        return node

    def example(self, method: str, template: str, status: int, name: str | None = None) -> Any:
        """A deep copy of a documented example answer (the named one, else the first)."""
        op = self.raw["paths"][template][method.lower()]
        response = self._resolve(op["responses"][str(status)])
        examples = response["content"]["application/json"]["examples"]
        chosen = examples[name] if name else next(iter(examples.values()))
        return copy.deepcopy(self._resolve(chosen)["value"])


@functools.cache
def load_spec() -> GitHubSpec:
    return GitHubSpec(SPEC_FILE)


@dataclass
class _OpenAPIRequest:
    """An httpx request in the shape openapi-core reads."""

    host_url: str
    path: str
    method: str
    parameters: RequestParameters
    content: bytes
    content_type: str

    @property
    def body(self) -> bytes:
        return self.content


def _openapi_request(request: httpx.Request, path: str) -> _OpenAPIRequest:
    return _OpenAPIRequest(
        host_url=SPEC_SERVER,
        path=path,
        method=request.method.lower(),
        parameters=RequestParameters(
            query=ImmutableMultiDict(list(request.url.params.multi_items())),
            header=Headers(list(request.headers.items())),
            cookie=ImmutableMultiDict(),
            path={},
        ),
        content=request.content,
        content_type=request.headers.get("content-type", "application/json"),
    )


# ---------------------------------------------------------------------- the stand-in


def _sha(*parts: object) -> str:
    return hashlib.sha1(repr(parts).encode(), usedforsecurity=False).hexdigest()


def git_blob_sha(content: bytes) -> str:
    return hashlib.sha1(f"blob {len(content)}\0".encode() + content).hexdigest()


@dataclass
class Comment:
    id: int
    issue: int
    body: str
    login: str
    bot: bool
    history: list[str] = field(default_factory=list)
    app_id: int | None = None  # performed_via_github_app: the App that made it, if any


@dataclass
class PullRequest:
    number: int
    head: str
    base: str
    title: str
    body: str
    draft: bool
    labels: list[str] = field(default_factory=list)
    reviewers: list[str] = field(default_factory=list)
    head_repository: str | None = None  # a fork's owner/name; None: this repository
    state: str = "open"  # "closed" (a merged one too: see ``merged``)
    merged: bool = False


@dataclass
class Fault:
    method: str
    template: str
    status: int
    times: int = 1
    headers: dict[str, str] = field(default_factory=dict)
    after: bool = False  # answer with the fault only after doing the work


Handler = Callable[[httpx.Request, dict[str, str], Any], tuple[int, Any]]


class FakeGitHub:
    def __init__(
        self,
        *,
        api_url: str,
        app_id: str,
        app_public_key: bytes,
        app_slug: str = "plugin-bot",
        owner: str = "Codertocat",
        repo: str = "Hello-World",
        default_branch: str = "master",
        installation_id: int = 1,
    ) -> None:
        self.spec = load_spec()
        self.prefix = httpx.URL(api_url).path.rstrip("/")
        self.host = httpx.URL(api_url).host
        self.app_id, self.app_public_key, self.app_slug = app_id, app_public_key, app_slug
        self.owner, self.repo, self.default_branch = owner, repo, default_branch
        self.installation_id = installation_id
        self.violations: list[str] = []
        self.requests: list[tuple[str, str, Any]] = []
        self.faults: list[Fault] = []
        self.on_request: Callable[[str, str], None] | None = None
        self.tokens_issued = 0
        self.collaborators: dict[str, str] = {}
        # Custom repository roles: name -> the legacy permission GitHub reports for it.
        self.custom_roles: dict[str, str] = {}
        self.teams: dict[str, set[str]] = {}
        self.comments: dict[int, Comment] = {}
        self.reactions: list[tuple[str, int, str]] = []
        self.pulls: list[PullRequest] = []
        self._ids = itertools.count(9000)
        # Git objects: blob sha -> bytes, tree sha -> {path: blob sha}, commit sha -> dict.
        self.blobs: dict[str, bytes] = {}
        self.trees: dict[str, dict[str, str]] = {}
        self.commits: dict[str, dict[str, Any]] = {}
        self.refs: dict[str, str] = {}
        # Review threads (GraphQL), and the check runs created.
        self.graphql = GraphQLState(owner, repo, lambda: [p.number for p in self.pulls])
        # GitHub.com: /graphql; GHES: /api/graphql beside /api/v3.
        ghes = self.prefix.endswith("/api/v3")
        self.graphql_path = self.prefix.removesuffix("/v3") + "/graphql" if ghes else "/graphql"
        self.graphql_urls: list[str] = []
        # Answers given instead of executing the next GraphQL queries: (body, headers).
        self.graphql_replies: list[tuple[dict[str, Any], dict[str, str]]] = []
        self.check_runs: list[dict[str, Any]] = []
        self.set_base_files({"README.md": b"# Hello World\n"})
        self.private = False
        # The App's webhook deliveries, newest first, as GET /app/hook/deliveries lists them.
        self.deliveries: list[dict[str, Any]] = []
        self.redelivered: list[int] = []

    def add_delivery(
        self, guid: str, status_code: int, delivered_at: dt.datetime, *, event: str = "issues"
    ) -> int:
        """One attempt of delivery ``guid`` (the example's shape, with these values)."""
        example = self.spec.example("GET", "/app/hook/deliveries", 200)[0]
        delivery_id = next(self._ids)
        attempt = {
            **example,
            "id": delivery_id,
            "guid": guid,
            "status_code": status_code,
            "status": "OK" if status_code < 300 else "Internal Server Error",
            "delivered_at": delivered_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "redelivery": any(d["guid"] == guid for d in self.deliveries),
            "event": event,
        }
        self.deliveries.append(attempt)
        self.deliveries.sort(key=lambda d: (d["delivered_at"], d["id"]), reverse=True)
        return delivery_id

    # -------------------------------------------------------------- arranging

    def set_base_files(self, files: dict[str, bytes]) -> str:
        """A new commit on the default branch holding exactly ``files``."""
        tree = {path: self._put_blob(data) for path, data in files.items()}
        tree_sha = _sha("tree", sorted(tree.items()))
        self.trees[tree_sha] = tree
        parent = self.refs.get(self.default_branch)
        sha = _sha("commit", tree_sha, parent)
        self.commits[sha] = {
            "tree": tree_sha,
            "parents": [parent] if parent else [],
            "message": "base",
        }
        self.refs[self.default_branch] = sha
        return sha

    def push(self, branch: str, changes: dict[str, bytes | None], message: str) -> str:
        """Someone else's commit on ``branch``: files changed (None deletes one)."""
        parent = self.refs[branch]
        tree = dict(self.trees[self.commits[parent]["tree"]])
        for path, data in changes.items():
            if data is None:
                tree.pop(path, None)
            else:
                tree[path] = self._put_blob(data)
        tree_sha = _sha("tree", sorted(tree.items()))
        self.trees[tree_sha] = tree
        sha = _sha("commit", tree_sha, parent, message)
        self.commits[sha] = {"tree": tree_sha, "parents": [parent], "message": message}
        self.refs[branch] = sha
        return sha

    def review_thread(
        self,
        pull: int,
        path: str,
        line: int | None,
        body: str,
        *,
        author: str = "octocat",
        resolved: bool = False,
        side: str = "RIGHT",
        on_file: bool = False,
    ) -> ReviewThread:
        """A review thread started with one comment; ``line`` None: outdated (its line is
        gone from the diff), or about the whole file with ``on_file``."""
        return self.graphql.thread(
            pull, path, line, body, author=author, resolved=resolved, side=side, on_file=on_file
        )

    def reply(self, thread: ReviewThread, body: str, author: str = "octocat") -> ThreadComment:
        return self.graphql.reply(thread, body, author)

    def ancestors(self, sha: str) -> set[str]:
        seen: set[str] = set()
        todo = [sha]
        while todo:
            current = todo.pop()
            if current in seen or current not in self.commits:
                continue
            seen.add(current)
            todo.extend(self.commits[current]["parents"])
        return seen

    def fail(self, method: str, template: str, status: int, **kw: Any) -> Fault:
        fault = Fault(method, template, status, **kw)
        self.faults.append(fault)
        return fault

    # -------------------------------------------------------------- reading state

    def files_at(self, branch: str) -> dict[str, bytes]:
        tree = self.trees[self.commits[self.refs[branch]]["tree"]]
        return {path: self.blobs[sha] for path, sha in tree.items()}

    def add_comment(
        self, issue: int, body: str, login: str, *, bot: bool = False, app_id: int | None = None
    ) -> Comment:
        """A comment someone else wrote (a person, or another App's bot)."""
        comment = Comment(next(self._ids), issue, body, login, bot, [body], app_id)
        self.comments[comment.id] = comment
        return comment

    def bot_comments(self, issue: int | None = None) -> list[Comment]:
        ours = f"{self.app_slug}[bot]"
        return [c for c in self.comments.values() if c.login == ours and issue in (None, c.issue)]

    def calls(self, method: str, fragment: str = "") -> list[tuple[str, str, Any]]:
        return [r for r in self.requests if r[0] == method and fragment in r[1]]

    # -------------------------------------------------------------- the handler

    def __call__(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if request.url.host == self.host and path == self.graphql_path:
            return self._graphql(request)
        if request.url.host != self.host or not path.startswith(self.prefix + "/"):
            return self._violation(404, f"{request.method} {request.url}: not the API base URL")
        path = path[len(self.prefix) :]
        body = json.loads(request.content) if request.content else None
        self.requests.append((request.method, path, body))
        template = self.spec.route(request.method, path)
        if template is None:
            return self._violation(404, f"{request.method} {path}: no such route in the spec")
        # openapi-core matches a parameter within one segment: a ref (heads/main) or a
        # file path is sent with its slashes escaped, as one value.
        params = self._params(template, path)
        checked = template
        for name, value in params.items():
            checked = checked.replace("{" + name + "}", urllib.parse.quote(value, safe=""))
        try:
            self.spec.api.validate_request(_openapi_request(request, checked))
        except Exception as exc:
            return self._violation(400, f"{request.method} {path}: {exc}")
        if self.on_request is not None:
            self.on_request(request.method, template)
        fault = self._fault(request.method, template, after=False)
        if fault is not None:
            return self._answer(fault.status, {"message": "injected"}, fault.headers)
        handler = self._handlers().get((request.method, template))
        if handler is None:
            return self._violation(404, f"{request.method} {template}: not in the stand-in")
        auth = self._check_auth(request, template)
        if auth is not None:
            return auth
        status, answer, *headers = handler(request, params, body)
        fault = self._fault(request.method, template, after=True)
        if fault is not None:
            return self._answer(fault.status, {"message": "injected"}, fault.headers)
        return self._answer(status, answer, headers[0] if headers else None)

    def _graphql(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content) if request.content else None
        self.requests.append((request.method, request.url.path, body))
        self.graphql_urls.append(str(request.url))
        if request.method != "POST":
            return self._violation(404, f"{request.method} {request.url.path}: GraphQL is POST")
        if self.on_request is not None:
            self.on_request("POST", GRAPHQL)
        fault = self._fault("POST", GRAPHQL, after=False)
        if fault is not None:
            return self._answer(fault.status, {"message": "injected"}, fault.headers)
        if not request.headers.get("authorization", "").startswith("token ghs_fake"):
            return self._violation(401, "POST graphql: no installation token")
        answer, problems = github_graphql.execute(self.graphql, body)
        self.violations += [f"POST graphql: {problem}" for problem in problems]
        headers = {"x-ratelimit-resource": "graphql"}
        if self.graphql_replies:
            answer, extra = self.graphql_replies.pop(0)
            headers.update(extra)
        return self._answer(200, answer, headers)

    def _fault(self, method: str, template: str, *, after: bool) -> Fault | None:
        for fault in self.faults:
            key = (fault.method, fault.template, fault.after)
            if key == (method, template, after) and fault.times > 0:
                fault.times -= 1
                return fault
        return None

    def _violation(self, status: int, message: str) -> httpx.Response:
        self.violations.append(message)
        return self._answer(status, {"message": message})

    def _answer(
        self, status: int, body: Any, headers: dict[str, str] | None = None
    ) -> httpx.Response:
        content = b"" if body is None else json.dumps(body).encode()
        # GitHub's rate-limit headers: a budget of 5000, one less for every answer.
        self.rate_remaining = max(0, getattr(self, "rate_remaining", 5000) - 1)
        all_headers = {
            "content-type": "application/json; charset=utf-8",
            "x-ratelimit-limit": "5000",
            "x-ratelimit-remaining": str(self.rate_remaining),
            "x-ratelimit-resource": "core",
            **(headers or {}),
        }
        return httpx.Response(status, content=content, headers=all_headers)

    def _params(self, template: str, path: str) -> dict[str, str]:
        names = re.findall(r"\{([^}]+)\}", template)
        match = re.match(f"^{_template_regex(template, capture=True)}$", path)
        assert match is not None
        return dict(zip(names, match.groups(), strict=True))

    def _check_auth(self, request: httpx.Request, template: str) -> httpx.Response | None:
        header = request.headers.get("authorization", "")
        if template.startswith("/app/") or template == "/repos/{owner}/{repo}/installation":
            token = header.removeprefix("Bearer ")
            try:
                claims = jwt.decode(token, self.app_public_key, algorithms=["RS256"])
            except jwt.PyJWTError as exc:
                return self._violation(401, f"{template}: bad app JWT: {exc}")
            if str(claims.get("iss")) != self.app_id:
                return self._violation(401, f"{template}: JWT for app {claims.get('iss')}")
            return None
        if not header.startswith("token ghs_fake"):
            return self._violation(401, f"{request.method} {template}: no installation token")
        return None

    # -------------------------------------------------------------- routes

    def _handlers(self) -> dict[tuple[str, str], Handler]:
        r = "/repos/{owner}/{repo}"
        return {
            ("POST", "/app/installations/{installation_id}/access_tokens"): self._token,
            ("GET", "/app/hook/deliveries"): self._list_deliveries,
            ("POST", "/app/hook/deliveries/{delivery_id}/attempts"): self._redeliver,
            ("GET", r + "/installation"): self._installation,
            ("GET", r): self._repository,
            ("GET", r + "/git/ref/{ref}"): self._get_ref,
            ("GET", r + "/contents/{path}"): self._contents,
            ("GET", r + "/collaborators/{username}/permission"): self._permission,
            ("GET", r + "/collaborators/{username}"): self._is_collaborator,
            ("GET", "/orgs/{org}/teams/{team_slug}/memberships/{username}"): self._membership,
            ("GET", r + "/issues/{issue_number}/comments"): self._list_comments,
            ("POST", r + "/issues/{issue_number}/comments"): self._create_comment,
            ("PATCH", r + "/issues/comments/{comment_id}"): self._edit_comment,
            ("POST", r + "/issues/comments/{comment_id}/reactions"): self._react_comment,
            ("POST", r + "/issues/{issue_number}/reactions"): self._react_issue,
            ("GET", r + "/pulls"): self._list_pulls,
            ("POST", r + "/pulls"): self._create_pull,
            ("POST", r + "/issues/{issue_number}/labels"): self._labels,
            ("POST", r + "/pulls/{pull_number}/requested_reviewers"): self._reviewers,
            ("POST", r + "/git/blobs"): self._create_blob,
            ("POST", r + "/git/trees"): self._create_tree,
            ("GET", r + "/git/trees/{tree_sha}"): self._get_tree,
            ("POST", r + "/git/commits"): self._create_commit,
            ("GET", r + "/git/commits/{commit_sha}"): self._get_commit,
            ("POST", r + "/git/refs"): self._create_ref,
            ("PATCH", r + "/git/refs/{ref}"): self._update_ref,
            ("GET", r + "/git/blobs/{file_sha}"): self._get_blob,
            ("GET", r + "/pulls/{pull_number}"): self._get_pull,
            ("PATCH", r + "/pulls/{pull_number}"): self._update_pull,
            ("POST", r + "/check-runs"): self._create_check_run,
            ("PATCH", r + "/check-runs/{check_run_id}"): self._update_check_run,
        }

    def _ex(self, method: str, template: str, status: int, name: str | None = None) -> Any:
        return self.spec.example(method, template, status, name)

    def _url(self, *parts: object) -> str:
        return "https://github.com/" + "/".join(str(p) for p in parts)

    def _token(self, request: httpx.Request, p: dict[str, str], body: Any) -> tuple[int, Any]:
        self.tokens_issued += 1
        answer = self._ex("POST", "/app/installations/{installation_id}/access_tokens", 201)
        answer["token"] = f"ghs_fake{self.tokens_issued}"
        expires = dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)
        answer["expires_at"] = expires.strftime("%Y-%m-%dT%H:%M:%SZ")
        return 201, answer

    def _list_deliveries(self, request: httpx.Request, p: dict[str, str], body: Any) -> Any:
        # GitHub pages this list with an opaque cursor, given in the Link header.
        per_page = int(request.url.params.get("per_page", "30"))
        start = int(request.url.params.get("cursor", "0"))
        page = self.deliveries[start : start + per_page]
        headers = {}
        if start + per_page < len(self.deliveries):
            url = request.url.copy_merge_params({"cursor": str(start + per_page)})
            headers["link"] = f'<{url}>; rel="next"'
        return 200, page, headers

    def _redeliver(self, request: httpx.Request, p: dict[str, str], body: Any) -> tuple[int, Any]:
        delivery_id = int(p["delivery_id"])
        if not any(d["id"] == delivery_id for d in self.deliveries):
            return 404, {"message": "Not Found"}
        self.redelivered.append(delivery_id)
        return 202, {}

    def _installation(
        self, request: httpx.Request, p: dict[str, str], body: Any
    ) -> tuple[int, Any]:
        answer = self._ex("GET", "/repos/{owner}/{repo}/installation", 200)
        answer["id"] = self.installation_id
        return 200, answer

    def _repository(self, request: httpx.Request, p: dict[str, str], body: Any) -> tuple[int, Any]:
        answer = self._ex("GET", "/repos/{owner}/{repo}", 200)
        answer.update(name=self.repo, full_name=f"{self.owner}/{self.repo}")
        answer["default_branch"] = self.default_branch
        answer["private"] = self.private
        answer["visibility"] = "private" if self.private else "public"
        answer["owner"]["login"] = self.owner
        return 200, answer

    def _ref(self, branch: str) -> dict[str, Any]:
        answer = self._ex("GET", "/repos/{owner}/{repo}/git/ref/{ref}", 200)
        answer["ref"] = f"refs/heads/{branch}"
        answer["object"]["sha"] = self.refs[branch]
        return dict(answer)

    def _get_ref(self, request: httpx.Request, p: dict[str, str], body: Any) -> tuple[int, Any]:
        branch = p["ref"].removeprefix("heads/")
        if branch not in self.refs:
            return 404, {"message": "Not Found"}
        return 200, self._ref(branch)

    def _commit_of(self, ref: str) -> str | None:
        if ref in self.commits:
            return ref
        return self.refs.get(ref)

    def _contents(self, request: httpx.Request, p: dict[str, str], body: Any) -> tuple[int, Any]:
        commit = self._commit_of(request.url.params.get("ref", self.default_branch))
        if commit is None:
            return 404, {"message": "No commit found for the ref"}
        tree = self.trees[self.commits[commit]["tree"]]
        path = p["path"].strip("/")
        template = "/repos/{owner}/{repo}/contents/{path}"
        if path in tree:
            answer = self._ex("GET", template, 200, "response-if-content-is-a-file")
            data = self.blobs[tree[path]]
            answer.update(
                path=path,
                name=path.rsplit("/", 1)[-1],
                sha=tree[path],
                size=len(data),
                content=base64.b64encode(data).decode(),
            )
            return 200, answer
        if any(name.startswith(path + "/") for name in tree):
            return 200, self._ex("GET", template, 200, "response-if-content-is-a-directory")
        return 404, {"message": "Not Found"}

    def _permission(self, request: httpx.Request, p: dict[str, str], body: Any) -> tuple[int, Any]:
        answer = self._ex("GET", "/repos/{owner}/{repo}/collaborators/{username}/permission", 200)
        # Someone without access: on a public repository GitHub answers read (anyone may
        # read it), on a private one none.
        role = self.collaborators.get(p["username"], "none" if self.private else "read")
        answer["role_name"] = role
        legacy = {"maintain": "write", "triage": "read"}
        answer["permission"] = self.custom_roles.get(role) or legacy.get(role, role)
        answer["user"]["login"] = p["username"]
        return 200, answer

    def _is_collaborator(self, request: httpx.Request, p: dict[str, str], body: Any) -> Any:
        return (
            (204, None) if p["username"] in self.collaborators else (404, {"message": "Not Found"})
        )

    def _membership(self, request: httpx.Request, p: dict[str, str], body: Any) -> tuple[int, Any]:
        if p["username"] not in self.teams.get(p["team_slug"], set()):
            return 404, {"message": "Not Found"}
        answer = self._ex("GET", "/orgs/{org}/teams/{team_slug}/memberships/{username}", 200)
        answer["state"] = "active"
        return 200, answer

    def _comment_json(self, comment: Comment) -> dict[str, Any]:
        answer = self._ex("POST", "/repos/{owner}/{repo}/issues/{issue_number}/comments", 201)
        answer.update(id=comment.id, body=comment.body)
        answer["html_url"] = (
            self._url(self.owner, self.repo, "issues", comment.issue)
            + f"#issuecomment-{comment.id}"
        )
        answer["user"]["login"] = comment.login
        answer["user"]["type"] = "Bot" if comment.bot else "User"
        answer["performed_via_github_app"] = None
        if comment.app_id is not None:
            app = self._ex("GET", "/app", 200)
            app.update(id=comment.app_id, slug=f"app-{comment.app_id}")
            if comment.app_id == int(self.app_id):
                app["slug"] = self.app_slug
            answer["performed_via_github_app"] = app
        return dict(answer)

    def _list_comments(
        self, request: httpx.Request, p: dict[str, str], body: Any
    ) -> tuple[int, Any]:
        issue = int(p["issue_number"])
        page = int(request.url.params.get("page", "1"))
        per_page = int(request.url.params.get("per_page", "30"))
        mine = [c for c in self.comments.values() if c.issue == issue]
        chunk = mine[(page - 1) * per_page : page * per_page]
        return 200, [self._comment_json(c) for c in chunk]

    def _create_comment(
        self, request: httpx.Request, p: dict[str, str], body: Any
    ) -> tuple[int, Any]:
        comment = Comment(
            next(self._ids),
            int(p["issue_number"]),
            body["body"],
            f"{self.app_slug}[bot]",
            True,
            app_id=int(self.app_id),
        )
        comment.history.append(comment.body)
        self.comments[comment.id] = comment
        return 201, self._comment_json(comment)

    def _edit_comment(
        self, request: httpx.Request, p: dict[str, str], body: Any
    ) -> tuple[int, Any]:
        comment = self.comments.get(int(p["comment_id"]))
        if comment is None:
            return 404, {"message": "Not Found"}
        comment.body = body["body"]
        comment.history.append(comment.body)
        return 200, self._comment_json(comment)

    def _reaction(self, content: str) -> dict[str, Any]:
        answer = self._ex("POST", "/repos/{owner}/{repo}/issues/{issue_number}/reactions", 201)
        answer["content"] = content
        return dict(answer)

    def _react_comment(
        self, request: httpx.Request, p: dict[str, str], body: Any
    ) -> tuple[int, Any]:
        self.reactions.append(("comment", int(p["comment_id"]), body["content"]))
        return 201, self._reaction(body["content"])

    def _react_issue(self, request: httpx.Request, p: dict[str, str], body: Any) -> tuple[int, Any]:
        self.reactions.append(("issue", int(p["issue_number"]), body["content"]))
        return 201, self._reaction(body["content"])

    def _pull_json(self, pull: PullRequest, template: str, method: str, status: int) -> Any:
        answer = self._ex(method, template, status)
        item = answer[0] if isinstance(answer, list) else answer
        item.update(number=pull.number, title=pull.title, body=pull.body, draft=pull.draft)
        item["html_url"] = self._url(self.owner, self.repo, "pull", pull.number)
        item["head"]["ref"] = pull.head
        item["base"]["ref"] = pull.base
        item["base"]["repo"]["full_name"] = f"{self.owner}/{self.repo}"
        item["head"]["repo"]["full_name"] = pull.head_repository or f"{self.owner}/{self.repo}"
        item["state"], item["merged"] = pull.state, pull.merged
        return item

    def _list_pulls(self, request: httpx.Request, p: dict[str, str], body: Any) -> tuple[int, Any]:
        head = request.url.params.get("head")
        found = [x for x in self.pulls if head is None or f"{self.owner}:{x.head}" == head]
        template = "/repos/{owner}/{repo}/pulls"
        return 200, [self._pull_json(x, template, "GET", 200) for x in found]

    def _create_pull(self, request: httpx.Request, p: dict[str, str], body: Any) -> tuple[int, Any]:
        # GitHub refuses a second open pull request from a branch; a closed one is history.
        if any(x.head == body["head"] and x.state == "open" for x in self.pulls):
            return 422, {"message": "A pull request already exists"}
        if body["head"] not in self.refs:
            return 422, {"message": "head does not exist"}
        pull = PullRequest(
            len(self.pulls) + 1,
            body["head"],
            body["base"],
            body["title"],
            body.get("body", ""),
            body.get("draft", False),
        )
        self.pulls.append(pull)
        return 201, self._pull_json(pull, "/repos/{owner}/{repo}/pulls", "POST", 201)

    def _pull(self, number: str) -> PullRequest:
        return next(x for x in self.pulls if x.number == int(number))

    def _labels(self, request: httpx.Request, p: dict[str, str], body: Any) -> tuple[int, Any]:
        self._pull(p["issue_number"]).labels.extend(body["labels"])
        return 200, self._ex("POST", "/repos/{owner}/{repo}/issues/{issue_number}/labels", 200)

    def _reviewers(self, request: httpx.Request, p: dict[str, str], body: Any) -> tuple[int, Any]:
        pull = self._pull(p["pull_number"])
        pull.reviewers.extend(body.get("reviewers", []))
        template = "/repos/{owner}/{repo}/pulls/{pull_number}/requested_reviewers"
        return 201, self._pull_json(pull, template, "POST", 201)

    def _put_blob(self, data: bytes) -> str:
        sha = git_blob_sha(data)
        self.blobs[sha] = data
        return sha

    def _create_blob(self, request: httpx.Request, p: dict[str, str], body: Any) -> tuple[int, Any]:
        data = (
            base64.b64decode(body["content"])
            if body.get("encoding") == "base64"
            else body["content"].encode()
        )
        answer = self._ex("POST", "/repos/{owner}/{repo}/git/blobs", 201)
        answer["sha"] = self._put_blob(data)
        return 201, answer

    def _create_tree(self, request: httpx.Request, p: dict[str, str], body: Any) -> tuple[int, Any]:
        tree = dict(self.trees[body["base_tree"]]) if body.get("base_tree") else {}
        for entry in body["tree"]:
            if entry["sha"] is None:  # the API's way to delete a path
                tree.pop(entry["path"], None)
                continue
            if entry["sha"] not in self.blobs:
                return 422, {"message": f"no blob {entry['sha']}"}
            tree[entry["path"]] = entry["sha"]
        sha = _sha("tree", sorted(tree.items()))
        self.trees[sha] = tree
        return 201, self._tree_json(sha, "POST", 201)

    def _tree_json(self, sha: str, method: str, status: int) -> Any:
        template = (
            "/repos/{owner}/{repo}/git/trees"
            if method == "POST"
            else "/repos/{owner}/{repo}/git/trees/{tree_sha}"
        )
        answer = self._ex(method, template, status)
        sample = answer["tree"][0]
        answer["sha"] = sha
        answer["tree"] = [
            {**sample, "path": path, "sha": blob, "type": "blob", "mode": "100644"}
            for path, blob in sorted(self.trees[sha].items())
        ]
        answer["truncated"] = False
        return answer

    def _get_tree(self, request: httpx.Request, p: dict[str, str], body: Any) -> tuple[int, Any]:
        if p["tree_sha"] not in self.trees:
            return 404, {"message": "Not Found"}
        return 200, self._tree_json(p["tree_sha"], "GET", 200)

    def _commit_json(self, sha: str, method: str, status: int) -> Any:
        template = (
            "/repos/{owner}/{repo}/git/commits"
            if method == "POST"
            else "/repos/{owner}/{repo}/git/commits/{commit_sha}"
        )
        answer = self._ex(method, template, status)
        commit = self.commits[sha]
        answer["sha"] = sha
        answer["message"] = commit["message"]
        answer["tree"]["sha"] = commit["tree"]
        sample = answer["parents"][0] if answer["parents"] else {"url": "", "html_url": ""}
        answer["parents"] = [{**sample, "sha": parent} for parent in commit["parents"]]
        return answer

    def _create_commit(
        self, request: httpx.Request, p: dict[str, str], body: Any
    ) -> tuple[int, Any]:
        if body["tree"] not in self.trees:
            return 422, {"message": "no such tree"}
        sha = _sha("commit", body["tree"], tuple(body["parents"]), body["message"])
        self.commits[sha] = {
            "tree": body["tree"],
            "parents": list(body["parents"]),
            "message": body["message"],
        }
        return 201, self._commit_json(sha, "POST", 201)

    def _get_commit(self, request: httpx.Request, p: dict[str, str], body: Any) -> tuple[int, Any]:
        if p["commit_sha"] not in self.commits:
            return 404, {"message": "Not Found"}
        return 200, self._commit_json(p["commit_sha"], "GET", 200)

    def _create_ref(self, request: httpx.Request, p: dict[str, str], body: Any) -> tuple[int, Any]:
        branch = body["ref"].removeprefix("refs/heads/")
        if branch in self.refs:
            return 422, {"message": "Reference already exists"}
        self.refs[branch] = body["sha"]
        return 201, self._ref(branch)

    def _update_ref(self, request: httpx.Request, p: dict[str, str], body: Any) -> tuple[int, Any]:
        branch = p["ref"].removeprefix("heads/")
        if branch not in self.refs:
            return 422, {"message": "Reference does not exist"}
        if not body.get("force", False) and self.refs[branch] not in self.ancestors(body["sha"]):
            return 422, {"message": "Update is not a fast forward"}
        self.refs[branch] = body["sha"]
        return 200, self._ref(branch)

    def _get_blob(self, request: httpx.Request, p: dict[str, str], body: Any) -> tuple[int, Any]:
        data = self.blobs.get(p["file_sha"])
        if data is None:
            return 404, {"message": "Not Found"}
        answer = self._ex("GET", "/repos/{owner}/{repo}/git/blobs/{file_sha}", 200)
        answer.update(
            sha=p["file_sha"],
            size=len(data),
            encoding="base64",
            content=base64.b64encode(data).decode(),
        )
        return 200, answer

    def _find_pull(self, number: str) -> PullRequest | None:
        return next((x for x in self.pulls if x.number == int(number)), None)

    def _get_pull(self, request: httpx.Request, p: dict[str, str], body: Any) -> tuple[int, Any]:
        pull = self._find_pull(p["pull_number"])
        if pull is None:
            return 404, {"message": "Not Found"}
        answer = self._pull_json(pull, "/repos/{owner}/{repo}/pulls/{pull_number}", "GET", 200)
        answer["head"]["sha"] = self.refs.get(pull.head, answer["head"]["sha"])
        return 200, answer

    def _update_pull(self, request: httpx.Request, p: dict[str, str], body: Any) -> tuple[int, Any]:
        pull = self._find_pull(p["pull_number"])
        if pull is None:
            return 404, {"message": "Not Found"}
        pull.body = body.get("body", pull.body)
        pull.title = body.get("title", pull.title)
        return 200, self._pull_json(pull, "/repos/{owner}/{repo}/pulls/{pull_number}", "PATCH", 200)

    def _check_run_json(self, run: dict[str, Any], method: str, template: str, status: int) -> Any:
        answer = self._ex(method, template, status)
        answer.update(
            id=run["id"],
            head_sha=run["head_sha"],
            name=run["name"],
            status=run["status"],
            conclusion=run.get("conclusion"),
        )
        answer["output"].update(
            title=run["output"]["title"],
            summary=run["output"]["summary"],
            annotations_count=len(run["annotations"]),
        )
        return answer

    def _create_check_run(
        self, request: httpx.Request, p: dict[str, str], body: Any
    ) -> tuple[int, Any]:
        output = dict(body.get("output") or {})
        batch = list(output.pop("annotations", []))
        if len(batch) > 50:
            return 422, {"message": "at most 50 annotations per request"}
        run = {"id": next(self._ids), **body, "output": output, "annotations": batch}
        run.setdefault("status", "queued")
        self.check_runs.append(run)
        return 201, self._check_run_json(run, "POST", "/repos/{owner}/{repo}/check-runs", 201)

    def _update_check_run(
        self, request: httpx.Request, p: dict[str, str], body: Any
    ) -> tuple[int, Any]:
        run = next((r for r in self.check_runs if r["id"] == int(p["check_run_id"])), None)
        if run is None:
            return 404, {"message": "Not Found"}
        output = dict(body.get("output") or {})
        batch = list(output.pop("annotations", []))
        if len(batch) > 50:
            return 422, {"message": "at most 50 annotations per request"}
        run["annotations"].extend(batch)
        run["output"].update(output)
        run.update({k: v for k, v in body.items() if k != "output"})
        template = "/repos/{owner}/{repo}/check-runs/{check_run_id}"
        return 200, self._check_run_json(run, "PATCH", template, 200)


# ---------------------------------------------------------------------- webhook payloads


@functools.cache
def _webhook_index() -> dict[str, list[dict[str, Any]]]:
    index = json.loads((WEBHOOK_EXAMPLES / "index.json").read_text())
    return {entry["name"]: entry["examples"] for entry in index}


def webhook_example(event: str, action: str, *, with_installation: bool = True) -> dict[str, Any]:
    """A deep copy of a real payload from @octokit/webhooks-examples."""
    examples = [e for e in _webhook_index()[event] if e.get("action") == action]
    if with_installation:
        examples = [e for e in examples if e.get("installation")] or examples
    return copy.deepcopy(examples[0])


def webhook_sender(event: str, predicate: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
    """A real ``sender`` object from any example that satisfies ``predicate``."""
    for example in _webhook_index()[event]:
        if predicate(example.get("sender") or {}):
            return copy.deepcopy(example["sender"])
    raise LookupError(f"no {event} example with such a sender")

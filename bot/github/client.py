"""The GitHub client: githubkit with App auth, GHES base URL, our retry policy, spacing.

One :class:`GitHubApp` per process. ``async with app.installation(id) as gh`` gives a client
authenticated as that installation (githubkit caches the installation token until a minute
before it expires). Retries are ours, not githubkit's default, which re-sends a POST after a
5xx: a POST that may have landed is never repeated here; the operations look for what they
meant to create (marker, branch, pull request) before creating it again. GraphQL goes
through the same client (``/graphql``, or ``/api/graphql`` beside GHES's ``/api/v3/``); a
read-only query is sent again after a 5xx, a mutation is not.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

import httpx
from githubkit import AppAuthStrategy, AppInstallationAuthStrategy, GitHub
from githubkit.cache import MemCacheStrategy
from githubkit.exception import GitHubException, RateLimitExceeded, RequestFailed
from githubkit.typing import RetryOption

from bot.metrics import METRICS
from bot.settings import Settings

# Methods safe to send twice: the second leaves the same state as the first.
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "PUT", "PATCH", "DELETE"})


def api_base_url(api_url: str) -> str:
    """githubkit joins paths onto the base URL: GHES's ``…/api/v3`` needs its slash."""
    return api_url.rstrip("/") + "/"


def is_read_only_graphql(request: httpx.Request) -> bool:
    """A POST to the GraphQL endpoint carrying a query (not a mutation): safe to repeat."""
    if not request.url.path.endswith("/graphql"):
        return False
    try:
        operation = str(json.loads(request.content)["query"]).lstrip()
    except (ValueError, KeyError, TypeError):
        return False
    return operation.startswith(("query ", "query(", "{"))


def _wait(seconds: float) -> timedelta:
    # githubkit sleeps 60 s for a falsy wait: a zero timedelta must not become a minute.
    return timedelta(seconds=max(seconds, 0.001))


class RetryPolicy:
    """Rate limits: wait what GitHub says (``retry-after`` / ``x-ratelimit-reset``), for any
    method, since a rate-limited request was not processed. 5xx: exponential backoff, for
    idempotent methods and read-only GraphQL queries only."""

    def __init__(self, max_retries: int, max_wait_s: float, base_s: float = 1.0) -> None:
        self.max_retries = max_retries
        self.max_wait_s = max_wait_s
        self.base_s = base_s

    def __call__(self, exc: GitHubException, retry_count: int) -> RetryOption:
        if retry_count >= self.max_retries:
            return RetryOption(False)
        if isinstance(exc, RateLimitExceeded):
            wait = exc.retry_after.total_seconds()
            if wait > self.max_wait_s:
                return RetryOption(False)
            return RetryOption(True, _wait(wait))
        if (
            isinstance(exc, RequestFailed)
            and exc.response.status_code >= 500
            and (
                exc.request.method.upper() in IDEMPOTENT_METHODS
                or is_read_only_graphql(exc.request)
            )
        ):
            return RetryOption(True, _wait(self.base_s * 2**retry_count))
        return RetryOption(False)


Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]


class WriteSpacer:
    """Content-creating requests of one installation at least ``spacing_s`` apart."""

    def __init__(
        self, spacing_s: float, clock: Clock = time.monotonic, sleep: Sleep = asyncio.sleep
    ) -> None:
        self.spacing_s = spacing_s
        self._clock = clock
        self._sleep = sleep
        self._last: dict[int, float] = {}
        self._locks: dict[int, asyncio.Lock] = {}

    @asynccontextmanager
    async def turn(self, installation_id: int) -> AsyncIterator[None]:
        lock = self._locks.setdefault(installation_id, asyncio.Lock())
        async with lock:
            last = self._last.get(installation_id)
            if last is not None:
                wait = last + self.spacing_s - self._clock()
                if wait > 0:
                    await self._sleep(wait)
            try:
                yield
            finally:
                self._last[installation_id] = self._clock()


class Installation:
    """A client for one installation, with the spacer for its content-creating requests."""

    def __init__(
        self,
        gh: GitHub[AppInstallationAuthStrategy],
        installation_id: int,
        spacer: WriteSpacer,
        retry: RetryPolicy,
        sleep: Sleep = asyncio.sleep,
        *,
        app_id: str,
        app_slug: str | None = None,
    ) -> None:
        self.gh = gh
        self.installation_id = installation_id
        self._spacer = spacer
        self._retry = retry
        self._sleep = sleep
        # Who this client writes as: its comments are the only ones the bot adopts.
        self.app_id = app_id
        self.app_slug = app_slug

    def wrote(self, item: Mapping[str, Any]) -> bool:
        """Whether this app authored ``item`` (a comment): made through the app, or by its
        bot account."""
        via = item.get("performed_via_github_app") or {}
        if str(via.get("id", "")) == self.app_id:
            return True
        author = item.get("user") or {}
        return (
            self.app_slug is not None
            and author.get("type") == "Bot"
            and author.get("login") == f"{self.app_slug}[bot]"
        )

    def creating(self) -> Any:
        """``async with inst.creating():`` around a request that creates content."""
        return self._spacer.turn(self.installation_id)

    async def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: dict[str, Any] | None = None,
    ) -> Any:
        """One REST call; the decoded JSON (None for an empty answer)."""
        response = await self.gh.arequest(method, path, json=json, params=params)
        METRICS.github_answer(response.headers)
        if not response.content:
            return None
        return response.json()

    async def graphql(self, query: str, variables: dict[str, Any]) -> dict[str, Any]:
        """One GraphQL query; its ``data``. GraphQL errors raise ``GraphQLFailed``.

        GitHub answers an exhausted GraphQL budget with 200 and a ``RATE_LIMITED`` error,
        which githubkit raises after its retry loop: the same policy decides here."""
        retry_count = 0
        while True:
            try:
                return await self.gh.graphql.arequest(query, variables)
            except RateLimitExceeded as exc:
                option = self._retry(exc, retry_count)
                if not option.do_retry or option.retry_after is None:
                    raise
                await self._sleep(option.retry_after.total_seconds())
                retry_count += 1

    async def get_or_none(self, path: str, params: dict[str, Any] | None = None) -> Any:
        """A GET whose 404 means "there is none"."""
        try:
            return await self.request("GET", path, params=params)
        except RequestFailed as exc:
            if exc.response.status_code == 404:
                return None
            raise

    async def create(self, method: str, path: str, json: Any) -> Any:
        """A content-creating request, spaced from the installation's previous one."""
        async with self.creating():
            return await self.request(method, path, json=json)


class GitHubApp:
    """The App: its JWT client, and installation clients made from it."""

    def __init__(
        self,
        settings: Settings,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        spacer: WriteSpacer | None = None,
    ) -> None:
        key = settings.app_private_key()
        if settings.github_app_id is None or key is None:
            raise ValueError("a GitHub App needs GITHUB_APP_ID and its private key")
        self.settings = settings
        self.app_id = settings.github_app_id
        self.slug = settings.github_app_slug
        self._auth = AppAuthStrategy(settings.github_app_id, key)
        self._transport = transport
        self.retry = RetryPolicy(settings.github_max_retries, settings.github_retry_max_wait_s)
        self.spacer = spacer or WriteSpacer(settings.github_write_spacing_s)
        # Every client is made from this one and shares its cache: the JWT and the
        # installation tokens, each kept until shortly before it expires.
        self._template = self._client(self._auth)

    def _client(self, auth: Any) -> GitHub[Any]:
        return GitHub(
            auth,
            base_url=api_base_url(self.settings.github_api_url),
            user_agent="plugin-bot",
            timeout=self.settings.github_timeout_s,
            http_cache=False,
            auto_retry=self.retry,
            async_transport=self._transport,
            cache_strategy=MemCacheStrategy(),
        )

    @asynccontextmanager
    async def as_app(self) -> AsyncIterator[GitHub[AppAuthStrategy]]:
        async with self._template.with_auth(self._auth) as gh:
            yield gh

    @asynccontextmanager
    async def installation(self, installation_id: int) -> AsyncIterator[Installation]:
        auth = self._auth.as_installation(installation_id)
        async with self._template.with_auth(auth) as gh:
            yield Installation(
                gh,
                installation_id,
                self.spacer,
                self.retry,
                app_id=self.app_id,
                app_slug=self.slug,
            )

    async def installation_for(self, owner: str, repo: str) -> int:
        """The installation on a repository (a payload without ``installation``)."""
        async with self.as_app() as gh:
            response = await gh.rest.apps.async_get_repo_installation(owner, repo)
            return response.parsed_data.id

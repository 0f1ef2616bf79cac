"""The webhook server: ``create_app(settings, store, github)``, a Starlette app.

``POST /webhook`` is a short list of checks, each of which answers or passes on: size,
headers, content type, signature over the raw body, JSON, ping, the trigger, the durable
insert. Nothing in it talks to GitHub or to a model: the command is in the database before
the 202 (a failed transaction answers 503), and the dispatcher does the rest.
``GET /healthz`` answers as soon as webhooks are accepted; ``GET /readyz`` says whether the
database, the sandbox and the App's credentials work (503 with the reasons when not);
``GET /metrics`` is Prometheus' text; ``GET /jobs/<id>`` is the job page (bot/jobpage.py).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import orjson
import structlog
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from bot.github.client import GitHubApp
from bot.github.ports import CommandInbox
from bot.github.webhooks import (
    DeliveryHeaders,
    WebhookRefused,
    check_content_type,
    parse_json,
    read_headers,
    trigger_from,
    verify_signature,
)
from bot.health import Readiness, queue_stats, sandbox_probe_for
from bot.jobpage import JobPages, Visibility
from bot.jobs.store import Store
from bot.metrics import METRICS, Metrics
from bot.settings import Settings

log = structlog.get_logger("bot.server")


class _Disconnected(Exception):
    """The client went away before its body arrived: there is no one to answer."""


def _headers(scope: Scope) -> dict[str, str]:
    """The request's headers by (lower-case) name; the first of a repeated one counts."""
    found: dict[str, str] = {}
    for name, value in scope["headers"]:
        found.setdefault(name.decode("latin-1"), value.decode("latin-1"))
    return found


async def read_capped(headers: Mapping[str, str], receive: Receive, limit: int) -> bytes:
    """The body, refused (413) as soon as it passes ``limit``: never read whole."""
    declared = headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise WebhookRefused(413, f"the body is larger than {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise _Disconnected
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise WebhookRefused(413, f"the body is larger than {limit} bytes")
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


async def _send_json(send: Send, status: int, fields: Mapping[str, Any]) -> None:
    body = orjson.dumps(fields)
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _answer(status: int, **fields: Any) -> JSONResponse:
    return JSONResponse(fields, status_code=status)


# The database did not take the delivery (its transaction failed): GitHub shows this in the
# App's delivery log, and `plugin-bot redeliver` asks for it again.
NOT_STORED = "the delivery could not be stored; redeliver it"

Answer = tuple[int, dict[str, Any], str]  # status, JSON fields, outcome for the metrics


class WebhookEndpoint:
    """``POST /webhook`` as a plain ASGI app (no Request or Response objects on the hot
    path): one log line per delivery, the command committed before the 202."""

    def __init__(
        self,
        settings: Settings,
        store: CommandInbox,
        github: GitHubApp | None,
        metrics: Metrics,
    ) -> None:
        self.secrets = settings.webhook_secrets
        self.max_bytes = settings.webhook_max_bytes
        self.store = store
        self.app_id = settings.github_app_id
        self.app_slug = github.slug if github is not None else settings.github_app_slug
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        headers = _headers(scope)
        try:
            status, fields, outcome = await self._handle(headers, receive)
        except WebhookRefused as refused:
            status, fields, outcome = refused.status, {"error": refused.reason}, "refused"
        except _Disconnected:
            return
        self.metrics.webhook(
            headers.get("x-github-event", ""), outcome, time.perf_counter() - started
        )
        await _send_json(send, status, fields)

    async def _handle(self, headers: Mapping[str, str], receive: Receive) -> Answer:
        try:
            delivery = read_headers(headers)
        except WebhookRefused as refused:  # no delivery id to bind: it is missing or bogus
            log.info("webhook.refused", status=refused.status, reason=refused.reason)
            raise
        structlog.contextvars.bind_contextvars(delivery_id=delivery.delivery_id)
        try:
            check_content_type(headers.get("content-type"))
            body = await read_capped(headers, receive, self.max_bytes)
            verify_signature(self.secrets, body, delivery.signature)
            payload = parse_json(body)
            if delivery.event == "ping":
                return 200, {"ok": True, "zen": payload.get("zen")}, "ping"
            try:
                return await self._accept(delivery, payload)
            except (KeyError, TypeError, ValueError, AttributeError, RecursionError) as exc:
                # Signed, but not the shape of the event it names.
                raise WebhookRefused(
                    400, f"the payload is malformed ({type(exc).__name__})"
                ) from exc
        except WebhookRefused as refused:
            log.info("webhook.refused", status=refused.status, reason=refused.reason)
            raise
        finally:
            structlog.contextvars.unbind_contextvars("delivery_id", "repository", "installation_id")

    async def _accept(self, delivery: DeliveryHeaders, payload: dict[str, Any]) -> Answer:
        repository = (payload.get("repository") or {}).get("full_name")
        installation = (payload.get("installation") or {}).get("id")
        structlog.contextvars.bind_contextvars(repository=repository, installation_id=installation)
        trigger = trigger_from(delivery, payload, app_id=self.app_id, app_slug=self.app_slug)
        if isinstance(trigger, str):
            log.info("webhook.ignored", github_event=delivery.event, reason=trigger)
            return 200, {"ignored": trigger}, "ignored"
        command = trigger.command.name.value
        try:
            stored = await self.store.record_command(trigger)
        except Exception as exc:  # its transaction failed: no 202 for what is not stored
            log.error("webhook.not_stored", command=command, error=type(exc).__name__)
            return 503, {"error": NOT_STORED}, "not_stored"
        if not stored:
            log.info("webhook.duplicate", github_event=delivery.event, command=command)
            return 200, {"duplicate": True}, "duplicate"
        log.info("webhook.accepted", github_event=delivery.event, command=command)
        return 202, {"accepted": command}, "accepted"


async def healthz(request: Request) -> Response:
    return _answer(200, ok=True)


class Operations:
    """``/readyz``, ``/metrics`` and the job pages, over the job store."""

    def __init__(self, readiness: Readiness, store: Store, metrics: Metrics) -> None:
        self.readiness = readiness
        self.store = store
        self.metrics = metrics

    async def readyz(self, request: Request) -> Response:
        checks = await self.readiness.checks()
        ready = all(c.ok for c in checks)
        if not ready:
            log.warning("readiness.failed", failing=[c.name for c in checks if not c.ok])
        return _answer(
            200 if ready else 503,
            ready=ready,
            checks={c.name: {"ok": c.ok, "reason": c.reason} for c in checks},
        )

    async def metrics_text(self, request: Request) -> Response:
        try:
            self.metrics.queue(await queue_stats(self.store), self.store.clock())
        except Exception as exc:  # the counters are still worth answering with
            log.warning("metrics.queue_failed", error=type(exc).__name__)
        return Response(self.metrics.render(), media_type=CONTENT_TYPE_LATEST)


def github_visibility(github: GitHubApp) -> Visibility:
    """Whether a repository is public, as its installation sees it (cached a while)."""
    cache: dict[str, tuple[float, bool]] = {}
    cache_s = github.settings.job_page_visibility_cache_s

    async def public(repository: str) -> bool:
        hit = cache.get(repository)
        if hit is not None and time.monotonic() - hit[0] < cache_s:
            return hit[1]
        owner, _, name = repository.partition("/")
        installation_id = await github.installation_for(owner, name)
        async with github.installation(installation_id) as inst:
            repo = await inst.request("GET", f"/repos/{owner}/{name}")
        answer = repo.get("private") is False and repo.get("visibility", "public") == "public"
        cache[repository] = (time.monotonic(), answer)
        return answer

    return public


async def _private_only(repository: str) -> bool:
    return False


class WebhookFirst(Starlette):
    """Starlette, except that ``POST /webhook`` goes straight to its endpoint: no middleware
    stack or route matching per delivery (about a tenth of a request's CPU under load,
    benchmarks/README.md). Every other request, ``/webhook`` with another method included,
    takes Starlette's routes as before."""

    def __init__(self, webhook: WebhookEndpoint, *, routes: list[Route]) -> None:
        super().__init__(routes=routes)
        self.webhook = webhook

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == "/webhook" and scope["method"] == "POST":
            await self.webhook(scope, receive, send)
        else:
            await super().__call__(scope, receive, send)


def create_app(
    settings: Settings,
    store: CommandInbox,
    github: GitHubApp | None,
    *,
    jobs: Store | None = None,
    readiness: Readiness | None = None,
    visibility: Visibility | None = None,
    metrics: Metrics = METRICS,
) -> Starlette:
    """The server's routes over the given store and GitHub client; nothing global but the
    process's metrics registry. With ``jobs`` (the job store) it also serves ``/readyz``,
    the queue gauges of ``/metrics`` and the job pages."""
    if not settings.webhook_secrets:
        raise ValueError("a webhook server needs at least one webhook secret")
    webhook = WebhookEndpoint(settings, store, github, metrics)
    routes = [
        Route("/webhook", webhook, methods=["POST"]),  # an ASGI app, not a function
        Route("/healthz", healthz, methods=["GET"]),
    ]
    if jobs is None:
        routes.append(Route("/metrics", _plain_metrics(metrics), methods=["GET"]))
        return WebhookFirst(webhook, routes=routes)
    ops = Operations(
        readiness or Readiness(settings, jobs, sandbox_probe_for(settings)), jobs, metrics
    )
    if visibility is None:
        visibility = github_visibility(github) if github is not None else _private_only
    pages = JobPages(settings, jobs, visibility)
    routes += [
        Route("/readyz", ops.readyz, methods=["GET"]),
        Route("/metrics", ops.metrics_text, methods=["GET"]),
        Route("/jobs/{job_id:str}", pages.handle, methods=["GET"]),
    ]
    return WebhookFirst(webhook, routes=routes)


def _plain_metrics(metrics: Metrics) -> Any:
    async def endpoint(request: Request) -> Response:
        return Response(metrics.render(), media_type=CONTENT_TYPE_LATEST)

    return endpoint

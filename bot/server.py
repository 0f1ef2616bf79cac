"""The webhook server: ``create_app(settings, store, github)``, a Starlette app.

``POST /webhook`` is a short list of checks, each of which answers or passes on: size,
headers, content type, signature over the raw body, JSON, ping, the trigger, the durable
insert. Nothing in it talks to GitHub or to a model: the command is in the database before
the 202, and the dispatcher does the rest. ``GET /healthz`` answers as soon as webhooks
are accepted.
"""

from __future__ import annotations

from typing import Any

import structlog
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bot.github.client import GitHubApp
from bot.github.ports import CommandInbox
from bot.github.webhooks import (
    WebhookRefused,
    check_content_type,
    parse_json,
    read_headers,
    trigger_from,
    verify_signature,
)
from bot.settings import Settings

log = structlog.get_logger("bot.server")


async def read_capped(request: Request, limit: int) -> bytes:
    """The body, refused (413) as soon as it passes ``limit``: never read whole."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise WebhookRefused(413, f"the body is larger than {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise WebhookRefused(413, f"the body is larger than {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _answer(status: int, **fields: Any) -> JSONResponse:
    return JSONResponse(fields, status_code=status)


class WebhookEndpoint:
    def __init__(self, settings: Settings, store: CommandInbox, github: GitHubApp | None) -> None:
        self.secrets = settings.webhook_secrets
        self.max_bytes = settings.webhook_max_bytes
        self.store = store
        self.app_id = settings.github_app_id
        self.app_slug = github.slug if github is not None else settings.github_app_slug

    async def handle(self, request: Request) -> Response:
        try:
            return await self._handle(request)
        except WebhookRefused as refused:
            log.info("webhook.refused", status=refused.status, reason=refused.reason)
            return _answer(refused.status, error=refused.reason)

    async def _handle(self, request: Request) -> Response:
        headers = read_headers(request.headers)
        structlog.contextvars.bind_contextvars(delivery_id=headers.delivery_id)
        try:
            check_content_type(request.headers.get("content-type"))
            body = await read_capped(request, self.max_bytes)
            verify_signature(self.secrets, body, headers.signature)
            payload = parse_json(body)
            if headers.event == "ping":
                return _answer(200, ok=True, zen=payload.get("zen"))
            return await self._accept(headers, payload)
        finally:
            structlog.contextvars.unbind_contextvars("delivery_id", "repository")

    async def _accept(self, headers: Any, payload: dict[str, Any]) -> Response:
        repository = (payload.get("repository") or {}).get("full_name")
        structlog.contextvars.bind_contextvars(repository=repository)
        trigger = trigger_from(headers, payload, app_id=self.app_id, app_slug=self.app_slug)
        if isinstance(trigger, str):
            log.info("webhook.ignored", github_event=headers.event, reason=trigger)
            return _answer(200, ignored=trigger)
        stored = await self.store.record_command(trigger)
        if not stored:
            log.info("webhook.duplicate", command=trigger.command.name.value)
            return _answer(200, duplicate=True)
        log.info("webhook.accepted", command=trigger.command.name.value)
        return _answer(202, accepted=trigger.command.name.value)


async def healthz(request: Request) -> Response:
    return _answer(200, ok=True)


def create_app(settings: Settings, store: CommandInbox, github: GitHubApp | None) -> Starlette:
    """The server's routes over the given store and GitHub client; nothing global."""
    if not settings.webhook_secrets:
        raise ValueError("a webhook server needs at least one webhook secret")
    webhook = WebhookEndpoint(settings, store, github)
    return Starlette(
        routes=[
            Route("/webhook", webhook.handle, methods=["POST"]),
            Route("/healthz", healthz, methods=["GET"]),
        ]
    )

"""A scripted fake of the Anthropic Messages API, at the HTTP layer.

``anthropic`` talks through ``httpx2``; this module is an ``httpx2.MockTransport``
handler for ``POST /v1/messages`` that answers from a queue of scripted replies and
records every request it was sent, so tests drive the real SDK end to end::

    api = ScriptedMessagesAPI()
    api.add(tool_use_reply(("submit_plugin_spec", {...})))
    api.add(error_reply(529), error_reply(529), text_reply("done"))
    provider = api.provider(settings=settings)
    ...
    assert api.bodies[0]["tool_choice"] == {...}
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import httpx2

from bot.llm import AnthropicProvider, Meter
from bot.settings import Settings

_ids = itertools.count(1)

ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    529: "overloaded_error",
}


@dataclass
class Reply:
    """One scripted answer: a status, a JSON body and headers."""

    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)
    # Raised by the transport instead of answering (a dropped connection, a timeout).
    exception: Exception | None = None

    def response(self, request: httpx2.Request) -> httpx2.Response:
        if self.exception is not None:
            raise self.exception
        return httpx2.Response(self.status, json=self.body, headers=self.headers)


def usage(
    input_tokens: int = 100,
    output_tokens: int = 50,
    cache_creation_input_tokens: int = 0,
    cache_read_input_tokens: int = 0,
) -> dict[str, int]:
    return {
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
        "cache_creation_input_tokens": cache_creation_input_tokens,
        "cache_read_input_tokens": cache_read_input_tokens,
    }


def message_reply(
    content: list[dict[str, Any]],
    *,
    stop_reason: str = "end_turn",
    model: str = "claude-sonnet-5-5",
    usage_: dict[str, int] | None = None,
) -> Reply:
    """A 200 with a Messages API ``message`` holding ``content``."""
    return Reply(
        200,
        {
            "id": f"msg_fake_{next(_ids):04d}",
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": content,
            "stop_reason": stop_reason,
            "stop_sequence": None,
            "usage": usage_ or usage(),
        },
    )


def text_reply(text: str, *, usage_: dict[str, int] | None = None) -> Reply:
    return message_reply([{"type": "text", "text": text}], usage_=usage_)


def tool_use_reply(
    *calls: tuple[str, Any],
    text: str | None = None,
    thinking: bool = False,
    usage_: dict[str, int] | None = None,
) -> Reply:
    """A turn that calls tools: each call is ``(name, input)``; ids are made up.

    ``thinking=True`` puts a (signed, empty) thinking block first, as models with
    adaptive thinking do: it must travel back to the API unmodified.
    """
    content: list[dict[str, Any]] = []
    if thinking:
        content.append({"type": "thinking", "thinking": "", "signature": "sig-fake"})
    if text:
        content.append({"type": "text", "text": text})
    for name, tool_input in calls:
        content.append(
            {
                "type": "tool_use",
                "id": f"toolu_fake_{next(_ids):04d}",
                "name": name,
                "input": tool_input,
            }
        )
    return message_reply(content, stop_reason="tool_use", usage_=usage_)


def error_reply(
    status: int, message: str | None = None, *, retry_after: str | float | None = None
) -> Reply:
    """An API error in the API's own shape, with an optional ``retry-after`` header."""
    headers = {} if retry_after is None else {"retry-after": str(retry_after)}
    error_type = ERROR_TYPES.get(status, "api_error")
    body = {
        "type": "error",
        "error": {"type": error_type, "message": message or f"fake {error_type}"},
    }
    return Reply(status, body, headers)


def connection_error(message: str = "connection refused") -> Reply:
    """The connection fails: the SDK sees an APIConnectionError."""
    return Reply(0, {}, exception=httpx2.ConnectError(message))


def timeout_error() -> Reply:
    """The read times out: the SDK sees an APITimeoutError."""
    return Reply(0, {}, exception=httpx2.ReadTimeout("timed out"))


@dataclass
class ScriptedMessagesAPI:
    """POST /v1/messages answered from a script; every request is recorded."""

    replies: list[Reply] = field(default_factory=list)
    requests: list[httpx2.Request] = field(default_factory=list)
    bodies: list[dict[str, Any]] = field(default_factory=list)
    delays: list[float] = field(default_factory=list)
    overruns: list[str] = field(default_factory=list)

    def add(self, *replies: Reply) -> ScriptedMessagesAPI:
        self.replies.extend(replies)
        return self

    def extend(self, replies: Iterable[Reply]) -> ScriptedMessagesAPI:
        self.replies.extend(replies)
        return self

    @property
    def remaining(self) -> int:
        return len(self.replies)

    def assert_done(self) -> None:
        """Every scripted reply was used and nothing asked for more."""
        assert not self.overruns, self.overruns[0]
        assert not self.replies, f"{len(self.replies)} scripted replies were never requested"

    def handler(self, request: httpx2.Request) -> httpx2.Response:
        if request.method != "POST" or not request.url.path.endswith("/v1/messages"):
            raise AssertionError(f"unexpected request to the fake: {request.method} {request.url}")
        self.requests.append(request)
        self.bodies.append(json.loads(request.content))
        if not self.replies:
            last = self.bodies[-1].get("messages", [])[-1:] if self.bodies else []
            # The SDK wraps whatever the transport raises in APIConnectionError (and the
            # provider in LLMError): keep the message here too, for assert_done().
            message = (
                f"the scripted Messages API ran out of replies at request {len(self.bodies)}; "
                f"last message sent: {json.dumps(last)[:2000]}"
            )
            self.overruns.append(message)
            raise AssertionError(message)
        return self.replies.pop(0).response(request)

    def transport(self) -> httpx2.MockTransport:
        return httpx2.MockTransport(self.handler)

    def client(self) -> httpx2.AsyncClient:
        return httpx2.AsyncClient(transport=self.transport())

    async def _sleep(self, seconds: float) -> None:
        self.delays.append(seconds)

    def provider(
        self,
        settings: Settings | None = None,
        meter: Meter | None = None,
        *,
        model: str | None = None,
    ) -> AnthropicProvider:
        """An AnthropicProvider wired to this fake, whose sleeps are recorded, not waited."""
        if settings is None:
            settings = Settings(anthropic_api_key="sk-ant-fake")
        return AnthropicProvider(
            settings,
            meter or Meter(settings),
            http_client=self.client(),
            sleep=self._sleep,
            model=model,
        )

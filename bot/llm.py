"""Model clients behind one seam, with usage, cost and a per-job budget.

The pipeline talks to a ``ModelProvider``: messages and tools in the Messages API's
shape (content blocks as plain dicts), a ``ModelReply`` out. A second vendor is a new
class that translates, not a rewrite of the pipeline.
"""

from __future__ import annotations

import asyncio
import email.utils
import random
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import httpx2

from bot.settings import DEFAULT_ANTHROPIC_BASE_URL, Settings

if TYPE_CHECKING:  # the SDK costs a second to import: only a job that calls the model pays
    import anthropic


class LLMError(Exception):
    """The model could not be reached or answered unusably; the message says why."""


class ModelAPIError(LLMError):
    """The model API answered with an error status (after retries, if it was retryable)."""

    def __init__(self, message: str, *, status: int, api_message: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.api_message = api_message


class BudgetExceeded(LLMError):
    """The job's token or cost budget is spent."""


class ModelUnreachable(LLMError):
    """The model API could not be reached or timed out (after retries)."""


def is_transient(exc: BaseException) -> bool:
    """A failure worth another attempt of the whole job later: the model API overloaded,
    rate limited or unreachable. A refusal (400, 401, budget) would fail the same way."""
    if isinstance(exc, ModelAPIError):
        return exc.status in RETRYABLE_STATUSES
    return isinstance(exc, ModelUnreachable)


@dataclass
class Usage:
    input_tokens: int = 0
    output_tokens: int = 0
    cache_creation_input_tokens: int = 0
    cache_read_input_tokens: int = 0

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.input_tokens + other.input_tokens,
            self.output_tokens + other.output_tokens,
            self.cache_creation_input_tokens + other.cache_creation_input_tokens,
            self.cache_read_input_tokens + other.cache_read_input_tokens,
        )

    @property
    def total_input(self) -> int:
        return self.input_tokens + self.cache_creation_input_tokens + self.cache_read_input_tokens

    @property
    def total(self) -> int:
        return self.total_input + self.output_tokens

    @property
    def cache_share(self) -> float:
        """Share of input tokens served from the prompt cache."""
        return self.cache_read_input_tokens / self.total_input if self.total_input else 0.0


@dataclass(frozen=True)
class ToolCall:
    id: str
    name: str
    input: Any  # whatever the model sent: validated by the tool, never trusted


@dataclass(frozen=True)
class ModelReply:
    text: str
    tool_calls: list[ToolCall]
    stop_reason: str
    usage: Usage
    # The assistant turn as content blocks, to append to the conversation as is.
    content: list[dict[str, Any]] = field(default_factory=list)


class ModelProvider(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def model(self) -> str: ...

    async def complete(
        self,
        *,
        system: Sequence[Mapping[str, Any]],
        messages: Sequence[Mapping[str, Any]],
        tools: Sequence[Mapping[str, Any]] = (),
        tool_choice: Mapping[str, Any] | None = None,
        max_tokens: int = 8192,
    ) -> ModelReply:
        """One model call. Raises LLMError (after bounded retries) or BudgetExceeded."""
        ...


# --------------------------------------------------------------------------- accounting


class Meter:
    """Usage, cost and the budget of one job, across every model call it makes."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.budget_tokens = settings.job_budget_tokens
        self.budget_usd = settings.job_budget_usd
        self.usage = Usage()
        self.cost_usd = 0.0
        self.calls = 0

    def cost_of(self, model: str, usage: Usage) -> float:
        price = self.settings.price_of(model)
        return (
            usage.input_tokens * price.input
            + usage.output_tokens * price.output
            + usage.cache_creation_input_tokens * price.cache_write
            + usage.cache_read_input_tokens * price.cache_read
        ) / 1_000_000

    def add(self, model: str, usage: Usage) -> float:
        """Count one call; returns its cost in USD."""
        cost = self.cost_of(model, usage)
        self.usage = self.usage + usage
        self.cost_usd += cost
        self.calls += 1
        return cost

    def check(self) -> None:
        """Raise BudgetExceeded when the job has spent its tokens or its money."""
        if self.usage.total >= self.budget_tokens:
            raise BudgetExceeded(
                f"token budget of {self.budget_tokens:,} reached (used {self.usage.total:,})"
            )
        if self.cost_usd >= self.budget_usd:
            raise BudgetExceeded(
                f"cost budget of ${self.budget_usd:.2f} reached (${self.cost_usd:.4f})"
            )


# --------------------------------------------------------------------------- Anthropic

Sleep = Callable[[float], Awaitable[None]]

# Statuses worth another attempt: rate limited, overloaded, and the server's own errors.
RETRYABLE_STATUSES = frozenset({408, 409, 429, 500, 502, 503, 504, 529})


def _attempts(n: int) -> str:
    return f"{n} attempt" if n == 1 else f"{n} attempts"


def _status_text(status: int) -> str:
    if status == 429:
        return "the model API is rate limiting this key (429)"
    if status == 529:
        return "the model API is overloaded (529)"
    return f"the model API failed with a server error ({status})"


def _refused_text(status: int, api_message: str | None) -> str:
    detail = f": {api_message}" if api_message else ""
    if status == 401:
        return f"the API key was refused (401){detail}"
    if status == 403:
        return f"the API key may not use this model or endpoint (403){detail}"
    if status == 404:
        return f"the model or endpoint was not found (404){detail}"
    if status == 413:
        return f"the request was too large for the model API (413){detail}"
    return f"the model API rejected the request ({status}){detail}"


def retry_after_seconds(headers: httpx2.Headers, now: float | None = None) -> float | None:
    """The wait a response asks for: ``retry-after-ms``, or ``retry-after`` in seconds
    or as an HTTP date. None when absent or unreadable."""
    ms = headers.get("retry-after-ms")
    if ms is not None:
        try:
            return max(0.0, float(ms) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def _block_dict(block: Any) -> dict[str, Any]:
    dumped: dict[str, Any] = block.model_dump(mode="json", exclude_none=True)
    return dumped


def reply_from_message(message: anthropic.types.Message) -> ModelReply:
    """The provider-neutral reply for one Messages API response."""
    texts: list[str] = []
    calls: list[ToolCall] = []
    for block in message.content:
        if block.type == "text":
            texts.append(block.text)
        elif block.type == "tool_use":
            calls.append(ToolCall(id=block.id, name=block.name, input=block.input))
    return ModelReply(
        text="\n".join(texts),
        tool_calls=calls,
        stop_reason=message.stop_reason or "",
        usage=usage_from(message.usage),
        content=[_block_dict(b) for b in message.content],
    )


def usage_from(usage: anthropic.types.Usage) -> Usage:
    return Usage(
        input_tokens=usage.input_tokens or 0,
        output_tokens=usage.output_tokens or 0,
        cache_creation_input_tokens=usage.cache_creation_input_tokens or 0,
        cache_read_input_tokens=usage.cache_read_input_tokens or 0,
    )


class AnthropicProvider:
    """The Messages API through ``AsyncAnthropic``, with our own bounded retries."""

    name = "anthropic"

    def __init__(
        self,
        settings: Settings,
        meter: Meter,
        http_client: httpx2.AsyncClient | None = None,
        sleep: Sleep = asyncio.sleep,
        *,
        model: str | None = None,
    ) -> None:
        if settings.anthropic_api_key is None:
            raise LLMError("ANTHROPIC_API_KEY is not set")
        self.settings = settings
        self.meter = meter
        self.sleep = sleep
        self._model = model or settings.effective_anthropic_model
        import anthropic

        self.client = anthropic.AsyncAnthropic(
            api_key=settings.anthropic_api_key.get_secret_value(),
            # Always explicit: the SDK would otherwise read ANTHROPIC_BASE_URL itself, or
            # a profile from disk, behind the settings' back.
            base_url=settings.anthropic_base_url or DEFAULT_ANTHROPIC_BASE_URL,
            timeout=httpx2.Timeout(
                settings.anthropic_timeout_s, connect=settings.anthropic_connect_timeout_s
            ),
            max_retries=0,
            http_client=http_client,
        )

    @property
    def model(self) -> str:
        return self._model

    @property
    def base_url(self) -> str:
        return str(self.client.base_url)

    def backoff(self, attempt: int, headers: httpx2.Headers | None) -> float:
        """Seconds to wait before retry number ``attempt`` (1-based), never above the cap."""
        cap = self.settings.anthropic_retry_cap_s
        asked = retry_after_seconds(headers) if headers is not None else None
        if asked is not None:
            return min(asked, cap)
        base = self.settings.anthropic_retry_base_s * 2.0 ** (attempt - 1)
        # Full jitter in the upper half: spreads clients out, never waits less than half.
        return min(cap, base * (0.5 + random.random() / 2))  # noqa: S311

    async def complete(
        self,
        *,
        system: Sequence[Mapping[str, Any]],
        messages: Sequence[Mapping[str, Any]],
        tools: Sequence[Mapping[str, Any]] = (),
        tool_choice: Mapping[str, Any] | None = None,
        max_tokens: int = 8192,
    ) -> ModelReply:
        import anthropic

        extra: dict[str, Any] = {}
        if tools:
            extra["tools"] = [dict(t) for t in tools]
            if tool_choice is not None:
                extra["tool_choice"] = dict(tool_choice)
        attempts = self.settings.anthropic_max_retries + 1
        for attempt in range(1, attempts + 1):
            self.meter.check()
            try:
                message = await self.client.messages.create(
                    model=self._model,
                    system=[dict(b) for b in system],  # type: ignore[misc]
                    messages=[dict(m) for m in messages],  # type: ignore[misc]
                    max_tokens=max_tokens,
                    **extra,
                )
            except anthropic.APIStatusError as exc:
                status = exc.status_code
                if status not in RETRYABLE_STATUSES:
                    raise ModelAPIError(
                        _refused_text(status, exc.api_message),
                        status=status,
                        api_message=exc.api_message,
                    ) from exc
                if attempt == attempts:
                    raise ModelAPIError(
                        f"{_status_text(status)} after {_attempts(attempts)}",
                        status=status,
                        api_message=exc.api_message,
                    ) from exc
                await self.sleep(self.backoff(attempt, exc.response.headers))
            except anthropic.APIConnectionError as exc:
                what = (
                    "timed out"
                    if isinstance(exc, anthropic.APITimeoutError)
                    else "could not be reached"
                )
                if attempt == attempts:
                    raise ModelUnreachable(
                        f"the model API at {self.base_url} {what} after {_attempts(attempts)}"
                    ) from exc
                await self.sleep(self.backoff(attempt, None))
            except anthropic.APIResponseValidationError as exc:
                raise LLMError(f"the model API answered with an unreadable response: {exc}") from (
                    exc
                )
            else:
                self.meter.add(self._model, usage_from(message.usage))
                return reply_from_message(message)
        raise AssertionError("unreachable: the loop returns or raises")


def model_configured(settings: Settings) -> bool:
    """Whether a model API key is set (jobs that need a model are refused without one)."""
    key = settings.anthropic_api_key
    return key is not None and bool(key.get_secret_value())


def provider_from_settings(
    settings: Settings, meter: Meter, http_client: httpx2.AsyncClient | None = None
) -> ModelProvider | None:
    """The configured model provider, or None when no API key is set."""
    if not model_configured(settings):
        return None
    return AnthropicProvider(settings, meter, http_client=http_client)

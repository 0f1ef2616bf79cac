"""The Anthropic provider, driven through the real SDK against a scripted HTTP fake."""

from __future__ import annotations

import email.utils
import time
from typing import Any

import anthropic
import httpx2
import pytest

from bot.llm import (
    AnthropicProvider,
    BudgetExceeded,
    LLMError,
    Meter,
    ModelAPIError,
    Usage,
    provider_from_settings,
    retry_after_seconds,
)
from bot.settings import DEFAULT_ANTHROPIC_MODEL, FALLBACK_MODEL_PRICE, MODEL_PRICES, Settings
from tests.fakes.messages_api import (
    ScriptedMessagesAPI,
    connection_error,
    error_reply,
    text_reply,
    timeout_error,
    tool_use_reply,
    usage,
)

SYSTEM = [{"type": "text", "text": "You are a test."}]
HELLO = [{"role": "user", "content": "hello"}]


@pytest.fixture(autouse=True)
def _no_anthropic_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "ANTHROPIC_API_KEY",
        "ANTHROPIC_MODEL",
        "ANTHROPIC_BASE_URL",
        "ANTHROPIC_AUTH_TOKEN",
    ):
        monkeypatch.delenv(name, raising=False)


def make_settings(**overrides: Any) -> Settings:
    values: dict[str, Any] = {"anthropic_api_key": "sk-ant-test"}
    values.update(overrides)
    return Settings(**values)


async def ask(provider: AnthropicProvider, **kwargs: Any) -> Any:
    return await provider.complete(system=SYSTEM, messages=HELLO, **kwargs)


# --------------------------------------------------------------------------- replies


async def test_text_reply_is_converted() -> None:
    api = ScriptedMessagesAPI().add(text_reply("hi there"))
    reply = await ask(api.provider())
    assert reply.text == "hi there"
    assert reply.tool_calls == []
    assert reply.stop_reason == "end_turn"
    assert reply.content == [{"type": "text", "text": "hi there"}]
    body = api.bodies[0]
    assert body["model"] == DEFAULT_ANTHROPIC_MODEL
    assert body["system"] == SYSTEM
    assert body["messages"] == HELLO
    assert "tools" not in body and "tool_choice" not in body


async def test_tool_use_reply_keeps_blocks_to_send_back() -> None:
    api = ScriptedMessagesAPI().add(
        tool_use_reply(("read_file", {"path": "src/index.ts"}), text="Reading.", thinking=True)
    )
    tools = [{"name": "read_file", "input_schema": {"type": "object"}}]
    reply = await ask(api.provider(), tools=tools, tool_choice={"type": "auto"})
    assert reply.text == "Reading."
    assert [(c.name, c.input) for c in reply.tool_calls] == [
        ("read_file", {"path": "src/index.ts"})
    ]
    assert reply.stop_reason == "tool_use"
    kinds = [b["type"] for b in reply.content]
    assert kinds == ["thinking", "text", "tool_use"]
    assert reply.content[0] == {"type": "thinking", "thinking": "", "signature": "sig-fake"}
    assert reply.content[2]["id"] == reply.tool_calls[0].id
    assert api.bodies[0]["tools"] == tools
    assert api.bodies[0]["tool_choice"] == {"type": "auto"}


async def test_content_goes_back_to_the_api_as_is() -> None:
    api = ScriptedMessagesAPI().add(
        tool_use_reply(("list_files", {}), thinking=True), text_reply("done")
    )
    provider = api.provider()
    tools = [{"name": "list_files", "input_schema": {"type": "object"}}]
    first = await ask(provider, tools=tools)
    result = {"type": "tool_result", "tool_use_id": first.tool_calls[0].id, "content": "[]"}
    messages = [*HELLO, {"role": "assistant", "content": first.content}]
    messages.append({"role": "user", "content": [result]})
    await provider.complete(system=SYSTEM, messages=messages, tools=tools)
    assert api.bodies[1]["messages"][1] == {"role": "assistant", "content": first.content}


# --------------------------------------------------------------------------- usage and cost


async def test_usage_and_cost_are_summed_per_job() -> None:
    settings = make_settings()
    meter = Meter(settings)
    api = ScriptedMessagesAPI().add(
        text_reply("a", usage_=usage(1000, 200, cache_creation_input_tokens=3000)),
        text_reply("b", usage_=usage(100, 300, cache_read_input_tokens=3000)),
    )
    provider = api.provider(settings=settings, meter=meter)
    first = await ask(provider)
    second = await ask(provider)
    assert first.usage == Usage(1000, 200, 3000, 0)
    assert second.usage == Usage(100, 300, 0, 3000)
    assert meter.calls == 2
    assert meter.usage == Usage(1100, 500, 3000, 3000)
    assert meter.usage.cache_share == pytest.approx(3000 / 7100)
    price = MODEL_PRICES[DEFAULT_ANTHROPIC_MODEL]
    expected = (
        1100 * price.input + 500 * price.output + 3000 * price.cache_write + 3000 * price.cache_read
    ) / 1_000_000
    assert meter.cost_usd == pytest.approx(expected)


def test_price_table_lookup() -> None:
    settings = make_settings()
    assert settings.price_of("claude-opus-4-5-20251101") == MODEL_PRICES["claude-opus-4-5"]
    assert settings.price_of("claude-sonnet-5-5") == MODEL_PRICES["claude-sonnet-5-5"]
    # Unknown ids are charged at the dearest row, so the budget stops early, not late.
    assert settings.price_of("some-proxy-alias") == FALLBACK_MODEL_PRICE
    assert DEFAULT_ANTHROPIC_MODEL in MODEL_PRICES


async def test_token_budget_stops_before_the_call() -> None:
    settings = make_settings(job_budget_tokens=1000)
    meter = Meter(settings)
    meter.add(DEFAULT_ANTHROPIC_MODEL, Usage(input_tokens=900, output_tokens=100))
    api = ScriptedMessagesAPI()
    with pytest.raises(BudgetExceeded, match=r"token budget of 1,000 reached \(used 1,000\)"):
        await ask(api.provider(settings=settings, meter=meter))
    assert api.bodies == []


async def test_cost_budget_stops_the_next_call() -> None:
    settings = make_settings(job_budget_usd=0.01)
    meter = Meter(settings)
    api = ScriptedMessagesAPI().add(text_reply("pricey", usage_=usage(1000, 1000)))
    provider = api.provider(settings=settings, meter=meter)
    await ask(provider)  # 1000 in + 1000 out on the default model: $0.012
    with pytest.raises(BudgetExceeded, match=r"cost budget of \$0\.01 reached \(\$0\.0120\)"):
        await ask(provider)
    assert len(api.bodies) == 1
    assert isinstance(BudgetExceeded("x"), LLMError)


# --------------------------------------------------------------------------- retries


async def test_429_honours_retry_after_then_succeeds() -> None:
    api = ScriptedMessagesAPI().add(error_reply(429, retry_after=7), text_reply("ok"))
    reply = await ask(api.provider())
    assert reply.text == "ok"
    assert api.delays == [7.0]
    assert len(api.bodies) == 2


async def test_retry_after_is_capped() -> None:
    settings = make_settings(anthropic_retry_cap_s=30)
    api = ScriptedMessagesAPI().add(error_reply(429, retry_after=3600), text_reply("ok"))
    await ask(api.provider(settings=settings))
    assert api.delays == [30.0]


async def test_retry_after_as_http_date() -> None:
    before = time.time()
    at = int(before + 20)  # an HTTP date has whole seconds
    when = email.utils.formatdate(at, usegmt=True)
    api = ScriptedMessagesAPI().add(error_reply(503, retry_after=when), text_reply("ok"))
    await ask(api.provider())
    after = time.time()
    # The wait is that date less the clock when the answer came, whenever that was between
    # the two looks (a loaded machine may take seconds over the request).
    assert at - after - 0.01 <= api.delays[0] <= at - before + 0.01


def test_retry_after_parsing() -> None:
    assert retry_after_seconds(httpx2.Headers({"retry-after": "2.5"})) == 2.5
    assert retry_after_seconds(httpx2.Headers({"retry-after-ms": "1500"})) == 1.5
    assert retry_after_seconds(httpx2.Headers({"retry-after": "soon"})) is None
    assert retry_after_seconds(httpx2.Headers({})) is None
    past = email.utils.formatdate(time.time() - 60, usegmt=True)
    assert retry_after_seconds(httpx2.Headers({"retry-after": past})) == 0.0


async def test_529_three_times_is_a_clear_failure() -> None:
    settings = make_settings(anthropic_max_retries=2)
    api = ScriptedMessagesAPI().add(error_reply(529), error_reply(529), error_reply(529))
    with pytest.raises(ModelAPIError) as info:
        await ask(api.provider(settings=settings))
    assert str(info.value) == "the model API is overloaded (529) after 3 attempts"
    assert info.value.status == 529
    assert len(api.bodies) == settings.anthropic_max_retries + 1
    assert len(api.delays) == 2
    # Exponential backoff with jitter, bounded by the cap.
    base = settings.anthropic_retry_base_s
    assert base / 2 <= api.delays[0] <= base
    assert base <= api.delays[1] <= 2 * base


async def test_backoff_never_exceeds_the_cap() -> None:
    settings = make_settings(anthropic_retry_base_s=10, anthropic_retry_cap_s=12)
    provider = ScriptedMessagesAPI().provider(settings=settings)
    assert all(provider.backoff(n, None) <= 12 for n in range(1, 10))


async def test_500_then_success() -> None:
    api = ScriptedMessagesAPI().add(error_reply(500), text_reply("recovered"))
    reply = await ask(api.provider())
    assert reply.text == "recovered"
    assert len(api.bodies) == 2 and len(api.delays) == 1


async def test_connection_errors_are_retried_then_reported() -> None:
    settings = make_settings(anthropic_max_retries=1)
    api = ScriptedMessagesAPI().add(connection_error(), text_reply("back"))
    assert (await ask(api.provider(settings=settings))).text == "back"

    api = ScriptedMessagesAPI().add(timeout_error(), timeout_error())
    with pytest.raises(LLMError, match="timed out after 2 attempts"):
        await ask(api.provider(settings=settings))


async def test_401_fails_at_once() -> None:
    api = ScriptedMessagesAPI().add(error_reply(401, "invalid x-api-key"))
    with pytest.raises(ModelAPIError) as info:
        await ask(api.provider())
    assert str(info.value).startswith("the API key was refused (401)")
    assert info.value.status == 401
    assert len(api.bodies) == 1 and api.delays == []


async def test_400_fails_at_once_with_the_api_message() -> None:
    api = ScriptedMessagesAPI().add(error_reply(400, "max_tokens: too large"))
    with pytest.raises(ModelAPIError, match=r"rejected the request \(400\): max_tokens: too large"):
        await ask(api.provider())
    assert len(api.bodies) == 1


async def test_running_out_of_script_is_a_clear_assertion() -> None:
    api = ScriptedMessagesAPI()
    with pytest.raises(LLMError) as info:
        await ask(api.provider(settings=make_settings(anthropic_max_retries=0)))
    cause: BaseException | None = info.value
    while cause is not None and not isinstance(cause, AssertionError):
        cause = cause.__cause__
    assert cause is not None and "ran out of replies at request 1" in str(cause)
    with pytest.raises(AssertionError, match="ran out of replies at request 1"):
        api.assert_done()


# --------------------------------------------------------------------------- settings


async def test_base_url_is_honoured() -> None:
    settings = make_settings(anthropic_base_url="https://llm-proxy.internal.example/anthropic")
    api = ScriptedMessagesAPI().add(text_reply("via proxy"))
    await ask(api.provider(settings=settings))
    url = api.requests[0].url
    assert url.host == "llm-proxy.internal.example"
    assert url.path == "/anthropic/v1/messages"
    assert api.requests[0].headers["authorization"] == "Bearer sk-ant-test"


async def test_base_url_defaults_to_anthropic_even_with_env(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    api = ScriptedMessagesAPI().add(text_reply("ok"))
    provider = api.provider(settings=make_settings())
    monkeypatch.setenv("ANTHROPIC_BASE_URL", "https://not-from-settings.example")
    await ask(provider)
    assert api.requests[0].url.host == "api.anthropic.com"


async def test_model_default_and_override(monkeypatch: pytest.MonkeyPatch) -> None:
    api = ScriptedMessagesAPI().add(text_reply("a"), text_reply("b"), text_reply("c"))
    assert api.provider(settings=make_settings()).model == DEFAULT_ANTHROPIC_MODEL

    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-env")
    monkeypatch.setenv("ANTHROPIC_MODEL", "claude-haiku-5-5")
    settings = Settings()
    provider = api.provider(settings=settings)
    assert provider.model == "claude-haiku-5-5"
    await ask(provider)
    assert api.bodies[-1]["model"] == "claude-haiku-5-5"
    assert api.requests[-1].headers["authorization"] == "Bearer sk-ant-env"

    await ask(api.provider(settings=settings, model="claude-opus-5-5"))
    assert api.bodies[-1]["model"] == "claude-opus-5-5"


def test_timeouts_are_explicit_and_sdk_retries_off() -> None:
    settings = make_settings(anthropic_timeout_s=123, anthropic_connect_timeout_s=4)
    provider = ScriptedMessagesAPI().provider(settings=settings)
    timeout = provider.client.timeout
    assert isinstance(timeout, httpx2.Timeout)
    assert (timeout.connect, timeout.read) == (4, 123)
    assert provider.client.max_retries == 0
    assert isinstance(provider.client, anthropic.AsyncAnthropic)


def test_provider_from_settings() -> None:
    settings = Settings()
    assert provider_from_settings(settings, Meter(settings)) is None
    settings = make_settings()
    provider = provider_from_settings(settings, Meter(settings))
    assert provider is not None
    assert (provider.name, provider.model) == ("anthropic", DEFAULT_ANTHROPIC_MODEL)

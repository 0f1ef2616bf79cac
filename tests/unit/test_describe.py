"""spec_from_description: whole-word prose rules, spec blocks, bounds and determinism."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from bot.spec.keywords import VERB_KIND, VOCAB, stem
from bot.spec.schema import (
    COMPONENT_NAME,
    CORE_SERVICE_TYPES,
    ENV_NAME,
    MAX_ACTIONS,
    MAX_COMPONENT_NAME_LENGTH,
    MAX_DESCRIPTION_LENGTH,
    MAX_ENVIRONMENT,
    MAX_PARAMETERS,
    RESERVED_METHOD_NAMES,
    PluginSpec,
    SpecError,
    check_npm_name,
    kebab,
    validate_spec,
    words,
)
from bot.spec.writers import MAX_INPUT_CHARS, KeywordSpecWriter, SpecWriter, spec_from_description

REPO = Path(__file__).resolve().parents[2]


def names(spec: PluginSpec) -> dict[str, list[str]]:
    return {
        "actions": [a.name for a in spec.actions],
        "providers": [p.name for p in spec.providers],
        "services": [s.name for s in spec.services],
        "evaluators": [e.name for e in spec.evaluators],
    }


def all_names(spec: PluginSpec) -> list[str]:
    return [c.name for _kind, c in spec.components()]


def env(spec: PluginSpec) -> dict[str, tuple[bool, bool]]:
    return {v.name: (v.required, v.sensitive) for v in spec.environment}


def assert_sound(spec: PluginSpec) -> None:
    """Everything the schema promises, checked independently of the parser."""
    check_npm_name(spec.name)
    assert spec.components(), "never an empty plugin"
    seen: set[str] = set()
    for _kind, component in spec.components():
        assert COMPONENT_NAME.fullmatch(component.name)
        assert len(component.name) <= MAX_COMPONENT_NAME_LENGTH
        for key in {component.name.lower(), kebab(component.name)}:
            assert key not in seen
            seen.add(key)
    for service in spec.services:
        assert not {kebab(service.name), "_".join(words(service.name))} & CORE_SERVICE_TYPES
        for method in service.methods:
            assert method.name.lower() not in RESERVED_METHOD_NAMES
    for var in spec.environment:
        assert ENV_NAME.fullmatch(var.name)
    assert validate_spec(spec.model_dump()) == spec


# ----------------------------------------------------------------- substring traps


def test_todo_does_not_ask_for_a_do_action() -> None:
    spec = spec_from_description("a todo list plugin that lets users add tasks")
    assert spec.name == "plugin-todo-list"
    assert names(spec) == {
        "actions": ["AddTasks"],
        "providers": [],
        "services": [],
        "evaluators": [],
    }


@pytest.mark.parametrize(
    "text",
    [
        "a to-do list plugin that lets users add tasks",
        "a to do list plugin that lets users add tasks",
        "a todos plugin that lets users add tasks",
    ],
)
def test_spelled_out_todo_is_not_do(text: str) -> None:
    spec = spec_from_description(text)
    assert names(spec)["actions"] == ["AddTasks"]
    assert not any(n.startswith(("Do", "Execute")) for n in all_names(spec))


def test_update_is_not_data() -> None:
    spec = spec_from_description("a plugin that can update user profiles")
    assert names(spec) == {
        "actions": ["UpdateUserProfiles"],
        "providers": [],
        "services": [],
        "evaluators": [],
    }


@pytest.mark.parametrize(
    ("text", "actions"),
    [
        ("a plugin that lets users undo edits and send notes", ["SendNotes"]),
        ("a plugin that shows image metadata", ["ShowImageMetadata"]),
        ("a plugin that posts a rundown of the news", ["PostRundown"]),
        ("a plugin that calculates medication dosage", ["CalculateMedicationDosage"]),
        ("a plugin that lists databases", ["ListDatabases"]),
        ("a plugin that sends contextual tips", ["SendContextualTips"]),
        ("a plugin that greets runners and reporters", ["GreetRunners"]),
        ("a plugin that shows the scoreboard", ["ShowScoreboard"]),
        ("a plugin that posts updates about doughnuts", ["PostUpdates"]),
    ],
)
def test_words_inside_words_trigger_nothing(text: str, actions: list[str]) -> None:
    spec = spec_from_description(text)
    assert names(spec) == {
        "actions": actions,
        "providers": [],
        "services": [],
        "evaluators": [],
    }


GLUABLE = sorted(VOCAB - {"keep", "look", "long", "real", "get"})
glued_keyword = st.builds(
    lambda prefix, word, suffix: f"{prefix}{word}{suffix}",
    st.sampled_from(["", "un", "meta", "x", "re", "zz", "q"]),
    st.sampled_from(GLUABLE),
    st.sampled_from(["", "x", "zz", "q"]),
).filter(lambda glued: glued not in VOCAB)  # data only: never filter on the code under test


@settings(max_examples=200, deadline=None)
@given(glued_keyword)
def test_a_keyword_inside_a_token_is_not_that_keyword(word: str) -> None:
    """Any keyword with letters glued on is a plain word: only the fallback pair appears."""
    spec = spec_from_description(f"a plugin that can {word} stuff")
    assert not spec.services and not spec.evaluators
    assert len(spec.actions) == 1 and spec.actions[0].name.startswith("Get")
    assert len(spec.providers) == 1


IRREGULAR = frozenset({"sent", "did", "does", "done", "doing", "ran", "got"})
# Words near the vocabulary (a keyword with an ending, or letters glued on), so stem()
# has something to strip in many examples, and arbitrary words besides.
near_vocabulary = st.builds(
    lambda prefix, base, suffix: f"{prefix}{base}{suffix}",
    st.sampled_from(["", "x", "un", "re", "meta"]),
    st.sampled_from(sorted(VOCAB)),
    st.sampled_from(["", "s", "es", "ed", "d", "ing", "ies", "er", "x", "ly"]),
)


@settings(max_examples=300)
@given(st.one_of(near_vocabulary, st.from_regex(r"[a-z]{1,14}", fullmatch=True)))
def test_inflections_only_strip_suffixes(word: str) -> None:
    assume(word not in IRREGULAR)
    base = stem(word)
    # Only an ending comes off (with y->ies, e->ing): never a prefix or a middle.
    assert word.startswith(base[:-1]), (word, base)
    assert len(word) - len(base) <= 4, (word, base)
    if base != word and base in VOCAB:
        assert len(base) >= 3 or base == "do", (word, base)


@pytest.mark.parametrize(
    ("word", "base"),
    [
        ("reports", "report"),
        ("reported", "report"),
        ("reporting", "report"),
        ("scheduling", "schedule"),
        ("polling", "poll"),
        ("running", "run"),
        ("classifies", "classify"),
        ("watches", "watch"),
        ("judges", "judge"),
        ("does", "do"),
        ("sent", "send"),
        ("dos", "dos"),
        ("todo", "todo"),
        ("undo", "undo"),
        ("update", "update"),
        ("metadata", "metadata"),
        ("rundown", "rundown"),
        ("status", "status"),
        ("news", "news"),
    ],
)
def test_stem(word: str, base: str) -> None:
    assert stem(word) == base


# ----------------------------------------------------------------- prose rules


def test_weather_example() -> None:
    spec = spec_from_description("a weather plugin that reports the current temperature for a city")
    assert spec.name == "plugin-weather"
    assert spec.description == "a weather plugin that reports the current temperature for a city"
    assert names(spec)["actions"] == ["ReportCurrentTemperature"]
    (action,) = spec.actions
    assert [(p.name, p.type, p.required) for p in action.parameters] == [("city", "string", True)]
    assert not spec.providers and not spec.services and not spec.evaluators
    assert spec.environment == ()
    assert_sound(spec)


@pytest.mark.parametrize(
    ("text", "kind", "name"),
    [
        # actions: things the agent does when asked
        ("a plugin that sends emails", "actions", "SendEmails"),
        ("a plugin that posts tweets", "actions", "PostTweets"),
        ("a plugin that books flights", "actions", "BookFlights"),
        ("a plugin that translates text", "actions", "TranslateText"),
        ("a plugin that converts currencies", "actions", "ConvertCurrencies"),
        ("a plugin that calculates taxes", "actions", "CalculateTaxes"),
        ("a plugin that fetches stock prices", "actions", "FetchStockPrices"),
        ("a plugin that gets the weather", "actions", "GetWeather"),
        ("a plugin that looks up word definitions", "actions", "LookUpWordDefinitions"),
        ("a plugin that searches recipes", "actions", "SearchRecipes"),
        ("a plugin that notifies the team", "actions", "NotifyTeam"),
        ("a plugin that can do math", "actions", "DoMath"),
        ("a plugin that executes shell commands", "actions", "ExecuteShellCommands"),
        ("a plugin that runs scripts", "actions", "RunScripts"),
        ("a plugin that creates github issues", "actions", "CreateGithubIssues"),
        # providers: context every turn
        ("a plugin that provides the current weather", "providers", "CurrentWeatherProvider"),
        ("a plugin that supplies market data", "providers", "MarketDataProvider"),
        ("a plugin with context about the user's calendar", "providers", "CalendarContextProvider"),
        (
            "a plugin that keeps the agent aware of server status",
            "providers",
            "ServerStatusProvider",
        ),
        (
            "a plugin that gives the agent knowledge about local events",
            "providers",
            "LocalEventsKnowledgeProvider",
        ),
        ("a plugin that shares some information", "actions", "ShareInformation"),
        # services: long-running things
        ("a plugin that monitors website uptime", "services", "MonitorWebsiteUptimeService"),
        ("a plugin that watches a wallet for transfers", "services", "WatchWalletService"),
        ("a plugin that polls an rss feed", "services", "PollRssFeedService"),
        ("a plugin that schedules meetings", "services", "ScheduleMeetingsService"),
        ("a plugin that streams stock quotes", "services", "StreamStockQuotesService"),
        ("a plugin that connects to a mqtt broker", "services", "ConnectMqttBrokerService"),
        ("a plugin that periodically fetches news", "services", "FetchNewsService"),
        ("a plugin that fetches news in the background", "services", "FetchNewsService"),
        ("a plugin that fetches news every hour", "services", "FetchNewsService"),
        ("a service that sends reminders", "services", "SendRemindersService"),
        # evaluators: judge after a conversation
        ("a plugin that evaluates answers", "evaluators", "EvaluateAnswersEvaluator"),
        ("a plugin that assesses risk", "evaluators", "AssessRiskEvaluator"),
        ("a plugin that judges jokes", "evaluators", "JudgeJokesEvaluator"),
        ("a plugin that scores leads", "evaluators", "ScoreLeadsEvaluator"),
        ("a plugin that classifies tickets", "evaluators", "ClassifyTicketsEvaluator"),
        ("a plugin that detects spam", "evaluators", "DetectSpamEvaluator"),
        ("a plugin that extracts contact details", "evaluators", "ExtractContactDetailsEvaluator"),
        ("a plugin that reflects on conversations", "evaluators", "ReflectConversationsEvaluator"),
        (
            "a plugin that analyzes the sentiment of messages",
            "evaluators",
            "AnalyzeSentimentEvaluator",
        ),
        ("after each conversation, summarize it", "evaluators", "SummarizeConversationEvaluator"),
    ],
)
def test_each_kind_is_triggered_by_its_words(text: str, kind: str, name: str) -> None:
    spec = spec_from_description(text)
    assert names(spec)[kind] == [name], names(spec)
    assert all_names(spec) == [name]
    assert_sound(spec)


@pytest.mark.parametrize("verb", ["reports", "reported", "is reporting", "will report"])
def test_inflected_verbs_make_the_same_action(verb: str) -> None:
    spec = spec_from_description(f"a plugin that {verb} bugs")
    assert names(spec)["actions"] == ["ReportBugs"]


def test_nouns_that_look_like_verbs_are_not_actions() -> None:
    spec = spec_from_description("a plugin that sends a daily report with a search link")
    assert all_names(spec) == ["SendDailyReport"]
    assert [p.name for p in spec.actions[0].parameters] == ["searchLink"]


def test_a_request_for_the_plugin_itself_is_not_an_action() -> None:
    spec = spec_from_description("Create an ElizaOS plugin that books tables for a restaurant")
    assert names(spec)["actions"] == ["BookTables"]
    assert [p.name for p in spec.actions[0].parameters] == ["restaurant"]


@pytest.mark.parametrize(
    ("text", "params"),
    [
        ("a plugin that translates text in a given language", [("language", "string")]),
        ("a plugin that searches hotels by city", [("city", "string")]),
        ("a plugin that sends a message with a subject", [("subject", "string")]),
        ("a plugin that fetches the forecast for a number of days", [("days", "number")]),
        ("a plugin that lists posts with a limit", [("limit", "number")]),
        ("a plugin that converts money for a given amount", [("amount", "number")]),
        (
            "a plugin that searches books by author in a given language for a number of days",
            [("author", "string"), ("language", "string"), ("days", "number")],
        ),
        (
            "a plugin that finds flights for a city and country",
            [("city", "string"), ("country", "string")],
        ),
        ("a plugin that fetches prices from coingecko for a given coin", [("coin", "string")]),
        ("a plugin that translates text into french", []),
        ("a plugin that fetches prices for bitcoin", []),
        ("a plugin that fetches news in the background", []),
    ],
)
def test_parameters(text: str, params: list[tuple[str, str]]) -> None:
    spec = spec_from_description(text)
    members = [*spec.actions, *(m for s in spec.services for m in s.methods)]
    assert len(members) == 1
    assert [(p.name, p.type) for p in members[0].parameters] == params


@pytest.mark.parametrize(
    ("text", "name"),
    [
        ("a weather plugin that reports temperature", "plugin-weather"),
        ("A Todo List plugin", "plugin-todo-list"),
        ("my new elizaos weather plugin", "plugin-weather"),
        ("a plugin called weatherbot", "plugin-weatherbot"),
        ("a plugin for pirate speak", "plugin-pirate-speak"),
        ("fetches bitcoin prices", "plugin-fetch-bitcoin-prices"),
        ("hello there", "plugin-hello-there"),
        ("a 3d printer plugin that reports progress", "plugin-3d-printer"),
        ("\uff41 \uff57\uff45\uff41\uff54\uff48\uff45\uff52 plugin", "plugin-weather"),
        ("a café plugin that books tables", "plugin-cafe"),
        ("a plugin", "plugin-custom"),
    ],
)
def test_plugin_name(text: str, name: str) -> None:
    spec = spec_from_description(text)
    assert spec.name == name
    assert_sound(spec)


def test_look_alike_letters_never_reach_the_name() -> None:
    spec = spec_from_description(
        "a w\u0435ather plugin that reports temperature"
    )  # Cyrillic small ie
    assert spec.name.isascii()
    assert_sound(spec)


@pytest.mark.parametrize(
    "text", ["hello", "a pirate speak plugin", "Build me a plugin for pirates"]
)
def test_no_component_words_still_make_a_useful_plugin(text: str) -> None:
    spec = spec_from_description(text)
    assert len(spec.actions) == 1 and spec.actions[0].name.startswith("Get")
    assert len(spec.providers) == 1 and spec.providers[0].name.endswith("Provider")
    assert_sound(spec)


def test_fallback_pair_is_named_after_the_topic() -> None:
    spec = spec_from_description("a pirate speak plugin")
    assert all_names(spec) == ["GetPirateSpeak", "PirateSpeakProvider"]


def test_several_sentences_make_several_components() -> None:
    spec = spec_from_description(
        "A crypto plugin. It periodically checks bitcoin prices and notifies users about big "
        "moves; it also provides market data. After each conversation it rates the advice."
    )
    assert spec.name == "plugin-crypto"
    assert names(spec) == {
        "actions": ["NotifyBigMoves"],
        "providers": ["MarketDataProvider"],
        "services": ["CheckBitcoinPricesService"],
        "evaluators": ["RateAdviceEvaluator"],
    }
    (service,) = spec.services
    assert [m.name for m in service.methods] == ["checkBitcoinPrices"]
    assert_sound(spec)


@pytest.mark.parametrize(
    ("text", "service", "method"),
    [
        # "MessageService" would be @elizaos/core's message_service
        ("a message plugin that works in the background", "PluginMessageService", None),
        ("a plugin that periodically checks messages", "CheckMessagesService", "checkMessages"),
        ("a plugin that periodically sends emails", "SendEmailsService", "sendEmails"),
        # "runTime" would shadow Service's runtime, "runConfig" is fine
        ("a plugin that periodically runs time", "RunTimeService", "runRunTime"),
        ("a plugin that periodically runs config", "RunConfigService", "runConfig"),
    ],
)
def test_services_keep_clear_of_core_types_and_service_members(
    text: str, service: str, method: str | None
) -> None:
    spec = spec_from_description(text)
    assert names(spec)["services"] == [service]
    assert [m.name for m in spec.services[0].methods] == ([method] if method else [])
    assert_sound(spec)


def test_repeated_components_appear_once() -> None:
    spec = spec_from_description("sends emails. Sends emails! SENDS EMAILS")
    assert all_names(spec) == ["SendEmails"]


# ----------------------------------------------------------------- environment


def test_environment_words() -> None:
    spec = spec_from_description(
        "a weather plugin. Requires an OpenWeather API key, a password, credentials, a "
        "secret, a username and a base URL"
    )
    assert env(spec) == {
        "OPENWEATHER_API_KEY": (True, True),
        "WEATHER_PASSWORD": (True, True),
        "WEATHER_CREDENTIALS": (True, True),
        "WEATHER_SECRET": (True, True),
        "WEATHER_USERNAME": (True, False),
        "WEATHER_API_URL": (False, False),
    }


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a weather plugin that needs an api key", {"WEATHER_API_KEY": (True, True)}),
        ("a weather plugin that needs an apikey", {"WEATHER_API_KEY": (True, True)}),
        ("a github plugin that needs a token", {"GITHUB_TOKEN": (True, True)}),
        ("a discord plugin using a bot token", {"DISCORD_BOT_TOKEN": (True, True)}),
        ("a slack plugin using a webhook url", {"SLACK_WEBHOOK_URL": (True, True)}),
        ("a spotify plugin with a client secret", {"SPOTIFY_CLIENT_SECRET": (True, True)}),
        ("a weather plugin with a configurable endpoint", {"WEATHER_API_URL": (False, False)}),
        ("a 3d printer plugin with an api key", {"PLUGIN_3D_PRINTER_API_KEY": (True, True)}),
        # not credentials
        ("a crypto plugin that fetches token prices", {}),
        ("a plugin that fetches the price of a crypto token", {}),
        ("a secret santa plugin", {}),
        ("a plugin that summarizes a url", {}),
        ("a plugin that lists key features", {}),
    ],
)
def test_environment_detection(text: str, expected: dict[str, tuple[bool, bool]]) -> None:
    spec = spec_from_description(text)
    assert env(spec) == expected
    assert_sound(spec)


# ----------------------------------------------------------------- spec blocks

BLOCK_SPEC = {
    "name": "@acme/plugin-weather",
    "description": "Weather for the agent.",
    "version": "1.2.3",
    "actions": [
        {
            "name": "GetWeather",
            "description": "Get the weather.",
            "parameters": [{"name": "city", "description": "The city."}],
            "similes": ["WeatherNow"],
        }
    ],
    "providers": [{"name": "WeatherProvider", "description": "Current weather."}],
    "services": [
        {
            "name": "WeatherService",
            "description": "Polls.",
            "methods": [{"name": "refresh", "description": "Refresh.", "returns": "void"}],
        }
    ],
    "evaluators": [{"name": "WeatherEvaluator", "description": "Judges.", "always_run": True}],
    "dependencies": ["zod"],
    "environment": [{"name": "WEATHER_API_KEY", "description": "Key.", "sensitive": True}],
}

YAML_SPEC = """\
name: "@acme/plugin-weather"
description: Weather for the agent.
version: 1.2.3
actions:
  - name: GetWeather
    description: Get the weather.
    parameters:
      - name: city
        description: The city.
    similes: [WeatherNow]
providers:
  - name: WeatherProvider
    description: Current weather.
services:
  - name: WeatherService
    description: Polls.
    methods:
      - {name: refresh, description: Refresh., returns: void}
evaluators:
  - name: WeatherEvaluator
    description: Judges.
    always_run: true
dependencies: [zod]
environment:
  - name: WEATHER_API_KEY
    description: Key.
    sensitive: true
"""


@pytest.mark.parametrize("fence", ["```json", "```JSON", "```", "``` json"])
def test_fenced_json_spec(fence: str) -> None:
    text = f"/create-plugin please\n{fence}\n{json.dumps(BLOCK_SPEC, indent=2)}\n```\nthanks!"
    assert spec_from_description(text) == validate_spec(BLOCK_SPEC)


@pytest.mark.parametrize("fence", ["```yaml", "```yml", "```YAML", "```"])
def test_fenced_yaml_spec(fence: str) -> None:
    text = f"Here it is:\n\n{fence}\n{YAML_SPEC}```\n"
    assert spec_from_description(text) == validate_spec(BLOCK_SPEC)


def test_fence_with_an_info_string() -> None:
    text = f"```yaml title=spec.yaml\n{YAML_SPEC}```\n"
    assert spec_from_description(text) == validate_spec(BLOCK_SPEC)


def test_adverbs_before_a_verb_do_not_make_it_a_noun() -> None:
    spec = spec_from_description("a plugin that first fetches prices and then posts them")
    # "them" is no object, so the second action is named after the topic
    assert spec.name == "plugin-fetch-prices"
    assert names(spec)["actions"] == ["FetchPrices", "PostFetchPrices"]


def test_wrapped_lines_stay_one_sentence_and_list_items_split() -> None:
    spec = spec_from_description(
        "a weather plugin that reports the temperature\nfor a city.\n\n- sends alerts\n"
        "- posts updates"
    )
    assert all_names(spec) == ["ReportTemperature", "SendAlerts", "PostUpdates"]
    assert [p.name for p in spec.actions[0].parameters] == ["city"]


def test_crlf_comment_with_a_block() -> None:
    text = f"Here it is:\r\n```yaml\r\n{YAML_SPEC.replace(chr(10), chr(13) + chr(10))}```\r\n"
    assert spec_from_description(text) == validate_spec(BLOCK_SPEC)


def test_only_the_first_spec_block_counts_and_other_languages_are_skipped() -> None:
    second = {**BLOCK_SPEC, "name": "plugin-other"}
    text = (
        "```ts\nconst notASpec = 1;\n```\n"
        f"```json\n{json.dumps(BLOCK_SPEC)}\n```\n"
        f"```json\n{json.dumps(second)}\n```\n"
    )
    assert spec_from_description(text).name == "@acme/plugin-weather"


def test_other_language_blocks_are_not_prose() -> None:
    text = "a weather plugin that reports temperature\n```python\nsend(); provide(data)\n```"
    spec = spec_from_description(text)
    assert all_names(spec) == ["ReportTemperature"]
    assert "provide" not in spec.description


def test_missing_description_comes_from_the_prose() -> None:
    block = {k: v for k, v in BLOCK_SPEC.items() if k != "description"}
    text = f"A plugin\x00 that\u202e tells the weather.\n```json\n{json.dumps(block)}\n```\n"
    spec = spec_from_description(text)
    assert spec.description == "A plugin that tells the weather."


def test_missing_description_and_no_prose_names_the_field() -> None:
    block = {k: v for k, v in BLOCK_SPEC.items() if k != "description"}
    with pytest.raises(SpecError) as info:
        spec_from_description(f"```json\n{json.dumps(block)}\n```")
    assert info.value.problems == ["description: Field required"]


def test_invalid_block_reports_every_field() -> None:
    bad = {
        **BLOCK_SPEC,
        "name": "../evil",
        "actions": [{"name": "Get_Weather", "description": "x"}],
        "dependencies": ["left-pad"],
        "surprise": True,
    }
    with pytest.raises(SpecError) as info:
        spec_from_description(f"```json\n{json.dumps(bad)}\n```")
    fields = sorted(p.split(":")[0] for p in info.value.problems)
    assert fields == ["actions.0.name", "dependencies", "name", "surprise"]


def test_block_dependencies_use_the_given_allow_list() -> None:
    spec = {**BLOCK_SPEC, "dependencies": ["left-pad"]}
    text = f"```json\n{json.dumps(spec)}\n```"
    with pytest.raises(SpecError) as info:
        spec_from_description(text)
    assert info.value.problems[0].startswith("dependencies: 'left-pad' is not an allowed")
    assert spec_from_description(text, {"left-pad": "^1.3.0"}).dependencies == ("left-pad",)
    with pytest.raises(SpecError):
        spec_from_description(f"```json\n{json.dumps(BLOCK_SPEC)}\n```", {})


@pytest.mark.parametrize(
    ("block", "expected"),
    [
        (
            '```json\n{"name": "plugin-x",\n "description": "d" "x"}\n```',
            "spec: invalid JSON at line 2, column 21 of the ```json block: Expecting ',' delimiter",
        ),
        (
            "```yaml\nname: plugin-x\nactions: [unclosed\n```",
            "spec: invalid YAML at line 2, column 19 of the ```yaml block: while parsing a "
            "flow sequence; expected ',' or ']', but got '<stream end>'",
        ),
        ("```yaml\n- a\n- b\n```", "must be a mapping of fields"),
        (
            "```json\n42\n```",
            "must be a mapping of fields (name, description, actions, ...), not int",
        ),
        ("```yaml\njust text\n```", "not str"),
        ("```\n\n```", "spec: the ``` block is empty"),
        ("```yaml\na: &x [1]\nb: *x\n```", "aliases (*name) are not allowed"),
        ("```yaml\nname: a\nname: b\n```", "key 'name' appears twice"),
        ('```json\n{"name": "a", "name": "b"}\n```', "key 'name' appears twice"),
        ("```yaml\ndependencies: !!set {zod, uuid}\n```", "not set"),
        ("```yaml\nname: !!binary cGx1Z2lu\n```", "not bytes"),
        ("```yaml\nversion: 2024-01-01\n```", "not date"),
        ("```yaml\n1: x\n```", "keys in the ```yaml block must be text"),
        (
            "```yaml\n!!python/object/apply:os.system [echo hi]\n```",
            "could not determine a constructor",
        ),
        ("```\n" + "[" * 5000 + "\n```", "nested too deeply"),
        ("```yaml\n" + "[" * 5000 + "\n```", "nested too deeply"),
        ('```json\n{"version": ' + "9" * 5000 + "}\n```", "can't be read"),
        ("```yaml\nversion: " + "9" * 5000 + "\n```", "can't be read"),
    ],
)
def test_unreadable_blocks(block: str, expected: str) -> None:
    with pytest.raises(SpecError) as info:
        spec_from_description(block)
    assert len(info.value.problems) == 1
    assert expected in info.value.problems[0]
    assert info.value.problems[0].startswith("spec: ")


def test_unclosed_block_runs_to_the_end() -> None:
    spec = spec_from_description("```yaml\n" + YAML_SPEC)
    assert spec == validate_spec(BLOCK_SPEC)


def test_inline_backticks_are_prose() -> None:
    spec = spec_from_description("a plugin that sends `hello` messages")
    assert all_names(spec) == ["SendHelloMessages"]


# ----------------------------------------------------------------- hostile text


@pytest.mark.parametrize("text", ["", "   \n\t ", "\x00\x01\x7f", "\u202e\u200b"])
def test_empty_text_is_refused(text: str) -> None:
    with pytest.raises(SpecError) as info:
        spec_from_description(text)
    assert info.value.problems[0].startswith("description: is empty")


@pytest.mark.parametrize("text", ["!!! ???", "🙂🙂🙂", "……", "ДЕЛАТЬ"])
def test_text_without_ascii_words_is_refused(text: str) -> None:
    with pytest.raises(SpecError) as info:
        spec_from_description(text)
    assert info.value.problems == [
        "description: has no words (letters or digits) to make a plugin from"
    ]


def test_not_text_is_refused() -> None:
    with pytest.raises(SpecError):
        spec_from_description(b"a weather plugin")  # type: ignore[arg-type]


def test_control_and_invisible_characters_leave_the_description() -> None:
    text = (
        "a weather\x00 plugin\x1b[31m that\u202e reports\u200b temperature\r\nfor\x85a\tcity\ud800"
    )
    spec = spec_from_description(text)
    assert spec.description == "a weather plugin[31m that reports temperature for a city"
    assert spec.name == "plugin-weather"
    assert names(spec)["actions"] == ["ReportTemperature"]
    assert [p.name for p in spec.actions[0].parameters] == ["city"]


@pytest.mark.parametrize("char", ["\ue000", "\U000f0000", "\u2066", "\ufeff", "\u200d", "\x9b"])
def test_private_use_and_format_characters_are_dropped(char: str) -> None:
    spec = spec_from_description(f"a weather{char} plugin that reports{char} temperature")
    assert spec.description == "a weather plugin that reports temperature"
    assert names(spec)["actions"] == ["ReportTemperature"]
    assert_sound(spec)


@pytest.mark.parametrize("sep", ["\u2028", "\u2029", "\x85", "\r", "\r\n"])
def test_line_separators_are_line_breaks(sep: str) -> None:
    spec = spec_from_description(f"a weather plugin that reports temperature{sep}for a city")
    assert spec.description == "a weather plugin that reports temperature for a city"
    assert [p.name for p in spec.actions[0].parameters] == ["city"]


def test_huge_input_is_bounded() -> None:
    sentence = "a weather plugin that reports the temperature for a city and sends alerts. "
    text = sentence * (20_000_000 // len(sentence))
    spec = spec_from_description(text)  # how long this takes: benchmarks/describe_bounds.py
    assert len(spec.description) <= MAX_DESCRIPTION_LENGTH
    assert spec.name == "plugin-weather"
    assert all_names(spec) == ["ReportTemperature", "SendAlerts"]


@pytest.mark.parametrize(
    "text",
    [
        "```\n" * 200_000,
        "```yaml\n" + "a: b\n" * 1_000_000,
        "```yaml\n" + "".join(f"k{i}: [v, {{x: y}}]\n" for i in range(100_000)),
        "a" * 5_000_000,
        ("send " * 1_000_000),
        ("for a " * 1_000_000),
        ("x" * 100 + " ") * 100_000,
    ],
)
def test_hostile_shapes_give_a_sound_spec_or_a_spec_error(text: str) -> None:
    # How long each takes is measured in benchmarks/describe_bounds.py, not asserted here.
    try:
        spec = spec_from_description(text)
    except SpecError as exc:
        assert exc.problems
    else:
        assert_sound(spec)


def test_bounds_of_the_schema_hold() -> None:
    verbs = sorted(v for v, k in VERB_KIND.items() if k == "action")
    text = ". ".join(f"It {v}s thing{i} for a given city{i}" for i, v in enumerate(verbs))
    spec = spec_from_description(text)
    assert len(spec.actions) == MAX_ACTIONS
    assert_sound(spec)


def test_long_words_keep_names_short() -> None:
    spec = spec_from_description("a plugin that sends " + " ".join(["abcdefghijklmnopqrstuvw"] * 3))
    assert all(len(n) <= MAX_COMPONENT_NAME_LENGTH for n in all_names(spec))
    spec = spec_from_description("a plugin that sends " + "x" * 500)
    assert_sound(spec)


def test_many_parameters_are_capped() -> None:
    words = [f"p{chr(97 + i // 26)}{chr(97 + i % 26)}" for i in range(60)]
    text = "a plugin that sends mail " + " ".join(f"by {w}" for w in words)
    spec = spec_from_description(text)
    assert 0 < len(spec.actions[0].parameters) <= MAX_PARAMETERS
    assert_sound(spec)


def test_many_credentials_are_capped() -> None:
    vendors = [f"vendor{chr(97 + i // 26)}{chr(97 + i % 26)}" for i in range(60)]
    text = "a plugin that sends mail. " + " ".join(f"{v} api key," for v in vendors)
    spec = spec_from_description(text)
    assert len(spec.environment) == MAX_ENVIRONMENT
    assert_sound(spec)


# ----------------------------------------------------------------- properties

WORDS = [
    *sorted(VOCAB),
    "a", "the", "for", "by", "in", "with", "and", "or", "that", "plugin", "users", "agent",
    "api", "key", "token", "url", "endpoint", "secret", "every", "hour", "after", "each",
    "conversation", "city", "days", "number", "of", "todo", "undo", "metadata", "rundown",
    "update", "to", "do", "look", "up", "long", "running", "real", "time", ".", ",", ";",
    "\n", "```", "```json", "```yaml", "{", "}", ":", "-", "'", "3d", "x" * 30,
]  # fmt: skip
word_soup = st.lists(st.sampled_from(WORDS), max_size=60).map(" ".join)


def _check(text: str) -> None:
    try:
        first = spec_from_description(text)
    except SpecError as exc:
        assert exc.problems and all(isinstance(p, str) and p for p in exc.problems)
        with pytest.raises(SpecError) as again:
            spec_from_description(text)
        assert again.value.problems == exc.problems
        return
    assert spec_from_description(text) == first
    assert_sound(first)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=400))
def test_any_text_gives_a_spec_or_a_spec_error(text: str) -> None:
    _check(text)


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(word_soup)
def test_any_word_soup_gives_a_spec_or_a_spec_error(text: str) -> None:
    _check(text)


@settings(max_examples=300)
@given(st.text(alphabet=st.characters(codec="ascii"), max_size=300))
def test_prose_with_a_word_always_gives_a_spec(text: str) -> None:
    if "```" in text or not any(c.isalnum() for c in text):
        return
    assert_sound(spec_from_description(text))


@settings(max_examples=100)
@given(st.text(min_size=1, max_size=50), st.text(max_size=50))
def test_json_spec_in_any_surroundings(before: str, after: str) -> None:
    before = before.replace("`", "")
    after = after.replace("`", "")
    text = f"{before}\n```json\n{json.dumps(BLOCK_SPEC)}\n```\n{after}"
    assert spec_from_description(text) == validate_spec(BLOCK_SPEC)


def test_same_result_under_other_hash_seeds() -> None:
    script = (
        "import json, sys\n"
        "from bot.spec.writers import spec_from_description\n"
        "texts = json.load(sys.stdin)\n"
        "print(json.dumps([spec_from_description(t).model_dump() for t in texts]))\n"
    )
    texts = [
        "A crypto plugin. It periodically checks bitcoin prices and notifies users about big "
        "moves; it provides market data. After each conversation it rates the advice.",
        "a weather plugin that reports the current temperature for a city and needs an api "
        "key, a token, a password and a base url",
        "hello",
        " ".join(WORDS),
    ]
    outputs = set()
    for seed in ("0", "1", "4242"):
        result = subprocess.run(
            [sys.executable, "-c", script],
            input=json.dumps(texts),
            capture_output=True,
            text=True,
            cwd=REPO,
            env={**os.environ, "PYTHONHASHSEED": seed},
            check=True,
            timeout=60,
        )
        outputs.add(result.stdout)
    assert len(outputs) == 1


# ----------------------------------------------------------------- writer seam


async def test_keyword_spec_writer() -> None:
    writer = KeywordSpecWriter()
    assert isinstance(writer, SpecWriter)
    text = "a weather plugin that reports the current temperature for a city"
    assert await writer.write(text) == spec_from_description(text)


async def test_keyword_spec_writer_passes_the_allow_list() -> None:
    text = f"```json\n{json.dumps({**BLOCK_SPEC, 'dependencies': ['left-pad']})}\n```"
    with pytest.raises(SpecError):
        await KeywordSpecWriter().write(text)
    spec = await KeywordSpecWriter({"left-pad": "^1.3.0"}).write(text)
    assert spec.dependencies == ("left-pad",)


def test_input_bound_is_larger_than_a_description() -> None:
    assert MAX_INPUT_CHARS >= MAX_DESCRIPTION_LENGTH

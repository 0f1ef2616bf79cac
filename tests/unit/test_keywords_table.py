"""The keyword parser against a table of real descriptions and the specs they ask for.

Rows are written from published ElizaOS plugin descriptions (npm / the elizaos-plugins
registry: plugin-edge-tts, plugin-solana, plugin-browser, plugin-pdf, …) and from the way
people write plugin requests in issues ("Add an action SEND_TIP …"). Each row states what a
maintainer reading the description would expect: the plugin name, every component by kind
and name, each action's parameters with their types, and the environment variables.

``test_table_score`` prints the score (run with ``-s``); every row is also its own test.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from bot.spec.keywords import spec_from_prose
from bot.spec.schema import PluginSpec

Params = tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Row:
    text: str
    name: str
    actions: dict[str, Params] = field(default_factory=dict)
    providers: tuple[str, ...] = ()
    services: tuple[str, ...] = ()
    evaluators: tuple[str, ...] = ()
    env: tuple[str, ...] = ()


S, N = "string", "number"

TABLE: tuple[Row, ...] = (
    # --- requests that name their components (issue style)
    Row(
        "A weather plugin with an action to get the forecast for a city, a provider for current "
        "temperature, a service that caches API responses, and an evaluator that detects locations",
        "plugin-weather",
        {"GetForecast": (("city", S),)},
        ("CurrentTemperatureProvider",),
        ("CacheApiResponsesService",),
        ("DetectLocationsEvaluator",),
    ),
    Row(
        "Add an action SEND_TIP that sends a tip to a user, a provider for wallet balance, and an "
        "evaluator that records tipping requests",
        "plugin-tipping",
        {"SendTip": ()},
        ("WalletBalanceProvider",),
        (),
        ("RecordTippingRequestsEvaluator",),
    ),
    Row(
        "Add an action SEND_TIP (amount: number, recipient) and a provider for wallet balance",
        "plugin-tip",
        {"SendTip": (("amount", N), ("recipient", S))},
        ("WalletBalanceProvider",),
    ),
    Row(
        "an action called searchDocs that takes a query and a number of results",
        "plugin-docs",
        {"SearchDocs": (("query", S), ("results", N))},
    ),
    Row(
        "A plugin called coin-prices with an action GET_PRICE (symbol) and a "
        "provider for market data",
        "plugin-coin-prices",
        {"GetPrice": (("symbol", S),)},
        ("MarketDataProvider",),
    ),
    Row(
        "A todo list plugin with actions ADD_TODO and COMPLETE_TODO and a provider that lists open "
        "todos",
        "plugin-todo-list",
        {"AddTodo": (), "CompleteTodo": ()},
        ("OpenTodosProvider",),
    ),
    Row(
        "A GitHub plugin: an action to create an issue in a repository, an action to comment on a "
        "pull request, and a provider for the repository's open issues. Needs a GITHUB_TOKEN.",
        "plugin-github",
        {"CreateIssue": (("repository", S),), "CommentPullRequest": ()},
        ("RepositoryOpenIssuesProvider",),
        env=("GITHUB_TOKEN",),
    ),
    Row(
        "A Discord plugin with an action SEND_MESSAGE (channel, text) that posts a message to a "
        "channel. Requires DISCORD_BOT_TOKEN.",
        "plugin-discord",
        {"SendMessage": (("channel", S), ("text", S))},
        env=("DISCORD_BOT_TOKEN",),
    ),
    Row(
        "A crypto price plugin: an action GET_TOKEN_PRICE that takes a symbol, and a price alert "
        "service that watches prices",
        "plugin-crypto-price",
        {"GetTokenPrice": (("symbol", S),)},
        services=("PriceAlertService",),
    ),
    Row(
        "A translation plugin with an action TRANSLATE_TEXT that takes a text "
        "and a target language",
        "plugin-translation",
        {"TranslateText": (("text", S), ("language", S))},
    ),
    Row(
        "A facts plugin: an evaluator that extracts facts from conversations and a provider that "
        "supplies the known facts",
        "plugin-facts",
        providers=("KnownFactsProvider",),
        evaluators=("ExtractFactsEvaluator",),
    ),
    Row(
        "A time plugin with a provider that gives the current date and time",
        "plugin-time",
        providers=("CurrentDateProvider",),
    ),
    Row(
        "An RSS plugin with a service that polls a feed every hour and an "
        "action to list the latest "
        "items",
        "plugin-rss",
        {"ListLatestItems": ()},
        services=("PollFeedService",),
    ),
    Row(
        "A moderation plugin with an evaluator that flags toxic messages and an action BAN_USER "
        "(user, reason)",
        "plugin-moderation",
        {"BanUser": (("user", S), ("reason", S))},
        evaluators=("FlagToxicMessagesEvaluator",),
    ),
    Row(
        "Add a reminder plugin: an action SET_REMINDER that takes a message "
        "and a number of minutes, "
        "and a scheduler service that sends due reminders",
        "plugin-reminder",
        {"SetReminder": (("message", S), ("minutes", N))},
        services=("SchedulerService",),
    ),
    Row(
        "A Twitter plugin with an action POST_TWEET (text) and a provider for the timeline. "
        "Needs TWITTER_API_KEY and TWITTER_API_SECRET.",
        "plugin-twitter",
        {"PostTweet": (("text", S),)},
        ("TimelineProvider",),
        env=("TWITTER_API_KEY", "TWITTER_API_SECRET"),
    ),
    Row(
        "Add an action SEND_TIP (takes an amount and a recipient) and a provider for wallet "
        "balance, and an evaluator that records tipping requests",
        "plugin-tipping",
        {"SendTip": (("amount", N), ("recipient", S))},
        ("WalletBalanceProvider",),
        evaluators=("RecordTippingRequestsEvaluator",),
    ),
    Row(
        "A travel plugin with an action BOOK_FLIGHT that takes a city and a date",
        "plugin-travel",
        {"BookFlight": (("city", S), ("date", S))},
    ),
    Row(
        "A travel plugin with an action BOOK_HOTEL (takes a city and a date)",
        "plugin-travel",
        {"BookHotel": (("city", S), ("date", S))},
    ),
    Row(
        "A calculator plugin with an action CALCULATE that takes an expression",
        "plugin-calculator",
        {"Calculate": (("expression", S),)},
    ),
    Row(
        "A wallet plugin with actions GET_BALANCE and TRANSFER_TOKENS (amount: "
        "number, address) and "
        "a wallet service that connects to the chain",
        "plugin-wallet",
        {"GetBalance": (), "TransferTokens": (("amount", N), ("address", S))},
        services=("WalletService",),
    ),
    Row(
        "A sentiment plugin with an evaluator that scores the sentiment of each message and a "
        "provider for the mood of the conversation",
        "plugin-sentiment",
        providers=("MoodProvider",),
        evaluators=("ScoreSentimentEvaluator",),
    ),
    Row(
        "Make a dice plugin with an action ROLL_DICE that takes a number of sides",
        "plugin-dice",
        {"RollDice": (("sides", N),)},
    ),
    Row(
        "A notes plugin with an action to save a note, an action to search notes by keyword, and a "
        "provider for recent notes",
        "plugin-notes",
        {"SaveNote": (), "SearchNotes": (("keyword", S),)},
        ("RecentNotesProvider",),
    ),
    Row(
        "An email plugin: an action SEND_EMAIL (to, subject, body). Set "
        "SMTP_HOST and SMTP_PASSWORD.",
        "plugin-email",
        {"SendEmail": (("to", S), ("subject", S), ("body", S))},
        env=("SMTP_HOST", "SMTP_PASSWORD"),
    ),
    # --- published descriptions that name no component: one action and one provider
    Row(
        "Free text-to-speech using Microsoft Edge TTS - no API key required",
        "plugin-text-to-speech",
        {"GetTextToSpeech": ()},
        ("TextToSpeechProvider",),
    ),
    Row(
        "Solana blockchain integration",
        "plugin-solana-blockchain",
        {"GetSolanaBlockchain": ()},
        ("SolanaBlockchainProvider",),
    ),
    Row(
        "Web scraping capabilities",
        "plugin-web-scraping",
        {"GetWebScraping": ()},
        ("WebScrapingProvider",),
    ),
    Row(
        "PDF processing",
        "plugin-pdf-processing",
        {"GetPdfProcessing": ()},
        ("PdfProcessingProvider",),
    ),
    Row(
        "WhatsApp integration",
        "plugin-whatsapp",
        {"GetWhatsapp": ()},
        ("WhatsappProvider",),
    ),
    Row(
        "Plugin starter for elizaOS",
        "plugin-starter",
        {"GetStarter": ()},
        ("StarterProvider",),
    ),
    # --- published descriptions in prose (the prose reader)
    Row(
        "a weather plugin that reports the current temperature for a city",
        "plugin-weather",
        {"ReportCurrentTemperature": (("city", S),)},
    ),
    Row(
        "Fetches the latest news headlines from NewsAPI; requires a NewsAPI API key",
        "plugin-newsapi",
        {"FetchLatestNewsHeadlines": ()},
        env=("NEWSAPI_API_KEY",),
    ),
    Row(
        "A plugin that translates text into a given language",
        "plugin-translate-text",
        {"TranslateText": (("language", S),)},
    ),
    Row(
        "Monitors wallet balances in the background and alerts users when a balance drops",
        "plugin-wallet-balance",
        {"AlertWalletBalance": ()},
        services=("MonitorWalletBalancesService",),
    ),
)


def observed(spec: PluginSpec) -> Row:
    return Row(
        spec.description,
        spec.name,
        {a.name: tuple((p.name, p.type) for p in a.parameters) for a in spec.actions},
        tuple(p.name for p in spec.providers),
        tuple(s.name for s in spec.services),
        tuple(e.name for e in spec.evaluators),
        tuple(v.name for v in spec.environment),
    )


FIELDS = ("name", "actions", "providers", "services", "evaluators", "env")


def differences(row: Row) -> dict[str, tuple[Any, Any]]:
    got = observed(spec_from_prose(row.text, None))
    return {
        f: (getattr(row, f), getattr(got, f)) for f in FIELDS if getattr(row, f) != getattr(got, f)
    }


def test_the_table_has_at_least_thirty_descriptions() -> None:
    assert len(TABLE) >= 30
    assert len({row.text for row in TABLE}) == len(TABLE)


@pytest.mark.parametrize("row", TABLE, ids=[row.text[:40] for row in TABLE])
def test_description_gives_the_expected_spec(row: Row) -> None:
    assert differences(row) == {}


def test_every_component_has_its_own_description() -> None:
    for row in TABLE:
        spec = spec_from_prose(row.text, None)
        named = [c for _, c in spec.components()]
        if len(named) > 1:
            assert len({c.description for c in named}) == len(named), row.text


DESCRIBED: tuple[tuple[str, str, str], ...] = (
    # (description, component, its expected description)
    (
        "A crypto price plugin: an action GET_TOKEN_PRICE that takes a symbol, and a price alert "
        "service that watches prices",
        "GetTokenPrice",
        "Get the token price.",
    ),
    (
        "Add a reminder plugin: an action SET_REMINDER that takes a message "
        "and a number of minutes, "
        "and a scheduler service that sends due reminders",
        "SetReminder",
        "Set the reminder.",
    ),
    (
        "Add an action SEND_TIP (takes an amount and a recipient) and a provider for wallet "
        "balance, and an evaluator that records tipping requests",
        "SendTip",
        "Send the tip.",
    ),
    (
        "A GitHub plugin: an action to create an issue in a repository, an action to comment on a "
        "pull request, and a provider for the repository's open issues. Needs a GITHUB_TOKEN.",
        "RepositoryOpenIssuesProvider",
        "Provides the repository's open issues.",
    ),
)


@pytest.mark.parametrize(("text", "component", "expected"), DESCRIBED)
def test_component_description_says_what_it_does(text: str, component: str, expected: str) -> None:
    """An action's description is what it does, not its parameter clause ("Takes a symbol.")."""
    spec = spec_from_prose(text, None)
    described = {c.name: c.description for _, c in spec.components()}
    assert described[component] == expected


def test_no_api_key_required_makes_no_variable() -> None:
    spec = spec_from_prose(
        "Free text-to-speech using Microsoft Edge TTS - no API key required", None
    )
    assert spec.environment == ()
    with_key = spec_from_prose("Text-to-speech with ElevenLabs; needs an ElevenLabs API key", None)
    assert [v.name for v in with_key.environment] == ["ELEVENLABS_API_KEY"]


def test_table_score(capsys: pytest.CaptureFixture[str]) -> None:
    rows_right = 0
    fields_right = 0
    for row in TABLE:
        wrong = differences(row)
        rows_right += not wrong
        fields_right += len(FIELDS) - len(wrong)
    total_fields = len(TABLE) * len(FIELDS)
    with capsys.disabled():
        print(
            f"\nkeyword parser table: {rows_right}/{len(TABLE)} descriptions exactly right, "
            f"{fields_right}/{total_fields} fields right ({100 * fields_right / total_fields:.1f}%)"
        )
    assert rows_right == len(TABLE)

"""Slash commands: where they count, what they carry, and the nearest one for a typo.

Where a command counts is decided as GitHub renders the comment (CommonMark + GFM
tables): the hostile table below holds comments the line scanner this replaced read
wrongly, each with the rendering rule that decides it. The last tests send such comments
through the server, the dispatcher and the worker.
"""

# The `bot` and `client` fixtures come from other test modules; tests take them as parameters.
# ruff: noqa: F811
from __future__ import annotations

import json
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot import status
from bot.github.commands import (
    Command,
    CommandName,
    might_hold_command,
    parse_command,
    stored_command,
)
from bot.github.webhooks import DeliveryHeaders, trigger_from
from bot.jobs.store import JobState
from bot.spec.writers import spec_from_description
from tests.fakes.github import webhook_example
from tests.github.test_end_to_end import Bot, bot  # noqa: F401  (bot is a fixture)
from tests.github.test_revise import PULL, opened_with_model
from tests.github.test_server import (  # noqa: F401  (client is a fixture)
    client,
    comment_payload,
    post,
    stored,
)


def test_create_takes_the_rest_of_the_line_and_the_following_lines_with_a_fenced_spec() -> None:
    text = (
        "Hi!\n/create-plugin a weather plugin\nthat reports the temperature\n\n"
        '```json\n{"name": "plugin-weather"}\n```'
    )
    command = parse_command(text)
    assert command == Command(
        CommandName.CREATE,
        "a weather plugin\nthat reports the temperature\n\n"
        '```json\n{"name": "plugin-weather"}\n```',
    )


@pytest.mark.parametrize(
    "text",
    [
        "> /create-plugin quoted",
        "```\n/create-plugin in a fence\n```",
        "~~~\n/create-plugin in a tilde fence\n~~~",
        "    /create-plugin indented code",
        "please run /create-plugin inline",
        "nothing here",
    ],
)
def test_commands_in_quotes_code_or_mid_line_do_not_count(text: str) -> None:
    assert parse_command(text) is None


def test_one_command_per_comment_the_first_wins() -> None:
    command = parse_command("/plugin-status 1234\n/plugin-cancel 1234")
    assert command == Command(CommandName.STATUS, "1234")


@pytest.mark.parametrize(
    ("text", "name", "argument"),
    [
        ("/plugin-status", CommandName.STATUS, ""),
        ("/plugin-status #abc123", CommandName.STATUS, "abc123"),
        ("/plugin-cancel abc123", CommandName.CANCEL, "abc123"),
        ("/plugin-retry abc123", CommandName.RETRY, "abc123"),
        ("/plugin-jobs", CommandName.JOBS, ""),
        ("/PLUGIN-HELP", CommandName.HELP, ""),
        ("/plugin-cancel ../../etc", CommandName.CANCEL, ""),
    ],
)
def test_the_other_commands_take_at_most_a_job_id(
    text: str, name: CommandName, argument: str
) -> None:
    assert parse_command(text) == Command(name, argument)


@pytest.mark.parametrize(
    ("typed", "suggestion"),
    [
        ("/plugin-stauts", "/plugin-status"),
        ("/plugin-cancle", "/plugin-cancel"),
        ("/create-plugins", "/create-plugin"),
        ("/plugin-job", "/plugin-jobs"),
    ],
)
def test_an_unknown_plugin_command_gets_the_closest(typed: str, suggestion: str) -> None:
    command = parse_command(typed + " x")
    assert command == Command(CommandName.UNKNOWN, "", typed=typed, suggestion=suggestion)


def test_other_slash_words_are_not_ours() -> None:
    assert parse_command("/label bug") is None


def test_create_revise_cancel_and_retry_need_write_the_rest_only_read() -> None:
    assert {c for c in CommandName if c.needs_write} == {
        CommandName.CREATE,
        CommandName.REVISE,
        CommandName.CANCEL,
        CommandName.RETRY,
    }


def test_revise_takes_the_rest_of_the_comment_as_the_request() -> None:
    command = parse_command("Thanks!\n/plugin-revise use Fahrenheit\nand say the city too")
    assert command == Command(CommandName.REVISE, "use Fahrenheit\nand say the city too")
    assert parse_command("> /plugin-revise quoted") is None


CREATE_X = Command(CommandName.CREATE, "x")

# (comment, the command GitHub's rendering gives, why)
HOSTILE = [
    ("<!--\n/create-plugin x\n-->", None, "an HTML comment over several lines"),
    ("<!--\n\n/plugin-cancel abc\n\n-->", None, "blank lines do not end an HTML comment"),
    ("Thanks <!--\n/create-plugin x\n--> a lot", None, "an inline HTML comment"),
    ("<pre>\n/create-plugin x\n</pre>", None, "a <pre> HTML block"),
    ("<code>\n/create-plugin x\n</code>", None, "a tag alone on a line opens an HTML block"),
    ("<details>\n/create-plugin x\n</details>", None, "an HTML block runs to a blank line"),
    ("See <span title='\n/create-plugin x'>", None, "inside an HTML attribute"),
    ("```\nlog\n```js\n/create-plugin x\n```js", None, "a fence with an info string cannot close"),
    ("~~~\n~~~yaml\n/create-plugin x", None, "a tilde fence neither"),
    ("> quoted\n/create-plugin x", None, "a lazy continuation line is still quoted"),
    ("> - quoted item\n/create-plugin x", None, "lazy continuation of a list in a quote"),
    ("1. step\n   /create-plugin x", None, "a paragraph in a list item"),
    ("- ```\n  /create-plugin x\n  ```", None, "a fence opened on a list item's line"),
    ("`a\n/create-plugin x`", None, "a code span over a line break"),
    ("``\n/plugin-cancel abc\n``", None, "a double-backtick code span"),
    ("[see\n/create-plugin x](https://example.test)", None, "a link's text"),
    ("[docs](https://example.test 'the\n/plugin-cancel abc')", None, "a link's title"),
    ("[ref]:\n/plugin-cancel", None, "a link reference definition's destination"),
    ("a | b\n--|--\n/create-plugin x", None, "a row of a GFM table"),
    ("please do not\u2028/plugin-cancel abc", None, "U+2028 is no line ending"),
    ("please do not\x0b/plugin-cancel abc", None, "a vertical tab is no line ending"),
    ("please do not\x85/plugin-cancel abc", None, "NEL is no line ending"),
    (
        "<!--\n/plugin-cancel abc\n-->\n/plugin-status def",
        Command(CommandName.STATUS, "def"),
        "the first command as rendered, not the first line that looks like one",
    ),
    ("``` not`a fence\n/create-plugin x", CREATE_X, "a backtick fence's info has no backtick"),
    ("Hi\n    /create-plugin x", CREATE_X, "indented code cannot interrupt a paragraph"),
    ("/plugin-status\t1234", Command(CommandName.STATUS, "1234"), "a tab ends the word"),
]


def test_the_hostile_table_is_read_as_github_renders_it() -> None:
    # One test over the table, so a failure lists every case that is read wrongly.
    wrong = [
        (text, why, parse_command(text))
        for text, expected, why in HOSTILE
        if parse_command(text) != expected
    ]
    assert wrong == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("- /create-plugin x", None),
        ("* /create-plugin x", None),
        ("# /create-plugin x", None),
        ("`/create-plugin x`", None),
        ("\\/create-plugin x", None),
        ("&#47;create-plugin x", None),
        ("<!-- /create-plugin x -->", None),
        ("/create-plugin: x", None),
        ("<!-- a template's note -->\n/create-plugin x", CREATE_X),
        ("Use `code` here\n/create-plugin x", CREATE_X),
        ("> quoted\n\n/create-plugin x", CREATE_X),
        ("   /create-plugin x", CREATE_X),
        ("Hi\r/create-plugin x", CREATE_X),
        ("/create-plugin x\n---", Command(CommandName.CREATE, "x\n---")),
    ],
)
def test_only_what_github_shows_at_the_start_of_a_line_counts(
    text: str, expected: Command | None
) -> None:
    assert parse_command(text) == expected


SPEC = {
    "name": "plugin-forecast",
    "description": "Forecasts for a city.",
    "actions": [{"name": "GetForecast", "description": "Get the forecast."}],
}


# As GitHub sends a comment typed in the browser: CRLF line endings; a template's note.
FENCE = (
    "```yaml\r\nname: plugin-forecast\r\ndescription: Forecasts for a city.\r\n"
    "actions:\r\n  - name: GetForecast\r\n    description: Get the forecast.\r\n```"
)
BROWSER_BODY = (
    "<!-- Describe the plugin below -->\r\nHi!\r\n/create-plugin a forecast plugin\r\n"
    f"for a city\x00\r\n\r\n{FENCE}\r\n\r\nthanks\r\n"
)


def test_the_description_is_the_payload_after_the_word_byte_for_byte() -> None:
    body, fence = BROWSER_BODY, FENCE
    command = parse_command(body)
    assert command is not None and command.name is CommandName.CREATE
    assert command.argument == body[body.index("a forecast") :].strip()
    assert fence in command.argument
    assert spec_from_description(command.argument) == spec_from_description(
        f"```json\n{json.dumps(SPEC)}\n```"
    )


def test_a_command_after_a_paragraph_of_unclosed_openers_is_still_found() -> None:
    # The inline rules run over the whole paragraph (how long that takes on 64 KB:
    # benchmarks/commands.py).
    for opener in ("[", "![", "<", "` ", "*_", "<a title='\n"):
        text = opener * (8192 // len(opener)) + "\n/plugin-status 1234"
        assert parse_command(text) == Command(CommandName.STATUS, "1234"), opener


def test_a_stored_command_is_rebuilt_without_parsing_its_argument_as_markdown() -> None:
    # A review's whole text as the request: a GFM table would not parse as a command.
    table = "a | b\n--|--\n1 | 2"
    assert parse_command("/plugin-revise " + table) is None
    assert stored_command("/plugin-revise", table) == Command(CommandName.REVISE, table)
    assert stored_command("unknown", "/plugin-stauts") == Command(
        CommandName.UNKNOWN, "", typed="/plugin-stauts", suggestion="/plugin-status"
    )


# Pieces of Markdown that change where a line belongs, and our words.
PIECES = st.sampled_from(
    ["/create-plugin", "/plugin-status", "/plugin-x", " ", "\t", "\n", "\r\n", "\r", "> ",
     "- ", "1. ", "    ", "```", "~~~", "`", "<!--", "-->", "<pre>", "[", "]", "(", "'",
     "|", "--", "\\", "a", "x y", "\u2028", "\x00"]
)


@settings(max_examples=200, deadline=None)
@given(st.lists(PIECES, max_size=40).map("".join))
def test_a_found_command_starts_a_line_and_carries_the_payload_verbatim(text: str) -> None:
    command = parse_command(text)
    if command is None:
        return
    word = command.typed or command.name.value
    lines = re.split(r"\r\n?|\n", text)
    assert any(line.lstrip(" \t").lower().startswith(word) for line in lines)
    if command.name is CommandName.CREATE:
        assert command.argument in text


# ------------------------------------------------------------------ end to end


@pytest.mark.parametrize(
    "body",
    [
        "<!--\n/create-plugin a weather plugin\n-->",
        "```\nlog\n```js\n/create-plugin a weather plugin",
        "> quoted\n/create-plugin a weather plugin",
        "a | b\n--|--\n/create-plugin a weather plugin",
    ],
    ids=["html-comment", "unclosable-fence", "lazy-quote", "table-row"],
)
async def test_a_command_github_does_not_show_as_one_starts_nothing(bot: Bot, body: str) -> None:
    # The request only scans lines (no Markdown inside it): a line starting with the word
    # is stored unread. The dispatcher reads it as GitHub renders it and finds no command:
    # no job, and nothing said or done on GitHub, not even the 👀.
    answer = await bot.comment(body)
    assert (answer.status_code, answer.json()) == (202, {"accepted": "unread"})
    await bot.dispatch()
    assert await bot.jobs() == []
    assert bot.github.reactions == [] and bot.github.bot_comments() == []
    assert [m for m, *_ in bot.github.requests if m != "GET"] == []
    command = await bot.store.get_command(1)
    assert command is not None and command.outcome == "ignored:no command as rendered"


def test_the_webhook_request_reads_no_markdown() -> None:
    # What the request may afford: a linear scan. A hostile 64 KB comment (unclosed image
    # brackets, seconds for a CommonMark parser) is decided by it without a parse.
    hostile = "/create-plugin x " + "![a" * 21_000
    assert might_hold_command(hostile) and not might_hold_command("> /create-plugin x")
    assert trigger_from(
        DeliveryHeaders("issue_comment", "d-1", "sha256=x"),
        comment_payload(hostile),
        app_id="1",
        app_slug="plugin-bot",
    ).command == Command(CommandName.UNREAD, "comment")  # type: ignore[union-attr]


async def test_a_browser_typed_comment_with_a_spec_becomes_a_pull_request_of_that_spec(
    bot: Bot,
) -> None:
    answer = await bot.comment(BROWSER_BODY)
    assert answer.status_code == 202
    await bot.dispatch()
    [job] = await bot.jobs()
    assert job.description == BROWSER_BODY[BROWSER_BODY.index("a forecast") :].strip()
    finished = await bot.work()
    assert finished.state == JobState.SUCCEEDED
    [pull] = bot.github.pulls
    assert pull.head == f"plugin-bot/plugin-forecast-{job.id[:8]}"
    assert "plugins/plugin-forecast/package.json" in bot.github.files_at(pull.head)


async def test_a_review_whose_text_is_a_table_is_the_revision_request(bot: Bot) -> None:
    # Stored as the request and rebuilt from the store, not parsed again as a command.
    branch = await opened_with_model(bot)
    table = "Units | Now | Wanted\n--|--|--\nTemperature | Celsius | Fahrenheit"
    payload = webhook_example("pull_request_review", "submitted")
    payload["review"]["state"] = "changes_requested"
    payload["review"]["body"] = table
    payload["pull_request"]["number"] = PULL
    payload["pull_request"]["head"]["ref"] = branch  # as GitHub sends it
    payload["sender"]["login"] = "Codertocat"
    answer = await bot.send(payload, event="pull_request_review")
    assert answer.status_code == 202
    await bot.dispatch()
    [job] = [j for j in await bot.jobs() if j.issue == PULL]
    assert status.revision_request(job.description) == table

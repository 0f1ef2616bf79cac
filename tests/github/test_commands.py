"""Slash commands: where they count, what they carry, and the nearest one for a typo."""

from __future__ import annotations

import pytest

from bot.github.commands import Command, CommandName, parse_command


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

"""Review 2: .github/plugin-bot.yml values that must be refused with the field named, and
words that are not ours."""

from __future__ import annotations

import pytest

from bot.github.commands import Command, CommandName, parse_command
from bot.github.validation.config import RepoConfigError, parse_repo_config
from bot.settings import Settings


def test_a_plugins_folder_with_a_trailing_newline_is_refused() -> None:
    # RepoConfig._plain_folder uses re.match with `$`, which also matches before a final
    # "\n": "plugins\n" is accepted and becomes "plugins\n/<name>/…" paths, a broken
    # code span in the PR body and a newline in the offered workflow's paths.
    with pytest.raises(RepoConfigError) as info:
        parse_repo_config('plugins_folder: "plugins\\n"\n', Settings())
    assert info.value.problems[0].startswith("plugins_folder: ")


def test_a_line_starting_with_another_create_word_is_not_a_command() -> None:
    # Issue 11 point 3: "An unknown `/plugin-…` gets the closest command." A bug report
    # whose line starts with an endpoint or a tool (/create-user, /create-react-app) is
    # not addressed to the bot, yet it gets an "unknown command" reply.
    assert parse_command("/create-user returns 500 since v2") is None
    assert parse_command("Steps:\n/create-react-app my-app fails") is None


def test_a_command_right_below_a_pasted_image_is_found() -> None:
    # GitHub's editor inserts an uploaded screenshot as an <img> tag on its own line. That
    # line opens an HTML block (CommonMark type 7) that runs to the next blank line, and
    # the lines in it are written out as they are: the browser shows the command as text
    # at the start of a line, below the image, yet it does not count.
    body = (
        '<img width="320" alt="mockup" src="https://github.com/user-attachments/assets/'
        'a1b2c3d4-0000-4000-8000-000000000000" />\n'
        "/create-plugin a weather plugin like in the picture"
    )
    command = parse_command(body)
    assert command is not None and command.argument.startswith("a weather plugin")


def test_the_reply_to_a_config_with_many_problems_fits_in_a_github_comment() -> None:
    # A config (32 KB, under REPO_CONFIG_MAX_BYTES) with thousands of wrong entries: every
    # problem becomes a line of the reply, ~380 KB; GitHub refuses comments over 65536
    # characters (422), so the requester never learns why nothing ran.
    from bot import status

    text = "labels: [" + ",".join(["[1]"] * 8000) + "]\n"
    with pytest.raises(RepoConfigError) as info:
        parse_repo_config(text, Settings())
    reply = status.refused_config(".github/plugin-bot.yml", info.value.problems)
    assert len(reply) <= 65536, len(reply)


IMAGE = '<img width="320" alt="mockup" src="https://github.com/user-attachments/assets/a1b2" />'


@pytest.mark.parametrize(
    ("body", "why"),
    [
        (f"{IMAGE}\n<del>/create-plugin x</del>", "the line below starts with a tag"),
        (f"{IMAGE}\nsee the picture\n/create-plugin x", "only the line right below the images"),
        ("<code>\n/create-plugin x\n</code>", "an HTML block of another tag than <img>"),
        ("<span>\n/create-plugin x\n</span>", "inside an element that wraps it"),
        ('<img src="x" alt="\n/create-plugin x">', "inside an attribute, not below a tag"),
        (f"> {IMAGE}\n> /create-plugin x", "an image in a quote"),
    ],
)
def test_only_the_line_right_below_pasted_images_counts_in_their_html_block(
    body: str, why: str
) -> None:
    assert parse_command(body) is None, why


def test_a_command_below_several_pasted_images_is_found() -> None:
    command = parse_command(f"{IMAGE}\n  {IMAGE}\n/plugin-status abc123\n\nthanks")
    assert command == Command(CommandName.STATUS, "abc123")


@pytest.mark.parametrize(
    "typed",
    ["/create-plugn", "/create-plgin", "/create-pulgin", "/create-plugins", "/create-pluginx"],
)
def test_a_typo_of_create_plugin_gets_the_closest_command(typed: str) -> None:
    command = parse_command(f"{typed} a weather plugin")
    assert command == Command(CommandName.UNKNOWN, "", typed=typed, suggestion="/create-plugin")


@pytest.mark.parametrize(
    "line", ["/create-login page is blank", "/create-playlist", "/create-pr", "/create-user x"]
)
def test_another_create_word_gets_no_reply(line: str) -> None:
    assert parse_command(line) is None


def test_the_cut_refusal_counts_the_problems_it_leaves_out() -> None:
    from bot import status

    problems = [f"labels.{i}: Input should be a valid string" for i in range(5000)]
    reply = status.refused_config(".github/plugin-bot.yml", problems)
    shown = reply.count("\n- ")
    assert 0 < shown < 5000 and f"… and {5000 - shown} more problems" in reply


@pytest.mark.parametrize(
    "text",
    [
        'reviewers: ["octocat\\n"]\n',
        'trigger: {users: ["octocat\\n"]}\n',
        'trigger: {teams: ["core\\n"]}\n',
    ],
)
def test_a_login_or_team_with_a_trailing_newline_is_refused(text: str) -> None:
    with pytest.raises(RepoConfigError) as info:
        parse_repo_config(text, Settings())
    assert "should match pattern" in info.value.problems[0]

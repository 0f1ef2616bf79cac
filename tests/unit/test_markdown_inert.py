"""Review 2 (attacks on issue 11/13): text from a sandbox or a model in the PR body and the
check run summary must stay inert once GitHub renders it (GFM: tables split cells at every
unescaped ``|``, code spans included)."""

from __future__ import annotations

import re

from markdown_it import MarkdownIt

from bot import status
from bot.paths import check_relative, is_test_file

GFM = MarkdownIt("commonmark").enable("table")
# A test file the model may write: one acceptable path, a test file by the bot's own rule.
HOSTILE_FILE = "__tests__/a|@torvalds [x](https:evil.example) |b.test.ts"


def _cells(html: str) -> list[list[str]]:
    rows = re.findall(r"<tr>(.*?)</tr>", html, re.S)
    return [re.findall(r"<t[dh]>(.*?)</t[dh]>", row, re.S) for row in rows]


def _assert_inert_table(markdown: str) -> None:
    html = GFM.render(markdown)
    assert all(len(row) == 3 for row in _cells(html)), html  # no cell split off
    assert "<a href" not in html, html
    # A mention outside code would notify the user.
    outside_code = re.sub(r"<code>.*?</code>", "", html, flags=re.S)
    assert "@torvalds" not in outside_code, html


def test_the_hostile_test_file_name_is_one_the_bot_accepts() -> None:
    assert check_relative(HOSTILE_FILE) and is_test_file(HOSTILE_FILE)


def test_a_test_file_name_with_pipes_cannot_split_the_pull_requests_tests_table() -> None:
    table = status._tests_table([status.TestRow(HOSTILE_FILE, "loads", "passed")])
    _assert_inert_table(table)


def test_a_test_file_name_with_pipes_cannot_split_the_check_runs_summary() -> None:
    summary = status.check_summary([(HOSTILE_FILE, "loads", "failed")], None)
    _assert_inert_table(summary)


def test_issue_references_in_model_text_are_broken_like_mentions() -> None:
    # GitHub links #N, owner/repo#N and GH-N in rendered text (a backslash escape
    # disappears on rendering, the reference stays: it cross-references the other
    # issue, and "fixes #N" in a PR body may close it). Renovate writes #&#8203;N.
    rendered = GFM.render(status.md("fixes #1, see octo/repo#2 and GH-3"))
    assert not re.search(r"#\d|GH-\d", rendered), rendered


def test_a_description_saying_fixes_another_issue_cannot_close_it() -> None:
    # Issue 11 point 5: `Closes #N` only when the repo config says so. The requester's
    # (or a model's) text is quoted in the body with `#` merely backslash-escaped; GitHub
    # renders `\#12` as the reference #12 after "fixes", a closing keyword.
    view = status.PullRequestView(
        job_id="abc123",
        plugin_name="plugin-weather",
        plugin_path="plugins/plugin-weather",
        description="a weather plugin; fixes #12 and closes octo/other#3",
        requester="octocat",
        issue_number=1,
        components=[],
        tests=[],
        tests_passed=0,
        tests_failed=0,
        manifest_sha256=None,
        keyid=None,
        tokens=None,
        cost_usd=None,
        model=None,
        close_issue=False,
    )
    text = re.sub(r"<[^>]+>", "", GFM.render(status.pull_request_body(view)))
    assert not re.search(r"(?i)(fix|fixes|close|closes)\s+\S*#\d", text), text


def test_a_component_name_with_pipes_cannot_split_the_components_table() -> None:
    table = status._components_table([status.Component("action", HOSTILE_FILE, "a | b @x")])
    _assert_inert_table(table)


def test_a_pipe_in_a_table_cell_reads_as_written() -> None:
    # The cell's code span shows the name exactly, a backslash before a pipe included.
    name = "__tests__/a|b\\|c.test.ts"
    html = GFM.render(status._tests_table([status.TestRow(name, "x | y", "passed")]))
    [_, [mark, file, test]] = _cells(html)
    assert (mark, file, test) == ("✅", f"<code>{name}</code>", "x | y"), html


def test_a_code_span_outside_a_table_keeps_its_pipe_unescaped() -> None:
    assert GFM.render(status.code("a|b")) == "<p><code>a|b</code></p>\n"


def test_broken_references_still_read_as_the_same_characters() -> None:
    said = "fixes #1, see octo/repo#2, gh-3 and GH-4; # 5 and x#y stay"
    rendered = GFM.render(status.md(said)).replace("\u200b", "")
    assert rendered == f"<p>{said}</p>\n"
    assert not re.search(r"(?i)#\d|gh-\d", GFM.render(status.md(said)))

"""Review 2: the check run and the PR body as GitHub takes them — an annotation's message is
plain text (GitHub does not render it), and outputs have size caps (a check run's summary
65535 characters, an issue or PR body 65536): past them GitHub answers 422, after the branch
or the pull request already exists."""

from __future__ import annotations

from bot import status
from bot.github.operations.checks import compiler_annotations

TSC = "src/index.ts(12,5): error TS2322: Type 'string' is not assignable to type 'number'.\n"
GITHUB_SUMMARY_MAX = 65535
GITHUB_BODY_MAX = 65536


def test_a_compiler_annotation_reads_as_the_compiler_wrote_it() -> None:
    [note] = compiler_annotations(TSC, "plugins/plugin-weather")
    assert note.path == "plugins/plugin-weather/src/index.ts" and note.line == 12
    # Shown as plain text in the checks tab: no Markdown escapes, no &#8203; entities.
    assert note.message == "Type 'string' is not assignable to type 'number'.", note.message


def _rows(count: int) -> list[tuple[str, str, str]]:
    return [
        (f"__tests__/case-{i:04d}-{'x' * 80}.test.ts", f"handles input {i} " + "y" * 150, "passed")
        for i in range(count)
    ]


def test_the_check_summary_stays_within_githubs_limit_with_many_tests() -> None:
    summary = status.check_summary(_rows(400), None)
    assert len(summary) <= GITHUB_SUMMARY_MAX, len(summary)


def test_the_pull_request_body_stays_within_githubs_limit_with_many_tests() -> None:
    view = status.PullRequestView(
        job_id="abc123",
        plugin_name="plugin-weather",
        plugin_path="plugins/plugin-weather",
        description="a weather plugin",
        requester="octocat",
        issue_number=1,
        components=[],
        tests=[status.TestRow(f, n, s) for f, n, s in _rows(400)],
        tests_passed=400,
        tests_failed=0,
        manifest_sha256="0" * 64,
        keyid="k",
        tokens=None,
        cost_usd=None,
        model=None,
        close_issue=False,
    )
    body = status.pull_request_body(view)
    assert len(body) <= GITHUB_BODY_MAX, len(body)


def test_an_annotation_message_keeps_no_control_characters() -> None:
    [note] = compiler_annotations(
        "src/a.ts(1,1): error TS1005: ';' \x1b[31mexpected\x1b[0m\u202e.\n", "plugins/p"
    )
    assert note.message == "';' expected<U+202E>.", note.message


def test_a_cut_tests_table_says_how_many_tests_it_leaves_out() -> None:
    summary = status.check_summary(_rows(400), "2 tests failed")
    shown = summary.count("\n| ✅ |")
    assert 0 < shown < 400
    assert summary.endswith(
        f"… and {400 - shown} more tests, not listed (GitHub caps the size of this text)."
    )
    assert summary.startswith("**Failed:** 2 tests failed")


def test_a_small_tests_table_is_not_cut() -> None:
    summary = status.check_summary(_rows(3), None)
    assert summary.count("\n| ✅ |") == 3 and "more tests" not in summary


def _worst_view(tests: int, components: int) -> status.PullRequestView:
    # Every outside text at its longest, made of the character that escapes longest.
    return status.PullRequestView(
        job_id="abc123",
        plugin_name="@" * 300,
        plugin_path="plugins/plugin-weather",
        description="@" * 5000,
        requester="octocat",
        issue_number=1,
        components=[status.Component("action", "@" * 100, "@" * 300)] * components,
        tests=[status.TestRow("@" * 200, "@" * 300, "failed")] * tests,
        tests_passed=0,
        tests_failed=tests,
        manifest_sha256="0" * 64,
        keyid="k",
        tokens=10,
        cost_usd=0.5,
        model="@" * 100,
        close_issue=True,
        revision=status.RevisionView("@" * 5000, "octocat", "1" * 64),
    )


def test_the_pull_request_body_fits_with_every_outside_text_at_its_longest() -> None:
    body = status.pull_request_body(_worst_view(tests=1000, components=1000))
    assert len(body) <= GITHUB_BODY_MAX, len(body)
    # Both tables are shown in part, the headings still count every test, the end stays.
    assert "more components, not listed" in body and "more tests, not listed" in body
    assert "### Tests: 0 passed, 1000 failed" in body
    assert body.endswith("Closes #1")


def test_the_jobs_list_fits_in_a_comment() -> None:
    reply = status.jobs_list([f"`job{i:05d}` failed · " + "x" * 200 for i in range(2000)])
    assert len(reply) <= GITHUB_BODY_MAX and reply.endswith("(GitHub caps the size of this text).")

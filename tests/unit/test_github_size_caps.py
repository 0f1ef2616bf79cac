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

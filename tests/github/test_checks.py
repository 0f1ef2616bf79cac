"""The check run: at most 50 annotations per request (the rest as updates of the same
run), every request validated against GitHub's OpenAPI description by the stand-in; and
annotations at file:line from the compiler's output and the failing tests."""

from __future__ import annotations

from bot.github.client import GitHubApp
from bot.github.data.repository import RepoRef
from bot.github.operations.checks import (
    Annotation,
    CheckReport,
    compiler_annotations,
    post_check_run,
)
from tests.fakes.github import FakeGitHub

REPO = RepoRef("Codertocat", "Hello-World")


async def test_annotations_go_in_batches_of_fifty(app: GitHubApp, github: FakeGitHub) -> None:
    notes = [Annotation("plugins/p/src/index.ts", n, f"TS{n}", f"error {n}") for n in range(1, 121)]
    report = CheckReport(
        github.refs["master"], "failure", "plugin tests — 0 passed, 1 failed", "summary", notes
    )
    async with app.installation(1) as inst:
        run_id = await post_check_run(inst, REPO, report)
    [run] = github.check_runs
    assert run["id"] == run_id
    assert (run["status"], run["conclusion"], run["head_sha"]) == (
        "completed",
        "failure",
        github.refs["master"],
    )
    sizes = [
        len(body["output"]["annotations"]) for _, _, body in github.calls("POST", "/check-runs")
    ]
    sizes += [
        len(body["output"]["annotations"]) for _, _, body in github.calls("PATCH", "/check-runs/")
    ]
    assert sizes == [50, 50, 20]
    assert [a["start_line"] for a in run["annotations"]] == list(range(1, 121))


async def test_no_annotations_is_one_request(app: GitHubApp, github: FakeGitHub) -> None:
    report = CheckReport(github.refs["master"], "success", "plugin tests — 3 passed, 0 failed", "")
    async with app.installation(1) as inst:
        await post_check_run(inst, REPO, report)
    assert len(github.calls("POST", "/check-runs")) == 1
    assert github.calls("PATCH", "/check-runs/") == []


def test_compiler_errors_become_annotations_at_file_and_line() -> None:
    output = (
        "> tsc --noEmit && tsup\n"
        "src/index.ts(12,5): error TS2322: Type 'string' is not assignable to type 'number'.\n"
        "src/actions/get.ts:3:7 - error TS2304: Cannot find name 'foo'.\n"
        "Found 2 errors.\n"
    )
    notes = compiler_annotations(output, "plugins/plugin-weather")
    assert [(n.path, n.line, n.title) for n in notes] == [
        ("plugins/plugin-weather/src/index.ts", 12, "TS2322"),
        ("plugins/plugin-weather/src/actions/get.ts", 3, "TS2304"),
    ]
    assert "not assignable" in notes[0].message

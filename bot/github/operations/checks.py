"""The check run on every commit the bot pushes: the tests' counts as the title, the
table as the summary, and annotations at file:line for compiler errors and failing tests.

GitHub takes at most 50 annotations per request: the first batch goes with the create,
the rest follow as updates of the same run, 50 at a time.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from bot import status
from bot.github.client import Installation
from bot.github.data.repository import RepoRef
from bot.pipeline.context import JobContext
from bot.settings import CHECK_ANNOTATIONS_PER_REQUEST, CHECK_MAX_ANNOTATIONS

Conclusion = Literal["success", "failure"]
# tsc: "src/index.ts(12,5): error TS2322: …" and the pretty "src/index.ts:12:5 - error TS…"
_TSC = re.compile(
    r"^(?P<file>[^\s:(][^:(\n]*?)(?:\((?P<l1>\d+),\d+\)|:(?P<l2>\d+):\d+)"
    r"\s*(?::|-)\s*error\s+(?P<code>TS\d+):\s*(?P<message>.+)$",
    re.M,
)


@dataclass(frozen=True)
class Annotation:
    path: str  # in the repository
    line: int
    title: str
    message: str

    def to_api(self) -> dict[str, object]:
        return {
            "path": self.path,
            "start_line": self.line,
            "end_line": self.line,
            "annotation_level": "failure",
            "title": self.title[:255],
            "message": self.message[:4000] or self.title[:255],
        }


@dataclass(frozen=True)
class CheckReport:
    head_sha: str
    conclusion: Conclusion
    title: str
    summary: str
    annotations: Sequence[Annotation] = ()


def compiler_annotations(output: str, folder: str) -> list[Annotation]:
    return [
        Annotation(
            f"{folder}/{m.group('file').strip()}",
            int(m.group("l1") or m.group("l2")),
            f"{m.group('code')}",
            status.plain_text(m.group("message").strip(), 1000),
        )
        for m in _TSC.finditer(output)
    ]


def _failure_line(file: str, failure: str | None) -> int:
    found = re.search(re.escape(file) + r":(\d+):\d+", failure or "")
    return int(found.group(1)) if found else 1


def test_annotations(ctx: JobContext, folder: str) -> list[Annotation]:
    results = ctx.result.test_results
    if results is None:
        return []
    return [
        Annotation(
            f"{folder}/{t.file}",
            _failure_line(t.file, t.failure),
            status.check_failed_test_title(t.name),
            status.plain_text(t.failure or "", 3000),
        )
        for t in results.tests
        if t.state == "failed"
    ]


def report_for(ctx: JobContext, head_sha: str, folder: str, reason: str | None) -> CheckReport:
    """The check run of a job's commit (or, for a failed job, of the branch head)."""
    results = ctx.result.test_results
    passed = results.passed if results else 0
    failed = results.failed if results else 0
    notes: list[Annotation] = []
    if ctx.result.build is not None:
        notes += compiler_annotations(ctx.result.build.output, folder)
    notes += test_annotations(ctx, folder)
    rows = [(t.file, t.name, t.state) for t in results.tests] if results else []
    return CheckReport(
        head_sha=head_sha,
        conclusion="success" if reason is None and results and failed == 0 else "failure",
        title=status.check_title(passed, failed, reason),
        summary=status.check_summary(rows, reason),
        annotations=notes[:CHECK_MAX_ANNOTATIONS],
    )


async def post_check_run(inst: Installation, repo: RepoRef, report: CheckReport) -> int:
    """One completed check run; annotations beyond the first batch follow as updates."""
    size = CHECK_ANNOTATIONS_PER_REQUEST
    batches = [report.annotations[i : i + size] for i in range(0, len(report.annotations), size)]
    output = {"title": report.title, "summary": report.summary}
    first = batches[0] if batches else []
    created = await inst.create(
        "POST",
        f"{repo.path}/check-runs",
        {
            "name": status.CHECK_NAME,
            "head_sha": report.head_sha,
            "status": "completed",
            "conclusion": report.conclusion,
            "output": {**output, "annotations": [a.to_api() for a in first]},
        },
    )
    run_id = int(created["id"])
    for batch in batches[1:]:
        async with inst.creating():
            await inst.request(
                "PATCH",
                f"{repo.path}/check-runs/{run_id}",
                json={"output": {**output, "annotations": [a.to_api() for a in batch]}},
            )
    return run_id

"""Test results from vitest's JSON reporter, and the ``test-results.json`` we write.

Counts come from the per-test records of the report, never from scraping text: the
original system counted test *files* as tests.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

RESULTS_FILE = "test-results.json"
SCHEMA_VERSION = 1
MAX_FAILURE_CHARS = 2000

# vitest states -> ours. "pending" is what the jest-compatible report calls skipped.
_STATES = {
    "passed": "passed",
    "failed": "failed",
    "skipped": "skipped",
    "pending": "skipped",
    "disabled": "skipped",
    "todo": "todo",
}


class ReportError(ValueError):
    """The test runner's report is missing or not what we expect."""


@dataclass(frozen=True)
class TestCase:
    __test__ = False  # not a pytest class
    file: str
    name: str
    state: str
    duration_ms: float | None
    failure: str | None = None


@dataclass(frozen=True)
class FileResult:
    file: str
    state: str
    message: str | None = None


@dataclass(frozen=True)
class TestResults:
    __test__ = False  # not a pytest class
    tool: str
    command: list[str]
    exit_code: int | None
    total: int
    passed: int
    failed: int
    skipped: int
    todo: int
    files: list[FileResult]
    tests: list[TestCase]
    wall_s: float
    log_sha256: str
    log_bytes: int
    durations_s: dict[str, float] = field(default_factory=dict)

    @property
    def broken_files(self) -> list[FileResult]:
        """Test files that failed without a failing test: they could not load or run."""
        failing = {t.file for t in self.tests if t.state == "failed"}
        return [f for f in self.files if f.state == "failed" and f.file not in failing]

    @property
    def success(self) -> bool:
        return (
            self.exit_code == 0 and self.failed == 0 and not self.broken_files and self.passed > 0
        )

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data = {"schema": SCHEMA_VERSION, "success": self.success, **data}
        return data

    def encode(self) -> bytes:
        """``test-results.json`` as the bot writes it (into the job's file set)."""
        return (json.dumps(self.to_json(), indent=2, sort_keys=False) + "\n").encode()

    @classmethod
    def read(cls, plugin_dir: Path) -> TestResults:
        return cls.decode((plugin_dir / RESULTS_FILE).read_bytes())

    @classmethod
    def decode(cls, encoded: bytes) -> TestResults:
        """``test-results.json`` as :meth:`encode` wrote it."""
        data = json.loads(encoded)
        data.pop("schema", None)
        data.pop("success", None)
        data["files"] = [FileResult(**f) for f in data["files"]]
        data["tests"] = [TestCase(**t) for t in data["tests"]]
        return cls(**data)


def _relative(path: str, root: Path) -> str:
    p = Path(path)
    try:
        return PurePosixPath(p.resolve().relative_to(root.resolve())).as_posix()
    except ValueError:
        return p.name


def _short(messages: Sequence[str]) -> str | None:
    text = "\n".join(m for m in messages if m).strip()
    if not text:
        return None
    return text if len(text) <= MAX_FAILURE_CHARS else text[:MAX_FAILURE_CHARS] + " …"


def parse_vitest_report(
    report: Mapping[str, Any],
    *,
    root: Path,
    command: Sequence[str],
    exit_code: int | None,
    wall_s: float,
    log_sha256: str,
    log_bytes: int,
) -> TestResults:
    """Turn vitest's ``--reporter=json`` output into TestResults."""
    suites = report.get("testResults")
    if not isinstance(suites, list):
        raise ReportError("vitest report has no testResults list")
    files: list[FileResult] = []
    tests: list[TestCase] = []
    for suite in suites:
        if not isinstance(suite, Mapping):
            raise ReportError("vitest report has a malformed test file entry")
        file = _relative(str(suite.get("name", "?")), root)
        status = str(suite.get("status", "failed"))
        files.append(
            FileResult(
                file=file,
                state="passed" if status == "passed" else _STATES.get(status, "failed"),
                message=_short([str(suite.get("message") or "")]),
            )
        )
        for case in suite.get("assertionResults") or []:
            state = _STATES.get(str(case.get("status")), "failed")
            duration = case.get("duration")
            tests.append(
                TestCase(
                    file=file,
                    name=str(case.get("fullName") or case.get("title") or "?"),
                    state=state,
                    duration_ms=float(duration) if isinstance(duration, int | float) else None,
                    failure=_short([str(m) for m in case.get("failureMessages") or []])
                    if state == "failed"
                    else None,
                )
            )
    counts = {
        s: sum(1 for t in tests if t.state == s) for s in ("passed", "failed", "skipped", "todo")
    }
    return TestResults(
        tool="vitest",
        command=list(command),
        exit_code=exit_code,
        total=len(tests),
        passed=counts["passed"],
        failed=counts["failed"],
        skipped=counts["skipped"],
        todo=counts["todo"],
        files=files,
        tests=tests,
        wall_s=round(wall_s, 3),
        log_sha256=log_sha256,
        log_bytes=log_bytes,
    )


def load_report(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise ReportError("the test run wrote no JSON report") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ReportError(f"the test report is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ReportError("the test report is not a JSON object")
    return data

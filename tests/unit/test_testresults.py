import json
from pathlib import Path

import pytest

from bot.testresults import (
    RESULTS_FILE,
    ReportError,
    TestResults,
    load_report,
    parse_vitest_report,
)

FIXTURE = Path(__file__).parent.parent / "fixtures" / "vitest" / "failing-report.json"
ROOT = Path("/workspace/plugin-weather")


def parse(report: dict, exit_code: int | None = 1) -> TestResults:
    return parse_vitest_report(
        report,
        root=ROOT,
        command=["npm", "test"],
        exit_code=exit_code,
        wall_s=1.5,
        log_sha256="ab" * 32,
        log_bytes=123,
    )


def real_report() -> dict:
    return json.loads(FIXTURE.read_text())


def test_counts_come_from_each_test_not_from_files() -> None:
    results = parse(real_report())
    # 5 files in the report, 22 tests: one failed, one skipped, one todo.
    assert len(results.files) == 5
    assert (results.total, results.passed, results.failed) == (22, 19, 1)
    assert (results.skipped, results.todo) == (1, 1)
    assert not results.success


def test_a_file_that_cannot_load_is_a_failure_with_its_message() -> None:
    results = parse(real_report())
    (broken,) = results.broken_files
    assert broken.file == "__tests__/broken.test.ts"
    assert broken.message is not None and "does-not-exist" in broken.message


def test_failed_test_keeps_its_name_file_and_message() -> None:
    (failed,) = [t for t in parse(real_report()).tests if t.state == "failed"]
    assert failed.file == "__tests__/plugin.test.ts"
    assert failed.failure and "AssertionError" in failed.failure
    assert failed.name == "plugin is exported by name and as default"


def test_paths_are_relative_to_the_plugin() -> None:
    files = {t.file for t in parse(real_report()).tests}
    assert all(not f.startswith("/") for f in files)
    assert "__tests__/actions/report-current-temperature.test.ts" in files


def test_all_passing_report_is_a_success() -> None:
    report = real_report()
    report["testResults"] = [
        s for s in report["testResults"] if s["status"] == "passed" and "skip" not in s["name"]
    ]
    results = parse(report, exit_code=0)
    assert results.success and results.passed == results.total == 13


def test_zero_tests_is_not_a_success() -> None:
    assert not parse({"testResults": []}, exit_code=0).success


def test_nonzero_exit_is_not_a_success_even_when_tests_passed() -> None:
    report = real_report()
    report["testResults"] = [s for s in report["testResults"] if "parameters" in s["name"]]
    assert parse(report, exit_code=0).success
    assert not parse(report, exit_code=1).success


def test_written_file_round_trips(tmp_path: Path) -> None:
    results = parse(real_report())
    path = tmp_path / RESULTS_FILE
    path.write_bytes(results.encode())
    data = json.loads(path.read_text())
    assert data["success"] is False and data["total"] == 22
    assert data["log_sha256"] == "ab" * 32
    assert TestResults.read(tmp_path) == results


@pytest.mark.parametrize("content", ["", "not json", "[1, 2]"])
def test_bad_report_files_raise_report_error(tmp_path: Path, content: str) -> None:
    path = tmp_path / "report.json"
    path.write_text(content)
    with pytest.raises(ReportError):
        load_report(path)


def test_missing_report_raises_report_error(tmp_path: Path) -> None:
    with pytest.raises(ReportError, match="no JSON report"):
        load_report(tmp_path / "missing.json")


def test_report_without_test_results_is_refused() -> None:
    with pytest.raises(ReportError):
        parse({"numTotalTests": 3})


def passing_suites(report: dict) -> list[dict]:
    return [s for s in report["testResults"] if s["status"] == "passed" and "skip" not in s["name"]]


def test_a_file_that_failed_to_load_is_no_success_even_with_every_test_passing() -> None:
    report = real_report()
    broken = [s for s in report["testResults"] if s["name"].endswith("broken.test.ts")]
    report["testResults"] = passing_suites(report) + broken
    # Exit code 0 on purpose: success must come from the report, not only from the exit.
    results = parse(report, exit_code=0)
    assert results.failed == 0 and results.passed == 13
    assert [f.file for f in results.broken_files] == ["__tests__/broken.test.ts"]
    assert not results.success
    assert results.to_json()["success"] is False


@pytest.mark.parametrize("state", ["bogus", "running", "", None])
def test_an_unknown_test_state_counts_as_failed_not_skipped(state: str | None) -> None:
    report = real_report()
    report["testResults"] = passing_suites(report)
    report["testResults"][0]["assertionResults"][0]["status"] = state
    results = parse(report, exit_code=0)
    assert (results.failed, results.skipped, results.passed) == (1, 0, 12)
    assert not results.success

"""Without a PostgreSQL server the PostgreSQL job tests skip on a laptop and fail in CI."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def run_one_postgres_test(ci: bool) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in {"TEST_POSTGRES_URL", "CI"}}
    if ci:
        env["CI"] = "true"
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "tests/jobs/test_store.py",
            "-k",
            "postgres and duplicate_delivery",
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize("ci", [True, False])
def test_a_missing_postgres_fails_in_ci_and_skips_elsewhere(ci: bool) -> None:
    result = run_one_postgres_test(ci)
    if ci:
        assert result.returncode == 1, result.stdout
        assert "TEST_POSTGRES_URL is not set" in result.stdout
        assert "1 error" in result.stdout or "1 failed" in result.stdout
    else:
        assert result.returncode == 0, result.stdout
        assert "1 skipped" in result.stdout

"""The pip-audit step of .ci/run: its verdict on pip-audit's JSON report.

The step's Python is taken from .ci/run itself and run on pip-audit reports: one that
pip-audit writes here and now for a pinned requirement, and one in pip-audit's format with
a vulnerability (which no service reachable from this machine would produce).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CI_RUN = ROOT / ".ci" / "run"


def gate_source() -> str:
    match = re.search(r"<<'PY'\n(.*?)\nPY\n", CI_RUN.read_text(), re.S)
    assert match, ".ci/run has the pip-audit verdict step"
    return match.group(1)


def verdict(
    report: dict[str, object], tmp_path: Path, pip_audit_rc: int, **env: str
) -> subprocess.CompletedProcess[str]:
    venv = tmp_path / ".venv"
    venv.mkdir(exist_ok=True)
    (venv / "pip-audit.json").write_text(json.dumps(report))
    return subprocess.run(
        [sys.executable, "-c", gate_source(), str(pip_audit_rc)],
        cwd=tmp_path,
        env={"PATH": os.environ["PATH"], **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_a_known_vulnerability_fails_ci_with_its_id_and_fix(tmp_path: Path) -> None:
    report = {
        "dependencies": [
            {"name": "pyyaml", "version": "6.0.2", "vulns": []},
            {
                "name": "jinja2",
                "version": "2.10",
                "vulns": [
                    {
                        "id": "GHSA-462w-v97r-4m45",
                        "fix_versions": ["2.10.1"],
                        "aliases": ["CVE-2019-10906"],
                        "description": "sandbox escape via str.format_map",
                    }
                ],
            },
        ],
        "fixes": [],
    }
    done = verdict(report, tmp_path, pip_audit_rc=1)
    assert done.returncode == 1
    assert "jinja2 2.10: GHSA-462w-v97r-4m45 (fixed in 2.10.1)" in done.stdout
    assert "2 packages audited, 1 known vulnerabilities" in done.stdout


def test_a_clean_report_passes(tmp_path: Path) -> None:
    report = {"dependencies": [{"name": "jinja2", "version": "3.1.4", "vulns": []}], "fixes": []}
    done = verdict(report, tmp_path, pip_audit_rc=0)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 packages audited, 0 known vulnerabilities" in done.stdout


@pytest.fixture(scope="module")
def real_report(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """What pip-audit itself reports for one pinned requirement from this machine."""
    pip_audit = Path(sys.executable).parent / "pip-audit"
    if not pip_audit.exists():
        pytest.fail("pip-audit is a dev dependency: pip install -e '.[dev]'")
    work = tmp_path_factory.mktemp("pip-audit")
    (work / "requirements.txt").write_text("jinja2==3.1.4\n")
    argv = [str(pip_audit), "-r", "requirements.txt", "--no-deps", "--disable-pip"]
    argv += ["--progress-spinner", "off", "-f", "json", "-o", "report.json"]
    subprocess.run(argv, cwd=work, capture_output=True, timeout=300)
    report = json.loads((work / "report.json").read_text())
    assert isinstance(report, dict)
    return report


@pytest.mark.integration
def test_packages_the_service_cannot_answer_for_are_reported_as_not_audited(
    tmp_path: Path, real_report: dict[str, object]
) -> None:
    dependencies = real_report["dependencies"]
    assert isinstance(dependencies, list)
    if "skip_reason" not in dependencies[0]:
        pytest.skip("the vulnerability service answered for jinja2 here: nothing is skipped")
    done = verdict(real_report, tmp_path, pip_audit_rc=0)
    assert done.returncode == 0
    assert "NOT AUDITED: 1 of 1 packages" in done.stdout
    required = verdict(real_report, tmp_path, pip_audit_rc=0, AUDIT_REQUIRED="1")
    assert required.returncode == 1
    assert "AUDIT_REQUIRED=1 and some packages could not be audited" in required.stderr

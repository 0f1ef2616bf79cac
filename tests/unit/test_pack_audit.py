"""The template pack's lockfile against npm's security advisories (`npm audit`).

Every generated plugin ships the pack's package-lock.json, so a package with a known
advisory in it must fail the test suite, naming the advisory. The pack's own lockfile is
audited against the configured registry; the gate itself is proven able to fail with a
real npm client against a stand-in registry on loopback that serves a published lodash
advisory (GHSA-35jh-r3h4-6jhm, command injection, lodash < 4.17.21): npm decides from the
advisory's range which installed versions it hits, as it does with the real registry.
"""

from __future__ import annotations

import gzip
import json
import os
import shutil
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from bot.settings import Settings

PACK_LOCK = Settings().template_dir / "package-lock.json"
CI = os.environ.get("CI") == "true"

# As published in the GitHub Advisory Database (which npm's advisory endpoint serves);
# `id` is only the stand-in's key for it.
LODASH_COMMAND_INJECTION = {
    "id": 1,
    "url": "https://github.com/advisories/GHSA-35jh-r3h4-6jhm",
    "title": "Command Injection in lodash",
    "severity": "high",
    "vulnerable_versions": "<4.17.21",
    "cwe": ["CWE-77", "CWE-94"],
    "cvss": {"score": 7.2, "vectorString": "CVSS:3.1/AV:N/AC:L/PR:H/UI:N/S:U/C:H/I:H/A:H"},
}


@dataclass(frozen=True)
class Finding:
    package: str
    advisory: str
    severity: str
    title: str
    vulnerable_versions: str

    def line(self) -> str:
        return (
            f"{self.package} ({self.vulnerable_versions}): {self.advisory} "
            f"[{self.severity}] {self.title}"
        )


class AuditUnavailable(Exception):
    """The registry answered, but not with an audit report (no advisory endpoint)."""


def _npm() -> str:
    found = shutil.which("npm")
    if found is None:
        if CI:
            pytest.fail("npm is needed to audit the template pack's lockfile")
        pytest.skip("npm is not installed")
    return found


def audit_lockfile(lockfile: Path, workdir: Path, *, registry: str | None = None) -> list[Finding]:
    """`npm audit --package-lock-only` on a copy of ``lockfile``: every advisory it reports."""
    workdir.mkdir(parents=True, exist_ok=True)
    lock = json.loads(lockfile.read_text())
    shutil.copyfile(lockfile, workdir / "package-lock.json")
    # npm needs a package.json; the lockfile's root entry is the one it was made from.
    (workdir / "package.json").write_text(json.dumps(lock["packages"][""], indent=2))
    argv = [_npm(), "audit", "--package-lock-only", "--json", "--audit-level=low"]
    if registry is not None:
        argv.append(f"--registry={registry}")
    env = {**os.environ, "npm_config_cache": str(workdir / ".npm"), "npm_config_audit": "true"}
    done = subprocess.run(argv, cwd=workdir, env=env, capture_output=True, text=True, timeout=300)
    try:
        report = json.loads(done.stdout)
    except json.JSONDecodeError as exc:
        raise AuditUnavailable(f"npm audit printed no JSON: {done.stderr[-500:]}") from exc
    if "vulnerabilities" not in report:
        raise AuditUnavailable(str(report.get("message") or report.get("error") or report))
    return findings(report)


def findings(report: dict[str, Any]) -> list[Finding]:
    """The advisories of an npm audit report (entries of `via` that are advisories, not
    the names of other vulnerable packages)."""
    found = {
        Finding(
            package=via["name"],
            advisory=via["url"].rstrip("/").rsplit("/", 1)[-1],
            severity=via["severity"],
            title=via["title"],
            vulnerable_versions=via["range"],
        )
        for entry in report["vulnerabilities"].values()
        for via in entry["via"]
        if isinstance(via, dict)
    }
    return sorted(found, key=lambda f: (f.package, f.advisory))


def require_no_advisories(found: list[Finding], what: str) -> None:
    assert not found, f"{what} has {len(found)} known advisories:\n" + "\n".join(
        f"  {f.line()}" for f in found
    )


def lockfile_with(tmp_path: Path, name: str, version: str) -> Path:
    """A lockfile like the pack's, with one dependency at an exact version."""
    lock = {
        "name": "audited",
        "version": "0.0.0",
        "lockfileVersion": 3,
        "requires": True,
        "packages": {
            "": {"name": "audited", "version": "0.0.0", "dependencies": {name: version}},
            f"node_modules/{name}": {"version": version, "license": "MIT"},
        },
    }
    path = tmp_path / f"{name}-{version}.lock.json"
    path.write_text(json.dumps(lock, indent=2))
    return path


class StandInRegistry(ThreadingHTTPServer):
    """npm's bulk advisory endpoint and the packuments npm asks for, on loopback."""

    def __init__(self, advisories: dict[str, list[dict[str, Any]]]) -> None:
        super().__init__(("127.0.0.1", 0), _RegistryHandler)
        self.advisories = advisories
        self.asked: list[dict[str, list[str]]] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/"


class _RegistryHandler(BaseHTTPRequestHandler):
    server: StandInRegistry

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _answer(self, status: int, body: object) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self) -> None:
        if self.path.split("?")[0] != "/-/npm/v1/security/advisories/bulk":
            self._answer(404, {"error": "not found"})
            return
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if self.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        asked: dict[str, list[str]] = json.loads(body)
        self.server.asked.append(asked)
        known = self.server.advisories
        self._answer(200, {name: known[name] for name in asked if name in known})

    def do_GET(self) -> None:
        name = self.path.split("?")[0].lstrip("/").replace("%2f", "/").replace("%2F", "/")
        if name not in self.server.advisories:
            self._answer(404, {"error": "not found"})
            return
        versions = ["4.17.19", "4.17.20", "4.17.21"]
        self._answer(
            200,
            {
                "name": name,
                "dist-tags": {"latest": versions[-1]},
                "versions": {v: {"name": name, "version": v} for v in versions},
            },
        )


@pytest.fixture
def stand_in() -> Iterator[StandInRegistry]:
    server = StandInRegistry({"lodash": [LODASH_COMMAND_INJECTION]})
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def test_a_lockfile_with_a_vulnerable_package_fails_with_its_advisory(
    tmp_path: Path, stand_in: StandInRegistry
) -> None:
    lock = lockfile_with(tmp_path, "lodash", "4.17.20")

    found = audit_lockfile(lock, tmp_path / "audit", registry=stand_in.url)

    # npm sent what the lockfile pins, and reports the advisory that range covers.
    assert {"lodash": ["4.17.20"]} in stand_in.asked
    with pytest.raises(AssertionError) as failure:
        require_no_advisories(found, "the lockfile")
    assert "lodash (<4.17.21): GHSA-35jh-r3h4-6jhm [high] Command Injection in lodash" in str(
        failure.value
    )


def test_a_version_outside_the_advisory_range_passes(
    tmp_path: Path, stand_in: StandInRegistry
) -> None:
    lock = lockfile_with(tmp_path, "lodash", "4.17.21")

    found = audit_lockfile(lock, tmp_path / "audit", registry=stand_in.url)

    assert {"lodash": ["4.17.21"]} in stand_in.asked
    assert found == []
    require_no_advisories(found, "the lockfile")


def test_a_registry_without_an_advisory_endpoint_is_not_a_clean_audit(
    tmp_path: Path, stand_in: StandInRegistry
) -> None:
    stand_in.RequestHandlerClass = _NoAdvisoriesHandler
    lock = lockfile_with(tmp_path, "lodash", "4.17.20")

    with pytest.raises(AuditUnavailable, match="405 Method Not Allowed"):
        audit_lockfile(lock, tmp_path / "audit", registry=stand_in.url)


class _NoAdvisoriesHandler(_RegistryHandler):
    """What a GET-only registry mirror answers."""

    def do_POST(self) -> None:
        self.send_response(405)
        self.send_header("Allow", "GET,HEAD")
        self.send_header("Content-Length", "0")
        self.end_headers()

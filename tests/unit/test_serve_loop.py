"""``plugin-bot serve`` runs on uvloop (``run_event_loop`` in bot/github/service.py), and
its workers run sandboxed commands on that loop: the process runner's loop-facing tests
(readers on the output pipe and on a pidfd, timeouts and cancels that kill the group) run
again here, each on the loop serve uses."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import pytest
import uvloop

from bot.github.service import run_event_loop
from tests.unit import test_sandbox

SANDBOX_TESTS = [
    test_sandbox.test_exit_code_and_signal_are_reported,
    test_sandbox.test_timeout_kills_the_whole_process_group,
    test_sandbox.test_cancel_event_stops_the_run_and_says_so,
    test_sandbox.test_cancelling_the_awaiting_task_kills_the_process,
    test_sandbox.test_argv_is_not_interpreted_by_a_shell,
]


def test_serve_runs_its_coroutine_on_uvloop() -> None:
    seen: list[object] = []

    async def main() -> None:
        seen.append(asyncio.get_running_loop())

    run_event_loop(main())
    assert len(seen) == 1 and isinstance(seen[0], uvloop.Loop)


@pytest.mark.parametrize("sandbox_test", SANDBOX_TESTS, ids=lambda t: t.__name__)
def test_the_sandbox_works_on_serves_loop(
    sandbox_test: Callable[[Path], Coroutine[Any, Any, None]], tmp_path: Path
) -> None:
    loops: list[object] = []

    async def main() -> None:
        loops.append(asyncio.get_running_loop())
        await sandbox_test(tmp_path)

    run_event_loop(main())
    assert isinstance(loops[0], uvloop.Loop)

"""tests.conftest.eventually: the polling the timing-sensitive tests use instead of sleeps."""

import time

import pytest

from tests.conftest import eventually


async def test_eventually_returns_the_first_truthy_value_as_soon_as_it_holds() -> None:
    calls: list[int] = []

    def third_time() -> list[int]:
        calls.append(1)
        return calls if len(calls) == 3 else []

    started = time.monotonic()
    assert await eventually(third_time, within=30, every=0.01) == [1, 1, 1]
    assert time.monotonic() - started < 10  # it did not wait out its deadline


async def test_eventually_fails_with_what_it_waited_for_and_the_last_value() -> None:
    with pytest.raises(AssertionError, match=r"the flag not reached within 0.2s: 0"):
        await eventually(lambda: 0, within=0.2, every=0.05, what="the flag")

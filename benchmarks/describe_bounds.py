"""How long the keyword parser and spec validation take on hostile shapes, against an
ordinary description measured in the same run (moved here from timed unit assertions).

    .venv/bin/python benchmarks/describe_bounds.py [--runs 3]

Prints, per input: its size, the median wall time over the runs, and the ratio to the
baseline (one ordinary description). The unit tests assert what the parser *returns* for
these inputs; this says how long it takes, which depends on the machine.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import time
from collections.abc import Callable

from bot.spec.schema import SpecError, validate_spec
from bot.spec.writers import spec_from_description

SENTENCE = "a weather plugin that reports the temperature for a city and sends alerts. "
BASELINE = "a weather plugin that reports the current temperature for a city"
SHAPES: dict[str, str] = {
    "20 MB of sentences": SENTENCE * (20_000_000 // len(SENTENCE)),
    "200k fences": "```\n" * 200_000,
    "1M-line yaml block": "```yaml\n" + "a: b\n" * 1_000_000,
    "100k yaml flow maps": "```yaml\n" + "".join(f"k{i}: [v, {{x: y}}]\n" for i in range(100_000)),
    "5M letters": "a" * 5_000_000,
    "1M sends": "send " * 1_000_000,
    "1M 'for a'": "for a " * 1_000_000,
    "100k long words": ("x" * 100 + " ") * 100_000,
}


def describe(text: str) -> None:
    with contextlib.suppress(SpecError):
        spec_from_description(text)


def huge_action_list() -> None:
    action = {"name": "A", "description": "a"}
    data = {"name": "plugin-x", "description": "x", "actions": [action] * 200_000}
    with contextlib.suppress(SpecError):
        validate_spec(data)


def median_s(work: Callable[[], None], runs: int) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        work()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    base = median_s(lambda: describe(BASELINE), max(args.runs, 20))
    print(f"{'input':<24} {'chars':>11} {'median s':>10} {'x baseline':>12}")
    print(f"{'baseline description':<24} {len(BASELINE):>11} {base:>10.5f} {1.0:>12.0f}")
    for name, text in SHAPES.items():
        took = median_s(lambda text=text: describe(text), args.runs)  # type: ignore[misc]
        print(f"{name:<24} {len(text):>11} {took:>10.3f} {took / base:>12.0f}")
    took = median_s(huge_action_list, args.runs)
    print(f"{'validate 200k actions':<24} {200_000:>11} {took:>10.3f} {took / base:>12.0f}")


if __name__ == "__main__":
    main()

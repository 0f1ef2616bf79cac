"""How long finding the slash command takes on 64 KB comments (GitHub's limit is 65536
characters), hostile shapes included, against rendering the same comment in the same run.

    .venv/bin/python benchmarks/commands.py [--runs 5]

Per shape: the median wall time of ``parse_command`` at 16 KB and 64 KB and their ratio
(4 is linear, 16 quadratic), and the ratio to markdown-it rendering the 64 KB comment to
HTML (the baseline: what showing the comment costs). The unit tests assert what the
parser returns for such comments; this says how long it takes, which depends on the machine.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

from markdown_it import MarkdownIt

from bot.github.commands import parse_command

COMMAND = "\n/create-plugin a weather plugin that reports the temperature for a city"
# Each shape is a unit repeated to the size, then the command on the next line, in the same
# paragraph (so the inline rules run over all of it), where the shape lets it be one.
SHAPES: dict[str, str] = {
    "prose lines": "The plugin should report the temperature for a city.\n",
    "command-like lines": "/plugin-x: not a command\n",
    "lazy quote lines": "> quoted\n/create-plugin not this\n",
    "table rows": "a | b\n--|--\n",
    "unclosed [": "[",
    "unclosed ![": "![",
    "unclosed <": "<",
    "unclosed attribute": "<a title='\n",
    "backtick runs": "`` ` ``` \n",
    "emphasis": "*_a ",
    "link titles": "[a](u 'b\n",
    "nested quotes": ">",
    "nested lists": "- ",
}


def comment(unit: str, size: int) -> str:
    return (unit * (size // len(unit) + 1))[: size - len(COMMAND)] + COMMAND


def median_ms(call: Callable[[], object], runs: int) -> float:
    walls = []
    for _ in range(runs):
        started = time.perf_counter()
        call()
        walls.append(time.perf_counter() - started)
    return statistics.median(walls) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    render = MarkdownIt("commonmark").enable("table").render
    print(
        f"{'shape':<20} {'found':>6} {'16 KB ms':>9} {'64 KB ms':>9} {'64/16':>6} "
        f"{'render ms':>10} {'x render':>9}"
    )
    for name, unit in SHAPES.items():
        small, large = comment(unit, 16 * 1024), comment(unit, 64 * 1024)
        found = parse_command(large) is not None  # not in a lazy quote or a table
        small_ms = median_ms(lambda t=small: parse_command(t), args.runs)  # type: ignore[misc]
        large_ms = median_ms(lambda t=large: parse_command(t), args.runs)  # type: ignore[misc]
        render_ms = median_ms(lambda t=large: render(t), args.runs)  # type: ignore[misc]
        print(
            f"{name:<20} {found!s:>6} {small_ms:>9.1f} {large_ms:>9.1f} "
            f"{large_ms / small_ms:>6.1f} {render_ms:>10.1f} {large_ms / render_ms:>9.2f}"
        )


if __name__ == "__main__":
    main()

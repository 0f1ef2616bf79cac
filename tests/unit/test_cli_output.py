"""What the CLI prints from a sandbox, a model or a file cannot drive the terminal.

A failing build's output, a phase note from the agent, a spec's names: each can carry OSC 0
(window title), OSC 52 (clipboard write) and CSI (clear screen, cursor moves). Rich strips
only BEL, BS, VT, FF and CR itself, so ESC sequences would reach the terminal whole."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from bot.cli import ProgressReporter
from bot.neutralise import console as shown
from bot.pipeline.context import PhaseRecord

OSC_TITLE = "\x1b]0;pwned-title\x07"
OSC_CLIPBOARD = "\x1b]52;c;Y3VybCBldmlsfHNo\x07"
CSI_CLEAR = "\x1b[2J\x1b[H"
C1_CSI = "\x9b2J"
HOSTILE = f"{OSC_TITLE}{OSC_CLIPBOARD}{CSI_CLEAR}{C1_CSI}error TS2322 [bold]x[/bold]\r"


def assert_harmless(printed: str, terminal: bool = False) -> None:
    # On a terminal rich's live display moves the cursor itself (CR, ESC [2K, ESC [1A).
    own = ("\r",) if terminal else ()
    for sequence in ("\x1b]", "\x07", "\x1b[2J", "\x1b[H", "\x9b", "\r"):
        if sequence not in own:
            assert sequence not in printed, (sequence, printed)
    assert "<U+000D>" in printed  # the sandbox's own CR, made visible
    assert "pwned-title" not in printed and "Y3VybCBldmlsfHNo" not in printed


def console(terminal: bool) -> tuple[Console, io.StringIO]:
    out = io.StringIO()
    return Console(file=out, force_terminal=terminal, width=200, highlight=False), out


@pytest.mark.parametrize("terminal", [False, True], ids=["pipe", "terminal"])
def test_phase_notes_and_errors_reach_the_console_neutralised(terminal: bool) -> None:
    con, out = console(terminal)
    with ProgressReporter(con, ["build"]) as reporter:
        reporter.phase_started("build")
        reporter.phase_note("build", f"round 2: {HOSTILE}")
        record = PhaseRecord("build", state="failed", error=f"the build failed: {HOSTILE}")
        reporter.phase_finished("build", record)
    printed = out.getvalue()
    assert_harmless(printed, terminal)
    # The words are still there for the operator, and markup in them is shown, not applied.
    assert "error TS2322" in printed and "[bold]x[/bold]" in printed


def test_shown_escapes_markup_after_neutralising() -> None:
    assert shown(f"{OSC_CLIPBOARD}[red]x[/red]") == "\\[red]x\\[/red]"

"""Slash commands in a comment: one per comment, on its own line, outside code and quotes.

``/create-plugin <description>`` may continue on the following lines and may carry a fenced
JSON/YAML spec; the other commands take at most a job id. An unknown ``/plugin-…`` is kept
as :class:`CommandName.UNKNOWN` with the closest known command, so the reply can suggest it.
"""

from __future__ import annotations

import difflib
import enum
import re
from dataclasses import dataclass


class CommandName(enum.Enum):
    CREATE = "/create-plugin"
    STATUS = "/plugin-status"
    CANCEL = "/plugin-cancel"
    JOBS = "/plugin-jobs"
    RETRY = "/plugin-retry"
    REVISE = "/plugin-revise"
    HELP = "/plugin-help"
    UNKNOWN = "unknown"
    # Not typed by anyone: the app was installed on repositories (offer onboarding).
    ONBOARD = "onboard"

    @property
    def needs_write(self) -> bool:
        """Commands that start or stop work; the others only read."""
        return self in {
            CommandName.CREATE,
            CommandName.CANCEL,
            CommandName.RETRY,
            CommandName.REVISE,
        }


KNOWN = [c.value for c in CommandName if c.value.startswith("/")]
# A word that looks like one of ours: /plugin-anything or /create-anything.
_OURS = re.compile(r"^/(?:plugin-|create-)[\w-]*$")
_FENCE = re.compile(r"^ {0,3}(```+|~~~+)")
_JOB_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


@dataclass(frozen=True)
class Command:
    name: CommandName
    # create: the description (with any fenced spec); revise: what to change;
    # others: the job id or "".
    argument: str
    # What was typed, for an unknown command; the closest known one.
    typed: str = ""
    suggestion: str | None = None

    def to_dict(self) -> dict[str, str | None]:
        return {
            "name": self.name.value,
            "argument": self.argument,
            "typed": self.typed,
            "suggestion": self.suggestion,
        }

    @classmethod
    def from_dict(cls, data: dict[str, str | None]) -> Command:
        return cls(
            CommandName(data["name"]),
            data.get("argument") or "",
            data.get("typed") or "",
            data.get("suggestion"),
        )


def _command_lines(text: str) -> list[tuple[int, str]]:
    """Lines that may hold a command: outside fenced code, not quoted, not indented code."""
    found: list[tuple[int, str]] = []
    fence: str | None = None
    for index, line in enumerate(text.splitlines()):
        marker = _FENCE.match(line)
        if fence is not None:
            if marker and marker.group(1)[0] == fence[0] and len(marker.group(1)) >= len(fence):
                fence = None
            continue
        if marker:
            fence = marker.group(1)
            continue
        if line.startswith(("    ", "\t")) or line.lstrip().startswith(">"):
            continue
        stripped = line.strip()
        if stripped.startswith("/"):
            found.append((index, stripped))
    return found


def closest(typed: str) -> str | None:
    match = difflib.get_close_matches(typed, KNOWN, n=1, cutoff=0.0)
    return match[0] if match else None


def parse_command(text: str) -> Command | None:
    """The first command in ``text``, or None when there is none."""
    lines = text.splitlines()
    for index, line in _command_lines(text):
        word, _, rest = line.partition(" ")
        word = word.lower()
        if word in {CommandName.CREATE.value, CommandName.REVISE.value}:
            following = "\n".join(lines[index + 1 :])
            description = "\n".join(p for p in (rest.strip(), following.strip()) if p)
            return Command(CommandName(word), description)
        if word in KNOWN:
            token = rest.strip().split(" ", 1)[0].lstrip("#")
            argument = token if _JOB_ID.match(token) else ""
            return Command(CommandName(word), argument)
        if _OURS.match(word):
            return Command(CommandName.UNKNOWN, "", typed=word, suggestion=closest(word))
    return None

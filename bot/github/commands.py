"""Slash commands in a comment: one per comment, on its own line, outside code and quotes.

Where a command counts is decided as GitHub renders the comment (CommonMark with GFM
tables): a line of a **top-level paragraph** (or of a setext heading's text) that starts
with the command word, after at most spaces or tabs, in plain text. So nothing counts
inside fenced or indented code (a fence left open by a "```js" line runs to the end),
HTML blocks and comments (``<!-- … -->``, ``<pre>``, ``<details>`` without a blank line),
block quotes (lazy continuation lines included), list items, tables, code spans and
inline HTML that run over a line break, link texts, or after a backslash. One exception to
HTML blocks: the line right below pasted images (lines holding only an ``<img …>`` tag,
as GitHub's editor inserts a screenshot) belongs to their HTML block, yet shows as plain
text after the image, where its writer typed it: a command there counts. A command in
a list item does not count either: commands are typed at the start of a line, as
``/label``-style bots expect. markdown-it stops reading at its nesting limit (20 levels,
about ten nested lists) and skips what follows such a list: a command after one is missed,
never one inside it taken.

``/create-plugin <description>`` takes the rest of its line and the rest of the comment,
verbatim from the payload (a fenced JSON/YAML spec after it stays byte-exact for
:mod:`bot.spec.blocks`); the other commands take at most a job id. An unknown
``/plugin-…`` is kept as :class:`CommandName.UNKNOWN` with the closest known command, so
the reply can suggest it. The first command wins.
"""

from __future__ import annotations

import difflib
import enum
import itertools
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from markdown_it import MarkdownIt
from markdown_it.rules_inline import StateInline
from markdown_it.token import Token


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
    # A text with a line that may start a command, stored by the webhook request unread:
    # Markdown is read by the dispatcher (``read_stored``), never inside the request, where
    # a hostile 64 KB comment would hold the event loop for seconds. Its argument is the
    # text's source, ``comment`` or ``review``.
    UNREAD = "unread"
    # What an unread text turned out to hold when it holds no command (it is dropped).
    NOTHING = "nothing"

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
# Commands whose argument is the rest of the comment.
_TAKES_TEXT = frozenset({CommandName.CREATE, CommandName.REVISE})
# A word that looks like one of ours (see _is_ours): /plugin-anything, or /create-… that is
# /create-plugin give or take a typo; /create-user or /create-react-app are someone else's.
_PLUGIN_WORD = re.compile(r"/plugin-[\w-]*", re.IGNORECASE)
_CREATE_WORD = re.compile(r"/create-([\w-]*)", re.IGNORECASE)
_WORD = re.compile(r"\S+")
_JOB_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
# A line holding only an <img> tag (CommonMark's open-tag grammar): how GitHub's editor
# inserts a pasted screenshot. Such a line opens an HTML block (type 7) that runs to the
# next blank line and is written out as it is, so the line below it shows as plain text
# right after the image (an <img> is void: it wraps nothing).
_ATTRIBUTE = (
    r"""[ \t]+[A-Za-z_:][A-Za-z0-9_.:-]*"""
    r"""(?:[ \t]*=[ \t]*(?:"[^"]*"|'[^']*'|[^\s"'=<>`]+))?"""
)
_IMAGE_LINE = re.compile(rf" {{0,3}}<img(?:{_ATTRIBUTE})*[ \t]*/?>[ \t]*", re.IGNORECASE)
# CommonMark's line endings (what markdown-it normalises to "\n"; str.splitlines knows more).
_LINE_END = re.compile(r"\r\n?|\n")
# A line that may hold a command, whatever its block: the text is parsed only if one does.
_MAYBE = re.compile(r"(?:^|[\r\n])[ \t]*/(?:plugin-|create-)", re.IGNORECASE)


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


# ----------------------------------------------------------------- where commands count


def _one_typo(typed: str, word: str) -> bool:
    """Whether ``typed`` is ``word`` or one typo away: a letter left out, added, changed,
    or two neighbours swapped."""
    if typed == word:
        return True
    if len(typed) == len(word):
        diff = [i for i, (a, b) in enumerate(zip(typed, word, strict=True)) if a != b]
        swapped = (
            len(diff) == 2
            and diff[1] == diff[0] + 1
            and typed[diff[0]] == word[diff[1]]
            and typed[diff[1]] == word[diff[0]]
        )
        return len(diff) == 1 or swapped
    short, long = sorted((typed, word), key=len)
    return len(long) - len(short) == 1 and any(
        long[:i] + long[i + 1 :] == short for i in range(len(long))
    )


def _is_ours(word: str) -> bool:
    """``/plugin-…`` (an unknown one gets the closest command), or ``/create-plugin`` and
    what starts with it or is one typo from it (``/create-plugn``); not ``/create-user``."""
    if _PLUGIN_WORD.fullmatch(word):
        return True
    create = _CREATE_WORD.fullmatch(word)
    if create is None:
        return False
    rest = create.group(1).lower()
    return rest.startswith("plugin") or _one_typo(rest, "plugin")


_STATE = "plugin_bot.commands.state"
_STARTS = "plugin_bot.commands.starts"


def _note_command_start(state: StateInline, silent: bool) -> bool:
    """An inline rule that never consumes: notes where a line of the paragraph begins
    with one of our words in plain text (not in a code span, inline HTML or link text)."""
    src, pos = state.src, state.pos
    if silent or state.level or src[pos] != "/" or state.env.get(_STATE) is not state:
        return False
    begin = pos
    while begin and src[begin - 1] in " \t":
        begin -= 1
    if begin and src[begin - 1] != "\n":
        return False
    word = _WORD.match(src, pos)
    if word is not None and _is_ours(word.group()):
        state.env[_STARTS].append(pos)  # "/label" or "/create-plugin:" is not ours
    return False


def _parser() -> MarkdownIt:
    # GitHub's renderer is CommonMark plus GFM; of GFM only tables change where a line
    # belongs (a line after a table's delimiter row is a row, not a paragraph).
    md = MarkdownIt("commonmark").enable("table")
    # Inline content is tokenized only for top-level paragraphs, by _starts_in.
    md.disable("inline")
    md.inline.ruler.before("text", "plugin_bot_command_start", _note_command_start)
    return md


_MARKDOWN = _parser()


def _top_level_text(tokens: list[Token]) -> Iterator[Token]:
    """The inline tokens of top-level paragraphs and setext headings, and the top-level
    HTML blocks, in order."""
    if tokens and tokens[0].type == "html_block":
        yield tokens[0]
    for opening, inline in itertools.pairwise(tokens):
        if inline.type == "html_block" and inline.level == 0:
            yield inline
            continue
        if inline.type != "inline" or opening.level != 0 or inline.map is None:
            continue
        setext = opening.type == "heading_open" and opening.markup in ("=", "-")
        if opening.type == "paragraph_open" or setext:
            yield inline


def _starts_in(inline: Token, env: dict[str, Any]) -> list[int]:
    """Offsets in ``inline.content`` where a line starts with one of our words."""
    starts: list[int] = []
    env[_STARTS] = starts
    env[_STATE] = state = StateInline(inline.content, _MARKDOWN, env, [])
    _MARKDOWN.inline.tokenize(state)
    return starts


class _Source:
    """The comment's lines as markdown-it saw them, mapped back to offsets in the payload."""

    def __init__(self, text: str) -> None:
        self.text = text
        breaks = list(_LINE_END.finditer(text))
        self.line_starts = [0] + [m.end() for m in breaks]
        self.line_ends = [m.start() for m in breaks] + [len(text)]

    def line(self, index: int) -> str:
        """Line ``index`` as markdown-it read it (NUL is U+FFFD there, same length)."""
        return self.text[self.line_starts[index] : self.line_ends[index]].replace("\0", "\ufffd")

    def below_images(self, block: Token) -> int | None:
        """Where a command starts in a top-level HTML block that opens with pasted images:
        at the start of the first line after them (not a tag: shown as text), or None."""
        assert block.map is not None
        first, end = block.map
        index = first
        while index < end and _IMAGE_LINE.fullmatch(self.line(index)):
            index += 1
        if index in (first, end):
            return None
        line = self.line(index)
        word = _WORD.match(line, len(line) - len(line.lstrip(" \t")))
        if word is None or not _is_ours(word.group()):
            return None
        return self.line_starts[index] + word.start()

    def offsets(self, inline: Token, starts: list[int]) -> Iterator[int]:
        """Where the ``starts`` in a top-level paragraph's content lie in the payload, for
        those that begin their line after at most spaces or tabs there too."""
        assert inline.map is not None
        first, end = inline.map
        joined = "\n".join(self.line(i) for i in range(first, end))
        # The content is its lines, stripped: find where it begins.
        lead = len(joined) - len(joined.lstrip())
        if joined[lead : lead + len(inline.content)] != inline.content:
            return  # not lines taken whole from the source: nothing to map safely
        line_index, scanned = first, 0
        for start in starts:
            at = lead + start
            line_index += joined.count("\n", scanned, at)
            scanned = at
            column = at - (joined.rfind("\n", 0, at) + 1)
            line_start = self.line_starts[line_index]
            # Unicode spaces stripped off a first line are not indentation to CommonMark.
            if not self.text[line_start : line_start + column].strip(" \t"):
                yield line_start + column


def _command_offset(text: str) -> int | None:
    """Where the first command of ``text`` starts in it, or None."""
    if not _MAYBE.search(text):
        return None
    env: dict[str, Any] = {}
    tokens = _MARKDOWN.parse(text, env)
    source: _Source | None = None
    for inline in _top_level_text(tokens):
        if inline.type == "html_block":
            source = source or _Source(text)
            below = source.below_images(inline)
            if below is not None:
                return below
            continue
        # Inline parsing costs most: only where a line may hold a command.
        starts = _starts_in(inline, env) if _MAYBE.search(inline.content) else []
        if starts:
            source = source or _Source(text)
            for offset in source.offsets(inline, starts):
                return offset
    return None


# ----------------------------------------------------------------- what a command carries


def closest(typed: str) -> str | None:
    match = difflib.get_close_matches(typed, KNOWN, n=1, cutoff=0.0)
    return match[0] if match else None


def _command(word: str, rest: str) -> Command:
    """The command for ``word`` and the text after it up to the end of the comment."""
    lowered = word.lower()
    if lowered not in KNOWN:
        return Command(CommandName.UNKNOWN, "", typed=lowered, suggestion=closest(lowered))
    name = CommandName(lowered)
    if name in _TAKES_TEXT:
        return Command(name, rest.strip())
    line = _LINE_END.split(rest, maxsplit=1)[0].split()
    token = line[0].lstrip("#") if line else ""
    return Command(name, token if _JOB_ID.match(token) else "")


def parse_command(text: str) -> Command | None:
    """The first command in ``text``, or None when there is none."""
    offset = _command_offset(text)
    if offset is None:
        return None
    word = _WORD.match(text, offset)
    assert word is not None, "a command start is where a word starts"
    return _command(word.group(), text[word.end() :])


def might_hold_command(text: str) -> bool:
    """Whether a line of ``text`` starts with one of our words: a linear scan, no Markdown
    (what the webhook request may afford). ``parse_command`` decides whether one counts."""
    return _MAYBE.search(text) is not None


# The source of a review on a pull request that is not the bot's: only an explicit
# /plugin-revise in it counts (and is answered); anything else is dropped silently.
REVIEW_ELSEWHERE = "review-elsewhere"


def unread(source: str) -> Command:
    """A text to read later (``source``: ``comment`` or ``review``)."""
    return Command(CommandName.UNREAD, source)


def read_stored(source: str, text: str) -> Command:
    """The command an unread text holds, read as GitHub renders it: a comment's first
    command, or :attr:`CommandName.NOTHING`; a review's ``/plugin-revise``, or else its
    whole text as the revision request."""
    command = parse_command(text)
    revise = command is not None and command.name is CommandName.REVISE
    if source == REVIEW_ELSEWHERE:
        return command if command is not None and revise else Command(CommandName.NOTHING, "")
    if source == "review":
        if command is not None and revise:
            return command
        return Command(CommandName.REVISE, text.strip())
    return command if command is not None else Command(CommandName.NOTHING, "")


def stored_command(name: str, argument: str) -> Command:
    """The command the store kept as its name and argument (a review's whole text as a
    ``/plugin-revise`` request, say): rebuilt as it was, not parsed again as Markdown."""
    command = CommandName(name)
    if command is CommandName.UNKNOWN:
        return Command(command, "", typed=argument, suggestion=closest(argument))
    return Command(command, argument)

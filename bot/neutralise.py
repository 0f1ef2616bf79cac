"""Text from a sandbox, a model or a commenter, made harmless for where it is shown.

* :func:`plain` — for a terminal or a log line: escape sequences (CSI, OSC such as a
  title change or an OSC 52 clipboard write, DCS…) are removed whole; every other C0/C1
  control but newline and tab, and every format or bidi character (Unicode Cf), is made
  visible as ``<U+XXXX>``, so nothing can move the cursor, rewrite a line or reorder text.
* :func:`console` — :func:`plain`, then Rich markup escaped: for a console line with markup.
* :func:`md_text` — for a GitHub comment or PR body as prose: :func:`plain`, then every
  Markdown punctuation mark escaped, HTML impossible, ``@`` and bare URLs broken with a
  zero-width space so GitHub neither notifies nor links; inline text is one line.
  Issue references (``#12``, ``owner/repo#12``, ``GH-12``) are broken the same way: a
  backslash before ``#`` disappears on rendering and GitHub would still cross-reference
  the issue, or close it after "fixes".
* :func:`md_code` / :func:`md_block` — the same text shown verbatim in a code span or a
  fenced block whose fence is longer than any backtick run inside (code is never linked,
  mentioned or rendered). In a table cell a code span needs ``table_cell=True``: GFM splits
  cells at every ``|`` before it reads code spans, and honours ``\\|`` inside them.
"""

from __future__ import annotations

import re
import unicodedata

from rich.markup import escape

# ESC-introduced sequences: CSI … final byte; OSC/DCS/SOS/PM/APC … BEL or ST; two-byte ESC x.
_ESCAPES = re.compile(
    r"\x1b\[[0-?]*[ -/]*[@-~]"
    r"|\x1b[\]PX^_].*?(?:\x07|\x1b\\|\x9c|$)"
    r"|\x9b[0-?]*[ -/]*[@-~]"
    r"|[\x90\x9d\x98\x9e\x9f].*?(?:\x07|\x1b\\|\x9c|$)"
    r"|\x1b[ -~]?",
    re.DOTALL,
)
_KEEP = frozenset("\n\t")
# The zero-width space as an HTML entity: GitHub renders nothing, and a mention or an
# autolink no longer matches (the same defence Renovate uses in its PR bodies).
ZWSP = "&#8203;"
_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()<>#+\-.!|~=^\"'$:&])")
_URL_SCHEME = re.compile(r"(?i)\b(https?|ftp|mailto|www)(?=\\[:.])")
# After escaping: "\#12" (also the end of "owner/repo\#12") and "GH\-12".
_ISSUE_REF = re.compile(r"(?i)(\\#|\bgh\\-)(?=\d)")


def _visible(ch: str) -> str:
    return f"<U+{ord(ch):04X}>"


def plain(text: str) -> str:
    """``text`` safe for a terminal or a log line (see the module docstring)."""
    text = _ESCAPES.sub("", text.replace("\r\n", "\n"))
    out: list[str] = []
    for ch in text:
        if ch in _KEEP:
            out.append(ch)
        elif unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Zl", "Zp"):
            out.append(_visible(ch))
        else:
            out.append(ch)
    return "".join(out)


def console(text: str) -> str:
    """``text`` for a Rich console line with markup: :func:`plain`, markup escaped."""
    return escape(plain(text))


def md_text(text: str, *, inline: bool = True, limit: int | None = None) -> str:
    """``text`` as Markdown prose that renders as exactly these characters.

    ``inline`` joins lines with spaces (a value in a sentence or a table cell);
    otherwise line breaks stay, as separate paragraphs lines. ``limit`` cuts the text
    (before escaping) with an ellipsis.
    """
    text = plain(text)
    if inline:
        text = " ".join(text.split())
    if limit is not None and len(text) > limit:
        text = text[: max(0, limit - 1)].rstrip() + "…"
    text = _MD_SPECIAL.sub(r"\\\1", text)
    text = text.replace("@", "@" + ZWSP)
    text = _URL_SCHEME.sub(lambda m: m.group(1)[0] + ZWSP + m.group(1)[1:], text)
    text = _ISSUE_REF.sub(lambda m: m.group(1) + ZWSP, text)
    if not inline:
        text = text.replace("\n", "  \n")
    return text


def _longest_run(text: str, char: str) -> int:
    runs = re.findall(f"{re.escape(char)}+", text)
    return max((len(r) for r in runs), default=0)


def md_code(text: str, *, limit: int | None = None, table_cell: bool = False) -> str:
    """``text`` on one line as an inline code span; ``table_cell``: for a GFM table cell,
    every ``|`` escaped (the table reads ``\\|`` as ``|`` even in a code span; a bare one
    would end the cell)."""
    text = " ".join(plain(text).split())
    if limit is not None and len(text) > limit:
        text = text[: max(0, limit - 1)].rstrip() + "…"
    if not text:
        return "` `"
    fence = "`" * (_longest_run(text, "`") + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    if table_cell:
        text = text.replace("|", "\\|")
    return f"{fence}{pad}{text}{pad}{fence}"


def md_block(text: str, language: str = "") -> str:
    """``text`` as a fenced code block, verbatim but for :func:`plain`."""
    body = plain(text).rstrip("\n")
    fence = "`" * max(3, _longest_run(body, "`") + 1)
    language = re.sub(r"[^A-Za-z0-9_+-]", "", language)
    return f"{fence}{language}\n{body}\n{fence}"

"""Sandbox, model and commenter text cannot drive a terminal or write Markdown it didn't mean."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.neutralise import ZWSP, md_block, md_code, md_text, plain

OSC_TITLE = "\x1b]0;pwned\x07"
OSC_CLIPBOARD = "\x1b]52;c;ZWNobyBoaQ==\x1b\\"
CSI_CLEAR = "\x1b[2J\x1b[1;31m"


def test_plain_removes_osc_title_and_clipboard_writes_and_csi_whole() -> None:
    text = f"before{OSC_TITLE}{OSC_CLIPBOARD}{CSI_CLEAR}after\n"
    assert plain(text) == "beforeafter\n"


@pytest.mark.parametrize("ch", ["\r", "\x07", "\x08", "\x7f", "\x85", "\x9b", "\u202e", "\u200b"])
def test_plain_makes_other_controls_and_format_characters_visible(ch: str) -> None:
    out = plain(f"a{ch}z")
    assert ch not in out and out.startswith("a")
    if ch != "\x9b":  # a lone C1 CSI takes its final byte with it, like ESC [
        assert out == f"a<U+{ord(ch):04X}>z"


def test_plain_keeps_newlines_tabs_and_ordinary_unicode() -> None:
    assert plain("naïve\tcafé\n✓ 東京") == "naïve\tcafé\n✓ 東京"


@given(st.text())
def test_plain_never_lets_a_control_or_format_character_through(text: str) -> None:
    out = plain(text)
    assert not re.search(
        r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2066-\u2069]", out
    )


def test_md_text_defuses_mentions_and_bare_urls() -> None:
    out = md_text("ping @octocat and @org/team, see https://evil.test/x and www.evil.test")
    unescaped = out.replace("\\", "")
    assert not re.search(r"@[A-Za-z0-9]", unescaped)
    assert "https://" not in unescaped and "www." not in unescaped
    assert unescaped.replace(ZWSP, "") == (
        "ping @octocat and @org/team, see https://evil.test/x and www.evil.test"
    )


def test_md_text_cannot_open_links_images_html_or_headings() -> None:
    out = md_text(
        "# Title\n![x](https://a.test/i.png) [y](javascript:alert(1)) <img src=x> <b>", inline=False
    )
    assert not re.search(r"(?<!\\)[\[\]()<>!#]", out.replace(ZWSP, ""))
    assert "\\<img" in out and "\\<b\\>" in out  # shown as text, never as HTML


def test_md_text_inline_is_one_line_and_cut() -> None:
    assert "\n" not in md_text("a\nb\n\n# c")
    out = md_text("x" * 50, limit=10)
    assert out == "x" * 9 + "…"


def test_md_code_fences_around_backticks_and_strips_controls() -> None:
    assert md_code("a ``b`` c") == "```a ``b`` c```"
    assert md_code("`x`") == "`` `x` ``"
    assert "\x1b" not in md_code(f"x{CSI_CLEAR}y")


def test_md_block_fence_is_longer_than_any_backtick_run_inside() -> None:
    body = "```\n# not a heading\n````"
    block = md_block(body, "ts")
    first, *_, last = block.split("\n")
    assert first == "`````ts" and last == "`````"
    assert md_block("x", "j<s>").startswith("```js\n")

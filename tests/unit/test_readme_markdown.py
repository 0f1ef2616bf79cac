"""Spec text in the generated README cannot make links, mentions, images, HTML or headings.

The README is rendered to HTML the way GitHub treats Markdown (markdown-it's GFM-like
preset: tables, raw HTML allowed, bare URLs linkified) and compared with a README of a
harmless spec of the same shape: the hostile one may not add a single element.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from markdown_it import MarkdownIt

from bot.pack import load_pack, render_pack
from bot.settings import REPO_ROOT
from bot.spec.schema import validate_spec

ATTACKS = (
    "ping @octocat and @github/security",
    "visit https://evil.example/x and www.evil.example or mailto:a@b.example",
    "<img src=x onerror=alert(1)> <b>bold</b> <!-- hidden --> <a href='https://x'>a</a>",
    "![pixel](https://evil.example/p.png) [click](https://evil.example)",
    "# Heading\n## Another\n---\n> quote",
    "<https://evil.example/auto> `code` *em* | pipe |",
)
HOSTILE = " ".join(ATTACKS)


def spec_data(text: str) -> dict[str, Any]:
    return {
        "name": "plugin-md",
        "description": text,
        "actions": [
            {
                "name": "SendTip",
                "description": text,
                "parameters": [{"name": "amount", "description": text, "type": "number"}],
            }
        ],
        "providers": [{"name": "Balance", "description": text}],
        "services": [
            {
                "name": "Ledger",
                "description": text,
                "methods": [{"name": "record", "description": text}],
            }
        ],
        "evaluators": [{"name": "Requests", "description": text}],
        "environment": [{"name": "MD_API_KEY", "description": text, "sensitive": True}],
    }


def readme_for(text: str, tmp_path: Path) -> str:
    pack = load_pack(REPO_ROOT / "templates" / "elizaos-plugin")
    dest = tmp_path / str(abs(hash(text)))
    render_pack(pack, validate_spec(spec_data(text)), dest)
    return (dest / "README.md").read_text(encoding="utf-8")


def tags(html: str) -> list[str]:
    return re.findall(r"<([a-z][a-z0-9]*)\b", html)


@pytest.fixture(scope="module")
def markdown() -> MarkdownIt:
    return MarkdownIt("gfm-like")


def test_hostile_spec_text_adds_no_element_to_the_readme(
    markdown: MarkdownIt, tmp_path: Path
) -> None:
    plain = markdown.render(readme_for("plain words here", tmp_path))
    hostile = markdown.render(readme_for(HOSTILE, tmp_path))
    # the same elements, in the same order: no link, image, heading, rule, quote or HTML
    assert tags(hostile) == tags(plain)
    for element in ("<a ", "<img", "<b>", "<!--"):
        assert element not in hostile, element


@pytest.mark.parametrize("attack", ATTACKS)
def test_each_attack_alone_adds_no_element(
    attack: str, markdown: MarkdownIt, tmp_path: Path
) -> None:
    plain = markdown.render(readme_for("plain words here", tmp_path))
    assert tags(markdown.render(readme_for(attack, tmp_path))) == tags(plain)


def test_mentions_and_bare_urls_are_broken_for_github(tmp_path: Path) -> None:
    # Code spans and blocks are never linked or mentioned; only prose counts.
    readme = re.sub(r"```.*?```|`[^`]*`", "", readme_for(HOSTILE, tmp_path), flags=re.DOTALL)
    # GitHub notifies on @name and autolinks scheme:// and www. even where markdown-it
    # would not: every one of them is interrupted by a zero-width space.
    assert re.search(r"@[A-Za-z0-9]", readme) is None
    assert re.search(r"(?i)(https?|mailto)\\?:", readme) is None
    assert re.search(r"(?i)\bwww\\?\.", readme) is None
    assert "octocat" in readme and "evil" in readme  # the text itself is still shown

"""Fenced spec blocks: a ```json / ```yaml block in a comment is the spec itself.

If the text holds a fenced code block marked ```json, ```yaml, ```yml or left bare, the
first such block is the spec. ```json is read as JSON, ```yaml/```yml as YAML
(``safe_load`` rules, plus: no aliases, no repeated keys, only plain mappings, lists,
text, numbers, booleans and nulls), a bare block as JSON and else YAML. The result goes
through :func:`bot.spec.schema.validate_spec`; a missing ``description`` is filled from
the prose around the block.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import yaml
from yaml.constructor import ConstructorError
from yaml.nodes import MappingNode, Node, ScalarNode

from bot.spec.schema import (
    INVISIBLE_CATEGORIES,
    MAX_DESCRIPTION_LENGTH,
    PluginSpec,
    SpecError,
    validate_spec,
)

# An opening fence may carry an info string ("```yaml title=spec"); its first word is the
# language. A line with more backticks after the fence is inline code, not a fence.
_FENCE_OPEN = re.compile(r"^ {0,3}```+[ \t]*([^`\s]*)[^`]*$")
_FENCE_CLOSE = re.compile(r"^ {0,3}```+[ \t]*$")
SPEC_LANGUAGES = frozenset({"json", "yaml", "yml", ""})


def clean_input(text: str) -> str:
    """Drop what bot.spec refuses (control, format, surrogate and private-use characters);
    line and other breaks become plain."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    out: list[str] = []
    for ch in text:
        if ch in "\n\t":
            out.append(ch)
            continue
        category = unicodedata.category(ch)
        if category in ("Zl", "Zp") or ch == "\x85":
            out.append("\n")
        elif category == "Cc" and ch.isspace():
            out.append(" ")
        elif category not in INVISIBLE_CATEGORIES:
            out.append(ch)
    return "".join(out)


def collapse(text: str) -> str:
    return " ".join(text.split())


@dataclass(frozen=True)
class Fence:
    language: str
    body: str
    first_line: int  # 1-based line of the block's first content line in the text


def split_fences(text: str) -> tuple[Fence | None, str]:
    """The first spec block (if any) and the text outside every fenced block."""
    lines = text.split("\n")
    outside: list[str] = []
    spec: Fence | None = None
    i = 0
    while i < len(lines):
        opening = _FENCE_OPEN.match(lines[i])
        if not opening:
            outside.append(lines[i])
            i += 1
            continue
        language = opening.group(1).lower()
        start = i + 1
        end = start
        while end < len(lines) and not _FENCE_CLOSE.match(lines[end]):
            end += 1
        if spec is None and language in SPEC_LANGUAGES:
            spec = Fence(language, "\n".join(lines[start:end]), start + 1)
        i = end + 1
    return spec, "\n".join(outside)


class _SpecLoader(yaml.SafeLoader):
    """safe_load, refusing aliases (expansion bombs) and repeated keys."""

    def compose_node(self, parent: Node | None, index: int) -> Node | None:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()  # type: ignore[no-untyped-call]
            raise ConstructorError(
                None, None, "aliases (*name) are not allowed in a spec", event.start_mark
            )
        return super().compose_node(parent, index)

    def construct_mapping(self, node: MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[str] = set()
        for key_node, _value in node.value:
            if isinstance(key_node, ScalarNode):
                if key_node.value in seen:
                    raise ConstructorError(
                        None, None, f"key {key_node.value!r} appears twice", key_node.start_mark
                    )
                seen.add(key_node.value)
        return dict(super().construct_mapping(node, deep))


def _json_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"key {key!r} appears twice")
        out[key] = value
    return out


def _block_name(fence: Fence) -> str:
    return f"```{fence.language} block" if fence.language else "``` block"


def _load_json(fence: Fence) -> Any:
    try:
        return json.loads(fence.body, object_pairs_hook=_json_pairs)
    except json.JSONDecodeError as exc:
        raise SpecError(
            [
                f"spec: invalid JSON at line {exc.lineno}, column {exc.colno} of the "
                f"{_block_name(fence)}: {exc.msg}"
            ]
        ) from None


def _load_yaml(fence: Fence) -> Any:
    try:
        return yaml.load(fence.body, Loader=_SpecLoader)  # noqa: S506 - a SafeLoader
    except yaml.MarkedYAMLError as exc:
        where = ""
        mark = exc.problem_mark or exc.context_mark
        if mark is not None:
            where = f" at line {mark.line + 1}, column {mark.column + 1}"
        what = "; ".join(p for p in (exc.context, exc.problem) if p) or "unreadable"
        raise SpecError(
            [f"spec: invalid YAML{where} of the {_block_name(fence)}: {what}"]
        ) from None
    except yaml.YAMLError as exc:
        first = str(exc).splitlines()[0] if str(exc) else "unreadable"
        raise SpecError([f"spec: invalid YAML in the {_block_name(fence)}: {first}"]) from None


def _load_block(fence: Fence) -> Any:
    if not fence.body.strip():
        raise SpecError([f"spec: the {_block_name(fence)} is empty"])
    try:
        if fence.language == "json":
            return _load_json(fence)
        if fence.language in ("yaml", "yml"):
            return _load_yaml(fence)
        try:
            return json.loads(fence.body, object_pairs_hook=_json_pairs)
        except ValueError:
            return _load_yaml(fence)
    except RecursionError:
        raise SpecError([f"spec: the {_block_name(fence)} is nested too deeply"]) from None
    except ValueError as exc:
        if isinstance(exc, SpecError):
            raise
        raise SpecError([f"spec: the {_block_name(fence)} can't be read: {exc}"]) from None


_PLAIN = (str, int, float, bool, type(None))


def _check_plain(data: Any, fence: Fence) -> None:
    """Only JSON's shapes: sets, dates, bytes and odd keys would make order or meaning vary."""
    stack: list[Any] = [data]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            for key, value in item.items():
                if not isinstance(key, str):
                    raise SpecError(
                        [f"spec: keys in the {_block_name(fence)} must be text, not {key!r}"]
                    )
                stack.append(value)
        elif isinstance(item, list):
            stack.extend(item)
        elif not isinstance(item, _PLAIN):
            raise SpecError(
                [
                    f"spec: the {_block_name(fence)} may hold only mappings, lists, text, "
                    f"numbers, booleans and null, not {type(item).__name__}"
                ]
            )


def spec_from_block(
    fence: Fence, prose: str, allowed_dependencies: Mapping[str, str] | None
) -> PluginSpec:
    data = _load_block(fence)
    if not isinstance(data, dict):
        kind = "a list" if isinstance(data, list) else type(data).__name__
        raise SpecError(
            [
                f"spec: the {_block_name(fence)} must be a mapping of fields (name, "
                f"description, actions, ...), not {kind}"
            ]
        )
    _check_plain(data, fence)
    if data.get("description") is None:
        filled = collapse(prose)[:MAX_DESCRIPTION_LENGTH].strip()
        if filled:
            data = {**data, "description": filled}
    return validate_spec(data, allowed_dependencies)

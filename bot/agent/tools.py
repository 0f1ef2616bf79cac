"""The tools the model works through, and the checks every call passes first.

Everything a tool call carries comes from a model steered by a stranger's comment, so
each call is validated before anything touches the disk: the input must match the
tool's schema exactly (no missing, extra or mistyped fields), paths are POSIX paths
relative to the plugin directory that stay in the places the model may write
(``src/**``, ``__tests__/**``, ``README.md``), and nothing goes through a symlink.
A refused call changes nothing and returns an explanation the model can act on.
``package.json`` changes only through ``request_dependency``, against the allow-list.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bot import paths
from bot.pack import PACKAGE_JSON
from bot.paths import is_test_file
from bot.testresults import TestResults
from bot.workspace import GENERATED_DIRS, FileSet

MAX_FILE_BYTES = 256 * 1024
MAX_PLUGIN_FILES = 200
MAX_SUMMARY_CHARS = 4000
MAX_COMPILER_ERRORS = 15
MAX_FAILING_TESTS = 15
MAX_LINE_CHARS = 300
WRITABLE_DIRS = ("src", "__tests__")
WRITABLE_FILES = ("README.md",)
_GENERATED_PARTS = frozenset(d.casefold() for d in GENERATED_DIRS)


class ToolRefused(Exception):
    """A tool call that is refused; the message is returned to the model."""


@dataclass(frozen=True)
class ToolOutcome:
    content: str
    is_error: bool = False


def _schema(properties: Mapping[str, str]) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {
            name: {"type": "string", "description": d} for name, d in properties.items()
        },
        "required": list(properties),
        "additionalProperties": False,
    }


PATH_HELP = "POSIX path relative to the plugin directory, e.g. src/actions/get-weather.ts"

TOOLS: tuple[dict[str, Any], ...] = (
    {
        "name": "list_files",
        "description": "List the plugin's files (POSIX paths relative to the plugin directory, "
        "with sizes). Build output and node_modules are not listed.",
        "input_schema": _schema({}),
    },
    {
        "name": "read_file",
        "description": "Read one file of the plugin (any listed file, e.g. package.json).",
        "input_schema": _schema({"path": PATH_HELP}),
    },
    {
        "name": "write_file",
        "description": "Create or replace a file under src/ or __tests__/, or README.md, with "
        f"the full new content (at most {MAX_FILE_BYTES // 1024} KB, UTF-8).",
        "input_schema": _schema({"path": PATH_HELP, "content": "the complete file content"}),
    },
    {
        "name": "delete_file",
        "description": "Delete a file under src/ or __tests__/.",
        "input_schema": _schema({"path": PATH_HELP}),
    },
    {
        "name": "request_dependency",
        "description": "Add an npm package from the allow-list to package.json's dependencies "
        "(the only way to change package.json; the lockfile is regenerated on the next checks).",
        "input_schema": _schema({"name": "the npm package name"}),
    },
    {
        "name": "run_checks",
        "description": "Build (tsc, tsup) and run the tests (vitest) in the sandbox, without "
        "network. Returns a compact summary: counts, failing tests, first compiler errors.",
        "input_schema": _schema({}),
    },
    {
        "name": "finish",
        "description": "Declare the plugin done. Accepted only after a passing run_checks with "
        "no edits since.",
        "input_schema": _schema({"summary": "what the plugin now does, in a few sentences"}),
    },
)
TOOL_NAMES = frozenset(t["name"] for t in TOOLS)


def tool_definitions() -> list[dict[str, Any]]:
    """The tool list for the model; the last one marks the end of the cached prefix."""
    tools = [dict(t) for t in TOOLS]
    tools[-1]["cache_control"] = {"type": "ephemeral"}
    return tools


def validate_input(name: str, data: Any) -> dict[str, str]:
    """The tool input if it matches the tool's schema exactly; ToolRefused otherwise."""
    tool = next((t for t in TOOLS if t["name"] == name), None)
    if tool is None:
        raise ToolRefused(f"unknown tool {name!r}; the tools are: {', '.join(sorted(TOOL_NAMES))}")
    if not isinstance(data, Mapping):
        raise ToolRefused(f"{name}: the input must be a JSON object")
    wanted: list[str] = tool["input_schema"]["required"]
    extra = sorted(str(k) for k in data if k not in wanted)
    missing = [k for k in wanted if k not in data]
    if extra:
        raise ToolRefused(f"{name}: unexpected field(s) {', '.join(extra)}")
    if missing:
        raise ToolRefused(f"{name}: missing field(s) {', '.join(missing)}")
    for key in wanted:
        if not isinstance(data[key], str):
            raise ToolRefused(f"{name}: field {key!r} must be a string")
    return {k: data[k] for k in wanted}


# ------------------------------------------------------------------------------ paths


def _check_syntax(path: str) -> tuple[str, ...]:
    """The shared path rule (bot/paths.py), plus: no generated folder at any depth."""
    try:
        parts = paths.check_relative(path)
    except paths.PathRefused as exc:
        raise ToolRefused(str(exc)) from None
    for part in parts:
        if part.casefold() in _GENERATED_PARTS:
            raise ToolRefused(f"the path {path!r} is under {part}/, which the model may not touch")
    return parts


def _writable(parts: tuple[str, ...], path: str) -> None:
    if len(parts) == 1 and parts[0] in WRITABLE_FILES:
        return
    if len(parts) >= 2 and parts[0] in WRITABLE_DIRS:
        return
    raise ToolRefused(
        f"the path {path!r} is not writable: only src/**, __tests__/** and README.md are; "
        "package.json changes through request_dependency"
    )


class PluginFiles:
    """The checked file operations on the plugin's authoritative file set.

    Reads come from the set, writes go into it (and, through the link-refusing helpers of
    bot/paths.py, into the directory the sandbox reads), so what a build or test run did
    to the directory never reaches the model's view or the signed plugin.
    """

    def __init__(self, files: FileSet | Path, allowed_dependencies: Mapping[str, str]) -> None:
        self.set = files if isinstance(files, FileSet) else FileSet.read_from(files.resolve())
        self.root = self.set.root
        self.allowed_dependencies = allowed_dependencies
        self.package_changed = False

    def resolve(self, path: str, *, writable: bool) -> str:
        """The checked relative path for ``path``; ToolRefused when it is not allowed."""
        parts = _check_syntax(path)
        if writable:
            _writable(parts, path)
        for depth in range(1, len(parts)):
            if "/".join(parts[:depth]) in self.set:
                raise ToolRefused(f"{'/'.join(parts[:depth])} is a file, not a directory")
        return "/".join(parts)

    def files(self) -> list[str]:
        """The plugin's files (build output, node_modules and caches are never in it)."""
        return self.set.names()

    def content(self, rel: str) -> bytes | None:
        return self.set.get(rel)

    def list_files(self) -> str:
        lines = [f"{rel} ({len(self.set.contents[rel])} bytes)" for rel in self.files()]
        return "\n".join(lines) or "(no files)"

    def read_file(self, path: str) -> str:
        rel = self.resolve(path, writable=False)
        data = self.set.get(rel)
        if data is None:
            raise ToolRefused(f"{path} does not exist (list_files shows what does)")
        if len(data) > MAX_FILE_BYTES:
            raise ToolRefused(f"{path} is larger than {MAX_FILE_BYTES // 1024} KB")
        return data.decode("utf-8", "replace")

    def write_file(self, path: str, content: str) -> str:
        rel = self.resolve(path, writable=True)
        try:
            data = content.encode("utf-8")
        except UnicodeEncodeError:
            raise ToolRefused(f"the content of {path} is not valid Unicode text") from None
        if len(data) > MAX_FILE_BYTES:
            raise ToolRefused(
                f"the content of {path} is {len(data)} bytes; the limit is {MAX_FILE_BYTES}"
            )
        if "\x00" in content:
            raise ToolRefused(f"the content of {path} contains NUL; source files are text")
        if any(name.startswith(rel + "/") for name in self.set.names()):
            raise ToolRefused(f"{path} exists and is not a regular file")
        if rel not in self.set and len(self.set) + 1 > MAX_PLUGIN_FILES:
            raise ToolRefused(f"the plugin would have more than {MAX_PLUGIN_FILES} files")
        try:
            self.set.write(rel, data)
        except paths.PathRefused as exc:
            raise ToolRefused(str(exc)) from None
        return f"wrote {path} ({len(data)} bytes)"

    def delete_file(self, path: str) -> str:
        rel = self.resolve(path, writable=True)
        if rel not in self.set:
            raise ToolRefused(f"{path} is not an existing file")
        try:
            self.set.remove(rel)
        except paths.PathRefused as exc:
            raise ToolRefused(str(exc)) from None
        return f"deleted {path}"

    def request_dependency(self, name: str) -> str:
        if name not in self.allowed_dependencies:
            allowed = ", ".join(sorted(self.allowed_dependencies)) or "none"
            raise ToolRefused(f"{name!r} is not an allowed dependency (allowed: {allowed})")
        version = self.allowed_dependencies[name]
        data = self.set.get(PACKAGE_JSON)
        try:
            package = json.loads(data or b"")
        except json.JSONDecodeError as exc:
            raise ToolRefused(f"package.json cannot be read: {exc}") from None
        if not isinstance(package, dict):
            raise ToolRefused("package.json is not a JSON object")
        deps = package.setdefault("dependencies", {})
        if not isinstance(deps, dict):
            raise ToolRefused("package.json's dependencies is not an object")
        if deps.get(name) == version:
            return f"{name}@{version} is already a dependency"
        deps[name] = version
        text = json.dumps(package, indent=2, ensure_ascii=False) + "\n"
        self.set.write(PACKAGE_JSON, text.encode())
        self.package_changed = True
        return f"added {name}@{version} to dependencies; the next run_checks installs it"


# ----------------------------------------------------------------------- check output

# tsc without --pretty: "src/a.ts(12,5): error TS2322: ..."; with it: "src/a.ts:12:5 - error".
_TSC_PLAIN = re.compile(
    r"^(?P<file>[^\s(][^(]*?)\((?P<line>\d+),(?P<col>\d+)\): error (?P<rest>TS\d+:.*)$"
)
_TSC_PRETTY = re.compile(r"^(?P<file>\S+?):(?P<line>\d+):(?P<col>\d+) - error (?P<rest>TS\d+:.*)$")
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def compiler_errors(output: str, limit: int = MAX_COMPILER_ERRORS) -> list[str]:
    """``file:line:col error TSxxxx: message`` for the first ``limit`` tsc errors."""
    found: list[str] = []
    for raw in _ANSI.sub("", output).splitlines():
        line = raw.strip()
        match = _TSC_PLAIN.match(line) or _TSC_PRETTY.match(line)
        if match:
            found.append(
                _clip(f"{match['file']}:{match['line']}:{match['col']} error {match['rest']}")
            )
        elif line.startswith("error TS"):
            found.append(_clip(line))
        if len(found) >= limit:
            break
    return found


def _clip(text: str, limit: int = MAX_LINE_CHARS) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _first_line(text: str | None) -> str:
    for line in _ANSI.sub("", text or "").splitlines():
        if line.strip():
            return _clip(line.strip())
    return ""


def build_summary(output: str, tail: str) -> str:
    errors = compiler_errors(output)
    head = "BUILD FAILED"
    if errors:
        shown = "\n".join(f"  {e}" for e in errors)
        return f"{head}: {len(errors)} compiler error(s) shown (first ones):\n{shown}"
    return f"{head}. Last lines of the build output:\n{tail}"


def results_summary(results: TestResults) -> str:
    state = "TESTS PASSED" if results.success else "TESTS FAILED"
    lines = [
        f"{state}: {results.passed} passed, {results.failed} failed, {results.skipped} skipped, "
        f"{results.todo} todo, {results.total} total"
    ]
    failing = [t for t in results.tests if t.state == "failed"]
    for test in failing[:MAX_FAILING_TESTS]:
        lines.append(_clip(f"  ✗ {test.file} › {test.name}"))
        first = _first_line(test.failure)
        if first:
            lines.append(f"      {first}")
    if len(failing) > MAX_FAILING_TESTS:
        lines.append(f"  … and {len(failing) - MAX_FAILING_TESTS} more failing tests")
    for file in results.broken_files[:MAX_FAILING_TESTS]:
        lines.append(_clip(f"  ✗ {file.file} could not run"))
        first = _first_line(file.message)
        if first:
            lines.append(f"      {first}")
    if results.total == 0:
        lines.append("  no tests were found")
    return "\n".join(lines)


def cap(text: str, limit: int = MAX_SUMMARY_CHARS) -> str:
    if len(text) <= limit:
        return text
    return text[: limit - 40].rstrip() + "\n… [summary cut to a few KB]"


# ------------------------------------------------------------------------ test counts

# it(...) / test(...) calls, also it.only/test.skip etc. would not count: only plain calls.
_TEST_CALL = re.compile(r"(?<![\w.$])(?:it|test)\s*\(")
_COMMENTS = re.compile(r"/\*.*?\*/|//[^\n]*", re.S)


def count_test_calls(source: str) -> int:
    """How many ``it(`` / ``test(`` calls a test file makes (comments left out)."""
    return len(_TEST_CALL.findall(_COMMENTS.sub("", source)))


def static_test_count(files: FileSet, names: Sequence[str] | None = None) -> int:
    total = 0
    for rel in files.names() if names is None else names:
        data = files.get(rel)
        if is_test_file(rel) and data is not None:
            total += count_test_calls(data.decode("utf-8", "replace"))
    return total

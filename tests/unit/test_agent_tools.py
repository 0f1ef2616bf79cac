"""The model's tools: every hostile call is refused and leaves the disk as it was."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from bot.agent.tools import (
    MAX_FILE_BYTES,
    MAX_PLUGIN_FILES,
    MAX_SUMMARY_CHARS,
    TOOLS,
    PluginFiles,
    ToolRefused,
    build_summary,
    cap,
    compiler_errors,
    count_test_calls,
    results_summary,
    static_test_count,
    tool_definitions,
    validate_input,
)
from bot.pack import load_pack, render_pack
from bot.settings import DEFAULT_ALLOWED_DEPENDENCIES, REPO_ROOT
from bot.spec.schema import PluginSpec, validate_spec
from bot.testresults import load_report, parse_vitest_report
from bot.workspace import FileSet

PACK_ROOT = REPO_ROOT / "templates" / "elizaos-plugin"
FIXTURES = Path(__file__).parent.parent / "fixtures"

# Real output of `npm run build` (tsc --noEmit && tsup) for a file with two type errors.
TSC_OUTPUT = """
> plugin-weather@0.1.0 build
> tsc --noEmit && tsup

src/index.ts(2,39): error TS2322: Type 'number' is not assignable to type 'string'.
src/index.ts(3,7): error TS2322: Type 'string' is not assignable to type 'number'.
"""
# The same with --pretty (colours as tsc writes them).
TSC_PRETTY = (
    "\x1b[96msrc/index.ts\x1b[0m:\x1b[93m2\x1b[0m:\x1b[93m39\x1b[0m - \x1b[91merror\x1b[0m"
    "\x1b[90m TS2322: \x1b[0mType 'number' is not assignable to type 'string'.\n\n"
    "\x1b[7m2\x1b[0m export const a: Action = { name: 'X', description: 1 };\n"
)


def spec() -> PluginSpec:
    return validate_spec(
        {
            "name": "plugin-weather",
            "description": "reports the weather",
            "actions": [{"name": "GetWeather", "description": "get the weather"}],
            "providers": [{"name": "Forecast", "description": "the forecast"}],
        }
    )


def render(dest: Path) -> Path:
    render_pack(load_pack(PACK_ROOT), spec(), dest)
    return dest


def snapshot(root: Path) -> dict[str, Any]:
    """Every entry under root: symlinks by target, files by content, directories by name."""
    seen: dict[str, Any] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            rel = path.relative_to(root).as_posix()
            if path.is_symlink():
                seen[rel] = ("link", os.readlink(path))
            elif path.is_dir():
                seen[rel] = ("dir",)
            else:
                seen[rel] = ("file", path.read_bytes())
    return seen


@pytest.fixture
def rendered(tmp_path: Path) -> FileSet:
    root = render(tmp_path / "plugin")
    return FileSet.read_from(root)


@pytest.fixture
def plugin(rendered: FileSet, tmp_path: Path) -> Path:
    # Links planted in the directory after the bot took its set (as a sandboxed run could).
    root = rendered.root
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.ts").write_text("secret")
    (root / "src" / "linkdir").symlink_to(outside, target_is_directory=True)
    (root / "src" / "linkfile.ts").symlink_to(outside / "secret.ts")
    return root


@pytest.fixture
def tools(rendered: FileSet, plugin: Path) -> PluginFiles:
    return PluginFiles(rendered, DEFAULT_ALLOWED_DEPENDENCIES)


# Each hostile path and the reason it must be refused for: a refusal for another reason
# (a case-sensitive .github check falling through to "not writable") is a bug.
HOSTILE_REASONS: dict[str, str] = {
    "../../etc/passwd": "contains '\\.\\.'",
    "/etc/passwd": "is absolute",
    "/tmp/x.ts": "is absolute",
    "C:/x.ts": "is absolute",
    "~/x.ts": "is absolute",
    "src/../../x.ts": "contains '\\.\\.'",
    "src/../package.json": "contains '\\.\\.'",
    "src\\x.ts": "contains a backslash",
    "src/x\x00.ts": r"contains a control character \(U\+0000\)",
    "src/x\n.ts": r"contains a control character \(U\+000A\)",
    "src/x\x1b.ts": r"contains a control character \(U\+001B\)",
    ".github/workflows/x.yml": r"is under \.github/ \(refused\)",
    "src/.github/x.ts": r"is under \.github/ \(refused\)",
    ".GitHub/x.yml": r"is under \.GitHub/ \(refused\)",
    "src/.GITHUB/x.ts": r"is under \.GITHUB/ \(refused\)",
    ".git/config": r"is under \.git/ \(refused\)",
    "src/.Git/x.ts": r"is under \.Git/ \(refused\)",
    "node_modules/x.js": "is under node_modules/, which the model may not touch",
    "src/Node_Modules/x.js": "is under Node_Modules/, which the model may not touch",
    "package.json": "is not writable: only src/",
    "package-lock.json": "is not writable: only src/",
    "tsconfig.json": "is not writable: only src/",
    "vitest.config.ts": "is not writable: only src/",
    "src": "is not writable: only src/",
    "": "the path is empty",
    "src//x.ts": "has an empty or '\\.' part",
    "./src/x.ts": "has an empty or '\\.' part",
    "src/./x.ts": "has an empty or '\\.' part",
    # A write meets the planted link on the way; a delete finds no such file in the set.
    "src/linkdir/x.ts": "linkdir on the way is a symlink|is not an existing file",
    "src/linkfile.ts": "exists and is a symlink|is not an existing file",
    "src/linkdir": "symlink|is not an existing file",
    "x" * 400: "longer than 300 characters",
    # Look-alikes (issue 9 point 3), each with its own reason.
    "src/index.ts\u200b": r"invisible format character .*\(U\+200B\)",
    "src/\u200bindex.ts": r"invisible format character .*\(U\+200B\)",
    "src/\u202egnp.ts": r"invisible format character .*\(U\+202E\)",
    "src/\u2066x.ts": r"invisible format character .*\(U\+2066\)",
    "src/a.ts ": "leading or trailing white space",
    "src/..\u2024/x.ts": "ending in a dot or starting with '\\.\\.'",
    "src/a.ts.": "ending in a dot or starting with '\\.\\.'",
    "src/cafe\u0301.ts": "not in Unicode NFC form",
}

HOSTILE_PATHS = [
    "../../etc/passwd",
    "/etc/passwd",
    "/tmp/x.ts",
    "C:/x.ts",
    "~/x.ts",
    "src/../../x.ts",
    "src/../package.json",
    "src\\x.ts",
    "src/x\x00.ts",
    "src/x\n.ts",
    "src/x\x1b.ts",
    ".github/workflows/x.yml",
    "src/.github/x.ts",
    ".GitHub/x.yml",
    ".git/config",
    "node_modules/x.js",
    "package.json",
    "package-lock.json",
    "tsconfig.json",
    "vitest.config.ts",
    "src",
    "",
    "src//x.ts",
    "./src/x.ts",
    "src/./x.ts",
    "src/linkdir/x.ts",
    "src/linkfile.ts",
    "x" * 400,
    # Look-alikes (issue 9 point 3): format characters, bidi controls, edge spaces and
    # dots, non-NFC names.
    "src/index.ts\u200b",
    "src/\u200bindex.ts",
    "src/\u202egnp.ts",
    "src/a.ts ",
    "src/..\u2024/x.ts",
    "src/cafe\u0301.ts",
    "src/a.ts.",
    "src/\u2066x.ts",
]
HOSTILE_PATHS += [p for p in HOSTILE_REASONS if p not in HOSTILE_PATHS]
# Names only the directory holds (planted links): not files of the plugin.
NOT_IN_THE_SET = ["src/linkdir"]


@pytest.mark.parametrize("path", HOSTILE_PATHS)
def test_hostile_writes_are_refused_and_change_nothing(
    tools: PluginFiles, plugin: Path, path: str
) -> None:
    before = snapshot(plugin.parent)
    with pytest.raises(ToolRefused, match=HOSTILE_REASONS[path]):
        tools.write_file(path, "export const x = 1;\n")
    assert snapshot(plugin.parent) == before


@pytest.mark.parametrize("path", HOSTILE_PATHS + NOT_IN_THE_SET)
def test_hostile_deletes_are_refused_and_change_nothing(
    tools: PluginFiles, plugin: Path, path: str
) -> None:
    before = snapshot(plugin.parent)
    with pytest.raises(ToolRefused, match=HOSTILE_REASONS[path]):
        tools.delete_file(path)
    assert snapshot(plugin.parent) == before


@pytest.mark.parametrize(
    "path",
    ["../../etc/passwd", "/etc/passwd", "src/linkfile.ts", "src/linkdir/secret.ts", ".github/x"],
)
def test_hostile_reads_are_refused(tools: PluginFiles, path: str) -> None:
    with pytest.raises(ToolRefused):
        tools.read_file(path)


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ("src/index.ts\u200b", "invisible format character"),
        ("src/\u200bindex.ts", "invisible format character"),
        ("src/\u202egnp.ts", "invisible format character"),
        ("src/a.ts ", "white space"),
        ("src/..\u2024/x.ts", "starting with '..'"),
        ("src/a.ts.", "ending in a dot"),
        ("src/cafe\u0301.ts", "NFC"),
        ("src/x\x1b.ts", "control character"),
        (".GitHub/x.yml", ".GitHub/"),
    ],
)
def test_look_alike_paths_are_refused_with_the_reason(
    tools: PluginFiles, path: str, reason: str
) -> None:
    with pytest.raises(ToolRefused) as caught:
        tools.write_file(path, "x")
    assert reason in str(caught.value)


def test_a_write_over_a_planted_link_is_refused_and_never_goes_through_it(
    tools: PluginFiles, plugin: Path, tmp_path: Path
) -> None:
    before = snapshot(plugin.parent)
    with pytest.raises(ToolRefused, match="symlink"):
        tools.write_file("src/linkfile.ts", "export const mine = 1;\n")
    assert snapshot(plugin.parent) == before
    assert (tmp_path / "outside" / "secret.ts").read_text() == "secret"


def test_reads_come_from_the_bot_s_set_not_from_the_directory(
    tools: PluginFiles, plugin: Path
) -> None:
    original = tools.read_file("package.json")
    (plugin / "package.json").write_text('{"scripts": {"postinstall": "evil"}}')
    assert tools.read_file("package.json") == original
    assert "postinstall" not in tools.list_files()


def test_reads_any_plugin_file(tools: PluginFiles, plugin: Path) -> None:
    assert tools.read_file("package.json") == (plugin / "package.json").read_text()


def test_the_refusal_says_why(tools: PluginFiles) -> None:
    with pytest.raises(ToolRefused, match=r"'\.\.'"):
        tools.write_file("../../etc/passwd", "x")
    with pytest.raises(ToolRefused, match="absolute"):
        tools.write_file("/etc/passwd", "x")
    with pytest.raises(ToolRefused, match="symlink"):
        tools.write_file("src/linkdir/x.ts", "x")
    with pytest.raises(ToolRefused, match=r"\.github"):
        tools.write_file(".github/workflows/x.yml", "x")
    with pytest.raises(ToolRefused, match="request_dependency"):
        tools.write_file("package.json", "{}")


def test_writes_in_allowed_places(tools: PluginFiles, plugin: Path) -> None:
    tools.write_file("src/lib/deep/util.ts", "export const one = 1;\n")
    tools.write_file("__tests__/util.test.ts", "it('x', () => {});\n")
    tools.write_file("README.md", "# hi\n")
    assert (plugin / "src/lib/deep/util.ts").read_text() == "export const one = 1;\n"
    assert (plugin / "README.md").read_text() == "# hi\n"
    tools.delete_file("__tests__/util.test.ts")
    assert not (plugin / "__tests__/util.test.ts").exists()


def test_oversized_content_is_refused(tools: PluginFiles, plugin: Path) -> None:
    before = snapshot(plugin.parent)
    with pytest.raises(ToolRefused, match="limit"):
        tools.write_file("src/big.ts", "x" * (MAX_FILE_BYTES + 1))
    with pytest.raises(ToolRefused, match="NUL"):
        tools.write_file("src/nul.ts", "a\x00b")
    assert snapshot(plugin.parent) == before


def test_more_than_the_file_limit_is_refused(tmp_path: Path) -> None:
    root = render(tmp_path / "plugin")
    tools = PluginFiles(root, {})
    for index in range(MAX_PLUGIN_FILES - len(tools.files())):
        tools.write_file(f"src/f{index}.ts", "")
    assert len(tools.files()) == MAX_PLUGIN_FILES
    before = snapshot(root)
    with pytest.raises(ToolRefused, match=str(MAX_PLUGIN_FILES)):
        tools.write_file("src/one-more.ts", "")
    assert snapshot(root) == before
    tools.write_file("src/f0.ts", "export {};\n")  # replacing a file adds none


@pytest.mark.parametrize(
    ("name", "data", "why"),
    [
        ("write_file", {"path": "src/a.ts"}, "missing"),
        ("write_file", {"path": "src/a.ts", "content": "x", "mode": "755"}, "unexpected"),
        ("write_file", {"path": 1, "content": "x"}, "string"),
        ("write_file", {"path": "src/a.ts", "content": None}, "string"),
        ("write_file", ["src/a.ts", "x"], "object"),
        ("write_file", "src/a.ts", "object"),
        ("read_file", {}, "missing"),
        ("run_checks", {"now": True}, "unexpected"),
        ("finish", {"summary": ["x"]}, "string"),
        ("exec", {"cmd": "rm -rf /"}, "unknown tool"),
    ],
)
def test_malformed_input_is_refused(name: str, data: Any, why: str) -> None:
    with pytest.raises(ToolRefused, match=why):
        validate_input(name, data)


def test_schemas_are_strict() -> None:
    for tool in TOOLS:
        schema = tool["input_schema"]
        assert schema["additionalProperties"] is False
        assert set(schema["required"]) == set(schema["properties"])
    definitions = tool_definitions()
    assert definitions[-1]["cache_control"] == {"type": "ephemeral"}
    assert all("cache_control" not in t for t in definitions[:-1])
    assert "cache_control" not in TOOLS[-1]  # the shared definitions are not changed


def test_request_dependency_allowed(tools: PluginFiles, plugin: Path) -> None:
    assert "added date-fns" in tools.request_dependency("date-fns")
    package = json.loads((plugin / "package.json").read_text())
    assert package["dependencies"]["date-fns"] == DEFAULT_ALLOWED_DEPENDENCIES["date-fns"]
    assert package["dependencies"]["zod"]  # the rest is kept (zod validates the config)
    assert tools.package_changed
    assert "already" in tools.request_dependency("date-fns")


@pytest.mark.parametrize("name", ["left-pad", "../zod", "zod@latest", "", "ZOD"])
def test_request_dependency_refused(tools: PluginFiles, plugin: Path, name: str) -> None:
    before = snapshot(plugin.parent)
    with pytest.raises(ToolRefused, match="not an allowed dependency"):
        tools.request_dependency(name)
    assert snapshot(plugin.parent) == before
    assert not tools.package_changed


def test_compiler_errors_from_real_tsc_output() -> None:
    errors = compiler_errors(TSC_OUTPUT)
    assert errors == [
        "src/index.ts:2:39 error TS2322: Type 'number' is not assignable to type 'string'.",
        "src/index.ts:3:7 error TS2322: Type 'string' is not assignable to type 'number'.",
    ]
    assert compiler_errors(TSC_PRETTY) == errors[:1]
    summary = build_summary(TSC_OUTPUT, "tail")
    assert summary.startswith("BUILD FAILED")
    assert "src/index.ts:2:39" in summary


def test_build_summary_without_tsc_errors_shows_the_tail() -> None:
    assert "ESM build failed" in build_summary("x", "ESM build failed")


def test_compact_test_summary_from_a_real_vitest_report() -> None:
    raw = load_report(FIXTURES / "vitest" / "failing-report.json")
    results = parse_vitest_report(
        raw,
        root=Path("/workspace/plugin-weather"),
        command=["npm", "test"],
        exit_code=1,
        wall_s=1.0,
        log_sha256="0" * 64,
        log_bytes=0,
    )
    summary = results_summary(results)
    assert summary.startswith(f"TESTS FAILED: {results.passed} passed, 1 failed")
    failing = next(t for t in results.tests if t.state == "failed")
    assert failing.name in summary
    assert (failing.failure or "").strip().splitlines()[0].strip()[:80] in summary
    assert "__tests__/broken.test.ts could not run" in summary
    assert "Cannot find module './does-not-exist'" in summary
    assert len(summary) < MAX_SUMMARY_CHARS


def test_cap_keeps_summaries_small() -> None:
    text = cap("line\n" * 10_000)
    assert len(text) <= MAX_SUMMARY_CHARS
    assert text.endswith("few KB]")


def test_counting_tests(tmp_path: Path) -> None:
    source = """
    // it('commented out', () => {})
    /* test('also out', () => {}) */
    describe('x', () => {
      it('one', () => {});
      test ('two', async () => {});
      it.skip('not counted', () => {});
      const split = 'it(';
    });
    """
    assert count_test_calls(source) == 3  # the string literal counts: a static estimate
    root = render(tmp_path / "plugin")
    assert static_test_count(PluginFiles(root, {}).set) > 10


def test_content_that_is_not_unicode_is_refused(tools: PluginFiles, plugin: Path) -> None:
    before = snapshot(plugin.parent)
    with pytest.raises(ToolRefused, match="Unicode"):
        tools.write_file("src/a.ts", "lone \ud800 surrogate")
    assert snapshot(plugin.parent) == before

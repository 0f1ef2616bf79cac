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
def plugin(tmp_path: Path) -> Path:
    root = render(tmp_path / "plugin")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.ts").write_text("secret")
    (root / "src" / "linkdir").symlink_to(outside, target_is_directory=True)
    (root / "src" / "linkfile.ts").symlink_to(outside / "secret.ts")
    return root


@pytest.fixture
def tools(plugin: Path) -> PluginFiles:
    return PluginFiles(plugin, DEFAULT_ALLOWED_DEPENDENCIES)


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
    "src/linkdir",
    "x" * 400,
]


@pytest.mark.parametrize("path", HOSTILE_PATHS)
def test_hostile_writes_are_refused_and_change_nothing(
    tools: PluginFiles, plugin: Path, path: str
) -> None:
    before = snapshot(plugin.parent)
    with pytest.raises(ToolRefused):
        tools.write_file(path, "export const x = 1;\n")
    assert snapshot(plugin.parent) == before


@pytest.mark.parametrize("path", HOSTILE_PATHS)
def test_hostile_deletes_are_refused_and_change_nothing(
    tools: PluginFiles, plugin: Path, path: str
) -> None:
    before = snapshot(plugin.parent)
    with pytest.raises(ToolRefused):
        tools.delete_file(path)
    assert snapshot(plugin.parent) == before


@pytest.mark.parametrize(
    "path",
    ["../../etc/passwd", "/etc/passwd", "src/linkfile.ts", "src/linkdir/secret.ts", ".github/x"],
)
def test_hostile_reads_are_refused(tools: PluginFiles, path: str) -> None:
    with pytest.raises(ToolRefused):
        tools.read_file(path)


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
        (root / "src" / f"f{index}.ts").write_text("")
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
    files = PluginFiles(root, {}).files()
    assert static_test_count(root, files) > 10


def test_content_that_is_not_unicode_is_refused(tools: PluginFiles, plugin: Path) -> None:
    before = snapshot(plugin.parent)
    with pytest.raises(ToolRefused, match="Unicode"):
        tools.write_file("src/a.ts", "lone \ud800 surrogate")
    assert snapshot(plugin.parent) == before

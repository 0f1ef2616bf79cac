"""The template pack and its renderer: paths, names, escaping, lockfile, refusals.

No network and no npm here: what the rendered plugin does when built and tested is
covered by the integration tests.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from bot import neutralise
from bot.pack import (
    PackageMeta,
    PackError,
    TemplatePack,
    check_relative_path,
    component_identifiers,
    js_literal,
    load_pack,
    lock_satisfies,
    md_text,
    plugin_identifier,
    render_pack,
)
from bot.settings import DEFAULT_ALLOWED_DEPENDENCIES, REPO_ROOT
from bot.spec.schema import PluginSpec, SpecError, validate_spec

PACK_ROOT = REPO_ROOT / "templates" / "elizaos-plugin"

# Everything that could end a string, a comment, a template literal or a script tag and
# that validation lets through. U+2028/U+2029 end a line in JavaScript too, but a spec
# refuses them (see test_line_separators_never_reach_a_spec); the js and md filters are
# tested with them directly below.
HOSTILE = (
    'Says "hi" `tick` ${process.exit(1)} */ </script><img src=x onerror=alert(1)> '
    "\\ back\\slash \\u0041 ' single {{ 7*7 }} {% raw %}\nsecond line é sep"
)
PAYLOAD_MARKERS = ("process.exit", "</script", "onerror", "second line", "7*7", "{% raw")


def full_spec_data(description: str = HOSTILE) -> dict[str, Any]:
    return {
        "name": "@acme/plugin-weather",
        "version": "0.2.0",
        "description": "Weather. " + description,
        "actions": [
            {
                "name": "GetWeather",
                "description": "Get the weather. " + description,
                "similes": ["FetchWeather"],
                "examples": ["What is the weather? " + description],
                "parameters": [
                    {"name": "city", "type": "string", "description": "City. " + description},
                    {"name": "days", "type": "number", "description": "Days", "required": False},
                    {"name": "metric", "type": "boolean", "description": "Metric units"},
                ],
            },
            {"name": "ClearCache", "description": "Clear. " + description},
        ],
        "providers": [
            {"name": "CurrentWeather", "description": "Now. " + description},
            {"name": "ForecastProvider", "description": "Forecast"},
        ],
        "services": [
            {
                "name": "WeatherApi",
                "description": "Service. " + description,
                "methods": [
                    {
                        "name": "FetchForecast",
                        "description": "Fetch. " + description,
                        "returns": "string",
                        "parameters": [{"name": "city", "type": "string", "description": "c"}],
                    },
                    {"name": "CountCalls", "description": "Count", "returns": "number"},
                ],
            }
        ],
        "evaluators": [
            {"name": "MoodCheck", "description": "Mood. " + description, "always_run": True}
        ],
        "environment": [
            {
                "name": "WEATHER_API_KEY",
                "description": "Key. " + description,
                "required": True,
                "sensitive": True,
            },
            {"name": "WEATHER_UNITS", "description": "Units", "required": False},
        ],
    }


@pytest.fixture(scope="module")
def pack() -> TemplatePack:
    return load_pack(PACK_ROOT)


@pytest.fixture(scope="module")
def full_spec() -> PluginSpec:
    return validate_spec(full_spec_data())


@pytest.fixture(scope="module")
def rendered(
    pack: TemplatePack, full_spec: PluginSpec, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, list[str]]:
    dest = tmp_path_factory.mktemp("plugin") / "plugin-weather"
    return dest, render_pack(pack, full_spec, dest)


def read(dest: Path, rel: str) -> str:
    return (dest / rel).read_text(encoding="utf-8")


# ------------------------------------------------------------------------------ pack


def test_pack_toml_describes_the_pack(pack: TemplatePack) -> None:
    assert (pack.name, pack.version, pack.language) == ("elizaos-plugin", "1.0.0", "typescript")
    assert pack.install[:2] == ("npm", "ci")
    assert "--ignore-scripts" in pack.install
    # the check round runs each tool once, straight from the plugin and node_modules
    assert pack.build == ("node", "scripts/check.mjs")
    assert pack.test[:3] == ("node", "node_modules/vitest/vitest.mjs", "run")
    assert "--isolate=false" in pack.test
    assert pack.integration_test == "__tests__/integration.test.ts"
    assert pack.runtime_suite == "src/tests.ts"
    # the dependency cache prepares PGlite's data directory once per lockfile
    assert pack.prepare_dependencies == PACK_ROOT.resolve() / "cache" / "pglite-datadir.mjs"
    # the generate loop's check rounds from one long-lived process (the final one is cold)
    assert pack.warm_checker == PACK_ROOT.resolve() / "cache" / "warm-checker.mjs"
    assert any("{results_json}" in arg for arg in pack.test)
    assert "--outputFile.json=/w/r.json" in pack.test_command("/w/r.json")
    assert {f.each for f in pack.files} == {None, "actions", "providers", "services", "evaluators"}


def test_every_file_in_the_pack_is_listed(pack: TemplatePack) -> None:
    on_disk = {
        p.relative_to(PACK_ROOT).as_posix()
        for p in PACK_ROOT.rglob("*")
        if p.is_file() and p.name != "pack.toml"
    }
    assert pack.prepare_dependencies is not None and pack.warm_checker is not None
    scripts = {
        script.relative_to(PACK_ROOT.resolve()).as_posix()
        for script in (pack.prepare_dependencies, pack.warm_checker)
    }
    assert on_disk == {f.template for f in pack.files} | scripts
    assert not scripts & {f.output for f in pack.files}  # the bot's, never plugin files


def test_pack_lockfile_has_no_registry_urls() -> None:
    text = (PACK_ROOT / "package-lock.json").read_text(encoding="utf-8")
    assert '"resolved"' not in text
    assert "registry" not in text.lower()
    lock = json.loads(text)
    assert lock["lockfileVersion"] == 3
    root = lock["packages"][""]
    # core is the host's: a peer (^1.7.0), pinned exactly only for the plugin's own tests.
    assert root["peerDependencies"] == {"@elizaos/core": "^1.7.0"}
    assert root["devDependencies"]["@elizaos/core"] == "1.7.2"
    assert root["devDependencies"]["@elizaos/plugin-sql"] == "1.7.2"
    assert "@elizaos/core" not in root.get("dependencies", {})
    assert lock["packages"]["node_modules/@elizaos/core"]["version"] == "1.7.2"
    assert lock["packages"]["node_modules/@elizaos/plugin-sql"]["version"] == "1.7.2"
    # one core only: a nested second copy is what broke hosts on 1.7.0
    assert [k for k in lock["packages"] if k.endswith("/@elizaos/core")] == [
        "node_modules/@elizaos/core"
    ]


# ------------------------------------------------------------------------- rendering


def test_render_writes_one_file_per_component(rendered: tuple[Path, list[str]]) -> None:
    dest, written = rendered
    expected = {
        "package.json",
        "package-lock.json",
        "README.md",
        ".gitignore",
        "tsconfig.json",
        "tsup.config.ts",
        "vitest.config.ts",
        "scripts/check.mjs",
        "src/index.ts",
        "src/config.ts",
        "src/parameters.ts",
        "src/relevance.ts",
        "src/tests.ts",
        "images/logo.jpg",
        "images/banner.jpg",
        "src/actions/get-weather.ts",
        "src/actions/clear-cache.ts",
        "src/providers/current-weather.ts",
        "src/providers/forecast-provider.ts",
        "src/services/weather-api.ts",
        "src/evaluators/mood-check.ts",
        "__tests__/test-utils.ts",
        "__tests__/parameters.test.ts",
        "__tests__/plugin.test.ts",
        "__tests__/integration.test.ts",
        "__tests__/plugin-sql.d.ts",
        "__tests__/pglite-datadir.ts",
        "__tests__/actions/get-weather.test.ts",
        "__tests__/actions/clear-cache.test.ts",
        "__tests__/providers/current-weather.test.ts",
        "__tests__/providers/forecast-provider.test.ts",
        "__tests__/services/weather-api.test.ts",
        "__tests__/evaluators/mood-check.test.ts",
    }
    assert written == sorted(expected)
    on_disk = {p.relative_to(dest).as_posix() for p in dest.rglob("*") if p.is_file()}
    assert on_disk == expected


def test_index_imports_registers_and_exports_every_component(
    rendered: tuple[Path, list[str]],
) -> None:
    dest, _ = rendered
    index = read(dest, "src/index.ts")
    imports = {
        "getWeatherAction": "./actions/get-weather",
        "clearCacheAction": "./actions/clear-cache",
        "currentWeatherProvider": "./providers/current-weather",
        "forecastProvider": "./providers/forecast-provider",
        "WeatherApiService": "./services/weather-api",
        "moodCheckEvaluator": "./evaluators/mood-check",
    }
    for ident, module in imports.items():
        assert f"import {{ {ident} }} from '{module}';" in index
        assert re.search(rf"^  {ident},$", index, re.M), f"{ident} is not re-exported"
    assert "actions: [getWeatherAction, clearCacheAction]," in index
    assert "providers: [currentWeatherProvider, forecastProvider]," in index
    assert "services: [WeatherApiService]," in index
    assert "evaluators: [moodCheckEvaluator]," in index
    assert "export const weatherPlugin: Plugin = {" in index
    assert "export default weatherPlugin;" in index
    assert 'process.env["WEATHER_API_KEY"]' in index


def test_component_names_are_rendered_in_elizaos_style(rendered: tuple[Path, list[str]]) -> None:
    dest, _ = rendered
    action = read(dest, "src/actions/get-weather.ts")
    assert 'const ACTION_NAME = "GET_WEATHER";' in action
    assert 'similes: ["FETCH_WEATHER", ' in action  # the spec's similes come first
    assert "export const getWeatherAction: Action = {" in action
    for name in ("city", "days", "metric"):
        assert f'name: "{name}",' in action
    assert 'const PROVIDER_NAME = "CURRENT_WEATHER";' in read(
        dest, "src/providers/current-weather.ts"
    )
    service = read(dest, "src/services/weather-api.ts")
    assert "export class WeatherApiService extends Service {" in service
    assert 'static override serviceType = "weather-api";' in service
    assert "async fetchForecast(input: WeatherApiServiceFetchForecastInput): Promise<string>" in (
        service
    )
    assert "async countCalls(): Promise<number>" in service
    evaluator = read(dest, "src/evaluators/mood-check.ts")
    assert 'const EVALUATOR_NAME = "MOOD_CHECK";' in evaluator
    assert "alwaysRun: true," in evaluator


def test_package_json_follows_the_elizaos_starter(
    rendered: tuple[Path, list[str]], full_spec: PluginSpec
) -> None:
    dest, _ = rendered
    package = json.loads(read(dest, "package.json"))
    assert package["name"] == full_spec.name
    assert package["version"] == full_spec.version
    assert package["type"] == "module"
    assert package["packageType"] == "plugin"
    assert package["platform"] == "node"
    # the starter's shape (templates/plugin-starter in @elizaos/cli 1.7.2)
    assert package["exports"]["."] == {
        "import": {"types": "./dist/index.d.ts", "default": "./dist/index.js"}
    }
    assert package["files"] == ["dist", "images", "README.md", "package.json"]
    assert package["publishConfig"] == {"access": "public"}
    assert set(package["repository"]) == {"type", "url"}
    assert {"author", "homepage", "bugs", "license"} <= set(package)
    assert package["scripts"]["prepublishOnly"] == "npm run build"
    # core is the host's: a peer, pinned exactly only for the plugin's own build and tests
    assert package["peerDependencies"] == {"@elizaos/core": "^1.7.0"}
    assert package["dependencies"] == {"zod": DEFAULT_ALLOWED_DEPENDENCIES["zod"]}
    assert package["devDependencies"]["@elizaos/core"] == "1.7.2"
    assert package["devDependencies"]["@elizaos/plugin-sql"] == "1.7.2"
    assert package["devDependencies"]["vitest"] == "4.1.12"
    assert package["scripts"]["build"].startswith("tsc --noEmit")
    config = package["agentConfig"]
    assert config["pluginType"] == "elizaos:plugin:1.0.0"
    assert config["pluginParameters"] == {
        "WEATHER_API_KEY": {
            "type": "string",
            "description": "Key. " + HOSTILE,
            "required": True,
            "sensitive": True,
        },
        "WEATHER_UNITS": {
            "type": "string",
            "description": "Units",
            "required": False,
            "sensitive": False,
        },
    }
    for path in ("images/logo.jpg", "images/banner.jpg"):
        assert (dest / path).read_bytes()[:3] == b"\xff\xd8\xff"  # a JPEG


def test_readme_explains_the_plugin_and_is_marked_as_a_scaffold(
    rendered: tuple[Path, list[str]],
) -> None:
    dest, _ = rendered
    readme = read(dest, "README.md")
    assert "scaffolded by plugin-bot" in readme
    assert "replaces them" in readme
    assert "npm ci" in readme and "npm run build" in readme and "npm test" in readme
    assert "| Action | `GET_WEATHER` |" in readme
    assert "| `WEATHER_API_KEY` | yes | yes |" in readme
    # Spec text is inert (see test_readme_markdown.py): one line per row.
    assert "<script" not in readme.replace("\\<script", "")
    for line in readme.splitlines():
        if line.startswith("| Action | `GET_WEATHER`"):
            assert "second line" in line


def test_minimal_spec_renders_without_empty_component_lists(
    pack: TemplatePack, tmp_path: Path
) -> None:
    spec = validate_spec(
        {
            "name": "plugin-tiny",
            "description": "Tiny",
            "providers": [{"name": "Time", "description": "t"}],
        }
    )
    written = render_pack(pack, spec, tmp_path / "out")
    assert "src/providers/time.ts" in written
    assert not any(
        p.startswith(("src/actions/", "src/services/", "src/evaluators/")) for p in written
    )
    index = (tmp_path / "out" / "src/index.ts").read_text()
    assert "providers: [timeProvider]," in index
    for absent in ("  actions:", "  services:", "  evaluators:", "  config:"):
        assert absent not in index
    assert "export const tinyPlugin: Plugin" in index
    package = json.loads((tmp_path / "out" / "package.json").read_text())
    assert package["agentConfig"]["pluginParameters"] == {}


# -------------------------------------------------------------------------- escaping

_STRING_LITERAL = re.compile(r'"(?:[^"\\\n]|\\.)*"|\'(?:[^\'\\\n]|\\.)*\'')


def test_hostile_text_lands_only_inside_json_string_literals(
    rendered: tuple[Path, list[str]],
) -> None:
    dest, written = rendered
    sources = [p for p in written if p.endswith(".ts")]
    assert sources
    for rel in sources:
        text = read(dest, rel)
        # spec text arrives through the js filter only, which escapes all non-ASCII
        # (U+2028/U+2029 included), so the "é" of HOSTILE shows up only as \u00e9
        assert text.isascii(), rel
        double_quoted = [m.group(0) for m in _STRING_LITERAL.finditer(text) if m.group(0)[0] == '"']
        for literal in double_quoted:
            json.loads(literal)  # every "..." in generated code is a JSON string
        code = _STRING_LITERAL.sub('""', text)
        for marker in PAYLOAD_MARKERS:
            assert marker not in code, f"{marker!r} outside a string literal in {rel}"
    action = read(dest, "src/actions/get-weather.ts")
    assert f"const ACTION_DESCRIPTION = {js_literal('Get the weather. ' + HOSTILE)};" in action
    assert "description: " + js_literal("City. " + HOSTILE) + "," in action
    literals = [json.loads(m) for m in re.findall(r'"(?:[^"\\\n]|\\.)*"', action)]
    assert "Get the weather. " + HOSTILE in literals


def test_hostile_text_round_trips_through_package_json(
    rendered: tuple[Path, list[str]],
) -> None:
    dest, _ = rendered
    package = json.loads(read(dest, "package.json"))
    assert package["description"] == "Weather. " + HOSTILE
    assert "</script" not in read(dest, "package.json")


@pytest.mark.parametrize("sep", ["\u2028", "\u2029"])
def test_line_separators_never_reach_a_spec(sep: str) -> None:
    with pytest.raises(SpecError) as info:
        validate_spec(full_spec_data(HOSTILE + sep + "more"))
    assert info.value.problems
    assert all(
        p.endswith(f"must not contain control or invisible characters (U+{ord(sep):04X})")
        for p in info.value.problems
    )


def test_js_filter_is_a_json_literal_safe_in_script_and_source() -> None:
    for value in [
        HOSTILE,
        HOSTILE + "\u2028sep\u2029",
        "",
        "\u2028\u2029",
        "<!-- -->",
        "a&b",
        'q"uote',
        "é",
        7,
        True,
        None,
    ]:
        literal = js_literal(value)
        assert json.loads(literal) == value
        assert not set(literal) & {"<", ">", "&", "\n", "\u2028", "\u2029"}
        assert literal.isascii()


def test_md_filter_is_the_shared_markdown_neutraliser() -> None:
    assert md_text(HOSTILE) == neutralise.md_text(HOSTILE)
    assert "\n" not in md_text(HOSTILE)
    # line and paragraph separators cannot split a table row: they are made visible
    assert md_text("one\u2028two\x85four") == "one\\<U\\+2028\\>two\\<U\\+0085\\>four"


# ------------------------------------------------------------------------- lockfile


def test_lockfile_root_is_the_plugin(
    rendered: tuple[Path, list[str]], full_spec: PluginSpec
) -> None:
    dest, _ = rendered
    lock = json.loads(read(dest, "package-lock.json"))
    package = json.loads(read(dest, "package.json"))
    assert lock["name"] == lock["packages"][""]["name"] == full_spec.name
    assert lock["version"] == lock["packages"][""]["version"] == full_spec.version
    assert lock["packages"][""]["dependencies"] == package["dependencies"]
    assert lock["packages"][""]["devDependencies"] == package["devDependencies"]
    assert lock_satisfies(package, lock)


def test_extra_dependencies_go_to_package_json_and_the_lock_asks_for_regeneration(
    pack: TemplatePack, tmp_path: Path
) -> None:
    data = full_spec_data("plain")
    data["dependencies"] = ["zod", "date-fns"]
    spec = validate_spec(data)
    render_pack(pack, spec, tmp_path / "default")
    package = json.loads((tmp_path / "default" / "package.json").read_text())
    lock = json.loads((tmp_path / "default" / "package-lock.json").read_text())
    assert package["dependencies"] == {
        "date-fns": DEFAULT_ALLOWED_DEPENDENCIES["date-fns"],
        "zod": DEFAULT_ALLOWED_DEPENDENCIES["zod"],
    }
    assert lock["packages"][""]["dependencies"] == {"zod": DEFAULT_ALLOWED_DEPENDENCIES["zod"]}
    assert not lock_satisfies(package, lock)

    allowed = {"zod": "4.3.5", "date-fns": "4.1.0"}
    spec = validate_spec(data, allowed_dependencies=allowed)
    render_pack(pack, spec, tmp_path / "custom", allowed_dependencies=allowed)
    package = json.loads((tmp_path / "custom" / "package.json").read_text())
    assert package["dependencies"]["zod"] == "4.3.5"


def test_extra_dependency_without_a_version_is_refused(pack: TemplatePack, tmp_path: Path) -> None:
    data = full_spec_data("plain")
    data["dependencies"] = ["zod"]
    spec = validate_spec(data)
    with pytest.raises(PackError, match="zod"):
        render_pack(pack, spec, tmp_path / "out", allowed_dependencies={"uuid": "^13.0.0"})
    assert not (tmp_path / "out").exists()


def test_lock_satisfies() -> None:
    lock = {
        "packages": {
            "": {"dependencies": {"a": "^1.0.0"}, "devDependencies": {"b": "2.0.0"}},
            "node_modules/a": {"version": "1.2.0"},
            "node_modules/b": {"version": "2.0.0"},
        }
    }
    assert lock_satisfies(
        {"dependencies": {"a": "^1.0.0"}, "devDependencies": {"b": "2.0.0"}}, lock
    )
    assert lock_satisfies({"dependencies": {"a": "^1.0.0"}}, lock)
    assert lock_satisfies({}, lock)
    assert not lock_satisfies({"dependencies": {"a": "^1.0.0", "c": "^3.0.0"}}, lock)
    assert not lock_satisfies({"dependencies": {"a": "^2.0.0"}}, lock)
    assert not lock_satisfies({"devDependencies": {"a": "^1.0.0"}}, lock)
    assert not lock_satisfies({"dependencies": {"a": "^1.0.0"}}, {})
    broken = {"packages": {"": {"dependencies": {"a": "^1.0.0"}}}}
    assert not lock_satisfies({"dependencies": {"a": "^1.0.0"}}, broken)


# ------------------------------------------------------------------------ identifiers


@pytest.mark.parametrize(
    ("name", "identifier"),
    [
        ("plugin-weather", "weatherPlugin"),
        ("my-tool", "myToolPlugin"),
        ("@acme/plugin-weather", "weatherPlugin"),
        ("weather-plugin", "weatherPlugin"),
        ("3d-tools", "plugin3dToolsPlugin"),
        ("plugin", "plugin"),
        ("a.b_c~d", "aBCDPlugin"),
    ],
)
def test_plugin_identifier(name: str, identifier: str) -> None:
    assert plugin_identifier(name) == identifier
    assert re.fullmatch(r"[A-Za-z][A-Za-z0-9]*", identifier)


def test_component_identifiers_avoid_doubled_suffixes_unless_they_collide() -> None:
    spec = validate_spec(
        {
            "name": "plugin-x",
            "description": "x",
            "actions": [
                {"name": "Send", "description": "s"},
                {"name": "SendAction", "description": "s"},
            ],
            "providers": [{"name": "TimeProvider", "description": "t"}],
            "services": [
                {"name": "Mail", "description": "m"},
                {"name": "Queue", "description": "q"},
            ],
        }
    )
    assert component_identifiers(spec) == {
        "Send": "sendAction",
        "SendAction": "sendActionAction",
        "TimeProvider": "timeProvider",
        "Mail": "MailService",
        "Queue": "QueueService",
    }


@pytest.mark.parametrize("method", ["Runtime", "Config", "Then", "ToString", "ValueOf"])
def test_service_method_clashing_with_service_members_is_refused(
    pack: TemplatePack, tmp_path: Path, method: str
) -> None:
    data = {
        "name": "plugin-x",
        "description": "x",
        "services": [
            {
                "name": "Mail",
                "description": "m",
                "methods": [{"name": method, "description": "r"}],
            }
        ],
    }
    # Validation refuses the name first ...
    with pytest.raises(SpecError) as info:
        validate_spec(data)
    assert info.value.problems == [
        f"services.0.methods: method name {method!r} is reserved by Service"
    ]
    # ... and the service template still refuses it in a spec that skipped validation.
    data["services"][0]["methods"][0]["name"] = "Refresh"  # type: ignore[index]
    valid = validate_spec(data)
    service = valid.services[0]
    clashing = service.methods[0].model_copy(update={"name": method})
    spec = valid.model_copy(
        update={"services": (service.model_copy(update={"methods": (clashing,)}),)}
    )
    assert spec.services[0].methods[0].name == method
    with pytest.raises(PackError, match=method):
        render_pack(pack, spec, tmp_path / "out")
    assert not (tmp_path / "out").exists()


# ------------------------------------------------------------------- refusals (tmp packs)


def make_pack(root: Path, files: str, templates: dict[str, str] | None = None) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for rel, text in (templates or {"a.txt.j2": "{{ spec.name }}\n"}).items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    (root / "pack.toml").write_text(
        '[pack]\nname = "t"\nversion = "1"\nlanguage = "text"\n'
        '[commands]\ninstall = ["true"]\nbuild = ["true"]\ntest = ["true", "{results_json}"]\n'
        + files
    )
    return root


def tiny_spec() -> PluginSpec:
    return validate_spec(
        {"name": "plugin-x", "description": "x", "providers": [{"name": "P", "description": "p"}]}
    )


def test_a_tmp_pack_renders(tmp_path: Path) -> None:
    root = make_pack(
        tmp_path / "pack",
        '[[files]]\ntemplate = "a.txt.j2"\noutput = "out/{kebab}.txt"\neach = "providers"\n'
        '[[files]]\ntemplate = "static.bin"\noutput = "static.bin"\n',
        {"a.txt.j2": "{{ component.name|constant }} {{ spec.name }}\n", "static.bin": "{{ raw }}"},
    )
    written = render_pack(load_pack(root), tiny_spec(), tmp_path / "dest")
    assert written == ["out/p.txt", "static.bin"]
    assert (tmp_path / "dest/out/p.txt").read_text() == "P plugin-x\n"
    assert (tmp_path / "dest/static.bin").read_text() == "{{ raw }}"


def test_strict_undefined_refuses_a_missing_variable(tmp_path: Path) -> None:
    root = make_pack(
        tmp_path / "pack",
        '[[files]]\ntemplate = "a.txt.j2"\noutput = "a.txt"\n',
        {"a.txt.j2": "{{ spec.name }} {{ no_such_variable }}\n"},
    )
    with pytest.raises(PackError, match="no_such_variable"):
        render_pack(load_pack(root), tiny_spec(), tmp_path / "dest")
    assert not (tmp_path / "dest").exists()


@pytest.mark.parametrize(
    "output",
    [
        "../x",
        "a/../../x",
        "/abs",
        ".github/workflows/x.yml",
        "sub/.GitHub/x",
        ".git/config",
        "a\\\\b",
        "a//b",
        "./a",
        "C:/x",
    ],
)
def test_unsafe_output_paths_are_refused(tmp_path: Path, output: str) -> None:
    root = make_pack(tmp_path / "pack", f'[[files]]\ntemplate = "a.txt.j2"\noutput = "{output}"\n')
    with pytest.raises(PackError):
        load_pack(root)


def test_unsafe_paths_are_refused_by_the_checker() -> None:
    for path in ["", "a\x00b", "a\\b", "/etc/passwd", "..", "a/..", ".github", "x/.github/y"]:
        with pytest.raises(PackError):
            check_relative_path(path)
    assert check_relative_path("src/actions/a.ts").as_posix() == "src/actions/a.ts"


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ('[[files]]\ntemplate = "missing.j2"\noutput = "a"\n', "does not exist"),
        ('[[files]]\ntemplate = "../a.txt.j2"\noutput = "a"\n', ".."),
        ('[[files]]\ntemplate = "a.txt.j2"\noutput = "a"\neach = "widgets"\n', "each"),
        ('[[files]]\ntemplate = "a.txt.j2"\noutput = "a"\neach = "actions"\n', "{kebab}"),
        ('[[files]]\ntemplate = "a.txt.j2"\noutput = "{kebab}.txt"\n', "{kebab}"),
        ('[[files]]\ntemplate = "a.txt.j2"\noutput = "{name}.txt"\n', "placeholder"),
        ('[[files]]\ntemplate = "a.txt.j2"\noutput = "a"\nextra = 1\n', "unknown"),
        (
            '[[files]]\ntemplate = "a.txt.j2"\noutput = "a"\n'
            '[[files]]\ntemplate = "a.txt.j2"\noutput = "a"\n',
            "twice",
        ),
        ("", "at least one"),
        ("[[files]\n", "cannot read"),
    ],
)
def test_malformed_packs_are_refused(tmp_path: Path, files: str, message: str) -> None:
    root = make_pack(tmp_path / "pack", files)
    with pytest.raises(PackError, match=re.escape(message)):
        load_pack(root)


@pytest.mark.parametrize("key", ["prepare_dependencies", "warm_checker"])
@pytest.mark.parametrize("script", ["missing.mjs", "../outside.mjs"])
def test_a_pack_script_outside_the_pack_or_missing_is_refused(
    tmp_path: Path, script: str, key: str
) -> None:
    (tmp_path / "outside.mjs").write_text("// not the pack's\n")
    root = make_pack(tmp_path / "pack", '[[files]]\ntemplate = "a.txt.j2"\noutput = "a"\n')
    toml = (root / "pack.toml").read_text()
    line = f'{key} = "{script}"\n'
    (root / "pack.toml").write_text(
        toml.replace('language = "text"\n', 'language = "text"\n' + line)
    )
    with pytest.raises(PackError, match=rf"{key}|\.\."):
        load_pack(root)


def test_malformed_commands_are_refused(tmp_path: Path) -> None:
    root = tmp_path / "pack"
    root.mkdir()
    (root / "a.j2").write_text("x")
    (root / "pack.toml").write_text(
        '[pack]\nname = "t"\nversion = "1"\nlanguage = "text"\n'
        '[commands]\ninstall = "npm ci"\nbuild = ["true"]\ntest = ["true"]\n'
        '[[files]]\ntemplate = "a.j2"\noutput = "a"\n'
    )
    with pytest.raises(PackError, match=r"commands\.install"):
        load_pack(root)
    with pytest.raises(PackError, match=r"no pack\.toml"):
        load_pack(tmp_path / "nowhere")


def test_render_refuses_to_write_through_a_symlink(tmp_path: Path) -> None:
    root = make_pack(tmp_path / "pack", '[[files]]\ntemplate = "a.txt.j2"\noutput = "sub/a.txt"\n')
    dest = tmp_path / "dest"
    outside = tmp_path / "outside"
    dest.mkdir()
    outside.mkdir()
    (dest / "sub").symlink_to(outside)
    with pytest.raises(PackError, match="symlink"):
        render_pack(load_pack(root), tiny_spec(), dest)
    assert list(outside.iterdir()) == []


def test_package_metadata_points_at_the_repository_the_plugin_lives_in(
    pack: TemplatePack, tmp_path: Path
) -> None:
    meta = PackageMeta.for_repository("octo-org/agents", "plugin-weather")
    spec = validate_spec(full_spec_data("plain"))
    render_pack(pack, spec, tmp_path / "p", package_meta=meta)
    package = json.loads((tmp_path / "p" / "package.json").read_text())
    assert package["author"] == "octo-org"
    assert package["repository"] == {
        "type": "git",
        "url": "git+https://github.com/octo-org/agents.git",
    }
    assert package["bugs"] == {"url": "https://github.com/octo-org/agents/issues"}
    assert package["homepage"].startswith("https://github.com/octo-org/agents/tree/")
    # a name that is not owner/repo gives empty fields, never a made-up address
    assert PackageMeta.for_repository("not a repo", "x") == PackageMeta()

"""The whole local pipeline for real: render, npm install, tsc + tsup, vitest."""

import asyncio
import json
import re
import shutil
import tempfile
from pathlib import Path

import pytest

from bot.cli import main
from bot.manifest import MANIFEST_FILE, VerificationError, generate_key, load_keys, verify_manifest
from bot.runner import Runner
from bot.settings import Settings
from bot.spec.schema import validate_spec
from bot.testresults import RESULTS_FILE
from bot.workspace import plugin_files
from tests.integration.conftest import exported

HOSTILE = 'say "hi" `rm -rf /` ${process.exit(1)} */ </script> \\ and\na second line'

ALL_KINDS = {
    "name": "@acme/plugin-forecast",
    "description": f"Forecasts. {HOSTILE}",
    "actions": [
        {
            "name": "GetForecast",
            "description": f"Gets a forecast. {HOSTILE}",
            "parameters": [
                {"name": "city", "description": f"the city {HOSTILE}", "type": "string"},
                {"name": "days", "description": "how many days", "type": "number"},
                {
                    "name": "metric",
                    "description": "metric units",
                    "type": "boolean",
                    "required": False,
                },
            ],
        }
    ],
    "providers": [{"name": "ForecastContext", "description": f"Context. {HOSTILE}"}],
    "services": [
        {
            "name": "ForecastPoller",
            "description": f"Polls forecasts. {HOSTILE}",
            "methods": [
                {
                    "name": "latest",
                    "description": f"the latest forecast {HOSTILE}",
                    "parameters": [{"name": "city", "description": f"the city {HOSTILE}"}],
                }
            ],
        }
    ],
    "evaluators": [{"name": "ForecastAccuracy", "description": f"Judges. {HOSTILE}"}],
    "environment": [
        {"name": "FORECAST_API_KEY", "description": f"API key {HOSTILE}", "sensitive": True},
        {"name": "FORECAST_UNITS", "description": f"units {HOSTILE}", "required": False},
    ],
}

IT_CALL = re.compile(r"^\s*it\(", re.MULTILINE)


def declared_tests(plugin_dir: Path) -> int:
    return sum(
        len(IT_CALL.findall((plugin_dir / f).read_text()))
        for f in plugin_files(plugin_dir)
        if f.endswith(".test.ts")
    )


async def test_every_component_kind_builds_and_passes_its_tests(
    jobs: Runner, tmp_path: Path
) -> None:
    spec = validate_spec(ALL_KINDS)
    outcome = await jobs.create(spec.description, spec=spec, out=tmp_path)
    assert outcome.ctx.failed_phase is None, outcome.ctx.failed_phase
    assert outcome.ok
    plugin = exported(outcome)
    assert plugin == tmp_path.resolve() / "plugin-forecast"

    results = json.loads((plugin / RESULTS_FILE).read_text())
    assert results["success"] is True
    assert results["tool"] == "vitest" and results["exit_code"] == 0
    assert results["total"] == results["passed"] == declared_tests(plugin)
    assert results["failed"] == results["skipped"] == 0
    files = {f["file"]: f["state"] for f in results["files"]}
    for test_file in (
        "__tests__/actions/get-forecast.test.ts",
        "__tests__/providers/forecast-context.test.ts",
        "__tests__/services/forecast-poller.test.ts",
        "__tests__/evaluators/forecast-accuracy.test.ts",
        "__tests__/plugin.test.ts",
        "__tests__/integration.test.ts",
    ):
        assert files[test_file] == "passed"
    # every component went through the real AgentRuntime, in the sandbox without network
    in_runtime = {
        t["name"] for t in results["tests"] if t["file"] == "__tests__/integration.test.ts"
    }
    for name in (
        "GET_FORECAST answers a request through processActions",
        "FORECAST_CONTEXT is composed into state when asked for",
        "FORECAST_ACCURACY runs through evaluate and records the message",
        # parameters the way a 1.7 agent provides them, through processActions
        "GET_FORECAST reads its parameters from the message text when no model is registered",
        "GET_FORECAST asks for a missing parameter through the callback, naming it",
        "takes action parameters from a registered OBJECT_SMALL model",
    ):
        assert any(name in test for test in in_runtime), (name, in_runtime)
    assert len(results["log_sha256"]) == 64
    assert set(results["durations_s"]) == {"install", "build", "test"}

    # What lands in the output is the plugin, not build products.
    assert not (plugin / "node_modules").exists() and not (plugin / "dist").exists()
    package = json.loads((plugin / "package.json").read_text())
    assert package["description"] == spec.description
    assert package["agentConfig"]["pluginParameters"]["FORECAST_API_KEY"]["sensitive"] is True


async def test_second_plugin_installs_from_the_cache_without_npm(
    jobs: Runner, tmp_path: Path
) -> None:
    first = await jobs.create(
        "a weather plugin that reports the temperature for a city", out=tmp_path
    )
    assert first.ok
    second = await jobs.create(
        "a plugin that translates a message into a given language", out=tmp_path
    )
    assert second.ok, second.ctx.failed_phase
    install = second.ctx.result.install
    assert install is not None
    assert install.cache_hit
    assert install.commands == ()  # npm never ran: nothing could be downloaded
    assert install.key == first.ctx.result.install.key  # type: ignore[union-attr]


async def test_a_parameter_named_like_a_word_of_the_action_passes_its_own_tests(
    jobs: Runner, tmp_path: Path
) -> None:
    # BAN_USER (user, reason): the sample request "Ban user: user alice, reason demo" once
    # read user "user" from the text, and the plugin failed its own tests.
    made = await jobs.create(
        "A moderation plugin with an evaluator that flags toxic messages and an action "
        "BAN_USER (user, reason)",
        out=tmp_path,
    )
    assert made.ok, made.ctx.failed_phase
    results = made.ctx.result.test_results
    assert results is not None and results.failed == 0 and results.passed == results.total
    plugin = exported(made)
    assert plugin is not None
    action = (plugin / "src" / "actions" / "ban-user.ts").read_text()
    assert 'SAMPLE_REQUEST = "Ban user: user alice, reason demo"' in action
    in_runtime = (plugin / "__tests__" / "integration.test.ts").read_text()
    assert 'toContain("user: \\"alice\\"")' in in_runtime


async def test_check_reruns_a_plugin_directory_without_changing_it(
    jobs: Runner, tmp_path: Path
) -> None:
    made = await jobs.create("a plugin that calculates a tip for an amount", out=tmp_path)
    assert made.ok and exported(made) is not None
    before = plugin_files(exported(made))
    checked = await jobs.check(exported(made))
    assert checked.ok
    assert checked.ctx.result.test_results is not None
    assert checked.ctx.result.test_results.passed == made.ctx.result.test_results.passed  # type: ignore[union-attr]
    assert plugin_files(exported(made)) == before


@pytest.fixture(scope="session")
def greeting_plugin(
    data_dir: Path, cache_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    jobs = Runner(Settings(bot_data_dir=data_dir, bot_cache_dir=cache_dir, sandbox="bwrap"))
    out = tmp_path_factory.mktemp("made")
    made = asyncio.run(jobs.create("a plugin that sends a greeting to a user", out=out))
    assert made.ok and exported(made) is not None
    return exported(made)


@pytest.fixture
def made_plugin(greeting_plugin: Path, tmp_path: Path) -> Path:
    """A fresh copy of a plugin that built and passed, for a test to break."""
    copy = tmp_path / greeting_plugin.name
    shutil.copytree(greeting_plugin, copy)
    return copy


async def test_a_type_error_fails_the_build_phase_with_the_compiler_output(
    jobs: Runner, made_plugin: Path
) -> None:
    index = made_plugin / "src" / "index.ts"
    index.write_text(index.read_text() + "\nconst broken: number = 'not a number';\n")
    checked = await jobs.check(made_plugin)
    assert not checked.ok
    failed = checked.ctx.failed_phase
    assert failed is not None and failed.name == "build"
    assert "error TS2322" in failed.detail
    assert checked.ctx.result.records["test"].state == "skipped"


async def test_a_failing_test_is_counted_and_named(jobs: Runner, made_plugin: Path) -> None:
    test_file = made_plugin / "__tests__" / "plugin.test.ts"
    text = test_file.read_text()
    test_file.write_text(
        text.replace(
            "it('has its name and description'", "it.fails('has its name and description'", 1
        )
    )
    checked = await jobs.check(made_plugin)
    results = checked.ctx.result.test_results
    assert results is not None
    assert results.failed == 1 and results.passed == results.total - 1
    failed = checked.ctx.failed_phase
    assert failed is not None and failed.name == "test"
    assert failed.error == f"1 of {results.total} tests failed"
    assert "has its name and description" in failed.detail


def test_cli_create_prints_a_summary_and_exits_zero(
    settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("BOT_DATA_DIR", str(settings.bot_data_dir))
    monkeypatch.setenv("BOT_CACHE_DIR", str(settings.cache_dir))
    monkeypatch.setenv("SANDBOX", settings.sandbox)
    spec_file = tmp_path / "spec.json"
    spec_file.write_text(json.dumps({**ALL_KINDS, "name": "plugin-cli-check"}))
    code = main(["create", "--spec", str(spec_file), "--out", str(tmp_path / "out")])
    printed = capsys.readouterr().out
    assert code == 0, printed
    for phase in ("spec", "scaffold", "generate", "install", "build", "test"):
        assert f"✓ {phase}" in printed
    assert re.search(r"tests\s+\d+ passed, 0 failed", printed)
    assert "built and tested" in printed
    assert "not signed" in printed  # no SIGNING_KEY_PATH in this test
    assert (tmp_path / "out" / "plugin-cli-check" / RESULTS_FILE).is_file()

    # Same target again: refused without --force, replaced with it.
    assert main(["create", "--spec", str(spec_file), "--out", str(tmp_path / "out")]) == 1
    assert "already exists" in capsys.readouterr().out
    marker = tmp_path / "out" / "plugin-cli-check" / "stale.txt"
    marker.write_text("from an earlier run")
    forced = ["create", "--spec", str(spec_file), "--out", str(tmp_path / "out"), "--force"]
    assert main(forced) == 0
    assert not marker.exists()


def test_cli_check_fails_and_shows_the_failing_phase(
    settings, made_plugin: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("BOT_DATA_DIR", str(settings.bot_data_dir))
    monkeypatch.setenv("BOT_CACHE_DIR", str(settings.cache_dir))
    monkeypatch.setenv("SANDBOX", settings.sandbox)
    broken = made_plugin.parent / "broken"
    shutil.copytree(made_plugin, broken)
    (broken / "src" / "index.ts").write_text("export const = ;\n")
    assert main(["check", str(broken)]) == 1
    printed = capsys.readouterr().out
    assert "✗ build failed" in printed
    assert "src/index.ts" in printed


# A build that fails after printing what a hostile package or plugin could: a window title
# (OSC 0), a clipboard write (OSC 52), a clear screen (CSI) and a C1 CSI.
HOSTILE_BUILD = (
    "process.stdout.write('\\x1b]0;pwned-title\\x07\\x1b]52;c;Y3VybCBldmlsfHNo\\x07');\n"
    "process.stdout.write('\\x1b[2J\\x1b[H\\u009b2Jbuild broke here\\n');\n"
    "process.exit(3);\n"
)


@pytest.mark.parametrize("terminal", [False, True], ids=["pipe", "terminal"])
def test_cli_shows_a_failing_builds_escape_sequences_neutralised(
    settings,
    made_plugin: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    terminal: bool,
) -> None:
    monkeypatch.setenv("BOT_DATA_DIR", str(settings.bot_data_dir))
    monkeypatch.setenv("BOT_CACHE_DIR", str(settings.cache_dir))
    monkeypatch.setenv("SANDBOX", settings.sandbox)
    if terminal:  # rich then renders the live progress and the summary as for a terminal
        monkeypatch.setenv("FORCE_COLOR", "1")
    # The pack's build command runs scripts/check.mjs: make it print the hostile output.
    (made_plugin / "scripts" / "check.mjs").write_text(HOSTILE_BUILD)
    assert main(["check", str(made_plugin)]) == 1
    printed = capsys.readouterr().out
    assert "build broke here" in printed  # the output is shown …
    assert "exited with code" in printed
    for sequence in ("\x1b]", "\x07", "\x1b[2J", "\x1b[H", "\x9b"):  # … harmless
        assert sequence not in printed, (sequence, printed)
    assert "pwned-title" not in printed and "Y3VybCBldmlsfHNo" not in printed


class BreakingGenerator:
    """A generator whose code does not compile."""

    name = "breaking"
    model = None

    async def generate(self, ctx) -> None:  # type: ignore[no-untyped-def]
        # Generators change the plugin through the bot's file set (what is built and signed).
        files = ctx.result.files
        files.write("src/index.ts", files.get("src/index.ts") + b"\nconst broken: number = 'no';\n")


async def test_a_failed_create_leaves_the_output_alone_and_keeps_its_workspace(
    jobs: Runner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    good = await jobs.create("a plugin that sends a greeting to a user", out=tmp_path)
    assert good.ok and exported(good) is not None
    before = {f: (exported(good) / f).read_bytes() for f in plugin_files(exported(good))}
    monkeypatch.setattr("bot.runner.generator_for", lambda *args: BreakingGenerator())
    bad = await jobs.create(
        "a plugin that sends a greeting to a user", out=tmp_path, overwrite=True
    )
    assert not bad.ok and exported(bad) is None
    assert bad.ctx.failed_phase is not None and bad.ctx.failed_phase.name == "build"
    after = {f: (exported(good) / f).read_bytes() for f in plugin_files(exported(good))}
    assert after == before
    assert bad.kept_workspace is not None
    assert "const broken" in (bad.kept_workspace / "src" / "index.ts").read_text()


async def test_a_signed_plugin_verifies_and_its_test_results_are_covered(
    settings: Settings, tmp_path: Path
) -> None:
    key_path, entry = generate_key(tmp_path / "keys")
    jobs = Runner(settings.model_copy(update={"signing_key_path": key_path}))
    made = await jobs.create("a plugin that sends a greeting to a user", out=tmp_path / "out")
    assert made.ok and exported(made) is not None and made.ctx.result.manifest is not None
    keys_file = tmp_path / "keys.json"
    keys_file.write_text(json.dumps([entry]))
    keys = load_keys(keys_file)
    path = f"plugins/{exported(made).name}"
    verified = verify_manifest(exported(made), keys, plugin_path=path)
    names = {s["name"] for s in verified.statement["subject"]}
    assert RESULTS_FILE in names and names == set(plugin_files(exported(made))) - {MANIFEST_FILE}
    predicate = verified.statement["predicate"]
    assert predicate["tests"]["passed"] == made.ctx.result.test_results.passed  # type: ignore[union-attr]
    assert predicate["spec"]["name"] == made.ctx.result.spec.name  # type: ignore[union-attr]
    assert predicate["template"] == {"name": "elizaos-plugin", "version": "1.0.0"}
    # What was signed builds and passes from a fresh copy (issue 8).
    fresh = tmp_path / "fresh" / exported(made).name
    shutil.copytree(exported(made), fresh)
    rechecked = await jobs.check(fresh)
    assert rechecked.ok, rechecked.ctx.failed_phase
    (exported(made) / RESULTS_FILE).write_text("{}")
    with pytest.raises(VerificationError, match=RESULTS_FILE):
        verify_manifest(exported(made), keys, plugin_path=path)


async def test_without_a_key_the_plugin_is_not_signed_and_says_so(
    jobs: Runner, tmp_path: Path
) -> None:
    made = await jobs.create("a plugin that sends a greeting to a user", out=tmp_path)
    assert made.ok and made.ctx.result.manifest is None
    assert made.ctx.result.records["sign"].state == "passed"
    assert not (exported(made) / MANIFEST_FILE).exists()  # type: ignore[operator]


async def test_a_type_error_in_a_test_file_fails_the_build_with_its_file_and_line(
    jobs: Runner, made_plugin: Path
) -> None:
    test_file = made_plugin / "__tests__" / "plugin.test.ts"
    lines = test_file.read_text().splitlines()
    lines.append("const broken: number = 'not a number';")
    test_file.write_text("\n".join(lines) + "\n")
    checked = await jobs.check(made_plugin)
    assert not checked.ok
    failed = checked.ctx.failed_phase
    assert failed is not None and failed.name == "build"
    assert f"__tests__/plugin.test.ts({len(lines)},7): error TS2322" in failed.detail
    assert checked.ctx.result.records["test"].state == "skipped"


async def test_the_cached_tree_holds_a_prepared_pglite_data_directory(
    jobs: Runner, greeting_plugin: Path
) -> None:
    checked = await jobs.check(greeting_plugin)
    assert checked.ok
    install = checked.ctx.result.install
    assert install is not None and install.cache_hit
    datadir = install.node_modules / ".plugin-bot" / "pglite-datadir"
    assert (datadir / "PG_VERSION").read_text().strip() == "17"
    assert not (datadir / "postmaster.pid").exists()
    assert not (datadir / "PG_VERSION").stat().st_mode & 0o222  # shared, read-only


async def test_without_a_prepared_directory_npm_build_and_test_run_as_a_maintainer_runs_them(
    jobs: Runner, greeting_plugin: Path, data_dir: Path
) -> None:
    checked = await jobs.check(greeting_plugin)
    assert checked.ok and checked.ctx.result.install is not None
    tree = checked.ctx.result.install.node_modules
    plugin = Path(tempfile.mkdtemp(dir=data_dir)) / greeting_plugin.name
    plugin.parent.chmod(0o755)
    shutil.copytree(greeting_plugin, plugin)
    # what `npm ci` lays out for this lockfile: the packages, without the bot's preparation
    shutil.copytree(tree, plugin / "node_modules", symlinks=True, ignore=_bot_prepared)
    for argv in (["npm", "run", "build"], ["npm", "test"]):
        run = await jobs.sandbox.run(argv, plugin)
        assert run.ok, run.output_tail(40)
    assert (plugin / "dist" / "index.js").is_file() and (plugin / "dist" / "index.d.ts").is_file()
    assert "passed" in run.output_tail(20) and "failed" not in run.output_tail(20)


def _bot_prepared(folder: str, names: list[str]) -> set[str]:
    return {".plugin-bot"} & set(names)

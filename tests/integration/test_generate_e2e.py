"""`create --generator anthropic` end to end: a scripted Messages API at the HTTP layer,
the real sandbox, npm, tsc and vitest. The model writes the spec, edits the scaffold,
runs the checks, sees a compiler error, fixes it and finishes; the plugin then passes the
verify phases from scratch."""

import json
import shutil
from pathlib import Path

import pytest
from pydantic import SecretStr

from bot.runner import Runner
from bot.settings import Settings
from tests.fakes.messages_api import ScriptedMessagesAPI, tool_use_reply, usage
from tests.integration.conftest import exported

SPEC = {
    "name": "plugin-greeter",
    "description": "Greets a user by name.",
    "actions": [
        {
            "name": "SendGreeting",
            "description": "Sends a greeting to a user.",
            "parameters": [{"name": "user", "description": "who to greet"}],
        }
    ],
}
BROKEN = "export const greeting = (user: string): number => `Hello, ${user}!`;\n"
FIXED = "export const greeting = (user: string): string => `Hello, ${user}!`;\n"


@pytest.fixture
def model_settings(data_dir: Path, cache_dir: Path) -> Settings:
    return Settings(
        bot_data_dir=data_dir,
        bot_cache_dir=cache_dir,
        sandbox="bwrap",
        anthropic_api_key=SecretStr("sk-test-not-real"),
        anthropic_max_retries=1,
    )


async def test_the_model_writes_fixes_and_finishes_a_plugin_that_verifies(
    model_settings: Settings, tmp_path: Path
) -> None:
    api = ScriptedMessagesAPI()
    cached = usage(input_tokens=200, output_tokens=80, cache_read_input_tokens=4000)
    api.add(
        tool_use_reply(("submit_plugin_spec", SPEC)),
        tool_use_reply(
            ("write_file", {"path": "src/greeting.ts", "content": BROKEN}),
            ("run_checks", {}),
            usage_=usage(input_tokens=5000, cache_creation_input_tokens=4000),
        ),
        tool_use_reply(
            ("write_file", {"path": "src/greeting.ts", "content": FIXED}),
            ("run_checks", {}),
            usage_=cached,
        ),
        tool_use_reply(("finish", {"summary": "added a greeting helper"}), usage_=cached),
    )
    jobs = Runner(model_settings)
    outcome = await jobs.create(
        "a plugin that sends a greeting to a user",
        out=tmp_path,
        generator="anthropic",
        http_client=api.client(),
    )
    api.assert_done()
    ctx = outcome.ctx
    assert outcome.ok, ctx.failed_phase
    assert ctx.result.spec is not None and ctx.result.spec.name == "plugin-greeter"
    assert ctx.result.rounds_used == 2
    assert outcome.meter.usage.cache_share > 0 and outcome.meter.cost_usd > 0

    # The second check round saw the real compiler error, with file and line.
    third = json.dumps(api.bodies[3])
    assert "src/greeting.ts" in third and "TS2322" in third
    # The cached prefix: the last system block and the last tool carry cache_control.
    body = api.bodies[1]
    assert body["system"][-1]["cache_control"] == {"type": "ephemeral"}
    assert body["tools"][-1]["cache_control"] == {"type": "ephemeral"}

    plugin = exported(outcome)
    assert plugin is not None
    assert (plugin / "src" / "greeting.ts").read_text() == FIXED
    results = json.loads((plugin / "test-results.json").read_text())
    assert results["success"] and results["failed"] == 0
    # The exported plugin builds and passes from a fresh copy (issue 8).
    fresh = tmp_path / "fresh" / plugin.name
    shutil.copytree(plugin, fresh)
    rechecked = await jobs.check(fresh)
    assert rechecked.ok, rechecked.ctx.failed_phase


async def test_auto_without_a_key_uses_the_scaffold_and_the_keyword_parser(
    settings: Settings, tmp_path: Path
) -> None:
    jobs = Runner(settings.model_copy(update={"anthropic_api_key": None}))
    outcome = await jobs.create("a plugin that sends a greeting", out=tmp_path, generator="auto")
    assert outcome.ok
    assert outcome.ctx.tools.generator.name == "scaffold"
    assert getattr(outcome.ctx.tools.spec_writer, "name", None) == "keywords"

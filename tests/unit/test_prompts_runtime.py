"""The spec prompt and the agent's system prompt teach how a 1.7 agent runs a plugin."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.agent import prompt
from bot.spec.model_writer import SYSTEM_PROMPT


def agent_prompt(tmp_path: Path) -> str:
    return "\n".join(block["text"] for block in prompt.system_blocks(tmp_path / "no-types"))


@pytest.mark.parametrize(
    "fact",
    [
        "options = { actionContext, actionPlan? }",  # how parameters (do not) arrive
        "it never passes options.parameters",
        "ModelType.OBJECT_SMALL",
        "question that names it",
        "never throw from a handler",
        "dynamic: true",
        "composeState(message, [NAME])",
        "getServiceLoadPromise",
        "runtime.stop()",
        "runtime.evaluate(message, state, didRespond)",
        "runPluginMigrations(), then initialize()",
        "__tests__/integration.test.ts",
        "plugin.tests",
    ],
)
def test_the_agent_prompt_teaches_the_runtime(fact: str, tmp_path: Path) -> None:
    assert fact in agent_prompt(tmp_path)


@pytest.mark.parametrize(
    "fact",
    [
        "OBJECT_SMALL model or from the text",
        "asking the user when one is missing",
        "its own one-line description",
        "similes",
        "Providers are dynamic",
        "Services start when the agent starts and stop with it",
        '"no API key required" means none',
        "integration test",
        "use exactly those, with those names",
    ],
)
def test_the_spec_prompt_teaches_the_runtime(fact: str) -> None:
    assert fact in " ".join(SYSTEM_PROMPT.split())

"""A repository's `.github/plugin-bot.yml` may add dependencies the bot offers (its
`optional_dependencies`) to what its plugins may use; without it, the bot's list holds."""

from __future__ import annotations

import json

from bot.jobs.store import JobState
from tests.github.test_end_to_end import Bot
from tests.github.test_end_to_end import bot as bot  # the fixture

SPEC = {
    "name": "plugin-weather",
    "description": "Reports the weather for a city.",
    "actions": [{"name": "GetWeather", "description": "Get the weather."}],
    "dependencies": ["left-pad"],
}
COMMAND = f"/create-plugin a weather plugin\n\n```json\n{json.dumps(SPEC)}\n```"


def offering_left_pad(bot: Bot) -> None:
    bot.settings = bot.settings.model_copy(update={"optional_dependencies": {"left-pad": "^1.3.0"}})
    bot.dispatcher.settings = bot.settings


async def test_a_dependency_the_repository_config_adds_is_allowed_in_its_jobs(bot: Bot) -> None:
    offering_left_pad(bot)
    bot.github.set_base_files({".github/plugin-bot.yml": b"dependencies: [left-pad]\n"})
    await bot.comment(COMMAND)
    await bot.dispatch()
    assert len(await bot.jobs()) == 1, bot.replies()  # the config was accepted
    finished = await bot.work()
    assert finished.state == JobState.SUCCEEDED, finished.error
    [pull] = bot.github.pulls
    package = json.loads(bot.github.files_at(pull.head)["plugins/plugin-weather/package.json"])
    assert package["dependencies"]["left-pad"] == "^1.3.0"


async def test_without_the_config_line_the_bot_offers_it_but_does_not_allow_it(bot: Bot) -> None:
    offering_left_pad(bot)
    await bot.comment(COMMAND)
    await bot.dispatch()
    finished = await bot.work()
    assert (finished.state, finished.phase) == (JobState.FAILED, "spec")
    [tracking] = bot.replies()
    assert "left-pad" in tracking and "not an allowed dependency" in tracking
    assert bot.github.pulls == []

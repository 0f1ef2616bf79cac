"""A repository whose ``.github/plugin-bot.yml`` sets ``plugins_folder``: everything the
bot offers or writes uses that folder, so a maintainer edits nothing by hand."""

from __future__ import annotations

import json

import yaml

from bot import status
from bot.github.operations.onboarding import WORKFLOW
from tests.github import test_end_to_end as e2e

bot = e2e.bot  # the end-to-end fixture: server, dispatcher, stand-in GitHub, store
CONFIG = b"# ours\nplugins_folder: packages/eliza\n"


def offered_workflow(body: str) -> str:
    start = body.index("```yaml\n") + len("```yaml\n")
    return body[start : body.index("\n```\n\n</details>", start)]


async def test_onboarding_offers_the_workflow_for_the_configured_folder(bot: e2e.Bot) -> None:
    bot.github.set_base_files({".github/plugin-bot.yml": CONFIG})
    await bot.comment("/plugin-help")
    await bot.dispatch()
    [pull] = bot.github.pulls
    text = offered_workflow(pull.body)
    workflow = yaml.safe_load(text)
    assert workflow[True]["pull_request"]["paths"] == ["packages/eliza/**"]  # `on:` is True
    assert workflow["env"] == {"PLUGINS_FOLDER": "packages/eliza"}
    assert '"plugins/**"' not in text and 'PLUGINS_FOLDER: "plugins"' not in text
    # Apart from those two lines, it is the project's workflow.
    assert len(text.splitlines()) == len(WORKFLOW.read_text().rstrip().splitlines())
    assert "it checks the plugins in `packages/eliza/`" in pull.body
    # The repository's own settings are kept, not replaced by the commented template.
    files = bot.github.files_at(pull.head)
    assert files[".github/plugin-bot.yml"] == CONFIG
    assert "`.github/plugin-bot.yml`: the repository's settings" not in pull.body


async def test_a_plugin_in_the_configured_folder_links_its_own_page(bot: e2e.Bot) -> None:
    bot.github.set_base_files({".github/plugin-bot.yml": CONFIG})
    await bot.comment()
    await bot.dispatch()
    await bot.work()
    [pull] = bot.github.pulls
    package = json.loads(
        bot.github.files_at(pull.head)["packages/eliza/plugin-weather/package.json"]
    )
    assert package["homepage"] == (
        "https://github.com/Codertocat/Hello-World/tree/HEAD/packages/eliza/plugin-weather#readme"
    )


async def test_help_with_an_invalid_config_names_its_problems_and_guesses_no_folder(
    bot: e2e.Bot,
) -> None:
    # The folder is valid, another field is not: a workflow watching the default folder
    # would check nothing once the maintainer fixes the other field. The reply says what
    # is wrong instead, and onboarding waits for a config it can read.
    bot.github.set_base_files({".github/plugin-bot.yml": CONFIG + b'draft: "sometimes"\n'})
    await bot.comment("/plugin-help")
    await bot.dispatch()
    assert bot.github.pulls == []
    assert bot.replies() == [
        status.help_text(False)
        + "\n\n"
        + status.onboarding_waits_for_config(
            ".github/plugin-bot.yml",
            ["draft: Input should be a valid boolean, unable to interpret input"],
        )
    ]
    assert "`.github/plugin-bot.yml` is not valid" in bot.replies()[0]
    assert "draft\\: Input should be a valid boolean" in bot.replies()[0]


async def test_installing_with_an_invalid_config_offers_no_onboarding(bot: e2e.Bot) -> None:
    bot.github.set_base_files({".github/plugin-bot.yml": CONFIG + b"labels: plugin\n"})
    payload = e2e.webhook_example("installation", "created")
    assert (await bot.send(payload, event="installation")).status_code == 202
    await bot.dispatch()
    assert bot.github.pulls == []

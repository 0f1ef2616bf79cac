"""The bot's branch names. A generated plugin's pull request comes from
``plugin-bot/<plugin directory>-<job8>``; the bot's other branches under ``plugin-bot/``
(the onboarding one) hold no plugin, so nothing that revises or retries a plugin's pull
request may take them for one."""

from __future__ import annotations

import re

from bot.settings import BOT_BRANCH_PREFIX

# The directory is a package name without its scope (bot.spec.schema.NPM_NAME).
_GENERATED = re.compile(
    re.escape(BOT_BRANCH_PREFIX) + r"(?P<directory>[a-z0-9][a-z0-9._-]*)-(?P<job8>[0-9a-f]{8})"
)


def branch_for(directory: str, job_id: str) -> str:
    """The branch of the plugin ``directory`` that job ``job_id`` publishes."""
    return f"{BOT_BRANCH_PREFIX}{directory}-{job_id[:8]}"


def generated_plugin(branch: str) -> str | None:
    """The plugin directory of a generated plugin's branch; None for any other branch."""
    found = _GENERATED.fullmatch(branch)
    return found.group("directory") if found else None


def is_branch_of(branch: str, directory: str) -> bool:
    """Whether ``branch`` is the bot's for a plugin called ``directory`` (any job's)."""
    return generated_plugin(branch) == directory

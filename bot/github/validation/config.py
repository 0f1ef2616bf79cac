"""``.github/plugin-bot.yml``: YAML text -> :class:`bot.settings.RepoConfig`, or the list
of problems (field and why) that the reply shows. The model lives in settings; this is
how a repository's text becomes one."""

from __future__ import annotations

from typing import Any

import yaml
from pydantic import ValidationError

from bot.settings import REPO_CONFIG_MAX_BYTES, RepoConfig, Settings


class RepoConfigError(ValueError):
    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("; ".join(problems))


def config_context(settings: Settings) -> dict[str, Any]:
    """What a repository's config is checked against: the bot's own ceilings."""
    return {
        "limits": {
            "jobs_per_hour": settings_limit(settings, "jobs_per_hour"),
            "max_running": settings_limit(settings, "max_running"),
        },
        "optional_dependencies": settings.optional_dependencies,
    }


def settings_limit(settings: Settings, name: str) -> int | None:
    value = getattr(settings, SETTINGS_LIMIT_NAMES[name], None)
    return int(value) if value is not None else None


# RepoConfig.limits field -> the Settings field that caps it (the repository scope).
SETTINGS_LIMIT_NAMES = {
    "jobs_per_hour": "limit_jobs_per_hour_repository",
    "max_running": "limit_running_repository",
}


def _problems(error: ValidationError) -> list[str]:
    problems = []
    for item in error.errors():
        where = ".".join(str(part) for part in item["loc"]) or "(top level)"
        message = item["msg"].removeprefix("Value error, ")
        if item["type"] == "extra_forbidden":
            message = "is not a known setting"
        problems.append(f"{where}: {message}")
    return problems


def parse_repo_config(text: str | None, settings: Settings) -> RepoConfig:
    """The repository's config; no file (None) or an empty file means the defaults."""
    if text is None:
        return RepoConfig()
    if len(text.encode()) > REPO_CONFIG_MAX_BYTES:
        raise RepoConfigError([f"(file): larger than {REPO_CONFIG_MAX_BYTES} bytes"])
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark is not None else "(file)"
        raise RepoConfigError(
            [f"{where}: not valid YAML ({getattr(exc, 'problem', exc)})"]
        ) from exc
    if data is None:
        return RepoConfig()
    if not isinstance(data, dict):
        raise RepoConfigError(["(top level): must be a mapping of settings"])
    try:
        return RepoConfig.model_validate(data, context=config_context(settings))
    except ValidationError as exc:
        raise RepoConfigError(_problems(exc)) from exc

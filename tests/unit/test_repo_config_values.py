""".github/plugin-bot.yml values whose type is not the field's: a meaning a maintainer
would read the same way, or a refusal naming the field, never a silent other meaning."""

from __future__ import annotations

import pytest

from bot.github.validation.config import RepoConfigError, parse_repo_config
from bot.settings import Settings


@pytest.mark.parametrize(
    ("text", "draft"),
    [
        ('draft: "off"\n', False),
        ('draft: "no"\n', False),
        ('draft: "false"\n', False),
        ("draft: off\n", False),  # YAML 1.1: a boolean already
        ('draft: "yes"\n', True),
        ("draft: true\n", True),
    ],
)
def test_a_quoted_yes_or_no_means_what_it_says(text: str, draft: bool) -> None:
    assert parse_repo_config(text, Settings()).draft is draft


@pytest.mark.parametrize("text", ['draft: "sometimes"\n', "draft: 2\n", 'close_issue: ""\n'])
def test_a_boolean_that_is_not_yes_or_no_is_refused_naming_the_field(text: str) -> None:
    with pytest.raises(RepoConfigError) as info:
        parse_repo_config(text, Settings())
    [problem] = info.value.problems
    assert problem.startswith(text.split(":")[0] + ": Input should be a valid boolean")


@pytest.mark.parametrize(
    "text",
    [
        "limits:\n  jobs_per_hour: true\n",  # was 1 job an hour
        "limits:\n  max_running: yes\n",  # YAML 1.1 boolean: was 1
        "limits:\n  max_running: false\n",  # was 0, then "at least 1": a puzzle
    ],
)
def test_a_limit_given_as_true_or_false_is_refused_naming_the_field(text: str) -> None:
    with pytest.raises(RepoConfigError) as info:
        parse_repo_config(text, Settings())
    [problem] = info.value.problems
    field = text.split(":")[1].strip()
    assert problem == f"limits.{field}: must be a number of jobs, not true or false"


def test_a_quoted_number_is_that_number() -> None:
    config = parse_repo_config('limits:\n  jobs_per_hour: "3"\n', Settings())
    assert config.limits.jobs_per_hour == 3

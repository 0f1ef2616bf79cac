"""Every command the deployment files run is in the CLI contract (docs/DESIGN.md) and,
once `plugin-bot` has that subcommand, parses with the real parser; every environment
variable they set is a setting the bot reads.
"""

from __future__ import annotations

import argparse
import re
import shlex
from collections.abc import Iterator
from functools import cache
from pathlib import Path

from bot.cli import build_parser
from bot.settings import Settings
from tests.deploy_files import (
    DESIGN,
    ENV_EXAMPLE,
    UNITS,
    compose,
    env_example,
    final_stage,
    image_env,
    unit_values,
)

# Variables of the process, not of the bot.
PROCESS_VARIABLES = {"PATH", "PYTHONUNBUFFERED"}


@cache
def cli_contract() -> dict[str, set[str]]:
    """Command name → its options, from the command table in docs/DESIGN.md."""
    table = DESIGN.read_text().split("Command line", 1)[1].split("\n\n", 2)[1]
    contract: dict[str, set[str]] = {}
    for row in table.splitlines():
        first_cell = row.split(" | ")[0]
        for signature in re.findall(r"`([^`]+)`", first_cell):
            words = re.split(r"\s+(?=[A-Z\[\-]|…)", signature, maxsplit=1)
            contract[words[0]] = set(re.findall(r"--[a-z-]+", signature))
    return contract


def deployed_commands() -> Iterator[tuple[str, list[str]]]:
    """Every `plugin-bot …` the deployment files run, with where it comes from."""
    (command,) = [i.exec_form() for i in final_stage() if i.keyword == "CMD"]
    yield "Dockerfile CMD", command
    for name, service in compose()["services"].items():
        if "command" in service and service.get("build"):
            yield f"compose {name}", service["command"]
    for path in UNITS:
        for exec_start in unit_values(path, "Service", "ExecStart"):
            argv = shlex.split(exec_start)
            assert Path(argv[0]).name == "plugin-bot", exec_start
            yield path.name, argv[1:]


def subcommand(argv: list[str]) -> str:
    words = [w for w in argv if not w.startswith("-")]
    for n in (2, 1):
        if " ".join(words[:n]) in cli_contract():
            return " ".join(words[:n])
    raise AssertionError(f"{argv} is not a command of the CLI contract")


def test_the_contract_table_is_read() -> None:
    contract = cli_contract()
    assert contract["serve"] == {"--host", "--port"}
    assert contract["worker"] == {"--concurrency"}
    assert contract["db upgrade"] == set()
    assert {"create", "check", "verify", "keygen", "submit", "jobs", "job", "cancel"} <= set(
        contract
    )


def test_every_deployed_command_is_in_the_cli_contract() -> None:
    seen = set()
    for where, argv in deployed_commands():
        name = subcommand(argv)
        options = {a for a in argv if a.startswith("--")}
        assert options <= cli_contract()[name], f"{where}: {sorted(options - cli_contract()[name])}"
        seen.add(name)
    assert seen == {"serve", "worker", "db upgrade"}


def real_subcommands(parser: argparse.ArgumentParser) -> set[str]:
    actions = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return {name for action in actions for name in action.choices}


def test_deployed_commands_parse_with_plugin_bot_where_it_has_them() -> None:
    available = real_subcommands(build_parser())
    for where, argv in deployed_commands():
        if argv[0] in available:
            try:
                build_parser().parse_args(argv)
            except SystemExit as exc:
                raise AssertionError(
                    f"{where}: plugin-bot {shlex.join(argv)} does not parse"
                ) from exc


def bot_variables() -> set[str]:
    """What the bot reads: the settings' fields and the names DESIGN.md's contract lists."""
    names = {name.upper() for name in Settings.model_fields}
    environment = DESIGN.read_text().split("Environment (", 1)[1].split("\n\n", 1)[0]
    names |= set(re.findall(r"`([A-Z][A-Z0-9_]+)`", environment))
    return names


def deployed_variables() -> Iterator[tuple[str, str]]:
    for name in image_env():
        yield "Dockerfile", name
    for name, service in compose()["services"].items():
        if service.get("build"):
            for key in service.get("environment", {}):
                yield f"compose {name}", key
    for key in env_example():
        yield ENV_EXAMPLE.name, key
    for path in UNITS:
        for value in unit_values(path, "Service", "Environment"):
            yield path.name, value.split("=", 1)[0]


def test_every_variable_the_deployment_sets_is_one_the_bot_reads() -> None:
    known = bot_variables() | PROCESS_VARIABLES
    unknown = sorted(
        {f"{where}: {name}" for where, name in deployed_variables() if name not in known}
    )
    assert unknown == []
    assert "TEMPLATE_DIR" in known and "GITHUB_WEBHOOK_SECRET" in known

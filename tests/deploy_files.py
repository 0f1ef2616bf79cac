"""The deployment files (Dockerfile, compose.yaml, .dockerignore, deploy/) read for the tests.

No Docker engine and no systemd as PID 1 are needed: the files are parsed here, and the
sandbox probe reproduces what a hardening option does with mount namespaces.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from bot.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = ROOT / "Dockerfile"
COMPOSE = ROOT / "compose.yaml"
DOCKERIGNORE = ROOT / ".dockerignore"
ENV_EXAMPLE = ROOT / "deploy" / "plugin-bot.env.example"
UNITS = [ROOT / "deploy" / "plugin-bot.service", ROOT / "deploy" / "plugin-bot-worker.service"]
DESIGN = ROOT / "docs" / "DESIGN.md"
CI = os.environ.get("CI") == "true"

# Names that look like they hold a secret; allowed only as *_PATH / *_FILE (a file's path).
SECRET_NAME = re.compile(r"(SECRET|PASSWORD|PASSPHRASE|TOKEN|API_KEY|PRIVATE_KEY)(?!_PATH|_FILE)")


def require_tool(name: str, path: str | None = None) -> str:
    found = shutil.which(name, path=path)
    if found is None:
        if CI:
            pytest.fail(f"{name} is needed to validate the deployment files")
        pytest.skip(f"{name} is not installed")
    return found


@dataclass(frozen=True)
class Instruction:
    keyword: str
    args: str
    stage: int

    def exec_form(self) -> list[str]:
        value = json.loads(self.args)
        assert isinstance(value, list), f"{self.keyword} should be in exec form"
        return [str(v) for v in value]


def parse_dockerfile(text: str) -> list[Instruction]:
    """Instructions with continuation lines joined and comments dropped."""
    joined = re.sub(r"\\\n", " ", text)
    instructions: list[Instruction] = []
    stage = -1
    for line in joined.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        keyword, _, args = line.partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            stage += 1
        instructions.append(Instruction(keyword, " ".join(args.split()), stage))
    return instructions


@cache
def dockerfile() -> tuple[Instruction, ...]:
    return tuple(parse_dockerfile(DOCKERFILE.read_text()))


def final_stage() -> list[Instruction]:
    last = dockerfile()[-1].stage
    return [i for i in dockerfile() if i.stage == last]


def image_env() -> dict[str, str]:
    env: dict[str, str] = {}
    for instruction in final_stage():
        if instruction.keyword == "ENV":
            for item in shlex.split(instruction.args):
                key, _, value = item.partition("=")
                env[key] = value
    return env


def copy_sources() -> list[str]:
    """What the image's COPY instructions take from the build context."""
    return [
        source
        for i in dockerfile()
        if i.keyword == "COPY" and "--from=" not in i.args
        for source in [a for a in i.args.split() if not a.startswith("--")][:-1]
    ]


def dockerignore_excludes(path: str) -> bool:
    """Docker's rule: the last pattern that matches the path or a parent of it wins."""
    patterns = [
        line.strip()
        for line in DOCKERIGNORE.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    parts = path.split("/")
    prefixes = ["/".join(parts[: n + 1]) for n in range(len(parts))]
    excluded = False
    for pattern in patterns:
        negated = pattern.startswith("!")
        glob = pattern.removeprefix("!").strip("/")
        regex = re.escape(glob).replace(r"\*\*/", "(.*/)?").replace(r"\*", "[^/]*")
        if any(re.fullmatch(regex, prefix) for prefix in prefixes):
            excluded = not negated
    return excluded


def compose() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE.read_text())
    assert isinstance(data, dict)
    return data


def env_example() -> dict[str, str]:
    values: dict[str, str] = {}
    for line in ENV_EXAMPLE.read_text().splitlines():
        line = line.strip().removeprefix("# ")
        if re.fullmatch(r"[A-Z][A-Z0-9_]*=.*", line):
            key, _, value = line.partition("=")
            values[key] = value
    return values


def unit(path: Path) -> dict[str, list[tuple[str, str]]]:
    sections: dict[str, list[tuple[str, str]]] = {}
    current = ""
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("["):
            current = line.strip("[]")
            sections[current] = []
        else:
            key, _, value = line.partition("=")
            sections[current].append((key, value))
    return sections


def unit_values(path: Path, section: str, key: str) -> list[str]:
    return [v for k, v in unit(path)[section] if k == key]


def sandbox_builds_under(setup: str) -> bool:
    if os.geteuid() != 0:
        if CI:
            pytest.fail("the hardening probe needs root (mount namespaces)")
        pytest.skip("the hardening probe needs root")
    bwrap = require_tool("bwrap")
    uid = str(Settings().sandbox_uid)
    probe = [
        "setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups",
        "--no-new-privs", "--bounding-set=-all", "--",
        bwrap, "--unshare-all", "--unshare-user", "--disable-userns", "--die-with-parent",
        "--new-session", "--cap-drop", "ALL", "--hostname", "sandbox",
        "--ro-bind", "/usr", "/usr", "--symlink", "usr/lib", "/lib",
        "--symlink", "usr/lib64", "/lib64", "--symlink", "usr/bin", "/bin",
        "--proc", "/proc", "--dev", "/dev", "--", "/bin/true",
    ]  # fmt: skip
    script = f"{setup} && exec {shlex.join(probe)}"
    argv = ["unshare", "--mount", "--propagation", "private", "sh", "-ec", script]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    return done.returncode == 0

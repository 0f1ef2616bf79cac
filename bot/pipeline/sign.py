"""sign: a DSSE-signed in-toto statement over every file of the plugin."""

from __future__ import annotations

import json
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from bot.manifest import MANIFEST_FILE, build_statement, sign_statement
from bot.pipeline.context import JobContext, PhaseFailed
from bot.workspace import TreeChanged

PLUGINS_ROOT = "plugins"


def _bot_version() -> str:
    try:
        return version("plugin-bot")
    except PackageNotFoundError:
        return "unknown"


def predicate_for(ctx: JobContext) -> dict[str, Any]:
    """How the plugin was made; fields a local run does not have are null."""
    spec, results = ctx.result.spec, ctx.result.test_results
    if spec is None or results is None:
        raise PhaseFailed("nothing to sign: no spec or no test results")
    origin, tools = ctx.request.origin, ctx.tools
    revision = ctx.result.revision
    return {
        "job": {"id": ctx.request.job_id},
        "repository": origin.repository,
        "issue": origin.issue,
        "comment": origin.comment_id,
        "requester": origin.requester,
        "delivery": origin.delivery_id,
        "baseCommit": ctx.result.base_commit,
        "parentCommit": ctx.result.parent_commit or ctx.result.base_commit,
        "branch": ctx.result.branch,
        "plugin": {
            "name": spec.name,
            "version": spec.version,
            # Where the publisher puts it in the target repository; plugins/<name> by default.
            "path": ctx.result.plugin_path or f"{PLUGINS_ROOT}/{spec.directory_name}",
        },
        "spec": spec.model_dump(mode="json"),
        "template": {"name": tools.pack.name, "version": tools.pack.version},
        "generator": {"name": tools.generator.name, "model": tools.generator.model},
        # The model's usage up to signing (all of it: publishing asks no model), so a job
        # recovered after its push can still say what it cost.
        "usage": None
        if tools.generator.model is None
        else {"tokens": tools.meter.usage.total, "costUsd": tools.meter.cost_usd},
        "tools": {"plugin-bot": _bot_version(), "node": tools.deps.node_version},
        # A revision links the chain: the manifest it replaces, what was asked, by whom.
        "revision": None
        if revision is None
        else {
            "previousManifestSha256": revision.previous_manifest_sha256,
            "request": revision.request,
            "requester": revision.requester,
            "pullRequest": revision.pull_number,
            "parentCommit": revision.head_sha,
        },
        "tests": {
            "tool": results.tool,
            "total": results.total,
            "passed": results.passed,
            "failed": results.failed,
            "skipped": results.skipped,
            "log_sha256": results.log_sha256,
        },
    }


async def sign_phase(ctx: JobContext) -> None:
    plugin_dir = ctx.require_plugin()
    if ctx.tools.signing_key is None:
        ctx.tools.reporter.phase_note("sign", "not signed: no signing key (set SIGNING_KEY_PATH)")
        return
    files = ctx.require_files()
    try:
        files.refuse_changes()  # the directory is exactly the authoritative set
    except TreeChanged as exc:
        raise PhaseFailed(f"nothing signed: {exc}") from None
    names = [f for f in files.names() if f != MANIFEST_FILE]
    statement = build_statement(plugin_dir, predicate_for(ctx), names)
    signed = {s["name"]: s["digest"]["sha256"] for s in statement["subject"]}
    if signed != {name: digest for name, digest in files.digests().items() if name in names}:
        raise PhaseFailed("nothing signed: the files on disk are not the bot's files")
    envelope = sign_statement(statement, ctx.tools.signing_key)
    files.write(MANIFEST_FILE, (json.dumps(envelope, indent=2, sort_keys=True) + "\n").encode())
    ctx.result.manifest = plugin_dir / MANIFEST_FILE
    ctx.tools.reporter.phase_note("sign", f"{len(names)} files signed into {MANIFEST_FILE}")

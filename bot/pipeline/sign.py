"""sign: a DSSE-signed in-toto statement over every file of the plugin."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from typing import Any

from bot.manifest import MANIFEST_FILE, write_manifest
from bot.pipeline.context import JobContext, PhaseFailed
from bot.workspace import plugin_files

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
        "branch": ctx.result.branch,
        "plugin": {
            "name": spec.name,
            "version": spec.version,
            "path": f"{PLUGINS_ROOT}/{spec.directory_name}",
        },
        "spec": spec.model_dump(mode="json"),
        "template": {"name": tools.pack.name, "version": tools.pack.version},
        "generator": {"name": tools.generator.name, "model": tools.generator.model},
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
    files = [f for f in plugin_files(plugin_dir) if f != MANIFEST_FILE]
    ctx.result.manifest = write_manifest(
        plugin_dir, predicate_for(ctx), ctx.tools.signing_key, files
    )
    ctx.tools.reporter.phase_note("sign", f"{len(files)} files signed into {MANIFEST_FILE}")

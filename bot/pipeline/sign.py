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
    spec, results = ctx.spec, ctx.test_results
    if spec is None or results is None:
        raise PhaseFailed("nothing to sign: no spec or no test results")
    given = dict(ctx.provenance)
    return {
        "job": {"id": ctx.workspace.name},
        "repository": given.get("repository"),
        "issue": given.get("issue"),
        "comment": given.get("comment"),
        "requester": given.get("requester"),
        "delivery": given.get("delivery"),
        "baseCommit": given.get("base_commit"),
        "plugin": {
            "name": spec.name,
            "version": spec.version,
            "path": f"{PLUGINS_ROOT}/{spec.directory_name}",
        },
        "spec": spec.model_dump(mode="json"),
        "template": {"name": ctx.pack.name, "version": ctx.pack.version},
        "generator": {"name": ctx.generator.name, "model": given.get("model")},
        "tools": {"plugin-bot": _bot_version(), "node": ctx.deps.node_version},
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
    if ctx.signing_key is None:
        ctx.reporter.phase_note("sign", "not signed: no signing key (set SIGNING_KEY_PATH)")
        return
    files = [f for f in plugin_files(plugin_dir) if f != MANIFEST_FILE]
    ctx.manifest = write_manifest(plugin_dir, predicate_for(ctx), ctx.signing_key, files)
    ctx.reporter.phase_note("sign", f"{len(files)} files signed into {MANIFEST_FILE}")

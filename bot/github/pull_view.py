"""What a plugin's pull request body says, built in one place: from the job that just ran,
or from the signed manifest of a commit the bot already pushed (a revision whose worker
died after the push), so both write the same body."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from bot.github.ports import JobView
from bot.manifest import keyid_of
from bot.pipeline.context import JobContext
from bot.spec.schema import PluginSpec
from bot.status import Component, PullRequestView, RevisionView, TestRow
from bot.testresults import TestResults


@dataclass(frozen=True)
class MadeWith:
    """How the published plugin was made: its tests, its manifest, the model's usage."""

    results: TestResults | None
    manifest: bytes | None  # the signed manifest as published (None: not signed)
    keyid: str | None
    model: str | None
    tokens: int | None  # None without a model
    cost_usd: float | None


def made_by_job(ctx: JobContext) -> MadeWith:
    manifest = ctx.result.manifest.read_bytes() if ctx.result.manifest is not None else None
    key = ctx.tools.signing_key
    model = ctx.tools.generator.model
    return MadeWith(
        results=ctx.result.test_results,
        manifest=manifest,
        keyid=keyid_of(key.public_key()) if key is not None and manifest else None,
        model=model,
        tokens=ctx.tools.meter.usage.total if model else None,
        cost_usd=ctx.tools.meter.cost_usd if model else None,
    )


def components(spec: PluginSpec) -> list[Component]:
    return [
        Component(kind, item.name, getattr(item, "description", ""))
        for kind, item in spec.components()
    ]


def pull_request_view(
    job: JobView,
    spec: PluginSpec,
    folder: str,
    made: MadeWith,
    *,
    description: str,
    close_issue: bool = False,
    revision: RevisionView | None = None,
) -> PullRequestView:
    results = made.results
    return PullRequestView(
        job_id=job.id,
        plugin_name=spec.name,
        plugin_path=folder,
        description=description,
        requester=job.requester,
        issue_number=job.issue,
        components=components(spec),
        tests=[TestRow(t.file, t.name, t.state) for t in results.tests] if results else [],
        tests_passed=results.passed if results else 0,
        tests_failed=results.failed if results else 0,
        manifest_sha256=hashlib.sha256(made.manifest).hexdigest() if made.manifest else None,
        keyid=made.keyid,
        tokens=made.tokens,
        cost_usd=made.cost_usd,
        model=made.model,
        close_issue=close_issue,
        revision=revision,
    )

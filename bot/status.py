"""User-facing texts. Text that came from a requester, a sandbox or a model goes through
``bot.neutralise`` first."""

from __future__ import annotations

import datetime as dt

from bot.jobs.limits import RateLimited
from bot.jobs.store import Accepted, Job, JobEvent, JobState
from bot.neutralise import plain

# ---------------------------------------------------------------- jobs (CLI): what
# plugin-bot submit, jobs, job, cancel, worker and db print.

SCOPE_NAMES = {"installation": "installation", "repository": "repository", "requester": "you"}


def when(moment: dt.datetime | None) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC") if moment else "–"


def job_accepted(answer: Accepted) -> str:
    line = f"queued job {answer.job_id} (position {answer.position} in the queue)"
    if answer.waiting_on is not None:
        who = SCOPE_NAMES[answer.waiting_on]
        line += f"; waiting: {who} already has the most jobs running at once"
    return line


def job_refused(answer: RateLimited) -> str:
    who = SCOPE_NAMES[answer.scope]
    return (
        f"refused: {who} already submitted {answer.limit} jobs in the last hour; "
        f"the next slot frees at {when(answer.retry_at)}"
    )


def job_cancel_answer(job: Job) -> str:
    if job.state == JobState.CANCELLED:
        return f"job {job.short_id} is cancelled"
    if job.state == JobState.RUNNING:
        return f"job {job.short_id} is being stopped (it was running)"
    return f"job {job.short_id} had already finished ({job.state}); nothing to cancel"


def no_such_job(ref: str) -> str:
    return f"no job {plain(ref)} (give its id or an unambiguous prefix of at least 4 characters)"


def job_line(job: Job) -> list[str]:
    """A row of ``plugin-bot jobs``: id, state, phase, attempts, created, description."""
    return [
        job.short_id,
        str(job.state),
        job.phase or "–",
        str(job.attempts),
        when(job.created_at),
        plain(job.description)[:60],
    ]


def job_details(job: Job, position: int | None) -> list[tuple[str, str]]:
    """The fields of ``plugin-bot job ID``."""
    rows = [
        ("job", job.id),
        ("state", str(job.state) + (f" (position {position})" if position else "")),
        ("description", plain(job.description)),
        ("phase", job.phase or "–"),
        ("attempts", f"{job.attempts} of {job.max_attempts}"),
        ("created", when(job.created_at)),
        ("started", when(job.started_at)),
        ("finished", when(job.finished_at)),
    ]
    if job.repository:
        rows.append(("repository", f"{job.repository}#{job.issue}"))
    if job.requester:
        rows.append(("requester", plain(job.requester)))
    for name, entry in job.progress.items():
        took = f" {entry['wall_s']:.1f}s" if "wall_s" in entry else ""
        note = plain(entry.get("error") or entry.get("note") or "")
        rows.append((f"  {name}", f"{entry.get('state', '?')}{took} {note}".rstrip()))
    if job.usage and any(job.usage.values()):
        tokens = job.usage.get("input_tokens", 0) + job.usage.get("output_tokens", 0)
        rows.append(("usage", f"{tokens} tokens, ${job.cost_usd:.4f}"))
    published = (job.result or {}).get("published")
    if job.pr_url:
        rows.append(("pull request", job.pr_url))
    elif published:
        rows.append(("published to", published.get("url") or published["location"]))
    if job.error:
        kind = f" ({job.error_kind})" if job.error_kind else ""
        rows.append(("error", plain(job.error) + kind))
    return rows


def event_line(event: JobEvent) -> str:
    phase = f" {event.phase}" if event.phase else ""
    message = f": {plain(event.message)}" if event.message else ""
    return f"{when(event.at)}  {event.kind}{phase}{message}"


def worker_started(name: str, queue: str, concurrency: int) -> str:
    return f"worker {name} on the {queue} queue, {concurrency} at once (Ctrl-C stops it)"


def db_status_line(advice: str) -> str:
    return advice

"""Every user-facing text: the jobs CLI's lines, and the GitHub front's replies, tracking
comment and pull-request bodies.

Functions here take plain data and return text. Anything that came from a requester, a
sandbox or a model goes through ``bot.neutralise`` first (``plain`` for a terminal; for
Markdown :func:`md`, :func:`code` or :func:`code_block`), so it cannot mention people,
link, embed images or HTML, or hide text with control characters.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from bot.jobs.limits import RateLimited
from bot.jobs.store import Accepted, Job, JobEvent, JobState
from bot.neutralise import md_block, md_code, md_text, plain
from bot.settings import GITHUB_CHECK_SUMMARY_MAX, GITHUB_COMMENT_MAX, GITHUB_PR_BODY_MAX

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


# ================================================================ the GitHub front

TRACKING_MARKER_PREFIX = "<!-- plugin-bot:tracking"
ONBOARDING_BRANCH = "plugin-bot/onboarding"
HELP_URL_HINT = "`/plugin-help`"

# ---------------------------------------------------------------------- neutralising


def md(text: str, limit: int = 500) -> str:
    """Outside text as inert inline Markdown (bot.neutralise: no mention, link, HTML)."""
    return md_text(text, inline=True, limit=limit)


def code_block(text: str, limit: int = 3000) -> str:
    """Outside text (a log tail) as a fenced block, its last ``limit`` characters."""
    if len(text) > limit:
        text = "…" + text[-(limit - 1) :]
    return md_block(text, "text")


def code(text: str, limit: int = 200) -> str:
    """Outside text as an inline code span: shown verbatim, never rendered or linked."""
    return md_code(text, limit=limit)


def cell_code(text: str, limit: int = 200) -> str:
    """:func:`code` for a GFM table cell: its ``|`` cannot end the cell."""
    return md_code(text, limit=limit, table_cell=True)


def plain_text(text: str, limit: int) -> str:
    """Outside text where GitHub shows plain text (a check annotation's message): not
    Markdown-escaped, control and bidi characters made visible (bot.neutralise.plain)."""
    return plain(text)[:limit]


def _more_line(count: int, noun: str) -> str:
    return f"\n\n… and {count} more {noun}, not listed (GitHub caps the size of this text)."


def _fitted(head: str, items: Sequence[str], budget: int, noun: str, sep: str = "\n") -> str:
    """``head`` and as many ``items`` (joined by ``sep``) as fit in ``budget`` characters;
    a line after them counts the ones left out."""
    text = head
    for shown, item in enumerate(items):
        more = _more_line(len(items) - shown, noun)
        if len(text) + len(sep) + len(item) + len(more) > budget:
            return (text + more) if len(text + more) <= budget else more.strip()
        text += sep + item
    return text


def quote(text: str, limit: int = 2000) -> str:
    """A commenter's request as a Markdown quote, each line neutralised."""
    lines = text[:limit].splitlines() or [""]
    return "\n".join("> " + md(line, limit) for line in lines)


# ---------------------------------------------------------------------- replies


def user(login: str) -> str:
    """A login in a reply, in code so it does not notify anyone."""
    return f"{code(login, 64)}"


def refused_permission(
    login: str, permission: str, needed: str, custom_role: str | None = None
) -> str:
    """``custom_role``: the name of a custom repository role, judged by ``permission``."""
    has = f"{code(permission, 20)} access to this repository"
    if custom_role is not None:
        has = (
            f"the custom role {code(custom_role, 100)} on this repository, which gives "
            f"{code(permission, 20)} access"
        )
    return (
        f"🚫 {user(login)} has {has}; "
        f"this command needs `{needed}` or higher, or a place in `trigger.users` / "
        f"`trigger.teams` of `.github/plugin-bot.yml`."
    )


def refused_not_collaborator(login: str, needed: str) -> str:
    return (
        f"🚫 {user(login)} is not a collaborator on this repository (on a public repository "
        "everyone may read it: `read` and `triage` count only when given to a collaborator); "
        f"this command needs `{needed}` or higher, or a place in `trigger.users` / "
        f"`trigger.teams` of `.github/plugin-bot.yml`."
    )


def refused_config(path: str, problems: Sequence[str]) -> str:
    head = f"⚠️ `{path}` is not valid, so nothing was started:\n"
    items = [f"- {md(p, 300)}" for p in problems]
    return _fitted(head, items, GITHUB_COMMENT_MAX, "problems")


def onboarding_waits_for_config(path: str, problems: Sequence[str]) -> str:
    """After the help text: the verification set-up needs the plugins folder from it."""
    head = (
        f"⚠️ `{path}` is not valid, so I offered no verification set-up yet (its workflow "
        "watches the plugins folder the config names). Fix it and ask `/plugin-help` again:\n"
    )
    items = [f"- {md(p, 300)}" for p in problems]
    return _fitted(head, items, GITHUB_COMMENT_MAX - 4000, "problems")


def refused_rate(scope: str, limit: int, next_slot: dt.datetime) -> str:
    when = next_slot.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    return (
        f"⏱️ Not started: at most {limit} jobs an hour per {scope}. "
        f"The next one can start at {when}."
    )


def queued(job_id: str, position: int) -> str:
    return f"⏳ Queued as job `{job_id}`, position {position}; it starts when a slot frees."


def unknown_command(typed: str, suggestion: str | None) -> str:
    hint = f" Did you mean `{suggestion}`?" if suggestion else ""
    return f"❓ {code(typed, 40)} is not a plugin-bot command.{hint} {HELP_URL_HINT} lists them."


def empty_description() -> str:
    return "❓ `/create-plugin` needs a description: `/create-plugin <what the plugin should do>`."


def reply_no_such_job(job_id: str) -> str:
    return f"❓ No job {code(job_id, 64)} on this issue. `/plugin-jobs` lists them."


def cancel_requested(job_id: str) -> str:
    return f"🛑 Cancelling job `{job_id}`."


def not_cancellable(job_id: str, state: str) -> str:
    return f"Job `{job_id}` is `{state}` and cannot be cancelled."


def not_retryable(job_id: str, state: str) -> str:
    return f"Job `{job_id}` is `{state}`; only a failed or cancelled job can be retried."


def retry_in_progress(job_id: str, running_id: str, state: str) -> str:
    """A second retry of one job while the first is queued or running: both would publish
    onto the same branch."""
    return (
        f"Job `{job_id}` is already being retried as job `{running_id}` (`{state}`); "
        "wait for it to finish, then retry again if it fails."
    )


def retried(old_id: str, new_id: str) -> str:
    return f"🔁 Retrying job `{old_id}` as job `{new_id}`."


def pull_request_step_refused(step: str, http_status: int) -> str:
    """A step after the pull request opened (labels, reviewers, the check run) GitHub
    refused: the pull request stands, the step is left out."""
    return f"{step}: GitHub refused (HTTP {http_status}); the pull request stands"


def plugin_pull_request_open(folder: str, url: str) -> str:
    return (
        f"`{folder}/` already has an open pull request from plugin-bot: {url}. "
        "Review or revise it there (`/plugin-revise …` on it), or close it first."
    )


def plugin_exists(folder: str, branch: str) -> str:
    return (
        f"`{folder}/` already exists on `{branch}`; plugin-bot never overwrites a plugin. "
        "Ask for a different name (or a spec with another `name`)."
    )


def reply_job_line(
    job_id: str, state: str, phase: str | None, name: str | None, pr: str | None
) -> str:
    parts = [f"`{job_id}`", state]
    if name:
        parts.append(f"{code(name, 80)}")
    if phase and state == "running":
        parts.append(f"phase {phase}")
    if pr:
        parts.append(pr)
    return " · ".join(parts)


def jobs_list(lines: Sequence[str]) -> str:
    if not lines:
        return "No plugin-bot jobs on this issue yet."
    items = [f"- {line}" for line in lines]
    return _fitted("Jobs on this issue:\n", items, GITHUB_COMMENT_MAX, "jobs")


def help_text(onboarding_offered: bool) -> str:
    text = (
        "**plugin-bot** turns a description into a pull request with a tested, signed "
        "ElizaOS plugin.\n\n"
        "| command | does |\n|---|---|\n"
        "| `/create-plugin <description>` | build a plugin (the description may go on over "
        "several lines and may carry a fenced JSON/YAML spec) |\n"
        "| `/plugin-status [job]` | where a job is |\n"
        "| `/plugin-cancel [job]` | stop a job |\n"
        "| `/plugin-retry [job]` | run a failed or cancelled job again |\n"
        "| `/plugin-revise <what to change>` | on the bot's pull request: change the plugin "
        "(the unresolved review comments are read too) |\n"
        "| `/plugin-jobs` | the jobs on this issue |\n"
        "| `/plugin-help` | this text |\n\n"
        "A command starts a line of its own, outside code, quotes and lists; the first counts. "
        "Create, revise, cancel and retry need write access (or a place in the repository's "
        "`.github/plugin-bot.yml`)."
    )
    if onboarding_offered:
        text += (
            "\n\nThis repository has no verification set up yet: I opened a pull request "
            "adding the keys, the verifier and a commented config."
        )
    return text


# ---------------------------------------------------------------------- tracking comment

PhaseState = Literal["waiting", "running", "done", "failed", "cancelled", "skipped"]
PHASE_MARKS: dict[PhaseState, str] = {
    "waiting": "⏳",
    "running": "🔄",
    "done": "✅",
    "failed": "❌",
    "cancelled": "🚫",
    "skipped": "➖",
}


def activity_phase_started(phase: str) -> str:
    return f"{phase} started"


def activity_phase_finished(phase: str, state: str) -> str:
    return f"{phase} {state}"


def activity_model_turn(turn: int, calls: Sequence[tuple[str, str]]) -> str:
    """``calls``: each tool the model called with its target (a path, a package) as the
    model sent it; the comment neutralises the whole line."""
    done = ", ".join(f"{name} {target}".strip() for name, target in calls) or "a reply"
    return f"model turn {turn}: {done}"


def activity_check_round(round_: int, max_rounds: int) -> str:
    return f"check round {round_} of {max_rounds}: install, build and test"


def tracking_marker(job_id: str) -> str:
    return f"{TRACKING_MARKER_PREFIX} job={job_id} -->"


@dataclass(frozen=True)
class PhaseLine:
    name: str
    state: PhaseState
    wall_s: float | None = None
    note: str = ""


@dataclass(frozen=True)
class TrackingView:
    """What the tracking comment shows; built from a job's row and events."""

    job_id: str
    requester: str
    state: str  # queued | running | succeeded | failed | cancelled
    phases: Sequence[PhaseLine]
    plugin_name: str | None = None
    round: int | None = None
    max_rounds: int | None = None
    activity: str = ""
    tests_passed: int | None = None
    tests_failed: int | None = None
    tokens: int | None = None
    cost_usd: float | None = None
    elapsed_s: float = 0.0
    attempt: int = 1
    pr_url: str | None = None
    failed_phase: str | None = None
    error: str = ""
    failure_tail: str = ""
    extra: Sequence[str] = field(default_factory=tuple)
    job_page: str | None = None  # the job page link (issue 14), when the server has a URL


def _duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes}m {secs:02d}s"


def _phase_row(line: PhaseLine) -> str:
    mark = PHASE_MARKS[line.state]
    took = f" ({_duration(line.wall_s)})" if line.wall_s is not None else ""
    note = f" — {md(line.note, 200)}" if line.note else ""
    return f"- {mark} {line.name}{took}{note}"


def _facts(view: TrackingView) -> list[str]:
    facts = []
    if view.round is not None and view.max_rounds is not None:
        facts.append(f"check round {view.round} of {view.max_rounds}")
    if view.tests_passed is not None:
        facts.append(f"tests {view.tests_passed} passed, {view.tests_failed or 0} failed")
    if view.tokens is not None:
        cost = f", ${view.cost_usd:.4f}" if view.cost_usd is not None else ""
        facts.append(f"{view.tokens} tokens{cost}")
    facts.append(f"elapsed {_duration(view.elapsed_s)}")
    if view.attempt > 1:
        facts.append(f"attempt {view.attempt}")
    return facts


def _ending(view: TrackingView) -> str:
    if view.state == "succeeded" and view.pr_url:
        return f"**Done:** the pull request is {view.pr_url}"
    if view.state == "cancelled":
        return "**Cancelled.** `/plugin-retry " + view.job_id + "` starts it again."
    if view.state == "failed":
        where = f" in `{view.failed_phase}`" if view.failed_phase else ""
        text = f"**Failed{where}:** {md(view.error, 500)}"
        if view.failure_tail:
            text += "\n\n<details><summary>last lines</summary>\n\n"
            text += code_block(view.failure_tail) + "\n\n</details>"
        return text + f"\n\nWhat next: fix the description or `/plugin-retry {view.job_id}`."
    return f"To stop it: `/plugin-cancel {view.job_id}`"


def tracking_comment(view: TrackingView) -> str:
    name = f"{code(view.plugin_name, 214)}" if view.plugin_name else "a plugin"
    lines = [
        tracking_marker(view.job_id),
        f"### plugin-bot: {name}",
        f"Job `{view.job_id}` for {user(view.requester)} · **{view.state}**",
        "",
        *(_phase_row(p) for p in view.phases),
        "",
        " · ".join(_facts(view)),
    ]
    if view.activity and view.state in {"queued", "running"}:
        lines.append(f"Latest: {md(view.activity, 300)}")
    lines.extend(view.extra)
    if view.job_page:
        lines.append(f"[Job page: phases, log, usage]({view.job_page})")
    lines += ["", _ending(view)]
    return "\n".join(lines)


# ---------------------------------------------------------------------- pull request


@dataclass(frozen=True)
class Component:
    kind: str
    name: str
    description: str


@dataclass(frozen=True)
class TestRow:
    __test__ = False  # not a pytest class
    file: str
    name: str
    state: str


@dataclass(frozen=True)
class PullRequestView:
    job_id: str
    plugin_name: str
    plugin_path: str
    description: str
    requester: str
    issue_number: int
    components: Sequence[Component]
    tests: Sequence[TestRow]
    tests_passed: int
    tests_failed: int
    manifest_sha256: str | None
    keyid: str | None
    tokens: int | None
    cost_usd: float | None
    model: str | None
    close_issue: bool
    revision: RevisionView | None = None


@dataclass(frozen=True)
class RevisionView:
    request: str
    requester: str
    previous_manifest_sha256: str | None


# A trailer naming the job in the bot's commit messages: for people reading the log only;
# where the bot's own work begins is read from its signed manifest, never from a message.
BOT_COMMIT_TRAILER = "Plugin-Bot-Job: "


def commit_message(name: str, job_id: str, requester: str) -> str:
    return (
        f"Add plugin {name}\n\nBuilt by plugin-bot job {job_id} for {requester}.\n\n"
        f"{BOT_COMMIT_TRAILER}{job_id}"
    )


def revision_commit_message(name: str, job_id: str, requester: str, request: str) -> str:
    first = plain((request.splitlines()[0] if request else "")[:60])
    return (
        f"Revise plugin {name}: {first}\n\nRevised by plugin-bot job {job_id} for "
        f"{requester}.\n\n{BOT_COMMIT_TRAILER}{job_id}"
    )


# ---------------------------------------------------------------------- revisions

REVISE_PREFIX = "/plugin-revise "


def revise_review_comments_request() -> str:
    """The request of a review made of line comments only (its summary left empty)."""
    return "Address the unresolved review comments."


def revise_tree_truncated(commit: str) -> str:
    return (
        f"GitHub listed the files of commit `{commit[:12]}` only in part (the repository is "
        "past its tree listing limit), so changes outside the plugin cannot be ruled out; "
        "plugin-bot does not build on it. Edit the plugin yourself on this branch."
    )


def revision_description(request: str) -> str:
    """A revision job's stored description: the command as typed (the job's kind)."""
    return REVISE_PREFIX + request


def revision_request(description: str) -> str | None:
    """The request of a revision job's description; None for any other job."""
    if not description.startswith(REVISE_PREFIX):
        return None
    return description.removeprefix(REVISE_PREFIX)


def revise_needs_model() -> str:
    return (
        "Revisions need a model, and this bot has none configured (`ANTHROPIC_API_KEY`). "
        "Edit the plugin yourself, or ask the bot's operator to configure one."
    )


def revise_not_a_pull_request() -> str:
    return "`/plugin-revise` works on a plugin-bot pull request; this is an issue."


def revise_not_ours(branch: str) -> str:
    return (
        f"This pull request's branch {code(branch, 120)} is not one of plugin-bot's "
        "(`plugin-bot/…` in this repository): there is no plugin of mine to revise."
    )


def revise_not_open(state: str) -> str:
    return f"This pull request is {code(state, 20)}: only an open pull request is revised."


def revise_empty() -> str:
    return "`/plugin-revise` needs a description of what to change, e.g. `/plugin-revise use °F`."


# A revision's refusals found while it runs are phase errors: plain text (the tracking
# comment and the check run neutralise them as Markdown where they show them).


def revise_foreign_change(commit: str, paths: Sequence[str], folder: str) -> str:
    shown = ", ".join(plain(p[:120]) for p in paths[:5])
    more = f" and {len(paths) - 5} more" if len(paths) > 5 else ""
    return (
        f"Refused: commit {plain(commit[:12])} on this branch changes files outside "
        f"{folder}/ ({shown}{more}). I build on others' commits only when they touch "
        "nothing but the plugin's files; move those changes to another branch, then ask again."
    )


def revise_untrusted(why: str) -> str:
    return (
        "Refused: I cannot tell where my own work on this branch begins: its manifest is not "
        f"one I signed for this pull request ({plain(why[:200])}). Ask for a new plugin instead."
    )


def revise_merge_commit(commit: str) -> str:
    return (
        f"Refused: commit {plain(commit[:12])} on this branch is a merge; I add one commit "
        "on a linear branch only. Rebase or revert the merge, then ask again."
    )


def revise_too_far(limit: int) -> str:
    return (
        f"Refused: none of the last {limit} commits on this branch is mine, so I cannot tell "
        "what I built from what others changed."
    )


def revise_no_plugin(folder: str) -> str:
    return f"Refused: the branch has no signed plugin manifest under {folder}/ to revise."


def revise_too_big(files: int, size: int) -> str:
    return (
        f"Refused: the plugin on the branch is too large to revise ({files} files, {size} bytes)."
    )


def revise_threads_unreadable(why: str) -> str:
    return (
        "I could not read this pull request's review threads from GitHub "
        f"({plain(why[:300])}), so I cannot tell which review comments are still open. "
        "Nothing was changed; ask again with /plugin-revise once GitHub answers."
    )


def revise_too_many_review_comments(limit: int, path: str | None) -> str:
    where = f"the thread on {plain(path[:200])} has" if path else "this pull request has"
    return (
        f"Refused: {where} more than {limit} review "
        f"{'comments' if path else 'threads'}, more than I read for one revision; every open "
        "one would have to reach the model. Resolve the settled ones, then ask again."
    )


def branch_moved(branch: str, again: str) -> str:
    """``again``: the command that builds on the new head (/plugin-revise, /plugin-retry)."""
    return (
        f"Someone pushed to {plain(branch[:120])} while I worked; I never force-push. "
        f"Ask again with {again} to build on the new head."
    )


# ---------------------------------------------------------------------- check runs

CHECK_NAME = "plugin tests"


def check_title(passed: int, failed: int, reason: str | None) -> str:
    title = f"{CHECK_NAME} — {passed} passed, {failed} failed"
    if reason is not None:
        title += " — " + plain(reason[:120])
    return title[:255]


def check_summary(rows: Sequence[tuple[str, str, str]], reason: str | None) -> str:
    """The check run's summary: the reason it failed, and the tests' table, cut to fit
    GitHub's cap (the title carries the counts)."""
    head = f"**Failed:** {md(reason, 1000)}\n\n" if reason is not None else ""
    if not rows:
        return head + "No test results."
    budget = GITHUB_CHECK_SUMMARY_MAX - len(head)
    return head + _tests_table([TestRow(f, n, s) for f, n, s in rows], budget)


def check_failed_test_title(name: str) -> str:
    return "failing test: " + plain(name[:200])


def pull_request_title(name: str) -> str:
    return f"Add plugin {name}"


def _components_table(components: Sequence[Component], budget: int = GITHUB_PR_BODY_MAX) -> str:
    rows = [
        f"| {md(c.kind, 40)} | {cell_code(c.name, 64)} | {md(c.description, 200)} |"
        for c in components
    ]
    return _fitted("| kind | name | what it does |\n|---|---|---|", rows, budget, "components")


def _tests_table(tests: Sequence[TestRow], budget: int = GITHUB_PR_BODY_MAX) -> str:
    marks = {"passed": "✅", "failed": "❌", "skipped": "➖", "todo": "📝"}
    rows = [
        f"| {marks.get(t.state) or md(t.state, 20)} | {cell_code(t.file, 120)} "
        f"| {md(t.name, 200)} |"
        for t in tests
    ]
    return _fitted("| | file | test |\n|---|---|---|", rows, budget, "tests")


def verified_lines(view: PullRequestView) -> str:
    """Two lines: what was verified, and how to repeat it locally."""
    return (
        f"**Verified:** {view.tests_passed} passed, {view.tests_failed} failed in the sandbox; "
        f"manifest sha256 `{view.manifest_sha256}` signed by `{view.keyid}` over every file.\n"
        f"**Repeat it:** `plugin-bot verify {view.plugin_path}` (or the standalone verifier "
        "below), and the `verify-plugin` workflow reruns the tests."
    )


def _revision_section(revision: RevisionView | None) -> list[str]:
    if revision is None:
        return []
    previous = revision.previous_manifest_sha256
    return [
        "### Latest revision",
        "",
        f"Asked by {user(revision.requester)}:",
        "",
        quote(revision.request),
        "",
        f"Previous manifest sha256 `{previous or 'none'}` (recorded in the new manifest).",
        "",
    ]


def _verification(view: PullRequestView) -> str:
    if view.manifest_sha256 is None:
        return "**Not signed:** the bot has no signing key configured."
    return (
        verified_lines(view)
        + "\n\n"
        + (
            f"Manifest `{view.plugin_path}/plugin-manifest.dsse.json`, sha256 "
            f"`{view.manifest_sha256}`, signed by key `{view.keyid}`.\n\n"
            "Verify it locally:\n\n"
            "```sh\n"
            f"python .github/plugin-bot/verify_manifest.py verify {view.plugin_path} "
            "--keys .github/plugin-bot/keys.json\n"
            "```\n\n"
            "The `verify-plugin` workflow does the same on this pull request."
        )
    )


def pull_request_body(view: PullRequestView) -> str:
    """The pull request's body, its tables cut to fit GitHub's cap (the rest is bounded:
    the quoted texts are cut, the headings carry the counts)."""
    room = GITHUB_PR_BODY_MAX - len(_pull_request_body(view, "", ""))
    components = _components_table(view.components, room // 3)
    tests = _tests_table(view.tests, room - len(components))
    return _pull_request_body(view, components, tests)


def _pull_request_body(view: PullRequestView, components: str, tests: str) -> str:
    usage = []
    if view.model:
        usage.append(f"model {code(view.model, 80)}")
    if view.tokens is not None:
        usage.append(f"{view.tokens} tokens")
    if view.cost_usd is not None:
        usage.append(f"${view.cost_usd:.4f}")
    parts = [
        f"Plugin {code(view.plugin_name, 214)} in `{view.plugin_path}/`, built by plugin-bot "
        f"job `{view.job_id}` for {user(view.requester)} (#{view.issue_number}).",
        "",
        "**Asked for:**",
        "",
        quote(view.description),
        "",
        *_revision_section(view.revision),
        "### Components",
        "",
        components,
        "",
        f"### Tests: {view.tests_passed} passed, {view.tests_failed} failed",
        "",
        tests,
        "",
        "### Verification",
        "",
        _verification(view),
        "",
        "### Usage",
        "",
        ", ".join(usage) if usage else "no model was used (the template's code).",
        "",
        f"Try it: `cd {view.plugin_path} && npm ci && npm run build && npm test`",
    ]
    if view.close_issue:
        parts += ["", f"Closes #{view.issue_number}"]
    return "\n".join(parts)


# ---------------------------------------------------------------------- onboarding

ONBOARDING_TITLE = "Set up plugin-bot verification"


def onboarding_body(workflow_yaml: str, folder: str, *, adds_config: bool = True) -> str:
    """``folder``: the plugins folder the workflow watches (the repository config's)."""
    config = (
        "- `.github/plugin-bot.yml`: the repository's settings for the bot, every option "
        "commented\n\n"
        if adds_config
        else "\n"
    )
    return (
        "This pull request adds what verifying plugin-bot's pull requests needs:\n\n"
        "- `.github/plugin-bot/keys.json`: the public key(s) plugin-bot signs with\n"
        "- `.github/plugin-bot/verify_manifest.py`: the standalone verifier (Python and "
        "`cryptography` only)\n"
        f"{config}"
        "**One more step for you:** the app asks for no `workflows` permission, so it "
        "cannot add the workflow that runs the verifier. Add it as "
        "`.github/workflows/verify-plugin.yml`; it checks the plugins in "
        f"{code(folder + '/', 210)}:\n\n"
        "<details><summary>verify-plugin.yml</summary>\n\n"
        f"```yaml\n{workflow_yaml.rstrip()}\n```\n\n</details>\n\n"
        "Then protect `.github/` with CODEOWNERS review, so a change to the keys, the "
        "verifier or the workflow is always reviewed by a person."
    )


# ---------------------------------------------------------------------- serve


def serve_refused_no_secret() -> str:
    return "plugin-bot serve needs GITHUB_WEBHOOK_SECRET (one or more, comma-separated)"


def serve_refused_no_sandbox() -> str:
    return "plugin-bot serve refuses SANDBOX=none: untrusted code must run in the sandbox"


def serve_refused_no_app() -> str:
    return (
        "plugin-bot serve needs GITHUB_APP_ID and GITHUB_APP_PRIVATE_KEY "
        "(or GITHUB_APP_PRIVATE_KEY_PATH)"
    )


# ---------------------------------------------------------------------- job page (/jobs/<id>)

_PAGE_STYLE = (
    "body{font:15px/1.45 system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem}"
    "table{border-collapse:collapse}td,th{padding:.2rem .6rem;border-bottom:1px solid #ddd;"
    "text-align:left;vertical-align:top}pre{white-space:pre-wrap;margin:0}"
    ".passed{color:#1a7f37}.failed{color:#cf222e}.running{color:#9a6700}"
)


def _html(text: object) -> str:
    import html

    return html.escape(plain(str(text)), quote=True)


def _page(title: str, body: list[str]) -> str:
    return "\n".join(
        [
            "<!doctype html>",
            '<html lang="en"><head><meta charset="utf-8">',
            f"<title>{_html(title)}</title><style>{_PAGE_STYLE}</style></head><body>",
            *body,
            "</body></html>",
        ]
    )


def job_page_refused(why: str) -> str:
    return _page("plugin-bot job", ["<h1>plugin-bot job</h1>", f'<p id="refused">{_html(why)}</p>'])


def _job_links(job: Job, web_url: str) -> list[str]:
    links: list[str] = []
    if job.pr_url:
        links.append(f'<a id="pr" href="{_html(job.pr_url)}">pull request</a>')
    if job.repository and job.issue and job.tracking_comment_id:
        comment = (
            f"{web_url}/{job.repository}/issues/{job.issue}#issuecomment-{job.tracking_comment_id}"
        )
        links.append(f'<a id="comment" href="{_html(comment)}">tracking comment</a>')
    return links


def _timeline(job: Job) -> list[str]:
    rows = [
        "<h2>Phases</h2>",
        '<table id="phases"><tr><th>phase</th><th>state</th><th>wall time</th><th>note</th></tr>',
    ]
    for name, entry in job.progress.items():
        entry = entry if isinstance(entry, dict) else {}
        state = str(entry.get("state", ""))
        wall = entry.get("wall_s")
        wall_text = f"{wall:.1f} s" if isinstance(wall, int | float) else "–"
        rows.append(
            f'<tr><td>{_html(name)}</td><td class="{_html(state)}">{_html(state)}</td>'
            f"<td>{wall_text}</td><td>{_html(entry.get('note', ''))}</td></tr>"
        )
    rows.append("</table>")
    return rows


def _usage(job: Job) -> list[str]:
    usage = job.usage or {}
    cells = "".join(
        f"<tr><td>{_html(k.replace('_', ' '))}</td><td>{int(v):,}</td></tr>"
        for k, v in usage.items()
        if isinstance(v, int)
    )
    return [
        "<h2>Usage</h2>",
        f'<table id="usage">{cells}<tr><td>cost</td><td>${job.cost_usd:.4f}</td></tr></table>',
    ]


def _log(
    events: Sequence[JobEvent],
    scrub: Callable[[str], str],
    page: int,
    pages: int,
    token: str | None,
) -> list[str]:
    rows = ["<h2>Log</h2>", '<table id="log">']
    for e in events:
        rows.append(
            f"<tr><td>{_html(e.at.strftime('%H:%M:%S'))}</td><td>{_html(e.phase or '')}</td>"
            f"<td>{_html(e.kind)}</td><td><pre>{_html(scrub(e.message))}</pre></td></tr>"
        )
    rows.append("</table>")
    suffix = f"&token={token}" if token else ""
    nav = [f'<span id="pages">page {page} of {pages}</span>']
    if page > 1:
        nav.insert(0, f'<a id="newer" href="?page={page - 1}{suffix}">previous</a>')
    if page < pages:
        nav.append(f'<a id="older" href="?page={page + 1}{suffix}">next</a>')
    return [*rows, f"<p>{' · '.join(nav)}</p>"]


def job_page(
    job: Job,
    events: Sequence[JobEvent],
    *,
    page: int,
    pages: int,
    token: str | None,
    web_url: str,
    scrub: Callable[[str], str],
) -> str:
    """The job page: what was asked, the links, the phase timeline, usage and the log."""
    title = f"plugin-bot job {job.short_id}"
    facts = [
        f'<p id="state">{_html(job.state)}'
        + (f" · {_html(job.repository)}" if job.repository else "")
        + (f" · requested by {_html(job.requester)}" if job.requester else "")
        + "</p>",
        f'<p id="description">{_html(scrub(job.description))}</p>',
    ]
    if job.error:
        facts.append(f'<p id="error" class="failed">{_html(scrub(job.error))}</p>')
    links = _job_links(job, web_url)
    body = [
        f"<h1>{_html(title)}</h1>",
        *facts,
        f"<p>{' · '.join(links)}</p>" if links else "",
        *_timeline(job),
        *_usage(job),
        *_log(events, scrub, page, pages, token),
    ]
    return _page(title, body)


# ---------------------------------------------------------------------- redelivery


def redelivery_summary(report: Any, since: str) -> str:
    """``plugin-bot redeliver``'s last line: what was seen, asked for, and what failed."""
    line = (
        f"{report.seen} delivery attempts in the last {since}; "
        f"{len(report.failed_guids)} deliveries never succeeded; "
        f"asked GitHub to redeliver {len(report.requested)}"
    )
    if report.errors:
        line += f"; {len(report.errors)} requests failed: " + ", ".join(report.errors)
    return line

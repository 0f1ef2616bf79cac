"""Process settings, read from the environment in this module only.

Every limit and default the bot uses lives here, so there is one place to look.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Annotated, Literal, NamedTuple

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    StringConstraints,
    ValidationInfo,
    field_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parent.parent
# Workspaces and caches when the bot is root and BOT_DATA_DIR is not reachable by the
# sandbox uid (a clone in /root, mode 0700): a bot-owned folder the bot creates 0711.
FALLBACK_RUNTIME_DIR = Path("/var/lib/plugin-bot")

# Packages a spec may ask for, with the version range written into package.json.
# Anything else is refused by spec validation.
DEFAULT_ALLOWED_DEPENDENCIES: dict[str, str] = {
    "zod": "^4.3.5",
    "date-fns": "^4.1.0",
    "uuid": "^13.0.0",
    "lru-cache": "^11.2.0",
}


# Webhook deliveries stored per transaction at most (group commit; bot/jobs/group_commit.py).
DEFAULT_WEBHOOK_COMMIT_BATCH = 256

# The model used when ANTHROPIC_MODEL is not set: the newest Sonnet in the SDK's model list
# (anthropic.types.Model), the balance of speed, price and coding strength an agent loop wants.
DEFAULT_ANTHROPIC_MODEL = "claude-sonnet-5-5"
DEFAULT_ANTHROPIC_BASE_URL = "https://api.anthropic.com"


class ModelPrice(NamedTuple):
    """USD per million tokens. ``cache_write`` is the 5-minute cache-write rate."""

    input: float
    output: float
    cache_write: float
    cache_read: float


# Anthropic's published list prices (platform.claude.com/docs/en/about-claude/pricing),
# checked 2026-11. Haiku 5.5: the band for prompts up to 100k tokens.
MODEL_PRICES: dict[str, ModelPrice] = {
    "claude-fable-5-1": ModelPrice(10.0, 50.0, 12.5, 0.25),
    "claude-mythos-5-1": ModelPrice(10.0, 50.0, 12.5, 0.25),
    "claude-fable-5": ModelPrice(10.0, 50.0, 12.5, 1.0),
    "claude-mythos-5": ModelPrice(10.0, 50.0, 12.5, 1.0),
    "claude-opus-5-5": ModelPrice(4.0, 20.0, 5.0, 0.2),
    "claude-opus-5": ModelPrice(5.0, 25.0, 6.25, 0.5),
    "claude-opus-4-8": ModelPrice(5.0, 25.0, 6.25, 0.5),
    "claude-opus-4-7": ModelPrice(5.0, 25.0, 6.25, 0.5),
    "claude-opus-4-6": ModelPrice(5.0, 25.0, 6.25, 0.5),
    "claude-opus-4-5": ModelPrice(5.0, 25.0, 6.25, 0.5),
    "claude-sonnet-5-5": ModelPrice(2.0, 10.0, 2.5, 0.1),
    "claude-sonnet-5": ModelPrice(2.0, 10.0, 2.5, 0.2),
    "claude-sonnet-4-6": ModelPrice(3.0, 15.0, 3.75, 0.3),
    "claude-sonnet-4-5": ModelPrice(3.0, 15.0, 3.75, 0.3),
    "claude-haiku-5-5": ModelPrice(0.1, 0.5, 0.125, 0.01),
    "claude-haiku-4-5": ModelPrice(1.0, 5.0, 1.25, 0.1),
}
# A model missing from the table (a new id, a proxy's alias) is charged at the dearest
# row: the budget then errs on the side of stopping early, never of overspending.
FALLBACK_MODEL_PRICE = max(MODEL_PRICES.values(), key=lambda p: (p.output, p.input))

# Models that answer tool_choice {"type": "tool"} or {"type": "any"} with a 400
# ("not supported for this model"): they get tool_choice auto with a strict tool.
# Matched as a prefix, so dated ids (claude-opus-5-5-2026...) are covered too.
MODELS_WITHOUT_FORCED_TOOL_CHOICE: tuple[str, ...] = (
    "claude-sonnet-5-5",
    "claude-opus-5-5",
    "claude-fable-5-1",
    "claude-fable-5-2",
    "claude-mythos-5-1",
    "claude-mythos-5-2",
)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=None, extra="ignore", populate_by_name=True)

    # GitHub App
    github_app_id: str | None = None
    github_app_private_key: SecretStr | None = None
    github_app_private_key_path: Path | None = None
    github_webhook_secret: SecretStr | None = None
    github_api_url: str = "https://api.github.com"
    # The app's slug ("plugin-bot" for plugin-bot[bot]): its own comments never trigger it.
    github_app_slug: str | None = None
    # GitHub's own cap on a delivery's payload; a larger body is refused unread (413).
    webhook_max_bytes: int = Field(default=25 * 1024 * 1024, gt=0)
    # Deliveries arriving together are stored in one transaction (group commit), at most
    # this many per transaction; each is answered once its transaction has committed.
    webhook_commit_batch: int = Field(default=DEFAULT_WEBHOOK_COMMIT_BATCH, ge=1, le=1000)
    # Requests that create content (comments, pull requests, refs) per installation are
    # spaced this far apart, as GitHub asks of integrations.
    github_write_spacing_s: float = Field(default=1.0, ge=0)
    # Our retry policy (githubkit's default would re-send a POST after a 5xx).
    github_max_retries: int = Field(default=3, ge=0, le=10)
    # A rate limit asking for a longer wait than this fails the call instead of sleeping.
    github_retry_max_wait_s: float = Field(default=120.0, ge=0)
    github_timeout_s: float = Field(default=30.0, gt=0)
    # At most this often a job's tracking comment is edited (the last state always lands).
    tracking_edit_interval_s: float = Field(default=1.0, ge=0)
    # Packages a repository may add to the allow-list through its config (name -> range).
    optional_dependencies: dict[str, str] = Field(default_factory=dict)

    # Model
    anthropic_api_key: SecretStr | None = None
    anthropic_model: str | None = None
    anthropic_base_url: str | None = None
    # Per request: connecting, and everything else (read, write, pool). A non-streaming
    # call with a large max_tokens can take minutes, so the read timeout is generous.
    anthropic_connect_timeout_s: float = Field(default=10.0, gt=0)
    anthropic_timeout_s: float = Field(default=300.0, gt=0)
    # Our own retry loop (the SDK's is off): on 429, 529, 5xx and connection errors.
    anthropic_max_retries: int = Field(default=2, ge=0, le=10)
    anthropic_retry_base_s: float = Field(default=1.0, ge=0)
    anthropic_retry_cap_s: float = Field(default=60.0, ge=0)
    anthropic_max_tokens: int = Field(default=8192, ge=1)
    # Per job: the model stops the job when either is reached.
    # Check/fix rounds (run_checks calls) the model gets in the generate phase.
    generate_max_rounds: int = Field(default=5, ge=1, le=50)
    job_budget_tokens: int = Field(default=2_000_000, gt=0)
    job_budget_usd: float = Field(default=5.0, gt=0)
    model_prices: dict[str, ModelPrice] = Field(default_factory=lambda: dict(MODEL_PRICES))

    # Storage and keys
    bot_data_dir: Path = Path("data")
    # Where workspaces (work/) and caches (cache/) live: the sandbox must reach them.
    # Default: BOT_DATA_DIR, unless the bot runs as root with bubblewrap and a folder
    # above BOT_DATA_DIR is not searchable by SANDBOX_UID; then FALLBACK_RUNTIME_DIR.
    bot_runtime_dir: Path | None = None
    # The dependency caches alone (default: <runtime dir>/cache), e.g. kept across test runs.
    bot_cache_dir: Path | None = None
    database_url: str | None = None
    signing_key_path: Path | None = None
    signing_key_passphrase: SecretStr | None = None

    @field_validator(
        "bot_data_dir",
        "bot_runtime_dir",
        "bot_cache_dir",
        "signing_key_path",
        "github_app_private_key_path",
        "template_dir",
    )
    @classmethod
    def _from_the_start_directory(cls, value: Path | None) -> Path | None:
        # A relative folder means relative to where the bot was started. Made absolute
        # once, here: the sandbox runs with another working directory, and bwrap's
        # --bind of a relative path would look for it there.
        return None if value is None else value.absolute()

    # Jobs (bot/jobs): the store, the queue, workers, limits and retention.
    # SQLite waits this long for another writer before giving up (all processes share it).
    database_busy_timeout_ms: int = Field(default=10_000, ge=0)
    # full: every SQLite commit is fsynced (a 202 survives a power cut); normal: written to
    # the WAL file only (it survives the bot being killed, not the machine losing power).
    sqlite_synchronous: Literal["full", "normal"] = "full"
    # embedded: job rows in the database are the queue (SQLite or PostgreSQL, workers poll);
    # procrastinate: PostgreSQL only, procrastinate carries jobs to workers on any machine.
    # auto: procrastinate on PostgreSQL, embedded on SQLite.
    queue_backend: Literal["auto", "embedded", "procrastinate"] = "auto"
    worker_concurrency: int = Field(default=2, ge=1, le=64)
    # A running job's lease is renewed every heartbeat; a lease not renewed for job_lease_s
    # means its worker died, and the job is retried (once) or failed.
    job_lease_s: float = Field(default=30.0, gt=0)
    job_heartbeat_s: float = Field(default=5.0, gt=0)
    job_max_attempts: int = Field(default=2, ge=1, le=10)
    # How often a worker looks for cancel requests of its running jobs (a cancel must land
    # within 2 s), for expired leases, and (embedded queue, when idle) for new jobs.
    cancel_poll_s: float = Field(default=0.5, gt=0)
    recovery_poll_s: float = Field(default=5.0, gt=0)
    queue_poll_s: float = Field(default=0.5, gt=0)
    # Limits, evaluated in the database so they hold across processes and machines. Jobs
    # created in a sliding hour (refused beyond it), and jobs running at once (queued beyond
    # it), per installation, per repository and per requester.
    limit_jobs_per_hour_installation: int = Field(default=10, ge=1)
    limit_jobs_per_hour_repository: int = Field(default=10, ge=1)
    limit_jobs_per_hour_requester: int = Field(default=10, ge=1)
    limit_running_installation: int = Field(default=10, ge=1)
    limit_running_repository: int = Field(default=10, ge=1)
    limit_running_requester: int = Field(default=10, ge=1)
    # Retention: workspaces of jobs finished this long ago are deleted (rows kept); rows
    # (and their events) are deleted after the longer period. The sweep runs this often.
    retention_workspace_days: float = Field(default=7.0, gt=0)
    retention_rows_days: float = Field(default=90.0, gt=0)
    retention_sweep_s: float = Field(default=3600.0, gt=0)

    # Running untrusted code
    sandbox: Literal["bwrap", "none"] = "bwrap"
    command_timeout_s: float = Field(default=300.0, gt=0)
    job_timeout_s: float = Field(default=1800.0, gt=0)
    # The generate loop's repeated check rounds from one long-lived checker process per
    # job (the pack's warm_checker), in the same sandbox; the final build and test are
    # always cold. How long it may take to start and answer its first round, and how many
    # times it may fail in a job before every round of that job runs cold.
    warm_checks: bool = True
    warm_start_timeout_s: float = Field(default=120.0, gt=0)
    warm_max_failures: int = Field(default=2, ge=1)
    output_limit_bytes: int = Field(default=1_000_000, ge=4096)
    kill_grace_s: float = Field(default=1.0, ge=0)
    # Per command, applied inside the sandbox with prlimit (RLIMIT_*): CPU seconds,
    # data segment (Node/V8 reserves far more address space than it uses, so not RLIMIT_AS),
    # largest file written, open files, processes and threads of the run, and the size of
    # its tmpfs /tmp (HOME and TMPDIR). Checked against npm ci, tsc, tsup and vitest.
    sandbox_cpu_s: int = Field(default=600, gt=0)
    sandbox_memory_bytes: int = Field(default=4 * 1024**3, ge=64 * 1024**2)
    sandbox_file_size_bytes: int = Field(default=256 * 1024**2, ge=1024**2)
    sandbox_open_files: int = Field(default=4096, ge=64)
    sandbox_processes: int = Field(default=512, ge=16)
    sandbox_tmpfs_bytes: int = Field(default=512 * 1024**2, ge=1024**2)
    # Host uid bubblewrap runs as when the bot runs as root (see bot/sandbox.py).
    sandbox_uid: int = Field(default=60901, gt=0)
    # Hardening (issue 9). A per-run memory and pids cgroup (bot/cgroups.py): "auto" uses
    # one where the host allows it (cgroup v2 delegated, or v1 as root), "required" refuses
    # to start without, "off" never makes one. Its memory cap is SANDBOX_MEMORY_BYTES for
    # the whole run (every process, tmpfs and shared memory together), its task cap
    # SANDBOX_PROCESSES. SANDBOX_CGROUP_PARENT: a delegated cgroup v2 directory to use.
    sandbox_cgroups: Literal["auto", "required", "off"] = "auto"
    sandbox_cgroup_parent: Path | None = None
    # The sandbox's /dev is read-only; /dev/shm is its own tmpfs of this size.
    sandbox_shm_bytes: int = Field(default=64 * 1024**2, ge=1024**2)
    # Per job: what its workspace may hold (bytes of distinct files, and names), measured
    # every WORKSPACE_POLL_S while a command runs and once after it; a run past either cap
    # is stopped and the phase fails saying which cap it hit. A template plugin's
    # node_modules holds about 250 MiB in 9 000 names.
    workspace_max_bytes: int = Field(default=1024**3, ge=1024**2)
    workspace_max_files: int = Field(default=100_000, ge=100)
    workspace_poll_s: float = Field(default=1.0, gt=0)

    # Template pack and dependencies. npm is given this registry and no other; every
    # lockfile entry must resolve to it (bot/deps.py).
    npm_registry: str = Field(default="https://registry.npmjs.org/", pattern=r"^https://\S+/$")
    # The CA bundle npm trusts for it (the bot's npmrc replaces the host's, which may set one).
    npm_cafile: Path | None = Path("/etc/ssl/certs/ca-certificates.crt")
    template_dir: Path = REPO_ROOT / "templates" / "elizaos-plugin"
    allowed_dependencies: dict[str, str] = Field(
        default_factory=lambda: dict(DEFAULT_ALLOWED_DEPENDENCIES)
    )

    # Operations (issue 14): logs, the job page, redelivery.
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    # Where this server is reached from a browser: the tracking comment links the job page.
    public_url: str | None = None
    # HMAC key of the signed links to job pages of private repositories.
    job_page_secret: SecretStr | None = None
    # A signed job page link stays valid this long.
    job_page_token_ttl_s: float = Field(default=7 * 24 * 3600.0, gt=0)
    # Log lines (job events) per page of the job page.
    job_page_events_per_page: int = Field(default=50, ge=1, le=1000)
    # The periodic redelivery task of `serve` looks this far back, this often (0: off).
    redeliver_window_s: float = Field(default=24 * 3600.0, gt=0)
    redeliver_every_s: float = Field(default=0.0, ge=0)
    # How long the job page trusts a repository's visibility as GitHub answered it.
    job_page_visibility_cache_s: float = Field(default=300.0, ge=0)

    @property
    def webhook_secrets(self) -> list[str]:
        """Every accepted secret: a comma-separated list, so a secret can be rotated."""
        if self.github_webhook_secret is None:
            return []
        raw = self.github_webhook_secret.get_secret_value()
        return [part.strip() for part in raw.split(",") if part.strip()]

    def app_private_key(self) -> str | None:
        if self.github_app_private_key is not None:
            return self.github_app_private_key.get_secret_value()
        if self.github_app_private_key_path is not None:
            return self.github_app_private_key_path.read_text()
        return None

    @property
    def effective_anthropic_model(self) -> str:
        return self.anthropic_model or DEFAULT_ANTHROPIC_MODEL

    def price_of(self, model: str) -> ModelPrice:
        """The price row for ``model``: exact id, else the longest id it starts with."""
        if model in self.model_prices:
            return self.model_prices[model]
        for known in sorted(self.model_prices, key=len, reverse=True):
            if model.startswith(known + "-"):
                return self.model_prices[known]
        return FALLBACK_MODEL_PRICE

    @property
    def runtime_dir(self) -> Path:
        """Where workspaces and caches go (see ``bot_runtime_dir``)."""
        if self.bot_runtime_dir is not None:
            return self.bot_runtime_dir
        if (
            self.sandbox == "bwrap"
            and os.geteuid() == 0
            and not searchable_by(self.bot_data_dir, self.sandbox_uid)
        ):
            return FALLBACK_RUNTIME_DIR
        return self.bot_data_dir

    @property
    def cache_dir(self) -> Path:
        return self.bot_cache_dir or self.runtime_dir / "cache"

    @property
    def work_dir(self) -> Path:
        return self.runtime_dir / "work"

    @property
    def results_dir(self) -> Path:
        """Where a job submitted without GitHub publishes: ``results/<job id>/<name>/``."""
        return self.bot_data_dir / "results"

    @property
    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.bot_data_dir / 'plugin-bot.db').resolve()}"


def searchable_by(path: Path, uid: int) -> bool:
    """Whether ``uid`` (not root, in no group of ours) can pass through every existing
    folder of ``path``; folders still to be made are made 0755 by the bot."""
    for folder in (path.absolute(), *path.absolute().parents):
        try:
            st = folder.stat()
        except FileNotFoundError:
            continue
        if st.st_uid != uid and not st.st_mode & 0o001:
            return False
    return True


def load_settings() -> Settings:
    return Settings()


# ------------------------------------------------------------------ reviewing pull requests
# (issue 13: revisions and check runs)

# GitHub's own cap on annotations in one check-run request; and how many the bot sends.
CHECK_ANNOTATIONS_PER_REQUEST = 50
CHECK_MAX_ANNOTATIONS = 500
# How far back a revision looks for the bot's own last commit among someone else's.
REVISE_MAX_FOREIGN_COMMITS = 20
# A plugin on the branch larger than this is not revised (files, bytes).
REVISE_MAX_FILES = 400
REVISE_MAX_BYTES = 20 * 1024 * 1024
# Review comments a revision hands to the model: only those by authors with at least this
# permission on the repository (anyone may comment on a public repository's diff).
REVIEW_NOTE_PERMISSION = "write"
# The branch prefix of the bot's pull requests.
BOT_BRANCH_PREFIX = "plugin-bot/"
# Review threads read for a revision (GraphQL): page sizes (GitHub allows 1..100), and how
# many a revision reads before it refuses (every unresolved one reaches the model, or none).
REVIEW_THREADS_PAGE_SIZE = 50
REVIEW_COMMENTS_PAGE_SIZE = 50
REVIEW_MAX_THREADS = 500
REVIEW_MAX_COMMENTS_PER_THREAD = 200

# ------------------------------------------------------------------ GitHub's size caps
# Characters GitHub takes in an issue or PR comment, a PR body, and a check run's summary;
# past them it answers 422 (after the branch or the pull request may already exist).
GITHUB_COMMENT_MAX = 65536
GITHUB_PR_BODY_MAX = 65536
GITHUB_CHECK_SUMMARY_MAX = 65535

# ------------------------------------------------------------------ repository config

REPO_CONFIG_PATH = ".github/plugin-bot.yml"
Permission = Literal["read", "triage", "write", "maintain", "admin"]
# The collaborator permission API's role names, lowest first.
PERMISSION_ORDER: tuple[Permission, ...] = ("read", "triage", "write", "maintain", "admin")
# A repository config larger than this is not read.
REPO_CONFIG_MAX_BYTES = 64 * 1024
_FOLDER = r"^[A-Za-z0-9_][A-Za-z0-9_.-]*(/[A-Za-z0-9_][A-Za-z0-9_.-]*)*$"
_LOGIN = r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})$"
_TEAM = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$"


class _RepoSection(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TriggerConfig(_RepoSection):
    # Create, cancel and retry need at least this permission on the repository...
    min_permission: Permission = "write"
    # ...or a place on one of these lists (logins; team slugs of the owning organisation).
    users: tuple[Annotated[str, StringConstraints(pattern=_LOGIN)], ...] = ()
    teams: tuple[Annotated[str, StringConstraints(pattern=_TEAM)], ...] = ()


class RepoLimits(_RepoSection):
    """Lower limits for this repository; the bot's own limits are the ceiling."""

    jobs_per_hour: int | None = Field(default=None, ge=1)
    max_running: int | None = Field(default=None, ge=1)

    @field_validator("jobs_per_hour", "max_running", mode="before")
    @classmethod
    def _not_a_boolean(cls, value: object) -> object:
        # Pydantic reads true as 1 and false as 0: a limit nobody meant.
        if isinstance(value, bool):
            raise ValueError("must be a number of jobs, not true or false")
        return value

    @field_validator("jobs_per_hour", "max_running")
    @classmethod
    def _within_the_bot(cls, value: int | None, info: ValidationInfo) -> int | None:
        top = (info.context or {}).get("limits", {}).get(info.field_name)
        if value is not None and top is not None and value > top:
            raise ValueError(f"must be at most {top} (the bot's limit)")
        return value


class RepoConfig(_RepoSection):
    """``.github/plugin-bot.yml`` on the default branch; every field is optional."""

    plugins_folder: Annotated[str, StringConstraints(max_length=200)] = "plugins"
    labels: tuple[Annotated[str, StringConstraints(min_length=1, max_length=50)], ...] = ()
    reviewers: tuple[Annotated[str, StringConstraints(pattern=_LOGIN)], ...] = ()
    draft: bool = True
    close_issue: bool = False
    trigger: TriggerConfig = TriggerConfig()
    limits: RepoLimits = RepoLimits()
    # Names from the bot's optional dependencies this repository allows specs to use.
    dependencies: tuple[str, ...] = ()

    @field_validator("plugins_folder")
    @classmethod
    def _plain_folder(cls, value: str) -> str:
        if not re.fullmatch(_FOLDER, value):
            raise ValueError("must be a relative folder: letters, digits, _ . - and /")
        parts = value.split("/")
        if ".github" in parts or ".." in parts or "." in parts:
            raise ValueError("must be a folder outside .github/, without . or ..")
        return value

    @field_validator("dependencies")
    @classmethod
    def _offered_by_the_bot(cls, value: tuple[str, ...], info: ValidationInfo) -> tuple[str, ...]:
        offered = (info.context or {}).get("optional_dependencies", {})
        refused = [name for name in value if name not in offered]
        if refused:
            listed = ", ".join(sorted(offered)) or "none"
            raise ValueError(f"{', '.join(refused)} not offered by the bot (offered: {listed})")
        return value

    def allowed_dependencies(self, settings: Settings) -> dict[str, str]:
        allowed = dict(settings.allowed_dependencies)
        for name in self.dependencies:
            allowed[name] = settings.optional_dependencies[name]
        return allowed

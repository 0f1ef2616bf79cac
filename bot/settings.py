"""Process settings, read from the environment in this module only.

Every limit and default the bot uses lives here, so there is one place to look.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal, NamedTuple

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parent.parent

# Packages a spec may ask for, with the version range written into package.json.
# Anything else is refused by spec validation.
DEFAULT_ALLOWED_DEPENDENCIES: dict[str, str] = {
    "zod": "^4.3.5",
    "date-fns": "^4.1.0",
    "uuid": "^13.0.0",
    "lru-cache": "^11.2.0",
}


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
    database_url: str | None = None
    signing_key_path: Path | None = None
    signing_key_passphrase: SecretStr | None = None

    # Running untrusted code
    sandbox: Literal["bwrap", "none"] = "bwrap"
    command_timeout_s: float = Field(default=300.0, gt=0)
    job_timeout_s: float = Field(default=1800.0, gt=0)
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

    # Template pack and dependencies. npm is given this registry and no other; every
    # lockfile entry must resolve to it (bot/deps.py).
    npm_registry: str = Field(default="https://registry.npmjs.org/", pattern=r"^https://\S+/$")
    # The CA bundle npm trusts for it (the bot's npmrc replaces the host's, which may set one).
    npm_cafile: Path | None = Path("/etc/ssl/certs/ca-certificates.crt")
    template_dir: Path = REPO_ROOT / "templates" / "elizaos-plugin"
    allowed_dependencies: dict[str, str] = Field(
        default_factory=lambda: dict(DEFAULT_ALLOWED_DEPENDENCIES)
    )

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
    def cache_dir(self) -> Path:
        return self.bot_data_dir / "cache"

    @property
    def work_dir(self) -> Path:
        return self.bot_data_dir / "work"

    @property
    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.bot_data_dir / 'plugin-bot.db').resolve()}"


def load_settings() -> Settings:
    return Settings()

"""Process settings, read from the environment in this module only.

Every limit and default the bot uses lives here, so there is one place to look.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

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

    # Template pack and dependencies
    template_dir: Path = REPO_ROOT / "templates" / "elizaos-plugin"
    allowed_dependencies: dict[str, str] = Field(
        default_factory=lambda: dict(DEFAULT_ALLOWED_DEPENDENCIES)
    )

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

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.runner import Outcome, Runner
from bot.settings import Settings


@pytest.fixture(scope="session")
def data_dir() -> Iterator[Path]:
    # One data dir for the session (workspaces); the caches are in cache_dir, kept.
    # Under /tmp with mode 0755: the sandbox uid must reach the workspaces (pytest's
    # tmp_path lives in a 0700 directory).
    base = Path(tempfile.mkdtemp(prefix="plugin-bot-it-", dir="/tmp"))
    base.chmod(0o755)
    yield base
    shutil.rmtree(base, ignore_errors=True)


def persistent_cache_dir() -> Path:
    """The dependency cache the integration tests share across runs, outside every folder
    a test removes: the npm registry is needed the first time only (README).
    ``PLUGIN_BOT_TEST_CACHE`` overrides it; as root it must be reachable by the sandbox uid."""
    override = os.environ.get("PLUGIN_BOT_TEST_CACHE")
    if override:
        return Path(override)
    if os.geteuid() == 0:
        return Path("/var/cache/plugin-bot-tests")
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "plugin-bot-tests"


@pytest.fixture(scope="session")
def cache_dir() -> Path:
    path = persistent_cache_dir()
    path.mkdir(parents=True, exist_ok=True)
    path.chmod(0o755)
    return path


@pytest.fixture
def settings(data_dir: Path, cache_dir: Path) -> Settings:
    # The real sandbox: every install, build and test below runs in bubblewrap.
    return Settings(bot_data_dir=data_dir, bot_cache_dir=cache_dir, sandbox="bwrap")


@pytest.fixture
def jobs(settings: Settings) -> Runner:
    return Runner(settings)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/integration" in str(item.path):
            item.add_marker(pytest.mark.integration)


def exported(outcome: Outcome) -> Path | None:
    """Where ``create`` wrote the plugin (its LocalExport), or None when it wrote nothing."""
    published = outcome.published
    return Path(published.location) if published is not None else None

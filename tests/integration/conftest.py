import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.runner import Outcome, Runner
from bot.settings import Settings


@pytest.fixture(scope="session")
def data_dir() -> Iterator[Path]:
    # One data dir for the session: the first install fills the cache the others use.
    # Under /tmp with mode 0755: the sandbox uid must reach the workspaces (pytest's
    # tmp_path lives in a 0700 directory).
    base = Path(tempfile.mkdtemp(prefix="plugin-bot-it-", dir="/tmp"))
    base.chmod(0o755)
    yield base
    shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def settings(data_dir: Path) -> Settings:
    # The real sandbox: every install, build and test below runs in bubblewrap.
    return Settings(bot_data_dir=data_dir, sandbox="bwrap")


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

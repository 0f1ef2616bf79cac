from pathlib import Path

import pytest

from bot.local import LocalJobs
from bot.settings import Settings


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # One data dir for the session: the first install fills the cache the others use.
    return tmp_path_factory.mktemp("data")


@pytest.fixture
def settings(data_dir: Path) -> Settings:
    return Settings(bot_data_dir=data_dir, sandbox="none")


@pytest.fixture
def jobs(settings: Settings) -> LocalJobs:
    return LocalJobs(settings)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/integration" in str(item.path):
            item.add_marker(pytest.mark.integration)

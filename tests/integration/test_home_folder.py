"""The README's first command in a checkout under a folder only its owner may enter
(a clone in /root, mode 0700, as root): the defaults must work there."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.settings import REPO_ROOT
from tests.conftest import require_root

README_COMMAND = re.compile(r'plugin-bot create "([^"]+)"')


@pytest.fixture
def private_checkout(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    home = Path(tmp_path_factory.mktemp("home"))
    home.chmod(0o700)
    checkout = home / "plugin-bot"
    ignore = shutil.ignore_patterns(".venv", ".git", "data", "plugins", "*.egg-info", "__pycache__")
    for name in ("bot", "templates"):
        shutil.copytree(REPO_ROOT / name, checkout / name, ignore=ignore)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO_ROOT / name, checkout / name)
    yield checkout
    shutil.rmtree(home, ignore_errors=True)


def test_the_readme_create_works_in_a_checkout_under_a_0700_folder(
    private_checkout: Path,
) -> None:
    require_root()  # only as root does the sandbox run as another uid that must get in
    description = README_COMMAND.search((private_checkout / "README.md").read_text())
    assert description is not None, "the README's first command changed"
    # The defaults: no BOT_* variable, the data dir is ./data inside the private checkout.
    env = {"PATH": os.environ["PATH"], "HOME": str(private_checkout.parent), "LANG": "C.UTF-8"}
    done = subprocess.run(
        [sys.executable, "-m", "bot", "create", description.group(1)],
        cwd=private_checkout,
        env={**env, "PYTHONPATH": str(private_checkout)},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    printed = done.stdout + done.stderr
    assert done.returncode == 0, printed
    assert "not searchable" not in printed
    assert "built and tested" in printed
    made = list((private_checkout / "plugins").iterdir())
    assert len(made) == 1 and (made[0] / "test-results.json").is_file()

"""The README's first command in a checkout under a folder only its owner may enter
(a clone in /root, mode 0700, as root), and under one anybody may enter (a clone in
/home/someone or /srv): the defaults must work in both."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.settings import REPO_ROOT
from tests.conftest import require_root

README_COMMAND = re.compile(r'plugin-bot create "([^"]+)"')


@pytest.fixture(params=[0o700, 0o755], ids=["home-0700", "home-0755"])
def private_checkout(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[Path]:
    # pytest's own temp root is 0700: the 0755 case needs a folder whose ancestors are
    # all searchable, as /home/someone is.
    home = (
        Path(tmp_path_factory.mktemp("home"))
        if request.param == 0o700
        else Path(tempfile.mkdtemp(prefix="plugin-bot-home-", dir="/tmp"))
    )
    # 0700: the workspaces move to the fallback folder. 0755: they stay in ./data, a
    # relative path the sandbox must still find (it runs in another working directory).
    home.chmod(request.param)
    checkout = home / "plugin-bot"
    ignore = shutil.ignore_patterns(".venv", ".git", "data", "plugins", "*.egg-info", "__pycache__")
    for name in ("bot", "templates"):
        shutil.copytree(REPO_ROOT / name, checkout / name, ignore=ignore)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO_ROOT / name, checkout / name)
    yield checkout
    shutil.rmtree(home, ignore_errors=True)


def test_the_readme_create_works_in_a_checkout_under_a_home_folder(
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

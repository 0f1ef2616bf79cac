"""Where workspaces and caches go: inside BOT_DATA_DIR when the sandbox uid can reach it,
else (as root) a bot-owned folder outside it; the database and keys stay where they are."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.settings import FALLBACK_RUNTIME_DIR, Settings, searchable_by
from tests.conftest import require_root


@pytest.fixture
def open_base() -> Iterator[Path]:
    base = Path(tempfile.mkdtemp(prefix="plugin-bot-dirs-", dir="/tmp"))
    base.chmod(0o755)
    yield base
    shutil.rmtree(base, ignore_errors=True)


def test_an_unreachable_data_dir_moves_workspaces_and_caches_to_the_fallback(
    open_base: Path,
) -> None:
    require_root()
    private = open_base / "home"
    private.mkdir(mode=0o700)
    settings = Settings(bot_data_dir=private / "data", sandbox="bwrap")
    assert not searchable_by(private / "data", settings.sandbox_uid)
    assert settings.work_dir == FALLBACK_RUNTIME_DIR / "work"
    assert settings.cache_dir == FALLBACK_RUNTIME_DIR / "cache"
    assert settings.bot_data_dir == private / "data"  # the database and keys stay private
    private.chmod(0o711)
    assert settings.work_dir == private / "data" / "work"


def test_an_explicit_runtime_or_cache_dir_wins(open_base: Path) -> None:
    settings = Settings(
        bot_data_dir=open_base / "d", bot_runtime_dir=open_base / "r", bot_cache_dir=open_base / "c"
    )
    assert (settings.work_dir, settings.cache_dir) == (open_base / "r" / "work", open_base / "c")


def test_without_bubblewrap_nothing_moves(open_base: Path) -> None:
    private = open_base / "home"
    private.mkdir(mode=0o700)
    settings = Settings(bot_data_dir=private / "data", sandbox="none")
    assert settings.work_dir == private / "data" / "work"


def test_relative_folders_are_made_absolute_from_the_start_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The sandbox runs in another working directory: a relative path handed to bwrap
    # would be looked up there ("Can't find source path data/cache/...").
    monkeypatch.chdir(tmp_path)
    s = Settings(
        bot_data_dir=Path("data"),
        bot_runtime_dir=Path("rt"),
        bot_cache_dir=Path("c"),
        signing_key_path=Path("keys/k.pem"),
        sandbox="none",
    )
    assert s.bot_data_dir == tmp_path / "data"
    assert s.work_dir == tmp_path / "rt" / "work"
    assert s.cache_dir == tmp_path / "c"
    assert s.signing_key_path == tmp_path / "keys" / "k.pem"
    assert Settings(sandbox="none").bot_data_dir == tmp_path / "data"

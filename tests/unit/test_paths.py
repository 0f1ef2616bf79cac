"""bot/paths.py: the one name rule (each refusal with its reason) and link-refusing I/O."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bot import paths
from bot.paths import PathRefused

REFUSED = [
    ("", "empty"),
    ("/etc/passwd", "absolute"),
    ("~/x", "absolute"),
    ("C:/x", "absolute"),
    ("src\\x.ts", "backslash"),
    ("src/../x", "dotdot"),
    ("src//x", "empty-part"),
    ("./x", "empty-part"),
    ("src/x\x00.ts", "invisible-char"),
    ("src/x\n.ts", "invisible-char"),
    ("src/x\x85.ts", "invisible-char"),  # C1 (NEL)
    ("src/index.ts\u200b", "invisible-char"),
    ("src/\u200bindex.ts", "invisible-char"),
    ("src/\u202egnp.ts", "invisible-char"),
    ("src/\u2066x\u2069.ts", "invisible-char"),
    ("src/x\u2028.ts", "invisible-char"),
    ("src/\ufeffx.ts", "invisible-char"),
    ("src/a.ts ", "edge-space"),
    (" src/a.ts", "edge-space"),
    ("src/a\u3000", "edge-space"),  # an ideographic space: white space after NFKC
    ("src/a.ts.", "edge-dot"),
    ("src/..\u2024/x", "edge-dot"),  # ONE DOT LEADER: '...' after NFKC
    ("src/\u2025/x", "edge-dot"),  # TWO DOT LEADER
    ("src/cafe\u0301.ts", "not-nfc"),
    (".git/config", "forbidden-dir"),
    ("src/.GitHub/x", "forbidden-dir"),
    ("x" * 301, "too-long"),
]


@pytest.mark.parametrize(("path", "reason"), REFUSED)
def test_each_refusal_has_its_reason(path: str, reason: str) -> None:
    with pytest.raises(PathRefused) as caught:
        paths.check_relative(path)
    assert caught.value.reason == reason


@pytest.mark.parametrize(
    "path", ["src/index.ts", ".gitignore", "__tests__/a.test.ts", "src/café.ts", "README.md"]
)
def test_ordinary_names_pass(path: str) -> None:
    assert paths.check_relative(path) == tuple(path.split("/"))


def test_a_write_never_follows_a_link_at_the_name(tmp_path: Path) -> None:
    key = tmp_path / "key"
    key.write_text("secret")
    root = tmp_path / "root"
    root.mkdir()
    (root / "results.json").symlink_to(key)
    with pytest.raises(PathRefused, match="symlink"):
        paths.write_bytes(root, "results.json", b"{}")
    assert key.read_text() == "secret"


def test_a_write_never_goes_through_a_linked_directory(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    root = tmp_path / "root"
    root.mkdir()
    (root / "src").symlink_to(outside, target_is_directory=True)
    with pytest.raises(PathRefused, match="symlink"):
        paths.write_bytes(root, "src/x.ts", b"x")
    assert list(outside.iterdir()) == []


def test_reads_refuse_links_and_special_files(tmp_path: Path) -> None:
    (tmp_path / "link").symlink_to("/etc/hostname")
    os.mkfifo(tmp_path / "fifo")
    with pytest.raises(PathRefused, match="symlink"):
        paths.read_bytes(tmp_path, "link")
    with pytest.raises(PathRefused):
        paths.walk_files(tmp_path)


def test_write_then_read_round_trips_and_leaves_no_temporary_file(tmp_path: Path) -> None:
    paths.write_bytes(tmp_path, "a/b/c.txt", b"hello")
    paths.write_bytes(tmp_path, "a/b/c.txt", b"again")
    assert paths.read_bytes(tmp_path, "a/b/c.txt") == b"again"
    assert paths.walk_files(tmp_path) == ["a/b/c.txt"]


def test_a_read_over_the_limit_is_refused(tmp_path: Path) -> None:
    (tmp_path / "big").write_bytes(b"x" * 11)
    with pytest.raises(PathRefused, match="larger than 10 bytes"):
        paths.read_bytes(tmp_path, "big", limit=10)

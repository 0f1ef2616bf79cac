"""The one path policy: which relative names are acceptable, and how the bot touches them.

Two halves:

* **The name rule** (:func:`check_relative`): a POSIX path relative to a plugin directory,
  as the model's tools, the template pack, the signer and the verifier accept it. Refused,
  each with its own reason: empty or over-long paths, absolute paths, backslashes, ``.``,
  ``..`` and empty segments, control characters (C0, C1), format characters (Unicode
  category Cf, which holds the zero-width and bidi controls), line and paragraph
  separators, segments with leading or trailing white space, a trailing dot or a leading
  ``..`` (also through look-alikes such as U+2024, compared after NFKC), names that are not
  NFC, and ``.git`` / ``.github`` in any case.
* **Link-refusing I/O** (:func:`read_bytes`, :func:`write_bytes`, :func:`remove_file`,
  :func:`walk_files`): every read or write the bot does with its own privileges inside a
  workspace opens each directory on the way with ``O_NOFOLLOW | O_DIRECTORY`` relative to
  the previous one, creates files with ``O_EXCL`` and replaces them by ``rename`` (which
  replaces a planted symlink instead of following it). A symlink anywhere below the root
  is refused, never followed.

This module needs only the standard library: the standalone verifier (``verify_manifest.py``)
loads it from beside itself as ``plugin_paths.py``.
"""

from __future__ import annotations

import errno
import os
import re
import stat
import unicodedata
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

MAX_PATH_CHARS = 300
FORBIDDEN_DIRS = frozenset({".git", ".github"})
# Categories a name never needs: controls, format characters (zero-width, bidi), separators
# of lines and paragraphs, surrogates and private use.
_REFUSED_CATEGORIES = {
    "Cc": "a control character",
    "Cf": "an invisible format character (zero-width or bidi control)",
    "Zl": "a line separator",
    "Zp": "a paragraph separator",
    "Cs": "a surrogate",
    "Co": "a private-use character",
}
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


class PathRefused(ValueError):
    """A path the policy refuses; ``reason`` is a short code, the message says why."""

    def __init__(self, reason: str, message: str) -> None:
        self.reason = reason
        super().__init__(message)


# ------------------------------------------------------------------------ the name rule


def check_segment(segment: str, path: str | None = None) -> str:
    """One name between slashes; PathRefused unless it is acceptable."""
    shown = repr(path if path is not None else segment)
    if segment in {"", "."}:
        raise PathRefused("empty-part", f"the path {shown} has an empty or '.' part")
    if segment == "..":
        raise PathRefused("dotdot", f"the path {shown} contains '..'; it must stay inside")
    if "/" in segment or "\\" in segment:
        raise PathRefused("backslash", f"the name {shown} contains a slash or a backslash")
    for char in segment:
        what = _REFUSED_CATEGORIES.get(unicodedata.category(char))
        if what is not None:
            raise PathRefused(
                "invisible-char", f"the path {shown} contains {what} (U+{ord(char):04X})"
            )
    if unicodedata.normalize("NFC", segment) != segment:
        raise PathRefused("not-nfc", f"the path {shown} is not in Unicode NFC form")
    folded = unicodedata.normalize("NFKC", segment)
    if folded.strip() != folded or segment.strip() != segment:
        raise PathRefused(
            "edge-space", f"the path {shown} has a part with leading or trailing white space"
        )
    if folded.endswith(".") or folded.startswith(".."):
        raise PathRefused(
            "edge-dot", f"the path {shown} has a part ending in a dot or starting with '..'"
        )
    if folded.casefold() in FORBIDDEN_DIRS:
        raise PathRefused("forbidden-dir", f"the path {shown} is under {segment}/ (refused)")
    return segment


def check_relative(path: str) -> tuple[str, ...]:
    """The segments of ``path`` when it is an acceptable relative POSIX path."""
    if not isinstance(path, str) or not path:
        raise PathRefused("empty", "the path is empty")
    if len(path) > MAX_PATH_CHARS:
        raise PathRefused("too-long", f"the path is longer than {MAX_PATH_CHARS} characters")
    if "\\" in path:
        raise PathRefused("backslash", f"the path {path!r} contains a backslash; use /")
    if path.startswith(("/", "~")) or (len(path) > 1 and path[1] == ":" and path[0].isalpha()):
        raise PathRefused("absolute", f"the path {path!r} is absolute; paths are relative")
    parts = tuple(path.split("/"))
    for part in parts:
        check_segment(part, path)
    return parts


_TEST_FILE = re.compile(r"^__tests__/.+\.(test|spec)\.[cm]?[jt]sx?$")


def is_test_file(rel: str) -> bool:
    """Whether ``rel`` is one of the plugin's test files (the bot's vitest config runs them)."""
    return bool(_TEST_FILE.match(rel))


def child_dir(root: Path, name: str) -> Path:
    """``root/name`` for one acceptable segment (a plugin's folder under a workspace);
    refused when that name is a link leading elsewhere."""
    check_segment(name)
    base = root.resolve()
    target = (base / name).resolve()
    if target.parent != base:
        raise PathRefused("symlink", f"{name!r} leaves {base}")
    return target


# ------------------------------------------------------------------- link-refusing I/O


@contextmanager
def _dir_fd(root: Path, parts: Iterable[str], *, create: bool = False) -> Iterator[int]:
    """A descriptor of ``root/parts``; every step is opened without following a link."""
    fd = os.open(root, _DIR_FLAGS)
    try:
        for part in parts:
            try:
                nxt = os.open(part, _DIR_FLAGS, dir_fd=fd)
            except FileNotFoundError:
                if not create:
                    raise
                os.mkdir(part, 0o755, dir_fd=fd)
                nxt = os.open(part, _DIR_FLAGS, dir_fd=fd)
            except OSError as exc:
                raise PathRefused(
                    "symlink", f"{part} on the way is a symlink or not a directory ({exc.strerror})"
                ) from None
            os.close(fd)
            fd = nxt
        yield fd
    finally:
        os.close(fd)


def _split(rel: str) -> tuple[tuple[str, ...], str]:
    parts = check_relative(rel)
    return parts[:-1], parts[-1]


def read_bytes(root: Path, rel: str, *, limit: int | None = None) -> bytes:
    """The content of the regular file ``root/rel``; a symlink anywhere is refused."""
    parents, name = _split(rel)
    with _dir_fd(root, parents) as parent:
        try:
            fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=parent)
        except OSError as exc:
            if exc.errno in {errno.ELOOP, errno.ENOTDIR}:  # a link, or not a directory on the way
                raise PathRefused("symlink", f"{rel} is a symlink") from None
            raise
        with os.fdopen(fd, "rb") as handle:
            if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
                raise PathRefused("not-a-file", f"{rel} is not a regular file")
            data = handle.read() if limit is None else handle.read(limit + 1)
    if limit is not None and len(data) > limit:
        raise PathRefused("too-large", f"{rel} is larger than {limit} bytes")
    return data


def write_bytes(root: Path, rel: str, data: bytes, *, mode: int = 0o644) -> None:
    """Write ``root/rel`` whole: a new file made with O_EXCL, renamed over the old name.

    A symlink (or anything but a regular file) at the name or on the way is refused, and
    the rename never writes through one; missing parent directories are made.
    """
    parents, name = _split(rel)
    with _dir_fd(root, parents, create=True) as parent:
        try:
            existing = os.stat(name, dir_fd=parent, follow_symlinks=False)
        except FileNotFoundError:
            existing = None
        if existing is not None and not stat.S_ISREG(existing.st_mode):
            raise PathRefused("symlink", f"{rel} exists and is a symlink or not a regular file")
        temp = f".{name[:40]}.{os.getpid()}.{os.urandom(4).hex()}.tmp"
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        fd = os.open(temp, flags, mode, dir_fd=parent)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
            os.rename(temp, name, src_dir_fd=parent, dst_dir_fd=parent)
        except BaseException:
            with suppress(FileNotFoundError):
                os.unlink(temp, dir_fd=parent)
            raise


def remove_file(root: Path, rel: str) -> None:
    """Remove ``root/rel`` (a file or a link: the name, never what it points at)."""
    parents, name = _split(rel)
    with _dir_fd(root, parents) as parent:
        st = os.stat(name, dir_fd=parent, follow_symlinks=False)
        if stat.S_ISDIR(st.st_mode):
            raise PathRefused("not-a-file", f"{rel} is a directory")
        os.unlink(name, dir_fd=parent)


def walk_files(root: Path, *, skip_top: Iterable[str] = ()) -> list[str]:
    """Every regular file under ``root`` as a checked POSIX path, sorted.

    A symlink, a special file or a name the rule refuses raises PathRefused; top-level
    entries named in ``skip_top`` (build output, caches) are left out unseen.
    """
    skipped = frozenset(skip_top)
    found: list[str] = []

    def walk(fd: int, prefix: str) -> None:
        for name in sorted(os.listdir(fd)):
            if not prefix and name in skipped:
                continue
            rel = f"{prefix}{name}"
            check_relative(rel)
            st = os.stat(name, dir_fd=fd, follow_symlinks=False)
            if stat.S_ISLNK(st.st_mode):
                raise PathRefused("symlink", f"{rel} is a symlink")
            if stat.S_ISDIR(st.st_mode):
                sub = os.open(name, _DIR_FLAGS, dir_fd=fd)
                try:
                    walk(sub, f"{rel}/")
                finally:
                    os.close(sub)
            elif stat.S_ISREG(st.st_mode):
                found.append(rel)
            else:
                raise PathRefused("not-a-file", f"{rel} is not a regular file")

    with _dir_fd(root, ()) as top:
        walk(top, "")
    return found


def ensure_dirs(root: Path, rel: str) -> Path:
    """Make ``root/rel`` (a directory path) through link-refusing steps; return it."""
    with _dir_fd(root, check_relative(rel), create=True):
        pass
    return root.joinpath(*rel.split("/"))

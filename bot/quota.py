"""How much a workspace holds, against the per-job caps on bytes and files.

Bytes are counted once per distinct file (hard links do not multiply them, and cannot hide
them either: every inode is counted, whoever else links it); files are counted per name
(every file, directory and symlink), because a million empty files exhaust a file system's
inodes as surely as a large one its blocks. Symlinks are never followed.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Usage:
    bytes: int
    files: int


def measure(root: Path, stop_after_files: int | None = None) -> Usage:
    """What ``root`` holds; stops counting names early once past ``stop_after_files``."""
    seen: set[tuple[int, int]] = set()
    total = files = 0
    stack = [str(root)]
    while stack:
        try:
            entries = list(os.scandir(stack.pop()))
        except OSError:  # removed while we looked, or unreadable: nothing to count
            continue
        for entry in entries:
            files += 1
            try:
                st = entry.stat(follow_symlinks=False)
            except OSError:
                continue
            if entry.is_dir(follow_symlinks=False):
                stack.append(entry.path)
            elif (st.st_dev, st.st_ino) not in seen:
                seen.add((st.st_dev, st.st_ino))
                total += max(st.st_size, st.st_blocks * 512)
        if stop_after_files is not None and files > stop_after_files:
            break
    return Usage(total, files)


def over_cap(root: Path, max_bytes: int | None, max_files: int | None) -> str | None:
    """Why ``root`` is past a cap (a sentence), or None when it is within both."""
    if max_bytes is None and max_files is None:
        return None
    usage = measure(root, max_files)
    if max_files is not None and usage.files > max_files:
        return f"the workspace holds more than {max_files} files (the per-job cap)"
    if max_bytes is not None and usage.bytes > max_bytes:
        return (
            f"the workspace holds {usage.bytes // 1024**2} MiB, more than the per-job cap of "
            f"{max_bytes // 1024**2} MiB"
        )
    return None

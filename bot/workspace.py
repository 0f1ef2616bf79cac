"""The files that make up a plugin directory, and copying them between places.

Build output, installed dependencies and tool caches are not part of a plugin: they
are never exported, copied into a workspace, or (later) signed.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path, PurePosixPath

# Produced by install, build and test; never part of the plugin itself.
GENERATED_DIRS = frozenset({"node_modules", "dist", ".vitest-cache", ".plugin-bot"})


class WorkspaceError(ValueError):
    """A plugin directory holds something that cannot be copied safely."""


def plugin_files(root: Path) -> list[str]:
    """POSIX paths of the plugin's files under ``root``, sorted; refuses symlinks."""
    found: list[str] = []
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath)
        for name in list(dirnames):
            if (here / name).is_symlink():
                raise WorkspaceError(f"{(here / name).relative_to(root)} is a symlink")
        if here == root and ".github" in dirnames:
            raise WorkspaceError(".github/ does not belong in a plugin directory")
        dirnames[:] = sorted(d for d in dirnames if not (here == root and d in GENERATED_DIRS))
        for name in filenames:
            path = here / name
            if path.is_symlink() or not path.is_file():
                raise WorkspaceError(f"{path.relative_to(root)} is not a regular file")
            found.append(PurePosixPath(path.relative_to(root)).as_posix())
    return sorted(found)


def copy_plugin(src: Path, dest: Path) -> list[str]:
    """Copy the plugin's files from ``src`` into ``dest`` (created, must not exist)."""
    files = plugin_files(src)
    dest.mkdir(parents=True)
    for rel in files:
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src / rel, target)
    return files


def replace_dir(src: Path, dest: Path) -> list[str]:
    """Put the plugin of ``src`` at ``dest``, replacing what was there."""
    staging = dest.with_name(f".{dest.name}.incoming")
    if staging.exists():
        shutil.rmtree(staging)
    files = copy_plugin(src, staging)
    if dest.exists():
        shutil.rmtree(dest)
    staging.rename(dest)
    return files

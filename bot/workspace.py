"""The files that make up a plugin, held by the bot, and the directories they live in.

:class:`FileSet` is the authoritative set: what the scaffold rendered plus what the model
wrote through its tools (and the bot's own ``test-results.json``), path to bytes, in the
bot's memory. The plugin directory on disk is only a copy of it for the sandbox to read:
after every sandboxed run the directory is compared with the set (:meth:`FileSet.changes`)
and any difference is refused and put back. What is signed and exported is the set.

Build output, installed dependencies and tool caches are not part of a plugin: they
are never exported, copied into a workspace, or signed.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from bot import paths
from bot.sandbox import Mount

NODE_MODULES = "node_modules"
REPORT_DIR = ".plugin-bot"  # the test run's report folder (writable during the test run)
CONFIG_DIR = ".plugin-bot-config"  # the bot's own tool configs, mounted read-only
BUILD_OUTPUT = "dist"
# Produced by install, build and test; never part of the plugin itself.
# The warm checker's script and channel folders (bot/pipeline/warm.py): mount points only.
WARM_DIRS = (".plugin-bot-warm", ".plugin-bot-channel")
GENERATED_DIRS = frozenset(
    {NODE_MODULES, BUILD_OUTPUT, ".vitest-cache", REPORT_DIR, CONFIG_DIR, *WARM_DIRS}
)


class WorkspaceError(ValueError):
    """A plugin directory holds something that cannot be copied safely."""


class TreeChanged(WorkspaceError):
    """A sandboxed run changed the plugin's files; they were put back."""

    def __init__(self, changes: list[Change]) -> None:
        self.changes = changes
        super().__init__(
            "the run tried to change the plugin's files, which build and test may not do; "
            f"the bot put them back: {describe_changes(changes)}. Build and test see the "
            f"sources read-only; only {BUILD_OUTPUT}/, the test report and temporary files "
            "are writable, and the plugin is exactly the files written through the tools"
        )


@dataclass(frozen=True)
class Change:
    """One difference between the plugin directory and the authoritative set."""

    path: str
    kind: str  # "added", "changed", "removed", "unreadable"

    def __str__(self) -> str:
        return f"{self.path} ({self.kind})"


def describe_changes(changes: Iterable[Change], limit: int = 20) -> str:
    listed = list(changes)
    shown = ", ".join(str(c) for c in listed[:limit])
    more = f" and {len(listed) - limit} more" if len(listed) > limit else ""
    return shown + more


@dataclass
class FileSet:
    """The plugin's files as the bot wrote them: relative POSIX path -> content."""

    root: Path
    contents: dict[str, bytes] = field(default_factory=dict)

    @classmethod
    def read_from(cls, root: Path) -> FileSet:
        """The set of a directory only the bot has written to (the rendered scaffold)."""
        files = cls(root)
        for rel in plugin_files(root):
            files.contents[rel] = paths.read_bytes(root, rel)
        return files

    def names(self) -> list[str]:
        return sorted(self.contents)

    def __len__(self) -> int:
        return len(self.contents)

    def __contains__(self, rel: object) -> bool:
        return rel in self.contents

    def get(self, rel: str) -> bytes | None:
        return self.contents.get(rel)

    def write(self, rel: str, data: bytes) -> None:
        """Record ``rel`` and write it to the directory (through the link-refusing path)."""
        paths.check_relative(rel)
        paths.write_bytes(self.root, rel, data)
        self.contents[rel] = data

    def remove(self, rel: str) -> None:
        paths.remove_file(self.root, rel)
        del self.contents[rel]

    def digests(self) -> dict[str, str]:
        return {rel: hashlib.sha256(data).hexdigest() for rel, data in self.contents.items()}

    def changes(self) -> list[Change]:
        """How the directory differs from the set (build output and caches left out)."""
        try:
            present = set(plugin_files(self.root))
        except (paths.PathRefused, WorkspaceError) as exc:
            return [Change(str(exc), "unreadable")]
        found = [Change(rel, "added") for rel in sorted(present - set(self.contents))]
        for rel in sorted(self.contents):
            if rel not in present:
                found.append(Change(rel, "removed"))
                continue
            try:
                same = paths.read_bytes(self.root, rel) == self.contents[rel]
            except (OSError, paths.PathRefused):
                same = False
            if not same:
                found.append(Change(rel, "changed"))
        return found

    def restore(self) -> None:
        """Put the directory back to exactly the set (generated folders are kept)."""
        for entry in os.listdir(self.root):
            if entry in GENERATED_DIRS:
                continue
            path = self.root / entry
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink()
        for rel, data in self.contents.items():
            paths.write_bytes(self.root, rel, data)

    def export(self, dest: Path) -> list[str]:
        """Write the set into ``dest`` (created, must not exist)."""
        dest.mkdir(parents=True)
        for rel, data in sorted(self.contents.items()):
            paths.write_bytes(dest, rel, data)
        return self.names()

    def refuse_changes(self) -> None:
        """TreeChanged (after putting the directory back) when it differs from the set."""
        changes = self.changes()
        if changes:
            self.restore()
            raise TreeChanged(changes)


def run_layout(
    files: FileSet,
    *,
    node_modules: Path | None,
    config_dir: Path | None,
    outputs: Iterable[str] = (),
) -> list[Mount]:
    """What a build or test run of ``files`` sees at the plugin directory.

    An empty tmpfs (whatever else the run writes there vanishes with it), every top-level
    entry of the set bound read-only over it, the shared dependency tree and the bot's
    tool configs read-only, and only ``outputs`` (made here, by the bot) writable.
    """
    root = files.root
    mounts = [Mount(root)]
    for top in sorted({rel.split("/", 1)[0] for rel in files.contents}):
        mounts.append(Mount(root / top, root / top))
    if node_modules is not None:
        mounts.append(Mount(root / NODE_MODULES, node_modules))
    if config_dir is not None:
        mounts.append(Mount(root / CONFIG_DIR, config_dir))
    built = root / BUILD_OUTPUT
    if BUILD_OUTPUT not in outputs and built.is_dir() and not built.is_symlink():
        mounts.append(Mount(built, built))  # the build's output, read-only for the tests
    for output in outputs:
        mounts.append(Mount(root / output, paths.ensure_dirs(root, output), writable=True))
    return mounts


def plugin_files(root: Path) -> list[str]:
    """POSIX paths of the plugin's files under ``root``, sorted; refuses symlinks."""
    try:
        return paths.walk_files(root, skip_top=GENERATED_DIRS)
    except paths.PathRefused as exc:
        raise WorkspaceError(str(exc)) from None


def copy_plugin(src: Path, dest: Path) -> list[str]:
    """Copy the plugin's files from ``src`` into ``dest`` (created, must not exist)."""
    return FileSet.read_from(src).export(dest)


def replace_dir(files: FileSet | Mapping[str, bytes], dest: Path) -> list[str]:
    """Put the plugin ``files`` at ``dest``, replacing what was there."""
    contents = files.contents if isinstance(files, FileSet) else dict(files)
    staging = dest.with_name(f".{dest.name}.incoming")
    if staging.exists():
        shutil.rmtree(staging)
    written = FileSet(staging, dict(contents)).export(staging)
    if dest.exists():
        shutil.rmtree(dest)
    staging.rename(dest)
    return written

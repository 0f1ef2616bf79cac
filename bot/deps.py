"""Dependency installs through a cache shared between jobs.

Two levels: npm's own content cache (``cache/npm``: tarballs, so a new lockfile rarely
downloads anything), and a finished ``node_modules`` per lockfile (``cache/node_modules/
<key>``), built once with lifecycle scripts off and copied into each workspace. A
workspace gets its own copy, so nothing a build does there can change the cache.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import fcntl
import hashlib
import json
import os
import platform
import shutil
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bot.pack import PACKAGE_JSON, PACKAGE_LOCK, lock_satisfies
from bot.sandbox import Limits, ProcessFailed, Result, Sandbox

NODE_MODULES = "node_modules"
COMPLETE_MARKER = ".plugin-bot-complete"
NPM_QUIET = ("--no-audit", "--no-fund", "--loglevel=warn")
LOCK_POLL_S = 0.2


@dataclass(frozen=True)
class InstallReport:
    key: str
    cache_hit: bool
    lock_updated: bool
    wall_s: float
    commands: tuple[Result, ...]

    @property
    def downloaded(self) -> bool:
        """Whether npm ran at all for this install (a hit copies, and nothing else)."""
        return bool(self.commands)


def _read_json(path: Path) -> dict[str, Any]:
    data = json.loads(path.read_text())
    if not isinstance(data, dict):
        raise ValueError(f"{path.name} is not a JSON object")
    return data


def lock_key(lock: dict[str, Any], node_version: str) -> str:
    """What decides a node_modules tree: the resolved packages, not the plugin's name."""
    packages = dict(lock.get("packages") or {})
    root = dict(packages.pop("", {}) or {})
    material = {
        "lockfileVersion": lock.get("lockfileVersion"),
        "root": {
            k: root.get(k) for k in ("dependencies", "devDependencies", "optionalDependencies")
        },
        "packages": packages,
        "node": node_version.split(".")[0],
        "platform": platform.system(),
        "machine": platform.machine(),
    }
    blob = json.dumps(material, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(blob).hexdigest()[:32]


@contextlib.asynccontextmanager
async def _file_lock(path: Path) -> AsyncIterator[None]:
    """An exclusive lock between processes, polled so the event loop never blocks."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                await asyncio.sleep(LOCK_POLL_S)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def make_read_only(root: Path) -> None:
    """Clear the write bits of every file under ``root`` (directories stay writable)."""
    for dirpath, _, filenames in os.walk(root):
        for name in filenames:
            path = os.path.join(dirpath, name)
            if not os.path.islink(path):
                mode = os.stat(path).st_mode
                os.chmod(path, mode & ~0o222)


def link_tree(src: Path, dst: Path) -> None:
    """Recreate ``src`` at ``dst``: new directories, hard-linked files, copied symlinks.

    Falls back to copying when the two are on different file systems.
    """
    os.mkdir(dst)
    with os.scandir(src) as entries:
        for entry in entries:
            target = os.path.join(dst, entry.name)
            if entry.is_symlink():
                os.symlink(os.readlink(entry.path), target)
            elif entry.is_dir():
                link_tree(Path(entry.path), Path(target))
            else:
                try:
                    os.link(entry.path, target)
                except OSError as exc:
                    if exc.errno != errno.EXDEV:
                        raise
                    shutil.copy2(entry.path, target)


class DependencyCache:
    def __init__(self, root: Path, sandbox: Sandbox, node_version: str) -> None:
        self.root = root
        self.sandbox = sandbox
        self.node_version = node_version
        self.npm_cache = root / "npm"
        self.trees = root / NODE_MODULES
        # flock excludes other processes; jobs of this process queue on an asyncio lock.
        self._building: dict[str, asyncio.Lock] = {}

    def _npm_flags(self) -> list[str]:
        return [f"--cache={self.npm_cache.resolve()}", "--prefer-offline", *NPM_QUIET]

    async def _run(
        self, argv: Sequence[str], workdir: Path, limits: Limits, cancel: asyncio.Event | None
    ) -> Result:
        # Network only here: the caches could not serve this lockfile.
        self.npm_cache.mkdir(parents=True, exist_ok=True)
        result = await self.sandbox.run(
            argv, workdir, limits, network=True, writable=[self.npm_cache], cancel=cancel
        )
        if not result.ok:
            raise ProcessFailed(result)
        return result

    async def install(
        self,
        workdir: Path,
        install_argv: Sequence[str],
        limits: Limits,
        *,
        cancel: asyncio.Event | None = None,
    ) -> InstallReport:
        """Give ``workdir`` a node_modules for its lockfile, from the cache when it can."""
        started = time.monotonic()
        commands: list[Result] = []
        lock_updated = False
        package = _read_json(workdir / PACKAGE_JSON)
        lock_path = workdir / PACKAGE_LOCK
        lock = _read_json(lock_path) if lock_path.exists() else {}
        if not lock or not lock_satisfies(package, lock):
            argv = ["npm", "install", "--package-lock-only", "--ignore-scripts", *self._npm_flags()]
            commands.append(await self._run(argv, workdir, limits, cancel))
            lock = _read_json(lock_path)
            lock_updated = True
        key = lock_key(lock, self.node_version)
        tree = self.trees / key
        built = False
        if not (tree / COMPLETE_MARKER).exists():
            async with (
                self._building.setdefault(key, asyncio.Lock()),
                _file_lock(self.trees / f"{key}.lock"),
            ):
                if not (tree / COMPLETE_MARKER).exists():
                    commands.append(
                        await self._build_tree(tree, workdir, install_argv, limits, cancel)
                    )
                    built = True
        target = workdir / NODE_MODULES
        if target.exists() or target.is_symlink():
            await asyncio.to_thread(shutil.rmtree, target)
        await asyncio.to_thread(link_tree, tree / NODE_MODULES, target)
        return InstallReport(
            key=key,
            cache_hit=not built,
            lock_updated=lock_updated,
            wall_s=time.monotonic() - started,
            commands=tuple(commands),
        )

    async def _build_tree(
        self,
        tree: Path,
        workdir: Path,
        install_argv: Sequence[str],
        limits: Limits,
        cancel: asyncio.Event | None,
    ) -> Result:
        staging = self.trees / f".{tree.name}.{uuid.uuid4().hex[:8]}"
        staging.mkdir(parents=True)
        try:
            for name in (PACKAGE_JSON, PACKAGE_LOCK):
                shutil.copy2(workdir / name, staging / name)
            result = await self._run([*install_argv, *self._npm_flags()], staging, limits, cancel)
            if not (staging / NODE_MODULES).is_dir():
                raise RuntimeError("the install wrote no node_modules")
            await asyncio.to_thread(make_read_only, staging / NODE_MODULES)
            (staging / COMPLETE_MARKER).write_text(self.node_version + "\n")
            if tree.exists():
                shutil.rmtree(tree)
            os.replace(staging, tree)
            return result
        finally:
            if staging.exists():
                shutil.rmtree(staging, ignore_errors=True)

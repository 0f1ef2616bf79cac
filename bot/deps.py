"""Dependency installs the job cannot steer, through caches no job can write.

npm never runs on workspace files. An install gets a fresh, bot-owned staging directory
holding only a ``package.json`` the bot builds from the plugin's (name, version and its
registry-semver dependencies, nothing else: no scripts, overrides, workspaces or config)
and the bot's lockfile; npm is given a bot-owned ``npmrc`` as both user and global config
(registry fixed, scripts off, git disabled). Every lockfile entry must resolve to that
registry and carry a sha512 integrity, whether the lockfile came from the pack or from
``npm install --package-lock-only`` in the staging directory.

Two shared levels, both written only by the bot:

* ``cache/node_modules/<key>``: a finished tree per lockfile, built once with lifecycle
  scripts off, made read-only, and given to build and test runs by a read-only mount
  (``bot.workspace.run_layout``), never as files the sandbox could own or chmod.
* ``cache/tarballs/sha512/<hex>``: package tarballs whose sha512 equals the lockfile's
  integrity (the registry's). A job's npm runs against its own, fresh npm cache seeded
  with copies of these; after the install only the blobs that match a lockfile entry's
  integrity are promoted. Nothing else npm wrote (index records, packuments) outlives the job.

A pack may name a script that prepares a finished tree once (``prepare``): it runs in the
sandbox with the network off, in the same bot-owned staging folder right after npm and
before the tree is made read-only, so what it writes under ``node_modules`` (the elizaos
pack: a PGlite data directory after initdb and plugin-sql's migrations) is shared like the
packages. The script is the pack's, never a plugin's; its digest is part of the tree's key.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import fcntl
import hashlib
import json
import os
import platform
import re
import shutil
import time
import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bot.pack import DEPENDENCY_SECTIONS, PACKAGE_JSON, PACKAGE_LOCK, lock_satisfies
from bot.sandbox import Limits, Mount, ProcessFailed, Result, Sandbox

NODE_MODULES = "node_modules"
COMPLETE_MARKER = ".plugin-bot-complete"
NPMRC = "npmrc"  # the user config; the global one is its twin (npm refuses one file as both)
GLOBAL_NPMRC = "npmrc-global"
NPM_QUIET = ("--no-audit", "--no-fund", "--loglevel=warn")
LOCK_POLL_S = 0.2
PREPARE_SCRIPT = ".plugin-bot-prepare.mjs"  # the pack's prepare script, copied into staging
DEFAULT_REGISTRY = "https://registry.npmjs.org/"
# What npm may use for git: nothing. A git dependency fails instead of running a program.
NO_GIT = "/nonexistent/git-is-disabled"

# One comparator set of a registry semver range: ^1.2.3, >=1 <2, 1.x, *, 1.2.3-beta.1 ...
_VERSION = r"v?(?:\d+|[xX*])(?:\.(?:\d+|[xX*])){0,2}(?:-[0-9A-Za-z.-]+)?(?:\+[0-9A-Za-z.-]+)?"
_COMPARATOR = rf"(?:[<>]=?|=|\^|~>?)?\s*{_VERSION}"
_RANGE = re.compile(rf"^\s*{_COMPARATOR}(?:\s+(?:-\s+)?{_COMPARATOR}|\s*\|\|\s*{_COMPARATOR})*\s*$")
_EXACT = re.compile(r"^\d+\.\d+\.\d+(?:-[0-9A-Za-z.-]+)?(?:\+[0-9A-Za-z.-]+)?$")
_PACKAGE_NAME = re.compile(r"^(?:@[a-z0-9][a-z0-9._~-]*/)?[a-z0-9][a-z0-9._~-]*$")


class DependencyRefused(ValueError):
    """A package.json or lockfile the bot will not give to npm; the message says why."""


@dataclass(frozen=True)
class InstallReport:
    key: str
    cache_hit: bool
    lock_updated: bool
    wall_s: float
    commands: tuple[Result, ...]
    node_modules: Path  # the shared, read-only tree (mounted into runs, never copied)
    lock_text: bytes  # the lockfile the tree was built from (the bot's)
    promoted: int = 0  # tarballs that went into the shared store

    @property
    def downloaded(self) -> bool:
        """Whether npm ran at all for this install (a hit copies, and nothing else)."""
        return bool(self.commands)


# ----------------------------------------------------------------- what npm is given


def check_registry_spec(name: str, spec: Any) -> str:
    """A dependency's range when it is a registry semver range (no git, URL, file, alias,
    tag or workspace spec)."""
    if not isinstance(name, str) or not _PACKAGE_NAME.fullmatch(name):
        raise DependencyRefused(f"{name!r} is not an npm package name")
    if not isinstance(spec, str) or not _RANGE.fullmatch(spec):
        raise DependencyRefused(
            f"{name}: {spec!r} is not a registry version range (git, URL, file, alias, tag "
            "and workspace specs are refused)"
        )
    return spec


def staged_package(package: Mapping[str, Any]) -> dict[str, Any]:
    """The only package.json npm sees: name, version and checked dependency ranges."""
    staged: dict[str, Any] = {
        "name": package.get("name"),
        "version": package.get("version"),
        "private": True,
    }
    for section in DEPENDENCY_SECTIONS:
        deps = package.get(section) or {}
        if not isinstance(deps, Mapping):
            raise DependencyRefused(f"package.json's {section} is not an object")
        if deps:
            staged[section] = {n: check_registry_spec(n, s) for n, s in sorted(deps.items())}
    return staged


def check_lock(lock: Mapping[str, Any], registry: str) -> None:
    """Every package of ``lock`` comes from ``registry`` with a sha512 integrity."""
    packages = lock.get("packages")
    if not isinstance(packages, Mapping) or "" not in packages:
        raise DependencyRefused("the lockfile has no packages")
    for key, entry in packages.items():
        if key == "":
            continue
        where = f"package-lock.json {key!r}"
        if not isinstance(key, str) or not key.startswith("node_modules/") or ".." in key:
            raise DependencyRefused(f"{where} is not an installed package path")
        if not isinstance(entry, Mapping):
            raise DependencyRefused(f"{where} is not an object")
        if entry.get("link") or entry.get("inBundle"):
            raise DependencyRefused(f"{where} is a link or bundled package")
        version = entry.get("version")
        if not isinstance(version, str) or not _EXACT.fullmatch(version):
            raise DependencyRefused(f"{where} has no registry version ({version!r})")
        resolved = entry.get("resolved")
        if resolved is not None and (
            not isinstance(resolved, str) or not resolved.startswith(registry)
        ):
            raise DependencyRefused(f"{where} resolves to {resolved!r}, not {registry}")
        integrity = entry.get("integrity")
        if not isinstance(integrity, str) or _sha512_hex(integrity) is None:
            raise DependencyRefused(f"{where} has no sha512 integrity")


def npmrc_text(registry: str, cache: Path, cafile: Path | None = None) -> str:
    """The bot's npm configuration: the only one npm reads for a job."""
    settings: list[tuple[str, object]] = [("cafile", cafile)] if cafile is not None else []
    return "".join(
        f"{key}={value}\n"
        for key, value in (
            *settings,
            ("registry", registry),
            ("omit-lockfile-registry-resolved", "true"),
            ("cache", cache),
            ("ignore-scripts", "true"),
            ("git", NO_GIT),
            ("audit", "false"),
            ("fund", "false"),
            ("update-notifier", "false"),
            ("strict-ssl", "true"),
            ("save", "false"),
            ("engine-strict", "false"),
        )
    )


def _sha512_hex(integrity: str) -> str | None:
    for token in integrity.split():
        if token.startswith("sha512-"):
            try:
                raw = base64.b64decode(token[len("sha512-") :], validate=True)
            except ValueError:
                return None
            return raw.hex() if len(raw) == 64 else None
    return None


def _read_json(data: bytes | None, what: str) -> dict[str, Any]:
    if data is None:
        raise DependencyRefused(f"the plugin has no {what}")
    try:
        value = json.loads(data)
    except ValueError as exc:
        raise DependencyRefused(f"{what} is not JSON: {exc}") from None
    if not isinstance(value, dict):
        raise DependencyRefused(f"{what} is not a JSON object")
    return value


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
    """Clear the write bits of every file under ``root`` (directories stay writable so the
    bot can evict a tree; runs only ever see it through a read-only mount)."""
    for dirpath, _, filenames in os.walk(root):
        for name in filenames:
            path = os.path.join(dirpath, name)
            if not os.path.islink(path):
                os.chmod(path, os.stat(path).st_mode & ~0o222)


def _content_path(cache: Path, hex_digest: str) -> Path:
    """Where npm's cache (cacache) keeps a blob with this sha512."""
    return (
        cache
        / "_cacache"
        / "content-v2"
        / "sha512"
        / hex_digest[:2]
        / hex_digest[2:4]
        / (hex_digest[4:])
    )


def _file_sha512(path: Path) -> str:
    digest = hashlib.sha512()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def with_resolved(lock: Mapping[str, Any], registry: str) -> dict[str, Any]:
    """``lock`` with every package's tarball URL on ``registry`` written out, so npm
    fetches by URL and integrity (a seeded cache then serves it without a packument)."""
    filled: dict[str, Any] = json.loads(json.dumps(lock))
    for key, entry in filled["packages"].items():
        if key and "resolved" not in entry:
            name = key.rsplit("node_modules/", 1)[1]
            base = name.rsplit("/", 1)[-1]
            entry["resolved"] = f"{registry}{name}/-/{base}-{entry['version']}.tgz"
    return filled


def _lock_digests(lock: Mapping[str, Any]) -> set[str]:
    found: set[str] = set()
    for key, entry in (lock.get("packages") or {}).items():
        if key and isinstance(entry, Mapping) and isinstance(entry.get("integrity"), str):
            hex_digest = _sha512_hex(entry["integrity"])
            if hex_digest is not None:
                found.add(hex_digest)
    return found


@dataclass
class _Staging:
    """One npm run's bot-owned folders: the project, its npm cache and its config."""

    root: Path

    @property
    def project(self) -> Path:
        return self.root / "project"

    @property
    def cache(self) -> Path:
        return self.root / "npm-cache"

    @property
    def config(self) -> Path:
        return self.root / "config"

    def mounts(self) -> list[Mount]:
        return [
            Mount(self.project, self.project, writable=True),
            Mount(self.cache, self.cache, writable=True),
            Mount(self.config, self.config),
        ]


class DependencyCache:
    def __init__(
        self,
        root: Path,
        sandbox: Sandbox,
        node_version: str,
        registry: str = DEFAULT_REGISTRY,
        cafile: Path | None = None,
    ) -> None:
        self.root = root
        self.sandbox = sandbox
        self.node_version = node_version
        self.registry = registry if registry.endswith("/") else registry + "/"
        self.cafile = cafile
        self.trees = root / NODE_MODULES
        self.tarballs = root / "tarballs" / "sha512"
        self.staging_root = root / "staging"
        # flock excludes other processes; jobs of this process queue on an asyncio lock.
        self._building: dict[str, asyncio.Lock] = {}

    # ------------------------------------------------------------------ npm in staging

    def _new_staging(self, package: Mapping[str, Any], lock: Mapping[str, Any] | None) -> _Staging:
        staging = _Staging(self.staging_root / f"{uuid.uuid4().hex[:12]}")
        for folder in (staging.project, staging.cache, staging.config):
            folder.mkdir(parents=True, mode=0o755)
        (staging.project / PACKAGE_JSON).write_text(json.dumps(package, indent=2) + "\n")
        if lock is not None:
            (staging.project / PACKAGE_LOCK).write_text(json.dumps(lock, indent=2) + "\n")
        for name in (NPMRC, GLOBAL_NPMRC):
            npmrc = staging.config / name
            npmrc.write_text(npmrc_text(self.registry, staging.cache.resolve(), self.cafile))
            npmrc.chmod(0o644)
        return staging

    def _seed(self, staging: _Staging, digests: set[str]) -> None:
        """Copies (never links) of the verified tarballs this lockfile needs."""
        for hex_digest in digests:
            source = self.tarballs / hex_digest
            if source.is_file():
                target = _content_path(staging.cache, hex_digest)
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(source, target)

    def _promote(self, staging: _Staging, digests: set[str]) -> int:
        """Tarballs of the job's npm cache whose sha512 is a lockfile integrity."""
        promoted = 0
        self.tarballs.mkdir(parents=True, exist_ok=True)
        for hex_digest in digests:
            blob = _content_path(staging.cache, hex_digest)
            target = self.tarballs / hex_digest
            if target.exists() or blob.is_symlink() or not blob.is_file():
                continue
            if _file_sha512(blob) != hex_digest:
                continue
            temp = self.tarballs / f".{hex_digest}.{uuid.uuid4().hex[:8]}"
            shutil.copyfile(blob, temp)
            if _file_sha512(temp) == hex_digest:
                os.replace(temp, target)
                promoted += 1
            else:
                temp.unlink()
        return promoted

    async def _npm(
        self,
        staging: _Staging,
        argv: Sequence[str],
        limits: Limits,
        cancel: asyncio.Event | None,
    ) -> Result:
        npmrc = str((staging.config / NPMRC).resolve())
        global_npmrc = str((staging.config / GLOBAL_NPMRC).resolve())
        full = [
            *argv,
            f"--userconfig={npmrc}",
            f"--globalconfig={global_npmrc}",
            f"--cache={staging.cache.resolve()}",
            f"--registry={self.registry}",
            "--ignore-scripts",
            "--prefer-offline",
            *NPM_QUIET,
        ]
        env = {"npm_config_userconfig": npmrc, "npm_config_globalconfig": global_npmrc}
        # Network only here, and only npm with the bot's files runs.
        result = await self.sandbox.run(
            full,
            staging.project,
            limits,
            network=True,
            env=env,
            cancel=cancel,
            mounts=staging.mounts(),
        )
        if not result.ok:
            raise ProcessFailed(result)
        return result

    # ---------------------------------------------------------------------- install

    async def install(
        self,
        package_json: bytes | None,
        lock_text: bytes | None,
        install_argv: Sequence[str],
        limits: Limits,
        *,
        prepare: Path | None = None,
        cancel: asyncio.Event | None = None,
    ) -> InstallReport:
        """A read-only node_modules tree for the plugin's dependencies, from the cache
        when it can. ``package_json`` and ``lock_text`` are the bot's own copies;
        ``prepare`` is the pack's script run once in a new tree (see the module docstring)."""
        started = time.monotonic()
        commands: list[Result] = []
        package = staged_package(_read_json(package_json, PACKAGE_JSON))
        lock = _read_json(lock_text, PACKAGE_LOCK) if lock_text is not None else {}
        lock_updated = False
        if not lock or not lock_satisfies(package, lock):
            lock = await self._resolve(package, lock or None, limits, cancel, commands)
            lock_updated = True
        check_lock(lock, self.registry)
        key = lock_key(lock, self.node_version)
        if prepare is not None:
            key = hashlib.sha256(key.encode() + prepare.read_bytes()).hexdigest()[:32]
        tree = self.trees / key
        promoted = 0
        built = False
        if not (tree / COMPLETE_MARKER).exists():
            async with (
                self._building.setdefault(key, asyncio.Lock()),
                _file_lock(self.trees / f"{key}.lock"),
            ):
                if not (tree / COMPLETE_MARKER).exists():
                    promoted = await self._build_tree(
                        tree, package, lock, install_argv, prepare, limits, cancel, commands
                    )
                    built = True
        return InstallReport(
            key=key,
            cache_hit=not built,
            lock_updated=lock_updated,
            wall_s=time.monotonic() - started,
            commands=tuple(commands),
            node_modules=tree / NODE_MODULES,
            lock_text=(json.dumps(lock, indent=2, ensure_ascii=False) + "\n").encode(),
            promoted=promoted,
        )

    async def _resolve(
        self,
        package: Mapping[str, Any],
        lock: Mapping[str, Any] | None,
        limits: Limits,
        cancel: asyncio.Event | None,
        commands: list[Result],
    ) -> dict[str, Any]:
        """A new lockfile for ``package``, made by npm in staging (the old one as a start)."""
        staging = self._new_staging(package, lock)
        try:
            argv = ["npm", "install", "--package-lock-only"]
            commands.append(await self._npm(staging, argv, limits, cancel))
            return _read_json((staging.project / PACKAGE_LOCK).read_bytes(), PACKAGE_LOCK)
        finally:
            shutil.rmtree(staging.root, ignore_errors=True)

    async def _build_tree(
        self,
        tree: Path,
        package: Mapping[str, Any],
        lock: Mapping[str, Any],
        install_argv: Sequence[str],
        prepare: Path | None,
        limits: Limits,
        cancel: asyncio.Event | None,
        commands: list[Result],
    ) -> int:
        staging = self._new_staging(package, with_resolved(lock, self.registry))
        digests = _lock_digests(lock)
        try:
            await asyncio.to_thread(self._seed, staging, digests)
            commands.append(await self._npm(staging, install_argv, limits, cancel))
            built = staging.project / NODE_MODULES
            if built.is_symlink() or not built.is_dir():
                raise RuntimeError("the install wrote no node_modules")
            promoted = await asyncio.to_thread(self._promote, staging, digests)
            if prepare is not None:
                commands.append(await self._prepare(staging, prepare, limits, cancel))
            result_dir = self.trees / f".{tree.name}.{uuid.uuid4().hex[:8]}"
            result_dir.mkdir(parents=True)
            os.replace(built, result_dir / NODE_MODULES)
            await asyncio.to_thread(make_read_only, result_dir / NODE_MODULES)
            (result_dir / COMPLETE_MARKER).write_text(self.node_version + "\n")
            if tree.exists():
                shutil.rmtree(tree)
            os.replace(result_dir, tree)
            return promoted
        finally:
            shutil.rmtree(staging.root, ignore_errors=True)

    async def _prepare(
        self, staging: _Staging, script: Path, limits: Limits, cancel: asyncio.Event | None
    ) -> Result:
        """The pack's prepare script in the staging project: no network, only node."""
        copy = staging.project / PREPARE_SCRIPT
        shutil.copyfile(script, copy)
        copy.chmod(0o644)
        try:
            result = await self.sandbox.run(
                ["node", PREPARE_SCRIPT],
                staging.project,
                limits,
                network=False,
                cancel=cancel,
                mounts=[Mount(staging.project, staging.project, writable=True)],
            )
        finally:
            copy.unlink(missing_ok=True)
        if not result.ok:
            raise ProcessFailed(result)
        return result

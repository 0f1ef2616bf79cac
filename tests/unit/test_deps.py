"""The dependency cache, with npm replaced by a recording fake at the sandbox seam."""

import asyncio
import json
import os
import stat
from pathlib import Path

import pytest

from bot.deps import COMPLETE_MARKER, DependencyCache, lock_key
from bot.sandbox import Limits, ProcessFailed, Result

INSTALL = ("npm", "ci", "--ignore-scripts")
LOCK = {
    "name": "plugin-a",
    "version": "0.1.0",
    "lockfileVersion": 3,
    "packages": {
        "": {"name": "plugin-a", "version": "0.1.0", "dependencies": {"left-pad": "1.3.0"}},
        "node_modules/left-pad": {"version": "1.3.0", "integrity": "sha512-x"},
    },
}


def result(argv: list[str], code: int = 0) -> Result:
    return Result(tuple(argv), code, None, False, False, "", "", False, 0, "0" * 64, 0.1, 0.0)


class FakeNpm:
    """Stands in for the sandbox: records argv and lays out what npm would."""

    def __init__(self, fail: bool = False) -> None:
        self.calls: list[tuple[list[str], Path, bool]] = []
        self.writable: list[list[Path]] = []
        self.fail = fail

    async def run(
        self,
        argv: list[str],
        workdir: Path,
        limits: Limits,
        *,
        network: bool = False,
        writable: list[Path] | None = None,
        cancel: asyncio.Event | None = None,
    ) -> Result:
        self.calls.append((list(argv), workdir, network))
        self.writable.append(list(writable or []))
        await asyncio.sleep(0.05)
        if self.fail:
            return result(argv, 1)
        if argv[:2] == ["npm", "ci"]:
            pkg = workdir / "node_modules" / "left-pad"
            pkg.mkdir(parents=True)
            (pkg / "index.js").write_text("module.exports = 1;\n")
            (workdir / "node_modules" / ".bin").mkdir()
            os.symlink("../left-pad/index.js", workdir / "node_modules" / ".bin" / "left-pad")
        if "--package-lock-only" in argv:
            lock = json.loads((workdir / "package-lock.json").read_text())
            pkg = json.loads((workdir / "package.json").read_text())
            lock["packages"][""]["dependencies"] = pkg["dependencies"]
            lock["packages"]["node_modules/zod"] = {"version": "4.0.0"}
            (workdir / "package-lock.json").write_text(json.dumps(lock))
        return result(argv)


def plugin(root: Path, name: str = "plugin-a", deps: dict[str, str] | None = None) -> Path:
    root.mkdir(parents=True)
    lock = json.loads(json.dumps(LOCK))
    lock["name"] = lock["packages"][""]["name"] = name
    (root / "package-lock.json").write_text(json.dumps(lock))
    package = {"name": name, "version": "0.1.0", "dependencies": deps or {"left-pad": "1.3.0"}}
    (root / "package.json").write_text(json.dumps(package))
    return root


def cache(tmp_path: Path, npm: FakeNpm) -> DependencyCache:
    return DependencyCache(tmp_path / "cache", npm, "20.20.2")  # type: ignore[arg-type]


async def test_a_miss_installs_once_with_scripts_off_through_the_shared_cache(
    tmp_path: Path,
) -> None:
    npm = FakeNpm()
    deps = cache(tmp_path, npm)
    report = await deps.install(plugin(tmp_path / "a"), INSTALL, Limits())
    assert not report.cache_hit and len(report.commands) == 1
    ((argv, workdir, network),) = npm.calls
    assert argv[:3] == list(INSTALL) and "--ignore-scripts" in argv
    assert f"--cache={(tmp_path / 'cache' / 'npm').resolve()}" in argv
    assert "--prefer-offline" in argv
    assert network is True
    assert npm.writable == [[tmp_path / "cache" / "npm"]]  # the npm cache, and nothing else
    assert workdir != tmp_path / "a"  # built in the cache's staging dir, not the workspace
    tree = tmp_path / "cache" / "node_modules" / report.key
    assert (tree / COMPLETE_MARKER).exists()
    assert (tmp_path / "a" / "node_modules" / "left-pad" / "index.js").exists()


async def test_a_hit_runs_no_npm_and_links_the_cached_tree(tmp_path: Path) -> None:
    npm = FakeNpm()
    deps = cache(tmp_path, npm)
    first = await deps.install(plugin(tmp_path / "a"), INSTALL, Limits())
    second = await deps.install(plugin(tmp_path / "b", name="plugin-b"), INSTALL, Limits())
    assert second.cache_hit and second.commands == () and not second.downloaded
    assert second.key == first.key
    assert len(npm.calls) == 1
    cached = tmp_path / "cache" / "node_modules" / first.key / "node_modules"
    linked = tmp_path / "b" / "node_modules"
    assert (linked / "left-pad" / "index.js").stat().st_ino == (
        cached / "left-pad" / "index.js"
    ).stat().st_ino
    assert os.readlink(linked / ".bin" / "left-pad") == "../left-pad/index.js"
    # Cached files are read-only, so a tool writing into node_modules cannot change them.
    assert not (cached / "left-pad" / "index.js").stat().st_mode & (
        stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH
    )
    # The workspace's directories are its own: adding files there leaves the cache alone.
    (linked / "left-pad" / "extra.js").write_text("x")
    assert not (cached / "left-pad" / "extra.js").exists()


def test_the_key_ignores_the_plugins_name_and_version() -> None:
    other = json.loads(json.dumps(LOCK))
    other["name"] = other["packages"][""]["name"] = "plugin-zzz"
    other["version"] = other["packages"][""]["version"] = "9.9.9"
    assert lock_key(LOCK, "20.1.0") == lock_key(other, "20.1.0")


def test_the_key_changes_with_packages_and_node_major() -> None:
    changed = json.loads(json.dumps(LOCK))
    changed["packages"]["node_modules/left-pad"]["version"] = "1.3.1"
    assert lock_key(LOCK, "20.1.0") != lock_key(changed, "20.1.0")
    assert lock_key(LOCK, "20.1.0") == lock_key(LOCK, "20.9.0")
    assert lock_key(LOCK, "20.1.0") != lock_key(LOCK, "22.1.0")


@pytest.mark.parametrize(
    "root_change",
    [
        {"dependencies": {"left-pad": "^1.3.0"}},  # the range the root asks for
        {"dependencies": {}, "devDependencies": {"left-pad": "1.3.0"}},  # moved to dev
        {"optionalDependencies": {"left-pad": "1.3.0"}},
    ],
    ids=["range", "moved-to-dev", "optional"],
)
def test_the_key_changes_with_the_root_dependency_lists(root_change: dict) -> None:
    # Same resolved packages; only what the root package asks for differs. npm ci checks the
    # root lists against package.json, so a tree built for one must not serve the other.
    changed = json.loads(json.dumps(LOCK))
    changed["packages"][""].update(root_change)
    assert changed["packages"]["node_modules/left-pad"] == LOCK["packages"]["node_modules/left-pad"]
    assert lock_key(LOCK, "20.1.0") != lock_key(changed, "20.1.0")


async def test_a_package_json_asking_for_more_updates_the_lock_first(tmp_path: Path) -> None:
    npm = FakeNpm()
    deps = cache(tmp_path, npm)
    workdir = plugin(tmp_path / "a", deps={"left-pad": "1.3.0", "zod": "^4.0.0"})
    report = await deps.install(workdir, INSTALL, Limits())
    assert report.lock_updated
    lock_only = npm.calls[0][0]
    assert lock_only[:3] == ["npm", "install", "--package-lock-only"]
    assert "--ignore-scripts" in lock_only
    assert "node_modules/zod" in json.loads((workdir / "package-lock.json").read_text())["packages"]


async def test_a_failed_install_leaves_no_tree_behind(tmp_path: Path) -> None:
    deps = cache(tmp_path, FakeNpm(fail=True))
    with pytest.raises(ProcessFailed):
        await deps.install(plugin(tmp_path / "a"), INSTALL, Limits())
    trees = tmp_path / "cache" / "node_modules"
    assert [p.name for p in trees.iterdir() if not p.name.endswith(".lock")] == []


async def test_concurrent_jobs_with_one_lockfile_build_the_tree_once(tmp_path: Path) -> None:
    npm = FakeNpm()
    deps = cache(tmp_path, npm)
    reports = await asyncio.gather(
        *(deps.install(plugin(tmp_path / f"p{i}"), INSTALL, Limits()) for i in range(4))
    )
    assert len(npm.calls) == 1
    assert sum(not r.cache_hit for r in reports) == 1
    for i in range(4):
        assert (tmp_path / f"p{i}" / "node_modules" / "left-pad" / "index.js").exists()

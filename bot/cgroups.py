"""A memory and process cgroup for each sandboxed run, where the host lets the bot make one.

rlimits are per process and miss memory that is not a process's data segment (a
``MAP_SHARED`` anonymous mapping, files in a tmpfs such as ``/tmp`` or ``/dev/shm``); a
memory cgroup counts all of it for every process of the run together, and a pids cgroup
bounds the run's tasks whatever uid they run as.

Where the cgroups go (:meth:`CgroupHost.detect`):

* **cgroup v2 with delegation**: the bot's own cgroup (or ``SANDBOX_CGROUP_PARENT``) is
  writable and has ``memory`` and ``pids`` in its ``cgroup.subtree_control`` (for example a
  systemd unit with ``Delegate=memory pids`` whose main process sits in a leaf below it).
* **cgroup v1 as root**: the ``memory`` and ``pids`` hierarchies, below the bot's own
  cgroup in each.
* **neither**: no cgroup (``SANDBOX_CGROUPS=auto``), and only the rlimits hold; with
  ``SANDBOX_CGROUPS=required`` the bot refuses to start instead.

A run joins its cgroup before anything of it starts, without ``preexec_fn``: the argv is
prefixed with a tiny Python helper (:data:`ENTER_HELPER`) that writes its own pid into the
cgroup's ``cgroup.procs`` files and then ``exec``s the real argv, so every process the run
ever makes is born inside. After the run every process left in it is killed and the
cgroup removed.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

CgroupMode = Literal["auto", "required", "off"]
BASE_NAME = "plugin-bot"
REMOVE_WAIT_S = 2.0
HELPER_FAILED = 125
# Joins the cgroups named before "--", then becomes the argv after it. -I -S: nothing from
# the environment or site-packages runs before the exec.
ENTER_HELPER = (
    "import os, sys\n"
    "cut = sys.argv.index('--')\n"
    "try:\n"
    "    for procs in sys.argv[1:cut]:\n"
    "        with open(procs, 'w') as f:\n"
    "            f.write(str(os.getpid()))\n"
    "except OSError as e:\n"
    "    sys.stderr.write(f'plugin-bot: cannot join the run cgroup: {e}\\n')\n"
    f"    sys.exit({HELPER_FAILED})\n"
    "os.execvp(sys.argv[cut + 1], sys.argv[cut + 1:])\n"
)


class CgroupError(Exception):
    """A cgroup was required and cannot be made here."""


def _mounts() -> list[tuple[str, str, set[str]]]:
    """(mount point, fs type, options) of the cgroup file systems."""
    found = []
    for line in Path("/proc/self/mounts").read_text().splitlines():
        parts = line.split()
        if len(parts) >= 4 and parts[2] in ("cgroup", "cgroup2"):
            found.append((parts[1], parts[2], set(parts[3].split(","))))
    return found


def _own_cgroups() -> dict[str, str]:
    """Controller (``""`` for v2) → this process's cgroup path, from /proc/self/cgroup."""
    own: dict[str, str] = {}
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        for name in controllers.split(",") if controllers else [""]:
            own[name] = path
    return own


def _writable_dir(path: Path) -> bool:
    return path.is_dir() and os.access(path, os.W_OK | os.X_OK)


@dataclass(frozen=True)
class RunCgroup:
    """One run's cgroup: a directory per hierarchy (v1: memory and pids; v2: one)."""

    version: Literal[1, 2]
    dirs: tuple[Path, ...]

    def enter_argv(self) -> list[str]:
        """The prefix that puts the process into this cgroup before it runs ``argv``."""
        procs = [str(d / "cgroup.procs") for d in self.dirs]
        return [sys.executable, "-I", "-S", "-c", ENTER_HELPER, *procs, "--"]

    def oom_killed(self) -> bool:
        """Whether the kernel killed a process of the run for the memory cap."""
        events = self.dirs[0] / ("memory.events" if self.version == 2 else "memory.oom_control")
        try:
            for line in events.read_text().splitlines():
                key, _, value = line.partition(" ")
                if key == "oom_kill" and int(value) > 0:
                    return True
        except (OSError, ValueError):
            return False
        return False

    def pids(self) -> list[int]:
        found: set[int] = set()
        for d in self.dirs:
            with contextlib.suppress(OSError):
                found.update(int(p) for p in (d / "cgroup.procs").read_text().split())
        return sorted(found)

    def kill_all(self) -> None:
        if self.version == 2:
            with contextlib.suppress(OSError):
                (self.dirs[0] / "cgroup.kill").write_text("1")
        for pid in self.pids():
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)

    def remove(self) -> None:
        """Kill what is left of the run, then remove the cgroup (retried while it empties)."""
        deadline = time.monotonic() + REMOVE_WAIT_S
        for d in self.dirs:
            while True:
                self.kill_all()
                try:
                    d.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.02)


@dataclass(frozen=True)
class CgroupHost:
    """Where this process may create run cgroups: one parent per hierarchy."""

    version: Literal[1, 2]
    parents: tuple[Path, ...]  # v1: (memory, pids); v2: (the delegated cgroup,)

    @classmethod
    def detect(cls, mode: CgroupMode, parent: Path | None = None) -> CgroupHost | None:
        """The cgroups this host offers; None when there are none and ``mode`` allows it."""
        if mode == "off":
            return None
        host = cls._v2(parent) or (cls._v1() if parent is None else None)
        if host is not None:
            try:
                host.create(memory_bytes=64 * 1024**2, processes=16).remove()
                host.sweep()
                return host
            except OSError as exc:
                why = f"creating a cgroup in {host.parents[0]} failed: {exc}"
        else:
            why = (
                "no writable cgroup v2 with memory and pids delegated, and no cgroup v1 "
                "memory and pids hierarchies writable by this process"
            )
        if mode == "required":
            raise CgroupError(f"SANDBOX_CGROUPS=required but {why}")
        return None

    @classmethod
    def _v2(cls, parent: Path | None) -> CgroupHost | None:
        if parent is None:
            mount = next((m for m, kind, _ in _mounts() if kind == "cgroup2"), None)
            own = _own_cgroups().get("")
            if mount is None or own is None:
                return None
            parent = Path(mount) / own.lstrip("/")
        try:
            enabled = set((parent / "cgroup.subtree_control").read_text().split())
        except OSError:
            return None
        if {"memory", "pids"} <= enabled and _writable_dir(parent):
            return cls(2, (parent,))
        return None

    @classmethod
    def _v1(cls) -> CgroupHost | None:
        own = _own_cgroups()
        parents: list[Path] = []
        for controller in ("memory", "pids"):
            mount = next(
                (m for m, kind, opts in _mounts() if kind == "cgroup" and controller in opts),
                None,
            )
            if mount is None or controller not in own:
                return None
            here = Path(mount) / own[controller].lstrip("/")
            base = here / BASE_NAME
            if not (_writable_dir(base) or _writable_dir(here)):
                return None
            parents.append(base)
        return cls(1, tuple(parents))

    def sweep(self) -> None:
        """Remove run cgroups left by bot processes that died without cleaning up."""
        for parent in self.parents:
            with contextlib.suppress(OSError):
                for d in parent.iterdir():
                    pid = d.name.split("-")[1] if d.name.startswith("run-") else ""
                    if pid.isdigit() and not Path(f"/proc/{pid}").exists():
                        with contextlib.suppress(OSError):
                            RunCgroup(self.version, (d,)).remove()

    def create(self, *, memory_bytes: int | None, processes: int | None) -> RunCgroup:
        """A fresh cgroup with these caps (``None``: no cap of that kind)."""
        name = f"run-{os.getpid()}-{uuid.uuid4().hex[:12]}"
        dirs = tuple(p / name for p in self.parents)
        group = RunCgroup(self.version, dirs)
        try:
            for d in dirs:
                d.parent.mkdir(mode=0o755, exist_ok=True)
                d.mkdir(mode=0o755)
            self._limit(group, memory_bytes, processes)
        except OSError:
            with contextlib.suppress(OSError):
                group.remove()
            raise
        return group

    def _limit(self, group: RunCgroup, memory_bytes: int | None, processes: int | None) -> None:
        if self.version == 2:
            d = group.dirs[0]
            if memory_bytes is not None:
                (d / "memory.max").write_text(str(memory_bytes))
                with contextlib.suppress(OSError):  # no swap accounting on this kernel
                    (d / "memory.swap.max").write_text("0")
            if processes is not None:
                (d / "pids.max").write_text(str(processes))
            return
        memory, pids = group.dirs
        if memory_bytes is not None:
            (memory / "memory.limit_in_bytes").write_text(str(memory_bytes))
            swap = memory / "memory.memsw.limit_in_bytes"
            if swap.exists():  # memory + swap no larger than memory: no swapping out of it
                swap.write_text(str(memory_bytes))
        if processes is not None:
            (pids / "pids.max").write_text(str(processes))

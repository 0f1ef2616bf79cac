"""Run one argv with limits: the only place in the bot that starts processes.

Every run gets a clean environment (nothing of the bot's own), its own session and
process group (so a timeout or a cancel kills the whole tree), output read as it
comes and capped (head and tail kept, the full stream hashed), and resource limits
applied by ``prlimit`` as an exec wrapper. Backends decide how the argv is wrapped:
``DirectBackend`` runs it on the host (development and trusted commands only);
``BwrapBackend`` runs it in bubblewrap (the default, and the only choice for untrusted code).

The bubblewrap sandbox: new user, pid, net, ipc, uts, mount and cgroup namespaces; uid and
gid 1000 inside, no capabilities, no nested user namespaces; ``/usr`` and a few files of
``/etc`` read-only; a fresh ``/proc``, a minimal read-only ``/dev`` with its own size-capped
``/dev/shm``, a size-capped tmpfs ``/tmp`` (also HOME and TMPDIR); the workspace is the
only writable bind (plus what the caller passes explicitly), unless the caller lays out the
run's files itself with ``Mount``s: build and test runs see the plugin's files read-only
over a tmpfs and write only their declared outputs (``bot.workspace.run_layout``), installs
only their staging folder. The network namespace has only its own loopback unless the
caller asks for the network (dependency installs).

Bounding the number of processes: RLIMIT_NPROC is ignored for processes whose real uid
is 0 on the host, and a bubblewrap started by root maps the sandbox uid to host uid 0.
So when the bot runs as root, bubblewrap itself is started as an unprivileged host uid
(``setpriv --reuid/--regid --clear-groups``, ``Settings.sandbox_uid``); its user namespace
is then unprivileged, host uid 0 is not mapped at all, and RLIMIT_NPROC (set by ``prlimit``
inside) is counted per run, because every run has its own user namespace. The workspace
(and any extra writable bind) is handed to that uid before the run and taken back after
it: directories and single-link files are chowned to the sandbox uid, everything is chowned
back to the bot afterwards (set-id bits cleared, symlinks never followed); files with more
than one link stay the bot's. Only writable mounts are handed over; the shared
``node_modules`` reaches a run as a read-only mount, so no uid can write or chmod it.
When the bot is not root, bubblewrap runs as the bot's own uid and nothing is chowned.

Where the host lets the bot make cgroups (``bot/cgroups.py``), every run also gets its own
memory and pids cgroup, joined before anything of the run starts and emptied and removed
after it; and a run whose workdir goes past the per-job caps on bytes or names
(``bot/quota.py``, looked at while it runs and once after) is stopped and says why.

Long-lived runs: ``Sandbox.start`` starts a command exactly as ``run`` would (backend, layout,
limits, cgroup, no network) and hands back a ``LiveRun`` that the caller talks to through a
writable mount and ends with ``stop``; its deadline and the cancel signal still kill its
whole group (the generate loop's warm checker, ``bot/pipeline/warm.py``).

Killing: bubblewrap runs with ``--die-with-parent`` and its own pid namespace, so killing
the process group of the outer bubblewrap (what a timeout or cancel does) kills the
namespace's init and with it every process of the run, including ones that called
``setsid`` or double-forked.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Protocol

import structlog

from bot.cgroups import CgroupError, CgroupHost, RunCgroup
from bot.metrics import METRICS
from bot.quota import over_cap
from bot.settings import Settings

logger = structlog.get_logger("bot.sandbox")

READ_CHUNK = 65536
DRAIN_AFTER_EXIT_S = 0.5
REAP_WAIT_S = 5.0
SYSTEM_PATH = ("/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin")
INSTALL_HINT = (
    "install bubblewrap (Debian/Ubuntu: `apt-get install -y bubblewrap`) and make sure "
    "user namespaces are allowed; SANDBOX=none runs untrusted code on the host and exists "
    "for development only"
)
UNSAFE_WARNING = (
    "SANDBOX=none: commands run on the host without isolation; use this for development only"
)


class SandboxError(Exception):
    """The sandbox could not run a command at all."""


class ProcessFailed(SandboxError):
    """A command ran and did not succeed."""

    def __init__(self, result: Result, what: str | None = None) -> None:
        self.result = result
        super().__init__(f"{what or result.command} {result.describe_outcome()}")


@dataclass(frozen=True)
class Limits:
    """Limits for one command. ``None`` means the host's own limit."""

    timeout_s: float = 300.0
    output_bytes: int = 1_000_000
    cpu_s: int | None = None
    memory_bytes: int | None = None
    file_size_bytes: int | None = None
    open_files: int | None = None
    processes: int | None = None
    kill_grace_s: float = 1.0
    tmpfs_bytes: int | None = None
    # Hardening (issue 9): /dev/shm's size, and the caps on what the workdir may hold.
    shm_bytes: int | None = None
    workspace_bytes: int | None = None
    workspace_files: int | None = None
    workspace_poll_s: float = 1.0

    @classmethod
    def from_settings(cls, settings: Settings) -> Limits:
        return cls(
            timeout_s=settings.command_timeout_s,
            output_bytes=settings.output_limit_bytes,
            cpu_s=settings.sandbox_cpu_s,
            memory_bytes=settings.sandbox_memory_bytes,
            file_size_bytes=settings.sandbox_file_size_bytes,
            open_files=settings.sandbox_open_files,
            processes=settings.sandbox_processes,
            kill_grace_s=settings.kill_grace_s,
            tmpfs_bytes=settings.sandbox_tmpfs_bytes,
            shm_bytes=settings.sandbox_shm_bytes,
            workspace_bytes=settings.workspace_max_bytes,
            workspace_files=settings.workspace_max_files,
            workspace_poll_s=settings.workspace_poll_s,
        )

    def with_timeout(self, timeout_s: float) -> Limits:
        return replace(self, timeout_s=max(0.001, min(self.timeout_s, timeout_s)))

    def prlimit_args(self) -> list[str]:
        pairs = [
            ("--cpu", self.cpu_s),
            # The data segment, not the address space: V8 reserves many GB it never uses.
            ("--data", self.memory_bytes),
            ("--fsize", self.file_size_bytes),
            ("--nofile", self.open_files),
            ("--nproc", self.processes),
        ]
        return [f"{flag}={value}" for flag, value in pairs if value is not None]


@dataclass(frozen=True)
class Result:
    argv: tuple[str, ...]
    exit_code: int | None
    signal: int | None
    timed_out: bool
    cancelled: bool
    head: str
    tail: str
    truncated: bool
    output_bytes: int
    output_sha256: str
    wall_s: float
    cpu_s: float
    memory_capped: bool = False  # the run cgroup's memory cap killed a process
    workspace_exceeded: str | None = None  # why the run was stopped for the workspace caps

    @property
    def ok(self) -> bool:
        if self.workspace_exceeded is not None:
            return False
        return self.exit_code == 0 and not (self.timed_out or self.cancelled)

    @property
    def command(self) -> str:
        return " ".join(self.argv)

    @property
    def output(self) -> str:
        """The captured output; when it was capped, a marker stands for the gap."""
        if not self.truncated:
            return self.head + self.tail
        omitted = self.output_bytes - len(self.head.encode()) - len(self.tail.encode())
        return f"{self.head}\n… [{max(omitted, 0)} bytes omitted] …\n{self.tail}"

    def output_tail(self, lines: int = 40) -> str:
        return "\n".join(self.output.rstrip("\n").splitlines()[-lines:])

    def describe_outcome(self) -> str:
        if self.workspace_exceeded is not None:
            return f"was stopped: {self.workspace_exceeded}"
        if self.cancelled:
            return "was cancelled"
        if self.timed_out:
            return f"timed out after {self.wall_s:.0f}s"
        if self.memory_capped:
            return "was killed: the run reached its memory cap (SANDBOX_MEMORY_BYTES)"
        if self.signal is not None:
            try:
                name = signal.Signals(self.signal).name
            except ValueError:
                name = str(self.signal)
            return f"was killed by signal {name}"
        return f"exited with code {self.exit_code}"


class _OutputCapture:
    """Keeps the first and last ``limit/2`` bytes of a stream and hashes all of it."""

    def __init__(self, limit: int) -> None:
        self.head_limit = limit // 2
        self.tail_limit = limit - self.head_limit
        self.head = bytearray()
        self.tail = bytearray()
        self.total = 0
        self.digest = hashlib.sha256()

    def feed(self, data: bytes) -> None:
        self.total += len(data)
        self.digest.update(data)
        room = self.head_limit - len(self.head)
        if room > 0:
            self.head += data[:room]
            data = data[room:]
        if data:
            self.tail += data
            if len(self.tail) > self.tail_limit:
                del self.tail[: len(self.tail) - self.tail_limit]

    @property
    def truncated(self) -> bool:
        return self.total > len(self.head) + len(self.tail)


@dataclass(frozen=True)
class Mount:
    """One entry of a run's bind layout (see ``Sandbox.run``).

    ``source`` appears at ``target``, read-only unless ``writable``; ``source=None`` is an
    empty tmpfs, so what a run writes there vanishes with it. Later entries are mounted
    over earlier ones.
    """

    target: Path
    source: Path | None = None
    writable: bool = False


class Backend(Protocol):
    @property
    def name(self) -> str: ...

    def wrap(
        self,
        argv: Sequence[str],
        workdir: Path,
        limits: Limits,
        network: bool,
        writable: Sequence[Path] = (),
        env: Mapping[str, str] | None = None,
        mounts: Sequence[Mount] = (),
    ) -> list[str]:
        """The argv to execute on the host for ``argv`` run inside this backend.

        ``env`` is the environment the command must see; a backend that does not pass it
        itself leaves it to the process it starts (``DirectBackend``).
        """
        ...

    def host_environment(self, env: Mapping[str, str]) -> dict[str, str]:
        """The environment of the host process that ``wrap`` returned the argv of."""
        ...

    def prepare(self, paths: Sequence[Path]) -> None:
        """Make ``paths`` writable for the run (before it)."""
        ...

    def reclaim(self, paths: Sequence[Path]) -> None:
        """Give ``paths`` back to the bot (after the run, also after a failure)."""
        ...


def _system_tool(name: str) -> str:
    found = shutil.which(name, path=os.pathsep.join(SYSTEM_PATH))
    if found is None:
        raise SandboxError(f"{name} is needed to run commands; {INSTALL_HINT}")
    return found


@dataclass(frozen=True)
class DirectBackend:
    """Runs on the host with rlimits only. Not isolation: for trusted commands and dev."""

    name: str = "none"

    def wrap(
        self,
        argv: Sequence[str],
        workdir: Path,
        limits: Limits,
        network: bool,
        writable: Sequence[Path] = (),
        env: Mapping[str, str] | None = None,
        mounts: Sequence[Mount] = (),
    ) -> list[str]:
        # No mounts on the host: the caller's files are used in place (development only).
        wrapper = limits.prlimit_args()
        if not wrapper:
            return list(argv)
        prlimit = shutil.which("prlimit", path=os.pathsep.join(SYSTEM_PATH))
        if prlimit is None:
            raise SandboxError("prlimit (util-linux) is needed to apply resource limits")
        return [prlimit, *wrapper, "--", *argv]

    def host_environment(self, env: Mapping[str, str]) -> dict[str, str]:
        return dict(env)

    def prepare(self, paths: Sequence[Path]) -> None:
        pass

    def reclaim(self, paths: Sequence[Path]) -> None:
        pass


HOSTS_FILE = "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"
# Read-only files of /etc a program may need; resolv.conf only with the network.
ETC_FILES = (
    "/etc/ssl",
    "/etc/ca-certificates",
    "/etc/alternatives",
    "/etc/ld.so.cache",
    "/etc/nsswitch.conf",
    "/etc/localtime",
)
SANDBOX_HOME = "/tmp"  # noqa: S108 - inside the sandbox: its own tmpfs
SANDBOX_ID = 1000


def write_hosts_file(directory: Path) -> Path:
    """The sandbox's /etc/hosts (localhost only), readable by everyone."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "hosts"
    if not path.is_file() or path.read_text() != HOSTS_FILE:
        tmp = directory / f".hosts.{os.getpid()}"
        tmp.write_text(HOSTS_FILE)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    return path.resolve()


def _searchable_by_others(path: Path, uid: int) -> None:
    """bubblewrap opens the workspace as the sandbox uid: every parent must let it pass."""
    for parent in path.parents:
        st = parent.stat()
        if st.st_uid != uid and not st.st_mode & 0o001:
            raise SandboxError(
                f"{parent} is not searchable by the sandbox uid {uid}, so {path} cannot be "
                "mounted in the sandbox; keep BOT_RUNTIME_DIR (default BOT_DATA_DIR) and its "
                "parents mode 0755 or 0711"
            )


def _chown_tree(root: Path, uid: int, gid: int, *, only_single_links: bool) -> None:
    """lchown ``root`` and everything below it; never follows a symlink."""

    def one(path: str, is_dir: bool) -> None:
        st = os.lstat(path)
        if not is_dir and only_single_links and st.st_nlink > 1 and st.st_uid != uid:
            return
        if (st.st_uid, st.st_gid) != (uid, gid):
            os.chown(path, uid, gid, follow_symlinks=False)
        mode = st.st_mode
        if not os.path.islink(path) and mode & 0o6000:
            os.chmod(path, mode & 0o1777)

    one(str(root), True)
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames:
            # os.walk lists symlinks to directories among dirnames without entering them.
            path = os.path.join(dirpath, name)
            one(path, not os.path.islink(path))
        for name in filenames:
            one(os.path.join(dirpath, name), False)


@dataclass(frozen=True)
class BwrapBackend:
    """Runs in bubblewrap: only the workspace writable, no network unless asked for.

    ``run_as`` is the host uid bubblewrap is started as when the bot is root (see the
    module docstring); ``None`` runs it as the bot's own uid.
    """

    hosts_file: Path
    run_as: int | None = None
    bwrap: str = field(default_factory=lambda: _system_tool("bwrap"))
    prlimit: str = field(default_factory=lambda: _system_tool("prlimit"))
    name: str = "bwrap"

    @classmethod
    def for_host(cls, state_dir: Path, sandbox_uid: int) -> BwrapBackend:
        """The backend for this process: drops to ``sandbox_uid`` when running as root."""
        run_as = sandbox_uid if os.geteuid() == 0 else None
        return cls(hosts_file=write_hosts_file(state_dir), run_as=run_as)

    def wrap(
        self,
        argv: Sequence[str],
        workdir: Path,
        limits: Limits,
        network: bool,
        writable: Sequence[Path] = (),
        env: Mapping[str, str] | None = None,
        mounts: Sequence[Mount] = (),
    ) -> list[str]:
        outer: list[str] = []
        if self.run_as is not None:
            setpriv = _system_tool("setpriv")
            uid = str(self.run_as)
            outer = [setpriv, f"--reuid={uid}", f"--regid={uid}", "--clear-groups", "--"]
            sources = [m.source for m in mounts if m.source is not None]
            for path in (*(sources if mounts else [workdir]), *writable, self.hosts_file):
                _searchable_by_others(path, self.run_as)
        box = [
            self.bwrap,
            "--unshare-all",
            "--unshare-user",
            "--disable-userns",
            "--uid", str(SANDBOX_ID),
            "--gid", str(SANDBOX_ID),
            "--die-with-parent",
            "--new-session",
            "--clearenv",
            "--cap-drop", "ALL",
            "--hostname", "sandbox",
            "--ro-bind", "/usr", "/usr",
        ]  # fmt: skip
        for top in ("bin", "sbin", "lib", "lib32", "lib64", "libx32"):
            host = Path("/") / top
            if host.is_symlink():
                box += ["--symlink", os.readlink(host), str(host)]
            elif host.is_dir():
                box += ["--ro-bind", str(host), str(host)]
        for etc in ETC_FILES:
            box += ["--ro-bind-try", etc, etc]
        box += ["--ro-bind", str(self.hosts_file), "/etc/hosts"]
        if network:
            box += ["--share-net", "--ro-bind-try", "/etc/resolv.conf", "/etc/resolv.conf"]
        box += ["--proc", "/proc", "--dev", "/dev"]
        # /dev read-only (its device nodes still work); /dev/shm its own size-capped tmpfs.
        if limits.shm_bytes is not None:
            box += ["--size", str(limits.shm_bytes)]
        box += ["--perms", "1777", "--tmpfs", "/dev/shm", "--remount-ro", "/dev"]  # noqa: S108
        if limits.tmpfs_bytes is not None:
            box += ["--size", str(limits.tmpfs_bytes)]
        box += ["--tmpfs", SANDBOX_HOME]
        box += _bind_layout(workdir, writable, mounts, limits)
        # The root is bubblewrap's own tmpfs (mount points live there): read-only, so the
        # only places a run can write are /tmp (size-capped) and the writable binds.
        box += ["--remount-ro", "/", "--chdir", str(workdir)]
        inner_env = dict(env or {})
        inner_env.update(HOME=SANDBOX_HOME, TMPDIR=SANDBOX_HOME)
        for key, value in sorted(inner_env.items()):
            box += ["--setenv", key, value]
        box += ["--", self.prlimit, *limits.prlimit_args(), "--", *argv]
        return [*outer, *box]

    def host_environment(self, env: Mapping[str, str]) -> dict[str, str]:
        # bubblewrap clears the environment and sets the command's with --setenv.
        return {"PATH": os.pathsep.join(SYSTEM_PATH), "LANG": "C.UTF-8"}

    def prepare(self, paths: Sequence[Path]) -> None:
        if self.run_as is not None:
            for path in paths:
                _chown_tree(path, self.run_as, self.run_as, only_single_links=True)

    def reclaim(self, paths: Sequence[Path]) -> None:
        if self.run_as is not None:
            for path in paths:
                _chown_tree(path, os.geteuid(), os.getegid(), only_single_links=False)


def _bind_layout(
    workdir: Path, writable: Sequence[Path], mounts: Sequence[Mount], limits: Limits
) -> list[str]:
    """bwrap arguments for the run's files: ``mounts`` when given, else ``workdir``
    writable; then the extra ``writable`` binds."""
    args: list[str] = []
    if not mounts:
        args += ["--bind", str(workdir), str(workdir)]
    for mount in mounts:
        if mount.source is None:
            if limits.tmpfs_bytes is not None:
                args += ["--size", str(limits.tmpfs_bytes)]
            args += ["--tmpfs", str(mount.target)]
        else:
            flag = "--bind" if mount.writable else "--ro-bind"
            args += [flag, str(mount.source), str(mount.target)]
    for path in writable:
        args += ["--bind", str(path), str(path)]
    return args


def tool_path() -> str:
    """PATH for commands: where node and npm live, then the system folders."""
    dirs: list[str] = []
    for tool in ("node", "npm"):
        found = shutil.which(tool)
        if found and str(Path(found).parent) not in dirs:
            dirs.append(str(Path(found).parent))
    for d in SYSTEM_PATH:
        if d not in dirs:
            dirs.append(d)
    return os.pathsep.join(dirs)


@dataclass
class Sandbox:
    """Runs commands through one backend with a clean environment and limits."""

    backend: Backend = field(default_factory=DirectBackend)
    limits: Limits = field(default_factory=Limits)
    path: str = field(default_factory=tool_path)
    cgroups: CgroupHost | None = None  # where each run gets its memory and pids cgroup

    def environment(self, home: Path, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        env = {
            "PATH": self.path,
            "HOME": str(home),
            "TMPDIR": str(home),
            "LANG": "C.UTF-8",
            "LC_ALL": "C.UTF-8",
            "CI": "1",
            "NO_COLOR": "1",
            "FORCE_COLOR": "0",
            "NODE_ENV": "test",
            "npm_config_update_notifier": "false",
            "npm_config_fund": "false",
            "npm_config_audit": "false",
        }
        env.update(extra or {})
        return env

    async def run(
        self,
        argv: Sequence[str],
        workdir: Path,
        limits: Limits | None = None,
        *,
        network: bool = False,
        writable: Sequence[Path] = (),
        env: Mapping[str, str] | None = None,
        cancel: asyncio.Event | None = None,
        mounts: Sequence[Mount] = (),
    ) -> Result:
        """Run ``argv`` in ``workdir``; never raises for the command's own failure.

        Without ``mounts``, ``workdir`` is writable by the command; so are the ``writable``
        paths, which must be directories that exist (nothing else is, in the bubblewrap
        backend). With ``mounts``, they alone lay out the files the run sees (``workdir``
        among their targets): only the writable ones and ``writable`` can be changed.
        """
        limits = limits or self.limits
        if not argv:
            raise SandboxError("empty argv")
        workdir = workdir.resolve()
        if not workdir.is_dir():
            raise SandboxError(f"workdir {workdir} does not exist")
        extra = [p.resolve() for p in writable]
        for path in extra:
            if not path.is_dir():
                raise SandboxError(f"writable path {path} is not a directory")
        if mounts:
            paths = [m.source for m in mounts if m.writable and m.source is not None]
            paths += extra
        else:
            paths = [workdir, *extra]
        linked = _link_mounts_in_place(mounts) if isinstance(self.backend, DirectBackend) else []
        try:
            return await self._run(
                argv, workdir, limits, network, extra, env, cancel, mounts, paths
            )
        finally:
            for link in linked:
                link.unlink()

    async def _run(
        self,
        argv: Sequence[str],
        workdir: Path,
        limits: Limits,
        network: bool,
        extra: Sequence[Path],
        env: Mapping[str, str] | None,
        cancel: asyncio.Event | None,
        mounts: Sequence[Mount],
        paths: Sequence[Path],
    ) -> Result:
        with tempfile.TemporaryDirectory(prefix="plugin-bot-home-") as home:
            env_in = self.environment(Path(home), env)
            host_argv = self.backend.wrap(argv, workdir, limits, network, extra, env_in, mounts)
            cgroup = self._cgroup(limits)
            try:
                await asyncio.to_thread(self.backend.prepare, paths)
                if cgroup is not None:
                    host_argv = [*cgroup.enter_argv(), *host_argv]
                result = await _run_capped(
                    tuple(argv), host_argv, workdir, self.backend.host_environment(env_in),
                    limits, cancel,
                )  # fmt: skip
            except BaseException:
                # Not in a thread: this also runs when the task is being cancelled.
                _remove_cgroup(cgroup)
                self.backend.reclaim(paths)
                raise
            if cgroup is not None:
                result = replace(result, memory_capped=cgroup.oom_killed())
                await asyncio.to_thread(_remove_cgroup, cgroup)
            # In a thread: a run can leave very many files, the event loop must not wait.
            await asyncio.to_thread(self.backend.reclaim, paths)
            return result

    async def start(
        self,
        argv: Sequence[str],
        workdir: Path,
        limits: Limits | None = None,
        *,
        env: Mapping[str, str] | None = None,
        cancel: asyncio.Event | None = None,
        mounts: Sequence[Mount] = (),
    ) -> LiveRun:
        """Start ``argv`` like ``run`` (same backend, layout, limits and cgroup, no network)
        and return while it runs: a long-lived helper of one job (the warm checker).

        ``limits.timeout_s`` bounds its whole life and ``cancel`` stops it, as for ``run``;
        the caller talks to it through a writable mount and ends it with ``LiveRun.stop``.
        """
        limits = limits or self.limits
        if not argv:
            raise SandboxError("empty argv")
        workdir = workdir.resolve()
        if not workdir.is_dir():
            raise SandboxError(f"workdir {workdir} does not exist")
        writable = [m.source for m in mounts if m.writable and m.source is not None]
        paths = writable if mounts else [workdir]
        linked = _link_mounts_in_place(mounts) if isinstance(self.backend, DirectBackend) else []
        home = tempfile.TemporaryDirectory(prefix="plugin-bot-home-")
        env_in = self.environment(Path(home.name), env)
        cgroup: RunCgroup | None = None
        try:
            host_argv = self.backend.wrap(argv, workdir, limits, False, (), env_in, mounts)
            cgroup = self._cgroup(limits)
            await asyncio.to_thread(self.backend.prepare, paths)
            if cgroup is not None:
                host_argv = [*cgroup.enter_argv(), *host_argv]
            proc = _spawn(argv, host_argv, workdir, self.backend.host_environment(env_in))
        except BaseException:
            _remove_cgroup(cgroup)
            self.backend.reclaim(paths)
            for link in linked:
                link.unlink()
            home.cleanup()
            raise

        def cleanup() -> None:
            _remove_cgroup(cgroup)
            self.backend.reclaim(paths)
            for link in linked:
                link.unlink()
            home.cleanup()

        return LiveRun(tuple(argv), proc, limits, cancel, cgroup, cleanup, workdir)

    def _cgroup(self, limits: Limits) -> RunCgroup | None:
        if self.cgroups is None:
            return None
        try:
            return self.cgroups.create(memory_bytes=limits.memory_bytes, processes=limits.processes)
        except OSError as exc:
            raise SandboxError(f"cannot create the run's cgroup: {exc}") from exc


def _remove_cgroup(cgroup: RunCgroup | None) -> None:
    if cgroup is not None:
        try:
            cgroup.remove()
        except OSError as exc:  # the run is over either way; the next sweep may get it
            logger.warning(
                "cgroup.remove_failed", dirs=[str(d) for d in cgroup.dirs], error=str(exc)
            )


async def _run_capped(
    argv: tuple[str, ...],
    host_argv: list[str],
    workdir: Path,
    env: dict[str, str],
    limits: Limits,
    cancel: asyncio.Event | None,
) -> Result:
    """``_run_process``, stopped early when ``workdir`` goes past the workspace caps."""
    if limits.workspace_bytes is None and limits.workspace_files is None:
        return await _run_process(argv, host_argv, workdir, env, limits, cancel)
    stop = asyncio.Event()
    why: list[str] = []

    def check() -> str | None:
        return over_cap(workdir, limits.workspace_bytes, limits.workspace_files)

    async def watch() -> None:
        while True:
            await asyncio.sleep(limits.workspace_poll_s)
            found = await asyncio.to_thread(check)
            if found is not None:
                why.append(found)
                stop.set()
                return

    async def forward_cancel() -> None:
        if cancel is not None:
            await cancel.wait()
            stop.set()

    helpers = [asyncio.ensure_future(watch()), asyncio.ensure_future(forward_cancel())]
    try:
        result = await _run_process(argv, host_argv, workdir, env, limits, stop)
    finally:
        for helper in helpers:
            helper.cancel()
    if not why:  # a fast writer may finish between two looks
        found = await asyncio.to_thread(check)
        if found is not None:
            why.append(found)
    user_cancelled = cancel is not None and cancel.is_set()
    return replace(
        result,
        cancelled=result.cancelled and user_cancelled,
        workspace_exceeded=why[0] if why else None,
    )


def _link_mounts_in_place(mounts: Sequence[Mount]) -> list[Path]:
    """SANDBOX=none has no mounts: a mounted-in folder is linked where it would appear
    (development only; nothing is read-only there)."""
    linked: list[Path] = []
    for mount in mounts:
        source = mount.source
        if source is not None and source != mount.target and not mount.target.exists():
            mount.target.symlink_to(source, target_is_directory=True)
            linked.append(mount.target)
    return linked


async def _run_process(
    argv: tuple[str, ...],
    host_argv: list[str],
    workdir: Path,
    env: dict[str, str],
    limits: Limits,
    cancel: asyncio.Event | None,
) -> Result:
    loop = asyncio.get_running_loop()
    capture = _OutputCapture(limits.output_bytes)
    started = time.monotonic()
    # Popen, not asyncio's: we need the pid for pidfd and wait4 (rusage); spawn is fast.
    proc = _spawn(argv, host_argv, workdir, env)
    assert proc.stdout is not None
    out_fd = proc.stdout.fileno()
    os.set_blocking(out_fd, False)
    eof = asyncio.Event()
    exited = asyncio.Event()
    pidfd = os.pidfd_open(proc.pid)

    def on_output() -> None:
        while True:
            try:
                chunk = os.read(out_fd, READ_CHUNK)
            except BlockingIOError:
                return
            except OSError:
                chunk = b""
            if not chunk:
                loop.remove_reader(out_fd)
                eof.set()
                return
            capture.feed(chunk)

    def on_exit() -> None:
        loop.remove_reader(pidfd)
        exited.set()

    loop.add_reader(out_fd, on_output)
    loop.add_reader(pidfd, on_exit)
    timed_out = cancelled = False
    try:
        waiters = [asyncio.ensure_future(exited.wait())]
        if cancel is not None:
            waiters.append(asyncio.ensure_future(cancel.wait()))
        try:
            done, _ = await asyncio.wait(
                waiters, timeout=limits.timeout_s, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            for w in waiters:
                w.cancel()
        if not exited.is_set():
            timed_out = not done
            cancelled = bool(done)
            await _terminate(proc.pid, exited, limits.kill_grace_s)
    except asyncio.CancelledError:
        _killpg(proc.pid, signal.SIGKILL)
        loop.remove_reader(pidfd)
        loop.remove_reader(out_fd)
        # Reap off the loop: the task is going away, the zombie must not stay.
        loop.run_in_executor(None, _reap_blocking, proc, pidfd)
        raise
    # Anything of the run still in its process group goes now, while the leader's zombie
    # still holds the pid (so the group id cannot have been reused).
    _killpg(proc.pid, signal.SIGKILL)
    if not exited.is_set():
        # SIGKILL was sent; wait for the exit without blocking the loop on wait4.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(exited.wait(), REAP_WAIT_S)
    # The fd number is reused by the next run: unregister it before it is closed.
    loop.remove_reader(pidfd)
    if exited.is_set():
        status, cpu_s = _reap(proc, pidfd)
    else:  # stuck in the kernel: reap it off the loop
        status, cpu_s = await asyncio.to_thread(_reap, proc, pidfd)
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(eof.wait(), DRAIN_AFTER_EXIT_S)
    loop.remove_reader(out_fd)
    proc.stdout.close()
    wall = time.monotonic() - started
    exit_code = os.WEXITSTATUS(status) if os.WIFEXITED(status) else None
    sig = os.WTERMSIG(status) if os.WIFSIGNALED(status) else None
    _count_kill(timed_out=timed_out, cancelled=cancelled, sig=sig)
    return Result(
        argv=argv,
        exit_code=exit_code,
        signal=sig,
        timed_out=timed_out,
        cancelled=cancelled,
        head=bytes(capture.head).decode("utf-8", "replace"),
        tail=bytes(capture.tail).decode("utf-8", "replace"),
        truncated=capture.truncated,
        output_bytes=capture.total,
        output_sha256=capture.digest.hexdigest(),
        wall_s=wall,
        cpu_s=cpu_s,
    )


def _spawn(
    argv: Sequence[str], host_argv: list[str], workdir: Path, env: dict[str, str]
) -> subprocess.Popen[bytes]:
    """The host process of a run: its own session (a process group we can kill whole),
    output on one pipe, no stdin."""
    try:
        return subprocess.Popen(
            host_argv,
            cwd=workdir,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            close_fds=True,
        )
    except OSError as exc:
        raise SandboxError(f"cannot start {argv[0]!r}: {exc.strerror or exc}") from exc


class LiveRun:
    """A command started by ``Sandbox.start``, running until ``stop``, its deadline
    (``limits.timeout_s``), its cancel signal or the workspace caps (looked at every
    ``workspace_poll_s``); output read as it comes and capped."""

    def __init__(
        self,
        argv: tuple[str, ...],
        proc: subprocess.Popen[bytes],
        limits: Limits,
        cancel: asyncio.Event | None,
        cgroup: RunCgroup | None,
        cleanup: Callable[[], None],
        workdir: Path,
    ) -> None:
        self.argv = argv
        self._proc = proc
        self._limits = limits
        self._cgroup = cgroup
        self._cleanup = cleanup
        self._capture = _OutputCapture(limits.output_bytes)
        self._started = time.monotonic()
        self._exited = asyncio.Event()
        self._eof = asyncio.Event()
        self._timed_out = self._cancelled = False
        self._workspace_exceeded: str | None = None
        self._result: Result | None = None
        loop = asyncio.get_running_loop()
        assert proc.stdout is not None
        self._out_fd = proc.stdout.fileno()
        os.set_blocking(self._out_fd, False)
        self._pidfd = os.pidfd_open(proc.pid)
        loop.add_reader(self._out_fd, self._on_output)
        loop.add_reader(self._pidfd, self._on_exit)
        self._watchdog = asyncio.ensure_future(self._watch(cancel, workdir))

    @property
    def pid(self) -> int:
        return self._proc.pid

    @property
    def alive(self) -> bool:
        return not self._exited.is_set()

    @property
    def exited(self) -> asyncio.Event:
        return self._exited

    def output(self) -> str:
        """What it wrote so far (head and tail when capped)."""
        head = bytes(self._capture.head).decode("utf-8", "replace")
        return head + bytes(self._capture.tail).decode("utf-8", "replace")

    def _on_output(self) -> None:
        while True:
            try:
                chunk = os.read(self._out_fd, READ_CHUNK)
            except BlockingIOError:
                return
            except OSError:
                chunk = b""
            if not chunk:
                asyncio.get_running_loop().remove_reader(self._out_fd)
                self._eof.set()
                return
            self._capture.feed(chunk)

    def _on_exit(self) -> None:
        asyncio.get_running_loop().remove_reader(self._pidfd)
        self._exited.set()

    async def _watch(self, cancel: asyncio.Event | None, workdir: Path) -> None:
        """Kill the whole run at its deadline, on cancel, or past the workspace caps."""
        limits = self._limits
        capped = limits.workspace_bytes is not None or limits.workspace_files is not None
        deadline = self._started + limits.timeout_s
        waiters = [asyncio.ensure_future(self._exited.wait())]
        if cancel is not None:
            waiters.append(asyncio.ensure_future(cancel.wait()))
        try:
            while not self._exited.is_set():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    self._timed_out = True
                    break
                step = min(remaining, limits.workspace_poll_s) if capped else remaining
                done, _ = await asyncio.wait(
                    waiters, timeout=step, return_when=asyncio.FIRST_COMPLETED
                )
                if self._exited.is_set():
                    return
                if done:
                    self._cancelled = True
                    break
                if capped:
                    found = await asyncio.to_thread(
                        over_cap, workdir, limits.workspace_bytes, limits.workspace_files
                    )
                    if found is not None:
                        self._workspace_exceeded = found
                        break
        finally:
            for waiter in waiters:
                waiter.cancel()
        if not self._exited.is_set():
            await _terminate(self._proc.pid, self._exited, limits.kill_grace_s)

    def kill(self) -> None:
        """SIGKILL to the run's whole process group (``stop`` still collects it)."""
        _killpg(self._proc.pid, signal.SIGKILL)

    async def stop(self) -> Result:
        """End the run (SIGTERM, then SIGKILL to its group), reap it and clean up."""
        if self._result is not None:
            return self._result
        loop = asyncio.get_running_loop()
        if self.alive:
            await _terminate(self._proc.pid, self._exited, self._limits.kill_grace_s)
        _killpg(self._proc.pid, signal.SIGKILL)
        self._watchdog.cancel()
        if not self._exited.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._exited.wait(), REAP_WAIT_S)
        loop.remove_reader(self._pidfd)
        status, cpu_s = await asyncio.to_thread(_reap, self._proc, self._pidfd)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._eof.wait(), DRAIN_AFTER_EXIT_S)
        loop.remove_reader(self._out_fd)
        assert self._proc.stdout is not None
        self._proc.stdout.close()
        memory_capped = self._cgroup.oom_killed() if self._cgroup is not None else False
        await asyncio.to_thread(self._cleanup)
        capture = self._capture
        self._result = Result(
            argv=self.argv,
            exit_code=os.WEXITSTATUS(status) if os.WIFEXITED(status) else None,
            signal=os.WTERMSIG(status) if os.WIFSIGNALED(status) else None,
            timed_out=self._timed_out,
            cancelled=self._cancelled,
            head=bytes(capture.head).decode("utf-8", "replace"),
            tail=bytes(capture.tail).decode("utf-8", "replace"),
            truncated=capture.truncated,
            output_bytes=capture.total,
            output_sha256=capture.digest.hexdigest(),
            wall_s=time.monotonic() - self._started,
            cpu_s=cpu_s,
            memory_capped=memory_capped,
            workspace_exceeded=self._workspace_exceeded,
        )
        return self._result


def _reap(proc: subprocess.Popen[bytes], pidfd: int) -> tuple[int, float]:
    """Collect the exit status with rusage, so CPU time covers the whole waited tree."""
    try:
        _, status, usage = os.wait4(proc.pid, 0)
    finally:
        os.close(pidfd)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return status, usage.ru_utime + usage.ru_stime


def _reap_blocking(proc: subprocess.Popen[bytes], pidfd: int) -> None:
    with contextlib.suppress(ChildProcessError):
        _reap(proc, pidfd)
    if proc.stdout is not None:
        proc.stdout.close()


async def _terminate(pid: int, exited: asyncio.Event, grace_s: float) -> None:
    _killpg(pid, signal.SIGTERM)
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(exited.wait(), grace_s)
    _killpg(pid, signal.SIGKILL)


def _count_kill(*, timed_out: bool, cancelled: bool, sig: int | None) -> None:
    """A run the sandbox (or the kernel: memory, CPU limits) killed, counted by reason."""
    if timed_out:
        reason = "timeout"
    elif cancelled:
        reason = "cancelled"
    elif sig is not None:
        known = {s.value for s in signal.Signals}
        reason = signal.Signals(sig).name.lower() if sig in known else f"signal{sig}"
    else:
        return
    METRICS.sandbox_killed(reason)
    logger.info("sandbox.killed", reason=reason)


def _killpg(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def probe(backend: Backend, workdir: Path) -> None:
    """Run ``true`` once through ``backend``; SandboxError, with how to fix it, if it fails."""
    limits = Limits(timeout_s=30)
    host_argv = backend.wrap(["true"], workdir, limits, False, (), {"PATH": "/usr/bin:/bin"})
    try:
        done = subprocess.run(
            host_argv,
            cwd=workdir,
            env=backend.host_environment({}),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=limits.timeout_s,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise SandboxError(
            f"the {backend.name} sandbox cannot start: {exc}; {INSTALL_HINT}"
        ) from exc
    if done.returncode != 0:
        why = (done.stdout + done.stderr).decode("utf-8", "replace").strip()[-500:]
        raise SandboxError(
            f"the {backend.name} sandbox does not work here ({why or done.returncode}); "
            f"{INSTALL_HINT}"
        )


def sandbox_from_settings(settings: Settings) -> Sandbox:
    """The sandbox the settings ask for; fails closed when bubblewrap cannot run."""
    limits = Limits.from_settings(settings)
    try:
        cgroups = CgroupHost.detect(settings.sandbox_cgroups, settings.sandbox_cgroup_parent)
    except CgroupError as exc:
        raise SandboxError(str(exc)) from exc
    if settings.sandbox == "none":
        logger.warning("sandbox.unsafe", message=UNSAFE_WARNING)
        return Sandbox(backend=DirectBackend(), limits=limits, cgroups=cgroups)
    state = settings.cache_dir / "sandbox"
    try:
        # Made here first, so a fallback folder (settings.FALLBACK_RUNTIME_DIR) is 0711.
        settings.runtime_dir.mkdir(mode=0o711, parents=True, exist_ok=True)
        backend = BwrapBackend.for_host(state, settings.sandbox_uid)
    except OSError as exc:
        raise SandboxError(f"cannot prepare the sandbox in {state}: {exc}") from exc
    probe(backend, state.resolve())
    return Sandbox(backend=backend, limits=limits, cgroups=cgroups)

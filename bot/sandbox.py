"""Run one argv with limits: the only place in the bot that starts processes.

Every run gets a clean environment (nothing of the bot's own), its own session and
process group (so a timeout or a cancel kills the whole tree), output read as it
comes and capped (head and tail kept, the full stream hashed), and resource limits
applied by ``prlimit`` as an exec wrapper. Backends decide how the argv is wrapped:
``DirectBackend`` runs it on the host (development and trusted commands).
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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Protocol

from bot.settings import Settings

READ_CHUNK = 65536
DRAIN_AFTER_EXIT_S = 0.5
SYSTEM_PATH = ("/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin")


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

    @classmethod
    def from_settings(cls, settings: Settings) -> Limits:
        return cls(
            timeout_s=settings.command_timeout_s,
            output_bytes=settings.output_limit_bytes,
            kill_grace_s=settings.kill_grace_s,
        )

    def with_timeout(self, timeout_s: float) -> Limits:
        return replace(self, timeout_s=max(0.001, min(self.timeout_s, timeout_s)))

    def prlimit_args(self) -> list[str]:
        pairs = [
            ("--cpu", self.cpu_s),
            ("--as", self.memory_bytes),
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

    @property
    def ok(self) -> bool:
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
        if self.cancelled:
            return "was cancelled"
        if self.timed_out:
            return f"timed out after {self.wall_s:.0f}s"
        if self.signal is not None:
            return f"was killed by signal {signal.Signals(self.signal).name}"
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


class Backend(Protocol):
    @property
    def name(self) -> str: ...

    def wrap(self, argv: Sequence[str], workdir: Path, limits: Limits, network: bool) -> list[str]:
        """The argv to execute on the host for ``argv`` run inside this backend."""
        ...


@dataclass(frozen=True)
class DirectBackend:
    """Runs on the host with rlimits only. Not isolation: for trusted commands and dev."""

    name: str = "none"

    def wrap(self, argv: Sequence[str], workdir: Path, limits: Limits, network: bool) -> list[str]:
        wrapper = limits.prlimit_args()
        if not wrapper:
            return list(argv)
        prlimit = shutil.which("prlimit", path=os.pathsep.join(SYSTEM_PATH))
        if prlimit is None:
            raise SandboxError("prlimit (util-linux) is needed to apply resource limits")
        return [prlimit, *wrapper, "--", *argv]


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
        env: Mapping[str, str] | None = None,
        cancel: asyncio.Event | None = None,
    ) -> Result:
        """Run ``argv`` in ``workdir``; never raises for the command's own failure."""
        limits = limits or self.limits
        if not argv:
            raise SandboxError("empty argv")
        workdir = workdir.resolve()
        if not workdir.is_dir():
            raise SandboxError(f"workdir {workdir} does not exist")
        host_argv = self.backend.wrap(argv, workdir, limits, network)
        with tempfile.TemporaryDirectory(prefix="plugin-bot-home-") as home:
            return await _run_process(
                tuple(argv), host_argv, workdir, self.environment(Path(home), env), limits, cancel
            )


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
    try:
        # start_new_session: the child leads a new process group we can kill whole.
        # Popen, not asyncio's: we need the pid for pidfd and wait4 (rusage); spawn is fast.
        proc = subprocess.Popen(  # noqa: ASYNC220
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
    # The fd number is reused by the next run: unregister it before it is closed.
    loop.remove_reader(pidfd)
    status, cpu_s = _reap(proc, pidfd)
    # Anything of the run still in its process group goes now.
    _killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(eof.wait(), DRAIN_AFTER_EXIT_S)
    loop.remove_reader(out_fd)
    proc.stdout.close()
    wall = time.monotonic() - started
    exit_code = os.WEXITSTATUS(status) if os.WIFEXITED(status) else None
    sig = os.WTERMSIG(status) if os.WIFSIGNALED(status) else None
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


def _killpg(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def sandbox_from_settings(settings: Settings) -> Sandbox:
    return Sandbox(backend=DirectBackend(), limits=Limits.from_settings(settings))

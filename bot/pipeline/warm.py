"""Warm check rounds: the generate loop's build + test from one long-lived process per job.

A cold round starts TypeScript, esbuild and Vitest from nothing each time. The pack's warm
checker (``pack.warm_checker``, a Node script of the pack, never a plugin file) is started
by ``Sandbox.start`` at the job's first check round, in the same sandbox as a build or test
run: the plugin's files read-only over a tmpfs, the shared ``node_modules`` read-only, no
network, the same limits and cgroup; it may write only ``dist/``, the test report folder and
its channel folder, where it listens on a Unix socket. Each round is one request line and
one answer line (JSON): the build's output and outcome, then the test run's, whose report
the bot reads and parses exactly as after a cold test run.

What it may not do: decide a job. The model's test code runs in that process and could
change what later rounds report, so a warm round only tells the model how its code fares;
the install, build and test phases after generate (the results that are signed and
published) are always the cold commands in fresh processes, after this one is stopped.

Any trouble (it does not start, dies, answers something else, a round times out) stops the
process and the round runs cold; the next round starts a new process, until the job has
seen ``max_failures`` failures. A change the process cannot see through its mounts (a new
top-level file or folder, a changed top-level file such as tsconfig.json or package.json,
new dependencies) restarts it.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import shutil
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import structlog

from bot.sandbox import LiveRun, Mount, Result
from bot.workspace import BUILD_OUTPUT, CONFIG_DIR, REPORT_DIR, WARM_DIRS, run_layout

if TYPE_CHECKING:
    from bot.pipeline.context import JobContext

log = structlog.get_logger("bot.warm")

WARM_DIR, CHANNEL_DIR = WARM_DIRS  # its script (read-only), its socket (writable)
SOCKET_NAME = "checker.sock"
SCRIPT_NAME = "warm-checker.mjs"
VITEST_CONFIG = "vitest.config.ts"
REPORT_NAME = "vitest-report.json"
CONNECT_POLL_S = 0.05
MAX_ANSWER_BYTES = 16 * 1024 * 1024


class WarmUnavailable(Exception):
    """The warm checker cannot serve this round; the message says why (run it cold)."""


@dataclass(frozen=True)
class WarmPolicy:
    """Whether a job may use warm rounds, and how patient to be with the process."""

    start_timeout_s: float = 120.0
    max_failures: int = 2


@dataclass(frozen=True)
class WarmRound:
    """One round's build and (when the build passed) test, as the sandbox reports runs."""

    build: Result
    test: Result | None


@dataclass
class WarmChecker:
    """The job's warm checker: started on first use, restarted when its view is stale."""

    policy: WarmPolicy
    process: LiveRun | None = None
    layout: tuple[object, ...] | None = None
    failures: int = 0
    served: int = 0  # rounds answered warm
    _reader: asyncio.StreamReader | None = None
    _writer: asyncio.StreamWriter | None = None
    _next_id: int = 0
    fallbacks: list[str] = field(default_factory=list)  # why rounds ran cold

    def why_cold(self, ctx: JobContext) -> str | None:
        """Why this job's next round must run cold, or None when it may run warm."""
        pack = ctx.tools.pack
        if pack.warm_checker is None:
            return "the template pack has no warm checker"
        if self.failures >= self.policy.max_failures:
            return f"the warm checker failed {self.failures} times in this job"
        files = ctx.require_files()
        for entry in pack.files:
            named = entry.output in pack.build or entry.output in pack.test
            copied = entry.each is None and not entry.template.endswith(".j2")
            if (
                named
                and copied
                and files.get(entry.output) != (pack.root / entry.template).read_bytes()
            ):
                return f"{entry.output} is not the template pack's: the round runs it cold"
        return None

    async def round(self, ctx: JobContext) -> WarmRound:
        """Build and test the plugin's current files in the warm process."""
        layout = self._layout(ctx)
        if self.process is not None and not self.process.alive:
            ended = await self.close()
            outcome = ended.describe_outcome() if ended is not None else "ended"
            raise WarmUnavailable(f"the warm checker exited between rounds ({outcome})")
        if self.process is not None and layout != self.layout:
            await self.close()  # its mounts no longer show the plugin: a new one
        if self.process is None:
            await self._start(ctx, layout)
        try:
            answer = await self._ask(ctx)
            return self._read_answer(ctx, answer)
        except WarmUnavailable:
            await self.close()
            raise

    def failed(self, why: str) -> None:
        self.failures += 1
        self.fallbacks.append(why)
        log.warning("warm.fallback", reason=why, failures=self.failures)

    async def close(self) -> Result | None:
        """Stop the process (if one runs) and forget it."""
        process, self.process, self.layout = self.process, None, None
        if self._writer is not None:
            self._writer.close()
            with contextlib.suppress(OSError, ConnectionError):
                await self._writer.wait_closed()
        self._reader = self._writer = None
        if process is None:
            return None
        return await process.stop()

    # ------------------------------------------------------------------------ steps

    def _layout(self, ctx: JobContext) -> tuple[object, ...]:
        """What the process sees that only a restart updates (its mounts, top-level files)."""
        files = ctx.require_files()
        install = ctx.result.install
        top_files = sorted(
            (rel, hashlib.sha256(data).hexdigest())
            for rel, data in files.contents.items()
            if "/" not in rel
        )
        mounts = tuple(self._mounts(ctx, Path("/unused"), Path("/unused")))
        return (mounts, tuple(top_files), install.key if install is not None else None)

    def _mounts(self, ctx: JobContext, script_dir: Path, channel: Path) -> list[Mount]:
        files = ctx.require_files()
        install = ctx.result.install
        root = files.root
        mounts = run_layout(
            files,
            node_modules=install.node_modules if install is not None else None,
            config_dir=ctx.config_dir(),
            outputs=[BUILD_OUTPUT, REPORT_DIR],
        )
        mounts.append(Mount(root / WARM_DIR, script_dir))
        mounts.append(Mount(root / CHANNEL_DIR, channel, writable=True))
        return mounts

    async def _start(self, ctx: JobContext, layout: tuple[object, ...]) -> None:
        script = ctx.tools.pack.warm_checker
        assert script is not None
        base = ctx.workspace / "warm"
        shutil.rmtree(base, ignore_errors=True)
        script_dir, channel = base / "script", base / "channel"
        for folder in (script_dir, channel):
            folder.mkdir(parents=True, mode=0o755)
        base.chmod(0o755)
        shutil.copyfile(script, script_dir / SCRIPT_NAME)
        (script_dir / SCRIPT_NAME).chmod(0o644)
        config = VITEST_CONFIG
        if VITEST_CONFIG in ctx.result.held_config:
            config = f"{CONFIG_DIR}/{VITEST_CONFIG}"
        argv = [
            "node",
            f"{WARM_DIR}/{SCRIPT_NAME}",
            f"{CHANNEL_DIR}/{SOCKET_NAME}",
            config,
            f"{REPORT_DIR}/{REPORT_NAME}",
        ]
        remaining = ctx.tools.job_timeout_s - (time.monotonic() - ctx.started)
        limits = replace(ctx.tools.limits, timeout_s=max(0.001, remaining))
        self.process = await ctx.tools.sandbox.start(
            argv,
            ctx.require_plugin(),
            limits,
            cancel=ctx.tools.cancel,
            mounts=self._mounts(ctx, script_dir, channel),
        )
        self.layout = layout
        log.info("warm.started", pid=self.process.pid)
        await self._connect(ctx, channel / SOCKET_NAME)

    async def _connect(self, ctx: JobContext, socket_path: Path) -> None:
        assert self.process is not None
        deadline = time.monotonic() + self.policy.start_timeout_s
        while True:
            ctx.raise_if_cancelled()
            if not self.process.alive:
                raise WarmUnavailable(
                    "the warm checker exited while starting: " + self.process.output()[-500:]
                )
            if socket_path.is_socket():
                try:
                    self._reader, self._writer = await asyncio.open_unix_connection(
                        str(socket_path), limit=MAX_ANSWER_BYTES
                    )
                    return
                except OSError:
                    pass
            if time.monotonic() > deadline:
                raise WarmUnavailable("the warm checker did not start in time")
            await asyncio.sleep(CONNECT_POLL_S)

    async def _ask(self, ctx: JobContext) -> dict[str, Any]:
        """One request, one answer; cancel, the round's timeout and the exit end the wait."""
        assert self.process is not None and self._reader is not None
        assert self._writer is not None
        self._next_id += 1
        self._writer.write(json.dumps({"id": self._next_id}).encode() + b"\n")
        await self._writer.drain()
        line = asyncio.ensure_future(self._reader.readline())
        exited = asyncio.ensure_future(self.process.exited.wait())
        cancelled = asyncio.ensure_future(ctx.tools.cancel.wait())
        try:
            done, _ = await asyncio.wait(
                {line, exited, cancelled},
                timeout=ctx.command_limits().timeout_s,
                return_when=asyncio.FIRST_COMPLETED,
            )
        finally:
            for waiter in (exited, cancelled):
                waiter.cancel()
        if line not in done:
            line.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await line
            if cancelled in done:
                await self.close()
                ctx.raise_if_cancelled()
            if exited in done:
                raise WarmUnavailable("the warm checker exited during the round")
            raise WarmUnavailable("the warm round timed out")
        try:
            raw = line.result()
            answer = json.loads(raw)
        except (ValueError, OSError, asyncio.LimitOverrunError) as exc:
            raise WarmUnavailable(f"the warm checker's answer is unreadable: {exc}") from None
        if not isinstance(answer, dict) or answer.get("id") != self._next_id:
            raise WarmUnavailable("the warm checker answered another request")
        if "error" in answer:
            raise WarmUnavailable(f"the warm checker failed: {str(answer['error'])[:500]}")
        return answer

    def _read_answer(self, ctx: JobContext, answer: dict[str, Any]) -> WarmRound:
        build = _part(answer, "build", ctx.tools.limits.output_bytes, ("warm-checker", "build"))
        if build is None:
            raise WarmUnavailable("the warm checker's answer has no build")
        test = None
        if build.ok:
            test = _part(answer, "test", ctx.tools.limits.output_bytes, ("warm-checker", "test"))
            if test is None:
                raise WarmUnavailable("the warm checker's answer has no test run")
        self.served += 1
        return WarmRound(build, test)


def _part(answer: dict[str, Any], name: str, limit: int, argv: tuple[str, ...]) -> Result | None:
    """A part of the answer as a Result, or None when it is missing or malformed."""
    part = answer.get(name)
    if not isinstance(part, dict):
        return None
    output, wall = part.get("output"), part.get("wall_s")
    if not isinstance(output, str) or not isinstance(wall, int | float):
        return None
    code: Any = part.get("exitCode")
    if "ok" in part:
        code = 0 if part["ok"] is True else 1 if part["ok"] is False else None
    if not isinstance(code, int) or isinstance(code, bool):
        return None
    data = output.encode("utf-8", "replace")
    half = limit // 2
    truncated = len(data) > limit
    head = data[:half] if truncated else data
    tail = data[-(limit - half) :] if truncated else b""
    return Result(
        argv=argv,
        exit_code=code,
        signal=None,
        timed_out=False,
        cancelled=False,
        head=head.decode("utf-8", "replace"),
        tail=tail.decode("utf-8", "replace"),
        truncated=truncated,
        output_bytes=len(data),
        output_sha256=hashlib.sha256(data).hexdigest(),
        wall_s=float(wall),
        cpu_s=0.0,
    )

"""The process runner: clean environment, caps, timeouts and kills of the whole group."""

import asyncio
import hashlib
import os
import sys
import tempfile
from pathlib import Path

import pytest
import structlog
import structlog.testing

from bot.sandbox import (
    BwrapBackend,
    DirectBackend,
    Limits,
    Sandbox,
    SandboxError,
    probe,
    sandbox_from_settings,
)
from bot.settings import Settings
from tests.conftest import eventually

PY = sys.executable


def sandbox() -> Sandbox:
    return Sandbox()


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is dead for our purposes.
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError):
        # The process was reaped between the two looks: the read of its
        # stat file then fails with ESRCH, not ENOENT.
        return False


async def test_environment_holds_none_of_the_bots_secrets(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-canary-123")
    monkeypatch.setenv("GITHUB_WEBHOOK_SECRET", "canary-webhook")
    result = await sandbox().run(["env"], tmp_path)
    assert result.ok
    assert "canary" not in result.output
    names = {line.split("=", 1)[0] for line in result.output.splitlines()}
    assert "ANTHROPIC_API_KEY" not in names and "GITHUB_WEBHOOK_SECRET" not in names
    assert {"PATH", "HOME", "LANG", "CI"} <= names


async def test_argv_is_not_interpreted_by_a_shell(tmp_path: Path) -> None:
    result = await sandbox().run(["echo", "$(touch pwned)", ";", "rm", "-rf", "x"], tmp_path)
    assert result.ok
    assert result.output.strip() == "$(touch pwned) ; rm -rf x"
    assert not (tmp_path / "pwned").exists()


async def test_exit_code_and_signal_are_reported(tmp_path: Path) -> None:
    failed = await sandbox().run([PY, "-c", "raise SystemExit(3)"], tmp_path)
    assert (failed.exit_code, failed.signal, failed.ok) == (3, None, False)
    killed = await sandbox().run([PY, "-c", "import os; os.kill(os.getpid(), 9)"], tmp_path)
    assert killed.exit_code is None and killed.signal == 9
    assert "SIGKILL" in killed.describe_outcome()


async def test_output_is_capped_keeping_head_and_tail(tmp_path: Path) -> None:
    script = (
        "import sys\n"
        "sys.stdout.write('HEAD-MARK\\n')\n"
        "for i in range(200000): sys.stdout.write(f'line {i}\\n')\n"
        "sys.stdout.write('TAIL-MARK\\n')\n"
    )
    expected = "HEAD-MARK\n" + "".join(f"line {i}\n" for i in range(200000)) + "TAIL-MARK\n"
    result = await sandbox().run([PY, "-c", script], tmp_path, Limits(output_bytes=10_000))
    assert result.ok and result.truncated
    assert result.output_bytes == len(expected)
    assert result.output_sha256 == hashlib.sha256(expected.encode()).hexdigest()
    assert result.head.startswith("HEAD-MARK")
    assert result.tail.endswith("TAIL-MARK\n")
    assert len(result.head.encode()) + len(result.tail.encode()) == 10_000
    assert "bytes omitted" in result.output


async def test_stderr_is_captured_with_stdout(tmp_path: Path) -> None:
    result = await sandbox().run(
        [PY, "-c", "import sys; print('out'); print('err', file=sys.stderr)"], tmp_path
    )
    assert "out" in result.output and "err" in result.output


async def test_timeout_kills_the_whole_process_group(tmp_path: Path) -> None:
    pidfile = tmp_path / "child.pid"
    script = (
        "import os, signal, subprocess, sys, time\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        f"child = subprocess.Popen([sys.executable, '-c', "
        f"'import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(600)'])\n"
        f"open({str(pidfile)!r}, 'w').write(str(child.pid))\n"
        "time.sleep(600)\n"
    )
    # How soon after the timeout it returns: benchmarks/kill_latency.py.
    result = await sandbox().run(
        [PY, "-c", script], tmp_path, Limits(timeout_s=1.5, kill_grace_s=0.3)
    )
    assert result.timed_out and not result.ok
    assert result.signal == 9  # SIGTERM was ignored: the escalation to SIGKILL ended it
    child = int(pidfile.read_text())
    # SIGKILL is sent to the group; the child dies (and is reaped by init) a moment later.
    await eventually(lambda: not alive(child), what=f"the child {child} dead")


async def test_a_grandchild_that_outlives_its_parent_is_killed_after_the_exit(
    tmp_path: Path,
) -> None:
    pidfile = tmp_path / "grandchild.pid"
    # The grandchild stays in the run's process group (no setsid) and outlives its parent,
    # which exits 0 at once: only the group kill after the exit ends it.
    script = (
        "import subprocess, sys\n"
        "child = subprocess.Popen([sys.executable, '-c', "
        '\'import os, sys, time; open(sys.argv[1], "w").write(str(os.getpid())); '
        "time.sleep(600)', sys.argv[1]], stdout=subprocess.DEVNULL)\n"
        "import time\n"
        "for _ in range(200):\n"
        "    if open(sys.argv[1]).read() if __import__('os').path.exists(sys.argv[1]) else '':\n"
        "        break\n"
        "    time.sleep(0.01)\n"
    )
    result = await sandbox().run([PY, "-c", script, str(pidfile)], tmp_path, Limits(timeout_s=20))
    assert result.ok, result.output
    grandchild = int(pidfile.read_text())  # it started …
    # … and did not outlive the run (it would sleep 600 s).
    await eventually(lambda: not alive(grandchild), what=f"the grandchild {grandchild} dead")


async def test_cancel_event_stops_the_run_and_says_so(tmp_path: Path) -> None:
    cancel = asyncio.Event()
    asyncio.get_running_loop().call_later(0.3, cancel.set)
    result = await sandbox().run(["sleep", "60"], tmp_path, cancel=cancel)
    assert result.cancelled and not result.timed_out and not result.ok
    assert result.signal is not None  # killed, not left to finish
    assert result.describe_outcome() == "was cancelled"


async def test_cancelling_the_awaiting_task_kills_the_process(tmp_path: Path) -> None:
    pidfile = tmp_path / "pid"
    task = asyncio.create_task(
        sandbox().run(
            [
                PY,
                "-c",
                f"import os, time; open({str(pidfile)!r}, 'w').write(str(os.getpid()))\n"
                "time.sleep(60)",
            ],
            tmp_path,
        )
    )
    pid = int(await eventually(lambda: pidfile.exists() and pidfile.read_text(), what="pidfile"))
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await eventually(lambda: not alive(pid), what=f"the run {pid} dead")  # it would sleep 60 s


async def test_consecutive_runs_each_notice_their_exit(tmp_path: Path) -> None:
    # Regression: a stale pidfd registration once hid the next run's exit.
    sb = sandbox()
    first = await sb.run(["sleep", "30"], tmp_path, Limits(timeout_s=0.3, kill_grace_s=0.2))
    assert first.timed_out
    cancel = asyncio.Event()
    asyncio.get_running_loop().call_later(0.2, cancel.set)
    # A grace of 10 minutes: a hidden exit would wait it out, and the wait_for ends the test.
    second = await asyncio.wait_for(
        sb.run(["sleep", "30"], tmp_path, Limits(kill_grace_s=600.0), cancel=cancel), 25
    )
    assert second.cancelled and second.signal == 15  # SIGTERM, noticed at once


async def test_file_size_limit_stops_a_disk_filler(tmp_path: Path) -> None:
    script = "f = open('big', 'wb')\nwhile True: f.write(b'x' * 65536)\n"
    result = await sandbox().run(
        [PY, "-c", script], tmp_path, Limits(file_size_bytes=1_000_000, timeout_s=20)
    )
    assert not result.ok and not result.timed_out
    assert (tmp_path / "big").stat().st_size <= 1_000_000


async def test_cpu_time_is_measured(tmp_path: Path) -> None:
    script = "import time\nt=time.process_time()\nwhile time.process_time()-t < 0.3: pass\n"
    result = await sandbox().run([PY, "-c", script], tmp_path)
    assert result.ok and result.cpu_s >= 0.25


async def test_missing_program_is_a_sandbox_error(tmp_path: Path) -> None:
    with pytest.raises(SandboxError, match="cannot start"):
        await sandbox().run(["definitely-not-a-program-xyz"], tmp_path)


async def test_missing_workdir_is_a_sandbox_error(tmp_path: Path) -> None:
    with pytest.raises(SandboxError, match="does not exist"):
        await sandbox().run(["true"], tmp_path / "nope")


def test_job_deadline_shortens_command_timeout() -> None:
    assert Limits(timeout_s=300).with_timeout(12).timeout_s == 12
    assert Limits(timeout_s=5).with_timeout(12).timeout_s == 5


# The bubblewrap backend's command line and the fail-closed probe; running it is
# tests/sandbox/test_escapes.py.


def bwrap_backend(tmp_path: Path, run_as: int | None = None) -> BwrapBackend:
    return BwrapBackend(
        hosts_file=tmp_path / "hosts", run_as=run_as, bwrap="/usr/bin/bwrap", prlimit="prlimit"
    )


def test_bwrap_argv_has_the_workspace_as_the_only_writable_bind(tmp_path: Path) -> None:
    argv = bwrap_backend(tmp_path).wrap(
        ["npm", "test"], tmp_path, Limits(processes=64, tmpfs_bytes=1000), False, (), {"A": "b"}
    )
    assert argv[0] == "/usr/bin/bwrap"
    for flag in ("--unshare-all", "--unshare-user", "--die-with-parent", "--new-session"):
        assert flag in argv
    assert "--clearenv" in argv and "--share-net" not in argv
    assert argv[argv.index("--cap-drop") + 1] == "ALL"
    assert [argv[i + 1] for i, a in enumerate(argv) if a == "--bind"] == [str(tmp_path)]
    assert "/etc/resolv.conf" not in argv
    assert argv[argv.index("--size") + 1] == "1000" and argv[argv.index("--size") + 2] == "--tmpfs"
    env = {argv[i + 1]: argv[i + 2] for i, a in enumerate(argv) if a == "--setenv"}
    assert env == {"A": "b", "HOME": "/tmp", "TMPDIR": "/tmp"}
    tail = argv[argv.index("prlimit") :]
    assert tail == ["prlimit", "--nproc=64", "--", "npm", "test"]


def test_bwrap_argv_with_network_and_extra_writable_paths(tmp_path: Path) -> None:
    cache = tmp_path / "npm"
    argv = bwrap_backend(tmp_path).wrap(["npm", "ci"], tmp_path, Limits(), True, [cache])
    assert "--share-net" in argv and "/etc/resolv.conf" in argv
    assert [argv[i + 1] for i, a in enumerate(argv) if a == "--bind"] == [str(tmp_path), str(cache)]


def test_bwrap_as_root_drops_to_the_sandbox_uid_first(tmp_path: Path) -> None:
    base = Path(tempfile.mkdtemp(prefix="plugin-bot-unit-", dir="/tmp"))
    try:
        os.chmod(base, 0o755)
        argv = bwrap_backend(base, run_as=60901).wrap(["true"], base, Limits(), False)
    finally:
        base.rmdir()
    assert argv[0].endswith("setpriv")
    assert argv[1:5] == ["--reuid=60901", "--regid=60901", "--clear-groups", "--"]
    # pytest's tmp_path is in a 0700 directory: the sandbox uid could not reach it.
    if not os.stat(tmp_path.parent).st_mode & 0o001:
        with pytest.raises(SandboxError, match="not searchable by the sandbox uid"):
            bwrap_backend(tmp_path, run_as=60901).wrap(["true"], tmp_path, Limits(), False)


def test_limits_come_from_settings() -> None:
    settings = Settings(
        sandbox_cpu_s=7,
        sandbox_memory_bytes=2**30,
        sandbox_file_size_bytes=2**21,
        sandbox_open_files=100,
        sandbox_processes=50,
        sandbox_tmpfs_bytes=2**22,
    )
    limits = Limits.from_settings(settings)
    assert limits.timeout_s == settings.command_timeout_s
    assert limits.tmpfs_bytes == 2**22
    assert limits.prlimit_args() == [
        "--cpu=7",
        f"--data={2**30}",
        f"--fsize={2**21}",
        "--nofile=100",
        "--nproc=50",
    ]


def test_a_sandbox_that_cannot_start_fails_closed(tmp_path: Path) -> None:
    backend = BwrapBackend(hosts_file=tmp_path / "hosts", bwrap="/nonexistent/bwrap")
    with pytest.raises(SandboxError, match="apt-get install -y bubblewrap") as caught:
        probe(backend, tmp_path)
    assert "SANDBOX=none" in str(caught.value)


def test_missing_bwrap_fails_closed_from_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("bot.sandbox.SYSTEM_PATH", (str(tmp_path / "empty"),))
    with pytest.raises(SandboxError, match="apt-get install -y bubblewrap"):
        sandbox_from_settings(Settings(bot_data_dir=tmp_path, sandbox="bwrap"))


def test_sandbox_none_is_direct_and_warns(tmp_path: Path) -> None:
    with structlog.testing.capture_logs() as lines:
        sb = sandbox_from_settings(Settings(bot_data_dir=tmp_path, sandbox="none"))
    assert isinstance(sb.backend, DirectBackend)
    [warning] = [line for line in lines if line["event"] == "sandbox.unsafe"]
    assert warning["log_level"] == "warning" and "development only" in warning["message"]


def test_a_sandbox_that_starts_but_fails_fails_closed(tmp_path: Path) -> None:
    backend = BwrapBackend(hosts_file=tmp_path / "hosts", bwrap="/bin/false")
    with pytest.raises(SandboxError, match=r"does not work here.*apt-get install -y bubblewrap"):
        probe(backend, tmp_path)

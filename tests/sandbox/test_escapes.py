"""The escape suite: real programs try to leave the bubblewrap sandbox, and must not.

Each test runs a real program (the system's python3, sh or coreutils; the venv is not
visible inside) and asserts a concrete outcome on the host. Skipped when bubblewrap is
not installed (``apt-get install -y bubblewrap``), except under CI=true, where that fails.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import stat
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from bot.sandbox import Mount
from tests.conftest import eventually, require, require_root
from tests.sandbox.conftest import CANARY, PY, Box, processes_with

# What a loaded machine may add to a kill and its reap; every bound with it stays far below
# the 600 s the programs here would run if nothing killed them.
SLACK_S = 15.0


async def none_left(marker: str) -> None:
    """No process carries ``marker`` (SIGKILLed ones die, and leave /proc, a moment after
    the run returns: the sandbox's pid namespace is torn down by the kernel)."""
    await eventually(lambda: processes_with(marker) == [], what=f"no process with {marker}")


async def test_the_bots_environment_is_not_visible(box: Box) -> None:
    result = await box.sandbox.run(
        ["/bin/sh", "-c", "env; cat /proc/self/environ; cat /proc/1/environ"], box.workspace
    )
    assert result.ok, result.output
    assert CANARY not in result.output
    assert "ANTHROPIC_API_KEY" not in result.output
    assert "HOME=/tmp" in result.output


async def test_files_outside_the_workspace_cannot_be_read(box: Box) -> None:
    targets = [box.key, box.data_dir / "plugin-bot.db", Path("/root")]
    if not Path(os.__file__).is_relative_to("/usr"):  # /usr is shared read-only on purpose
        targets.append(Path(os.__file__))
    venv = Path(__file__).resolve().parents[2] / ".venv"
    targets.append(venv)
    code = (
        "import os, sys\n"
        "for p in sys.argv[1:]:\n"
        "    try:\n"
        "        print(p, 'READ', open(p).read() if os.path.isfile(p) else os.listdir(p))\n"
        "    except OSError as e:\n"
        "        print(p, 'DENIED', type(e).__name__)\n"
    )
    result = await box.sandbox.run([PY, "-c", code, *map(str, targets)], box.workspace)
    assert result.ok, result.output
    assert CANARY not in result.output
    assert "READ" not in result.output
    assert result.output.count("DENIED") == len(targets)


async def test_writes_outside_the_workspace_leave_nothing(box: Box) -> None:
    marker = f"marker-{uuid.uuid4().hex}"
    host_paths = [
        box.data_dir / marker,
        box.workspace.parent / marker,
        Path("/tmp") / marker,
        Path("/usr") / marker,
        Path("/etc") / marker,
        Path("/") / marker,
    ]
    code = (
        "import sys\n"
        "for p in sys.argv[1:]:\n"
        "    try:\n"
        "        open(p, 'w').write('x'); print(p, 'wrote (inside)')\n"
        "    except OSError as e:\n"
        "        print(p, 'refused', type(e).__name__)\n"
        "open('inside', 'w').write('ok')\n"
    )
    result = await box.sandbox.run([PY, "-c", code, *map(str, host_paths)], box.workspace)
    assert result.ok, result.output
    for path in host_paths:
        assert not path.exists(), f"{path} was written from the sandbox"
    # Outside /tmp (the sandbox's own tmpfs) even the attempt fails: the root is read-only.
    for path in host_paths[3:]:
        assert f"{path} refused" in result.output
    # The workspace is writable, and what was written there is the bot's again.
    made = box.workspace / "inside"
    assert made.read_text() == "ok"
    assert made.stat().st_uid == os.geteuid()


async def test_a_listener_on_host_loopback_sees_no_connection(box: Box) -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(8)
        server.setblocking(False)
        port = server.getsockname()[1]
        code = (
            "import socket, sys\n"
            "try:\n"
            f"    socket.create_connection(('127.0.0.1', {port}), timeout=3); print('CONNECTED')\n"
            "except OSError as e:\n"
            "    print('refused', type(e).__name__); sys.exit(1)\n"
        )
        result = await box.py(code)
        assert "CONNECTED" not in result.output and not result.ok
        with pytest.raises(BlockingIOError):
            server.accept()


async def test_the_sandbox_has_only_a_loopback_interface_and_no_route(box: Box) -> None:
    code = (
        "import os, socket\n"
        "dev = open('/proc/net/dev').read().splitlines()[2:]\n"
        "print('IFACES', sorted(line.split(':')[0].strip() for line in dev))\n"
        "print('NAMES', sorted(n for _, n in socket.if_nameindex()))\n"
        "routes = open('/proc/net/route').read().splitlines()[1:]\n"
        "print('ROUTES', len(routes))\n"
        "print('RESOLV', os.path.exists('/etc/resolv.conf'))\n"
    )
    result = await box.py(code)
    assert result.ok, result.output
    assert "IFACES ['lo']" in result.output and "NAMES ['lo']" in result.output
    assert "ROUTES 0" in result.output  # no default route: nothing but 127/8 is reachable
    assert "RESOLV False" in result.output  # no resolver configured


LISTEN = (
    "import socket, sys\n"
    "s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
    "s.bind((sys.argv[1], int(sys.argv[2]))); s.listen(8)\n"
    "print('LISTENING', flush=True)\n"
    "while True:\n"
    "    c, _ = s.accept(); c.sendall(b'HELLO'); c.close()\n"
)


def connect_from_host(ip: str, port: int) -> bytes:
    with socket.create_connection((ip, port), timeout=30) as conn:
        return conn.recv(5)


@pytest.fixture
def netns_listener() -> Iterator[tuple[str, int]]:
    """A listener on an address inside a network namespace this test makes (veth to it)."""
    require_root()
    require(shutil.which("ip") is not None, "iproute2 is not installed (.ci/run installs it)")
    tag = uuid.uuid4().hex[:6]
    ns, host_end, ns_end = f"pbt-{tag}", f"pbh{tag}", f"pbn{tag}"
    # One /30 of 10.231.0.0/16 out of 16384: two suites running at once rarely share one.
    base = (int(tag, 16) % 16384) * 4
    prefix = f"10.231.{base >> 8}."
    host_ip, ns_ip, port = f"{prefix}{(base & 255) + 1}", f"{prefix}{(base & 255) + 2}", 8099

    def ip(*args: str, netns: bool = False) -> None:
        prefix = ["ip", "netns", "exec", ns] if netns else []
        subprocess.run([*prefix, "ip", *args], check=True, capture_output=True)

    listener: subprocess.Popen[bytes] | None = None
    try:
        subprocess.run(["ip", "netns", "add", ns], check=True, capture_output=True)
        ip("link", "add", host_end, "type", "veth", "peer", "name", ns_end)
        ip("link", "set", ns_end, "netns", ns)
        ip("addr", "add", f"{host_ip}/30", "dev", host_end)
        ip("link", "set", host_end, "up")
        ip("addr", "add", f"{ns_ip}/30", "dev", ns_end, netns=True)
        ip("link", "set", ns_end, "up", netns=True)
        ip("link", "set", "lo", "up", netns=True)
        listener = subprocess.Popen(
            ["ip", "netns", "exec", ns, PY, "-c", LISTEN, ns_ip, str(port)],
            stdout=subprocess.PIPE,
        )
        assert listener.stdout is not None and b"LISTENING" in listener.stdout.readline()
        yield ns_ip, port
    finally:
        if listener is not None:
            listener.kill()
            listener.wait()
        subprocess.run(["ip", "link", "del", host_end], capture_output=True)
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)


async def test_a_listener_in_another_network_namespace_is_not_reachable(
    box: Box, netns_listener: tuple[str, int]
) -> None:
    ns_ip, port = netns_listener
    # The target is live: from the host it answers.
    assert connect_from_host(ns_ip, port) == b"HELLO"
    code = (
        "import socket, sys\n"
        "try:\n"
        "    c = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=3)\n"
        "    print('REACHED', c.recv(5))\n"
        "except OSError as e:\n"
        "    print('unreachable', e.errno)\n"
    )
    result = await box.sandbox.run([PY, "-c", code, ns_ip, str(port)], box.workspace)
    assert result.ok, result.output
    assert "REACHED" not in result.output
    assert "unreachable 101" in result.output  # ENETUNREACH: no route out of the sandbox
    assert connect_from_host(ns_ip, port) == b"HELLO"  # and it was up all along


async def test_localhost_resolves_offline(box: Box) -> None:
    result = await box.py("import socket; print(socket.gethostbyname('localhost'))")
    assert result.ok and result.output.strip() == "127.0.0.1"


async def test_a_fork_bomb_is_contained_and_the_run_ends(box: Box) -> None:
    marker = f"bomb-{uuid.uuid4().hex}"
    code = (
        "import os, sys, time\n"
        "failed = 0\n"
        "for _ in range(2000):\n"
        "    try:\n"
        "        if os.fork() == 0:\n"
        "            while True:\n"
        "                try: os.fork()\n"
        "                except OSError: time.sleep(0.05)\n"
        "    except OSError:\n"
        "        failed += 1\n"
        "print('forks refused:', failed, flush=True)\n"
        "time.sleep(600)\n"
    )
    limits = replace(box.limits, processes=64, timeout_s=4)
    started = time.monotonic()
    result = await box.sandbox.run([PY, "-c", code, marker], box.workspace, limits)
    assert time.monotonic() - started < limits.timeout_s + limits.kill_grace_s + SLACK_S
    assert result.timed_out
    refused = int(result.output.split("forks refused:")[1].split()[0])
    assert refused > 1000  # the process limit, not the host, stopped it
    await none_left(marker)


async def test_filling_the_disk_stops_at_the_file_size_limit(box: Box) -> None:
    code = "f = open('big', 'wb')\nwhile True: f.write(b'x' * 65536)\n"
    limits = replace(box.limits, file_size_bytes=2_000_000)
    result = await box.py(code, limits)
    assert not result.ok and not result.timed_out
    assert (box.workspace / "big").stat().st_size <= 2_000_000


async def test_tmp_is_a_size_capped_tmpfs(box: Box) -> None:
    code = (
        "import os, errno\n"
        "try:\n"
        "    for i in range(1000):\n"
        "        with open(f'/tmp/f{i}', 'wb') as f: f.write(b'x' * 1_000_000)\n"
        "    print('FILLED')\n"
        "except OSError as e:\n"
        "    print('stopped', errno.errorcode[e.errno], i)\n"
    )
    limits = replace(box.limits, tmpfs_bytes=8_000_000)
    result = await box.py(code, limits)
    assert "stopped ENOSPC" in result.output, result.output
    assert int(result.output.split()[-1]) <= 8


async def test_200_mb_of_output_is_capped_without_deadlock(box: Box) -> None:
    limits = replace(box.limits, output_bytes=1_000_000, timeout_s=60)
    result = await box.sandbox.run(
        ["/usr/bin/head", "-c", "200000000", "/dev/zero"], box.workspace, limits
    )
    assert result.ok and not result.timed_out
    assert result.output_bytes == 200_000_000 and result.truncated
    assert len(result.head.encode()) + len(result.tail.encode()) <= 1_000_000


async def test_ignoring_sigterm_still_ends_at_the_timeout(box: Box) -> None:
    code = "import signal, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\ntime.sleep(600)\n"
    limits = replace(box.limits, timeout_s=1.5, kill_grace_s=0.5)
    started = time.monotonic()
    result = await box.py(code, limits)
    assert result.timed_out and not result.ok
    assert time.monotonic() - started < 1.5 + 0.5 + SLACK_S


async def test_sleeping_forever_ends_within_the_limit(box: Box) -> None:
    limits = replace(box.limits, timeout_s=2, kill_grace_s=0.5)
    started = time.monotonic()
    result = await box.sandbox.run(["/usr/bin/sleep", "infinity"], box.workspace, limits)
    assert result.timed_out
    assert time.monotonic() - started < 2 + 0.5 + SLACK_S


DOUBLE_FORK = (
    "import os, sys, time\n"
    "if os.fork() == 0:\n"
    "    os.setsid()\n"
    "    if os.fork() == 0:\n"
    "        os.execv('/usr/bin/python3', ['python3', '-c', 'import time; time.sleep(600)', "
    "sys.argv[1]])\n"
    "    os._exit(0)\n"
    "time.sleep(0.5)\n"
    "print('parent done', flush=True)\n"
)


async def test_a_double_forked_grandchild_does_not_outlive_the_run(box: Box) -> None:
    marker = f"escapee-{uuid.uuid4().hex}"
    result = await box.sandbox.run([PY, "-c", DOUBLE_FORK, marker], box.workspace, box.limits)
    assert result.ok and "parent done" in result.output
    await none_left(marker)


async def test_a_setsid_grandchild_does_not_outlive_a_timeout(box: Box) -> None:
    marker = f"escapee-{uuid.uuid4().hex}"
    code = DOUBLE_FORK + "time.sleep(600)\n"
    limits = replace(box.limits, timeout_s=2, kill_grace_s=0.5)
    result = await box.sandbox.run([PY, "-c", code, marker], box.workspace, limits)
    assert result.timed_out
    await none_left(marker)


async def test_setsid_from_the_shell_does_not_outlive_the_run(box: Box) -> None:
    marker = f"escapee-{uuid.uuid4().hex}"
    result = await box.sandbox.run(
        [
            "/bin/sh",
            "-c",
            f"setsid {PY} -c 'import time; time.sleep(600)' {marker} </dev/null >/dev/null 2>&1 &"
            " sleep 0.5",
        ],
        box.workspace,
    )
    assert result.ok
    await none_left(marker)


async def test_the_uid_is_not_root_and_there_are_no_capabilities(box: Box) -> None:
    result = await box.sandbox.run(["/bin/cat", "/proc/self/status"], box.workspace)
    fields = dict(line.split(":", 1) for line in result.output.splitlines() if ":" in line)
    assert fields["Uid"].split()[0] != "0" and fields["Gid"].split()[0] != "0"
    for cap in ("CapEff", "CapPrm", "CapBnd", "CapAmb"):
        assert int(fields[cap].strip(), 16) == 0, cap


async def test_no_new_user_namespace_inside(box: Box) -> None:
    result = await box.sandbox.run(["/usr/bin/unshare", "--user", "true"], box.workspace)
    assert not result.ok


async def test_a_read_only_mounted_cache_tree_cannot_be_changed(box: Box) -> None:
    # The shared node_modules reaches a run only by a read-only mount (issue 8): whatever
    # uid the sandbox maps to (the bot's own when the bot is not root), no chmod, no write.
    tree = box.data_dir / "cache-tree"
    tree.mkdir()
    cache = tree / "cache-file.js"
    cache.write_text("original\n")
    cache.chmod(0o644)  # writable by its owner: only the mount protects it
    target = box.workspace / "node_modules"
    mounts = [Mount(box.workspace, box.workspace, writable=True), Mount(target, tree)]
    code = (
        "import os\n"
        "for attempt in (lambda: os.chmod('node_modules/cache-file.js', 0o666), "
        "lambda: open('node_modules/cache-file.js', 'a').write('poisoned'), "
        "lambda: open('node_modules/new.js', 'w').write('planted')):\n"
        "    try:\n"
        "        attempt(); print('CHANGED')\n"
        "    except OSError as e:\n"
        "        print('refused', e.errno)\n"
    )
    result = await box.sandbox.run([PY, "-c", code], box.workspace, box.limits, mounts=mounts)
    assert "CHANGED" not in result.output, result.output
    # EROFS (or EACCES first, where the sandbox uid is not the file's owner).
    assert result.output.count("refused") == 3, result.output
    assert cache.read_text() == "original\n"
    assert stat.S_IMODE(cache.stat().st_mode) == 0o644
    assert sorted(p.name for p in tree.iterdir()) == ["cache-file.js"]


async def test_extra_writable_paths_are_writable_and_nothing_else(box: Box) -> None:
    extra = box.data_dir / "npm-cache"
    extra.mkdir()
    code = "open('/'.join([__import__('sys').argv[1], 'x']), 'w').write('ok')"
    result = await box.sandbox.run([PY, "-c", code, str(extra)], box.workspace, writable=[extra])
    assert result.ok, result.output
    assert (extra / "x").read_text() == "ok" and (extra / "x").stat().st_uid == os.geteuid()
    # Without the bind the same write lands, at most, in the sandbox's own /tmp.
    await box.sandbox.run([PY, "-c", code, str(box.data_dir)], box.workspace)
    assert not (box.data_dir / "x").exists()


async def test_memory_is_capped_per_process(box: Box) -> None:
    limits = replace(box.limits, memory_bytes=256 * 1024**2)
    code = (
        "try:\n"
        "    blob = bytearray(512 * 1024 * 1024); print('ALLOCATED', len(blob))\n"
        "except MemoryError:\n"
        "    print('refused')\n"
    )
    result = await box.py(code, limits)
    assert "refused" in result.output and "ALLOCATED" not in result.output


async def test_node_runs_under_the_memory_cap_and_cannot_exceed_it(box: Box) -> None:
    require(Path("/usr/bin/node").exists(), "node is not at /usr/bin/node")
    limits = replace(box.limits, memory_bytes=512 * 1024**2)
    small = await box.sandbox.run(
        ["/usr/bin/node", "-e", "console.log(1+1)"], box.workspace, limits
    )
    assert small.ok and small.output.strip() == "2"
    hog = "const a = []; for (;;) a.push(Buffer.alloc(64 << 20, 1));"
    result = await box.sandbox.run(["/usr/bin/node", "-e", hog], box.workspace, limits)
    assert not result.ok and not result.timed_out


async def test_cancel_kills_every_process_of_the_run(box: Box) -> None:
    marker = f"escapee-{uuid.uuid4().hex}"
    code = DOUBLE_FORK + "time.sleep(600)\n"
    cancel = asyncio.Event()
    cancelled_at: list[float] = []

    async def cancel_once_escaped() -> None:
        # The setsid grandchild (the escapee) is running: now the cancel.
        await eventually(lambda: processes_with(marker), what="the escapee running")
        cancelled_at.append(time.monotonic())
        cancel.set()

    canceller = asyncio.create_task(cancel_once_escaped())
    result = await box.sandbox.run([PY, "-c", code, marker], box.workspace, cancel=cancel)
    await canceller
    assert result.cancelled and not result.timed_out
    assert time.monotonic() - cancelled_at[0] < box.limits.kill_grace_s + SLACK_S
    await none_left(marker)


async def test_cancelling_the_awaiting_task_kills_every_process(box: Box) -> None:
    marker = f"escapee-{uuid.uuid4().hex}"
    code = DOUBLE_FORK + "time.sleep(600)\n"
    task = asyncio.create_task(box.sandbox.run([PY, "-c", code, marker], box.workspace))
    await eventually(lambda: processes_with(marker), what="the escapee running")
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await none_left(marker)

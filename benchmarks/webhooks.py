"""Webhook acknowledgement, plugin-bot (SQLite, PostgreSQL) side by side with Probot 14,
plus the bot's memory and a warm scaffold → signed plugin and one check round.

    .venv/bin/python benchmarks/webhooks.py [--requests 3000] [--connections 50] [--rounds 3]
        [--no-pipeline]

* Load: a separate process (benchmarks/webhook_load.py) sends signed real payloads
  (``issue_comment.created`` from @octokit/webhooks-examples, the comment body set to a
  ``/create-plugin`` command) over keep-alive loopback connections; 20 % of the delivery
  ids repeat one already sent. plugin-bot answers 202 only once the command is in its
  database; the row count is checked after the load (``stored``).
* Probot 14 is installed from the npm registry into a temporary folder in the same run and
  serves an app whose ``issue_comment.created`` handler is empty.
* SQLite twice: as configured by default (``synchronous=FULL``: every commit fsynced, a 202
  survives a power cut) and with ``SQLITE_SYNCHRONOUS=normal`` (the commit is in the WAL
  file when the 202 leaves: it survives the process being killed, not the machine).
* PostgreSQL: the machine's server (``pg_ctlcluster 15 main start``), a fresh database.
* RSS: VmRSS of the server process after start-up and a warm-up (idle) and its peak while
  under load, sampled every 20 ms.
* Pipeline: ``plugin-bot create --generator scaffold`` twice (the second is warm: the npm
  cache is filled) and ``plugin-bot check`` once on its output, in the bwrap sandbox.

Everything stays on loopback and is bounded in count (--requests) and time (--timeout).
Prints medians over the rounds and ratios against Probot in the same run.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from cryptography.hazmat.primitives import serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import rsa  # noqa: E402

from tests.fakes.github import webhook_example  # noqa: E402

PYTHON = sys.executable
SECRET = "benchmark-webhook-secret"
PROBOT_VERSION = "14.3.2"
PG_SOCKET = "/var/run/postgresql"
COMMAND = "/create-plugin a weather plugin that reports the current temperature for a city"
PROBOT_APP = """export default (app) => {
  app.on("issue_comment.created", async () => {});
};
"""


@dataclass
class Target:
    name: str
    argv: list[str]
    env: dict[str, str]
    url: str
    cwd: Path
    stored: callable | None = None  # type: ignore[valid-type]
    rounds: list[dict[str, object]] = field(default_factory=list)
    rss_idle_mb: float = 0.0
    rss_peak_mb: float = 0.0
    stored_rows: int | None = None
    sent_unique: int = 0
    cpu_us: list[float] = field(default_factory=list)  # server CPU per request, per round


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process so far (all its threads)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wait_listening(port: int, proc: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.1)
    raise RuntimeError("server did not listen in time")


@contextlib.contextmanager
def running(target: Target, port: int) -> Iterator[subprocess.Popen[bytes]]:
    log_path = target.cwd / f"{target.name.replace(' ', '_')}.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            target.argv, env=target.env, cwd=target.cwd, stdout=log, stderr=subprocess.STDOUT
        )
        try:
            wait_listening(port, proc)
            yield proc
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def load(
    target: Target,
    body: Path,
    requests: int,
    connections: int,
    seed: int,
    timeout: float,
    duplicates: float = 0.2,
) -> dict[str, object]:
    argv = [
        PYTHON,
        str(REPO / "benchmarks" / "webhook_load.py"),
        target.url,
        str(body),
        SECRET,
        "--requests",
        str(requests),
        "--connections",
        str(connections),
        "--timeout",
        str(timeout),
        "--seed",
        str(seed),
        "--duplicates",
        str(duplicates),
    ]
    done = subprocess.run(argv, capture_output=True, check=True, timeout=timeout + 30)
    return json.loads(done.stdout)


def measure(target: Target, port: int, body: Path, args: argparse.Namespace) -> None:
    with running(target, port) as proc:
        load(target, body, 200, 10, 1000, args.timeout, duplicates=0.0)  # warm-up
        time.sleep(1.0)
        target.rss_idle_mb = rss_mb(proc.pid)
        peak = [target.rss_idle_mb]
        stop = threading.Event()

        def sample() -> None:
            while not stop.is_set():
                peak.append(rss_mb(proc.pid))
                time.sleep(0.02)

        sampler = threading.Thread(target=sample)
        sampler.start()
        try:
            for n in range(args.rounds):
                before = cpu_s(proc.pid)
                result = load(target, body, args.requests, args.connections, n + 1, args.timeout)
                used = cpu_s(proc.pid) - before
                target.cpu_us.append(1e6 * used / max(int(result["requests"]), 1))  # type: ignore[call-overload]
                target.rounds.append(result)
                target.sent_unique += result["requests"] - result["duplicates"]  # type: ignore[operator]
        finally:
            stop.set()
            sampler.join()
        target.rss_peak_mb = max(peak)
    if target.stored is not None:
        target.stored_rows = target.stored()


def payload_file(tmp: Path) -> Path:
    payload = webhook_example("issue_comment", "created")
    payload["comment"]["body"] = COMMAND
    path = tmp / "issue_comment.created.json"
    path.write_bytes(json.dumps(payload).encode())
    return path


def bot_env(data: Path, database_url: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "DATABASE_"))}
    env.update(GITHUB_WEBHOOK_SECRET=SECRET, BOT_DATA_DIR=str(data), GITHUB_APP_ID="1")
    if database_url:
        env["DATABASE_URL"] = database_url
    return env


def delivery_rows(url: str) -> int:
    import asyncio

    from sqlalchemy import func, select

    from bot.jobs.store import Store
    from bot.jobs.tables import deliveries

    async def count() -> int:
        store = Store.from_url(url)
        async with store.engine.begin() as conn:
            n = (await conn.execute(select(func.count()).select_from(deliveries))).scalar_one()
        await store.close()
        return int(n)

    return asyncio.run(count())


def sqlite_target(tmp: Path, synchronous: str = "full") -> Target:
    """SQLite as configured by default (every commit fsynced), or with
    ``SQLITE_SYNCHRONOUS=normal`` (commits survive the process, not a power cut)."""
    data = tmp / f"sqlite-{synchronous}"
    data.mkdir()
    port = free_port()
    url = f"sqlite+aiosqlite:///{data / 'jobs.db'}"
    env = bot_env(data, url)
    env["SQLITE_SYNCHRONOUS"] = synchronous
    name = "plugin-bot SQLite" if synchronous == "full" else f"plugin-bot SQLite {synchronous}"
    target = Target(
        name,
        [PYTHON, str(REPO / "benchmarks" / "webhook_server.py"), str(port)],
        env,
        f"http://127.0.0.1:{port}/webhook",
        tmp,
        stored=lambda: delivery_rows(url),
    )
    target.port = port  # type: ignore[attr-defined]
    return target


def postgres_database() -> str | None:
    if not Path(PG_SOCKET).exists():
        return None
    import psycopg

    name = f"bench_webhooks_{uuid.uuid4().hex[:8]}"
    try:
        with psycopg.connect(f"host={PG_SOCKET} dbname=postgres", autocommit=True) as c:
            c.execute(f'CREATE DATABASE "{name}"')
    except psycopg.Error as exc:
        print(f"PostgreSQL unavailable ({exc}); start it with `pg_ctlcluster 15 main start`")
        return None
    return name


def drop_postgres(name: str) -> None:
    import psycopg

    with psycopg.connect(f"host={PG_SOCKET} dbname=postgres", autocommit=True) as c:
        c.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def postgres_target(tmp: Path, name: str) -> Target:
    data = tmp / "pg"
    data.mkdir()
    port = free_port()
    url = f"postgresql+psycopg:///{name}?host={PG_SOCKET}"
    target = Target(
        "plugin-bot PostgreSQL",
        [PYTHON, str(REPO / "benchmarks" / "webhook_server.py"), str(port)],
        bot_env(data, url),
        f"http://127.0.0.1:{port}/webhook",
        tmp,
        stored=lambda: delivery_rows(url),
    )
    target.port = port  # type: ignore[attr-defined]
    return target


def probot_target(tmp: Path) -> tuple[Target, float]:
    folder = tmp / "probot"
    folder.mkdir()
    (folder / "package.json").write_text('{"private": true, "type": "module"}\n')
    (folder / "index.js").write_text(PROBOT_APP)
    started = time.perf_counter()
    subprocess.run(
        [
            "npm",
            "install",
            "--no-audit",
            "--no-fund",
            "--ignore-scripts",
            "--loglevel=error",
            f"probot@{PROBOT_VERSION}",
        ],
        cwd=folder,
        check=True,
        capture_output=True,
        timeout=600,
    )
    install_s = time.perf_counter() - started
    key = (
        rsa.generate_private_key(public_exponent=65537, key_size=2048)
        .private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        .decode()
    )
    port = free_port()
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(folder),
        "APP_ID": "1",
        "PRIVATE_KEY": key,
        "WEBHOOK_SECRET": SECRET,
        "PORT": str(port),
        "HOST": "127.0.0.1",
        "LOG_LEVEL": "warn",
        "NODE_ENV": "production",
    }
    node = shutil.which("node") or "node"
    target = Target(
        f"Probot {PROBOT_VERSION}",
        [node, "node_modules/probot/bin/probot.js", "run", "./index.js"],
        env,
        f"http://127.0.0.1:{port}/api/github/webhooks",
        folder,
    )
    target.port = port  # type: ignore[attr-defined]
    return target, install_s


def bot_command(argv: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    done = subprocess.run(
        [PYTHON, "-m", "bot", *argv], cwd=REPO, env=env, capture_output=True, timeout=900
    )
    if done.returncode != 0:
        raise RuntimeError(f"plugin-bot {argv[0]} failed:\n{done.stdout.decode()[-3000:]}")
    return time.perf_counter() - started


def pipeline_times(tmp: Path) -> dict[str, float]:
    """Warm scaffold → signed plugin (the second of two runs) and one check round."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "ANTHROPIC_"))}
    env["BOT_DATA_DIR"] = str(tmp / "pipeline-data")
    env["COLUMNS"] = "200"
    bot_command(["keygen", "--out", str(tmp / "keys")], env)
    env["SIGNING_KEY_PATH"] = str(next((tmp / "keys").glob("*.pem")))
    out = tmp / "plugin"
    times: dict[str, float] = {}
    for run in ("cold", "warm"):
        times[f"create → signed ({run})"] = bot_command(
            [
                "create",
                "a weather plugin that reports the temperature",
                "--generator",
                "scaffold",
                "--out",
                str(out),
                "--force",
            ],
            env,
        )
    plugin = next(p for p in out.rglob("plugin-manifest.dsse.json")).parent
    times["check round"] = bot_command(["check", str(plugin)], env)
    return times


def med(target: Target, key: str) -> float:
    values = [float(r[key]) for r in target.rounds if r.get(key) is not None]  # type: ignore[arg-type]
    return statistics.median(values) if values else float("nan")


def table(targets: list[Target], args: argparse.Namespace) -> str:
    probot = next((t for t in targets if t.name.startswith("Probot")), None)
    base = med(probot, "rps") if probot else float("nan")
    header = (
        f"{'server':<24} {'req/s':>8} {'vs Probot':>9} {'p50 ms':>7} {'p99 ms':>7} "
        f"{'errors':>6} {'CPU µs/req':>10} {'RSS idle':>9} {'RSS load':>9} {'stored':>14}"
    )
    lines = [header, "-" * len(header)]
    for t in targets:
        errors = sum(int(r["errors"]) + int(r["unsent"]) for r in t.rounds)  # type: ignore[call-overload]
        stored = "–" if t.stored_rows is None else f"{t.stored_rows}/{t.sent_unique + 200}"
        lines.append(
            f"{t.name:<24} {med(t, 'rps'):>8.0f} {med(t, 'rps') / base:>8.2f}x "
            f"{med(t, 'p50_ms'):>7.1f} {med(t, 'p99_ms'):>7.1f} {errors:>6} "
            f"{statistics.median(t.cpu_us) if t.cpu_us else float('nan'):>10.0f} "
            f"{t.rss_idle_mb:>7.0f}MB {t.rss_peak_mb:>7.0f}MB {stored:>14}"
        )
    lines.append(
        f"medians of {args.rounds} rounds × {args.requests} requests, {args.connections} "
        "connections, 20 % duplicate delivery ids; stored = delivery rows / unique ids sent;\n"
        "every server is one process (plugin-bot: one event loop, plus its commit thread); "
        "CPU µs/req = the server process's user+system CPU per answered request"
    )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--timeout", type=float, default=120.0)
    parser.add_argument("--no-pipeline", action="store_true")
    parser.add_argument("--no-load", action="store_true", help="only the create/check times")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-webhooks-") as raw:
        tmp = Path(raw)
        tmp.chmod(0o755)  # the sandbox uid must reach BOT_DATA_DIR inside it
        if args.no_load:
            for name, seconds in pipeline_times(tmp).items():
                print(f"{name:<26} {seconds:>8.1f} s")
            return
        body = payload_file(tmp)
        load_start = os.getloadavg()
        targets = [sqlite_target(tmp), sqlite_target(tmp, "normal")]
        pg = postgres_database()
        if pg is not None:
            targets.append(postgres_target(tmp, pg))
        probot, install_s = probot_target(tmp)
        targets.append(probot)
        try:
            for target in targets:
                measure(target, target.port, body, args)  # type: ignore[attr-defined]
        finally:
            if pg is not None:
                drop_postgres(pg)
        print(table(targets, args))
        print(
            "load average (1/5/15 min) at the start: "
            + " / ".join(f"{x:.1f}" for x in load_start)
            + ", at the end: "
            + " / ".join(f"{x:.1f}" for x in os.getloadavg())
        )
        print(f"Probot {PROBOT_VERSION} installed from the npm registry in {install_s:.1f} s")
        if not args.no_pipeline:
            for name, seconds in pipeline_times(tmp).items():
                print(f"{name:<26} {seconds:>8.1f} s")


if __name__ == "__main__":
    main()

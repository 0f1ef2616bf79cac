"""The load process of benchmarks/webhooks.py: N signed webhook POSTs over C keep-alive
connections to a loopback URL, as fast as answers come; prints one JSON line.

    python benchmarks/webhook_load.py URL BODY_FILE SECRET --requests N --connections C
        [--duplicates 0.2] [--timeout 60]

Each request carries its own delivery id; a share of them (--duplicates) repeats an id
already sent, as GitHub's redeliveries do. A 2xx answer counts as ok, anything else (or a
broken connection) as an error. Raw HTTP/1.1 on asyncio streams: the client must cost less
than the servers it measures.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import json
import random
import statistics
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit


def request_bytes(host: str, path: str, body: bytes, secret: str, delivery: str) -> bytes:
    signature = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nX-GitHub-Event: issue_comment\r\n"
        f"X-GitHub-Delivery: {delivery}\r\nX-Hub-Signature-256: {signature}\r\n"
        "User-Agent: GitHub-Hookshot/bench\r\n\r\n"
    )
    return head.encode() + body


def delivery_ids(n: int, duplicates: float, seed: int = 7) -> list[str]:
    rng = random.Random(seed)
    ids: list[str] = []
    for _ in range(n):
        if ids and rng.random() < duplicates:
            ids.append(rng.choice(ids))
        else:
            ids.append(str(uuid.UUID(int=rng.getrandbits(128))))
    return ids


async def read_answer(reader: asyncio.StreamReader) -> int:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    length = 0
    chunked = False
    for line in lines[1:]:
        name, _, value = line.partition(":")
        if name.lower() == "content-length":
            length = int(value)
        elif name.lower() == "transfer-encoding" and "chunked" in value.lower():
            chunked = True
    if chunked:
        while True:
            size = int((await reader.readuntil(b"\r\n")).strip(), 16)
            await reader.readexactly(size + 2)
            if size == 0:
                break
    elif length:
        await reader.readexactly(length)
    return status


async def connection(
    url: str, queue: list[bytes], latencies: list[float], errors: list[str], deadline: float
) -> None:
    parts = urlsplit(url)
    reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
    try:
        while queue and time.monotonic() < deadline:
            payload = queue.pop()
            started = time.perf_counter()
            writer.write(payload)
            try:
                status = await read_answer(reader)
            except (asyncio.IncompleteReadError, ConnectionError) as exc:
                errors.append(type(exc).__name__)
                return
            latencies.append(time.perf_counter() - started)
            if not 200 <= status < 300:
                errors.append(str(status))
    finally:
        writer.close()


async def run(args: argparse.Namespace) -> dict[str, object]:
    parts = urlsplit(args.url)
    body = Path(args.body).read_bytes()  # before any connection: nothing else runs yet
    ids = delivery_ids(args.requests, args.duplicates, args.seed)
    queue = [request_bytes(parts.netloc, parts.path, body, args.secret, d) for d in ids]
    queue.reverse()
    latencies: list[float] = []
    errors: list[str] = []
    deadline = time.monotonic() + args.timeout
    started = time.perf_counter()
    await asyncio.gather(
        *(connection(args.url, queue, latencies, errors, deadline) for _ in range(args.connections))
    )
    wall = time.perf_counter() - started
    latencies.sort()
    done = len(latencies)
    return {
        "requests": done,
        "unsent": len(queue),
        "errors": len(errors),
        "error_kinds": sorted(set(errors))[:5],
        "duplicates": args.requests - len(set(ids)),
        "wall_s": wall,
        "rps": done / wall if wall else 0.0,
        "p50_ms": 1000 * statistics.median(latencies) if latencies else None,
        "p99_ms": 1000 * latencies[min(done - 1, int(done * 0.99))] if latencies else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("body")
    parser.add_argument("secret")
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--duplicates", type=float, default=0.2)
    parser.add_argument("--timeout", type=float, default=60.0)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(run(args))))


if __name__ == "__main__":
    main()

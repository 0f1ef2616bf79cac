"""The suite's own guard (tests/conftest.py): a test's Python code reaches only this machine."""

from __future__ import annotations

import asyncio
import socket

import httpx
import pytest

from tests.conftest import OutsideNetwork


@pytest.mark.parametrize(
    "host", ["api.anthropic.com", "api.github.com", "192.0.2.10", "10.0.0.1", "::ffff:8.8.8.8"]
)
def test_resolving_or_connecting_outside_this_machine_is_refused(host: str) -> None:
    with pytest.raises(OutsideNetwork, match="tests reach only this machine"):
        socket.getaddrinfo(host, 443)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    if host[0].isdigit() or ":" in host:
        with (
            socket.socket(family, socket.SOCK_STREAM) as sock,
            pytest.raises(OutsideNetwork, match=host.split(":")[-1]),
        ):
            sock.connect((host, 443))


def test_an_http_client_aimed_outside_fails_before_any_packet() -> None:
    with pytest.raises(httpx.ConnectError, match="tests reach only this machine"):
        httpx.get("https://api.anthropic.com/v1/messages", timeout=5)


async def test_loopback_still_works() -> None:
    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(await reader.readline())
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        for host in ("127.0.0.1", "localhost"):
            reader, writer = await asyncio.open_connection(host, port)
            writer.write(b"ping\n")
            assert await reader.readline() == b"ping\n"
            writer.close()

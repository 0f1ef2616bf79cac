import asyncio
import ipaddress
import os
import shutil
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest

# Under CI=true a test that cannot run is a failure, never a skip (CI must prove it).
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def require(ok: bool, why: str) -> None:
    """Skip the test when ``ok`` is false, except under CI=true, where it fails."""
    if ok:
        return
    if IN_CI:
        pytest.fail(f"CI=true and this test cannot run: {why}", pytrace=False)
    pytest.skip(why)


def require_bwrap() -> None:
    require(
        shutil.which("bwrap") is not None and Path("/usr/bin/python3").exists(),
        "bubblewrap is not installed (apt-get install -y bubblewrap), or /usr/bin/python3 "
        "is missing; the sandbox tests need both",
    )


# .ci/run's second pass, as an unprivileged uid: the root-only tests ran in the first.
UNPRIVILEGED_PASS = os.environ.get("PLUGIN_BOT_UNPRIVILEGED_PASS") == "1"


def require_root() -> None:
    if os.geteuid() != 0 and UNPRIVILEGED_PASS:
        pytest.skip("root-only: ran in .ci/run's root pass")
    require(os.geteuid() == 0, "runs only as root (.ci/run runs it as root)")


T = TypeVar("T")


async def eventually(
    check: Callable[[], T], *, within: float = 30.0, every: float = 0.05, what: str = ""
) -> T:
    """Poll ``check`` until it returns something truthy and return that; fail after
    ``within`` seconds (generous: a loaded CI machine is slow, a passing test waits no
    longer than its condition takes)."""
    deadline = time.monotonic() + within
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what or 'condition'} not reached within {within}s: {value!r}")
        await asyncio.sleep(every)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # Fast tests first: a failing unit test should not wait behind npm installs.
    items.sort(key=lambda item: "integration" in item.keywords)


# Tests reach only this machine: loopback, Unix sockets, and the network namespaces a test
# makes itself (tests/sandbox/test_escapes.py uses 10.231.0.0/16). Anything else a test's own
# Python code tries to resolve or connect to is refused with the address it aimed at, before a
# packet leaves (subprocesses such as npm are outside this guard; .ci/run gives them the registry).
_LOCAL_NETWORKS = [ipaddress.ip_network(n) for n in ("127.0.0.0/8", "::1/128", "10.231.0.0/16")]
_LOCAL_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost"}


def _is_local(host: object) -> bool:
    if host is None or host == "":
        return True
    if isinstance(host, bytes):
        host = host.decode("ascii", "replace")
    name = str(host).strip("[]").lower()
    if name in _LOCAL_NAMES or name.endswith(".localhost"):
        return True
    try:
        address = ipaddress.ip_address(name.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return any(address in network for network in _LOCAL_NETWORKS)


class OutsideNetwork(OSError):
    """A test tried to reach something that is not this machine."""


def _refuse(target: object) -> OutsideNetwork:
    return OutsideNetwork(
        f"a test tried to reach {target!r}: tests reach only this machine "
        "(loopback, or a network namespace the test makes)"
    )


_real_getaddrinfo = socket.getaddrinfo
_real_connect = socket.socket.connect
_real_connect_ex = socket.socket.connect_ex


def _guarded_getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
    if not _is_local(host):
        raise _refuse(host)
    return _real_getaddrinfo(host, *args, **kwargs)


def _check_address(sock: socket.socket, address: Any) -> None:
    if sock.family in (socket.AF_INET, socket.AF_INET6) and not _is_local(address[0]):
        raise _refuse(address)


def _guarded_connect(self: socket.socket, address: Any) -> None:
    _check_address(self, address)
    _real_connect(self, address)


def _guarded_connect_ex(self: socket.socket, address: Any) -> int:
    _check_address(self, address)
    return _real_connect_ex(self, address)


socket.getaddrinfo = _guarded_getaddrinfo
socket.socket.connect = _guarded_connect  # type: ignore[method-assign]
socket.socket.connect_ex = _guarded_connect_ex  # type: ignore[method-assign]

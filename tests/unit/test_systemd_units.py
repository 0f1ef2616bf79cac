"""The systemd units in deploy/: `systemd-analyze verify`, Delegate=yes, the user, the
credentials, and exactly the hardening under which bubblewrap still builds a sandbox.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.deploy_files import (
    SECRET_NAME,
    UNITS,
    require_tool,
    sandbox_builds_under,
    unit,
    unit_values,
)


def systemd_verify(paths: list[Path], tmp_path: Path) -> str:
    """`systemd-analyze verify`, with ExecStart pointed at this checkout's plugin-bot."""
    analyze = require_tool("systemd-analyze")
    plugin_bot = require_tool("plugin-bot", path=str(Path(sys.executable).parent))
    copies = []
    for path in paths:
        copy = tmp_path / path.name
        copy.write_text(path.read_text().replace("/opt/plugin-bot/venv/bin/plugin-bot", plugin_bot))
        copies.append(str(copy))
    done = subprocess.run([analyze, "verify", *copies], capture_output=True, text=True, timeout=60)
    # verify exits 0 on unknown keys and bad values: it only warns, so its output counts.
    return (done.stdout + done.stderr).strip() + ("" if done.returncode == 0 else " (failed)")


def test_the_systemd_units_verify_cleanly(tmp_path: Path) -> None:
    assert systemd_verify(UNITS, tmp_path) == ""


def test_systemd_verify_reports_a_bad_value_and_an_unknown_key(tmp_path: Path) -> None:
    bad = tmp_path / "src" / "bad.service"
    bad.parent.mkdir()
    text = UNITS[0].read_text().replace("Delegate=yes", "Delegate=maybe\nDelgate=yes")
    bad.write_text(text)
    report = systemd_verify([bad], tmp_path)
    assert "Invalid controller name 'maybe'" in report
    assert "Unknown key 'Delgate'" in report


@pytest.mark.parametrize("path", UNITS, ids=lambda p: p.name)
def test_the_units_delegate_cgroups_and_run_hardened_as_the_bot_user(path: Path) -> None:
    service = dict(unit(path)["Service"])
    assert service["Delegate"] == "yes"
    assert service["ProtectControlGroups"] == "no", "the delegated subtree must stay writable"
    assert service["User"] not in {"root", "0", ""}
    for key, value in {
        "NoNewPrivileges": "yes",
        "ProtectSystem": "strict",
        "ProtectHome": "yes",
        "PrivateTmp": "yes",
        "CapabilityBoundingSet": "",
        "StateDirectory": "plugin-bot",
        "KillMode": "control-group",
    }.items():
        assert service[key] == value, key
    assert unit_values(path, "Install", "WantedBy") == ["multi-user.target"]


@pytest.mark.parametrize("path", UNITS, ids=lambda p: p.name)
def test_the_units_take_keys_as_credentials_and_secrets_from_an_env_file(path: Path) -> None:
    environment = dict(v.split("=", 1) for v in unit_values(path, "Service", "Environment"))
    credentials = dict(c.split(":", 1) for c in unit_values(path, "Service", "LoadCredential"))
    for key in ("GITHUB_APP_PRIVATE_KEY_PATH", "SIGNING_KEY_PATH"):
        assert environment[key].startswith("%d/"), key
        assert environment[key].removeprefix("%d/") in credentials
    for key in environment:
        assert not SECRET_NAME.search(key), f"{key} is set in {path.name}"
    assert unit_values(path, "Service", "EnvironmentFile") == ["/etc/plugin-bot/plugin-bot.env"]
    assert environment["BOT_DATA_DIR"] == "/var/lib/plugin-bot"
    assert environment["SANDBOX"] == "bwrap"


# What some systemd hardening settings do to the service's view of the system, reproduced
# with mount in a private mount namespace; bubblewrap must still build a sandbox like
# bot/sandbox.py's (new user, PID, network and UTS namespaces, its own /proc and /dev)
# under the units' other settings (no new privileges, an empty capability bounding set).
HARDENING_EFFECTS = [
    ("ProtectProc=invisible", "mount -t proc -o hidepid=invisible proc /proc", True),
    (
        "ProtectKernelTunables=yes",
        "mount --bind /proc/sys /proc/sys && mount -o remount,bind,ro /proc/sys",
        False,
    ),
    ("ProtectKernelLogs=yes", "mount --bind /dev/null /proc/kmsg", False),
    ("ProcSubset=pid", "mount -t proc -o subset=pid proc /proc", False),
    # Its read-only hostname file; its seccomp filter on sethostname is not reproduced here.
    (
        "ProtectHostname=yes",
        "mount --bind /proc/sys/kernel/hostname /proc/sys/kernel/hostname"
        " && mount -o remount,bind,ro /proc/sys/kernel/hostname",
        False,
    ),
]


def test_the_sandbox_builds_under_the_units_privileges() -> None:
    assert sandbox_builds_under("true")


@pytest.mark.parametrize(
    ("setting", "setup", "works"), HARDENING_EFFECTS, ids=[e[0] for e in HARDENING_EFFECTS]
)
def test_the_units_use_exactly_the_hardening_that_leaves_the_sandbox_working(
    setting: str, setup: str, works: bool
) -> None:
    assert sandbox_builds_under(setup) is works
    key, _, value = setting.partition("=")
    for path in UNITS:
        assert (value in unit_values(path, "Service", key)) is works, f"{path.name}: {setting}"

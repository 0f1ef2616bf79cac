import os
import shutil
from pathlib import Path

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


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # Fast tests first: a failing unit test should not wait behind npm installs.
    items.sort(key=lambda item: "integration" in item.keywords)

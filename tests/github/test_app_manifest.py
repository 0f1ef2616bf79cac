"""app.yml: the minimum permissions, and the events the server handles."""

from __future__ import annotations

import yaml

from bot.github.validation.triggers import TriggerSource
from bot.settings import REPO_ROOT


def test_the_manifest_asks_for_the_minimum() -> None:
    manifest = yaml.safe_load((REPO_ROOT / "app.yml").read_text())
    assert manifest["default_permissions"] == {
        "issues": "write",
        "pull_requests": "write",
        "contents": "write",
        "metadata": "read",
        "checks": "write",
    }
    assert "workflows" not in manifest["default_permissions"]
    handled = {source.value.split(".")[0] for source in TriggerSource}
    assert set(manifest["default_events"]) == handled
    assert manifest["hook_attributes"]["url"].endswith("/webhook")

"""The stand-in itself: it refuses what GitHub's description refuses."""

from __future__ import annotations

import pytest

from bot.github.client import GitHubApp
from bot.github.data.repository import RepoRef
from tests.fakes.github import FakeGitHub

REPO = RepoRef("Codertocat", "Hello-World")


async def test_a_request_outside_the_description_is_a_violation(
    app: GitHubApp, github: FakeGitHub
) -> None:
    async with app.installation(1) as inst:
        with pytest.raises(Exception):  # noqa: B017 - the answer is a 400
            await inst.request("POST", f"{REPO.path}/issues/1/comments", json={"text": "x"})
    assert len(github.violations) == 1
    assert "'body' is a required property" in github.violations[0]
    github.violations.clear()


async def test_an_undocumented_route_is_a_violation(app: GitHubApp, github: FakeGitHub) -> None:
    async with app.installation(1) as inst:
        with pytest.raises(Exception):  # noqa: B017 - the answer is a 404
            await inst.request("GET", f"{REPO.path}/no-such-thing")
    assert github.violations == [f"GET {REPO.path}/no-such-thing: no such route in the spec"]
    github.violations.clear()


async def test_installation_token_is_fetched_once_and_reused(
    app: GitHubApp, github: FakeGitHub
) -> None:
    for _ in range(2):
        async with app.installation(1) as inst:
            await inst.request("GET", REPO.path)
    assert github.tokens_issued == 1
    assert [r[1] for r in github.calls("POST")] == ["/app/installations/1/access_tokens"]

"""The GitHub stand-in, an App key pair and settings pointing at a GHES-style base URL."""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import respx
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from bot.github.client import GitHubApp
from bot.github.desk import StoreDesk
from bot.jobs.migrations import upgrade
from bot.jobs.store import Store
from bot.settings import Settings
from tests.fakes.github import NPM_FIXTURES, FakeGitHub

# GitHub Enterprise Server shape: every request must go to this base, never to github.com.
API_URL = "https://github.example.test/api/v3"
APP_ID = "4242"
SECRET = "it's a secret to everybody"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    needed = ("@octokit/openapi", "@octokit/webhooks-examples", "@octokit/graphql-schema")
    if all(NPM_FIXTURES.joinpath(name).is_dir() for name in needed):
        return
    # Under CI a missing fixture is a failure; locally a hint how to install it.
    message = "npm fixtures missing: run `npm ci --ignore-scripts --prefix tests/fixtures/npm`"
    if os.environ.get("CI") == "true":
        raise pytest.UsageError(message)
    for item in items:
        if "tests/github" in str(item.path):
            item.add_marker(pytest.mark.skip(reason=message))


@pytest.fixture(scope="session")
def app_key() -> tuple[str, bytes]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return private, public


@pytest.fixture
def settings(app_key: tuple[str, bytes], tmp_path: object) -> Settings:
    return Settings(
        github_app_id=APP_ID,
        github_app_private_key=app_key[0],
        github_app_slug="plugin-bot",
        github_webhook_secret=f"old-secret, {SECRET}",
        github_api_url=API_URL,
        github_write_spacing_s=0.0,
        github_retry_max_wait_s=2.0,
        tracking_edit_interval_s=0.0,
    )


@pytest.fixture
def github(app_key: tuple[str, bytes]) -> Iterator[FakeGitHub]:
    fake = FakeGitHub(api_url=API_URL, app_id=APP_ID, app_public_key=app_key[1])
    # Every request of the test goes to the stand-in; an unmocked one fails.
    with respx.mock(assert_all_mocked=True, assert_all_called=False) as router:
        router.route().mock(side_effect=fake)
        yield fake
    assert fake.violations == [], fake.violations


@pytest.fixture
async def app(settings: Settings, github: FakeGitHub) -> AsyncIterator[GitHubApp]:
    yield GitHubApp(settings)


class Clock:
    """The store's clock, moved by the test (leases, the hourly window)."""

    def __init__(self) -> None:
        self.now = dt.datetime(2026, 12, 1, 12, 0, tzinfo=dt.UTC)

    def __call__(self) -> dt.datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def store(tmp_path: Path, clock: Clock) -> AsyncIterator[Store]:
    """The real job store, on SQLite, migrated."""
    real = Store.from_url(f"sqlite+aiosqlite:///{tmp_path / 'jobs.db'}", clock=clock)
    await upgrade(real)
    yield real
    await real.close()


@pytest.fixture
def desk(store: Store, settings: Settings) -> StoreDesk:
    return StoreDesk(store, settings)

"""POST /webhook under concurrent deliveries: their commands are group-committed
(bot/jobs/deliveries.py), each delivery is stored once and answered 202 only once its
transaction committed; a failed commit answers 503 to every delivery that was in it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest

from bot.github.client import GitHubApp
from bot.github.desk import StoreDesk
from bot.jobs.store import Store
from bot.server import NOT_STORED, create_app
from bot.settings import Settings
from tests.fakes.database_faults import failing_commits, failing_statements
from tests.fakes.github import FakeGitHub
from tests.github.test_server import comment_payload, post, stored


@pytest.fixture
async def client(
    settings: Settings, desk: StoreDesk, app: GitHubApp
) -> AsyncIterator[httpx.AsyncClient]:
    asgi = httpx.ASGITransport(app=create_app(settings, desk, app))
    async with httpx.AsyncClient(transport=asgi, base_url="http://bot.test") as http:
        yield http


def burst(n: int) -> list[tuple[str, str]]:
    """n deliveries (id, comment) with a redelivery of every fifth one mixed in."""
    sent = [(f"d-{i}", f"/create-plugin a plugin number {i}") for i in range(n)]
    for i in range(0, n, 5):
        sent.insert(i + i // 5 + 1, (f"d-{i}", "/create-plugin the redelivered text"))
    return sent


async def send_all(client: httpx.AsyncClient, sent: list[tuple[str, str]]) -> list[httpx.Response]:
    return await asyncio.gather(
        *(post(client, comment_payload(body), delivery=d) for d, body in sent)
    )


async def test_concurrent_deliveries_are_each_stored_once_and_answered_after_the_commit(
    client: httpx.AsyncClient, store: Store, github: FakeGitHub
) -> None:
    sent = burst(30)
    answers = await send_all(client, sent)
    firsts = {d: i for i, (d, _) in reversed(list(enumerate(sent)))}
    assert (len(firsts), len(sent)) == (30, 36)
    for i, ((d, _), answer) in enumerate(zip(sent, answers, strict=True)):
        if firsts[d] == i:
            assert (answer.status_code, answer.json()) == (202, {"accepted": "unread"})
        else:
            assert (answer.status_code, answer.json()) == (200, {"duplicate": True})
    commands = await stored(store)
    assert sorted(c.delivery_id for c in commands) == sorted(firsts)
    # The first delivery's command stands; its redelivery ran nothing.
    assert {c.body for c in commands if c.delivery_id == "d-0"} == {
        "/create-plugin a plugin number 0"
    }
    assert github.requests == []


async def test_a_failed_commit_answers_503_to_its_whole_batch_and_stores_nothing(
    client: httpx.AsyncClient, store: Store
) -> None:
    sent = [(f"d-{i}", f"/create-plugin plugin {i}") for i in range(20)]
    with failing_commits() as failed:
        answers = await send_all(client, sent)
    assert failed[0] >= 1
    assert {(a.status_code, a.json()["error"]) for a in answers} == {(503, NOT_STORED)}
    assert await stored(store) == []
    # GitHub's redelivery of each is new (nothing was stored), and now accepted.
    again = await send_all(client, sent)
    assert {a.status_code for a in again} == {202}
    assert len(await stored(store)) == 20


async def test_one_delivery_the_database_refuses_fails_alone(
    client: httpx.AsyncClient, store: Store
) -> None:
    sent = [(f"d-{i}", f"/create-plugin plugin {i}") for i in range(6)]
    sent.insert(3, ("d-poison", "/create-plugin plugin poison"))
    with failing_statements(containing="d-poison"):
        answers = await send_all(client, sent)
    statuses = {d: a.status_code for (d, _), a in zip(sent, answers, strict=True)}
    assert statuses.pop("d-poison") == 503
    assert set(statuses.values()) == {202}
    assert sorted(c.delivery_id for c in await stored(store)) == sorted(statuses)

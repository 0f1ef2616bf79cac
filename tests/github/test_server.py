"""POST /webhook: every refusal with its status and reason, the durable insert before
the 202, duplicates, and nothing outbound inside the request."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import structlog
import structlog.testing

from bot.github.client import GitHubApp
from bot.github.commands import CommandName
from bot.github.desk import StoreDesk
from bot.github.webhooks import signature_of
from bot.jobs.store import Store
from bot.server import create_app
from bot.settings import Settings
from tests.fakes.github import FakeGitHub, webhook_example, webhook_sender
from tests.github.conftest import SECRET

COMMAND = "/create-plugin a weather plugin that reports the current temperature for a city"


def comment_payload(body: str = COMMAND) -> dict[str, Any]:
    payload = webhook_example("issue_comment", "created")
    payload["comment"]["body"] = body  # the only edit: the comment's text
    return payload


def headers_for(
    body: bytes, *, event: str = "issue_comment", secret: str = SECRET, delivery: str = ""
) -> dict[str, str]:
    return {
        "content-type": "application/json",
        "x-github-event": event,
        "x-github-delivery": delivery or str(uuid.uuid4()),
        "x-hub-signature-256": signature_of(secret, body),
    }


async def stored(store: Store) -> list[Any]:
    """Every command in the store, oldest first."""
    found = []
    while (command := await store.claim_command("test")) is not None:
        found.append(command)
    return found


@pytest.fixture
async def client(
    settings: Settings, desk: StoreDesk, app: GitHubApp
) -> AsyncIterator[httpx.AsyncClient]:
    asgi = httpx.ASGITransport(app=create_app(settings, desk, app))
    async with httpx.AsyncClient(transport=asgi, base_url="http://bot.test") as http:
        yield http


async def post(client: httpx.AsyncClient, payload: Any, **kw: Any) -> httpx.Response:
    body = json.dumps(payload).encode()
    return await client.post("/webhook", content=body, headers=headers_for(body, **kw))


async def test_a_signed_command_is_stored_before_the_202_and_nothing_goes_out(
    client: httpx.AsyncClient, desk: StoreDesk, github: FakeGitHub
) -> None:
    answer = await post(client, comment_payload())
    # Stored unread (the request reads no Markdown); the dispatcher's claim reads it.
    assert (answer.status_code, answer.json()) == (202, {"accepted": "unread"})
    claimed = await desk.claim_command()
    assert claimed is not None and await desk.claim_command() is None
    trigger = claimed.trigger
    assert trigger.body == COMMAND
    assert trigger.command.name is CommandName.CREATE
    assert trigger.command.argument == COMMAND.removeprefix("/create-plugin ")
    assert (trigger.repository, trigger.issue_number, trigger.installation_id) == (
        "Codertocat/Hello-World",
        1,
        1,
    )
    assert (trigger.requester, trigger.comment_id) == ("Codertocat", 492700400)
    assert github.requests == []  # no call to GitHub inside the request


async def test_every_configured_secret_is_accepted_for_rotation(
    client: httpx.AsyncClient, store: Store
) -> None:
    answer = await post(client, comment_payload(), secret="old-secret")
    assert answer.status_code == 202


async def test_a_replayed_delivery_runs_nothing_twice_and_still_answers_2xx(
    client: httpx.AsyncClient, store: Store
) -> None:
    first = await post(client, comment_payload(), delivery="d-1")
    again = await post(client, comment_payload(), delivery="d-1")
    assert (first.status_code, again.status_code) == (202, 200)
    assert again.json() == {"duplicate": True}
    assert len(await stored(store)) == 1


@pytest.mark.parametrize(
    ("change", "status", "reason"),
    [
        ({"x-hub-signature-256": "sha256=" + "0" * 64}, 401, "the signature does not match"),
        # Not hex (the signature is compared as bytes): refused, not a 500.
        ({"x-hub-signature-256": "sha256=" + "z" * 64}, 401, "the signature does not match"),
        ({"x-hub-signature-256": "sha256=0"}, 401, "the signature does not match"),
        (
            {"x-hub-signature-256": "sha1=0123"},
            401,
            "the signature must be X-Hub-Signature-256 sha256=…",
        ),
        ({"x-hub-signature-256": ""}, 400, "missing header x-hub-signature-256"),
        ({"x-github-event": ""}, 400, "missing header x-github-event"),
        ({"x-github-delivery": ""}, 400, "missing header x-github-delivery"),
        (
            {"content-type": "application/x-www-form-urlencoded"},
            415,
            "the webhook content type must be application/json",
        ),
    ],
)
async def test_refused_deliveries_say_why_and_store_nothing(
    client: httpx.AsyncClient,
    store: Store,
    change: dict[str, str],
    status: int,
    reason: str,
) -> None:
    body = json.dumps(comment_payload()).encode()
    headers = {**headers_for(body), **change}
    answer = await client.post("/webhook", content=body, headers=headers)
    assert (answer.status_code, answer.json()) == (status, {"error": reason})
    assert await stored(store) == []


async def test_a_forged_body_under_a_real_signature_is_refused(
    client: httpx.AsyncClient, store: Store
) -> None:
    body = json.dumps(comment_payload("hello")).encode()
    forged = json.dumps(comment_payload()).encode()
    answer = await client.post("/webhook", content=forged, headers=headers_for(body))
    assert (answer.status_code, answer.json()) == (401, {"error": "the signature does not match"})
    assert await stored(store) == []


async def test_malformed_json_is_a_400(client: httpx.AsyncClient, store: Store) -> None:
    body = b'{"action": "created",'
    answer = await client.post("/webhook", content=body, headers=headers_for(body))
    assert answer.status_code == 400
    assert answer.json()["error"].startswith("the body is not valid JSON")


@pytest.mark.parametrize(
    ("field", "value"), [("sender", {"login": "x", "id": "x"}), ("issue", {"number": None})]
)
async def test_a_signed_payload_of_the_wrong_shape_is_a_400_and_stores_nothing(
    client: httpx.AsyncClient, store: Store, field: str, value: dict[str, Any]
) -> None:
    # Found in review: these answered 500.
    payload = comment_payload()
    payload[field] = {**payload[field], **value}
    answer = await post(client, payload)
    assert answer.status_code == 400
    assert answer.json()["error"].startswith("the payload is malformed")
    assert await stored(store) == []


async def test_a_delivery_id_that_is_no_guid_is_a_400(
    client: httpx.AsyncClient, store: Store
) -> None:
    answer = await post(client, comment_payload(), delivery="x" * 100_000)
    assert answer.status_code == 400
    assert "X-GitHub-Delivery" in answer.json()["error"]
    assert await stored(store) == []


async def test_an_oversized_body_is_refused_without_being_read_whole(
    settings: Settings, store: Store, desk: StoreDesk, app: GitHubApp
) -> None:
    settings = settings.model_copy(update={"webhook_max_bytes": 1024})
    sent: list[int] = []

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(100):
            sent.append(512)
            yield b" " * 512

    asgi = httpx.ASGITransport(app=create_app(settings, desk, app))
    async with httpx.AsyncClient(transport=asgi, base_url="http://bot.test") as http:
        headers = headers_for(b"")
        answer = await http.post("/webhook", content=chunks(), headers=headers)
        declared = await http.post(
            "/webhook", content=b"x" * 2048, headers=headers_for(b"x" * 2048)
        )
    assert (answer.status_code, answer.json()) == (
        413,
        {"error": "the body is larger than 1024 bytes"},
    )
    assert declared.status_code == 413
    assert await stored(store) == []


async def test_ping_is_answered_200(client: httpx.AsyncClient) -> None:
    payload = webhook_example("ping", None, with_installation=False)  # type: ignore[arg-type]
    answer = await post(client, payload, event="ping")
    assert answer.status_code == 200 and answer.json()["ok"] is True


@pytest.mark.parametrize(
    ("edit", "reason"),
    [
        ("bot", "written by a bot"),
        ("self", "written by this app"),
        ("tracking", "a plugin-bot tracking comment"),
        ("edited", "event issue_comment.edited is not handled"),
        ("plain", "no command in the text"),
        ("quoted", "no command in the text"),
        ("indented-quote", "no command in the text"),
    ],
)
async def test_ignored_comments_start_nothing(
    client: httpx.AsyncClient, store: Store, edit: str, reason: str
) -> None:
    payload = comment_payload()
    if edit == "bot":
        # A real Bot sender from another example of the same collection.
        payload["sender"] = webhook_sender("check_suite", lambda s: s.get("type") == "Bot")
    elif edit == "self":
        payload["comment"]["user"]["login"] = "plugin-bot[bot]"
    elif edit == "tracking":
        payload["comment"]["body"] = "<!-- plugin-bot:tracking job=1 -->\n" + COMMAND
    elif edit == "edited":
        payload = webhook_example("issue_comment", "edited")
        payload["comment"]["body"] = COMMAND
    elif edit == "plain":
        payload["comment"]["body"] = "Thanks, looks good"
    elif edit == "quoted":
        payload["comment"]["body"] = "> " + COMMAND + "\n\n`" + COMMAND + "`"
    elif edit == "indented-quote":
        payload["comment"]["body"] = "  > " + COMMAND + "\n>> " + COMMAND
    answer = await post(client, payload)
    assert (answer.status_code, answer.json()) == (200, {"ignored": reason})
    assert await stored(store) == []


async def test_a_command_in_a_new_issue_is_stored(client: httpx.AsyncClient, store: Store) -> None:
    payload = webhook_example("issues", "opened")
    payload["issue"]["body"] = "Please:\n\n" + COMMAND
    answer = await post(client, payload, event="issues")
    assert answer.status_code == 202
    [command] = await stored(store)
    assert command.comment_id is None and command.issue == payload["issue"]["number"]


async def test_the_webhook_path_by_another_method_still_takes_starlettes_routes(
    client: httpx.AsyncClient, store: Store
) -> None:
    # POST /webhook goes straight to its endpoint (bot.server.WebhookFirst); the rest not.
    assert (await client.get("/webhook")).status_code == 405
    assert (await client.put("/webhook", content=b"{}")).status_code == 405
    assert (await client.post("/webhook/", content=b"{}")).status_code in (307, 404, 405)
    assert await stored(store) == []


async def test_healthz(client: httpx.AsyncClient) -> None:
    answer = await client.get("/healthz")
    assert (answer.status_code, answer.json()) == (200, {"ok": True})


def test_create_app_refuses_without_a_secret(settings: Settings, desk: StoreDesk) -> None:
    with pytest.raises(ValueError, match="webhook secret"):
        create_app(settings.model_copy(update={"github_webhook_secret": None}), desk, None)


async def test_log_lines_of_a_delivery_carry_its_id_and_repository(
    client: httpx.AsyncClient,
) -> None:
    capture = structlog.testing.LogCapture()
    structlog.configure(processors=[structlog.contextvars.merge_contextvars, capture])
    try:
        await post(client, comment_payload(), delivery="d-logged")
    finally:
        structlog.reset_defaults()
    [entry] = [e for e in capture.entries if e["event"] == "webhook.accepted"]
    assert (entry["delivery_id"], entry["repository"]) == ("d-logged", "Codertocat/Hello-World")

"""bot/logs.py: JSON lines off a terminal, the bound context on every line (structlog's and
the standard library's), secrets replaced."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest
import structlog

from bot import logs
from bot.settings import Settings


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture(autouse=True)
def clean_context() -> Iterator[None]:
    structlog.contextvars.clear_contextvars()
    yield
    structlog.contextvars.clear_contextvars()
    structlog.reset_defaults()
    logging.getLogger().handlers.clear()


def lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_off_a_terminal_every_line_is_json_with_the_bound_context() -> None:
    out = io.StringIO()
    logs.configure(Settings(), stream=out)
    structlog.contextvars.bind_contextvars(
        delivery_id="d-1", repository="o/r", installation_id=7, job_id="j1", phase="build"
    )
    structlog.get_logger("bot.test").info("phase.finished", wall_s=1.5)
    logging.getLogger("uvicorn.error").warning("a library line")
    ours, library = lines(out)
    for line in (ours, library):
        assert {k: line[k] for k in ("delivery_id", "repository", "installation_id")} == {
            "delivery_id": "d-1",
            "repository": "o/r",
            "installation_id": 7,
        }
        assert (line["job_id"], line["phase"]) == ("j1", "build")
        assert "timestamp" in line
    assert (ours["event"], ours["wall_s"], ours["level"]) == ("phase.finished", 1.5, "info")
    assert (library["event"], library["logger"]) == ("a library line", "uvicorn.error")


def test_on_a_terminal_lines_are_for_people() -> None:
    out = Tty()
    logs.configure(Settings(), stream=out)
    structlog.get_logger("bot.test").info("job.claimed", worker="w1")
    text = out.getvalue()
    assert "job.claimed" in text and "worker" in text
    with pytest.raises(json.JSONDecodeError):
        json.loads(text.splitlines()[0])


def test_known_secrets_are_replaced_in_every_field() -> None:
    out = io.StringIO()
    settings = Settings(
        github_webhook_secret="first-webhook-secret, second-webhook-secret",
        anthropic_api_key="sk-ant-known-key-123",
        database_url="postgresql+psycopg://bot:db-pass-456@db.internal/bot",
    )
    logs.configure(settings, stream=out)
    log = structlog.get_logger("bot.test")
    log.warning("oops", error="auth sk-ant-known-key-123 refused", url=settings.database_url)
    logging.getLogger("httpx").warning("sent second-webhook-secret")
    text = out.getvalue()
    for secret in ("sk-ant-known-key-123", "db-pass-456", "second-webhook-secret"):
        assert secret not in text
    assert text.count(logs.REDACTED) == 3


def test_the_level_setting_holds_for_structlog_and_libraries() -> None:
    out = io.StringIO()
    logs.configure(Settings(log_level="warning"), stream=out)
    structlog.get_logger("bot.test").info("job.claimed")
    logging.getLogger("alembic").info("migrating")
    structlog.get_logger("bot.test").warning("job.lease_lost")
    assert [line["event"] for line in lines(out)] == ["job.lease_lost"]

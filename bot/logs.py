"""The one logging setup: structlog for the bot, the standard library's loggers routed
through the same processors, JSON lines when the stream is not a terminal.

Context is bound once (``structlog.contextvars.bind_contextvars``) per delivery and per job
and merged into every line; events are short verbs with fields (``job.claimed``). As a last
guard, every known secret value is replaced in every line before it is written.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable
from typing import TextIO

import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

from bot.settings import Settings

REDACTED = "[redacted]"


class Redactor:
    """Replaces each known secret value (and its parts: a comma-separated webhook secret
    list) wherever it appears in a rendered field."""

    def __init__(self, secrets: Iterable[str]) -> None:
        self.secrets = sorted({s for s in secrets if len(s) >= 4}, key=len, reverse=True)

    def scrub(self, text: str) -> str:
        for secret in self.secrets:
            if secret in text:
                text = text.replace(secret, REDACTED)
        return text

    def __call__(self, logger: WrappedLogger, name: str, event: EventDict) -> EventDict:
        if not self.secrets:
            return event
        for key, value in event.items():
            if isinstance(value, str):
                event[key] = self.scrub(value)
            elif not isinstance(value, int | float | bool) and value is not None:
                event[key] = self.scrub(str(value))
        return event


def secret_values(settings: Settings) -> list[str]:
    """Every secret the settings hold, as the strings that must never be written."""
    values: list[str] = []
    for secret in (
        settings.github_webhook_secret,
        settings.github_app_private_key,
        settings.anthropic_api_key,
        settings.signing_key_passphrase,
        settings.job_page_secret,
    ):
        if secret is not None:
            raw = secret.get_secret_value()
            values.append(raw)
            values.extend(part.strip() for part in raw.split(","))
            values.extend(line for line in raw.splitlines() if len(line) >= 16)
    password = database_password(settings.database_url)
    if password:
        values.append(password)
    return values


def database_password(url: str | None) -> str | None:
    if not url or "://" not in url:
        return None
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).password
    except Exception:
        return None


def _shared(redactor: Redactor) -> list[Processor]:
    return [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_logger_name,
        structlog.stdlib.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.format_exc_info,
        redactor,
    ]


def configure(
    settings: Settings,
    *,
    stream: TextIO | None = None,
    json: bool | None = None,
    level: str | None = None,
) -> None:
    """Configure structlog and the root logger for this process, writing to ``stream``
    (stderr by default): console output on a terminal, JSON lines otherwise."""
    stream = stream if stream is not None else sys.stderr
    as_json = json if json is not None else not stream.isatty()
    redactor = Redactor(secret_values(settings))
    renderer: Processor = (
        structlog.processors.JSONRenderer()
        if as_json
        else structlog.dev.ConsoleRenderer(colors=stream.isatty())
    )
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,  # a line below the level costs nothing more
            *_shared(redactor),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )
    handler = logging.StreamHandler(stream)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=_shared(redactor),
            processors=[_drop_meta, renderer],
        )
    )
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel((level or settings.log_level).upper())
    for noisy in ("httpx", "httpcore", "hishel"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def _drop_meta(logger: WrappedLogger, name: str, event: EventDict) -> EventDict:
    return structlog.stdlib.ProcessorFormatter.remove_processors_meta(logger, name, event)

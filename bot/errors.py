"""The root of every error family the bot raises on purpose, so a caller can catch one."""

from __future__ import annotations


class BotError(Exception):
    """Something the bot refuses or cannot do; the message says what and what to do."""

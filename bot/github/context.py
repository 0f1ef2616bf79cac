"""EventContext: one stored command with everything a handler needs to answer it.

Built once by the dispatcher from the stored trigger and an installation client, so
handlers never rebuild clients or re-read the payload (Probot's ``context``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import structlog

from bot.github.client import Installation
from bot.github.commands import Command
from bot.github.data.repository import RepoRef
from bot.github.operations import comments, reactions
from bot.github.webhooks import Trigger


@dataclass
class EventContext:
    trigger: Trigger
    command_id: int
    inst: Installation
    repo: RepoRef
    log: Any

    @classmethod
    def of(cls, trigger: Trigger, command_id: int, inst: Installation) -> EventContext:
        log = structlog.get_logger("bot.github").bind(
            delivery_id=trigger.delivery_id,
            repository=trigger.repository,
            command=trigger.command.name.value,
        )
        return cls(trigger, command_id, inst, RepoRef.parse(trigger.repository), log)

    @property
    def command(self) -> Command:
        return self.trigger.command

    @property
    def issue(self) -> int:
        return self.trigger.issue_number

    async def reply(self, body: str) -> int:
        return await comments.reply(self.inst, self.repo, self.issue, body)

    async def react(self, content: str = reactions.SEEN) -> None:
        await reactions.react(self.inst, self.repo, self.issue, self.trigger.comment_id, content)

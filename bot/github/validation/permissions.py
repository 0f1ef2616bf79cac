"""Who may create, cancel and retry: a permission on the repository, or the config's lists.

Checked by the dispatcher (it needs the collaborator API), never inside the request.
"""

from __future__ import annotations

from dataclasses import dataclass

from bot import status
from bot.github.client import Installation
from bot.github.data.repository import RepoRef, collaborator_permission, is_team_member
from bot.settings import PERMISSION_ORDER, TriggerConfig


def rank(permission: str) -> int:
    """Position in read < triage < write < maintain < admin; -1 for none or unknown."""
    return PERMISSION_ORDER.index(permission) if permission in PERMISSION_ORDER else -1


@dataclass(frozen=True)
class Decision:
    allowed: bool
    permission: str
    refusal: str = ""


async def may_write(
    inst: Installation, repo: RepoRef, login: str, trigger: TriggerConfig
) -> Decision:
    permission = await collaborator_permission(inst, repo, login)
    if rank(permission) >= rank(trigger.min_permission):
        return Decision(True, permission)
    if login.lower() in {u.lower() for u in trigger.users}:
        return Decision(True, permission)
    for team in trigger.teams:
        if await is_team_member(inst, repo.owner, team, login):
            return Decision(True, permission)
    refusal = status.refused_permission(login, permission, trigger.min_permission)
    return Decision(False, permission, refusal)

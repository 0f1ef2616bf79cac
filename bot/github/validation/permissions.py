"""Who may create, cancel and retry: a permission on the repository, or the config's lists.

Checked by the dispatcher (it needs the collaborator API), never inside the request.
"""

from __future__ import annotations

from dataclasses import dataclass

from bot import status
from bot.github.client import Installation
from bot.github.data.repository import (
    CollaboratorRole,
    RepoRef,
    collaborator_permission,
    is_team_member,
)
from bot.settings import PERMISSION_ORDER, TriggerConfig


def rank(permission: str) -> int:
    """Position in read < triage < write < maintain < admin; -1 for none or unknown."""
    return PERMISSION_ORDER.index(permission) if permission in PERMISSION_ORDER else -1


def effective_permission(role: CollaboratorRole) -> str:
    """A built-in role as it is; a custom role by the permission it is based on (GitHub's
    ``permission`` field), since its name says nothing about what it may do."""
    return role.role_name if role.role_name in PERMISSION_ORDER else role.permission


@dataclass(frozen=True)
class Decision:
    allowed: bool
    permission: str
    refusal: str = ""


async def may_write(
    inst: Installation, repo: RepoRef, login: str, trigger: TriggerConfig
) -> Decision:
    role = await collaborator_permission(inst, repo, login)
    permission = effective_permission(role)
    if rank(permission) >= rank(trigger.min_permission):
        return Decision(True, permission)
    if login.lower() in {u.lower() for u in trigger.users}:
        return Decision(True, permission)
    for team in trigger.teams:
        if await is_team_member(inst, repo.owner, team, login):
            return Decision(True, permission)
    custom = None if role.role_name in {*PERMISSION_ORDER, "none"} else role.role_name
    refusal = status.refused_permission(login, permission, trigger.min_permission, custom)
    return Decision(False, permission, refusal)

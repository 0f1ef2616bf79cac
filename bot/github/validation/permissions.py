"""Who may create, cancel and retry: a permission on the repository, or the config's lists.

Checked by the dispatcher (it needs the collaborator API), never inside the request. On a
public repository GitHub's permission API answers ``read`` for every account, so a
permission below ``write`` counts only for a collaborator (someone given access to the
repository): ``min_permission: read`` never opens the model's budget to anyone on GitHub.
"""

from __future__ import annotations

from dataclasses import dataclass

from bot import status
from bot.github.client import Installation
from bot.github.data.repository import (
    CollaboratorRole,
    RepoRef,
    collaborator_permission,
    is_collaborator,
    is_team_member,
)
from bot.settings import PERMISSION_ORDER, TriggerConfig

# Permissions below this one GitHub also reports for people never given access (read, on a
# public repository): they count only with the collaborator check.
ANYONES_BELOW = "write"


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
    stranger = False
    if rank(trigger.min_permission) <= rank(permission) < rank(ANYONES_BELOW):
        stranger = not await is_collaborator(inst, repo, login)
        if stranger:
            permission = "none"
    if rank(permission) >= rank(trigger.min_permission):
        return Decision(True, permission)
    if login.lower() in {u.lower() for u in trigger.users}:
        return Decision(True, permission)
    for team in trigger.teams:
        if await is_team_member(inst, repo.owner, team, login):
            return Decision(True, permission)
    if stranger:
        return Decision(
            False, permission, status.refused_not_collaborator(login, trigger.min_permission)
        )
    custom = None if role.role_name in {*PERMISSION_ORDER, "none"} else role.role_name
    refusal = status.refused_permission(login, permission, trigger.min_permission, custom)
    return Decision(False, permission, refusal)

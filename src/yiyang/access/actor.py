"""Who is acting: the signed-in user with the roles they hold, as plain values.

Every service that touches resident data takes an ``Actor``; scope and consent checks read its
grants, and the audit trail records them.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass, field, replace

from yiyang.access.roles import Role


class CredentialKind(enum.StrEnum):
    bearer = "bearer"  # API clients: Authorization: Bearer <token>
    session = "session"  # the web: an HttpOnly cookie naming a server-side session
    system = "system"  # timed jobs and the command line: no credential at all


@dataclass(frozen=True, slots=True)
class RoleGrant:
    """One role held by the actor: in an organisation, over an area where the role is jurisdictional."""

    role: Role
    organisation_id: int | None = None
    area_id: int | None = None
    membership_id: int | None = None


@dataclass(frozen=True, slots=True)
class Actor:
    user_id: int | None  # None only for the system actor
    username: str
    grants: tuple[RoleGrant, ...] = ()
    resident_id: int | None = None  # the registry row this user is, for residents
    acts_for: tuple[int, ...] = ()  # residents who currently authorise this user (family members)
    via: CredentialKind = CredentialKind.system
    credential_id: int | None = None
    request_id: str | None = None
    roles: frozenset[Role] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "roles", frozenset(grant.role for grant in self.grants))

    def has_role(self, role: Role) -> bool:
        return role in self.roles

    def grants_for(self, role: Role) -> tuple[RoleGrant, ...]:
        return tuple(grant for grant in self.grants if grant.role == role)

    def acting_as(self, roles: Iterable[Role]) -> Actor:
        """The same person holding only their grants of ``roles``: for a step only those roles may
        take, so that the policy's scope and consent are decided by such a grant, not by another
        role the person also holds (a nurse elsewhere who is station staff here)."""
        wanted = frozenset(roles)
        return replace(self, grants=tuple(grant for grant in self.grants if grant.role in wanted))

    @property
    def is_admin(self) -> bool:
        return Role.district_admin in self.roles


def system_actor(job: str, request_id: str | None = None) -> Actor:
    """The actor for a timed job or a command: named, audited, holding no role."""
    return Actor(user_id=None, username=f"system:{job}", request_id=request_id)

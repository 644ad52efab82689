"""Account administration under /api/users, for district administrators. Thin: the work, the
administrator's area and the audit rows are in accounts.py."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from yiyang.access import accounts
from yiyang.access.deps import ActorDep, ClockDep
from yiyang.access.models import User
from yiyang.access.roles import Role
from yiyang.access.routes import no_resident_data
from yiyang.access.schemas import (
    AccountCreate,
    AccountListPage,
    AccountRead,
    CredentialsRevoked,
    MembershipRead,
    PasswordReset,
    RoleGrantCreate,
)
from yiyang.deps import IdPath, SessionDep

router = APIRouter(prefix="/api/users", tags=["accounts"])
ADMINISTRATION = no_resident_data("account administration: accounts and roles, no resident record")
REFUSALS = {403: {}, 404: {}, 409: {}, 422: {}}


def _read(session: SessionDep, user_id: int) -> AccountRead:
    user = session.get(User, user_id)
    assert user is not None
    return AccountRead.of(user, accounts.memberships_of(session, [user_id])[user_id])


@router.get("", response_model=AccountListPage, responses=REFUSALS, openapi_extra=ADMINISTRATION)
def list_accounts(
    session: SessionDep,
    actor: ActorDep,
    q: Annotated[
        str | None, Query(max_length=64, description="start of the user name or display name")
    ] = None,
    role: Role | None = None,
    active: bool | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> AccountListPage:
    """账号列表: the accounts this administrator keeps, with their roles."""
    page = accounts.list_accounts(
        session, actor, query=q, role=role, active=active, limit=limit, offset=offset
    )
    items = [AccountRead.of(user, page.memberships[user.id]) for user in page.users]
    return AccountListPage(total=page.total, items=items)


@router.post(
    "", response_model=AccountRead, status_code=201, responses=REFUSALS, openapi_extra=ADMINISTRATION
)
def create_account(body: AccountCreate, session: SessionDep, actor: ActorDep, clock: ClockDep) -> AccountRead:
    """新建账号: an account holding one role, in the administrator's area."""
    user = accounts.create_account(
        session, actor, body.username, role=body.role, password=body.password, display_name=body.display_name,
        organisation_id=body.organisation_id, area_id=body.area_id, resident_id=body.resident_id, now=clock(),
    )  # fmt: skip
    return _read(session, user.id)


@router.get("/{user_id}", response_model=AccountRead, responses=REFUSALS, openapi_extra=ADMINISTRATION)
def read_account(user_id: IdPath, session: SessionDep, actor: ActorDep) -> AccountRead:
    user, memberships = accounts.read_account(session, actor, user_id)
    return AccountRead.of(user, memberships)


@router.post(
    "/{user_id}/roles", response_model=MembershipRead, status_code=201, responses=REFUSALS,
    openapi_extra=ADMINISTRATION,
)  # fmt: skip
def grant_role(
    user_id: IdPath, body: RoleGrantCreate, session: SessionDep, actor: ActorDep, clock: ClockDep
) -> MembershipRead:
    """授予角色: another role for the account."""
    membership = accounts.grant(
        session, actor, user_id, body.role, organisation_id=body.organisation_id, area_id=body.area_id,
        now=clock(),
    )  # fmt: skip
    return MembershipRead.of(membership)


@router.post(
    "/{user_id}/roles/{membership_id}/revoke", response_model=MembershipRead, responses=REFUSALS,
    openapi_extra=ADMINISTRATION,
)  # fmt: skip
def revoke_role(
    user_id: IdPath, membership_id: IdPath, session: SessionDep, actor: ActorDep, clock: ClockDep
) -> MembershipRead:
    """撤销角色: the role ends now; the membership is kept with the time it ended."""
    return MembershipRead.of(accounts.revoke(session, actor, user_id, membership_id, now=clock()))


@router.post(
    "/{user_id}/deactivate",
    response_model=CredentialsRevoked,
    responses=REFUSALS,
    openapi_extra=ADMINISTRATION,
)
def deactivate(user_id: IdPath, session: SessionDep, actor: ActorDep, clock: ClockDep) -> CredentialsRevoked:
    """停用账号: no more sign-ins, and signed out everywhere now."""
    return CredentialsRevoked(revoked=accounts.deactivate(session, actor, user_id, now=clock()))


@router.post(
    "/{user_id}/reactivate", response_model=AccountRead, responses=REFUSALS, openapi_extra=ADMINISTRATION
)
def reactivate(user_id: IdPath, session: SessionDep, actor: ActorDep, clock: ClockDep) -> AccountRead:
    """启用账号: the account signs in again, with the roles it still holds."""
    user = accounts.reactivate(session, actor, user_id, now=clock())
    return _read(session, user.id)


@router.post(
    "/{user_id}/password", response_model=CredentialsRevoked, responses=REFUSALS, openapi_extra=ADMINISTRATION
)
def reset_password(
    user_id: IdPath, body: PasswordReset, session: SessionDep, actor: ActorDep, clock: ClockDep
) -> CredentialsRevoked:
    """重置密码: a new password for someone who forgot theirs; signs the account out everywhere."""
    return CredentialsRevoked(
        revoked=accounts.reset_password(session, actor, user_id, body.password, now=clock())
    )

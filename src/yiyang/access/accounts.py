"""Account administration (账号管理): the people who sign in, kept by district administrators.

An administrator without an area keeps every account. One over an area keeps the staff accounts
whose every role in force is placed inside that area (the role's own area, else its
organisation's): a street's administrator may take on, move and stop the doctors and grid
workers of that street, never an account that also works elsewhere, a resident's or family
member's own account, or a deployment-wide administrator. Nothing here reads resident data.

Every change is one audit row (resource ``user_account``, the account's id and what changed in
``reason``, never a name or password). Deactivating an account and resetting its password sign it
out everywhere. The deployment always keeps one active administrator without an area
(``user.admin.last``), and nobody deactivates, resets or strips the administrator role from their
own account here (``user.self``): their own password goes through ``change_own_password``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import ColumnElement, Select, and_, exists, false, func, or_, select, true
from sqlalchemy.orm import Session, aliased

from yiyang.access import passwords, policy, service
from yiyang.access.actor import Actor
from yiyang.access.audit import record_access
from yiyang.access.models import AuditAction, RoleMembership, User
from yiyang.access.roles import ADMIN_ROLE, Audience, Role, role_info
from yiyang.access.throttle import ThrottlePolicy
from yiyang.errors import Conflict, Forbidden, NotFound
from yiyang.geo.models import Area, Organisation

RESOURCE = "user_account"
PURPOSE = "administration"


@dataclass(frozen=True, slots=True)
class AccountPage:
    total: int
    users: list[User]
    memberships: dict[int, list[RoleMembership]]  # user id -> every membership, oldest first


def as_administrator(actor: Actor) -> Actor:
    """The actor holding only their administrator grants, or ``Forbidden`` (commands pass)."""
    if policy.is_system(actor):
        return actor
    admin = actor.acting_as({ADMIN_ROLE})
    if not admin.grants:
        raise Forbidden(
            "access.role", "只有区级管理员可以管理账号 (only a district administrator manages accounts)"
        )
    return admin


def whole_deployment(admin: Actor) -> bool:
    """An administrator without an area (or the system): they keep the whole deployment."""
    return policy.is_system(admin) or any(grant.area_id is None for grant in admin.grants)


def _administered_areas(session: Session, admin: Actor) -> Select[tuple[int]] | None:
    """The ids of every area an area-bound administrator keeps (None: nothing)."""
    areas = session.scalars(select(Area).where(Area.id.in_([g.area_id for g in admin.grants]))).all()
    if not areas:
        return None
    return select(Area.id).where(or_(*(area.subtree() for area in areas)))


def administers_all(session: Session, actor: Actor, area_ids: Sequence[int]) -> bool:
    """Whether every one of these areas lies in what the actor administers: an administrator
    without an area the whole deployment, one over an area that area and everything under it."""
    admin = as_administrator(actor)
    if whole_deployment(admin):
        return True
    areas = _administered_areas(session, admin)
    if areas is None:
        return False
    wanted = set(area_ids)
    return set(session.scalars(select(Area.id).where(Area.id.in_(wanted), Area.id.in_(areas)))) == wanted


def administered(session: Session, admin: Actor) -> ColumnElement[bool]:
    """A clause over ``user_account``: the accounts this administrator keeps."""
    if whole_deployment(admin):
        return true()
    areas = _administered_areas(session, admin)
    if areas is None:
        return false()
    held = aliased(RoleMembership)
    organisation_area = (
        select(Organisation.area_id).where(Organisation.id == held.organisation_id).scalar_subquery()
    )
    place = func.coalesce(held.area_id, organisation_area)
    in_force = and_(held.user_id == User.id, held.revoked_at.is_(None))
    return and_(
        exists().where(in_force, place.in_(areas)),
        ~exists().where(in_force, or_(place.is_(None), place.not_in(areas))),
    )


def _account(session: Session, admin: Actor, user_id: int) -> User:
    user = session.get(User, user_id)
    if user is None:
        raise NotFound("user.not_found", "账号不存在 (no such account)")
    kept = session.scalar(select(exists().where(User.id == user_id, administered(session, admin))))
    if not kept:
        raise Forbidden(
            "user.scope", "该账号不在您的管理范围内 (this account is outside the area you administer)"
        )
    return user


def _check_place(
    session: Session, admin: Actor, role: Role, organisation_id: int | None, area_id: int | None
) -> None:
    """An area-bound administrator grants staff roles placed inside their area only."""
    if whole_deployment(admin):
        return
    info = role_info(role)
    place = area_id
    if place is None and organisation_id is not None:
        place = session.scalar(select(Organisation.area_id).where(Organisation.id == organisation_id))
    areas = _administered_areas(session, admin)
    inside = (
        info.audience is Audience.staff
        and place is not None
        and areas is not None
        and session.scalar(select(exists().where(Area.id == place, Area.id.in_(areas))))
    )
    if not inside:
        raise Forbidden(
            "user.scope",
            f"只能在您管理的辖区内授予{info.zh} (you may grant {info.en} only inside the area you administer)",
        )


def _refuse_self(admin: Actor, user_id: int, what: str) -> None:
    if admin.user_id == user_id:
        raise Forbidden("user.self", f"不能{what}自己的账号 (you cannot do this to your own account)")


def _deployment_admins_left(
    session: Session, *, without_user: int | None = None, without_membership: int | None = None
) -> int:
    conditions = [
        RoleMembership.role == ADMIN_ROLE,
        RoleMembership.area_id.is_(None),
        RoleMembership.revoked_at.is_(None),
        RoleMembership.user_id == User.id,
        User.active.is_(True),
    ]
    if without_user is not None:
        conditions.append(User.id != without_user)
    if without_membership is not None:
        conditions.append(RoleMembership.id != without_membership)
    return session.scalar(select(func.count(func.distinct(User.id))).where(*conditions)) or 0


def _refuse_last_admin(session: Session, **without: int) -> None:
    """Refuse a change that would take away the deployment's last administrator without an area."""
    if _deployment_admins_left(session, **without) == 0 < _deployment_admins_left(session):
        raise Conflict(
            "user.admin.last",
            "系统须保留至少一名全区管理员 (the deployment must keep one active administrator without an area)",
        )


def _audit(session: Session, admin: Actor, action: AuditAction, reason: str, now: dt.datetime) -> None:
    record_access(
        session, admin, action=action, resource_type=RESOURCE, purpose=PURPOSE, reason=reason, at=now
    )


def place_ids(
    session: Session, organisation_code: str | None, area_code: str | None
) -> tuple[int | None, int | None]:
    """The ids behind an organisation code and an area code, as people type them (``NotFound``
    naming the code)."""
    organisation_id = area_id = None
    if organisation_code:
        organisation_id = session.scalar(
            select(Organisation.id).where(Organisation.code == organisation_code)
        )
        if organisation_id is None:
            raise NotFound("organisation.not_found", f"机构编码不存在 (no organisation {organisation_code})")
    if area_code:
        area_id = session.scalar(select(Area.id).where(Area.code == area_code))
        if area_id is None:
            raise NotFound("area.not_found", f"辖区编码不存在 (no area {area_code})")
    return organisation_id, area_id


# --- reading ---------------------------------------------------------------------------------


def list_accounts(
    session: Session,
    actor: Actor,
    *,
    query: str | None = None,
    role: Role | None = None,
    active: bool | None = None,
    limit: int = 50,
    offset: int = 0,
) -> AccountPage:
    """The accounts this administrator keeps, by user name; ``query`` matches the start of the user
    name or the display name, ``role`` a role in force."""
    admin = as_administrator(actor)
    conditions: list[ColumnElement[bool]] = [administered(session, admin)]
    if query:
        conditions.append(
            or_(
                User.username.startswith(service.normalise_username(query), autoescape=True),
                User.display_name.startswith(query.strip(), autoescape=True),
            )
        )
    if role is not None:
        conditions.append(
            exists().where(
                RoleMembership.user_id == User.id,
                RoleMembership.role == role,
                RoleMembership.revoked_at.is_(None),
            )
        )
    if active is not None:
        conditions.append(User.active.is_(active))
    total = session.scalar(select(func.count()).select_from(User).where(*conditions)) or 0
    users = list(
        session.scalars(select(User).where(*conditions).order_by(User.username).limit(limit).offset(offset))
    )
    return AccountPage(total, users, memberships_of(session, [u.id for u in users]))


def memberships_of(session: Session, user_ids: list[int]) -> dict[int, list[RoleMembership]]:
    found: dict[int, list[RoleMembership]] = {user_id: [] for user_id in user_ids}
    if user_ids:
        rows = session.scalars(
            select(RoleMembership).where(RoleMembership.user_id.in_(user_ids)).order_by(RoleMembership.id)
        )
        for membership in rows:
            found[membership.user_id].append(membership)
    return found


def read_account(session: Session, actor: Actor, user_id: int) -> tuple[User, list[RoleMembership]]:
    user = _account(session, as_administrator(actor), user_id)
    return user, memberships_of(session, [user.id])[user.id]


# --- changing --------------------------------------------------------------------------------


def create_account(
    session: Session,
    actor: Actor,
    username: str,
    *,
    role: Role,
    password: str | None = None,
    display_name: str | None = None,
    organisation_id: int | None = None,
    area_id: int | None = None,
    resident_id: int | None = None,
    now: dt.datetime,
) -> User:
    """A new account holding one role; the role is checked against the administrator's area first."""
    admin = as_administrator(actor)
    _check_place(session, admin, role, organisation_id, area_id)
    user = service.create_user(
        session, username, password=password, display_name=display_name, resident_id=resident_id, now=now
    )
    membership = service.grant_role(
        session,
        user,
        role,
        organisation_id=organisation_id,
        area_id=area_id,
        granted_by=admin.user_id,
        now=now,
    )
    _audit(
        session, admin, AuditAction.create, f"account {user.id} created with {_described(membership)}", now
    )
    return user


def grant(
    session: Session,
    actor: Actor,
    user_id: int,
    role: Role,
    *,
    organisation_id: int | None = None,
    area_id: int | None = None,
    now: dt.datetime,
) -> RoleMembership:
    """Another role for an account; the same role in the same place twice is refused."""
    admin = as_administrator(actor)
    user = _account(session, admin, user_id)
    _check_place(session, admin, role, organisation_id, area_id)
    same = and_(
        RoleMembership.user_id == user.id,
        RoleMembership.role == role,
        RoleMembership.revoked_at.is_(None),
        RoleMembership.organisation_id.is_not_distinct_from(organisation_id),
        RoleMembership.area_id.is_not_distinct_from(area_id),
    )
    held = session.scalar(select(exists().where(same)))
    if held:
        raise Conflict(
            "role.membership.held", "该账号已有这一角色授权 (the account already holds this role there)"
        )
    membership = service.grant_role(
        session,
        user,
        role,
        organisation_id=organisation_id,
        area_id=area_id,
        granted_by=admin.user_id,
        now=now,
    )
    _audit(session, admin, AuditAction.update, f"account {user.id} granted {_described(membership)}", now)
    return membership


def revoke(
    session: Session, actor: Actor, user_id: int, membership_id: int, *, now: dt.datetime
) -> RoleMembership:
    """End one role of an account (kept, with the time it ended). Ending it twice changes nothing."""
    admin = as_administrator(actor)
    user = _account(session, admin, user_id)
    membership = session.get(RoleMembership, membership_id)
    if membership is None or membership.user_id != user.id:
        raise NotFound("role.membership.not_found", "角色授权不存在 (no such role membership)")
    if membership.revoked_at is not None:
        return membership
    if membership.role is ADMIN_ROLE:
        _refuse_self(admin, user.id, "撤销")
        if membership.area_id is None:
            _refuse_last_admin(session, without_membership=membership.id)
    membership.revoked_at = now
    _audit(session, admin, AuditAction.update, f"account {user.id} lost {_described(membership)}", now)
    return membership


def deactivate(session: Session, actor: Actor, user_id: int, *, now: dt.datetime) -> int:
    """停用: the account can no longer sign in and is signed out everywhere; returns the
    credentials revoked. Roles are kept, so reactivating restores the account as it was."""
    admin = as_administrator(actor)
    user = _account(session, admin, user_id)
    _refuse_self(admin, user.id, "停用")
    if not user.active:
        return 0
    _refuse_last_admin(session, without_user=user.id)
    user.active = False
    revoked = service.revoke_all_credentials(session, user.id, now)
    _audit(
        session,
        admin,
        AuditAction.update,
        f"account {user.id} deactivated, {revoked} credentials revoked",
        now,
    )
    return revoked


def reactivate(session: Session, actor: Actor, user_id: int, *, now: dt.datetime) -> User:
    admin = as_administrator(actor)
    user = _account(session, admin, user_id)
    if not user.active:
        user.active = True
        _audit(session, admin, AuditAction.update, f"account {user.id} reactivated", now)
    return user


def reset_password(session: Session, actor: Actor, user_id: int, password: str, *, now: dt.datetime) -> int:
    """An administrator sets a new password (a person who forgot theirs); signs the account out
    everywhere. Returns the credentials revoked."""
    admin = as_administrator(actor)
    user = _account(session, admin, user_id)
    _refuse_self(admin, user.id, "重置")
    revoked = service.set_password(session, user, password, now)
    _audit(
        session,
        admin,
        AuditAction.update,
        f"account {user.id} password reset, {revoked} credentials revoked",
        now,
    )
    return revoked


def change_own_password(
    session: Session,
    actor: Actor,
    current: str,
    new: str,
    *,
    client_address: str,
    throttle: ThrottlePolicy,
    now: dt.datetime,
) -> int:
    """修改密码: the signed-in person replaces their password, proving the current one.

    The current password is checked as a sign-in is, counted and throttled alike, so a stolen
    session cannot be used to guess it. Every other token and session of the account is revoked;
    the one making the request stays signed in. Returns the credentials revoked."""
    if actor.user_id is None:
        raise Forbidden("access.role", "仅限已登录用户 (only a signed-in person has a password)")
    passwords.check_password_rules(new)
    outcome = service.attempt_sign_in(session, actor.username, current, client_address, throttle, now)
    if outcome.retry_after is not None:
        raise service.SignInThrottled(outcome.retry_after)
    if outcome.user is None or outcome.user.id != actor.user_id:
        session.commit()  # the failure counts towards throttling though this request is refused
        raise Forbidden("auth.credentials", "当前密码错误 (the current password is wrong)")
    user = outcome.user
    user.password_hash = passwords.hash_password(new)
    user.password_changed_at = now
    revoked = service.revoke_all_credentials(session, user.id, now, keep=actor.credential_id)
    _audit(session, actor, AuditAction.update, f"account {user.id} changed its own password", now)
    return revoked


def _described(membership: RoleMembership) -> str:
    where = []
    if membership.organisation_id is not None:
        where.append(f"organisation {membership.organisation_id}")
    if membership.area_id is not None:
        where.append(f"area {membership.area_id}")
    return " ".join([f"role {membership.role.value}", *where])

"""Users, roles, family authorisations, sign-in and credentials. No HTTP here; nothing commits.

Times are passed in (``now``) so throttling and expiry are tested on a fake clock.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import unicodedata
from dataclasses import dataclass

from sqlalchemy import ColumnElement, Select, and_, delete, exists, func, or_, select, update
from sqlalchemy.orm import Session

from yiyang.access import passwords, tokens
from yiyang.access.actor import Actor, CredentialKind, RoleGrant
from yiyang.access.models import AuthCredential, ResidentAuthorisation, RoleMembership, SignInAttempt, User
from yiyang.access.roles import ADMIN_ROLE, CLINICAL_TEAM_ROLES, AreaScope, Audience, Role, role_info
from yiyang.access.throttle import ThrottlePolicy, retry_after
from yiyang.config import Settings
from yiyang.db import utcnow
from yiyang.errors import Conflict, DomainError, Forbidden, Invalid, NotFound
from yiyang.geo.models import Area, Organisation, OrganisationKind
from yiyang.residents.models import Resident

_USERNAME = re.compile(r"[\w.@-]{3,64}")
LAST_USED_RESOLUTION = dt.timedelta(minutes=5)  # fewer writes: last use is only kept to the minute or so
ATTEMPT_RETENTION = dt.timedelta(days=1)


class Unauthorized(DomainError):
    status_code = 401


class SignInThrottled(DomainError):
    status_code = 429

    def __init__(self, retry_after_seconds: int) -> None:
        super().__init__(
            "auth.throttled",
            f"登录失败次数过多，请 {retry_after_seconds} 秒后再试 (too many failed sign-ins; retry in {retry_after_seconds} s)",
            headers={"Retry-After": str(retry_after_seconds)},
            retry_after=retry_after_seconds,
        )
        self.retry_after = retry_after_seconds


WRONG_CREDENTIALS = ("auth.credentials", "用户名或密码错误 (wrong user name or password)")


# --- users -----------------------------------------------------------------------------------


def normalise_username(raw: str) -> str:
    return unicodedata.normalize("NFKC", raw).strip().casefold()


def find_user(session: Session, username: str) -> User | None:
    name = normalise_username(username)
    if not _USERNAME.fullmatch(name):  # cannot exist; and PostgreSQL refuses some characters (NUL) outright
        return None
    return session.scalar(select(User).where(User.username == name))


def create_user(
    session: Session,
    username: str,
    *,
    password: str | None = None,
    display_name: str | None = None,
    resident_id: int | None = None,
    now: dt.datetime | None = None,
) -> User:
    name = normalise_username(username)
    if not _USERNAME.fullmatch(name):
        raise Invalid(
            "user.username.format",
            "用户名须为 3-64 个字母、数字或 _ . @ - (user name must be 3-64 letters, digits or _ . @ -)",
        )
    if find_user(session, name) is not None:
        raise Conflict("user.username.taken", "用户名已被使用 (user name is taken)")
    if resident_id is not None and session.get(Resident, resident_id) is None:
        raise NotFound("resident.not_found", "居民不存在 (no such resident)")
    now = now or utcnow()
    user = User(
        username=name,
        display_name=(display_name or name)[:64],
        password_hash=passwords.hash_password(password) if password is not None else None,
        password_changed_at=now if password is not None else None,
        resident_id=resident_id,
        active=True,
        created_at=now,
    )
    session.add(user)
    session.flush()
    return user


def set_password(session: Session, user: User, password: str, now: dt.datetime | None = None) -> int:
    """Replace the password and sign the user out everywhere; returns the credentials revoked."""
    now = now or utcnow()
    user.password_hash = passwords.hash_password(password)
    user.password_changed_at = now
    return revoke_all_credentials(session, user.id, now)


def grant_role(
    session: Session,
    user: User,
    role: Role | str,
    *,
    organisation_id: int | None = None,
    area_id: int | None = None,
    granted_by: int | None = None,
    now: dt.datetime | None = None,
) -> RoleMembership:
    """Give ``user`` a role, checking that the role's scope makes sense."""
    info = role_info(role)
    label = info.label
    if info.audience is Audience.public:
        if organisation_id is not None or area_id is not None:
            raise Invalid(
                "role.scope.public", f"{label} 不属于机构或辖区 ({info.en} has no organisation or area)"
            )
        if info.role is Role.resident and user.resident_id is None:
            raise Invalid(
                "role.resident.unlinked",
                "居民账号须关联居民档案 (a resident user must be linked to a resident)",
            )
    if info.area_scope is AreaScope.required and area_id is None:
        raise Invalid("role.area.required", f"{label} 须指定辖区 ({info.en} needs an area)")
    if info.area_scope is AreaScope.none and area_id is not None:
        raise Invalid("role.area.none", f"{label} 不按辖区授权 ({info.en} is not scoped by area)")
    organisation = session.get(Organisation, organisation_id) if organisation_id is not None else None
    if organisation_id is not None and organisation is None:
        raise NotFound("organisation.not_found", "机构不存在 (no such organisation)")
    _check_organisation_kind(info.role, organisation)
    if area_id is not None and session.get(Area, area_id) is None:
        raise NotFound("area.not_found", "辖区不存在 (no such area)")
    membership = RoleMembership(
        user_id=user.id,
        role=info.role,
        organisation_id=organisation_id,
        area_id=area_id,
        granted_by=granted_by,
        granted_at=now or utcnow(),
    )
    session.add(membership)
    session.flush()
    return membership


def _check_organisation_kind(role: Role, organisation: Organisation | None) -> None:
    """A social organisation's people hold the social-organisation role, and only they do: the
    recipient class their role carries is what the resident's consent is asked for (``policy.SCOPES``)."""
    social = organisation is not None and organisation.kind == OrganisationKind.social_organisation
    if role is Role.social_worker and not social:
        raise Invalid(
            "role.organisation.kind",
            "社会组织工作人员须属于社会组织 (a social-organisation worker must belong to a social organisation)",
        )
    if social and role is Role.station_staff:
        raise Invalid(
            "role.organisation.kind",
            "社会组织的人员请授予社会组织工作人员角色 (a social organisation's people hold the "
            "social-organisation worker role, not station staff)",
        )


def as_clinician(actor: Actor) -> Actor:
    """The actor as a family-doctor team's clinician (``CLINICAL_TEAM_ROLES``), or ``Forbidden``.

    For a clinical decision (accepting a care plan): scope and consent are then decided by the
    clinician's grants alone, not by another role the person also holds."""
    clinician = actor.acting_as(CLINICAL_TEAM_ROLES)
    if not clinician.grants:
        raise Forbidden(
            "access.clinician",
            "只有签约团队的医生、护士或健康管理师可以这样做 (only a family doctor, nurse or health manager may do this)",
        )
    return clinician


def revoke_role(session: Session, membership_id: int, now: dt.datetime | None = None) -> RoleMembership:
    membership = session.get(RoleMembership, membership_id)
    if membership is None:
        raise NotFound("role.membership.not_found", "角色授权不存在 (no such role membership)")
    if membership.revoked_at is None:
        membership.revoked_at = now or utcnow()
    return membership


def admin_exists(session: Session) -> bool:
    return bool(
        session.scalar(
            select(
                exists().where(
                    RoleMembership.role == ADMIN_ROLE,
                    RoleMembership.revoked_at.is_(None),
                    RoleMembership.user_id == User.id,
                    User.active.is_(True),
                )
            )
        )
    )


def create_admin(session: Session, username: str, password: str, *, force: bool = False) -> User:
    """The first-run administrator: refused when one exists, unless ``force``."""
    if admin_exists(session) and not force:
        raise Conflict(
            "user.admin.exists",
            "已有管理员；确需再建请加 --force (an administrator exists; use --force to add another)",
        )
    user = create_user(session, username, password=password, display_name="管理员 administrator")
    grant_role(session, user, ADMIN_ROLE)
    return user


# --- family authorisations (数据授权) --------------------------------------------------------


def authorise_family_member(
    session: Session,
    resident_id: int,
    grantee: User,
    kinship: str,
    *,
    valid_from: dt.datetime | None = None,
    valid_until: dt.datetime | None = None,
    recorded_by: int | None = None,
) -> ResidentAuthorisation:
    """Let ``grantee`` act for the resident from ``valid_from`` until ``valid_until`` or revocation."""
    if session.get(Resident, resident_id) is None:
        raise NotFound("resident.not_found", "居民不存在 (no such resident)")
    valid_from = valid_from or utcnow()
    if valid_until is not None and valid_until <= valid_from:
        raise Invalid("authorisation.period", "授权结束须晚于开始 (authorisation must end after it starts)")
    authorisation = ResidentAuthorisation(
        resident_id=resident_id,
        grantee_id=grantee.id,
        kinship=kinship[:32],
        valid_from=valid_from,
        valid_until=valid_until,
        recorded_by=recorded_by,
    )
    session.add(authorisation)
    session.flush()
    return authorisation


def revoke_authorisation(session: Session, authorisation_id: int, now: dt.datetime | None = None) -> None:
    authorisation = session.get(ResidentAuthorisation, authorisation_id)
    if authorisation is None:
        raise NotFound("authorisation.not_found", "授权不存在 (no such authorisation)")
    if authorisation.revoked_at is None:
        authorisation.revoked_at = now or utcnow()


def authorisation_in_force(now: dt.datetime) -> ColumnElement[bool]:
    """``authorisations.in_force`` as SQL: begun, not ended, not revoked."""
    return and_(
        ResidentAuthorisation.revoked_at.is_(None),
        ResidentAuthorisation.valid_from <= now,
        or_(ResidentAuthorisation.valid_until.is_(None), ResidentAuthorisation.valid_until > now),
    )


def residents_acted_for(session: Session, user_id: int, now: dt.datetime) -> tuple[int, ...]:
    """Residents whose authorisation of this user is in force at ``now``."""
    rows = session.scalars(
        select(ResidentAuthorisation.resident_id)
        .where(ResidentAuthorisation.grantee_id == user_id, authorisation_in_force(now))
        .order_by(ResidentAuthorisation.resident_id)
        .distinct()
    )
    return tuple(rows)


def family_of(resident_id: int, now: dt.datetime) -> Select[tuple[int]]:
    """The accounts of the resident and of their family: a family authorisation in force, or a
    member of the resident's household. What they do for the elder is family care, not time-bank
    service: dispatch never offers them the elder's order, and the time bank credits nothing."""
    household = select(Resident.household_id).where(Resident.id == resident_id).scalar_subquery()
    housemates = select(Resident.id).where(Resident.household_id == household)  # none without a household
    authorised = select(ResidentAuthorisation.grantee_id).where(
        ResidentAuthorisation.resident_id == resident_id, authorisation_in_force(now)
    )
    return select(User.id).where(
        or_(User.resident_id == resident_id, User.resident_id.in_(housemates), User.id.in_(authorised))
    )


# --- sign-in ---------------------------------------------------------------------------------


def throttle_policy(settings: Settings) -> ThrottlePolicy:
    return ThrottlePolicy(
        window=dt.timedelta(seconds=settings.sign_in_window_seconds),
        max_failures_per_account=settings.sign_in_max_failures_per_account,
        max_failures_per_client=settings.sign_in_max_failures_per_client,
    )


def account_key(username: str) -> str:
    return hashlib.sha256(normalise_username(username).encode("utf-8")).hexdigest()


@dataclass(frozen=True, slots=True)
class SignInOutcome:
    user: User | None  # signed in, or None
    retry_after: int | None = None  # refused unchecked: too many recent failures


def attempt_sign_in(
    session: Session,
    username: str,
    password: str,
    client_address: str,
    policy: ThrottlePolicy,
    now: dt.datetime,
) -> SignInOutcome:
    """Check a password sign-in, counting it for throttling.

    A throttled attempt is refused before the password is looked at and is not counted, so
    waiting out the window always works. A failure is recorded in the session: the caller must
    commit it even though it then refuses the request.
    """
    key = account_key(username)
    client = client_address[:64]
    since = now - policy.window
    last_success = session.scalar(
        select(func.max(SignInAttempt.attempted_at)).where(
            SignInAttempt.account_key == key, SignInAttempt.succeeded.is_(True)
        )
    )
    # A success clears the account's count; it does not clear the client's (one known account
    # must not reset a guesser's budget against all the others).
    account_since = max(since, last_success) if last_success else since
    account_failures = session.scalars(
        select(SignInAttempt.attempted_at).where(
            SignInAttempt.account_key == key,
            SignInAttempt.succeeded.is_(False),
            SignInAttempt.attempted_at > account_since,
        )
    ).all()
    client_failures = session.scalars(
        select(SignInAttempt.attempted_at).where(
            SignInAttempt.client_address == client,
            SignInAttempt.succeeded.is_(False),
            SignInAttempt.attempted_at > since,
        )
    ).all()
    waits = [
        retry_after(account_failures, now, policy.max_failures_per_account, policy.window),
        retry_after(client_failures, now, policy.max_failures_per_client, policy.window),
    ]
    refused = [wait for wait in waits if wait is not None]
    if refused:
        return SignInOutcome(None, max(refused))

    user = find_user(session, username)
    matches = passwords.verify_password(user.password_hash if user else None, password)
    succeeded = bool(user and user.active and matches)
    session.add(SignInAttempt(account_key=key, client_address=client, succeeded=succeeded, attempted_at=now))
    session.execute(
        delete(SignInAttempt).where(SignInAttempt.attempted_at < now - max(ATTEMPT_RETENTION, policy.window))
    )
    if not succeeded or user is None:
        return SignInOutcome(None)
    if passwords.needs_rehash(user.password_hash or ""):
        user.password_hash = passwords.hash_password(password)
    user.last_sign_in_at = now
    return SignInOutcome(user)


# --- credentials -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class IssuedCredential:
    secret: str  # shown once, to the client; never stored
    credential: AuthCredential


def issue_credential(
    session: Session,
    user: User,
    kind: CredentialKind,
    ttl: dt.timedelta,
    now: dt.datetime,
    label: str | None = None,
) -> IssuedCredential:
    if kind is CredentialKind.bearer:
        secret = tokens.new_bearer_token()
    elif kind is CredentialKind.session:
        secret = tokens.new_session_secret()
    else:
        raise ValueError(f"no credential for {kind}")
    credential = AuthCredential(
        user_id=user.id,
        kind=kind,
        secret_sha256=tokens.secret_digest(secret),
        label=label[:64] if label else None,
        created_at=now,
        expires_at=now + ttl,
    )
    session.add(credential)
    session.flush()
    return IssuedCredential(secret, credential)


def find_credential(
    session: Session, secret: str, kind: CredentialKind, now: dt.datetime
) -> AuthCredential | None:
    """The credential for ``secret`` if it is of ``kind``, unexpired, unrevoked and its user active."""
    if not tokens.well_formed(secret):
        return None
    credential = session.scalar(
        select(AuthCredential).where(AuthCredential.secret_sha256 == tokens.secret_digest(secret))
    )
    if credential is None or credential.kind != kind or credential.revoked_at is not None:
        return None
    if credential.expires_at <= now:
        return None
    if credential.last_used_at is None or now - credential.last_used_at >= LAST_USED_RESOLUTION:
        credential.last_used_at = now
    return credential


def revoke_credential(session: Session, credential_id: int, now: dt.datetime) -> int:
    result = session.execute(
        update(AuthCredential)
        .where(AuthCredential.id == credential_id, AuthCredential.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    return result.rowcount or 0


def revoke_all_credentials(
    session: Session, user_id: int, now: dt.datetime, *, keep: int | None = None
) -> int:
    """Sign out everywhere: every token and session of the user, at once (but ``keep``, the one
    making a request that should stay signed in)."""
    conditions = [AuthCredential.user_id == user_id, AuthCredential.revoked_at.is_(None)]
    if keep is not None:
        conditions.append(AuthCredential.id != keep)
    result = session.execute(update(AuthCredential).where(*conditions).values(revoked_at=now))
    return result.rowcount or 0


# --- the actor -------------------------------------------------------------------------------


def active_grants(session: Session, user_id: int) -> tuple[RoleGrant, ...]:
    memberships = session.scalars(
        select(RoleMembership)
        .where(RoleMembership.user_id == user_id, RoleMembership.revoked_at.is_(None))
        .order_by(RoleMembership.id)
    )
    return tuple(
        RoleGrant(role=m.role, organisation_id=m.organisation_id, area_id=m.area_id, membership_id=m.id)
        for m in memberships
    )


def load_actor(
    session: Session,
    user_id: int,
    now: dt.datetime,
    *,
    via: CredentialKind = CredentialKind.system,
    credential_id: int | None = None,
    request_id: str | None = None,
) -> Actor:
    user = session.get(User, user_id)
    if user is None or not user.active:
        raise Unauthorized("auth.user_inactive", "账号已停用 (this account is deactivated)")
    grants = active_grants(session, user.id)
    acts_for = (
        residents_acted_for(session, user.id, now)
        if any(g.role is Role.family_member for g in grants)
        else ()
    )
    return Actor(
        user_id=user.id,
        username=user.username,
        grants=grants,
        resident_id=user.resident_id,
        acts_for=acts_for,
        via=via,
        credential_id=credential_id,
        request_id=request_id,
    )

"""Request and response bodies of the access API."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from yiyang.access.actor import Actor, RoleGrant
from yiyang.access.models import ResidentAuthorisation, RoleMembership, User
from yiyang.access.roles import Role, role_info
from yiyang.deps import MAX_ID, RequestDateTime


class LoginRequest(BaseModel):
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=256)
    # "api": a bearer token in the body; "web": an HttpOnly session cookie and its CSRF token.
    client: Literal["api", "web"] = "api"
    label: str | None = Field(default=None, max_length=64, description="names an API token, e.g. the device")


class GrantRead(BaseModel):
    role: Role
    label_zh: str
    label_en: str
    organisation_id: int | None
    area_id: int | None

    @classmethod
    def of(cls, grant: RoleGrant) -> GrantRead:
        info = role_info(grant.role)
        return cls(
            role=grant.role,
            label_zh=info.zh,
            label_en=info.en,
            organisation_id=grant.organisation_id,
            area_id=grant.area_id,
        )


class ActorRead(BaseModel):
    user_id: int
    username: str
    roles: list[GrantRead]
    resident_id: int | None
    acts_for: list[int]
    via: str
    csrf_token: str | None = None  # for cookie sessions: send it back as X-CSRF-Token

    @classmethod
    def of(cls, actor: Actor, csrf_token: str | None = None) -> ActorRead:
        return cls(
            user_id=actor.user_id or 0,
            username=actor.username,
            roles=[GrantRead.of(grant) for grant in actor.grants],
            resident_id=actor.resident_id,
            acts_for=list(actor.acts_for),
            via=actor.via.value,
            csrf_token=csrf_token,
        )


class LoginResponse(BaseModel):
    expires_at: dt.datetime
    token: str | None = None  # client "api": send as Authorization: Bearer <token>
    token_type: Literal["bearer"] | None = None
    csrf_token: str | None = None  # client "web": send as X-CSRF-Token on POST/PUT/PATCH/DELETE
    actor: ActorRead


class SignOutResult(BaseModel):
    revoked: int  # credentials revoked by this request


# --- consent and break-the-glass ---------------------------------------------------------------


class ConsentCreate(BaseModel):
    category: Literal["identity", "clinical", "sensor", "civil_affairs", "care_services"]
    recipient_class: Literal["health", "civil_affairs", "social"]
    purpose: Literal["care", "statistics"] = "care"
    decision: Literal["permit", "deny"] = "permit"
    valid_from: RequestDateTime | None = None
    valid_until: RequestDateTime | None = None
    note: str | None = Field(default=None, max_length=200, description="e.g. the paper form's number; no PII")


class ConsentRead(BaseModel):
    model_config = {"from_attributes": True}

    id: int
    resident_id: int
    category: str
    recipient_class: str
    purpose: str
    decision: str
    valid_from: dt.datetime
    valid_until: dt.datetime | None
    revoked_at: dt.datetime | None
    ended_reason: str | None
    source: str
    recorded_by: int | None
    revoked_by: int | None
    note: str | None
    created_at: dt.datetime


class BreakGlassOpen(BaseModel):
    reason: str = Field(min_length=1, max_length=200, description="why, for the reviewer; no ID numbers")


class BreakGlassRead(BaseModel):
    model_config = {"from_attributes": True}

    id: int
    user_id: int
    actor_name: str
    role: str
    organisation_id: int | None
    resident_id: int
    reason: str
    opened_at: dt.datetime
    expires_at: dt.datetime
    reviewed_by: int | None
    reviewed_at: dt.datetime | None
    verdict: str | None
    review_note: str | None


class BreakGlassPage(BaseModel):
    total: int
    items: list[BreakGlassRead]


class BreakGlassReview(BaseModel):
    verdict: Literal["justified", "unjustified"]
    note: str | None = Field(default=None, max_length=200)


# --- reveal and the audit trail (audit_api.py) ------------------------------------------------


class RevealRequest(BaseModel):
    field: Literal["id_number", "phone"]
    reason: str = Field(
        min_length=2, max_length=200, description="why the full value is needed; kept in the audit trail"
    )


class RevealResponse(BaseModel):
    resident_id: int
    field: str
    value: str | None  # None: nothing on file
    revealed_at: dt.datetime


class AuditEventRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    occurred_at: dt.datetime
    user_id: int | None
    actor_name: str
    role: str | None
    organisation_id: int | None
    resident_id: int | None
    action: str
    resource_type: str
    field_group: str | None
    purpose: str | None
    outcome: str
    reason: str | None
    request_id: str | None


class AuditPage(BaseModel):
    total: int
    items: list[AuditEventRead]


class AccessEntryRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    occurred_at: dt.datetime
    action: str
    what: str
    field_group: str | None
    purpose: str | None
    outcome: str
    role: str | None
    role_label: str | None
    organisation: str | None


class AccessLogPage(BaseModel):
    total: int
    items: list[AccessEntryRead]


# --- account administration (账号管理) -------------------------------------------------------

BodyId = Annotated[int, Field(ge=1, le=MAX_ID)]


class MembershipRead(BaseModel):
    """One role an account holds or held: where, granted by whom and when, ended when."""

    id: int
    role: Role
    label_zh: str
    label_en: str
    organisation_id: int | None
    area_id: int | None
    granted_by: int | None
    granted_at: dt.datetime
    revoked_at: dt.datetime | None

    @classmethod
    def of(cls, membership: RoleMembership) -> MembershipRead:
        info = role_info(membership.role)
        return cls(
            id=membership.id,
            role=membership.role,
            label_zh=info.zh,
            label_en=info.en,
            organisation_id=membership.organisation_id,
            area_id=membership.area_id,
            granted_by=membership.granted_by,
            granted_at=membership.granted_at,
            revoked_at=membership.revoked_at,
        )


class AccountRead(BaseModel):
    id: int
    username: str
    display_name: str
    active: bool
    resident_id: int | None
    created_at: dt.datetime
    password_changed_at: dt.datetime | None
    last_sign_in_at: dt.datetime | None
    roles: list[MembershipRead]  # in force and ended, oldest first

    @classmethod
    def of(cls, user: User, memberships: list[RoleMembership]) -> AccountRead:
        return cls(
            id=user.id,
            username=user.username,
            display_name=user.display_name,
            active=user.active,
            resident_id=user.resident_id,
            created_at=user.created_at,
            password_changed_at=user.password_changed_at,
            last_sign_in_at=user.last_sign_in_at,
            roles=[MembershipRead.of(m) for m in memberships],
        )


class AccountListPage(BaseModel):
    total: int
    items: list[AccountRead]


class RoleGrantCreate(BaseModel):
    role: Role
    organisation_id: BodyId | None = None
    area_id: BodyId | None = None


class AccountCreate(RoleGrantCreate):
    username: str = Field(min_length=3, max_length=64, description="3-64 letters, digits or _ . @ -")
    display_name: str | None = Field(default=None, min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=256, description="8-256 characters")
    resident_id: BodyId | None = Field(default=None, description="for a resident's own account")


class PasswordReset(BaseModel):
    password: str = Field(min_length=1, max_length=256, description="8-256 characters")


class PasswordChange(BaseModel):
    current_password: str = Field(min_length=1, max_length=256)
    new_password: str = Field(min_length=1, max_length=256, description="8-256 characters")


class CredentialsRevoked(BaseModel):
    revoked: int  # tokens and sessions signed out by this change


# --- family authorisations (数据授权) --------------------------------------------------------

Kinship = Literal["spouse", "child", "child_in_law", "grandchild", "sibling", "other_relative", "guardian"]


class AuthorisationCreate(BaseModel):
    grantee_username: str = Field(min_length=3, max_length=64, description="the family member's account")
    kinship: Kinship = Field(description="与老人关系, as the signed form says")
    valid_from: RequestDateTime | None = None
    valid_until: RequestDateTime | None = Field(default=None, description="open-ended when absent")


class AuthorisationRead(BaseModel):
    id: int
    resident_id: int
    grantee_id: int
    grantee_username: str
    grantee_display_name: str
    kinship: str
    kinship_zh: str
    valid_from: dt.datetime
    valid_until: dt.datetime | None
    revoked_at: dt.datetime | None
    recorded_by: int | None
    created_at: dt.datetime
    in_force: bool

    @classmethod
    def of(cls, authorisation: ResidentAuthorisation, grantee: User, now: dt.datetime) -> AuthorisationRead:
        from yiyang.access.authorisations import KINSHIPS, in_force

        a = authorisation
        return cls(
            id=a.id, resident_id=a.resident_id, grantee_id=grantee.id, grantee_username=grantee.username,
            grantee_display_name=grantee.display_name, kinship=a.kinship, kinship_zh=KINSHIPS.get(a.kinship, a.kinship),
            valid_from=a.valid_from, valid_until=a.valid_until, revoked_at=a.revoked_at, recorded_by=a.recorded_by,
            created_at=a.created_at, in_force=in_force(a, now),
        )  # fmt: skip

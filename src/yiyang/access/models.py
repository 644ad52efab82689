"""Access tables: users, role memberships, family authorisations, credentials, sign-in attempts
and the hash-chained audit trail.

Secrets are never stored: passwords as argon2 hashes, bearer tokens and session ids as SHA-256
digests. ``audit_event`` has no foreign keys on purpose: the trail must outlive and never block
changes to the rows it talks about (a merged resident, a deactivated user).
"""

from __future__ import annotations

import datetime as dt
import enum

from sqlalchemy import Boolean, Enum, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from yiyang.access.actor import CredentialKind
from yiyang.access.roles import Role
from yiyang.db import Base, utcnow


class User(Base):
    """A person who signs in: staff, a resident, or a family member."""

    __tablename__ = "user_account"  # "user" is reserved in PostgreSQL

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(64))
    password_hash: Mapped[str | None] = mapped_column(String(200))  # None: cannot sign in with a password
    resident_id: Mapped[int | None] = mapped_column(ForeignKey("resident.id"), index=True)  # this user is
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    password_changed_at: Mapped[dt.datetime | None] = mapped_column()
    last_sign_in_at: Mapped[dt.datetime | None] = mapped_column()


class RoleMembership(Base):
    """A role held by a user in an organisation, over an area for jurisdictional roles."""

    __tablename__ = "role_membership"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user_account.id"), index=True)
    role: Mapped[Role] = mapped_column(Enum(Role, native_enum=False, length=32), index=True)
    organisation_id: Mapped[int | None] = mapped_column(ForeignKey("organisation.id"), index=True)
    area_id: Mapped[int | None] = mapped_column(ForeignKey("area.id"), index=True)
    granted_by: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    granted_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[dt.datetime | None] = mapped_column()


class ResidentAuthorisation(Base):
    """数据授权: a resident lets a family member act for them, for a while, until revoked."""

    __tablename__ = "resident_authorisation"

    id: Mapped[int] = mapped_column(primary_key=True)
    resident_id: Mapped[int] = mapped_column(ForeignKey("resident.id"), index=True)
    grantee_id: Mapped[int] = mapped_column(ForeignKey("user_account.id"), index=True)
    kinship: Mapped[str] = mapped_column(String(32))  # 与老人关系: 子女, 配偶, 其他亲属 ...
    valid_from: Mapped[dt.datetime] = mapped_column()
    valid_until: Mapped[dt.datetime | None] = mapped_column()
    recorded_by: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))  # staff for a paper form
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[dt.datetime | None] = mapped_column()


class AuthCredential(Base):
    """A bearer token or a web session; only the SHA-256 of its secret is kept."""

    __tablename__ = "auth_credential"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user_account.id"), index=True)
    kind: Mapped[CredentialKind] = mapped_column(Enum(CredentialKind, native_enum=False, length=16))
    secret_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    label: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[dt.datetime] = mapped_column()
    last_used_at: Mapped[dt.datetime | None] = mapped_column()
    revoked_at: Mapped[dt.datetime | None] = mapped_column()


class SignInAttempt(Base):
    """One password sign-in, kept for a while to throttle guessing across app processes.

    ``account_key`` is the SHA-256 of the normalised user name, so a password typed into the
    user-name box is not kept readable.
    """

    __tablename__ = "sign_in_attempt"

    id: Mapped[int] = mapped_column(primary_key=True)
    account_key: Mapped[str] = mapped_column(String(64))
    client_address: Mapped[str] = mapped_column(String(64))
    succeeded: Mapped[bool] = mapped_column(Boolean)
    attempted_at: Mapped[dt.datetime] = mapped_column(index=True)

    __table_args__ = (
        Index("ix_sign_in_attempt_account_time", "account_key", "attempted_at"),
        Index("ix_sign_in_attempt_client_time", "client_address", "attempted_at"),
    )


class AuditAction(enum.StrEnum):
    read = "read"
    create = "create"
    update = "update"
    delete = "delete"
    reveal = "reveal"  # an unmasked value (ID number, phone) shown
    export = "export"
    break_glass = "break_glass"  # emergency access outside the actor's usual scope


class AuditOutcome(enum.StrEnum):
    allowed = "allowed"
    denied = "denied"


class AuditEvent(Base):
    """One read or write of resident data; append-only and hash-chained (see audit.py)."""

    __tablename__ = "audit_event"

    id: Mapped[int] = mapped_column(primary_key=True)
    occurred_at: Mapped[dt.datetime] = mapped_column(index=True)
    user_id: Mapped[int | None] = mapped_column(Integer, index=True)
    actor_name: Mapped[str] = mapped_column(String(64))
    role: Mapped[str | None] = mapped_column(String(32))
    organisation_id: Mapped[int | None] = mapped_column(Integer)
    resident_id: Mapped[int | None] = mapped_column(Integer, index=True)
    action: Mapped[AuditAction] = mapped_column(Enum(AuditAction, native_enum=False, length=16))
    resource_type: Mapped[str] = mapped_column(String(40))
    field_group: Mapped[str | None] = mapped_column(String(40))
    purpose: Mapped[str | None] = mapped_column(String(64))
    outcome: Mapped[AuditOutcome] = mapped_column(Enum(AuditOutcome, native_enum=False, length=16))
    reason: Mapped[str | None] = mapped_column(String(200))
    request_id: Mapped[str | None] = mapped_column(String(64))
    prev_hash: Mapped[str] = mapped_column(String(64))
    row_hash: Mapped[str] = mapped_column(String(64))


class AuditChainHead(Base):
    """The one row writers lock to extend the chain; it also names the last event, so a
    deleted tail is noticed."""

    __tablename__ = "audit_chain_head"

    id: Mapped[int] = mapped_column(primary_key=True)  # always 1
    last_event_id: Mapped[int] = mapped_column(Integer, default=0)
    last_hash: Mapped[str] = mapped_column(String(64))
    updated_at: Mapped[dt.datetime | None] = mapped_column()


class RelationshipKind(enum.StrEnum):
    """Why a staff member or organisation may look after a resident (the scope of care roles)."""

    contract = "contract"  # 家庭医生签约: the family-doctor team (an organisation) and its members
    service = "service"  # 驿站/机构服务: an elderly-care station or institution serving the resident
    pairing = "pairing"  # 志愿者结对: one volunteer paired with one elder


class ResidentRelationship(Base):
    """A care relationship in force between a resident and an organisation or one user.

    Written by the domain that owns the relationship (``care`` for contracts and station service,
    ``timebank`` for pairings), named by ``source_type`` and ``source_id`` so it can end the row
    when its contract or pairing ends; read by ``access.policy`` to draw care roles' scope.
    """

    __tablename__ = "resident_relationship"
    __table_args__ = (
        Index("ix_resident_relationship_org_resident", "organisation_id", "resident_id"),
        Index("ix_resident_relationship_user_resident", "user_id", "resident_id"),
        Index("ix_resident_relationship_source", "source_type", "source_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    resident_id: Mapped[int] = mapped_column(ForeignKey("resident.id"), index=True)
    kind: Mapped[RelationshipKind] = mapped_column(Enum(RelationshipKind, native_enum=False, length=16))
    organisation_id: Mapped[int | None] = mapped_column(ForeignKey("organisation.id"))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    valid_from: Mapped[dt.datetime] = mapped_column()
    valid_until: Mapped[dt.datetime | None] = mapped_column()  # None: until ended
    ended_at: Mapped[dt.datetime | None] = mapped_column()
    source_type: Mapped[str] = mapped_column(String(32))  # e.g. "care_contract", "volunteer_pairing"
    source_id: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

"""access: users, role memberships, family authorisations, credentials, sign-in attempts, audit trail

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24

Written by hand. ``audit_event`` is append-only: a trigger refuses UPDATE and DELETE on both
PostgreSQL and SQLite (row triggers do not fire on TRUNCATE; deny that by privileges).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import yiyang.db

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ROLES = (
    "family_doctor", "nurse", "health_manager", "grid_worker", "station_staff", "volunteer",
    "civil_affairs_officer", "health_officer", "district_admin", "resident", "family_member",
)  # fmt: skip
ACTIONS = ("read", "create", "update", "delete", "reveal", "export", "break_glass")
APPEND_ONLY = "audit_event is append-only (审计日志只可追加)"


def upgrade() -> None:
    op.create_table(
        "user_account",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("display_name", sa.String(length=64), nullable=False),
        sa.Column("password_hash", sa.String(length=200), nullable=True),
        sa.Column("resident_id", sa.Integer(), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", yiyang.db.UTCDateTime(), nullable=False),
        sa.Column("password_changed_at", yiyang.db.UTCDateTime(), nullable=True),
        sa.Column("last_sign_in_at", yiyang.db.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["resident_id"], ["resident.id"], name=op.f("fk_user_account_resident_id_resident")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_user_account")),
        sa.UniqueConstraint("username", name=op.f("uq_user_account_username")),
    )
    op.create_index(op.f("ix_user_account_resident_id"), "user_account", ["resident_id"])

    op.create_table(
        "role_membership",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("role", sa.Enum(*ROLES, name="role", native_enum=False, length=32), nullable=False),
        sa.Column("organisation_id", sa.Integer(), nullable=True),
        sa.Column("area_id", sa.Integer(), nullable=True),
        sa.Column("granted_by", sa.Integer(), nullable=True),
        sa.Column("granted_at", yiyang.db.UTCDateTime(), nullable=False),
        sa.Column("revoked_at", yiyang.db.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"], ["user_account.id"], name=op.f("fk_role_membership_user_id_user_account")
        ),
        sa.ForeignKeyConstraint(
            ["organisation_id"],
            ["organisation.id"],
            name=op.f("fk_role_membership_organisation_id_organisation"),
        ),
        sa.ForeignKeyConstraint(["area_id"], ["area.id"], name=op.f("fk_role_membership_area_id_area")),
        sa.ForeignKeyConstraint(
            ["granted_by"], ["user_account.id"], name=op.f("fk_role_membership_granted_by_user_account")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_role_membership")),
    )
    for column in ("user_id", "role", "organisation_id", "area_id"):
        op.create_index(op.f(f"ix_role_membership_{column}"), "role_membership", [column])

    op.create_table(
        "resident_authorisation",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("resident_id", sa.Integer(), nullable=False),
        sa.Column("grantee_id", sa.Integer(), nullable=False),
        sa.Column("kinship", sa.String(length=32), nullable=False),
        sa.Column("valid_from", yiyang.db.UTCDateTime(), nullable=False),
        sa.Column("valid_until", yiyang.db.UTCDateTime(), nullable=True),
        sa.Column("recorded_by", sa.Integer(), nullable=True),
        sa.Column("created_at", yiyang.db.UTCDateTime(), nullable=False),
        sa.Column("revoked_at", yiyang.db.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["resident_id"], ["resident.id"], name=op.f("fk_resident_authorisation_resident_id_resident")
        ),
        sa.ForeignKeyConstraint(
            ["grantee_id"],
            ["user_account.id"],
            name=op.f("fk_resident_authorisation_grantee_id_user_account"),
        ),
        sa.ForeignKeyConstraint(
            ["recorded_by"],
            ["user_account.id"],
            name=op.f("fk_resident_authorisation_recorded_by_user_account"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_resident_authorisation")),
    )
    for column in ("resident_id", "grantee_id"):
        op.create_index(op.f(f"ix_resident_authorisation_{column}"), "resident_authorisation", [column])

    op.create_table(
        "auth_credential",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column(
            "kind",
            sa.Enum("bearer", "session", "system", name="credentialkind", native_enum=False, length=16),
            nullable=False,
        ),
        sa.Column("secret_sha256", sa.String(length=64), nullable=False),
        sa.Column("label", sa.String(length=64), nullable=True),
        sa.Column("created_at", yiyang.db.UTCDateTime(), nullable=False),
        sa.Column("expires_at", yiyang.db.UTCDateTime(), nullable=False),
        sa.Column("last_used_at", yiyang.db.UTCDateTime(), nullable=True),
        sa.Column("revoked_at", yiyang.db.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"], ["user_account.id"], name=op.f("fk_auth_credential_user_id_user_account")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_auth_credential")),
        sa.UniqueConstraint("secret_sha256", name=op.f("uq_auth_credential_secret_sha256")),
    )
    op.create_index(op.f("ix_auth_credential_user_id"), "auth_credential", ["user_id"])

    op.create_table(
        "sign_in_attempt",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account_key", sa.String(length=64), nullable=False),
        sa.Column("client_address", sa.String(length=64), nullable=False),
        sa.Column("succeeded", sa.Boolean(), nullable=False),
        sa.Column("attempted_at", yiyang.db.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sign_in_attempt")),
    )
    op.create_index(op.f("ix_sign_in_attempt_attempted_at"), "sign_in_attempt", ["attempted_at"])
    op.create_index("ix_sign_in_attempt_account_time", "sign_in_attempt", ["account_key", "attempted_at"])
    op.create_index("ix_sign_in_attempt_client_time", "sign_in_attempt", ["client_address", "attempted_at"])

    op.create_table(
        "audit_event",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("occurred_at", yiyang.db.UTCDateTime(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("actor_name", sa.String(length=64), nullable=False),
        sa.Column("role", sa.String(length=32), nullable=True),
        sa.Column("organisation_id", sa.Integer(), nullable=True),
        sa.Column("resident_id", sa.Integer(), nullable=True),
        sa.Column(
            "action", sa.Enum(*ACTIONS, name="auditaction", native_enum=False, length=16), nullable=False
        ),
        sa.Column("resource_type", sa.String(length=40), nullable=False),
        sa.Column("field_group", sa.String(length=40), nullable=True),
        sa.Column("purpose", sa.String(length=64), nullable=True),
        sa.Column(
            "outcome",
            sa.Enum("allowed", "denied", name="auditoutcome", native_enum=False, length=16),
            nullable=False,
        ),
        sa.Column("reason", sa.String(length=200), nullable=True),
        sa.Column("request_id", sa.String(length=64), nullable=True),
        sa.Column("prev_hash", sa.String(length=64), nullable=False),
        sa.Column("row_hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_event")),
    )
    for column in ("occurred_at", "user_id", "resident_id"):
        op.create_index(op.f(f"ix_audit_event_{column}"), "audit_event", [column])

    op.create_table(
        "audit_chain_head",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("last_event_id", sa.Integer(), nullable=False),
        sa.Column("last_hash", sa.String(length=64), nullable=False),
        sa.Column("updated_at", yiyang.db.UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_chain_head")),
    )

    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            f"""
            CREATE FUNCTION audit_event_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                RAISE EXCEPTION '{APPEND_ONLY}' USING ERRCODE = 'insufficient_privilege';
            END $$
            """
        )
        op.execute(
            "CREATE TRIGGER audit_event_append_only BEFORE UPDATE OR DELETE ON audit_event "
            "FOR EACH ROW EXECUTE FUNCTION audit_event_append_only()"
        )
    else:
        for verb in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER audit_event_no_{verb.lower()} BEFORE {verb} ON audit_event "
                f"BEGIN SELECT RAISE(ABORT, '{APPEND_ONLY}'); END"
            )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS audit_event_append_only ON audit_event")
        op.execute("DROP FUNCTION IF EXISTS audit_event_append_only()")
    else:
        op.execute("DROP TRIGGER IF EXISTS audit_event_no_update")
        op.execute("DROP TRIGGER IF EXISTS audit_event_no_delete")
    op.drop_table("audit_chain_head")
    for column in ("occurred_at", "user_id", "resident_id"):
        op.drop_index(op.f(f"ix_audit_event_{column}"), table_name="audit_event")
    op.drop_table("audit_event")
    op.drop_index("ix_sign_in_attempt_client_time", table_name="sign_in_attempt")
    op.drop_index("ix_sign_in_attempt_account_time", table_name="sign_in_attempt")
    op.drop_index(op.f("ix_sign_in_attempt_attempted_at"), table_name="sign_in_attempt")
    op.drop_table("sign_in_attempt")
    op.drop_index(op.f("ix_auth_credential_user_id"), table_name="auth_credential")
    op.drop_table("auth_credential")
    for column in ("resident_id", "grantee_id"):
        op.drop_index(op.f(f"ix_resident_authorisation_{column}"), table_name="resident_authorisation")
    op.drop_table("resident_authorisation")
    for column in ("user_id", "role", "organisation_id", "area_id"):
        op.drop_index(op.f(f"ix_role_membership_{column}"), table_name="role_membership")
    op.drop_table("role_membership")
    op.drop_index(op.f("ix_user_account_resident_id"), table_name="user_account")
    op.drop_table("user_account")

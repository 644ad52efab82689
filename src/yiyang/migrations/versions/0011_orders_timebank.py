"""care orders and time bank: service providers and the areas they cover, service orders and their history, volunteer
profiles and pairings, the double-entry hours ledger

Revision ID: 0011
Revises: 0005
Create Date: 2026-11-29

Written by hand; runs on SQLite and PostgreSQL alike.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import yiyang.db

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PROVIDER_KINDS = ("station", "family_doctor_team", "social_organisation", "volunteer")
ORDER_STATUSES = ("offered", "unassigned", "accepted", "completed", "cancelled")
PLACED_AS = ("resident", "family", "staff")
ACCOUNT_KINDS = ("volunteer", "issuance", "redeemed", "pool", "expired")
TRANSACTION_KINDS = ("earn", "spend", "donate", "expire")


def _enum(values: tuple[str, ...], name: str, length: int) -> sa.Enum:
    return sa.Enum(*values, name=name, native_enum=False, length=length)


def _fk(table: str, column: str, target: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint([column], [f"{target}.id"], name=op.f(f"fk_{table}_{column}_{target}"))


def _when(name: str, nullable: bool = True) -> sa.Column:
    return sa.Column(name, yiyang.db.UTCDateTime(), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "service_provider",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", _enum(PROVIDER_KINDS, "providerkind", 32), nullable=False),
        sa.Column("organisation_id", sa.Integer(), nullable=True),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("base_area_id", sa.Integer(), nullable=False),
        sa.Column("skills", sa.JSON(), nullable=False),
        sa.Column("availability", sa.JSON(), nullable=False),
        sa.Column("capacity", sa.Integer(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        _when("created_at", False),
        _when("updated_at", False),
        _fk("service_provider", "organisation_id", "organisation"),
        _fk("service_provider", "user_id", "user_account"),
        _fk("service_provider", "base_area_id", "area"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_service_provider")),
        sa.UniqueConstraint("organisation_id", name=op.f("uq_service_provider_organisation_id")),
        sa.UniqueConstraint("user_id", name=op.f("uq_service_provider_user_id")),
    )
    op.create_table(
        "service_provider_area",
        sa.Column("provider_id", sa.Integer(), nullable=False),
        sa.Column("area_id", sa.Integer(), nullable=False),
        _fk("service_provider_area", "provider_id", "service_provider"),
        _fk("service_provider_area", "area_id", "area"),
        sa.PrimaryKeyConstraint("provider_id", "area_id", name=op.f("pk_service_provider_area")),
    )
    op.create_index(op.f("ix_service_provider_area_area_id"), "service_provider_area", ["area_id"])
    op.create_table(
        "service_order",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("resident_id", sa.Integer(), nullable=False),
        sa.Column("service_code", sa.String(length=32), nullable=False),
        sa.Column("status", _enum(ORDER_STATUSES, "orderstatus", 16), nullable=False),
        sa.Column("placed_as", _enum(PLACED_AS, "placedas", 16), nullable=False),
        sa.Column("placed_by_user_id", sa.Integer(), nullable=True),
        _when("requested_for"),
        sa.Column("note", sa.String(length=500), nullable=True),
        sa.Column("area_id", sa.Integer(), nullable=False),
        sa.Column("price_cents", sa.Integer(), nullable=False),
        sa.Column("subsidy_cents", sa.Integer(), nullable=False),
        sa.Column("subsidy_basis", sa.String(length=32), nullable=True),
        sa.Column("provider_id", sa.Integer(), nullable=True),
        _when("offered_at"),
        _when("offer_expires_at"),
        _when("accepted_at"),
        _when("completed_at"),
        _when("cancelled_at"),
        sa.Column("minutes_on_site", sa.Integer(), nullable=True),
        sa.Column("proof_note", sa.String(length=1000), nullable=True),
        sa.Column("photo_ref", sa.String(length=200), nullable=True),
        sa.Column("rating", sa.SmallInteger(), nullable=True),
        sa.Column("rating_comment", sa.String(length=500), nullable=True),
        _when("created_at", False),
        _when("updated_at", False),
        _fk("service_order", "resident_id", "resident"),
        _fk("service_order", "area_id", "area"),
        _fk("service_order", "provider_id", "service_provider"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_service_order")),
    )
    op.create_index(op.f("ix_service_order_resident_id"), "service_order", ["resident_id"])
    op.create_index(op.f("ix_service_order_area_id"), "service_order", ["area_id"])
    op.create_index("ix_service_order_provider_status", "service_order", ["provider_id", "status"])
    op.create_index("ix_service_order_status_offer", "service_order", ["status", "offer_expires_at"])
    op.create_table(
        "service_order_transition",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("order_id", sa.Integer(), nullable=False),
        sa.Column("event", sa.String(length=16), nullable=False),
        sa.Column("from_status", sa.String(length=16), nullable=True),
        sa.Column("to_status", sa.String(length=16), nullable=False),
        sa.Column("provider_id", sa.Integer(), nullable=True),
        sa.Column("by_user_id", sa.Integer(), nullable=True),
        sa.Column("by_name", sa.String(length=64), nullable=False),
        sa.Column("reason", sa.String(length=200), nullable=True),
        _when("at", False),
        _fk("service_order_transition", "order_id", "service_order"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_service_order_transition")),
    )
    op.create_index(op.f("ix_service_order_transition_order_id"), "service_order_transition", ["order_id"])

    op.create_table(
        "volunteer_profile",
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("area_id", sa.Integer(), nullable=False),
        sa.Column("skills", sa.JSON(), nullable=False),
        sa.Column("availability", sa.JSON(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        _when("created_at", False),
        _when("updated_at", False),
        _fk("volunteer_profile", "user_id", "user_account"),
        _fk("volunteer_profile", "area_id", "area"),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_volunteer_profile")),
    )
    op.create_index(op.f("ix_volunteer_profile_area_id"), "volunteer_profile", ["area_id"])
    op.create_table(
        "volunteer_pairing",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("volunteer_user_id", sa.Integer(), nullable=False),
        sa.Column("resident_id", sa.Integer(), nullable=False),
        _when("started_at", False),
        _when("ended_at"),
        sa.Column("end_reason", sa.String(length=200), nullable=True),
        sa.Column("created_by_user_id", sa.Integer(), nullable=True),
        _fk("volunteer_pairing", "volunteer_user_id", "user_account"),
        _fk("volunteer_pairing", "resident_id", "resident"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_volunteer_pairing")),
    )
    op.create_index(
        op.f("ix_volunteer_pairing_volunteer_user_id"), "volunteer_pairing", ["volunteer_user_id"]
    )
    op.create_index(op.f("ix_volunteer_pairing_resident_id"), "volunteer_pairing", ["resident_id"])
    op.create_table(
        "timebank_account",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", _enum(ACCOUNT_KINDS, "accountkind", 16), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("code", sa.String(length=40), nullable=False),
        _when("created_at", False),
        _fk("timebank_account", "user_id", "user_account"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_timebank_account")),
        sa.UniqueConstraint("user_id", name=op.f("uq_timebank_account_user_id")),
        sa.UniqueConstraint("code", name=op.f("uq_timebank_account_code")),
    )
    op.create_table(
        "timebank_transaction",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", _enum(TRANSACTION_KINDS, "transactionkind", 16), nullable=False),
        sa.Column("idempotency_key", sa.String(length=120), nullable=False),
        sa.Column("source_type", sa.String(length=32), nullable=False),
        sa.Column("source_id", sa.Integer(), nullable=True),
        sa.Column("memo", sa.String(length=200), nullable=True),
        _when("posted_at", False),
        sa.Column("posted_by", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_timebank_transaction")),
        sa.UniqueConstraint("idempotency_key", name=op.f("uq_timebank_transaction_idempotency_key")),
    )
    op.create_index(op.f("ix_timebank_transaction_posted_at"), "timebank_transaction", ["posted_at"])
    op.create_table(
        "timebank_entry",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("transaction_id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("minutes", sa.Integer(), nullable=False),
        _when("posted_at", False),
        _fk("timebank_entry", "transaction_id", "timebank_transaction"),
        _fk("timebank_entry", "account_id", "timebank_account"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_timebank_entry")),
    )
    op.create_index(op.f("ix_timebank_entry_transaction_id"), "timebank_entry", ["transaction_id"])
    op.create_index("ix_timebank_entry_account_posted", "timebank_entry", ["account_id", "posted_at"])


def downgrade() -> None:
    for table in (
        "timebank_entry", "timebank_transaction", "timebank_account", "volunteer_pairing", "volunteer_profile",
        "service_order_transition", "service_order", "service_provider_area", "service_provider",
    ):  # fmt: skip
        op.drop_table(table)

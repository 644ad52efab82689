"""devices: registry, bindings, telemetry store, rollups, quarantine

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24 09:00:00

On PostgreSQL ``telemetry`` and ``telemetry_minute`` are range-partitioned by UTC day, with
two maintenance functions: ``yiyang_ensure_daily_partitions`` (create ahead) and
``yiyang_drop_daily_partitions`` (retention). SQLite gets plain tables.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import yiyang.db

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

DEVICE_KINDS = (
    "wearable",
    "mattress",
    "radar",
    "bp_meter",
    "glucose_meter",
    "terminal",
    "gas_sensor",
    "smoke_sensor",
    "door_sensor",
)

ENSURE_PARTITIONS = r"""
CREATE OR REPLACE FUNCTION yiyang_ensure_daily_partitions(parent text, first_day date, days integer)
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    day date;
    child text;
    made integer := 0;
BEGIN
    FOR i IN 0 .. days - 1 LOOP
        day := first_day + i;
        child := parent || '_p' || to_char(day, 'YYYYMMDD');
        IF to_regclass(child) IS NULL THEN
            BEGIN
                EXECUTE format('CREATE TABLE %I PARTITION OF %I FOR VALUES FROM (%L) TO (%L)',
                               child, parent, day::timestamp, (day + 1)::timestamp);
                made := made + 1;
            EXCEPTION WHEN duplicate_table OR unique_violation THEN
                NULL;  -- another process created it a moment earlier
            END;
        END IF;
    END LOOP;
    RETURN made;
END
$$
"""

DROP_PARTITIONS = r"""
CREATE OR REPLACE FUNCTION yiyang_drop_daily_partitions(parent text, before date)
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    child record;
    dropped integer := 0;
BEGIN
    FOR child IN
        SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
        WHERE i.inhparent = to_regclass(parent) AND c.relname ~ ('^' || parent || '_p\d{8}$')
    LOOP
        IF to_date(right(child.relname, 8), 'YYYYMMDD') < before THEN
            EXECUTE format('DROP TABLE %I', child.relname);
            dropped := dropped + 1;
        END IF;
    END LOOP;
    RETURN dropped;
END
$$
"""


def _readings() -> list[sa.Column]:
    return [
        sa.Column(name, sa.REAL(), nullable=True)
        for name in (
            "systolic",
            "diastolic",
            "heart_rate",
            "respiratory_rate",
            "spo2",
            "body_temperature",
            "body_weight",
            "fasting_glucose",
        )
    ]


def _rollup_columns() -> list[sa.Column]:
    return [
        sa.Column("device_id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=16), nullable=False),
        sa.Column("bucket", yiyang.db.UTCDateTime(), nullable=False),
        sa.Column("n", sa.Integer(), nullable=False),
        sa.Column("mean", sa.REAL(), nullable=False),
        sa.Column("low", sa.REAL(), nullable=False),
        sa.Column("high", sa.REAL(), nullable=False),
    ]


def upgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"

    op.create_table(
        "device",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("uid", sa.String(length=64), nullable=False),
        sa.Column(
            "kind", sa.Enum(*DEVICE_KINDS, name="devicekind", native_enum=False, length=16), nullable=False
        ),
        sa.Column("model", sa.String(length=100), nullable=True),
        sa.Column("secret_hash", sa.String(length=64), nullable=False),
        sa.Column(
            "state",
            sa.Enum("active", "retired", name="devicestate", native_enum=False, length=16),
            nullable=False,
        ),
        sa.Column("registered_at", yiyang.db.UTCDateTime(), nullable=False),
        sa.Column("last_seen_at", yiyang.db.UTCDateTime(), nullable=True),
        sa.Column("battery", sa.SmallInteger(), nullable=True),
        sa.Column("online", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_device")),
        sa.UniqueConstraint("uid", name=op.f("uq_device_uid")),
    )

    op.create_table(
        "device_binding",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("device_id", sa.Integer(), nullable=False),
        sa.Column("resident_id", sa.Integer(), nullable=True),
        sa.Column("household_id", sa.Integer(), nullable=True),
        sa.Column("valid_from", yiyang.db.UTCDateTime(), nullable=False),
        sa.Column("valid_to", yiyang.db.UTCDateTime(), nullable=True),
        sa.Column("created_at", yiyang.db.UTCDateTime(), nullable=False),
        sa.CheckConstraint(
            "(resident_id IS NULL) <> (household_id IS NULL)", name=op.f("ck_device_binding_one_holder")
        ),
        sa.CheckConstraint(
            "valid_to IS NULL OR valid_to > valid_from", name=op.f("ck_device_binding_period")
        ),
        sa.ForeignKeyConstraint(
            ["device_id"], ["device.id"], name=op.f("fk_device_binding_device_id_device")
        ),
        sa.ForeignKeyConstraint(
            ["household_id"], ["household.id"], name=op.f("fk_device_binding_household_id_household")
        ),
        sa.ForeignKeyConstraint(
            ["resident_id"], ["resident.id"], name=op.f("fk_device_binding_resident_id_resident")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_device_binding")),
    )
    with op.batch_alter_table("device_binding", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_device_binding_device_id"), ["device_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_device_binding_household_id"), ["household_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_device_binding_resident_id"), ["resident_id"], unique=False)

    op.create_table(
        "telemetry",
        sa.Column("measured_at", yiyang.db.UTCDateTime(), nullable=False),
        sa.Column("device_id", sa.Integer(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        *_readings(),
        sa.PrimaryKeyConstraint("device_id", "seq", "measured_at", name=op.f("pk_telemetry")),
        postgresql_partition_by="RANGE (measured_at)",
    )
    # BRIN on PostgreSQL: rows arrive in time order, so a few KB index a whole day.
    op.create_index("ix_telemetry_measured_at", "telemetry", ["measured_at"], postgresql_using="brin")

    op.create_table(
        "telemetry_minute",
        *_rollup_columns(),
        sa.PrimaryKeyConstraint("device_id", "code", "bucket", name=op.f("pk_telemetry_minute")),
        postgresql_partition_by="RANGE (bucket)",
    )
    op.create_index("ix_telemetry_minute_bucket", "telemetry_minute", ["bucket"], postgresql_using="brin")

    op.create_table(
        "telemetry_hour",
        *_rollup_columns(),
        sa.PrimaryKeyConstraint("device_id", "code", "bucket", name=op.f("pk_telemetry_hour")),
    )
    op.create_index("ix_telemetry_hour_bucket", "telemetry_hour", ["bucket"])

    op.create_table(
        "telemetry_pending_minute",
        sa.Column("bucket", yiyang.db.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("bucket", name=op.f("pk_telemetry_pending_minute")),
    )

    op.create_table(
        "device_event",
        sa.Column("device_id", sa.Integer(), nullable=False),
        sa.Column("measured_at", yiyang.db.UTCDateTime(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=True),
        sa.Column("received_at", yiyang.db.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("device_id", "measured_at", "seq", name=op.f("pk_device_event")),
    )
    op.create_index("ix_device_event_kind_time", "device_event", ["kind", "measured_at"])

    op.create_table(
        "telemetry_quarantine",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("received_at", yiyang.db.UTCDateTime(), nullable=False),
        sa.Column("source", sa.String(length=8), nullable=False),
        sa.Column("topic", sa.String(length=200), nullable=True),
        sa.Column("device_uid", sa.String(length=64), nullable=True),
        sa.Column("reason", sa.String(length=40), nullable=False),
        sa.Column("detail", sa.String(length=200), nullable=True),
        sa.Column("payload", sa.LargeBinary(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_telemetry_quarantine")),
    )
    with op.batch_alter_table("telemetry_quarantine", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_telemetry_quarantine_device_uid"), ["device_uid"], unique=False)
        batch_op.create_index(batch_op.f("ix_telemetry_quarantine_reason"), ["reason"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_telemetry_quarantine_received_at"), ["received_at"], unique=False
        )

    if postgres:
        op.execute(ENSURE_PARTITIONS)
        op.execute(DROP_PARTITIONS)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS yiyang_drop_daily_partitions(text, date)")
        op.execute("DROP FUNCTION IF EXISTS yiyang_ensure_daily_partitions(text, date, integer)")
    op.drop_table("telemetry_quarantine")
    op.drop_table("device_event")
    op.drop_table("telemetry_pending_minute")
    op.drop_table("telemetry_hour")
    op.drop_table("telemetry_minute")
    op.drop_table("telemetry")
    op.drop_table("device_binding")
    op.drop_table("device")

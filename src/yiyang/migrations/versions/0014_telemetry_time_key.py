"""telemetry keyed by time first: primary key (measured_at, device_id, seq), no BRIN index

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-29

Written by hand; runs on SQLite and PostgreSQL alike. The same three columns, in a new order:
rows arrive in time order, so a key that starts with the time grows at its right edge (packed
pages, writes on the few pages last touched) where one that started with the device wrote all
over the index and split its pages half full; and it serves the rollups' time ranges, so the
BRIN index on ``measured_at`` goes. On PostgreSQL the key is rebuilt on every partition: on a
large store, run it in a quiet hour.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _rekey(columns: list[str], with_brin: bool) -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE telemetry DROP CONSTRAINT pk_telemetry")
        op.execute(f"ALTER TABLE telemetry ADD CONSTRAINT pk_telemetry PRIMARY KEY ({', '.join(columns)})")
        if with_brin:
            op.create_index("ix_telemetry_measured_at", "telemetry", ["measured_at"], postgresql_using="brin")
        else:
            op.drop_index("ix_telemetry_measured_at", table_name="telemetry")
        return
    with op.batch_alter_table("telemetry", recreate="always") as batch_op:
        if with_brin:
            batch_op.create_index("ix_telemetry_measured_at", ["measured_at"])
        else:
            batch_op.drop_index("ix_telemetry_measured_at")
        batch_op.drop_constraint("pk_telemetry", type_="primary")
        batch_op.create_primary_key("pk_telemetry", columns)


def upgrade() -> None:
    _rekey(["measured_at", "device_id", "seq"], with_brin=False)


def downgrade() -> None:
    _rekey(["device_id", "seq", "measured_at"], with_brin=True)

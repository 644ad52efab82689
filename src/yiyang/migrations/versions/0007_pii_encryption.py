"""access: ID numbers and phones encrypted at rest, with blind indexes; existing rows encrypted

Revision ID: 0007
Revises: 0005
Create Date: 2026-11-29

Written by hand; runs on SQLite and PostgreSQL alike.

- ``resident.id_number`` / ``phone`` become ``id_number_enc`` / ``phone_enc`` (AES-256-GCM under
  the current field key, ``access/pii.py``), with ``id_number_bidx`` (unique) and ``phone_bidx``
  (indexed) beside them.
- ``source_record`` gains ``id_number_enc`` / ``phone_enc``; the two values leave the payload
  JSON, and ``content_hash`` is recomputed as a keyed digest.
- ``fact_change`` keeps only masked forms of ID numbers and phones (the source records it names
  hold the sealed values).

Existing rows are encrypted in batches with the keys of the process running the migration, so
``YIYANG_FIELD_KEYS`` and ``YIYANG_BLIND_INDEX_KEY`` must be the ones the app will run with. An
empty database needs no keys. SQLite cannot drop a column that carries a UNIQUE constraint, so
there ``id_number`` is renamed to ``id_number_enc`` and keeps its old (now meaningless) constraint
and declared length; uniqueness is checked on ``id_number_bidx``.
"""

import datetime as dt
from collections.abc import Sequence

import orjson
import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BATCH = 2000
SEALED = sa.String(length=160)
INDEX = sa.String(length=64)


def _keys():  # type: ignore[no-untyped-def]
    from yiyang.access.keys import get_keys

    return get_keys()


def _batches(bind, sql: str, **params):  # type: ignore[no-untyped-def]
    """Rows of ``sql`` (which selects ``id`` first and has ``id > :last``) in id order, a batch at a time."""
    last = 0
    while True:
        rows = bind.execute(
            sa.text(sql + " ORDER BY id LIMIT :limit"), {"last": last, "limit": BATCH, **params}
        ).all()
        if not rows:
            return
        yield rows
        last = rows[-1][0]


def upgrade() -> None:
    from yiyang.access import pii
    from yiyang.residents.identity import mask_attribute

    bind = op.get_bind()
    postgres = bind.dialect.name == "postgresql"

    # -- resident ------------------------------------------------------------------------
    # New sealed columns, filled from the plain ones, which are then dropped. SQLite cannot drop
    # a column under a UNIQUE constraint, so there id_number is renamed and sealed in place.
    op.drop_index("ix_resident_phone", table_name="resident")
    op.add_column("resident", sa.Column("phone_enc", SEALED, nullable=True))
    if postgres:
        op.add_column("resident", sa.Column("id_number_enc", SEALED, nullable=True))
        plain_id = "id_number"
    else:
        op.execute("ALTER TABLE resident RENAME COLUMN id_number TO id_number_enc")
        plain_id = "id_number_enc"
    op.add_column("resident", sa.Column("id_number_bidx", INDEX, nullable=True))
    op.add_column("resident", sa.Column("phone_bidx", INDEX, nullable=True))
    update = sa.text(
        "UPDATE resident SET id_number_enc = :id_enc, id_number_bidx = :id_idx, phone_enc = :phone_enc, "
        "phone_bidx = :phone_idx WHERE id = :id"
    )
    for rows in _batches(
        bind,
        f"SELECT id, {plain_id}, phone FROM resident WHERE id > :last AND ({plain_id} IS NOT NULL OR phone IS NOT NULL)",
    ):
        keys = _keys()
        bind.execute(
            update,
            [
                {
                    "id": resident_id,
                    "id_enc": pii.seal(number, pii.RESIDENT_ID_NUMBER, keys),
                    "id_idx": pii.write_index("id_number", number, keys),
                    "phone_enc": pii.seal(phone, pii.RESIDENT_PHONE, keys),
                    "phone_idx": pii.write_index("phone", phone, keys),
                }
                for resident_id, number, phone in rows
            ],
        )
    op.execute("ALTER TABLE resident DROP COLUMN phone")  # SQLite 3.35+ drops a plain column in place
    if postgres:
        op.execute("ALTER TABLE resident DROP COLUMN id_number")  # its UNIQUE constraint goes with it
    op.create_index("uq_resident_id_number_bidx", "resident", ["id_number_bidx"], unique=True)
    op.create_index("ix_resident_phone_bidx", "resident", ["phone_bidx"])

    # -- source_record -------------------------------------------------------------------
    op.add_column("source_record", sa.Column("id_number_enc", SEALED, nullable=True))
    op.add_column("source_record", sa.Column("phone_enc", SEALED, nullable=True))
    update = sa.text(
        "UPDATE source_record SET payload = :payload, content_hash = :digest, id_number_enc = :id_enc, "
        "phone_enc = :phone_enc WHERE id = :id"
    ).bindparams(sa.bindparam("payload", type_=sa.JSON()))
    for rows in _batches(
        bind, "SELECT id, payload, observed_at, content_hash, feed FROM source_record WHERE id > :last"
    ):
        keys = _keys()
        changes = []
        for record_id, payload, observed_at, digest, feed in rows:
            if isinstance(payload, str):
                payload = orjson.loads(payload)
            if isinstance(observed_at, str):
                observed_at = dt.datetime.fromisoformat(observed_at)
            number, phone = payload.get("id_number"), payload.get("phone")
            changes.append(
                {
                    "id": record_id,
                    "payload": {k: v for k, v in payload.items() if k not in ("id_number", "phone")},
                    # The keyed digest the import runner computes (sources.service.content_hash);
                    # records entered here (assessments) are never re-imported and keep theirs.
                    "digest": digest if feed == "staff" else pii.record_digest(payload, observed_at, keys),
                    "id_enc": pii.seal(number, pii.SOURCE_ID_NUMBER, keys),
                    "phone_enc": pii.seal(phone, pii.SOURCE_PHONE, keys),
                }
            )
        bind.execute(update, changes)

    # -- fact_change: masked forms only ---------------------------------------------------
    update = sa.text("UPDATE fact_change SET old_value = :old, new_value = :new WHERE id = :id")
    for rows in _batches(
        bind,
        "SELECT id, attribute, old_value, new_value FROM fact_change WHERE id > :last "
        "AND attribute IN ('id_number', 'phone')",
    ):
        bind.execute(
            update,
            [
                {"id": i, "old": mask_attribute(attribute, old), "new": mask_attribute(attribute, new)}
                for i, attribute, old, new in rows
            ],
        )


def downgrade() -> None:
    """Back to plain columns (the masked history stays masked)."""
    from yiyang.access import pii

    bind = op.get_bind()
    postgres = bind.dialect.name == "postgresql"
    update = sa.text(
        "UPDATE source_record SET payload = :payload, id_number_enc = NULL, phone_enc = NULL WHERE id = :id"
    )
    update = update.bindparams(sa.bindparam("payload", type_=sa.JSON()))
    for rows in _batches(
        bind, "SELECT id, payload, id_number_enc, phone_enc FROM source_record WHERE id > :last"
    ):
        keys = _keys()
        changes = []
        for record_id, payload, number, phone in rows:
            if isinstance(payload, str):
                payload = orjson.loads(payload)
            payload = {
                **payload,
                "id_number": pii.unseal(number, pii.SOURCE_ID_NUMBER, keys),
                "phone": pii.unseal(phone, pii.SOURCE_PHONE, keys),
            }
            changes.append({"id": record_id, "payload": payload})
        bind.execute(update, changes)
    for column in ("phone_enc", "id_number_enc"):  # in place on both engines (no batch copy on SQLite)
        op.execute(f"ALTER TABLE source_record DROP COLUMN {column}")

    op.drop_index("ix_resident_phone_bidx", table_name="resident")
    op.drop_index("uq_resident_id_number_bidx", table_name="resident")
    op.add_column("resident", sa.Column("phone", sa.String(length=20), nullable=True))
    if postgres:
        op.add_column("resident", sa.Column("id_number", sa.String(length=18), nullable=True))
    plain_id = "id_number" if postgres else "id_number_enc"
    update = sa.text(f"UPDATE resident SET {plain_id} = :number, phone = :phone WHERE id = :id")
    for rows in _batches(
        bind,
        "SELECT id, id_number_enc, phone_enc FROM resident WHERE id > :last "
        "AND (id_number_enc IS NOT NULL OR phone_enc IS NOT NULL)",
    ):
        keys = _keys()
        bind.execute(
            update,
            [
                {
                    "id": resident_id,
                    "number": pii.unseal(number, pii.RESIDENT_ID_NUMBER, keys),
                    "phone": pii.unseal(phone, pii.RESIDENT_PHONE, keys),
                }
                for resident_id, number, phone in rows
            ],
        )
    for column in ("phone_enc", "phone_bidx", "id_number_bidx"):
        op.execute(f"ALTER TABLE resident DROP COLUMN {column}")
    if postgres:
        op.execute("ALTER TABLE resident DROP COLUMN id_number_enc")
        op.create_unique_constraint("uq_resident_id_number", "resident", ["id_number"])
    else:
        op.execute("ALTER TABLE resident RENAME COLUMN id_number_enc TO id_number")
    op.create_index("ix_resident_phone", "resident", ["phone"])

"""Migration 0007 encrypts the ID numbers and phones already stored, on both engines."""

from __future__ import annotations

import datetime as dt

import orjson
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import select, text

from yiyang.access import pii
from yiyang.db import Database
from yiyang.migrate import upgrade
from yiyang.models import metadata
from yiyang.residents.models import Resident, SourceRecord
from yiyang.sources.service import content_hash

ID_NUMBER, PHONE = "110108194803120242", "13911002345"
OBSERVED = dt.datetime(2025, 9, 12)  # naive UTC, as stored
PAYLOAD = {"name": "王秀英", "id_number": ID_NUMBER, "sex": "F", "phone": PHONE, "birth_date": "1948-03-12"}


@pytest.fixture
def fresh(unmigrated_db: Database) -> Database:
    return unmigrated_db


def seed_plain_rows(database: Database) -> None:
    """Rows as the schema before 0007 stored them: ID number and phone in clear."""
    with database.engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO resident (id, id_number, name, name_pinyin, phone, status, needs_review, provenance, "
                "created_at, updated_at) VALUES (1, :id, '王秀英', 'wang xiu ying', :phone, 'active', false, '{}', "
                ":at, :at), (2, NULL, '李建国', 'li jian guo', NULL, 'active', false, '{}', :at, :at)"
            ),
            {"id": ID_NUMBER, "phone": PHONE, "at": OBSERVED},
        )
        connection.execute(
            text(
                "INSERT INTO source_record (id, feed, source_key, resident_id, observed_at, recorded_at, "
                "content_hash, payload, link_method) VALUES (1, 'health', 'H1', 1, :at, :at, :hash, :payload, 'new')"
            ),
            {"at": OBSERVED, "hash": "0" * 32, "payload": orjson.dumps(PAYLOAD).decode()},
        )
        connection.execute(
            text(
                "INSERT INTO fact_change (resident_id, attribute, old_value, new_value, reason, changed_at) "
                "VALUES (1, 'phone', '13800001111', :phone, 'recency', :at), (1, 'name', '王秀', '王秀英', 'gap', :at)"
            ),
            {"phone": PHONE, "at": OBSERVED},
        )


def test_existing_rows_are_encrypted_indexed_and_masked(fresh: Database) -> None:
    # given a database at the schema before 0007, holding ID numbers and phones in clear
    upgrade(fresh.engine, "0005")
    seed_plain_rows(fresh)
    # when it is migrated
    upgrade(fresh.engine, "head")
    # then the resident row holds ciphertext and blind indexes, and the ORM reads the values
    with fresh.engine.connect() as connection:
        id_enc, id_idx, phone_enc, phone_idx = connection.execute(
            text("SELECT id_number_enc, id_number_bidx, phone_enc, phone_bidx FROM resident WHERE id = 1")
        ).one()
        empty = connection.execute(
            text("SELECT id_number_enc, id_number_bidx FROM resident WHERE id = 2")
        ).one()
        payload, record_id_enc, digest = connection.execute(
            text("SELECT payload, id_number_enc, content_hash FROM source_record WHERE id = 1")
        ).one()
        history = connection.execute(
            text("SELECT attribute, old_value, new_value FROM fact_change ORDER BY id")
        ).all()
    assert id_enc.startswith("test1:") and ID_NUMBER not in id_enc and PHONE not in phone_enc
    assert id_idx == pii.write_index("id_number", ID_NUMBER) and phone_idx == pii.write_index("phone", PHONE)
    assert tuple(empty) == (None, None)
    # the source record's payload lost the two values to sealed columns, and its hash is the keyed one
    payload = orjson.loads(payload) if isinstance(payload, str) else payload
    assert "id_number" not in payload and "phone" not in payload and record_id_enc.startswith("test1:")
    assert digest == content_hash(PAYLOAD, OBSERVED.replace(tzinfo=dt.UTC))
    # history keeps masked forms only
    assert [tuple(row) for row in history] == [
        ("phone", "138****1111", "139****2345"),
        ("name", "王秀", "王秀英"),
    ]
    with fresh.unit_of_work() as session:
        resident = session.get(Resident, 1)
        assert (resident.id_number, resident.phone) == (ID_NUMBER, PHONE)
        assert session.get(SourceRecord, 1).full_payload()["id_number"] == ID_NUMBER
        found = session.scalars(
            select(Resident.id).where(Resident.phone_bidx.in_(pii.lookup_indexes("phone", "139-1100-2345")))
        ).all()
        assert found == [1]


def test_the_migrated_tables_match_their_models(fresh: Database) -> None:
    upgrade(fresh.engine, "head")
    with fresh.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        differences = compare_metadata(context, metadata)
    ours = [
        d for d in differences if any(t in repr(d) for t in ("'resident'", "'source_record'", "resident."))
    ]
    if fresh.engine.dialect.name == "sqlite":
        # SQLite cannot drop a UNIQUE column: the renamed id_number_enc keeps its old constraint and
        # declared length (SQLite enforces neither length nor anything useful over ciphertexts).
        ours = [d for d in ours if "uq_resident_id_number'" not in repr(d) and "id_number_enc" not in repr(d)]
    assert ours == []


def test_downgrade_restores_plain_columns(fresh: Database) -> None:
    upgrade(fresh.engine, "0005")
    seed_plain_rows(fresh)
    upgrade(fresh.engine, "head")
    from alembic import command

    from yiyang.migrate import alembic_config

    config = alembic_config()
    with fresh.engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, "0005")
    with fresh.engine.connect() as connection:
        row = connection.execute(text("SELECT id_number, phone FROM resident WHERE id = 1")).one()
        payload = connection.execute(text("SELECT payload FROM source_record WHERE id = 1")).scalar_one()
    payload = orjson.loads(payload) if isinstance(payload, str) else payload
    assert tuple(row) == (ID_NUMBER, PHONE)
    assert payload["id_number"] == ID_NUMBER and payload["phone"] == PHONE

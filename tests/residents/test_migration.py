"""Migration 0012: the tables only the import runner writes carry no foreign keys, and match their
models, on both engines."""

from __future__ import annotations

from sqlalchemy import inspect

from tests.conftest import schema_drift
from yiyang.db import Database

RUNNER_TABLES = ("source_record", "condition", "observation", "fact_change")


def test_runner_tables_match_their_models(db: Database) -> None:
    assert schema_drift(db, RUNNER_TABLES) == []


def test_runner_tables_have_no_foreign_keys_but_keep_their_lookups(db: Database) -> None:
    inspector = inspect(db.engine)
    for table in RUNNER_TABLES:
        assert inspector.get_foreign_keys(table) == [], table
    indexed = {tuple(index["column_names"]) for index in inspector.get_indexes("source_record")}
    assert ("feed", "source_key") in indexed and ("resident_id",) in indexed
    assert {tuple(i["column_names"]) for i in inspector.get_indexes("condition")} == {("resident_id", "code")}
    # The resident table keeps its own keys: it is written from many places.
    assert {fk["referred_table"] for fk in inspector.get_foreign_keys("resident")} == {
        "area",
        "household",
        "resident",
    }


def test_resident_status_is_not_indexed(db: Database) -> None:
    indexed = {tuple(index["column_names"]) for index in inspect(db.engine).get_indexes("resident")}
    assert ("status",) not in indexed and ("id_number_bidx",) in indexed

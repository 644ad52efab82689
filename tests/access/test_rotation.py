"""Key rotation: a new field key becomes current, every value is re-sealed in batches while reads
keep working, and the old key can then be retired; blind indexes re-keyed the same way."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from typer.testing import CliRunner

from tests.access.pii_samples import SAMPLES, WANG_ID, import_samples
from yiyang.access import rotation
from yiyang.access.crypto import generate_key, parse_blind_index_key, parse_field_keys
from yiyang.access.keys import AccessKeys, get_keys, use_keys
from yiyang.app import create_app
from yiyang.cli import app as cli
from yiyang.config import get_settings
from yiyang.db import Database
from yiyang.residents.models import Resident, SourceRecord
from yiyang.sources.models import Feed
from yiyang.sources.service import import_file

from ..signed_in import sign_in_as_clinician

OLD_FIELD = os.environ["YIYANG_FIELD_KEYS"]  # "test1:..." (tests/conftest.py)
OLD_BLIND = os.environ["YIYANG_BLIND_INDEX_KEY"]
NEW_FIELD = f"k2:{generate_key()}"
NEW_BLIND = generate_key()


def keys(field: str, blind: str = OLD_BLIND, previous: str | None = None) -> AccessKeys:
    return AccessKeys(
        parse_field_keys(field),
        parse_blind_index_key(blind),
        (parse_blind_index_key(previous),) if previous else (),
    )


@pytest.fixture(autouse=True)
def restore_keys() -> Iterator[None]:
    before = use_keys(None)
    yield
    use_keys(before)


def read_everything(database: Database) -> tuple[list[str | None], list[str | None]]:
    """Open every sealed value through the ORM (raises if a key is missing)."""
    with database.unit_of_work() as session:
        residents = [r.id_number for r in session.scalars(select(Resident).order_by(Resident.id))]
        records = [r.phone for r in session.scalars(select(SourceRecord).order_by(SourceRecord.id))]
    return residents, records


def signed_in(database: Database) -> TestClient:
    """A client signed in as a family doctor contracted with everyone who also keeps the registry."""
    client = TestClient(create_app(database))
    sign_in_as_clinician(client, database)
    return client


def search(client: TestClient, q: str) -> int:
    response = client.get("/api/residents", params={"q": q})
    assert response.status_code == 200, response.text
    return response.json()["total"]


def test_values_stay_readable_before_during_and_after_rotation_and_the_old_key_retires(db: Database) -> None:
    # given a registry sealed under test1
    import_samples(db)
    client = signed_in(db)
    plain = read_everything(db)
    # when k2 becomes current, with test1 kept behind it
    use_keys(keys(f"{NEW_FIELD},{OLD_FIELD}"))
    # then everything still reads, and the search still finds people
    assert read_everything(db) == plain and search(client, WANG_ID) == 1
    with db.unit_of_work() as session:
        assert sum(rotation.pending(session, get_keys()).values()) > 10

    # when the values are re-sealed two at a time, reading in the middle of it
    seen_during: list[tuple[list[str | None], list[str | None]]] = []

    def midway(_what: str, _done: int) -> None:
        if not seen_during:
            seen_during.append(read_everything(db))

    report = rotation.reseal_all(db, get_keys(), batch_size=2, on_progress=midway)
    # then reads in the middle saw the same values, and everything is under k2 now
    assert seen_during == [plain]
    assert report.resealed["resident.id_number_enc"] > 0 and report.conflicts == 0
    with db.unit_of_work() as session:
        assert set(rotation.pending(session, get_keys()).values()) == {0}
        assert {kid for counts in rotation.key_usage(session).values() for kid in counts} == {"k2"}
        assert rotation.retired_keys(session, get_keys()) == ["test1"]

    # when test1 is removed from the ring, everything still reads and is still found
    use_keys(keys(NEW_FIELD))
    assert read_everything(db) == plain and search(client, WANG_ID) == 1
    # and running again has nothing to do
    again = rotation.reseal_all(db, get_keys(), batch_size=2)
    assert set(again.resealed.values()) == {0}


def test_an_interrupted_rotation_resumes_where_it_stopped(db: Database) -> None:
    import_samples(db)
    use_keys(keys(f"{NEW_FIELD},{OLD_FIELD}"))
    with db.unit_of_work() as session:
        total = sum(rotation.pending(session, get_keys()).values())

    class Stop(Exception):
        pass

    def stop_after_first_batch(_what: str, _done: int) -> None:
        raise Stop

    with pytest.raises(Stop):
        rotation.reseal_all(db, get_keys(), batch_size=3, on_progress=stop_after_first_batch)
    with db.unit_of_work() as session:
        assert sum(rotation.pending(session, get_keys()).values()) == total - 3  # the first batch committed
    finished = rotation.reseal_all(db, get_keys(), batch_size=3)
    assert sum(finished.resealed.values()) == total - 3


def test_blind_indexes_are_re_keyed_while_lookups_keep_working(db: Database) -> None:
    # given a registry indexed under the old blind-index key
    import_samples(db)
    client = signed_in(db)
    # when a new blind-index key is configured with the old one as previous
    use_keys(keys(OLD_FIELD, blind=NEW_BLIND, previous=OLD_BLIND))
    # then lookups still find people before any index is recomputed
    assert search(client, WANG_ID) == 1
    # when the indexes are re-keyed
    report = rotation.reindex_all(db, get_keys(), batch_size=2)
    assert report.reindexed > 0 and report.redigested > 0
    # then with the old key gone, lookups, linkage and unchanged re-imports all work
    use_keys(keys(OLD_FIELD, blind=NEW_BLIND))
    assert search(client, WANG_ID) == 1
    again = import_file(db, Feed.health, SAMPLES / "health.csv")
    assert again.counts["accepted"] == again.counts["updated"] == 0 and again.counts["unchanged"] > 0
    assert rotation.reindex_all(db, get_keys()).reindexed == 0  # idempotent


def test_the_rotate_and_status_commands(
    sqlite_db: Database, tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    import_samples(sqlite_db)
    monkeypatch.setenv("YIYANG_DATABASE_URL", str(sqlite_db.engine.url))
    monkeypatch.setenv("YIYANG_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("YIYANG_FIELD_KEYS", f"{NEW_FIELD},{OLD_FIELD}")
    get_settings.cache_clear()
    use_keys(None)
    try:
        runner = CliRunner()
        rotated = runner.invoke(cli, ["keys", "rotate", "--batch-size", "5"])
        assert rotated.exit_code == 0, rotated.output
        assert "test1" in rotated.output and "may be removed" in rotated.output
        status = runner.invoke(cli, ["keys", "status"])
        assert status.exit_code == 0 and "current field key): k2" in status.output
        assert "test1:" not in status.output.split("\n", 1)[1]
    finally:
        get_settings.cache_clear()

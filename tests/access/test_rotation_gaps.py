"""Key rotation where the stored values are not all as expected: a value under a key no longer
configured, and secrets sealed with the field keys outside the personal columns."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest
from sqlalchemy import select, text
from typer.testing import CliRunner

from tests.access.pii_samples import import_samples
from tests.access.test_rotation import NEW_FIELD, OLD_FIELD, keys
from yiyang.access import pii, rotation
from yiyang.access.crypto import decrypt_field, encrypt_field, generate_key, parse_field_keys
from yiyang.access.keys import get_keys, use_keys
from yiyang.cli import app as cli
from yiyang.config import get_settings
from yiyang.db import Database
from yiyang.devices.broker import SECRET_CONTEXT
from yiyang.devices.models import BrokerAdmissionPending

GONE = parse_field_keys(f"gone:{generate_key()}")  # a key that was removed from the settings


@pytest.fixture(autouse=True)
def restore_keys() -> Iterator[None]:
    before = use_keys(None)
    yield
    use_keys(before)


def seal_one_under_a_removed_key(database: Database) -> int:
    """Give one resident an ID number sealed under a key the ring no longer holds."""
    with database.engine.begin() as connection:
        resident_id = connection.execute(
            text("SELECT min(id) FROM resident WHERE id_number_enc IS NOT NULL")
        ).scalar_one()
        sealed = encrypt_field(GONE, "110105194912310021", pii.RESIDENT_ID_NUMBER)
        connection.execute(
            text("UPDATE resident SET id_number_enc = :v WHERE id = :id"), {"v": sealed, "id": resident_id}
        )
    return resident_id


def test_a_value_under_an_unknown_key_does_not_stop_the_rotation(db: Database) -> None:
    # given a registry under test1 in which one value is sealed under a removed key
    import_samples(db)
    seal_one_under_a_removed_key(db)
    use_keys(keys(f"{NEW_FIELD},{OLD_FIELD}"))
    # when the values are re-sealed under k2
    report = rotation.reseal_all(db, get_keys(), batch_size=3)
    # then every other value moved, and the one that does not open is counted, not fatal
    assert report.unreadable == {"resident.id_number_enc": 1}
    with db.unit_of_work() as session:
        assert sum(rotation.pending(session, get_keys()).values()) == 1
        assert rotation.unknown_keys(session, get_keys()) == {"gone": 1}
    # and re-keying the blind indexes skips it the same way
    assert rotation.reindex_all(db, get_keys(), batch_size=3).unreadable == {"resident.id_number_enc": 1}


def test_the_rotate_command_names_the_missing_key(
    sqlite_db: Database, tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    import_samples(sqlite_db)
    seal_one_under_a_removed_key(sqlite_db)
    monkeypatch.setenv("YIYANG_DATABASE_URL", str(sqlite_db.engine.url))
    monkeypatch.setenv("YIYANG_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("YIYANG_FIELD_KEYS", f"{NEW_FIELD},{OLD_FIELD}")
    get_settings.cache_clear()
    use_keys(None)
    try:
        runner = CliRunner()
        rotated = runner.invoke(cli, ["keys", "rotate", "--batch-size", "5"])
        assert rotated.exit_code == 1, rotated.output
        assert rotated.exception is None or isinstance(rotated.exception, SystemExit), rotated.exception
        assert "gone" in rotated.output and "run again" not in rotated.output
        status = runner.invoke(cli, ["keys", "status"])
        assert status.exit_code == 0 and "gone" in status.output and "not configured" in status.output
    finally:
        get_settings.cache_clear()


def test_a_device_secret_waiting_for_the_broker_is_re_sealed_before_its_key_retires(db: Database) -> None:
    # given a device secret waiting for the broker, sealed under test1
    now = dt.datetime(2026, 11, 24, tzinfo=dt.UTC)
    old = keys(OLD_FIELD)
    with db.unit_of_work() as session:
        session.add(
            BrokerAdmissionPending(
                uid="bp-0001", secret=encrypt_field(old.field_keys, "s3cret", f"{SECRET_CONTEXT}:bp-0001"),
                attempts=1, queued_at=now, last_attempt_at=now,
            )
        )  # fmt: skip
    use_keys(keys(f"{NEW_FIELD},{OLD_FIELD}"))
    # then test1 is not offered for removal while the secret still needs it
    with db.unit_of_work() as session:
        assert rotation.key_usage(session)["broker_admission_pending.secret"] == {"test1": 1}
        assert rotation.retired_keys(session, get_keys()) == []
    # when the rotation runs
    report = rotation.reseal_all(db, get_keys(), batch_size=2)
    # then the secret is under k2 and opens without test1
    assert report.resealed["broker_admission_pending.secret"] == 1
    with db.unit_of_work() as session:
        sealed = session.scalar(select(BrokerAdmissionPending.secret))
        assert rotation.retired_keys(session, get_keys()) == ["test1"]
    assert decrypt_field(keys(NEW_FIELD).field_keys, sealed, f"{SECRET_CONTEXT}:bp-0001") == "s3cret"

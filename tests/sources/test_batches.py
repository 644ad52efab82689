"""A run in many batches: on PostgreSQL each batch's writes go on a second thread while the next
batch is read, and the result must be what SQLite gives writing inline."""

from __future__ import annotations

import threading
from collections import defaultdict
from pathlib import Path

import pytest
from sqlalchemy import func, select, text

from yiyang.config import Settings
from yiyang.db import Database
from yiyang.demo.synthetic import generate_district
from yiyang.geo.service import import_geography, import_organisations
from yiyang.migrate import upgrade
from yiyang.residents.models import Condition, Resident, SourceRecord
from yiyang.sources import service
from yiyang.sources.models import Feed, ImportRun, RunStatus
from yiyang.sources.service import import_file

BATCH = 37  # small, so that a district's files take dozens of batches


@pytest.fixture(scope="module")
def district(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    return generate_district(tmp_path_factory.mktemp("district"), 300, seed=11, civil_format="csv")


def load(database: Database, files, batch: int) -> None:  # type: ignore[no-untyped-def]
    settings = Settings(import_batch_rows=batch)
    with database.unit_of_work() as session:
        import_geography(session, Path(files.geography))
        import_organisations(session, Path(files.organisations))
    for feed, path in (
        (Feed.health, files.health),
        (Feed.insurance, files.insurance),
        (Feed.civil, files.civil),
    ):
        import_file(database, feed, Path(path), settings=settings)


def snapshot(database: Database) -> dict[str, object]:
    """The registry as linkage left it: who each record belongs to, and each profile's values."""
    with database.unit_of_work() as session:
        keys_of: dict[int, list[str]] = defaultdict(list)
        for feed, key, resident_id in session.execute(
            select(SourceRecord.feed, SourceRecord.source_key, SourceRecord.resident_id)
        ):
            keys_of[resident_id].append(f"{feed}:{key}")
        profiles = {}
        for resident in session.execute(select(Resident)).scalars():
            group = tuple(sorted(keys_of[resident.id]))
            profiles[group] = (
                resident.name, resident.sex, resident.birth_date, resident.id_number, resident.phone,
                resident.address, resident.insurance_type, resident.living_arrangement, resident.dibao,
                resident.tekun, resident.disability_cert_grade, resident.capability_level, resident.needs_review,
                resident.household_id is not None,
            )  # fmt: skip
        conditions = session.execute(select(func.count()).select_from(Condition)).scalar_one()
        facts = {
            table: session.execute(text(f"SELECT count(*) FROM {table}")).scalar_one()
            for table in ("observation", "fact_change", "link_review", "household")
        }
    return {"profiles": profiles, "conditions": conditions, **facts}


@pytest.mark.postgres
def test_batches_written_beside_the_next_give_what_inline_writes_give(
    pg_db: Database, tmp_path: Path, district
) -> None:  # type: ignore[no-untyped-def]
    # given the same district imported in small batches on PostgreSQL (writes on a second thread)
    # and on SQLite (writes inline, batch by batch)
    load(pg_db, district, BATCH)
    inline = Database(f"sqlite:///{tmp_path / 'inline.db'}")
    upgrade(inline.engine)
    load(inline, district, BATCH)
    # then every record belongs to the same person, with the same profile, on both
    on_postgres, on_sqlite = snapshot(pg_db), snapshot(inline)
    inline.dispose()
    assert len(on_postgres["profiles"]) > 250  # type: ignore[arg-type]
    assert on_postgres == on_sqlite


@pytest.mark.postgres
def test_a_failed_write_fails_the_run_and_keeps_nothing(
    pg_db: Database, district, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    with pg_db.unit_of_work() as session:
        import_geography(session, Path(district.geography))
    # given a server that refuses the observations of the third batch (on the writer thread)
    bulk_insert = service.bulk_insert
    written = []

    def refusing(session, table, columns, rows):  # type: ignore[no-untyped-def]
        if table == "observation":
            written.append(threading.current_thread().name)
            if len(written) == 3:
                raise OSError("no space left on device")
        return bulk_insert(session, table, columns, rows)

    monkeypatch.setattr(service, "bulk_insert", refusing)
    # when the health file is imported in batches
    with pytest.raises(OSError, match="no space"):
        import_file(pg_db, Feed.health, Path(district.health), settings=Settings(import_batch_rows=BATCH))
    # then the error came from the writer thread and reached the caller; the thread is gone;
    # and the run kept nothing but its failed run row
    assert all(name.startswith("import-writes") for name in written)
    assert not [t for t in threading.enumerate() if t.name.startswith("import-writes")]
    with pg_db.unit_of_work() as session:
        assert session.execute(select(func.count()).select_from(Resident)).scalar_one() == 0
        assert session.execute(select(func.count()).select_from(SourceRecord)).scalar_one() == 0
        runs = session.execute(select(ImportRun.status)).scalars().all()
    assert runs == [RunStatus.failed]


def test_a_key_met_again_in_a_later_batch_of_a_feeds_first_import_is_known(db: Database) -> None:
    # given a feed's first import whose file repeats a record, once as it was and once changed,
    # each time in a later batch than the first
    import datetime as dt

    from tests.residents.test_registry import health_row, make_id, seed_areas
    from yiyang.sources.service import import_source_rows

    seed_areas(db)
    other = dict(name="李建国", sex="M", id_number=make_id("19500101", "013"), birth_date=dt.date(1950, 1, 1))
    rows = [
        health_row(2, "H1"),
        health_row(3, "H2", **other),
        health_row(4, "H1"),  # the same record again: unchanged
        health_row(
            5, "H3", name="张秀英", id_number=make_id("19480202", "024"), birth_date=dt.date(1948, 2, 2)
        ),
        health_row(6, "H2", **{**other, "phone": "13911112222"}),  # changed
    ]
    with db.unit_of_work() as session:
        report = import_source_rows(
            session, Feed.health, rows, label="repeat.csv", settings=Settings(import_batch_rows=2)
        )
    # then the repeated record is counted unchanged, the changed one updated, and none stored twice
    assert report.counts["unchanged"] == 1 and report.counts["updated"] == 1
    assert report.counts["accepted"] == 3
    with db.unit_of_work() as session:
        assert session.execute(select(func.count()).select_from(SourceRecord)).scalar_one() == 3
        phones = session.execute(select(Resident.phone).where(Resident.name == "李建国")).scalars().all()
    assert phones == ["13911112222"]

"""An import reports how long each of its stages took, for the benchmark's split."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text

from yiyang.db import Database
from yiyang.geo.service import import_geography
from yiyang.sources.models import Feed
from yiyang.sources.service import import_file

SAMPLES = Path(__file__).parents[2] / "docs" / "samples"
STAGES = {"hash", "link", "fold", "households", "resident rows"}
WRITE_STAGES = {"resident writes", "record writes", "fact writes"}


@pytest.fixture
def district(db: Database) -> Database:
    with db.unit_of_work() as session:
        import_geography(session, SAMPLES / "geography.csv")
    return db


def test_an_import_reports_the_time_of_each_stage(district: Database) -> None:
    # when a file is imported
    report = import_file(district, Feed.health, SAMPLES / "health.csv")
    # then every stage of the runner is timed, and together they fit in the run's elapsed time
    assert set(report.stage_seconds) >= STAGES and set(report.write_seconds) >= WRITE_STAGES
    stages, writes = report.stage_seconds.values(), report.write_seconds.values()
    assert all(seconds >= 0 for seconds in [*stages, *writes])
    if district.engine.dialect.name == "sqlite":  # writes inline: they add to the rest
        assert sum(stages) + sum(writes) <= report.elapsed_s
    else:  # writes on their own thread, beside the next batch
        assert sum(stages) <= report.elapsed_s and sum(writes) <= report.elapsed_s


@pytest.mark.postgres
def test_a_run_that_grows_the_registry_refreshes_the_planners_statistics(
    pg_db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given a registry the planner has never counted, and a low threshold for this small file
    from yiyang.sources import service

    monkeypatch.setattr(service, "ANALYZE_AFTER_ROWS", 5)
    with pg_db.unit_of_work() as session:
        import_geography(session, SAMPLES / "geography.csv")
    # when a run adds more rows than the threshold
    report = import_file(pg_db, Feed.health, SAMPLES / "health.csv")
    # then the planner knows how many residents there are, as of the run's own rows
    with pg_db.engine.connect() as connection:
        counted = connection.execute(
            text("SELECT reltuples FROM pg_class WHERE oid = 'resident'::regclass")
        ).scalar_one()
    assert counted == report.counts["new_resident"]


def test_a_batchs_lookup_lists_are_not_bounded_by_sqlites_parameter_limit(district: Database) -> None:
    # given a batch asking after more values than SQLite allows bound parameters (32,766)
    from yiyang.sources.service import ImportRunner, start_run

    import_file(district, Feed.health, SAMPLES / "health.csv")
    with district.unit_of_work() as session:
        runner = ImportRunner(session, Feed.health, start_run(session, Feed.health, "lookup").id)
        stmt = runner._where_in("SELECT count(*) FROM resident WHERE {ids}", ids="id")
        # when they go as one list, then the lookup answers, and finds exactly the ones that exist
        found = session.execute(stmt, {"ids": list(range(1, 40_001))}).scalar_one()
        dates = runner._where_in("SELECT count(*) FROM resident WHERE {dates}", dates="birth_date")
        born = session.execute(text("SELECT birth_date FROM resident WHERE birth_date IS NOT NULL")).scalars()
        matched = session.execute(dates, {"dates": [*born]}).scalar_one()
        total = session.execute(
            text("SELECT count(*) FROM resident WHERE birth_date IS NOT NULL")
        ).scalar_one()
    assert found == session_count(district) and matched == total > 0


def session_count(database: Database) -> int:
    with database.engine.connect() as connection:
        return connection.execute(text("SELECT count(*) FROM resident")).scalar_one()


@pytest.mark.postgres
def test_a_run_plans_its_lookups_afresh_and_leaves_the_connection_as_it_was(pg_db: Database) -> None:
    from yiyang.sources.service import custom_plans

    with pg_db.unit_of_work() as session:
        connection = session.connection().connection.driver_connection
        before = connection.prepare_threshold
        with custom_plans(session):
            # the same lookup run many times is never prepared on the server
            for _ in range(8):
                session.execute(text("SELECT count(*) FROM resident WHERE id = ANY(:ids)"), {"ids": [1, 2]})
            prepared = session.execute(
                text(
                    "SELECT count(*) FROM pg_prepared_statements WHERE statement LIKE '%FROM resident WHERE id = ANY%'"
                )
            ).scalar_one()
        assert prepared == 0
        assert connection.prepare_threshold == before is not None


@pytest.mark.postgres
def test_a_lookup_list_sent_as_one_array_literal_finds_exactly_its_values(pg_db: Database) -> None:
    # given values that the array syntax treats specially, and numbers and dates
    import datetime as dt

    from yiyang.sources.service import ImportRunner, start_run

    odd = ["a,b", 'x"y', "back\\slash", "{brace}", "王秀兰", "", "NULL", " spaced ", "tab\there", "new\nline"]
    with pg_db.unit_of_work() as session:
        runner = ImportRunner(session, Feed.health, start_run(session, Feed.health, "literal").id)
        stmt = runner._where_in("SELECT k FROM unnest(CAST(:all AS text[])) AS v(k) WHERE {keys}", keys="k")
        # when each list is looked up (the plain ones go as one literal, the rest value by value)
        plain = session.execute(stmt, {"all": odd, "keys": odd[4:8]}).scalars().all()
        found = session.execute(stmt, {"all": odd, "keys": odd}).scalars().all()
        ids = runner._where_in(
            "SELECT n FROM generate_series(1, 50) AS s(id), LATERAL (SELECT id AS n) x WHERE {ids}", ids="id"
        )
        numbers = session.execute(ids, {"ids": [3, 7, 49, 1000]}).scalars().all()
        days = runner._where_in(
            "SELECT birth_date FROM (VALUES (DATE '1945-03-12'), (DATE '1950-01-01')) AS v(birth_date) WHERE {d}",
            d="birth_date",
        )
        born = session.execute(days, {"d": [dt.date(1945, 3, 12), dt.date(1999, 9, 9)]}).scalars().all()
    # then each finds exactly its values
    assert sorted(plain) == sorted(odd[4:8])
    assert sorted(found) == sorted(odd)
    assert numbers == [3, 7, 49]
    assert born == [dt.date(1945, 3, 12)]

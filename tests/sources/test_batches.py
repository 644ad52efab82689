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
from yiyang.sources import linkage, service
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


@pytest.fixture(scope="module")
def larger_district(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """Large enough that rows without an ID number register people who later rows, with one, find."""
    return generate_district(tmp_path_factory.mktemp("larger"), 1000, seed=11, civil_format="csv")


def test_residents_without_an_id_held_for_the_run_link_as_the_batch_queries_do(
    tmp_path: Path, larger_district, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    # given the same district imported in small batches twice: once with the residents who have
    # no ID number held in memory for each run, once asking the database for them batch by batch
    asked = []
    load_candidates = service.ImportRunner._load_candidates

    def counting(self, rows, *, without_id):  # type: ignore[no-untyped-def]
        asked.append(without_id)
        return load_candidates(self, rows, without_id=without_id)

    monkeypatch.setattr(service.ImportRunner, "_load_candidates", counting)
    databases = {}
    for label, held in (("held", service.NO_ID_IN_MEMORY), ("queried", -1)):
        monkeypatch.setattr(service, "NO_ID_IN_MEMORY", held)
        asked.clear()
        databases[label] = Database(f"sqlite:///{tmp_path / f'{label}.db'}")
        upgrade(databases[label].engine)
        load(databases[label], larger_district, BATCH)
        if held > 0:  # then the held runs never asked for residents without an ID number
            assert True not in asked
        else:
            assert asked.count(True) > 5
    # and rows with an ID number did link to residents registered without one
    with databases["held"].unit_of_work() as session:
        linked = session.execute(
            select(func.count())
            .select_from(SourceRecord)
            .where(SourceRecord.link_method == "probabilistic", SourceRecord.id_number.is_not(None))
        ).scalar_one()
    assert linked > 0
    # and both ways, every record belongs to the same person, with the same profile
    snapshots = {label: snapshot(database) for label, database in databases.items()}
    for database in databases.values():
        database.dispose()
    assert snapshots["held"] == snapshots["queried"]


def test_a_resident_who_gains_an_id_number_leaves_those_held_without_one(db: Database) -> None:
    # given a resident registered without an ID number
    import datetime as dt

    from tests.residents.test_registry import health_row, make_id, seed_areas
    from yiyang.sources.service import import_source_rows

    seed_areas(db)
    with db.unit_of_work() as session:
        import_source_rows(session, Feed.health, [health_row(2, "H1", id_number=None)], label="h.csv")
    # when a civil-affairs run links a row with her ID number to her in its first batch, and its
    # second batch brings a namesake born the same day under another ID number
    first, other = make_id("19450312", "002"), make_id("19450312", "024")
    rows = [
        health_row(2, "C1", id_number=first),
        health_row(3, "C2", id_number=other, phone=None, address="复兴路8号"),
    ]
    with db.unit_of_work() as session:
        report = import_source_rows(
            session, Feed.civil, rows, label="c.csv", settings=Settings(import_batch_rows=1)
        )
    # then the first links by match and the second, finding no one left without an ID number,
    # is a new resident
    assert report.counts["linked_probabilistic"] == 1 and report.counts["new_resident"] == 1
    with db.unit_of_work() as session:
        numbers = sorted(session.execute(select(Resident.id_number)).scalars())
        born = set(session.execute(select(Resident.birth_date)).scalars())
    assert numbers == sorted([first, other]) and born == {dt.date(1945, 3, 12)}


def test_the_residents_held_without_an_id_follow_what_a_batch_changes(db: Database) -> None:
    import datetime as dt

    from tests.residents.test_registry import at, health_row, make_id, seed_areas
    from yiyang.sources.service import ImportRunner, import_source_rows, start_run

    # given a resident registered without an ID number
    seed_areas(db)
    with db.unit_of_work() as session:
        import_source_rows(session, Feed.health, [health_row(2, "H1", id_number=None)], label="h.csv")
    with db.unit_of_work() as session:
        resident_id = session.execute(select(Resident.id)).scalar_one()
        runner = ImportRunner(session, Feed.insurance, start_run(session, Feed.insurance, "y.csv").id)
        try:
            # when a batch brings her newer phone on a row without an ID number (beside a stranger's
            # row with one, so the run holds the residents without one)
            newer = dict(feed=Feed.insurance, observed_at=at("2026-01-01"))
            runner.apply(
                [
                    health_row(2, "Y1", id_number=None, phone="13900139000", **newer),
                    health_row(3, "Y2", name="赵国强", sex="M", id_number=make_id("19520707", "031"),
                               birth_date=dt.date(1952, 7, 7), phone=None, **newer),
                ]
            )  # fmt: skip
            held = runner._without_id
            assert isinstance(held, linkage.LinkIndex)
            # then the held keys carry the phone she has now
            assert held.keys_of(resident_id).phone == "13900139000"  # type: ignore[union-attr]
            # and once a row with her ID number links to her, she is no longer held
            runner.apply(
                [health_row(4, "Y3", id_number=make_id("19450312", "002"), phone="13900139000", **newer)]
            )
            assert resident_id not in held
        finally:
            runner.close()


def person_row(n: int, name: str, born: str, sequence: str, **overrides):  # type: ignore[no-untyped-def]
    """The health row of the n-th person, with the ID number, sex and birth date that agree."""
    import datetime as dt

    from tests.residents.test_registry import health_row, make_id

    return health_row(
        n + 2, f"H{n}", name=name, id_number=make_id(born, sequence), sex="M" if int(sequence[-1]) % 2 else "F",
        birth_date=dt.datetime.strptime(born, "%Y%m%d").date(), **overrides,
    )  # fmt: skip


def test_values_sealed_ahead_of_a_batch_open_to_each_residents_own_and_are_never_shared(db: Database) -> None:

    from tests.residents.test_registry import health_row, make_id, seed_areas
    from yiyang.access import pii
    from yiyang.sources.service import ImportRunner, start_run

    # given a run whose first batch makes only new residents, so the next one seals ahead
    seed_areas(db)
    people = [  # (name, birth, sequence, phone): the last two share a household phone
        ("王秀兰", "19450312", "002", "13800138000"),
        ("李建国", "19400101", "011", "13900139000"),
        ("张桂芝", "19480505", "022", "13700137000"),
        ("张德明", "19470707", "031", "13700137000"),
    ]
    rows = [
        person_row(n, name, born, sequence, phone=phone, address=f"万寿路{n}号")
        for n, (name, born, sequence, phone) in enumerate(people)
    ]
    with db.unit_of_work() as session:
        runner = ImportRunner(session, Feed.health, start_run(session, Feed.health, "h.csv").id)
        try:
            runner.apply(rows[:2])
            assert runner.new_share == 1.0  # so the second batch seals its values ahead
            runner.apply(rows[2:])
            # (a row met again in the next batch is sealed ahead too, and left unused: her values
            # are as stored)
            again = health_row(
                9, "H9", name="王秀兰", id_number=make_id("19450312", "002"), address="万寿路0号"
            )
            runner.apply([again])
            assert ("id_number", again.id_number) in runner.sealed_ahead
        finally:
            runner.close()
    # then every resident's sealed ID number and phone open to its own, with the blind index of it
    with db.unit_of_work() as session:
        stored = session.execute(
            text("SELECT name, id_number_enc, phone_enc, phone_bidx FROM resident ORDER BY id")
        ).all()
    keys = pii.get_keys()
    assert [row[0] for row in stored] == [p[0] for p in people]
    for (_, born, sequence, phone), (_, id_enc, phone_enc, phone_index) in zip(people, stored, strict=True):
        assert pii.unseal(id_enc, pii.RESIDENT_ID_NUMBER, keys) == make_id(born, sequence)
        assert pii.unseal(phone_enc, pii.RESIDENT_PHONE, keys) == phone
        assert phone_index == pii.write_index("phone", phone, keys)
    # and the two sharing a phone do not share its ciphertext
    assert stored[2][2] != stored[3][2] and stored[2][3] == stored[3][3]


def test_addresses_keyed_ahead_of_a_batch_place_people_in_the_households_they_share(db: Database) -> None:

    from tests.residents.test_registry import seed_areas
    from yiyang.sources.service import ImportRunner, start_run

    # given a run whose first batch makes only new residents, so the next one keys its addresses
    # before the wait
    seed_areas(db)
    people = [  # (name, birth, sequence, address as the row writes it)
        ("王秀兰", "19450312", "002", "万寿路1号"),
        ("李建国", "19400101", "011", "复兴路8号"),
        ("张桂芝", "19480505", "022", "万寿路1号"),  # the first's address
        ("张德明", "19470707", "031", "复兴路八号"),  # the second's, written another way
        ("赵国强", "19520909", "041", "翠微路2号"),
    ]
    rows = [
        person_row(n, name, born, sequence, address=address, phone=None)
        for n, (name, born, sequence, address) in enumerate(people)
    ]
    with db.unit_of_work() as session:
        runner = ImportRunner(session, Feed.health, start_run(session, Feed.health, "h.csv").id)
        try:
            runner.apply(rows[:2])
            runner.apply(rows[2:])
            assert set(runner.address_keys) == {"万寿路1号", "复兴路八号", "翠微路2号"}  # keyed ahead
        finally:
            runner.close()
    # then each of the next batch's people joins the household already at her address, or a new one
    with db.unit_of_work() as session:
        household_of = dict(session.execute(text("SELECT name, household_id FROM resident")).all())
        households = session.execute(text("SELECT count(*) FROM household")).scalar_one()
    assert household_of["张桂芝"] == household_of["王秀兰"]
    assert household_of["张德明"] == household_of["李建国"]
    assert len({household_of["赵国强"], household_of["王秀兰"], household_of["李建国"]}) == 3
    assert households == 3


def test_a_batch_finds_the_people_the_batch_before_registered(db: Database) -> None:
    import datetime as dt

    from tests.residents.test_registry import at, health_row, make_id, seed_areas
    from yiyang.geo.models import Household
    from yiyang.residents.models import FactChange
    from yiyang.sources.service import ImportRunner, start_run

    seed_areas(db)
    # given a batch registering two people, one of them without an ID number
    li = dict(name="李建国", sex="M", id_number=None, birth_date=dt.date(1950, 1, 1), phone="13900139000",
              address="复兴路8号")  # fmt: skip
    first = [health_row(2, "H1"), health_row(3, "H2", **li)]
    # and a next batch with a row on each of them (one found by her ID number, bringing a newer
    # phone; one found by match), a stranger at her address, and her first record again
    second = [
        health_row(4, "H3", phone="13800138001", observed_at=at("2025-04-01")),
        health_row(5, "H4", **li),
        health_row(6, "H5", name="张桂芝", id_number=make_id("19480505", "022"), birth_date=dt.date(1948, 5, 5),
                   phone=None),
        health_row(7, "H1"),
    ]  # fmt: skip
    with db.unit_of_work() as session:
        runner = ImportRunner(session, Feed.health, start_run(session, Feed.health, "h.csv").id)
        try:
            runner.apply(first)
            runner.apply(second)  # on PostgreSQL while the first batch's writes may still run
        finally:
            runner.close()
        counts = dict(runner.report_counts)
    # then the next batch found both people, by ID number and by match, and nobody twice
    assert counts == {
        "new_resident": 3, "linked_id_number": 1, "linked_probabilistic": 1, "unchanged": 1, "accepted": 5,
    }  # fmt: skip
    with db.unit_of_work() as session:
        residents = {r.name: r for r in session.execute(select(Resident)).scalars()}
        assert sorted(residents) == ["张桂芝", "李建国", "王秀兰"]
        assert residents["王秀兰"].phone == "13800138001"
        # the stranger at her address shares her household, made once
        assert residents["王秀兰"].household_id == residents["张桂芝"].household_id is not None
        assert session.execute(select(func.count()).select_from(Household)).scalar_one() == 2
        # her phone's change is recorded against the first batch's record
        changes = session.execute(select(FactChange.attribute, FactChange.old_source_record_id)).all()
        first_record = session.execute(
            select(SourceRecord.id).where(SourceRecord.source_key == "H1")
        ).scalar_one()
        assert [tuple(change) for change in changes] == [("phone", first_record)]
        assert session.execute(select(func.count()).select_from(SourceRecord)).scalar_one() == 5

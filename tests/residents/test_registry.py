"""The registry's import core, merge and unmerge, on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import func, select

from yiyang.db import Database
from yiyang.geo.models import Area, AreaLevel
from yiyang.residents import service
from yiyang.residents.identity import check_character
from yiyang.residents.models import (
    Condition,
    FactChange,
    LinkReview,
    Observation,
    Resident,
    ResidentStatus,
    SourceRecord,
)
from yiyang.sources.models import Feed, ImportRun
from yiyang.sources.records import ConditionFact, ObservationFact, SourceRow
from yiyang.sources.service import import_source_rows

COMMUNITY = "110108001001"
OTHER_COMMUNITY = "110108001002"


def make_id(birth: str, sequence: str) -> str:
    first17 = "110108" + birth + sequence
    return first17 + check_character(first17)


def at(day: str) -> dt.datetime:
    return dt.datetime.fromisoformat(day).replace(tzinfo=dt.UTC)


def seed_areas(database: Database) -> None:
    with database.unit_of_work() as session:
        district = Area(level=AreaLevel.district, code="110108", name="海淀区", path="110108")
        session.add(district)
        session.flush()
        street = Area(
            level=AreaLevel.street,
            code="110108001",
            name="万寿路街道",
            parent_id=district.id,
            path="110108/110108001",
        )
        session.add(street)
        session.flush()
        for code, name in ((COMMUNITY, "甲社区"), (OTHER_COMMUNITY, "乙社区")):
            session.add(
                Area(
                    level=AreaLevel.community,
                    code=code,
                    name=name,
                    parent_id=street.id,
                    path=f"{street.path}/{code}",
                )
            )


def health_row(line: int, key: str, **overrides) -> SourceRow:
    values = dict(
        feed=Feed.health, line=line, source_key=key, observed_at=at("2025-03-01"), name="王秀兰",
        id_number=make_id("19450312", "002"), sex="F", birth_date=dt.date(1945, 3, 12), phone="13800138000",
        address="万寿路12号3栋401室", community_code=COMMUNITY, attributes={"living_arrangement": "with_family"},
        conditions=[ConditionFact("I10", "高血压")],
        observations=[ObservationFact("85354-9", 152, "mm[Hg]", at("2025-02-20"), value2=88)],
    )  # fmt: skip
    values.update(overrides)
    return SourceRow(**values)


def civil_row(line: int, key: str, **overrides) -> SourceRow:
    values = dict(
        feed=Feed.civil, line=line, source_key=key, observed_at=at("2024-06-01"), name="王秀兰",
        id_number=make_id("19450312", "002"), sex="F", birth_date=dt.date(1945, 3, 12), phone=None,
        address="万寿路12号3栋401室", community_code=COMMUNITY,
        attributes={"living_arrangement": "alone", "capability_level": "mild", "dibao": True},
    )  # fmt: skip
    values.update(overrides)
    return SourceRow(**values)


def run(database: Database, feed: Feed, rows: list[SourceRow], label: str = "test.csv"):
    with database.unit_of_work() as session:
        return import_source_rows(session, feed, rows, label=label)


def count(database: Database, model) -> int:  # type: ignore[no-untyped-def]
    with database.unit_of_work() as session:
        return session.execute(select(func.count()).select_from(model)).scalar_one()


def test_import_creates_profile_with_provenance(db: Database) -> None:
    # given a district tree and one health-file row
    seed_areas(db)
    # when it is imported
    report = run(db, Feed.health, [health_row(2, "H001")])
    # then one resident exists whose every fact names the health record it came from
    assert report.counts["new_resident"] == 1
    with db.unit_of_work() as session:
        resident = session.execute(select(Resident)).scalar_one()
        facts = {f.attribute: f for f in service.profile_facts(session, resident)}
        assert facts["name"].value == "王秀兰"
        assert facts["name"].feed == "health" and facts["name"].source_key == "H001"
        assert facts["living_arrangement"].value == "with_family"
        assert resident.household_id is not None
        assert [c.code for c in service.conditions_of(session, resident.id)] == ["I10"]
        latest = service.latest_observations(session, resident.id)
        assert latest["85354-9"].value == 152 and latest["85354-9"].value2 == 88


def test_reimport_of_the_same_rows_changes_nothing(db: Database) -> None:
    seed_areas(db)
    rows = [health_row(2, "H001"), health_row(3, "H002", id_number=make_id("19400101", "011"), name="李建国", sex="M",
                                               birth_date=dt.date(1940, 1, 1), phone="13900139000")]  # fmt: skip
    run(db, Feed.health, rows)
    before = {m: count(db, m) for m in (Resident, SourceRecord, Condition, Observation, FactChange)}
    # when the same file is imported again
    report = run(db, Feed.health, rows)
    # then every row is unchanged and no table grew
    assert report.counts["unchanged"] == 2 and report.counts["accepted"] == 0
    assert {m: count(db, m) for m in before} == before


def test_civil_affairs_wins_living_arrangement_and_history_is_kept(db: Database) -> None:
    seed_areas(db)
    run(db, Feed.health, [health_row(2, "H001")])
    # when civil affairs reports the same person (older record) living alone
    report = run(db, Feed.civil, [civil_row(2, "C001")])
    # then the civil value wins by authority though older, the health name stays, the change is logged
    assert report.counts["linked_id_number"] == 1
    with db.unit_of_work() as session:
        resident = session.execute(select(Resident)).scalar_one()
        assert resident.living_arrangement == "alone"
        assert resident.capability_level == "mild" and resident.dibao is True
        facts = {f.attribute: f for f in service.profile_facts(session, resident)}
        assert facts["living_arrangement"].feed == "civil"
        assert facts["name"].feed == "health"
        changes = service.fact_history(session, resident.id)
        assert [(c.attribute, c.old_value, c.new_value, c.reason) for c in changes] == [
            ("living_arrangement", "with_family", "alone", "authority")
        ]


def test_newer_phone_wins_by_recency(db: Database) -> None:
    seed_areas(db)
    run(db, Feed.health, [health_row(2, "H001")])
    newer = civil_row(2, "C001", phone="13700137000", observed_at=at("2025-09-01"))
    run(db, Feed.civil, [newer])
    with db.unit_of_work() as session:
        assert session.execute(select(Resident.phone)).scalar_one() == "13700137000"


def test_changed_record_is_updated_and_profile_rebuilt(db: Database) -> None:
    seed_areas(db)
    run(db, Feed.health, [health_row(2, "H001")])
    # when the agency re-exports the record with a corrected phone
    report = run(db, Feed.health, [health_row(2, "H001", phone="13600136000", observed_at=at("2025-04-01"))])
    assert report.counts["updated"] == 1
    with db.unit_of_work() as session:
        resident = session.execute(select(Resident)).scalar_one()
        assert resident.phone == "13600136000"
        assert count(db, SourceRecord) == 1


def test_a_failed_run_leaves_nothing_behind(db: Database) -> None:
    seed_areas(db)

    def rows_then_crash():
        yield health_row(2, "H001")
        for n in range(3, 8000):  # more than one batch is written before the crash
            yield health_row(n, f"H{n:05d}", id_number=make_id("19400101", f"{n % 1000:03d}") if n < 1003 else None,
                             name=f"测试{n}", birth_date=dt.date(1940, 1, 1) + dt.timedelta(days=n), phone=None)  # fmt: skip
        raise RuntimeError("disk full")

    # when an import dies part way through
    with pytest.raises(RuntimeError), db.unit_of_work() as session:
        import_source_rows(session, Feed.health, rows_then_crash(), label="big.csv")
    # then no resident, record or run row of it was kept
    assert count(db, Resident) == 0
    assert count(db, SourceRecord) == 0
    with db.unit_of_work() as session:
        assert session.execute(select(ImportRun).where(ImportRun.filename == "big.csv")).first() is None


def test_row_without_id_links_by_match_and_gains_nothing_wrong(db: Database) -> None:
    seed_areas(db)
    run(db, Feed.health, [health_row(2, "H001")])
    # when insurance reports a claim with no ID number but the same name, birth date, sex and phone
    claim = SourceRow(
        feed=Feed.insurance, line=2, source_key="Y001", observed_at=at("2025-05-01"), name="王秀兰", sex="F",
        birth_date=dt.date(1945, 3, 12), phone="13800138000", attributes={"insurance_type": "employee"},
        conditions=[ConditionFact("E11.9", "2型糖尿病", long_prescription=True)],
    )  # fmt: skip
    report = run(db, Feed.insurance, [claim])
    # then it links to the same resident
    assert report.counts["linked_probabilistic"] == 1
    assert count(db, Resident) == 1
    with db.unit_of_work() as session:
        resident = session.execute(select(Resident)).scalar_one()
        assert resident.insurance_type == "employee"
        assert {c.code for c in service.conditions_of(session, resident.id)} == {"I10", "E11.9"}


def test_merge_then_unmerge_restores_both_profiles(db: Database) -> None:
    seed_areas(db)
    run(db, Feed.health, [health_row(2, "H001")])
    # a second resident, from a roster row with no ID whose birth date was mistyped by a year:
    # too different to link, but staff know it is the same person
    roster = civil_row(2, "C009", id_number=None, phone="13500135000", community_code=OTHER_COMMUNITY,
                       address="复兴路1号", birth_date=dt.date(1946, 5, 1))  # fmt: skip
    run(db, Feed.civil, [roster])
    with db.unit_of_work() as session:
        first, second = session.execute(select(Resident).order_by(Resident.id)).scalars().all()
        first_id, second_id = first.id, second.id
        original_first = {f.attribute: f.value for f in service.profile_facts(session, first)}
        original_second = {f.attribute: f.value for f in service.profile_facts(session, second)}
    # when staff merge the second into the first
    with db.unit_of_work() as session:
        merge = service.merge_residents(session, first_id, second_id, by="tester", reason="same person")
        merge_id = merge.id
    with db.unit_of_work() as session:
        survivor = service.get_active_resident(session, first_id)
        assert survivor.living_arrangement == "alone"  # civil affairs' value now applies
        assert len(service.source_records_of(session, first_id)) == 2
        assert session.get(Resident, second_id).status == ResidentStatus.merged
        with pytest.raises(Exception, match="merged"):
            service.get_active_resident(session, second_id)
    # and then undo it
    with db.unit_of_work() as session:
        service.unmerge(session, merge_id, by="tester")
    with db.unit_of_work() as session:
        first = service.get_active_resident(session, first_id)
        second = service.get_active_resident(session, second_id)
        assert {f.attribute: f.value for f in service.profile_facts(session, first)} == original_first
        assert {f.attribute: f.value for f in service.profile_facts(session, second)} == original_second
        reasons = {c.reason for c in service.fact_history(session, first_id)}
        assert {"merge", "unmerge"} <= reasons


def test_uncertain_match_goes_to_review_and_decision_merges(db: Database) -> None:
    seed_areas(db)
    run(db, Feed.health, [health_row(2, "H001")])
    # a roster row: same name, day and month of birth swapped, no phone, no ID, another address
    uncertain = civil_row(2, "C002", id_number=None, phone=None, community_code=OTHER_COMMUNITY, address="复兴路1号",
                          birth_date=dt.date(1945, 12, 3))  # fmt: skip
    report = run(db, Feed.civil, [uncertain])
    # then it is neither linked nor silently new: a provisional resident waits in the review queue
    assert report.counts["linked_review"] == 1 and report.counts["linked_probabilistic"] == 0
    with db.unit_of_work() as session:
        total, reviews = service.open_reviews(session)
        assert total == 1
        review_id, provisional = reviews[0].id, reviews[0].resident_id
        assert session.get(Resident, provisional).needs_review is True
    with db.unit_of_work() as session:
        service.decide_review(session, review_id, same_person=True, by="tester")
    with db.unit_of_work() as session:
        assert session.get(Resident, provisional).status == ResidentStatus.merged
        assert session.get(LinkReview, review_id).status == "same"


@pytest.mark.parametrize("query", ["\x00", "王\x00", "wang\x00", "1\x00"])
def test_a_search_text_with_a_control_character_finds_no_one(db: Database, query: str) -> None:
    # given a resident (the staff page passes its q straight to the service)
    with db.unit_of_work() as session:
        session.add(Resident(name="王秀英", name_pinyin="wang xiu ying"))
    # when the text holds a NUL: PostgreSQL cannot compare it (a 500), SQLite's LIKE stopped at it
    with db.unit_of_work() as session:
        total, rows = service.search_residents(session, query)
    # then no one is found, on either engine
    assert (total, list(rows)) == (0, [])

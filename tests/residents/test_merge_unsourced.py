"""Merge and unmerge of residents whose values have no source record behind them.

A resident written without the import runner (a fixture or script today; in src only the runner
creates residents, FHIR creates included) holds values no source record states. A rebuild recomputes what the evidence gives and
has no evidence about those values, so it keeps them; a merge carries the merged resident's
such values into the survivor's gaps, and an unmerge gives them back.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from sqlalchemy import select

from tests.residents.test_registry import (
    COMMUNITY,
    OTHER_COMMUNITY,
    civil_row,
    health_row,
    make_id,
    run,
    seed_areas,
)
from yiyang.db import Database
from yiyang.errors import Conflict
from yiyang.geo.models import Area, AreaLevel
from yiyang.residents import service
from yiyang.residents.models import (
    FactChange,
    LinkMethod,
    Observation,
    Resident,
    ResidentMerge,
    ResidentStatus,
    SourceRecord,
)
from yiyang.residents.names import name_pinyin
from yiyang.sources.models import Feed

GRID = "110108001001001"
WANG_ID = make_id("19450312", "002")
ZHAO_ID = make_id("19480706", "015")


def seed(database: Database) -> None:
    seed_areas(database)
    with database.unit_of_work() as session:
        community = session.scalar(select(Area).where(Area.code == COMMUNITY))
        session.add(
            Area(
                level=AreaLevel.grid,
                code=GRID,
                name="一网格",
                parent_id=community.id,
                path=f"{community.path}/{GRID}",
            )
        )


def register(
    database: Database, name: str, *, community: str | None = COMMUNITY, grid: bool = False, **values: Any
) -> int:
    """A resident registered directly: no source record behind any of its values."""
    with database.unit_of_work() as session:
        codes = dict(session.execute(select(Area.code, Area.id)).all())
        resident = Resident(
            name=name, name_pinyin=name_pinyin(name), community_id=codes.get(community),
            grid_id=codes[GRID] if grid else None, **values,
        )  # fmt: skip
        session.add(resident)
        session.flush()
        return resident.id


def imported(database: Database, feed: Feed, row) -> int:  # type: ignore[no-untyped-def]
    run(database, feed, [row])
    with database.unit_of_work() as session:
        return session.scalars(select(Resident.id).order_by(Resident.id.desc())).first()


def profile(database: Database, resident_id: int) -> dict[str, tuple[Any, int | None, str | None]]:
    """Each profile value with the record and feed it came from."""
    with database.unit_of_work() as session:
        resident = session.get(Resident, resident_id)
        return {
            f.attribute: (f.value, f.source_record_id, f.feed)
            for f in service.profile_facts(session, resident)
        }


def conditions(database: Database, resident_id: int) -> list[str]:
    with database.unit_of_work() as session:
        return [c.code for c in service.conditions_of(session, resident_id)]


def merge(database: Database, survivor_id: int, merged_id: int) -> int:
    with database.unit_of_work() as session:
        return service.merge_residents(session, survivor_id, merged_id, by="tester", reason="same person").id


def unmerge(database: Database, merge_id: int) -> None:
    with database.unit_of_work() as session:
        service.unmerge(session, merge_id, by="tester")


def history(database: Database, resident_id: int, reason: str) -> dict[str, tuple[str | None, str | None]]:
    with database.unit_of_work() as session:
        rows = session.scalars(
            select(FactChange).where(FactChange.resident_id == resident_id, FactChange.reason == reason)
        ).all()
        return {c.attribute: (c.old_value, c.new_value) for c in rows}


def test_rebuilding_a_registered_resident_changes_nothing(db: Database) -> None:
    # given a resident registered directly, with no source record
    seed(db)
    resident_id = register(
        db, "赵凤兰", grid=True, sex="F", birth_date=dt.date(1948, 7, 6), id_number=ZHAO_ID, phone="13900139000",
        address="复兴路1号", living_arrangement="alone", dibao=True, disability_cert_grade=2,
    )  # fmt: skip
    before = profile(db, resident_id)
    # when its profile is rebuilt from its (no) evidence
    with db.unit_of_work() as session:
        service.rebuild_resident(session, resident_id, reason="test")
    # then every value is still there, and no change was logged
    assert profile(db, resident_id) == before
    assert (
        before["name"][0] == "赵凤兰" and before["grid_code"][0] == GRID and before["id_number"][0] == ZHAO_ID
    )
    assert history(db, resident_id, "test") == {}


def test_two_registered_residents_merge_and_unmerge_without_losing_a_value(db: Database) -> None:
    # given two registrations of one person, neither from an import
    seed(db)
    survivor = register(
        db, "王秀兰", grid=True, sex="F", birth_date=dt.date(1945, 3, 12), address="万寿路12号3栋401室",
        living_arrangement="alone",
    )  # fmt: skip
    duplicate = register(
        db, "王秀兰", community=OTHER_COMMUNITY, sex="F", birth_date=dt.date(1945, 3, 12), id_number=WANG_ID,
        phone="13800138000", address="复兴路1号", dibao=True,
    )  # fmt: skip
    survivor_before, duplicate_before = profile(db, survivor), profile(db, duplicate)
    # when staff merge the duplicate into the survivor
    merge_id = merge(db, survivor, duplicate)
    # then the survivor keeps its own values and gains what only the duplicate knew
    merged_profile = profile(db, survivor)
    expected = {
        **survivor_before,
        "id_number": (WANG_ID, None, None),
        "phone": ("13800138000", None, None),
        "dibao": (True, None, None),
    }
    assert merged_profile == expected
    with db.unit_of_work() as session:
        record = session.get(ResidentMerge, merge_id)
        assert sorted(record.moved["unsourced_attributes"]) == ["dibao", "id_number", "phone"]
        assert session.get(Resident, duplicate).status == ResidentStatus.merged
        assert session.get(Resident, duplicate).id_number is None  # one resident per ID number
    assert history(db, survivor, "merge") == {
        "id_number": (None, "110108********0021"), "phone": (None, "138****8000"), "dibao": (None, "True"),
    }  # fmt: skip
    # and when the merge is undone both profiles are as they were, the ID number back with its owner
    unmerge(db, merge_id)
    assert profile(db, survivor) == survivor_before
    assert profile(db, duplicate) == duplicate_before
    assert history(db, survivor, "unmerge") == {
        "id_number": ("110108********0021", None), "phone": ("138****8000", None), "dibao": ("True", None),
    }  # fmt: skip
    assert history(db, duplicate, "unmerge") == {}


def test_a_registered_resident_merged_into_an_imported_one(db: Database) -> None:
    # given an imported resident (a roster row with no ID number or phone) and a direct registration
    seed(db)
    survivor = imported(db, Feed.civil, civil_row(2, "C001", id_number=None, phone=None))
    duplicate = register(
        db, "王秀兰", sex="F", birth_date=dt.date(1945, 3, 12), id_number=WANG_ID, phone="13800138000",
        insurance_type="urban_rural", living_arrangement="with_family",
    )  # fmt: skip
    survivor_before, duplicate_before = profile(db, survivor), profile(db, duplicate)
    assert survivor_before["living_arrangement"][2] == "civil"
    # when the registration is merged into the imported resident
    merge_id = merge(db, survivor, duplicate)
    # then every value the roster gave stays with its record, and the gaps are filled
    assert profile(db, survivor) == {
        **survivor_before,
        "id_number": (WANG_ID, None, None),
        "phone": ("13800138000", None, None),
        "insurance_type": ("urban_rural", None, None),
    }
    # and an unmerge gives each its own back
    unmerge(db, merge_id)
    assert profile(db, survivor) == survivor_before
    assert profile(db, duplicate) == duplicate_before


def test_an_imported_resident_merged_into_a_registered_one(db: Database) -> None:
    # given a resident from the health file (with a condition and an observation) and a direct registration
    seed(db)
    duplicate = imported(db, Feed.health, health_row(2, "H001"))
    survivor = register(
        db, "王秀兰", grid=True, sex="F", birth_date=dt.date(1945, 3, 12), phone="13900139000", tekun=True
    )
    survivor_before, duplicate_before = profile(db, survivor), profile(db, duplicate)
    # when the imported resident is merged into the registration
    merge_id = merge(db, survivor, duplicate)
    # then the registration's values stay, and the health record fills what it lacked
    merged_profile = profile(db, survivor)
    for attribute in ("name", "sex", "birth_date", "phone", "community_code", "grid_code", "tekun"):
        assert merged_profile[attribute] == survivor_before[attribute]
    for attribute in ("id_number", "address", "living_arrangement"):
        assert merged_profile[attribute] == duplicate_before[attribute]
        assert merged_profile[attribute][2] == "health"
    assert conditions(db, survivor) == ["I10"]
    with db.unit_of_work() as session:
        assert session.scalar(select(Observation.resident_id)) == survivor
    # and an unmerge gives each its own back, evidence included
    unmerge(db, merge_id)
    assert profile(db, survivor) == survivor_before
    assert profile(db, duplicate) == duplicate_before
    assert conditions(db, survivor) == [] and conditions(db, duplicate) == ["I10"]
    with db.unit_of_work() as session:
        assert session.scalar(select(Observation.resident_id)) == duplicate


def test_merges_of_registered_residents_undone_in_turn(db: Database) -> None:
    # given three registrations of one person; only the first knows the ID number
    seed(db)
    first = register(db, "李建国", sex="M", id_number=ZHAO_ID)
    second = register(db, "李建国", phone="13700137000")
    third = register(db, "李建国", birth_date=dt.date(1948, 7, 6))
    before = {r: profile(db, r) for r in (first, second, third)}
    # when the first is merged into the second, and the second into the third
    one = merge(db, second, first)
    two = merge(db, third, second)
    # then the third knows everything
    assert {a: v[0] for a, v in profile(db, third).items() if v[0] is not None} == {
        "name": "李建国", "sex": "M", "id_number": ZHAO_ID, "phone": "13700137000",
        "birth_date": dt.date(1948, 7, 6), "community_code": COMMUNITY,
    }  # fmt: skip
    # and undoing both merges, the later first, leaves each registration as it was
    unmerge(db, two)
    unmerge(db, one)
    assert {r: profile(db, r) for r in (first, second, third)} == before


def test_a_rebuild_does_not_take_a_registered_residents_id_number(db: Database) -> None:
    # given a registered resident holding an ID number, and an imported one
    seed(db)
    holder = register(db, "赵凤兰", id_number=ZHAO_ID)
    other = imported(db, Feed.civil, civil_row(2, "C001", id_number=None))
    # when a record of the imported resident comes to state that ID number and its profile is rebuilt
    with pytest.raises(Conflict) as refused, db.unit_of_work() as session:
        session.add(
            SourceRecord(
                feed=Feed.staff, source_key="S1", resident_id=other, observed_at=dt.datetime(2025, 5, 1, tzinfo=dt.UTC),
                content_hash="0" * 32, payload={"name": "王秀兰"}, id_number=ZHAO_ID, link_method=LinkMethod.manual,
            )
        )  # fmt: skip
        service.rebuild_resident(session, other, reason="record_updated")
    # then it is refused, and the holder keeps its number
    assert refused.value.code == "resident.id_number.taken"
    with db.unit_of_work() as session:
        assert session.get(Resident, holder).id_number == ZHAO_ID
        assert session.get(Resident, other).id_number is None

"""Households an import places residents in: their grid and living arrangement follow the rows."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from tests.residents.test_registry import (
    COMMUNITY,
    OTHER_COMMUNITY,
    at,
    civil_row,
    health_row,
    make_id,
    run,
    seed_areas,
)
from yiyang.db import Database
from yiyang.geo.models import Area, AreaLevel, Household
from yiyang.residents.models import Resident
from yiyang.sources.models import Feed

GRID_1, GRID_2 = f"{COMMUNITY}-01", f"{COMMUNITY}-02"
OTHER_GRID = f"{OTHER_COMMUNITY}-01"


def seed_grids(database: Database) -> dict[str, int]:
    """Two grids in the first community, one in the other; code -> area id."""
    seed_areas(database)
    with database.unit_of_work() as session:
        communities = {
            a.code: a
            for a in session.execute(select(Area).where(Area.level == AreaLevel.community)).scalars()
        }
        for code in (GRID_1, GRID_2, OTHER_GRID):
            parent = communities[code.split("-")[0]]
            session.add(
                Area(
                    level=AreaLevel.grid,
                    code=code,
                    name=code[-2:],
                    parent_id=parent.id,
                    path=f"{parent.path}/{code}",
                )
            )
        session.flush()
        return {
            a.code: a.id for a in session.execute(select(Area).where(Area.level == AreaLevel.grid)).scalars()
        }


def household_of(database: Database, name: str) -> Household:
    with database.unit_of_work() as session:
        household_id = session.execute(
            select(Resident.household_id).where(Resident.name == name)
        ).scalar_one()
        household = session.get_one(Household, household_id)
        session.expunge(household)
        return household


LI = dict(name="李建国", sex="M", id_number=make_id("19400101", "011"), birth_date=dt.date(1940, 1, 1),
          phone="13900139000")  # fmt: skip


def test_a_resident_moving_into_a_household_brings_the_grid_the_newer_row_gives(db: Database) -> None:
    grids = seed_grids(db)
    # given 王秀兰's household at 万寿路1号 in grid 01, and 李建国 elsewhere in grid 02
    run(db, Feed.health, [
        health_row(2, "H1", address="万寿路1号", grid_code=GRID_1),
        health_row(3, "H2", address="复兴路8号", grid_code=GRID_2, **LI),
    ])  # fmt: skip
    assert household_of(db, "王秀兰").grid_id == grids[GRID_1]
    # when a later health file has 李建国 at 万寿路1号, the grid re-drawn as 02
    run(db, Feed.health, [
        health_row(2, "H3", address="万寿路1号", grid_code=GRID_2, observed_at=at("2025-06-01"), **LI),
    ])  # fmt: skip
    # then he joins her household, and the household's grid is the one the newer row gives
    household = household_of(db, "李建国")
    assert household.id == household_of(db, "王秀兰").id
    assert household.grid_id == grids[GRID_2]


def test_a_household_follows_a_newer_grid_for_the_same_address(db: Database) -> None:
    grids = seed_grids(db)
    # given a household in grid 01
    run(db, Feed.health, [health_row(2, "H1", address="万寿路1号", grid_code=GRID_1)])
    before = household_of(db, "王秀兰")
    # when a later file (a new record) places her at the same address in grid 02
    run(db, Feed.health, [
        health_row(2, "H9", address="万寿路1号", grid_code=GRID_2, observed_at=at("2025-06-01")),
    ])  # fmt: skip
    # then the same household now lies in grid 02, as its resident does
    after = household_of(db, "王秀兰")
    assert after.id == before.id
    assert after.grid_id == grids[GRID_2]
    with db.unit_of_work() as session:
        assert session.execute(select(Resident.grid_id)).scalar_one() == grids[GRID_2]


def test_a_household_takes_the_living_arrangement_the_civil_roster_gives(db: Database) -> None:
    seed_grids(db)
    # given a household the health file says lives with family
    run(db, Feed.health, [health_row(2, "H1", address="万寿路1号", grid_code=GRID_1)])
    assert household_of(db, "王秀兰").living_arrangement == "with_family"
    # when the civil roster (the authority for it) says she lives alone there
    run(db, Feed.civil, [civil_row(2, "C1", address="万寿路1号", observed_at=at("2025-04-01"))])
    # then the household says so too, and keeps its grid (the roster has no grid column)
    household = household_of(db, "王秀兰")
    assert household.living_arrangement == "alone"
    assert household.grid_id is not None


def test_a_move_to_another_community_never_puts_the_household_in_a_grid_of_the_old_one(db: Database) -> None:
    seed_grids(db)
    # given a resident in grid 01 of the first community
    run(db, Feed.health, [health_row(2, "H1", address="万寿路1号", grid_code=GRID_1)])
    # when the civil roster moves her to the other community (it names no grid)
    run(db, Feed.civil, [
        civil_row(2, "C1", address="翠微路2号", community_code=OTHER_COMMUNITY, observed_at=at("2025-04-01")),
    ])  # fmt: skip
    # then her new household is in that community and in no grid of the first one
    household = household_of(db, "王秀兰")
    with db.unit_of_work() as session:
        community = session.get_one(Area, household.community_id)
    assert community.code == OTHER_COMMUNITY
    assert household.grid_id is None


def test_re_importing_the_same_rows_leaves_households_as_they_are(db: Database) -> None:
    grids = seed_grids(db)
    rows = [health_row(2, "H1", address="万寿路1号", grid_code=GRID_1)]
    run(db, Feed.health, rows)
    # when the same row comes again
    report = run(db, Feed.health, rows)
    # then nothing changed
    assert report.counts["unchanged"] == 1
    with db.unit_of_work() as session:
        households = session.execute(select(Household.id, Household.grid_id)).all()
    assert [tuple(h) for h in households] == [(household_of(db, "王秀兰").id, grids[GRID_1])]


def test_a_move_to_another_community_leaves_the_resident_in_no_grid_of_the_old_one(db: Database) -> None:
    seed_grids(db)
    # given a resident in grid 01 of the first community
    run(db, Feed.health, [health_row(2, "H1", address="万寿路1号", grid_code=GRID_1)])
    # when the civil roster moves her to the other community (it names no grid)
    run(db, Feed.civil, [
        civil_row(2, "C1", address="翠微路2号", community_code=OTHER_COMMUNITY, observed_at=at("2025-04-01")),
    ])  # fmt: skip
    # then she is in that community and in no grid: the old grid's worker no longer reaches her
    with db.unit_of_work() as session:
        resident = session.scalars(select(Resident).where(Resident.name == "王秀兰")).one()
        community = session.get_one(Area, resident.community_id)
        assert community.code == OTHER_COMMUNITY
        assert resident.grid_id is None


def test_a_re_sent_record_moving_her_to_another_community_leaves_her_in_no_grid_of_the_old_one(
    db: Database,
) -> None:
    seed_grids(db)
    # given a resident in grid 01 of the first community, on the roster there too
    run(db, Feed.health, [health_row(2, "H1", address="万寿路1号", grid_code=GRID_1)])
    run(db, Feed.civil, [civil_row(2, "C1", address="万寿路1号", observed_at=at("2025-04-01"))])
    # when the roster's record comes again, corrected: she lives in the other community
    run(db, Feed.civil, [
        civil_row(2, "C1", address="翠微路2号", community_code=OTHER_COMMUNITY, observed_at=at("2025-05-01")),
    ])  # fmt: skip
    # then she is in that community and in no grid of the first one
    with db.unit_of_work() as session:
        resident = session.scalars(select(Resident).where(Resident.name == "王秀兰")).one()
        assert session.get_one(Area, resident.community_id).code == OTHER_COMMUNITY
        assert resident.grid_id is None

"""Households, the community directory and tree queries over an imported district."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select

from yiyang.db import Database
from yiyang.geo.models import Area, AreaLevel, Household, LivingArrangement
from yiyang.geo.service import (
    HouseholdCache,
    areas_under,
    community_directory,
    household_arrangement,
    household_for,
    household_ids,
    import_geography,
    list_children,
    resident_counts,
)
from yiyang.residents.models import Resident, ResidentStatus


@pytest.fixture
def district(db: Database, geography_file: Path) -> dict[str, int]:
    """The small district imported; area ids by code."""
    with db.unit_of_work() as session:
        import_geography(session, geography_file)
    with db.sessions() as session:
        return {a.code: a.id for a in session.scalars(select(Area))}


def households(database: Database) -> int:
    with database.sessions() as session:
        return session.scalar(select(func.count()).select_from(Household)) or 0


def test_one_household_per_normalised_address_within_a_community(
    db: Database, district: dict[str, int]
) -> None:
    community, grid = district["110108001001"], district["110108001001-01"]
    # given an address written three ways, and the same address in another community
    with db.unit_of_work() as session:
        cache = HouseholdCache()
        first = household_for(
            session, "建设路12号3栋2单元401室", community, grid, cache, LivingArrangement.alone
        )
        spaced = household_for(session, " 建设路１２号 3栋2单元401室", community, grid, cache)
        other = household_for(session, "建设路12号3栋2单元401室", district["110108001002"], None, cache)
    # then the three spellings are one household and the other community has its own
    assert first == spaced != other
    assert households(db) == 2
    # and a later import with a fresh cache finds the stored household instead of adding one
    with db.unit_of_work() as session:
        again = household_for(session, "建设路12号 3栋2单元401室", community, grid, HouseholdCache())
    assert again == first and households(db) == 2
    with db.sessions() as session:
        stored = session.get_one(Household, first)
        assert stored.living_arrangement is LivingArrangement.alone and stored.grid_id == grid


def test_household_ids_in_bulk_write_each_new_address_once(db: Database, district: dict[str, int]) -> None:
    community = district["110108002001"]
    with db.unit_of_work() as session:
        known = household_for(session, "光明路1号1栋1单元101室", community, None, HouseholdCache())
    # given a batch where two rows share a new address and one row is an address already stored
    entries = [
        ("光明路1号1栋1单元102室", community, None),
        ("光明路1号1栋1单元１０２室", community, None),
        ("光明路1号1栋1单元101室", community, None),
    ]
    with db.unit_of_work() as session:
        ids = household_ids(session, entries, HouseholdCache())
    # then the shared address got one new household and the stored one was reused
    assert ids[0] == ids[1] != ids[2] == known
    assert households(db) == 2


def test_community_directory_resolves_codes_names_and_grids(db: Database, district: dict[str, int]) -> None:
    with db.sessions() as session:
        directory = community_directory(session)
    assert directory.by_code == {
        "110108001001": "和平里社区",
        "110108001002": "幸福园社区",
        "110108002001": "光明苑社区",
    }
    assert directory.by_name["和平里社区"] == ["110108001001"]
    assert directory.grids == {
        "110108001001-01": "110108001001",
        "110108001001-02": "110108001001",
        "110108002001-01": "110108002001",
    }


def test_children_and_everything_under_a_street(db: Database, district: dict[str, int]) -> None:
    with db.sessions() as session:
        children = list_children(session, district["110108001"])
        under = areas_under(session, "110108/110108001")
        communities = areas_under(session, "110108", level=AreaLevel.community)
    assert [a.code for a in children] == ["110108001001", "110108001002"]
    assert [a.code for a in under] == ["110108001001", "110108001001-01", "110108001001-02", "110108001002"]
    assert len(communities) == 3


def test_residents_are_counted_by_grid_community_street_and_district(
    db: Database, district: dict[str, int]
) -> None:
    # given three active residents in one community (two in its first grid), one in another
    # street, and a merged record that no longer counts
    placements = [
        ("110108001001", "110108001001-01", ResidentStatus.active),
        ("110108001001", "110108001001-01", ResidentStatus.active),
        ("110108001001", "110108001001-02", ResidentStatus.active),
        ("110108002001", "110108002001-01", ResidentStatus.active),
        ("110108001001", "110108001001-01", ResidentStatus.merged),
    ]
    with db.unit_of_work() as session:
        for n, (community, grid, status) in enumerate(placements):
            session.add(
                Resident(
                    name=f"居民{n}",
                    name_pinyin=f"ju min {n}",
                    community_id=district[community],
                    grid_id=district[grid],
                    status=status,
                )
            )
    # when counting per area
    with db.sessions() as session:
        areas = list(session.scalars(select(Area)))
        counts = {
            area.code: n
            for area in areas
            for area_id, n in resident_counts(session, areas).items()
            if area_id == area.id
        }
    # then each level sums what lies below it
    assert counts["110108001001-01"] == 2
    assert counts["110108001001"] == 3
    assert counts["110108001002"] == 0
    assert counts["110108001"] == 3
    assert counts["110108002"] == 1
    assert counts["110108"] == 4


def test_a_subtree_takes_an_underscore_in_a_code_literally(db: Database, tmp_path: Path) -> None:
    # given two streets whose codes differ where one has '_' (a LIKE wildcard for one character)
    from tests.geo.files import write

    tree = write(
        tmp_path / "local.csv",
        "层级,编码,名称,上级编码\n区,D,区,\n街道,S_1,甲街道,D\n街道,SX1,乙街道,D\n"
        "社区,S_1-C,甲社区,S_1\n社区,SX1-C,乙社区,SX1\n",
    )
    with db.unit_of_work() as session:
        assert import_geography(session, tree).applied
    # when the subtree of S_1 is asked for (the clause an area grant's scope is drawn with)
    with db.sessions() as session:
        street = session.scalars(select(Area).where(Area.code == "S_1")).one()
        codes = set(session.scalars(select(Area.code).where(street.subtree())))
    # then it holds S_1 and its community, not the other street's
    assert codes == {"S_1", "S_1-C"}


def test_members_who_disagree_on_how_they_live_are_decided_by_the_precedence_rule() -> None:
    def said(feed: str, observed: str) -> dict[str, list[object]]:
        return {"living_arrangement": [1, feed, f"{observed}T00:00:00+00:00"]}

    alone, family, couple = (
        LivingArrangement.alone,
        LivingArrangement.with_family,
        LivingArrangement.spouse_only,
    )
    # 民政 outranks a newer health record; within one feed the newer observation wins
    assert (
        household_arrangement([(family, said("health", "2025-06-01")), (alone, said("civil", "2025-01-01"))])
        is alone
    )
    assert (
        household_arrangement([(couple, said("civil", "2025-06-01")), (alone, said("civil", "2025-01-01"))])
        is couple
    )
    # a value no record stands behind fills only a gap
    assert household_arrangement([(alone, None), (couple, said("health", "2024-01-01"))]) is couple
    assert household_arrangement([(alone, {})]) is alone
    assert household_arrangement([]) is None

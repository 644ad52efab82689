"""The geography routes: areas, organisations and households.

Areas and households need a signed-in user (they answered anyone before; see
tests/geo/test_household_access.py for who sees what). The tests here read as a civil-affairs
officer over the whole district: their scope covers the household's people, their roles see
the living field group and count residents for statistics.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from tests.geo.files import write
from tests.signed_in import bearer_for
from yiyang.access import service as access
from yiyang.access.roles import Role
from yiyang.app import create_app
from yiyang.db import Database
from yiyang.deps import MAX_ID
from yiyang.geo.models import Area, LivingArrangement
from yiyang.geo.service import HouseholdCache, household_for, import_geography, import_organisations
from yiyang.residents.models import Resident


@pytest.fixture
def ids(sqlite_db: Database, geography_file: Path, organisations_file: Path) -> dict[str, int]:
    """The small district with its organisations, and one two-person household."""
    with sqlite_db.unit_of_work() as session:
        import_geography(session, geography_file)
        import_organisations(session, organisations_file)
        areas = {a.code: a.id for a in session.scalars(select(Area))}
        household = household_for(
            session,
            "建设路12号3栋2单元401室",
            areas["110108001001"],
            areas["110108001001-01"],
            HouseholdCache(),
            LivingArrangement.spouse_only,
        )
        for name in ("王建国", "李秀英"):
            session.add(
                Resident(
                    name=name,
                    name_pinyin=name,
                    household_id=household,
                    living_arrangement=LivingArrangement.spouse_only,
                    community_id=areas["110108001001"],
                    grid_id=areas["110108001001-01"],
                )
            )
    return {**areas, "household": household}


@pytest.fixture
def officer(sqlite_db: Database, ids: dict[str, int]) -> dict[str, str]:
    """A civil-affairs officer (民政工作人员) over the district."""
    with sqlite_db.unit_of_work() as session:
        user = access.create_user(session, "civil-officer")
        access.grant_role(session, user, Role.civil_affairs_officer, area_id=ids["110108"])
        user_id = user.id
    return bearer_for(sqlite_db, user_id)


@pytest.fixture
def client(sqlite_db: Database, officer: dict[str, str]) -> Iterator[TestClient]:
    with TestClient(create_app(sqlite_db), headers=officer) as test_client:
        yield test_client


def test_areas_filter_by_level_and_parent(client: TestClient, ids: dict[str, int]) -> None:
    streets = client.get("/api/areas", params={"level": "street"})
    assert streets.status_code == 200
    assert [a["code"] for a in streets.json()] == ["110108001", "110108002"]
    children = client.get("/api/areas", params={"parent_id": ids["110108001"]}).json()
    assert [a["name"] for a in children] == ["和平里社区", "幸福园社区"]
    assert children[0]["path"] == "110108/110108001/110108001001"


def test_an_area_comes_with_its_children_and_resident_count(client: TestClient, ids: dict[str, int]) -> None:
    body = client.get(f"/api/areas/{ids['110108001']}").json()
    assert body["level"] == "street" and body["resident_count"] == 2
    assert [c["code"] for c in body["children"]] == ["110108001001", "110108001002"]


def test_unknown_and_out_of_range_area_ids_are_4xx_not_500(client: TestClient, ids: dict[str, int]) -> None:
    missing = client.get(f"/api/areas/{MAX_ID}")
    assert missing.status_code == 404 and missing.json()["code"] == "geo.area.not_found"
    for bad in ("0", str(MAX_ID + 1), "abc"):
        assert client.get(f"/api/areas/{bad}").status_code == 422
    assert client.get("/api/areas", params={"level": "province"}).status_code == 422


def test_organisations_filter_by_kind_and_area_including_below_it(
    client: TestClient, ids: dict[str, int]
) -> None:
    in_street = client.get("/api/organisations", params={"area_id": ids["110108001"]}).json()
    assert {o["name"] for o in in_street} == {
        "东升社区卫生服务中心",
        "和平里社区卫生服务站",
        "和平里养老驿站",
    }
    stations = client.get("/api/organisations", params={"kind": "elderly_care_station"}).json()
    assert [(o["name"], o["kind_label"]) for o in stations] == [("和平里养老驿站", "养老驿站")]
    assert client.get("/api/organisations", params={"area_id": MAX_ID}).status_code == 404


def test_a_household_shows_where_and_how_many_but_not_who(client: TestClient, ids: dict[str, int]) -> None:
    response = client.get(f"/api/households/{ids['household']}")
    assert response.status_code == 200
    body = response.json()
    assert body["member_count"] == 2 and body["living_arrangement"] == "spouse_only"
    assert body["community"]["code"] == "110108001001" and body["grid"]["code"] == "110108001001-01"
    assert "王建国" not in response.text and "李秀英" not in response.text
    assert client.get(f"/api/households/{MAX_ID}").json()["code"] == "geo.household.not_found"


def test_areas_and_households_need_sign_in_organisations_do_not(
    sqlite_db: Database, ids: dict[str, int]
) -> None:
    # given someone who has not signed in (these routes answered anyone before)
    with TestClient(create_app(sqlite_db)) as anonymous:
        # then the area tree and the household are refused, the organisations' directory is not
        assert anonymous.get("/api/areas").status_code == 401
        assert anonymous.get(f"/api/areas/{ids['110108001']}").status_code == 401
        household = anonymous.get(f"/api/households/{ids['household']}")
        assert household.status_code == 401 and "建设路" not in household.text
        assert anonymous.get("/api/organisations").status_code == 200


def test_a_household_lives_as_its_members_newest_civil_record_says(
    client: TestClient, sqlite_db: Database, ids: dict[str, int], tmp_path: Path
) -> None:
    from yiyang.sources.models import Feed
    from yiyang.sources.service import import_file

    header = "人员编号,姓名,出生日期,居住地址,所属社区,居住状况,更新日期\n"
    row = "M1,赵桂兰,1941-03-05,建设路30号1单元101室,110108001002,{living},{date}\n"
    # given 民政 recorded an elder living with her family, then (half a year later) living alone
    for n, (living, date) in enumerate((("与子女同住", "2025-01-01"), ("独居", "2025-06-01"))):
        civil = write(tmp_path / f"civil{n}.csv", header + row.format(living=living, date=date))
        assert import_file(sqlite_db, Feed.civil, civil).counts["rejected"] == 0
    with sqlite_db.sessions() as session:
        household = session.scalars(select(Resident.household_id).where(Resident.name == "赵桂兰")).one()
    # when her household is read
    body = client.get(f"/api/households/{household}").json()
    # then it says she lives alone, not what was known when the household was first seen
    assert body["living_arrangement"] == "alone" and body["member_count"] == 1

"""Import runs read by registry keepers of different areas: a run's counts are everyone's who keeps
the registry, its rejections only theirs whose area holds the community the rejected row names."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from yiyang.access import service
from yiyang.access.models import AuditEvent
from yiyang.access.roles import Role
from yiyang.app import create_app
from yiyang.db import Database
from yiyang.geo.models import Area
from yiyang.geo.service import import_geography
from yiyang.sources.feeds import CommunityDirectory, read_feed
from yiyang.sources.models import Feed, ImportRun
from yiyang.sources.records import RowRejection
from yiyang.sources.service import import_file

from ..signed_in import bearer_for

SAMPLES = Path(__file__).parents[2] / "docs" / "samples"
CUIWEI, FUXING, HANGTIAN = "110108001001", "110108001002", "110108002002"  # communities
WANSHOU_STREET, DISTRICT = "110108001000", "110108000000"
# docs/feeds.md: the health sample's rejected lines and the community each row names
# (line 13 names 中关村社区, which is not in the district).
HEALTH_REJECTED = {6: CUIWEI, 7: FUXING, 9: CUIWEI, 10: HANGTIAN, 13: None}
SOURCE_KEY_OF_LINE = {10: "11010800200200009", 13: "11010800100100012"}


@pytest.fixture
def district(db: Database) -> Database:
    with db.unit_of_work() as session:
        import_geography(session, SAMPLES / "geography.csv")
    import_file(db, Feed.health, SAMPLES / "health.csv")
    import_file(db, Feed.insurance, SAMPLES / "insurance_gb18030.csv")
    return db


@pytest.fixture
def client(district: Database) -> TestClient:
    return TestClient(create_app(district))


def keeper(database: Database, username: str, *grants: tuple[Role, str | None]) -> dict[str, str]:
    """A user holding these roles over these areas (by code); their Authorization header."""
    with database.unit_of_work() as session:
        user = service.create_user(session, username)
        for role, code in grants:
            area_id = session.scalar(select(Area.id).where(Area.code == code)) if code else None
            service.grant_role(session, user, role, area_id=area_id)
        user_id = user.id
    return bearer_for(database, user_id)


def run_id(database: Database, feed: Feed) -> int:
    with database.unit_of_work() as session:
        return session.scalars(select(ImportRun.id).where(ImportRun.feed == feed)).one()


def shown_lines(body: dict) -> list[int]:
    return [r["line"] for r in body["rejections"]]


# ------------------------------------------------------------------ the reader records the community


def test_a_rejection_names_the_community_of_its_row_when_the_directory_knows_it() -> None:
    # given the sample district's communities
    directory = CommunityDirectory.from_geography_csv(SAMPLES / "geography.csv")
    # when the health and insurance samples are read
    health = [
        r for r in read_feed(SAMPLES / "health.csv", Feed.health, directory) if isinstance(r, RowRejection)
    ]
    insurance = [
        r
        for r in read_feed(SAMPLES / "insurance_gb18030.csv", Feed.insurance, directory)
        if isinstance(r, RowRejection)
    ]
    # then each health rejection carries its row's community, resolved from a code or a name,
    # even where the row was rejected before its community column was checked; an unknown one is
    # none; and an insurance claim, which names no community, carries none
    assert {r.line: r.community_code for r in health} == HEALTH_REJECTED
    assert insurance and all(r.community_code is None for r in insurance)


def test_a_civil_roster_rejection_names_its_community() -> None:
    directory = CommunityDirectory.from_geography_csv(SAMPLES / "geography.csv")
    rejected = [
        r for r in read_feed(SAMPLES / "civil.xlsx", Feed.civil, directory) if isinstance(r, RowRejection)
    ]
    assert rejected and all(r.community_code in directory.by_code for r in rejected)


# ------------------------------------------------------------------ who reads which rejections


@pytest.mark.parametrize(
    "grants",
    [
        pytest.param(((Role.district_admin, None),), id="administrator-of-the-deployment"),
        pytest.param(((Role.health_officer, DISTRICT),), id="officer-over-the-district"),
    ],
)
def test_a_district_wide_keeper_reads_every_rejection(
    district: Database, client: TestClient, grants: tuple[tuple[Role, str | None], ...]
) -> None:
    # given a registry keeper over the whole district
    headers = keeper(district, "district_keeper", *grants)
    # when they read the health run
    body = client.get(f"/api/import-runs/{run_id(district, Feed.health)}", headers=headers).json()
    # then every rejection is there, with its community, and nothing is withheld
    assert {r["line"]: r["community_code"] for r in body["rejections"]} == HEALTH_REJECTED
    assert body["rejections_withheld"] == 0
    assert body["counts"]["rejected"] == 5


def test_a_street_officer_reads_only_rejections_of_communities_in_the_street(
    district: Database, client: TestClient
) -> None:
    # given a civil-affairs officer over 万寿路街道 (翠微路 and 复兴路 communities)
    headers = keeper(district, "street_officer", (Role.civil_affairs_officer, WANSHOU_STREET))
    # when they read the health run
    response = client.get(f"/api/import-runs/{run_id(district, Feed.health)}", headers=headers)
    # then they see the run and its counts, the rejections of rows in their street, and how many
    # others were withheld: not 航天社区's row, nor the row naming a community outside the district
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["counts"]["rejected"] == 5 and body["filename"] == "health.csv"
    assert shown_lines(body) == [6, 7, 9]
    assert body["rejections_withheld"] == 2
    for line in (10, 13):
        assert SOURCE_KEY_OF_LINE[line] not in response.text


def test_a_community_officer_reads_only_their_community(district: Database, client: TestClient) -> None:
    # given a health officer over 航天社区 and one over 翠微路社区
    hangtian = keeper(district, "hangtian_officer", (Role.health_officer, HANGTIAN))
    cuiwei = keeper(district, "cuiwei_officer", (Role.civil_affairs_officer, CUIWEI))
    run = run_id(district, Feed.health)
    # when each reads the health run
    seen_hangtian = client.get(f"/api/import-runs/{run}", headers=hangtian).json()
    seen_cuiwei = client.get(f"/api/import-runs/{run}", headers=cuiwei).json()
    # then each sees their own community's rejections only
    assert shown_lines(seen_hangtian) == [10] and seen_hangtian["rejections_withheld"] == 4
    assert shown_lines(seen_cuiwei) == [6, 9] and seen_cuiwei["rejections_withheld"] == 3


def test_rejections_naming_no_community_are_withheld_from_an_area_keeper(
    district: Database, client: TestClient
) -> None:
    # given an officer over a street, and the insurance run, whose claims name no community
    headers = keeper(district, "street_officer", (Role.health_officer, WANSHOU_STREET))
    admin = keeper(district, "admin", (Role.district_admin, None))
    run = run_id(district, Feed.insurance)
    # when the officer and the administrator read it
    officer_view = client.get(f"/api/import-runs/{run}", headers=headers).json()
    admin_view = client.get(f"/api/import-runs/{run}", headers=admin).json()
    # then the officer sees the counts and no rejection; the administrator sees all four
    assert officer_view["counts"]["rejected"] == 4
    assert officer_view["rejections"] == [] and officer_view["rejections_withheld"] == 4
    assert shown_lines(admin_view) == [6, 8, 10, 11] and admin_view["rejections_withheld"] == 0


def test_a_role_outside_the_registry_does_not_widen_a_keepers_area(
    district: Database, client: TestClient
) -> None:
    # given a person who keeps the registry over 翠微路社区 and is a grid worker over the district
    headers = keeper(
        district, "officer_and_grid", (Role.civil_affairs_officer, CUIWEI), (Role.grid_worker, DISTRICT)
    )
    # when they read the health run
    body = client.get(f"/api/import-runs/{run_id(district, Feed.health)}", headers=headers).json()
    # then the registry role's area decides: 翠微路 only
    assert shown_lines(body) == [6, 9] and body["rejections_withheld"] == 3


def test_runs_recorded_before_rejections_named_their_community(
    district: Database, client: TestClient
) -> None:
    # given a run stored before rejections carried their community
    run = run_id(district, Feed.health)
    with district.unit_of_work() as session:
        stored = session.get(ImportRun, run)
        stored.rejections = [{k: v for k, v in r.items() if k != "community_code"} for r in stored.rejections]
    street = keeper(district, "street_officer", (Role.civil_affairs_officer, WANSHOU_STREET))
    admin = keeper(district, "admin", (Role.district_admin, None))
    # when an area officer and the administrator read it
    officer_view = client.get(f"/api/import-runs/{run}", headers=street).json()
    admin_view = client.get(f"/api/import-runs/{run}", headers=admin)
    # then the old rejections count as naming no community: the administrator still reads them all
    assert officer_view["rejections"] == [] and officer_view["rejections_withheld"] == 5
    assert admin_view.status_code == 200 and shown_lines(admin_view.json()) == [6, 7, 9, 10, 13]


def test_the_run_list_is_the_same_for_every_keeper(district: Database, client: TestClient) -> None:
    # given an officer over one community
    headers = keeper(district, "cuiwei_officer", (Role.civil_affairs_officer, CUIWEI))
    # when they list the runs
    runs = client.get("/api/import-runs", headers=headers).json()
    # then both runs are listed with their counts, and no rejection is in the list
    assert [r["feed"] for r in runs] == ["insurance", "health"]
    assert all("rejections" not in r for r in runs)


def test_each_read_of_a_run_is_audited_and_other_roles_are_refused(
    district: Database, client: TestClient
) -> None:
    # given a community officer and a grid worker
    officer = keeper(district, "cuiwei_officer", (Role.civil_affairs_officer, CUIWEI))
    grid_worker = keeper(district, "grid_worker", (Role.grid_worker, CUIWEI))
    run = run_id(district, Feed.health)
    # when each reads the run
    allowed = client.get(f"/api/import-runs/{run}", headers=officer)
    refused = client.get(f"/api/import-runs/{run}", headers=grid_worker)
    # then the officer's read is audited under the registry role; the grid worker is refused, audited
    assert allowed.status_code == 200
    assert refused.status_code == 403 and refused.json()["code"] == "access.role"
    assert "rejections" not in refused.json()
    with district.unit_of_work() as session:
        events = session.scalars(select(AuditEvent).where(AuditEvent.resource_type == "import_run")).all()
        read = [(e.role, e.field_group, e.outcome) for e in events if e.actor_name == "cuiwei_officer"]
        denied = [e.outcome for e in events if e.actor_name == "grid_worker"]
    assert read == [("civil_affairs_officer", "rejections", "allowed")]
    assert denied == ["denied"]

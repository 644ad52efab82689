"""An administrator over an area registers and updates only the providers of that area, and keeps
only the volunteer profiles of that area; an administrator without an area keeps every one."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from tests.orders.district import PASSWORD, District, build
from yiyang.access import service as access
from yiyang.access.roles import Role
from yiyang.app import create_app
from yiyang.care.orders.models import ServiceProvider
from yiyang.db import Database
from yiyang.geo.models import Organisation, OrganisationKind
from yiyang.timebank.models import VolunteerProfile


@pytest.fixture
def place(sqlite_db: Database) -> District:
    return build(sqlite_db)


@pytest.fixture
def station_c(sqlite_db: Database, place: District) -> int:
    """A station of the other street (community 3, street 2)."""
    with sqlite_db.unit_of_work() as session:
        station = Organisation(
            code="ST-C",
            name="丙社区养老驿站",
            kind=OrganisationKind.elderly_care_station,
            area_id=place.community_3,
        )
        session.add(station)
        session.flush()
        return station.id


@pytest.fixture
def client(sqlite_db: Database, place: District) -> Iterator[TestClient]:
    with sqlite_db.unit_of_work() as session:
        street_admin = access.create_user(session, "admin.street1", password=PASSWORD)
        access.grant_role(session, street_admin, Role.district_admin, area_id=place.street_1)
    with TestClient(create_app(sqlite_db)) as test_client:
        yield test_client


def bearer(client: TestClient, username: str) -> dict[str, str]:
    response = client.post("/api/auth/login", json={"username": username, "password": PASSWORD})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['token']}"}


def provider(
    client: TestClient, headers: dict[str, str], organisation_id: int, areas: list[int], **more: object
):  # type: ignore[no-untyped-def]
    body = {
        "organisation_id": organisation_id,
        "skills": ["meal_delivery"],
        "coverage_area_ids": areas,
        **more,
    }
    return client.post("/api/service-providers", json=body, headers=headers)


def test_a_street_administrator_registers_a_station_of_their_street(
    client: TestClient, place: District
) -> None:
    street = bearer(client, "admin.street1")
    response = provider(client, street, place.station_a, [place.community_1, place.street_1])
    assert response.status_code == 201, response.text
    # no coverage named: the station's own community, inside the street
    assert provider(client, street, place.station_b, []).status_code == 201


def test_a_street_administrator_cannot_deactivate_another_streets_station(
    client: TestClient, place: District, station_c: int, sqlite_db: Database
) -> None:
    # given the other street's station, registered by the deployment's administrator
    admin = bearer(client, "admin")
    assert provider(client, admin, station_c, [place.street_2]).status_code == 201
    # when street 1's administrator deactivates it, or takes it over for their street
    street = bearer(client, "admin.street1")
    stopped = provider(client, street, station_c, [place.street_2], active=False)
    moved = provider(client, street, station_c, [place.street_1])
    # then both are refused with a code, and the station still serves its street
    for response in (stopped, moved):
        assert response.status_code == 403
        assert response.json()["code"] == "provider.scope"
    with sqlite_db.unit_of_work() as session:
        row = session.scalars(
            select(ServiceProvider).where(ServiceProvider.organisation_id == station_c)
        ).one()
        assert row.active is True


def test_a_street_administrator_cannot_spread_coverage_beyond_their_street(
    client: TestClient, place: District, sqlite_db: Database
) -> None:
    street = bearer(client, "admin.street1")
    # a station of their street covering the whole district, or the other street
    for areas in ([place.district], [place.community_1, place.community_3]):
        response = provider(client, street, place.station_a, areas)
        assert response.status_code == 403 and response.json()["code"] == "provider.scope"
    # a social organisation seated at the district
    assert provider(client, street, place.social, [place.community_1]).json()["code"] == "provider.scope"
    with sqlite_db.unit_of_work() as session:
        assert session.scalars(select(ServiceProvider)).all() == []


def test_a_street_administrator_cannot_narrow_a_provider_covering_more_than_their_street(
    client: TestClient, place: District, sqlite_db: Database
) -> None:
    # given station A of street 1, set by the deployment's administrator to cover the district
    assert provider(client, bearer(client, "admin"), place.station_a, [place.district]).status_code == 201
    # when street 1's administrator narrows it to their street, the rest of the district would
    # lose it: refused
    response = provider(client, bearer(client, "admin.street1"), place.station_a, [place.street_1])
    assert response.status_code == 403 and response.json()["code"] == "provider.scope"


def test_the_deployment_administrator_keeps_every_provider(
    client: TestClient, place: District, station_c: int
) -> None:
    admin = bearer(client, "admin")
    assert provider(client, admin, place.social, [place.district]).status_code == 201
    assert provider(client, admin, station_c, [place.street_2]).status_code == 201
    assert provider(client, admin, station_c, [place.street_2], active=False).json()["active"] is False


def test_a_street_administrator_keeps_only_their_streets_volunteer_profiles(
    client: TestClient, place: District, sqlite_db: Database
) -> None:
    admin, street = bearer(client, "admin"), bearer(client, "admin.street1")
    url = f"/api/timebank/volunteers/{place.volunteer_1}/profile"
    # a volunteer of street 2, as the deployment's administrator keeps them
    assert (
        client.put(url, json={"area_id": place.community_3, "skills": ["escort"]}, headers=admin).status_code
        == 200
    )
    # street 1's administrator may neither stop them nor move them into street 1
    for body in (
        {"area_id": place.community_3, "skills": ["escort"], "active": False},
        {"area_id": place.community_1, "skills": ["escort"]},
    ):
        response = client.put(url, json=body, headers=street)
        assert response.status_code == 403 and response.json()["code"] == "timebank.profile.scope"
    with sqlite_db.unit_of_work() as session:
        profile = session.get(VolunteerProfile, place.volunteer_1)
        assert profile is not None and (profile.area_id, profile.active) == (place.community_3, True)
    # a volunteer of street 1 they keep; moving one out of their street they may not
    url_2 = f"/api/timebank/volunteers/{place.volunteer_2}/profile"
    assert client.put(url_2, json={"area_id": place.community_1}, headers=street).status_code == 200
    assert client.put(url_2, json={"area_id": place.community_2}, headers=street).status_code == 200
    assert client.put(url_2, json={"area_id": place.community_3}, headers=street).status_code == 403
    # the volunteer keeps their own profile wherever it is
    own = bearer(client, "volunteer.1")
    assert client.put(url, json={"area_id": place.community_1}, headers=own).status_code == 200

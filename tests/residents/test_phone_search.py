"""Searching residents by phone only for the roles that may reveal phones: the others see a phone
masked (138****5678), and a search would confirm its four hidden digits in ten thousand tries.

The district is tests/access/world.py: one user per role, residents in and out of scope.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from yiyang.access.models import AuditEvent, AuditOutcome
from yiyang.access.reveal import REVEAL_ROLES, RevealableField
from yiyang.access.roles import Role
from yiyang.app import create_app
from yiyang.db import Database
from yiyang.residents.models import Resident

from ..access.world import World, build_world

PHONE = "13911002345"
REFUSED = "resident.search.phone"


@pytest.fixture(scope="module")
def world(sqlite_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    folder = tmp_path_factory.mktemp("phones")
    shutil.copy(sqlite_template, folder / "yiyang.db")
    database = Database(f"sqlite:///{folder / 'yiyang.db'}")
    built = build_world(database)
    with database.unit_of_work() as session:
        session.get(Resident, built.residents["in_given"]).phone = PHONE
    yield built
    database.dispose()


@pytest.fixture(scope="module")
def client(world: World) -> Iterator[TestClient]:
    with TestClient(create_app(world.database)) as test_client:
        yield test_client


def test_the_roles_that_search_by_phone_are_those_that_reveal_it() -> None:
    assert Role.volunteer not in REVEAL_ROLES[RevealableField.phone]
    assert Role.family_doctor in REVEAL_ROLES[RevealableField.phone]


def test_a_volunteer_may_not_search_by_phone_and_the_attempt_is_audited(
    client: TestClient, world: World
) -> None:
    # given a volunteer paired with a resident whose phone is known to them only masked
    # when they search by a guess of the whole number
    response = client.get("/api/residents", params={"q": PHONE}, headers=world.token(Role.volunteer))
    # then it is refused, saying why, without a count that would confirm the guess
    assert response.status_code == 403, response.text[:300]
    assert response.json()["code"] == REFUSED and "total" not in response.json()
    # and the attempt is in the audit trail, without the number
    with world.database.unit_of_work() as session:
        denied = session.scalars(
            select(AuditEvent).where(
                AuditEvent.outcome == AuditOutcome.denied, AuditEvent.reason.startswith(REFUSED)
            )
        ).all()
    assert denied and all(PHONE not in (row.reason or "") for row in denied)
    # and the staff page refuses it too
    page = client.get("/residents", params={"q": PHONE}, headers=world.token(Role.volunteer))
    assert page.status_code == 403 and "测试" not in page.text


@pytest.mark.parametrize(
    "role", [Role.family_doctor, Role.grid_worker, Role.station_staff, Role.social_worker]
)
def test_a_role_that_reveals_phones_finds_the_resident_by_phone(
    client: TestClient, world: World, role: Role
) -> None:
    response = client.get("/api/residents", params={"q": PHONE}, headers=world.token(role))
    assert response.status_code == 200, response.text[:300]
    assert [item["id"] for item in response.json()["items"]] == [world.residents["in_given"]]


def test_a_volunteer_still_searches_by_name(client: TestClient, world: World) -> None:
    response = client.get("/api/residents", params={"q": "测试0"}, headers=world.token(Role.volunteer))
    assert response.status_code == 200
    assert world.residents["in_given"] in [item["id"] for item in response.json()["items"]]

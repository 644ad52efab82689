"""Households and area statistics are resident data: signed-in, scoped, minimised, audited.

A household's address with ``living_arrangement: "alone"`` names an elder who lives alone, and
household ids are sequential, so the route answers only a signed-in actor who may see one of its
members (identity), shows the living arrangement and size only to roles that see the ``living``
field group, and audits the read. An area's tree is geography for any signed-in user; its
resident count is a statistic for the roles that count identity. The scene is
``tests/access/world.py`` (street S1 with grid G1 in scope, street S2 out of every scope).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from tests.access.world import World, build_world
from yiyang.access.models import AuditEvent
from yiyang.access.roles import Role
from yiyang.app import create_app
from yiyang.db import Database
from yiyang.geo.models import Area, LivingArrangement
from yiyang.geo.service import HouseholdCache, household_for
from yiyang.residents.models import Resident

IN_ADDRESS = "建设路12号3栋2单元401室"
OUT_ADDRESS = "幸福街8号1单元101室"
EMPTY_ADDRESS = "幸福街9号"


@dataclass
class Scene:
    world: World
    households: dict[str, int]


@pytest.fixture
def scene(db: Database) -> Scene:
    world = build_world(db)
    with db.unit_of_work() as session:
        area = {a.code: a.id for a in session.scalars(select(Area))}
        cache = HouseholdCache()
        alone = LivingArrangement.alone
        households = {
            "in": household_for(session, IN_ADDRESS, area["C1"], area["G1"], cache, alone),
            "out": household_for(session, OUT_ADDRESS, area["C2"], area["G2"], cache, alone),
            "empty": household_for(session, EMPTY_ADDRESS, area["C2"], area["G2"], cache, alone),
        }
        for resident, household in (("in_given", "in"), ("out_given", "out")):
            member = session.get_one(Resident, world.residents[resident])
            member.household_id, member.living_arrangement = households[household], alone
    return Scene(world, households)


@pytest.fixture
def client(scene: Scene) -> Iterator[TestClient]:
    with TestClient(create_app(scene.world.database)) as test_client:
        yield test_client


def _household_audit(database: Database, resident_id: int | None) -> list[str]:
    whose = AuditEvent.resident_id.is_(None) if resident_id is None else AuditEvent.resident_id == resident_id
    with database.unit_of_work() as session:
        outcomes = session.scalars(
            select(AuditEvent.outcome).where(AuditEvent.resource_type == "household", whose)
        ).all()
        return [str(getattr(outcome, "value", outcome)) for outcome in outcomes]


def test_an_anonymous_caller_gets_no_household(client: TestClient, scene: Scene) -> None:
    # given a household where an elder lives alone
    # when someone who has not signed in asks for it
    response = client.get(f"/api/households/{scene.households['in']}")
    # then sign-in is required and nothing of the household is returned
    assert response.status_code == 401
    assert IN_ADDRESS not in response.text and "alone" not in response.text


def test_a_grid_worker_sees_the_household_of_a_resident_in_the_grid(client: TestClient, scene: Scene) -> None:
    # given a grid worker over G1, where the household lives
    response = client.get(
        f"/api/households/{scene.households['in']}", headers=scene.world.token(Role.grid_worker)
    )
    # then the household comes with how its people live (the grid worker's living field group)
    assert response.status_code == 200
    body = response.json()
    assert body["address"] == IN_ADDRESS
    assert body["living_arrangement"] == "alone" and body["member_count"] == 1
    # and the read is audited against the member it relied on
    assert "allowed" in _household_audit(scene.world.database, scene.world.residents["in_given"])


def test_a_volunteer_gets_the_address_but_not_how_the_elder_lives(client: TestClient, scene: Scene) -> None:
    # given a volunteer paired with the elder (contact and care services, not the living group)
    response = client.get(
        f"/api/households/{scene.households['in']}", headers=scene.world.token(Role.volunteer)
    )
    # then the address comes, the living arrangement and the household's size do not
    assert response.status_code == 200
    body = response.json()
    assert body["address"] == IN_ADDRESS
    assert body.get("living_arrangement") is None and body.get("member_count") is None
    assert "alone" not in response.text


@pytest.mark.parametrize("role", [Role.district_admin, Role.grid_worker, Role.volunteer, Role.family_doctor])
def test_a_household_out_of_scope_is_refused_and_audited(
    client: TestClient, scene: Scene, role: Role
) -> None:
    # given a household in S2, where none of these roles reaches
    resident_id = scene.world.residents["out_given"]
    # when they ask for it
    response = client.get(f"/api/households/{scene.households['out']}", headers=scene.world.token(role))
    # then it is refused as an out-of-scope resident is, with nothing of the household in the answer
    assert response.status_code == 403
    assert response.json()["code"] == "access.scope"
    assert OUT_ADDRESS not in response.text and "alone" not in response.text
    # and the refusal is audited, the allowed read never happened
    outcomes = _household_audit(scene.world.database, resident_id)
    assert "denied" in outcomes and "allowed" not in outcomes


def test_a_household_with_no_member_in_sight_is_refused(client: TestClient, scene: Scene) -> None:
    # given a household nobody lives in any more
    response = client.get(
        f"/api/households/{scene.households['empty']}", headers=scene.world.token(Role.district_admin)
    )
    # then there is no member to be seen through, so it is refused like any other
    assert response.status_code == 403 and EMPTY_ADDRESS not in response.text
    assert "denied" in _household_audit(scene.world.database, None)


def test_areas_need_sign_in(client: TestClient, scene: Scene) -> None:
    s1 = scene.world.areas["S1"]
    assert client.get(f"/api/areas/{s1}").status_code == 401
    assert client.get("/api/areas").status_code == 401


def test_an_area_tree_is_for_any_signed_in_user_but_its_resident_count_is_a_statistic(
    client: TestClient, scene: Scene
) -> None:
    s1 = scene.world.areas["S1"]
    # given a volunteer and a grid worker, who count nothing for statistics
    for role in (Role.volunteer, Role.grid_worker):
        response = client.get(f"/api/areas/{s1}", headers=scene.world.token(role))
        # then they get the tree without the count
        assert response.status_code == 200
        body = response.json()
        assert body["code"] == "S1" and [c["code"] for c in body["children"]] == ["C1"]
        assert "resident_count" not in body
    # given a health officer over S1, who counts identity for statistics
    officer = client.get(f"/api/areas/{s1}", headers=scene.world.token(Role.health_officer)).json()
    # then the count holds the residents the officer may count: both in S1 gave (then withdrew) consent
    assert officer["resident_count"] == 1  # in_given; in_withdrawn denied statistics too


def test_a_resident_count_counts_only_residents_the_reader_may_count(
    client: TestClient, scene: Scene
) -> None:
    # given a health officer over S1 asking about S2 and the whole district
    officer = scene.world.token(Role.health_officer)
    s2 = client.get(f"/api/areas/{scene.world.areas['S2']}", headers=officer).json()
    district = client.get(f"/api/areas/{scene.world.areas['D']}", headers=officer).json()
    # then residents outside the officer's area are not counted
    assert s2["resident_count"] == 0 and district["resident_count"] == 1


def test_a_resident_who_volunteers_sees_a_paired_elders_household_as_a_volunteer(
    client: TestClient, scene: Scene
) -> None:
    from tests.signed_in import bearer_for
    from yiyang.access import service
    from yiyang.access.models import RelationshipKind, ResidentRelationship
    from yiyang.db import utcnow

    # given a resident (whose own role shows every group of their own record) who also volunteers,
    # paired with the elder of household "in"
    world = scene.world
    with world.database.unit_of_work() as session:
        person = service.create_user(
            session, "resident_volunteer", resident_id=world.residents["out_withdrawn"]
        )
        service.grant_role(session, person, Role.resident)
        service.grant_role(session, person, Role.volunteer)
        session.add(ResidentRelationship(
            resident_id=world.residents["in_given"], kind=RelationshipKind.pairing, user_id=person.id,
            valid_from=utcnow(), source_type="test", source_id=1,
        ))  # fmt: skip
        person_id = person.id
    # when they open that household
    response = client.get(
        f"/api/households/{scene.households['in']}", headers=bearer_for(world.database, person_id)
    )
    # then they see it as a volunteer does: the address, but not how its people live
    assert response.status_code == 200, response.text
    assert "living_arrangement" not in response.json() and "member_count" not in response.json()


def test_a_glass_opened_on_any_member_opens_the_household(client: TestClient, scene: Scene) -> None:
    # given a household of two residents outside the doctor's contracts, and the doctor breaking
    # the glass on the second of them (not the first, by id)
    world = scene.world
    first, second = world.residents["out_given"], world.residents["out_withdrawn"]
    assert first < second
    with world.database.unit_of_work() as session:
        session.get_one(Resident, second).household_id = scene.households["out"]
    doctor = world.token(Role.family_doctor)
    reason = "夜间跌倒呼救，签约医生联系不上 (night fall call, contracted doctor unreachable)"
    opened = client.post(f"/api/residents/{second}/break-glass", json={"reason": reason}, headers=doctor)
    assert opened.status_code == 201, opened.text
    # when the doctor opens the household
    response = client.get(f"/api/households/{scene.households['out']}", headers=doctor)
    # then it comes through that opening, audited as break_glass against that member alone
    assert response.status_code == 200, response.text
    assert response.json()["address"] == OUT_ADDRESS
    with world.database.unit_of_work() as session:
        rows = session.execute(
            select(AuditEvent.resident_id, AuditEvent.action).where(AuditEvent.resource_type == "household")
        ).all()
    assert [(rid, str(getattr(a, "value", a))) for rid, a in rows] == [(second, "break_glass")]

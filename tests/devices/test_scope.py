"""Device registry routes show a device bound to a resident only to those who may see that resident.

Which device sits in whose home is identity data of the resident it is bound to (a BP or glucose
meter hints at a diagnosis), so an area-scoped district administrator sees the devices of the
residents in the grant's area subtree and the devices bound to no one, not the rest of the
deployment. The scene is ``tests/access/world.py``: the administrator holds street S1.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from tests.access.world import World, build_world
from tests.signed_in import bearer_for
from yiyang.access import service as access
from yiyang.access.models import AuditEvent
from yiyang.access.roles import Role
from yiyang.app import create_app
from yiyang.db import Database, utcnow
from yiyang.devices import service
from yiyang.devices.models import Device, DeviceBinding, DeviceKind, DeviceState


@dataclass
class Scene:
    world: World
    devices: dict[str, int]
    everywhere: dict[str, str]  # a district administrator without an area: the whole deployment


@pytest.fixture
def scene(db: Database) -> Scene:
    world = build_world(db)
    now = utcnow()
    devices: dict[str, int] = {}
    with db.unit_of_work() as session:
        # registered first, so a page filtered after the query would come back short
        for uid, kind, holder in (
            ("BP-OUT", DeviceKind.bp_meter, "out_given"),
            ("GLU-OUT", DeviceKind.glucose_meter, "out_withdrawn"),
            ("BP-IN", DeviceKind.bp_meter, "in_given"),
            ("SPARE", DeviceKind.wearable, None),
        ):
            device, _secret = service.register_device(session, uid, kind, now=now)
            devices[uid] = device.id
            if holder is not None:
                service.bind_device(session, device.id, resident_id=world.residents[holder], valid_from=now)
        user = access.create_user(session, "admin-everywhere")
        access.grant_role(session, user, Role.district_admin)
        everywhere_id = user.id
    return Scene(world, devices, bearer_for(db, everywhere_id))


@pytest.fixture
def client(scene: Scene) -> Iterator[TestClient]:
    with TestClient(create_app(scene.world.database)) as test_client:
        yield test_client


def _audit(database: Database, resident_id: int) -> list[tuple[str, str]]:
    with database.unit_of_work() as session:
        rows = session.execute(
            select(AuditEvent.outcome, AuditEvent.resource_type).where(AuditEvent.resident_id == resident_id)
        ).all()
        return [(str(getattr(outcome, "value", outcome)), what) for outcome, what in rows]


def test_an_area_scoped_administrator_lists_only_devices_of_residents_in_the_area(
    client: TestClient, scene: Scene
) -> None:
    # given an administrator over street S1, and meters bound to residents in S1 and in S2
    admin = scene.world.token(Role.district_admin)
    # when the administrator lists the devices
    response = client.get("/api/devices", headers=admin)
    # then only the meter of the S1 resident and the unbound device are listed
    assert response.status_code == 200
    listed = {device["uid"] for device in response.json()}
    assert listed == {"BP-IN", "SPARE"}
    out_of_area = {scene.world.residents["out_given"], scene.world.residents["out_withdrawn"]}
    assert not any(d["binding"] and d["binding"]["resident_id"] in out_of_area for d in response.json())


def test_the_page_is_cut_in_the_query_so_a_short_page_means_nothing_more(
    client: TestClient, scene: Scene
) -> None:
    # given devices of S2 residents registered before the S1 one
    admin = scene.world.token(Role.district_admin)
    # when the administrator asks for pages of one
    first = client.get("/api/devices", params={"limit": 1}, headers=admin).json()
    second = client.get("/api/devices", params={"limit": 1, "offset": 1}, headers=admin).json()
    third = client.get("/api/devices", params={"limit": 1, "offset": 2}, headers=admin).json()
    # then the pages hold what is visible, in order, and nothing hidden counts toward them
    assert [d["uid"] for d in first + second] == ["BP-IN", "SPARE"] and third == []


def test_a_filter_by_kind_still_hides_out_of_area_meters(client: TestClient, scene: Scene) -> None:
    admin = scene.world.token(Role.district_admin)
    meters = client.get("/api/devices", params={"kind": "bp_meter"}, headers=admin).json()
    assert [d["uid"] for d in meters] == ["BP-IN"]
    assert client.get("/api/devices", params={"kind": "glucose_meter"}, headers=admin).json() == []


def test_an_area_scoped_administrator_is_refused_a_device_of_a_resident_elsewhere(
    client: TestClient, scene: Scene
) -> None:
    # given a BP meter bound to a resident in S2
    admin = scene.world.token(Role.district_admin)
    resident_id = scene.world.residents["out_given"]
    # when the S1 administrator asks for it
    response = client.get(f"/api/devices/{scene.devices['BP-OUT']}", headers=admin)
    # then it is refused without the device, and the attempt is audited as denied
    assert response.status_code == 403
    assert response.json()["code"] == "access.scope"
    assert "BP-OUT" not in response.text
    assert ("denied", "device") in _audit(scene.world.database, resident_id)
    assert ("allowed", "device") not in _audit(scene.world.database, resident_id)


def test_an_area_scoped_administrator_reads_devices_in_the_area_and_unbound_ones(
    client: TestClient, scene: Scene
) -> None:
    admin = scene.world.token(Role.district_admin)
    inside = client.get(f"/api/devices/{scene.devices['BP-IN']}", headers=admin)
    assert inside.status_code == 200
    assert inside.json()["binding"]["resident_id"] == scene.world.residents["in_given"]
    assert ("allowed", "device") in _audit(scene.world.database, scene.world.residents["in_given"])
    assert client.get(f"/api/devices/{scene.devices['SPARE']}", headers=admin).status_code == 200


def test_an_area_scoped_administrator_cannot_retire_a_device_of_a_resident_elsewhere(
    client: TestClient, scene: Scene
) -> None:
    admin = scene.world.token(Role.district_admin)
    response = client.post(f"/api/devices/{scene.devices['BP-OUT']}/retire", headers=admin)
    assert response.status_code == 403
    # and nothing changed: the device is active and still bound
    with scene.world.database.unit_of_work() as session:
        assert session.get_one(Device, scene.devices["BP-OUT"]).state == DeviceState.active
        open_bindings = session.scalar(
            select(func.count())
            .select_from(DeviceBinding)
            .where(DeviceBinding.device_id == scene.devices["BP-OUT"], DeviceBinding.valid_to.is_(None))
        )
        assert open_bindings == 1


def test_an_administrator_without_an_area_still_sees_the_whole_deployment(
    client: TestClient, scene: Scene
) -> None:
    listed = client.get("/api/devices", headers=scene.everywhere).json()
    # the withdrawn resident's consent refuses the health class (district administrators' class)
    assert {d["uid"] for d in listed} == {"BP-OUT", "BP-IN", "SPARE"}
    assert client.get(f"/api/devices/{scene.devices['BP-OUT']}", headers=scene.everywhere).status_code == 200


def test_other_staff_still_may_not_manage_devices(client: TestClient, scene: Scene) -> None:
    nurse = scene.world.token(Role.nurse)
    response = client.get("/api/devices", headers=nurse)
    assert response.status_code == 403 and response.json()["code"] == "device.forbidden"
    assert client.get("/api/devices").status_code == 401

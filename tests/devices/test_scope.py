"""Device registry routes show a device bound to a resident only to those who may see that resident.

Which device sits in whose home is identity data of the resident it is bound to (a BP or glucose
meter hints at a diagnosis), so an area-scoped district administrator sees the devices of the
residents in the grant's area subtree and the devices bound to no one, not the rest of the
deployment. A device bound to a household answers as the household does (``GET
/api/households/{id}``): only through a current member the reader may see. The scene is
``tests/access/world.py``: the administrator holds street S1.
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
from yiyang.access.actor import system_actor
from yiyang.access.models import AuditEvent
from yiyang.access.roles import Role
from yiyang.app import create_app
from yiyang.db import Database, utcnow
from yiyang.deps import MAX_ID
from yiyang.devices import service
from yiyang.devices.models import Device, DeviceBinding, DeviceKind, DeviceState
from yiyang.geo.models import Area
from yiyang.geo.service import HouseholdCache, household_for
from yiyang.residents.models import Resident

OUT_ADDRESS = "幸福街8号1单元101室"


@dataclass
class Scene:
    world: World
    devices: dict[str, int]
    everywhere: dict[str, str]  # a district administrator without an area: the whole deployment
    households: dict[str, int]
    bindings: dict[str, int]  # device uid -> its binding in force


@pytest.fixture
def scene(db: Database) -> Scene:
    world = build_world(db)
    now = utcnow()
    devices: dict[str, int] = {}
    bindings: dict[str, int] = {}
    with db.unit_of_work() as session:
        area = {a.code: a.id for a in session.scalars(select(Area))}
        cache = HouseholdCache()
        households = {
            "in": household_for(session, "建设路12号3栋2单元401室", area["C1"], area["G1"], cache),
            "out": household_for(session, OUT_ADDRESS, area["C2"], area["G2"], cache),
            # in S1, but nobody lives there any more: no member to be seen through
            "empty": household_for(session, "建设路14号", area["C1"], area["G1"], cache),
        }
        # in_withdrawn's consent hides them from the administrator; in_given is enough
        for key, household in (("in_given", "in"), ("in_withdrawn", "in"), ("out_given", "out")):
            session.get_one(Resident, world.residents[key]).household_id = households[household]
        # registered first, so a page filtered after the query would come back short
        for uid, kind, holder in (
            ("DOOR-OUT", DeviceKind.door_sensor, ("household", "out")),
            ("SMOKE-EMPTY", DeviceKind.smoke_sensor, ("household", "empty")),
            ("BP-OUT", DeviceKind.bp_meter, ("resident", "out_given")),
            ("GLU-OUT", DeviceKind.glucose_meter, ("resident", "out_withdrawn")),
            ("BP-IN", DeviceKind.bp_meter, ("resident", "in_given")),
            ("GAS-IN", DeviceKind.gas_sensor, ("household", "in")),
            ("SPARE", DeviceKind.wearable, None),
        ):
            device, _secret = service.register_device(session, uid, kind, now=now)
            devices[uid] = device.id
            if holder is None:
                continue
            whom, key = holder
            held = (
                {"resident_id": world.residents[key]}
                if whom == "resident"
                else {"household_id": households[key]}
            )
            bindings[uid] = service.bind_device(session, device.id, valid_from=now, **held).id
        user = access.create_user(session, "admin-everywhere")
        access.grant_role(session, user, Role.district_admin)
        everywhere_id = user.id
    return Scene(world, devices, bearer_for(db, everywhere_id), households, bindings)


@pytest.fixture
def client(scene: Scene) -> Iterator[TestClient]:
    with TestClient(create_app(scene.world.database)) as test_client:
        yield test_client


def _audit(database: Database, resident_id: int | None) -> list[tuple[str, str]]:
    whose = AuditEvent.resident_id.is_(None) if resident_id is None else AuditEvent.resident_id == resident_id
    with database.unit_of_work() as session:
        rows = session.execute(select(AuditEvent.outcome, AuditEvent.resource_type).where(whose)).all()
        return [(str(getattr(outcome, "value", outcome)), what) for outcome, what in rows]


def test_an_area_scoped_administrator_lists_only_devices_of_residents_in_the_area(
    client: TestClient, scene: Scene
) -> None:
    # given an administrator over street S1, and meters bound to residents in S1 and in S2
    admin = scene.world.token(Role.district_admin)
    # when the administrator lists the devices
    response = client.get("/api/devices", headers=admin)
    # then only the meter of the S1 resident, the sensor of the S1 household, the sensor left in
    # the S1 household nobody lives in and the unbound device are listed: not those of S2
    assert response.status_code == 200
    listed = {device["uid"] for device in response.json()}
    assert listed == {"BP-IN", "GAS-IN", "SMOKE-EMPTY", "SPARE"}
    out_of_area = {scene.world.residents["out_given"], scene.world.residents["out_withdrawn"]}
    assert not any(d["binding"] and d["binding"]["resident_id"] in out_of_area for d in response.json())
    hidden = {scene.households["out"]}
    assert not any(d["binding"] and d["binding"]["household_id"] in hidden for d in response.json())


def test_the_page_is_cut_in_the_query_so_a_short_page_means_nothing_more(
    client: TestClient, scene: Scene
) -> None:
    # given devices of S2 residents registered before the S1 one
    admin = scene.world.token(Role.district_admin)
    # when the administrator asks for pages of one
    first = client.get("/api/devices", params={"limit": 1}, headers=admin).json()
    second = client.get("/api/devices", params={"limit": 1, "offset": 1}, headers=admin).json()
    third = client.get("/api/devices", params={"limit": 1, "offset": 2}, headers=admin).json()
    fourth = client.get("/api/devices", params={"limit": 1, "offset": 3}, headers=admin).json()
    fifth = client.get("/api/devices", params={"limit": 1, "offset": 4}, headers=admin).json()
    # then the pages hold what is visible, in order, and nothing hidden counts toward them
    shown = [d["uid"] for d in first + second + third + fourth]
    assert shown == ["SMOKE-EMPTY", "BP-IN", "GAS-IN", "SPARE"] and fifth == []


def test_a_filter_by_kind_still_hides_out_of_area_meters(client: TestClient, scene: Scene) -> None:
    admin = scene.world.token(Role.district_admin)
    meters = client.get("/api/devices", params={"kind": "bp_meter"}, headers=admin).json()
    assert [d["uid"] for d in meters] == ["BP-IN"]
    assert client.get("/api/devices", params={"kind": "glucose_meter"}, headers=admin).json() == []
    assert client.get("/api/devices", params={"kind": "door_sensor"}, headers=admin).json() == []
    smoke = client.get("/api/devices", params={"kind": "smoke_sensor"}, headers=admin).json()
    assert [d["uid"] for d in smoke] == ["SMOKE-EMPTY"]  # left in an S1 household nobody lives in
    gas = client.get("/api/devices", params={"kind": "gas_sensor"}, headers=admin).json()
    assert [d["uid"] for d in gas] == ["GAS-IN"]


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
    assert {d["uid"] for d in listed} == {"DOOR-OUT", "SMOKE-EMPTY", "BP-OUT", "BP-IN", "GAS-IN", "SPARE"}
    assert client.get(f"/api/devices/{scene.devices['BP-OUT']}", headers=scene.everywhere).status_code == 200
    assert (
        client.get(f"/api/devices/{scene.devices['DOOR-OUT']}", headers=scene.everywhere).status_code == 200
    )


def test_other_staff_still_may_not_manage_devices(client: TestClient, scene: Scene) -> None:
    nurse = scene.world.token(Role.nurse)
    response = client.get("/api/devices", headers=nurse)
    assert response.status_code == 403 and response.json()["code"] == "device.forbidden"
    assert client.get("/api/devices").status_code == 401


# ---- devices bound to a household -----------------------------------------------------------


def test_a_device_in_a_household_elsewhere_is_refused_and_audited(client: TestClient, scene: Scene) -> None:
    # given a door sensor bound to a household in S2, whose member the S1 administrator may not see
    admin = scene.world.token(Role.district_admin)
    member = scene.world.residents["out_given"]
    # when the administrator asks for it
    response = client.get(f"/api/devices/{scene.devices['DOOR-OUT']}", headers=admin)
    # then it is refused as the household itself is, with nothing of the device in the answer
    assert response.status_code == 403
    assert response.json()["code"] == "access.scope"
    assert "DOOR-OUT" not in response.text
    # and the refusal is audited against the member, the allowed read never happened
    assert ("denied", "device") in _audit(scene.world.database, member)
    assert ("allowed", "device") not in _audit(scene.world.database, member)


def test_a_device_in_a_household_in_the_area_is_read_through_the_member_in_sight(
    client: TestClient, scene: Scene
) -> None:
    # given a gas sensor in an S1 household of two, one of whom withdrew consent
    admin = scene.world.token(Role.district_admin)
    # when the administrator asks for it
    response = client.get(f"/api/devices/{scene.devices['GAS-IN']}", headers=admin)
    # then it comes, and the read is audited against the member it relied on, not the other one
    assert response.status_code == 200
    assert response.json()["binding"]["household_id"] == scene.households["in"]
    assert ("allowed", "device") in _audit(scene.world.database, scene.world.residents["in_given"])
    assert ("allowed", "device") not in _audit(scene.world.database, scene.world.residents["in_withdrawn"])


@pytest.mark.parametrize("everywhere", [False, True], ids=["s1-admin", "admin-everywhere"])
def test_a_device_in_a_household_nobody_lives_in_answers_to_the_administrators_over_it(
    client: TestClient, scene: Scene, everywhere: bool
) -> None:
    # given a smoke sensor left in an S1 household with no current member (the elder moved out)
    admin = scene.everywhere if everywhere else scene.world.token(Role.district_admin)
    device = scene.devices["SMOKE-EMPTY"]
    # when an administrator over S1 (or over everything) asks for it, or for the household's devices
    read = client.get(f"/api/devices/{device}", headers=admin)
    listed = client.get("/api/devices", params={"household_id": scene.households["empty"]}, headers=admin)
    # then both answer: the address is nobody's data now, and the device must still be retrievable
    assert read.status_code == 200 and read.json()["uid"] == "SMOKE-EMPTY"
    assert listed.status_code == 200 and [d["uid"] for d in listed.json()] == ["SMOKE-EMPTY"]
    # audited with no resident
    assert ("allowed", "device") in _audit(scene.world.database, None)
    # and it can be retired
    assert client.post(f"/api/devices/{device}/retire", headers=admin).status_code == 200


def test_a_device_in_a_household_nobody_lives_in_is_refused_to_administrators_elsewhere(
    client: TestClient, scene: Scene
) -> None:
    # given an administrator over street S2 only, and the sensor left in the empty S1 household
    with scene.world.database.unit_of_work() as session:
        s2 = session.scalar(select(Area.id).where(Area.code == "S2"))
        user = access.create_user(session, "admin-s2")
        access.grant_role(session, user, Role.district_admin, area_id=s2)
        user_id = user.id
    admin = bearer_for(scene.world.database, user_id)
    # when they ask for it, or for the household's devices, or list the devices
    read = client.get(f"/api/devices/{scene.devices['SMOKE-EMPTY']}", headers=admin)
    listed = client.get("/api/devices", params={"household_id": scene.households["empty"]}, headers=admin)
    everything = client.get("/api/devices", headers=admin)
    # then it is refused as out of scope, audited, and not listed
    for response in (read, listed):
        assert response.status_code == 403 and response.json()["code"] == "access.scope"
        assert "SMOKE-EMPTY" not in response.text
    assert "SMOKE-EMPTY" not in {d["uid"] for d in everything.json()}
    assert ("denied", "device") in _audit(scene.world.database, None)


def test_filtering_by_a_household_answers_only_through_a_member_in_sight(
    client: TestClient, scene: Scene
) -> None:
    admin = scene.world.token(Role.district_admin)
    # when the S1 administrator filters by the S2 household
    out = client.get("/api/devices", params={"household_id": scene.households["out"]}, headers=admin)
    # then it is refused, not answered with an empty list, and audited as denied
    assert out.status_code == 403 and out.json()["code"] == "access.scope"
    assert "DOOR-OUT" not in out.text
    assert ("denied", "device") in _audit(scene.world.database, scene.world.residents["out_given"])
    # when they filter by the S1 household, they get its sensor, audited
    inside = client.get("/api/devices", params={"household_id": scene.households["in"]}, headers=admin)
    assert inside.status_code == 200 and [d["uid"] for d in inside.json()] == ["GAS-IN"]
    assert ("allowed", "device") in _audit(scene.world.database, scene.world.residents["in_given"])
    # and a household that does not exist is not found, as the households API answers
    missing = client.get("/api/devices", params={"household_id": MAX_ID}, headers=admin)
    assert missing.status_code == 404 and missing.json()["code"] == "geo.household.not_found"


def _state(database: Database) -> dict[str, object]:
    """What a refused change must leave as it was: states, secrets and bindings of every device."""
    with database.unit_of_work() as session:
        devices = session.scalars(select(Device).order_by(Device.id)).all()
        rows = session.execute(
            select(DeviceBinding.device_id, DeviceBinding.household_id, DeviceBinding.valid_to)
        ).all()
        return {
            "devices": [(d.uid, d.state, d.secret_hash) for d in devices],
            "bindings": sorted((row.device_id, row.household_id or 0, row.valid_to is None) for row in rows),
        }


@pytest.mark.parametrize(
    "method, path, body",
    [
        ("post", "/api/devices/{DOOR-OUT}/retire", None),
        ("post", "/api/devices/{DOOR-OUT}/secret", None),
        ("post", "/api/devices/{BP-OUT}/secret", None),
        ("get", "/api/devices/{DOOR-OUT}/bindings", None),
        ("post", "/api/devices/{DOOR-OUT}/bindings/{binding:DOOR-OUT}/end", {}),
        ("post", "/api/devices/{SPARE}/bindings", {"household_id": "out"}),
    ],
    ids=[
        "retire",
        "rotate-secret",
        "rotate-secret-resident",
        "bindings",
        "end-binding",
        "bind",
    ],
)
def test_an_area_scoped_administrator_cannot_touch_a_placement_out_of_sight(
    client: TestClient, scene: Scene, method: str, path: str, body: dict[str, str] | None
) -> None:
    # given an administrator over S1 and a device placed with a household (or resident) they do not see
    admin = scene.world.token(Role.district_admin)
    before = _state(scene.world.database)
    url = path.replace("{binding:DOOR-OUT}", str(scene.bindings["DOOR-OUT"]))
    for uid, device_id in scene.devices.items():
        url = url.replace("{" + uid + "}", str(device_id))
    payload = {key: scene.households[value] for key, value in body.items()} if body is not None else None
    # when they act on it
    response = client.request(method, url, json=payload, headers=admin)
    # then it is refused and nothing changed: no retirement, no new secret, no binding made or ended
    assert response.status_code == 403, response.text
    assert response.json()["code"] == "access.scope"
    assert "secret" not in response.json() and OUT_ADDRESS not in response.text
    assert _state(scene.world.database) == before


def test_an_area_scoped_administrator_manages_placements_in_the_area(
    client: TestClient, scene: Scene
) -> None:
    admin = scene.world.token(Role.district_admin)
    gas, spare = scene.devices["GAS-IN"], scene.devices["SPARE"]
    # the bindings of the S1 household's sensor, a new secret for it and for the unbound device
    assert client.get(f"/api/devices/{gas}/bindings", headers=admin).status_code == 200
    assert client.post(f"/api/devices/{gas}/secret", headers=admin).status_code == 200
    assert client.post(f"/api/devices/{spare}/secret", headers=admin).status_code == 200
    # placing the spare device with the S1 household, and ending that placement
    bound = client.post(
        f"/api/devices/{spare}/bindings", json={"household_id": scene.households["in"]}, headers=admin
    )
    assert bound.status_code == 201, bound.text
    ended = client.post(f"/api/devices/{spare}/bindings/{bound.json()['id']}/end", json={}, headers=admin)
    assert ended.status_code == 200 and ended.json()["valid_to"] is not None
    # each audited against the member in sight
    outcomes = _audit(scene.world.database, scene.world.residents["in_given"])
    assert {("allowed", "device_binding"), ("allowed", "device")} <= set(outcomes)


def test_jobs_and_commands_are_not_scoped_by_households(scene: Scene) -> None:
    # given a system actor (a timed job or a command), which is audited but not scoped
    job = system_actor("test-devices")
    with scene.world.database.unit_of_work() as session:
        # then a household nobody lives in is no refusal, and an inhabited one is audited per member
        assert (
            service.authorize_household(session, job, scene.households["empty"], what="device", now=utcnow())
            == []
        )
        assert service.authorize_household(
            session, job, scene.households["out"], what="device", now=utcnow()
        ) == [scene.world.residents["out_given"]]
        # and its lists hide nothing
        listed = service.list_devices(session, visible=service.device_scope(session, job, utcnow()))
        assert {d.uid for d in listed} == set(scene.devices)
    assert ("allowed", "device") in _audit(scene.world.database, scene.world.residents["out_given"])

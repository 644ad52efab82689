"""Device API: the registry for administrators, and telemetry upload for gateways."""

from __future__ import annotations

import base64
import datetime as dt
import json
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from yiyang.access import service as access
from yiyang.access.actor import CredentialKind
from yiyang.access.roles import Role
from yiyang.app import create_app
from yiyang.db import Database, utcnow
from yiyang.devices.models import Device, Telemetry, TelemetryQuarantine


def bearer(database: Database, username: str, role: Role | None) -> dict[str, str]:
    with database.unit_of_work() as session:
        user = access.create_user(session, username, password="correct-horse-battery")
        if role is not None:
            access.grant_role(session, user, role)
        issued = access.issue_credential(
            session, user, CredentialKind.bearer, dt.timedelta(hours=1), utcnow()
        )
    return {"Authorization": f"Bearer {issued.secret}"}


def basic(uid: str, secret: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{uid}:{secret}".encode()).decode()}


@pytest.fixture
def client(sqlite_db: Database) -> Iterator[TestClient]:
    with TestClient(create_app(sqlite_db)) as test_client:
        yield test_client


@pytest.fixture
def admin(sqlite_db: Database) -> dict[str, str]:
    return bearer(sqlite_db, "admin1", Role.district_admin)


def test_an_administrator_registers_a_device_and_gets_its_secret_once(
    client: TestClient, admin: dict[str, str]
) -> None:
    response = client.post(
        "/api/devices", json={"uid": "MAT-0001", "kind": "mattress", "model": "M1"}, headers=admin
    )
    assert response.status_code == 201
    body = response.json()
    assert body["uid"] == "MAT-0001" and body["online"] is False and body["binding"] is None
    assert len(body["secret"]) >= 40
    read = client.get(f"/api/devices/{body['id']}", headers=admin).json()
    assert "secret" not in read


def test_staff_without_the_admin_role_cannot_register_devices(
    client: TestClient, sqlite_db: Database
) -> None:
    nurse = bearer(sqlite_db, "nurse1", Role.nurse)
    response = client.post("/api/devices", json={"uid": "WB-1", "kind": "wearable"}, headers=nurse)
    assert response.status_code == 403
    assert response.json()["code"] == "device.forbidden"
    assert client.post("/api/devices", json={"uid": "WB-1", "kind": "wearable"}).status_code == 401
    with sqlite_db.unit_of_work() as session:
        assert session.scalar(select(func.count()).select_from(Device)) == 0


def register(
    client: TestClient, admin: dict[str, str], uid: str = "BP-0001", kind: str = "bp_meter"
) -> tuple[int, str]:
    body = client.post("/api/devices", json={"uid": uid, "kind": kind}, headers=admin).json()
    return body["id"], body["secret"]


def test_a_gateway_uploads_a_batch_and_a_resend_stores_nothing_twice(
    client: TestClient, admin: dict[str, str], sqlite_db: Database
) -> None:
    device_id, secret = register(client, admin)
    now = utcnow()
    messages = [
        {
            "seq": 1,
            "time": (now - dt.timedelta(hours=2)).isoformat(),
            "readings": {"85354-9": [142, 91], "8867-4": 77},
        },
        {
            "seq": 2,
            "time": (now - dt.timedelta(hours=1)).isoformat(),
            "readings": {"85354-9": [138, 88]},
            "battery": 64,
        },
        {"seq": 3, "time": now.isoformat(), "readings": {"85354-9": [400, 88]}},
    ]
    # when the gateway posts the meter's buffered readings
    first = client.post("/api/telemetry", json={"messages": messages}, headers=basic("BP-0001", secret))
    # then the two good ones are stored and the impossible one is refused with its reason
    assert first.status_code == 200
    assert first.json()["stored"] == 2 and first.json()["duplicates"] == 0
    assert [(r["index"], r["code"]) for r in first.json()["rejected"]] == [(2, "reading.out_of_range")]
    # when it resends the same batch (it never saw our answer)
    again = client.post("/api/telemetry", json={"messages": messages}, headers=basic("BP-0001", secret))
    assert again.json()["stored"] == 0 and again.json()["duplicates"] == 2
    with sqlite_db.unit_of_work() as session:
        assert session.scalar(select(func.count()).select_from(Telemetry)) == 2
        assert session.scalar(select(func.count()).select_from(TelemetryQuarantine)) == 2
        assert session.scalar(select(TelemetryQuarantine.source)) == "http"
    # and the registry shows the meter's status
    read = client.get(f"/api/devices/{device_id}", headers=admin).json()
    assert read["battery"] == 64 and read["online"] is True and read["last_seen_at"] is not None


@pytest.mark.parametrize("time", ["9999-12-31T23:00:00-05:00", "0001-01-01T00:00:00+14:00"])
def test_a_time_outside_the_calendar_in_utc_is_rejected_and_the_rest_of_the_batch_stored(
    client: TestClient, admin: dict[str, str], sqlite_db: Database, time: str
) -> None:
    # given a meter whose batch holds one message stamped at a time UTC cannot hold
    _, secret = register(client, admin)
    now = utcnow()
    messages = [
        {"seq": 1, "time": (now - dt.timedelta(hours=1)).isoformat(), "readings": {"8867-4": 70}},
        {"seq": 2, "time": time, "readings": {"8867-4": 71}},
        {"seq": 3, "time": now.isoformat(), "readings": {"8867-4": 72}},
    ]
    # when the gateway posts it
    response = client.post("/api/telemetry", json={"messages": messages}, headers=basic("BP-0001", secret))
    # then that one message is refused for its time, as any bad message is, and the others kept
    assert response.status_code == 200, response.text
    assert response.json()["stored"] == 2
    assert [(r["index"], r["code"]) for r in response.json()["rejected"]] == [(1, "time.format")]
    with sqlite_db.unit_of_work() as session:
        assert session.scalar(select(func.count()).select_from(Telemetry)) == 2


def test_an_event_detail_the_store_cannot_write_is_rejected_and_the_rest_of_the_batch_stored(
    client: TestClient, admin: dict[str, str], sqlite_db: Database
) -> None:
    # given a terminal whose gateway sends events with details JSON allows but no store can write
    _, secret = register(client, admin, "TERM-1", "terminal")
    now = utcnow().isoformat()
    messages = [
        {"seq": 1, "time": now, "event": "sos", "detail": {"button": 10**30}},
        {"seq": 2, "time": now, "event": "sos", "detail": {"note": "\ud800"}},
        {"seq": 3, "time": now, "event": "sos"},
    ]
    # when the gateway posts them (a lone surrogate travels as its JSON escape)
    response = client.post(
        "/api/telemetry",
        content=json.dumps({"messages": messages}),
        headers={**basic("TERM-1", secret), "Content-Type": "application/json"},
    )
    # then the two are refused with their reason, as any bad item is, and the good one is stored
    assert response.status_code == 200, response.text
    assert response.json()["stored"] == 1
    assert [(r["index"], r["code"]) for r in response.json()["rejected"]] == [
        (0, "detail.invalid"),
        (1, "detail.invalid"),
    ]
    with sqlite_db.unit_of_work() as session:
        assert session.scalar(select(func.count()).select_from(TelemetryQuarantine)) == 2


def test_an_item_that_is_not_an_object_is_rejected_alone_and_the_rest_stored(
    client: TestClient, admin: dict[str, str], sqlite_db: Database
) -> None:
    # given a gateway batch in which two items are not JSON objects
    _, secret = register(client, admin)
    now = utcnow().isoformat()
    messages = [{"seq": 1, "time": now, "readings": {"8867-4": 70}}, 5, [1, 2], {"online": True}]
    # when it is posted
    response = client.post("/api/telemetry", json={"messages": messages}, headers=basic("BP-0001", secret))
    # then those two are refused with their reason and the reading and the status are kept
    assert response.status_code == 200, response.text
    assert (response.json()["stored"], response.json()["statuses"]) == (1, 1)
    assert [(r["index"], r["code"]) for r in response.json()["rejected"]] == [
        (1, "payload.not_object"),
        (2, "payload.not_object"),
    ]
    with sqlite_db.unit_of_work() as session:
        assert session.scalar(select(func.count()).select_from(Telemetry)) == 1
        assert session.scalar(select(func.count()).select_from(TelemetryQuarantine)) == 2


def test_wrong_device_credentials_store_nothing(
    client: TestClient, admin: dict[str, str], sqlite_db: Database
) -> None:
    register(client, admin)
    batch = {"messages": [{"seq": 1, "time": utcnow().isoformat(), "readings": {"8867-4": 70}}]}
    for headers in ({}, basic("BP-0001", "guess"), basic("nobody", "guess"), admin):
        response = client.post("/api/telemetry", json=batch, headers=headers)
        assert response.status_code == 401
        assert response.json()["code"] == "device.auth"
    with sqlite_db.unit_of_work() as session:
        assert session.scalar(select(func.count()).select_from(Telemetry)) == 0


def test_events_and_status_travel_in_the_same_upload(
    client: TestClient, admin: dict[str, str], sqlite_db: Database
) -> None:
    device_id, old_secret = register(client, admin, "TERM-1", "terminal")
    secret = client.post(f"/api/devices/{device_id}/secret", headers=admin).json()["secret"]
    assert (
        client.post(
            "/api/telemetry", json={"messages": [{"online": True}]}, headers=basic("TERM-1", old_secret)
        ).status_code
        == 401
    )
    now = utcnow().isoformat()
    batch = {
        "messages": [
            {"seq": 9, "time": now, "event": "sos"},
            {"online": True, "battery": 90},
            {"seq": 10, "time": now, "event": "sos", "readings": {"8867-4": 70}},
        ]
    }
    body = client.post("/api/telemetry", json=batch, headers=basic("TERM-1", secret)).json()
    assert (body["stored"], body["statuses"]) == (1, 1)
    assert [r["code"] for r in body["rejected"]] == ["payload.channel"]


def test_binding_through_the_api(client: TestClient, admin: dict[str, str], sqlite_db: Database) -> None:
    from yiyang.residents.models import Resident

    with sqlite_db.unit_of_work() as session:
        resident = Resident(name="赵淑珍", name_pinyin="zhao shu zhen", sex="F")
        session.add(resident)
        session.flush()
        resident_id = resident.id
    device_id, _ = register(client, admin, "RAD-1", "radar")
    start = "2026-11-01T00:00:00+08:00"
    created = client.post(
        f"/api/devices/{device_id}/bindings",
        json={"resident_id": resident_id, "valid_from": start},
        headers=admin,
    )
    assert created.status_code == 201
    clash = client.post(
        f"/api/devices/{device_id}/bindings",
        json={"resident_id": resident_id, "valid_from": start},
        headers=admin,
    )
    assert clash.status_code == 409 and clash.json()["code"] == "device.binding.overlap"
    naive = client.post(
        f"/api/devices/{device_id}/bindings",
        json={"resident_id": resident_id, "valid_from": "2026-12-01T00:00:00"},
        headers=admin,
    )
    assert naive.status_code == 422
    listed = client.get("/api/devices", params={"resident_id": resident_id}, headers=admin).json()
    assert [d["uid"] for d in listed] == ["RAD-1"] and listed[0]["binding"]["resident_id"] == resident_id


def test_listing_devices_reads_their_bindings_in_one_query_not_one_each(
    client: TestClient, admin: dict[str, str], sqlite_db: Database
) -> None:
    from sqlalchemy import event

    from yiyang.devices import service
    from yiyang.devices.models import DeviceKind
    from yiyang.residents.models import Resident

    # given forty radars, each placed with its own resident
    with sqlite_db.unit_of_work() as session:
        for n in range(40):
            resident = Resident(name=f"居民{n}", name_pinyin=f"ju min {n}", sex="F")
            session.add(resident)
            device, _ = service.register_device(session, f"RAD-{n}", DeviceKind.radar)
            session.flush()
            service.bind_device(
                session, device.id, resident_id=resident.id, valid_from=utcnow() - dt.timedelta(days=1)
            )
    statements: list[str] = []

    def seen(*execution: object) -> None:  # connection, cursor, statement, ...
        statements.append(str(execution[2]))

    # when an administrator lists them
    event.listen(sqlite_db.engine, "before_cursor_execute", seen)
    try:
        listing = client.get("/api/devices", params={"limit": 100}, headers=admin)
    finally:
        event.remove(sqlite_db.engine, "before_cursor_execute", seen)
    # then each comes with its binding, and the bindings were read with the page, not per device
    assert listing.status_code == 200
    assert len(listing.json()) == 40 and all(d["binding"] is not None for d in listing.json())
    assert len(statements) < 20, len(statements)

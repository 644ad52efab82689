"""Alert API and pages: scoped reads, acknowledge and resolve with CSRF, the inbox, overrides."""

from __future__ import annotations

import base64
import datetime as dt
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from tests.alerts.conftest import Scene, build_scene
from yiyang.access import service as access
from yiyang.access.models import AuditEvent
from yiyang.access.roles import Role
from yiyang.alerts.channels import RecordingGateway
from yiyang.alerts.models import Alert, AlertRuleOverride
from yiyang.app import create_app
from yiyang.db import Database, utcnow
from yiyang.devices import service as devices
from yiyang.devices.models import Device


@pytest.fixture
def scene(sqlite_db: Database, gateway: RecordingGateway) -> Scene:
    return build_scene(sqlite_db, gateway)


@pytest.fixture
def client(sqlite_db: Database, scene: Scene) -> Iterator[TestClient]:
    with TestClient(create_app(sqlite_db)) as test_client:
        yield test_client


def sign_in(client: TestClient, db: Database, username: str, role: Role | None = None) -> dict[str, str]:
    """A cookie session (the web) for a user; returns the CSRF header to send with unsafe calls."""
    with db.unit_of_work() as session:
        user = access.find_user(session, username) or access.create_user(session, username)
        access.set_password(session, user, "correct-horse-battery")
        if role is not None:
            access.grant_role(session, user, role)
    body = client.post(
        "/api/auth/login", json={"username": username, "password": "correct-horse-battery", "client": "web"}
    ).json()
    return {"X-CSRF-Token": body["csrf_token"]}


def upload_fall(client: TestClient, db: Database, scene: Scene) -> int:
    with db.unit_of_work() as session:
        device = session.get(Device, scene.radar_id)
        secret = devices.rotate_secret(session, device.id)[1]
    auth = base64.b64encode(f"RADAR-1:{secret}".encode()).decode()
    now = utcnow()
    response = client.post(
        "/api/telemetry",
        json={"messages": [{"seq": 1, "time": now.isoformat(), "event": "fall"}]},
        headers={"Authorization": f"Basic {auth}"},
    )
    assert response.status_code == 200, response.text
    with db.unit_of_work() as session:
        return session.scalar(select(Alert.id))


def test_a_gateway_fall_becomes_an_alert_a_doctor_acknowledges_and_resolves(
    client: TestClient, sqlite_db: Database, scene: Scene
) -> None:
    csrf = sign_in(client, sqlite_db, "doctor1")
    alert_id = upload_fall(client, sqlite_db, scene)
    detail = client.get(f"/api/alerts/{alert_id}").json()
    assert detail["kind"] == "fall" and detail["state"] == "open"
    page = client.get(f"/alerts/{alert_id}").text
    assert "跌倒" in page and "<svg" in page and "X-CSRF-Token" in page and csrf["X-CSRF-Token"] in page
    # without the CSRF token a cookie session cannot change anything
    refused = client.post(f"/api/alerts/{alert_id}/acknowledge", json={})
    assert refused.status_code == 403 and refused.json()["code"] == "auth.csrf"
    assert client.get(f"/api/alerts/{alert_id}").json()["state"] == "open"
    acknowledged = client.post(
        f"/api/alerts/{alert_id}/acknowledge", json={"note": "on my way"}, headers=csrf
    ).json()
    assert acknowledged["state"] == "acknowledged" and acknowledged["next_escalation_at"] is None
    resolved = client.post(
        f"/api/alerts/{alert_id}/resolve", json={"outcome": "handled"}, headers=csrf
    ).json()
    assert resolved["state"] == "resolved" and [t["to_state"] for t in resolved["transitions"]] == [
        "open",
        "acknowledged",
        "resolved",
    ]
    again = client.post(f"/api/alerts/{alert_id}/resolve", json={"outcome": "handled"}, headers=csrf)
    assert again.status_code == 409 and again.json()["code"] == "alert.resolved"
    # the pages render
    assert "<svg" in client.get(f"/alerts/{alert_id}").text
    assert client.get("/alerts?state=resolved").status_code == 200
    assert f"/alerts/{alert_id}" in client.get(f"/alerts?state=resolved&resident_id={scene.resident_id}").text


def test_the_grid_worker_finds_the_fall_in_the_inbox_and_the_page(
    client: TestClient, sqlite_db: Database, scene: Scene
) -> None:
    alert_id = upload_fall(client, sqlite_db, scene)
    csrf = sign_in(client, sqlite_db, "grid1")
    (item,) = client.get("/api/inbox").json()
    assert item["alert_id"] == alert_id and "跌倒" in item["title_zh"] and item["read_at"] is None
    assert client.post(f"/api/inbox/{item['id']}/read", headers=csrf).json()["read_at"] is not None
    # someone else's message is not found for this user
    assert client.post("/api/inbox/2147483647/read", headers=csrf).status_code == 404
    page = client.get("/inbox")
    assert page.status_code == 200 and f"/alerts/{alert_id}" in page.text and "EventSource" in page.text
    assert client.get("/api/inbox").status_code == 200
    assert client.get("/alerts/2147483647").status_code == 404


def test_the_grid_worker_the_fall_was_sent_to_may_open_and_acknowledge_it_and_no_one_else_of_that_role(
    client: TestClient, sqlite_db: Database, scene: Scene
) -> None:
    # given a fall whose first escalation step addressed the grid worker of the elder's grid
    alert_id = upload_fall(client, sqlite_db, scene)
    # when another grid worker, of no grid the elder lives in, asks for it: refused
    sign_in(client, sqlite_db, "grid.other")
    assert client.get(f"/api/alerts/{alert_id}").status_code == 403
    # when the addressed grid worker opens and acknowledges it: allowed, and audited as a responder
    csrf = sign_in(client, sqlite_db, "grid1")
    assert client.get(f"/api/alerts/{alert_id}").json()["kind"] == "fall"
    assert client.get(f"/alerts/{alert_id}").status_code == 200
    acknowledged = client.post(f"/api/alerts/{alert_id}/acknowledge", json={"note": "到了"}, headers=csrf)
    assert acknowledged.json()["state"] == "acknowledged"
    with sqlite_db.unit_of_work() as session:
        reasons = session.scalars(
            select(AuditEvent.reason).where(
                AuditEvent.resource_type == "alert", AuditEvent.user_id == scene.grid_worker
            )
        ).all()
    assert reasons and set(reasons) == {"escalation recipient"}


def test_the_administrator_changes_tier_rules_the_team_a_residents_and_a_bad_override_is_a_4xx(
    client: TestClient, sqlite_db: Database, scene: Scene
) -> None:
    body = {
        "scope": "resident",
        "resident_id": scene.resident_id,
        "rule": "bp_urgent",
        "params": {"when": [["8480-6", ">=", 170]]},
    }
    tier = {"scope": "tier", "tier": "red", "rule": "spo2_low", "params": {"when": [["59408-5", "<=", 88]]}}
    # a nurse of no team changes neither a tier's rules nor the resident's
    nurse = sign_in(client, sqlite_db, "nurse9", Role.nurse)
    assert client.post("/api/alert-rules/overrides", json=tier, headers=nurse).status_code == 403
    assert client.post("/api/alert-rules/overrides", json=body, headers=nurse).status_code == 403
    # the administrator changes a tier's rules, but not one resident's (a clinical decision)
    admin = sign_in(client, sqlite_db, "admin9", Role.district_admin)
    assert client.post("/api/alert-rules/overrides", json=tier, headers=admin).status_code == 201
    refused = client.post("/api/alert-rules/overrides", json=body, headers=admin)
    assert refused.status_code == 403 and refused.json()["code"] == "alert_rule.forbidden"
    # the resident's contracted family doctor changes hers; a bad override is a 4xx
    doctor = sign_in(client, sqlite_db, "doctor1")
    created = client.post("/api/alert-rules/overrides", json=body, headers=doctor)
    assert created.status_code == 201, created.text
    bad = client.post(
        "/api/alert-rules/overrides", json={**body, "params": {"when": [["8480-6", "~", 1]]}}, headers=doctor
    )
    assert bad.status_code == 422 and bad.json()["code"] == "alert_rule.invalid"
    # the text "false" is no flag: refused, rather than read as true (which left the rule on)
    off = {**body, "rule": "fall", "params": {"enabled": "false"}}
    not_a_flag = client.post("/api/alert-rules/overrides", json=off, headers=doctor)
    assert not_a_flag.status_code == 422 and not_a_flag.json()["code"] == "alert_rule.invalid"
    # the doctor reads the resident's effective rules, and lists both overrides
    rules = client.get(f"/api/residents/{scene.resident_id}/alert-rules")
    assert rules.status_code == 200, rules.text
    assert next(r for r in rules.json() if r["code"] == "bp_urgent")["when"] == [["8480-6", ">=", 170.0]]
    assert [o["scope"] for o in client.get("/api/alert-rules/overrides").json()] == ["tier", "resident"]
    # the administrator lists the tier override only, and may not remove the resident's
    sign_in(client, sqlite_db, "admin9")
    assert [o["scope"] for o in client.get("/api/alert-rules/overrides").json()] == ["tier"]
    removal = client.delete(f"/api/alert-rules/overrides/{created.json()['id']}", headers=admin)
    assert removal.status_code == 403
    with sqlite_db.unit_of_work() as session:
        assert len(list(session.scalars(select(AlertRuleOverride)))) == 2


def test_unsigned_requests_are_refused(client: TestClient) -> None:
    assert client.get("/api/alerts").status_code == 401
    page = client.get("/alerts", follow_redirects=False)  # a page sends the reader to sign in
    assert page.status_code == 303 and page.headers["location"] == "/login?next=/alerts"


def test_the_inbox_stream_pushes_new_items_as_server_sent_events(
    client: TestClient, sqlite_db: Database, scene: Scene, monkeypatch: pytest.MonkeyPatch
) -> None:
    from yiyang.alerts import api

    monkeypatch.setattr(api, "STREAM_LIFETIME_S", 0.1)  # one pass, then the stream ends
    monkeypatch.setattr(api, "STREAM_POLL_S", 0.05)
    alert_id = upload_fall(client, sqlite_db, scene)
    sign_in(client, sqlite_db, "grid1")
    with client.stream("GET", "/api/inbox/stream") as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        body = "".join(response.iter_text())
    assert "event: inbox" in body and f'"alert_id":{alert_id}' in body


def test_the_alert_page_charts_the_residents_readings_around_the_event(
    client: TestClient, sqlite_db: Database, scene: Scene
) -> None:
    with sqlite_db.unit_of_work() as session:
        secret = devices.rotate_secret(session, scene.wearable_id)[1]
    auth = {"Authorization": "Basic " + base64.b64encode(f"WB-1:{secret}".encode()).decode()}
    now = utcnow()
    readings = [
        {
            "seq": n,
            "time": (now - dt.timedelta(minutes=30 - n)).isoformat(),
            "readings": {"8867-4": 70 + n, "59408-5": 97},
        }
        for n in range(5)
    ]
    assert client.post("/api/telemetry", json={"messages": readings}, headers=auth).status_code == 200
    alert_id = upload_fall(client, sqlite_db, scene)
    sign_in(client, sqlite_db, "doctor1")
    page = client.get(f"/alerts/{alert_id}?lang=en").text
    assert page.count("<polyline") == 2 and "heart rate" in page

"""A responder's rights last as long as the relationship that made them a recipient.

An inbox item is not a standing grant: the daughter whose authorisation or family_member role was
revoked, the grid worker whose role was revoked and a deactivated account are no longer chosen by
the chain, so they neither open, acknowledge nor resolve the alert, nor see it in the inbox, nor
get its SMS.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from tests.alerts.conftest import T0, Scene, build_scene
from tests.alerts.test_alerts import event, send
from tests.alerts.test_api import sign_in, upload_fall
from yiyang.access import service as access
from yiyang.access.models import AuditEvent, ResidentAuthorisation, RoleMembership, User
from yiyang.access.roles import Role
from yiyang.alerts import service
from yiyang.alerts.channels import RecordingGateway
from yiyang.alerts.engine import AlertRules, delivery_job, escalation_job
from yiyang.alerts.models import Alert, AlertDelivery, AlertState, InboxItem
from yiyang.alerts.rules import Target
from yiyang.app import create_app
from yiyang.db import Database, utcnow


@pytest.fixture
def scene(db: Database, gateway: RecordingGateway) -> Scene:
    return build_scene(db, gateway)


@pytest.fixture
def client(db: Database, scene: Scene) -> Iterator[TestClient]:
    with TestClient(create_app(db)) as test_client:
        yield test_client


def revoke_daughter(db: Database, scene: Scene, now: dt.datetime) -> None:
    with db.unit_of_work() as session:
        (authorisation_id,) = session.scalars(
            select(ResidentAuthorisation.id).where(ResidentAuthorisation.grantee_id == scene.daughter)
        ).all()
        access.revoke_authorisation(session, authorisation_id, now)


def revoke_grid_role(db: Database, scene: Scene, now: dt.datetime) -> None:
    with db.unit_of_work() as session:
        (membership_id,) = session.scalars(
            select(RoleMembership.id).where(RoleMembership.user_id == scene.grid_worker)
        ).all()
        access.revoke_role(session, membership_id, now)


def revoke_family_role(db: Database, scene: Scene, now: dt.datetime) -> None:
    """The daughter's family_member role is revoked; her authorisation row is left as it was."""
    with db.unit_of_work() as session:
        (membership_id,) = session.scalars(
            select(RoleMembership.id).where(
                RoleMembership.user_id == scene.daughter, RoleMembership.role == Role.family_member
            )
        ).all()
        access.revoke_role(session, membership_id, now)


REVOKE = {"daughter": revoke_daughter, "family_role": revoke_family_role, "grid_worker": revoke_grid_role}


def the_alert(db: Database, alert_id: int) -> Alert:
    with db.unit_of_work() as session:
        alert = session.get(Alert, alert_id)
        session.expunge(alert)
        return alert


def inbox_users(db: Database, alert_id: int) -> set[int]:
    with db.unit_of_work() as session:
        return set(session.scalars(select(InboxItem.user_id).where(InboxItem.alert_id == alert_id)))


@pytest.mark.parametrize("who", ["daughter", "family_role", "grid_worker"])
def test_a_revoked_responder_may_neither_open_nor_acknowledge_and_the_doctor_is_still_called(
    client: TestClient, db: Database, scene: Scene, who: str
) -> None:
    # given a fall whose first step reached the daughter and the grid worker (inbox and SMS)
    alert_id = upload_fall(client, db, scene)
    assert {scene.daughter, scene.grid_worker} <= inbox_users(db, alert_id)
    username = "grid1" if who == "grid_worker" else "daughter1"
    csrf = sign_in(client, db, username)
    assert client.get(f"/api/alerts/{alert_id}").status_code == 200  # while the relationship holds
    assert [item["alert_id"] for item in client.get("/api/inbox").json()] == [alert_id]
    # and then the daughter's authorisation or family_member role (or the grid worker's role) is revoked
    REVOKE[who](db, scene, utcnow())
    # when the former responder reads the inbox, opens, acknowledges and resolves the alert
    assert client.get("/api/inbox").json() == []
    read = client.get(f"/api/alerts/{alert_id}")
    page = client.get(f"/alerts/{alert_id}")
    acknowledged = client.post(f"/api/alerts/{alert_id}/acknowledge", json={"note": "ok"}, headers=csrf)
    resolved = client.post(f"/api/alerts/{alert_id}/resolve", json={"outcome": "handled"}, headers=csrf)
    # then every one is refused, and nothing about the alert is returned
    assert [r.status_code for r in (read, page, acknowledged, resolved)] == [403, 403, 403, 403]
    assert "kind" not in read.json() and "transitions" not in acknowledged.json()
    # and the alert is still unacknowledged, so the escalation at +5 minutes reaches the doctor
    alert = the_alert(db, alert_id)
    assert alert.state == AlertState.open and alert.acknowledged_at is None
    assert escalation_job(db, alert.raised_at + dt.timedelta(minutes=5))["steps"] == 1
    assert scene.doctor in inbox_users(db, alert_id)
    assert the_alert(db, alert_id).state == AlertState.escalated
    # and the refusals are audited as denied
    with db.unit_of_work() as session:
        user_id = scene.grid_worker if who == "grid_worker" else scene.daughter
        outcomes = session.scalars(
            select(AuditEvent.outcome).where(
                AuditEvent.user_id == user_id, AuditEvent.resource_type == "alert"
            )
        ).all()
    assert "denied" in outcomes


def test_after_revocation_the_inbox_is_empty_and_an_inbox_read_is_audited(
    client: TestClient, db: Database, scene: Scene, monkeypatch: pytest.MonkeyPatch
) -> None:
    from yiyang.alerts import api

    # given a fall in the grid worker's inbox
    alert_id = upload_fall(client, db, scene)
    sign_in(client, db, "grid1")
    # when the grid worker reads the inbox
    (item,) = client.get("/api/inbox").json()
    # then the item is listed and the read is audited, naming the resident the item is about
    assert item["alert_id"] == alert_id
    with db.unit_of_work() as session:
        rows = session.scalars(
            select(AuditEvent).where(
                AuditEvent.user_id == scene.grid_worker, AuditEvent.resource_type == "inbox"
            )
        ).all()
        assert [(r.resident_id, r.action, r.field_group, r.outcome) for r in rows] == [
            (scene.resident_id, "read", "sensor", "allowed")
        ]
    assert client.get("/inbox").status_code == 200
    with db.unit_of_work() as session:
        count = len(
            session.scalars(
                select(AuditEvent.id).where(
                    AuditEvent.user_id == scene.grid_worker, AuditEvent.resource_type == "inbox"
                )
            ).all()
        )
    assert count == 2  # the page's read too
    # when the grid worker's role is revoked
    revoke_grid_role(db, scene, utcnow())
    # then the inbox, the page and the live stream no longer hold the alert
    assert client.get("/api/inbox").json() == []
    assert f"/alerts/{alert_id}" not in client.get("/inbox").text
    monkeypatch.setattr(api, "STREAM_LIFETIME_S", 0.1)
    monkeypatch.setattr(api, "STREAM_POLL_S", 0.05)
    with client.stream("GET", "/api/inbox/stream") as response:
        body = "".join(response.iter_text())
    assert "event: inbox" not in body
    # and marking it read is not found
    csrf = sign_in(client, db, "grid1")
    assert client.post(f"/api/inbox/{item['id']}/read", headers=csrf).status_code == 404


def test_the_inbox_stream_ends_once_the_session_is_signed_out(
    client: TestClient, db: Database, scene: Scene, monkeypatch: pytest.MonkeyPatch
) -> None:
    from yiyang.alerts import api

    # given the grid worker's live inbox, set to run for 20 seconds
    monkeypatch.setattr(api, "STREAM_LIFETIME_S", 20.0)
    monkeypatch.setattr(api, "STREAM_POLL_S", 0.05)
    alert_id = upload_fall(client, db, scene)
    sign_in(client, db, "grid1")
    session_in_force = service.session_in_force
    polls: list[int] = []

    def signed_out_after_the_first_poll(session: Any, credential_id: int | None, now: dt.datetime) -> bool:
        polls.append(1)
        if len(polls) == 2:  # the user signs out everywhere between the first poll and the second
            with db.unit_of_work() as other:
                access.revoke_all_credentials(other, scene.grid_worker, utcnow())
        return session_in_force(session, credential_id, now)

    monkeypatch.setattr(service, "session_in_force", signed_out_after_the_first_poll)
    # when the session is revoked once the stream has pushed the fall
    started = time.monotonic()
    with client.stream("GET", "/api/inbox/stream") as response:
        body = "".join(response.iter_text())
    # then the stream pushed the item while the session held, and ended at the next poll
    assert len(polls) == 2
    assert f'"alert_id":{alert_id}' in body
    assert time.monotonic() - started < 10


def test_a_deactivated_account_gets_no_sms_and_no_inbox_item(db: Database, scene: Scene) -> None:
    # given the daughter's account deactivated
    with db.unit_of_work() as session:
        session.get(User, scene.daughter).active = False
    # when a fall is raised and the delivery job runs
    send(db, AlertRules(clock=lambda: T0), scene.radar_id, [event(1, T0, "fall")], T0)
    delivery_job(db, T0)
    # then only the grid worker is told: no SMS, no inbox item, no delivery for the daughter
    assert [n.user_id for n in scene.gateway.sent] == [scene.grid_worker]
    with db.unit_of_work() as session:
        assert set(session.scalars(select(InboxItem.user_id))) == {scene.grid_worker}
        assert scene.daughter not in set(session.scalars(select(AlertDelivery.user_id)))


@pytest.mark.parametrize("who", ["daughter", "family_role"])
def test_a_retry_skips_a_recipient_who_no_longer_qualifies_and_says_why(
    db: Database, scene: Scene, who: str
) -> None:
    # given a fall whose SMS to the grid worker and the daughter both fail at first
    scene.gateway.fail_next = 2
    send(db, AlertRules(clock=lambda: T0), scene.radar_id, [event(1, T0, "fall")], T0)
    assert delivery_job(db, T0) == {"sent": 0, "failed": 2, "gave_up": 0}
    # and the daughter's authorisation (or her family_member role) is revoked before the retry
    REVOKE[who](db, scene, T0 + dt.timedelta(seconds=30))
    # when the retry is due
    delivery_job(db, T0 + dt.timedelta(minutes=1))
    # then the grid worker gets the SMS, the daughter does not, and her delivery says why
    assert [n.user_id for n in scene.gateway.sent] == [scene.grid_worker]
    with db.unit_of_work() as session:
        (hers,) = session.scalars(
            select(AlertDelivery).where(
                AlertDelivery.user_id == scene.daughter, AlertDelivery.channel == "sms"
            )
        ).all()
        assert (hers.status, hers.last_error, hers.next_attempt_at) == (
            "gave_up",
            service.NO_LONGER_RECIPIENT,
            None,
        )


def test_a_family_member_without_the_role_is_not_chosen_for_a_new_alert(db: Database, scene: Scene) -> None:
    # given the daughter's family_member role revoked, her authorisation still in force
    revoke_family_role(db, scene, T0 - dt.timedelta(minutes=1))
    # when a fall is raised and the delivery job runs
    send(db, AlertRules(clock=lambda: T0), scene.radar_id, [event(1, T0, "fall")], T0)
    delivery_job(db, T0)
    # then she is not a recipient: no inbox item, no delivery, no SMS; the grid worker is told
    assert [n.user_id for n in scene.gateway.sent] == [scene.grid_worker]
    with db.unit_of_work() as session:
        assert service.recipients(session, scene.resident_id, Target.family, T0) == []
        assert set(session.scalars(select(InboxItem.user_id))) == {scene.grid_worker}
        assert scene.daughter not in set(session.scalars(select(AlertDelivery.user_id)))


def test_a_deactivated_responder_is_refused_at_the_service(db: Database, scene: Scene) -> None:
    from yiyang.access.actor import Actor
    from yiyang.errors import Forbidden

    # given a fall that reached the grid worker, whose account is then deactivated
    send(db, AlertRules(clock=lambda: T0), scene.radar_id, [event(1, T0, "fall")], T0)
    with db.unit_of_work() as session:
        session.get(User, scene.grid_worker).active = False
    # when a check for the grid worker runs (a request already under way, a stream)
    with db.unit_of_work() as session:
        alert = session.scalar(select(Alert))
        actor = Actor(user_id=scene.grid_worker, username="grid1")
        # then the inbox item no longer entitles them
        with pytest.raises(Forbidden):
            service.authorize_alert(session, actor, alert, action="update", now=T0 + dt.timedelta(minutes=1))
        assert service.inbox_of(session, scene.grid_worker, now=T0 + dt.timedelta(minutes=1)) == []

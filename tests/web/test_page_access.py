"""The staff pages decide access as the API does: registry pages by the registry role, a resident
named only after an identity check, sign-in redirects and refusal pages, and no 500 on bad input."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from yiyang.access import service as access
from yiyang.access.actor import system_actor
from yiyang.access.consent import record_consent
from yiyang.access.consent_models import ConsentDecision
from yiyang.access.models import AuditEvent, RelationshipKind, ResidentRelationship, User
from yiyang.access.policy import DataCategory, Purpose, RecipientClass
from yiyang.access.roles import Role
from yiyang.alerts.models import Alert, AlertState
from yiyang.app import create_app
from yiyang.assessments.models import Assessment
from yiyang.db import Database, utcnow
from yiyang.residents.models import Feed, LinkMethod, LinkReview, SourceRecord

from ..access.world import World, build_world
from ..signed_in import bearer_for


@pytest.fixture
def world(sqlite_db: Database) -> World:
    return build_world(sqlite_db)


@pytest.fixture
def client(world: World) -> Iterator[TestClient]:
    with TestClient(create_app(world.database)) as client:
        yield client


def audit_rows(database: Database, **where: str) -> list[AuditEvent]:
    with database.unit_of_work() as session:
        query = select(AuditEvent).where(*(getattr(AuditEvent, k) == v for k, v in where.items()))
        rows = list(session.scalars(query.order_by(AuditEvent.id)))
        session.expunge_all()
        return rows


def add_source_record(database: Database, resident_id: int, key: str) -> None:
    with database.unit_of_work() as session:
        session.add(SourceRecord(
            feed=Feed.health, source_key=key, resident_id=resident_id, observed_at=utcnow(),
            content_hash="x" * 32, payload={}, link_method=LinkMethod.id_number,
        ))  # fmt: skip


# -- 1. the profile's source records and history: the registry role decides --------------------


def test_profile_page_hides_sources_from_a_doctor_who_keeps_the_registry_of_another_street(
    world: World, client: TestClient
) -> None:
    # given a family doctor of T1 (contracted with in_given, in S1) who also administers S2
    db, rid = world.database, world.residents["in_given"]
    with db.unit_of_work() as session:
        doctor = session.get(User, world.users[Role.family_doctor.value])
        access.grant_role(session, doctor, Role.district_admin, area_id=world.areas["S2"])
    add_source_record(db, rid, "SRC-WEB-1")
    headers = bearer_for(db, world.users[Role.family_doctor.value])
    # when the doctor reads the resident's sources through the API and the profile page
    api = client.get(f"/api/residents/{rid}/sources", headers=headers)
    page = client.get(f"/residents/{rid}", headers=headers)
    # then the API refuses, and the page shows the profile without the registry's records
    assert api.status_code == 403
    assert page.status_code == 200 and "测试0" in page.text
    assert "SRC-WEB-1" not in page.text and "原始记录" not in page.text
    assert not audit_rows(db, resource_type="source_record", outcome="allowed")


def test_profile_page_shows_sources_to_the_keeper_of_the_residents_street(
    world: World, client: TestClient
) -> None:
    # given the administrator over S1, where in_given lives
    db, rid = world.database, world.residents["in_given"]
    add_source_record(db, rid, "SRC-WEB-2")
    # when they open the profile
    page = client.get(f"/residents/{rid}", headers=world.headers[Role.district_admin.value])
    # then the source records are shown, and their read is audited as the API's is
    assert page.status_code == 200 and "SRC-WEB-2" in page.text
    (row,) = audit_rows(db, resource_type="source_record", outcome="allowed")
    assert row.resident_id == rid and row.user_id == world.users[Role.district_admin.value]


# -- 2. the link review queue: filtered by the registry role -------------------------------------


def _review_outside_the_officers_area(world: World) -> None:
    """out_given (S2) paired with the S1 civil-affairs officer as a volunteer, and a review
    between out_given and in_given."""
    db, other, inside = world.database, world.residents["out_given"], world.residents["in_given"]
    with db.unit_of_work() as session:
        officer = session.get(User, world.users[Role.civil_affairs_officer.value])
        access.grant_role(session, officer, Role.volunteer)
        session.add(ResidentRelationship(
            resident_id=other, kind=RelationshipKind.pairing, user_id=officer.id,
            valid_from=utcnow() - dt.timedelta(days=30), source_type="test", source_id=officer.id,
        ))  # fmt: skip
        record = SourceRecord(
            feed=Feed.health, source_key="SRC-REVIEW", resident_id=other, observed_at=utcnow(),
            content_hash="y" * 32, payload={}, link_method=LinkMethod.id_number,
        )  # fmt: skip
        session.add(record)
        session.flush()
        session.add(LinkReview(
            resident_id=other, candidate_id=inside, source_record_id=record.id, score=0.7, comparison={}
        ))  # fmt: skip


def test_review_queue_leaves_out_a_resident_the_keeper_sees_only_as_a_volunteer(
    world: World, client: TestClient
) -> None:
    # given an S1 officer who volunteers with out_given (S2), and a review naming out_given
    _review_outside_the_officers_area(world)
    headers = bearer_for(world.database, world.users[Role.civil_affairs_officer.value])
    # when the officer opens the review queue, on the page and through the API
    page = client.get("/reviews", headers=headers)
    api = client.get("/api/link-reviews", headers=headers)
    # then the review is in neither: out_given's birth date and the pair stay hidden
    assert page.status_code == 200 and "1945-01-03" not in page.text and "测试2" not in page.text
    assert api.status_code == 200 and api.json()["total"] == 0


def test_review_queue_shows_the_pair_to_a_keeper_whose_area_holds_both(
    world: World, client: TestClient
) -> None:
    # given the same review, and an administrator of the whole deployment
    _review_outside_the_officers_area(world)
    with world.database.unit_of_work() as session:
        admin = access.create_user(session, "admin-everywhere")
        access.grant_role(session, admin, Role.district_admin)
        admin_id = admin.id
    headers = bearer_for(world.database, admin_id)
    # when they open the queue, then the pair is there
    page = client.get("/reviews", headers=headers)
    assert page.status_code == 200 and "1945-01-03" in page.text and "测试2" in page.text
    assert client.get("/api/link-reviews", headers=headers).json()["total"] == 1


# -- 3. the assessment form names the resident only after an identity check -------------------


def _deny_identity_to_the_health_side(world: World) -> int:
    rid = world.residents["in_given"]
    with world.database.unit_of_work() as session:
        record_consent(
            session, system_actor("test"), rid, category=DataCategory.identity,
            recipient_class=RecipientClass.health, purpose=Purpose.care,
            decision=ConsentDecision.deny, now=utcnow() - dt.timedelta(hours=1),
        )  # fmt: skip
    return rid


@pytest.mark.parametrize("query", ["", "?instrument=gbt42195"])
def test_assessment_form_does_not_name_a_resident_whose_identity_is_refused(
    world: World, client: TestClient, query: str
) -> None:
    # given her team's nurse (who records assessments), for whom in_given refused identity but not
    # clinical data
    rid = _deny_identity_to_the_health_side(world)
    headers = world.headers[Role.nurse.value]
    assert client.get(f"/api/residents/{rid}", headers=headers).status_code == 403
    # when they open the assessment form
    page = client.get(f"/residents/{rid}/assessments/new{query}", headers=headers)
    # then the form is there, naming the resident by number only
    assert page.status_code == 200
    assert "测试0" not in page.text and f"#{rid}" in page.text


def test_assessment_form_with_errors_does_not_name_a_resident_whose_identity_is_refused(
    world: World, client: TestClient
) -> None:
    rid = _deny_identity_to_the_health_side(world)
    # when her team's nurse posts the form without its time
    page = client.post(
        f"/residents/{rid}/assessments/new?instrument=gbt42195", data={"assessor": "王"},
        headers=world.headers[Role.nurse.value],
    )  # fmt: skip
    # then the form comes back with the error, naming the resident by number only
    assert page.status_code == 422 and "评估时间" in page.text
    assert "测试0" not in page.text and f"#{rid}" in page.text


def test_assessment_form_names_the_resident_for_a_reader_of_identity(
    world: World, client: TestClient
) -> None:
    rid = world.residents["in_given"]
    page = client.get(f"/residents/{rid}/assessments/new", headers=world.headers[Role.family_doctor.value])
    assert page.status_code == 200 and "测试0" in page.text


# -- 4. alert and access-log pages: sign-in redirect and refusal page -------------------------


def _alert_outside_scope(world: World) -> int:
    now = utcnow()
    with world.database.unit_of_work() as session:
        alert = Alert(
            resident_id=world.residents["out_given"], kind="fall", rule_kind="simple", severity="high",
            state=AlertState.open, raised_at=now, recorded_at=now, last_seen_at=now, chain="default",
        )  # fmt: skip
        session.add(alert)
        session.flush()
        return alert.id


@pytest.mark.parametrize("path", ["/alerts", "/alerts/1", "/inbox", "/my/access-log?resident_id=1"])
def test_signed_out_alert_and_access_log_pages_redirect_to_sign_in(client: TestClient, path: str) -> None:
    response = client.get(path, follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == f"/login?next={quote(path)}"


def test_refused_alert_is_the_refusal_page(world: World, client: TestClient) -> None:
    # given an alert about a resident outside the family doctor's care
    alert_id = _alert_outside_scope(world)
    # when the doctor opens it
    page = client.get(f"/alerts/{alert_id}", headers=world.headers[Role.family_doctor.value])
    # then the refusal page answers, nothing of the alert shown, and the refusal is audited
    assert page.status_code == 403 and page.headers["content-type"].startswith("text/html")
    assert "无权访问" in page.text and "fall" not in page.text
    assert audit_rows(world.database, resource_type="alert", outcome="denied")


def test_unknown_alert_is_the_not_found_page(world: World, client: TestClient) -> None:
    page = client.get("/alerts/2147483647", headers=world.headers[Role.family_doctor.value])
    assert page.status_code == 404 and page.headers["content-type"].startswith("text/html")


# -- 5. the assessment form's counts: ASCII digits only ----------------------------------------


@pytest.mark.parametrize("count", ["\u00b2", "\uff12", "-1", "two", "32", "9" * 5000])
def test_assessment_form_answers_a_bad_count_with_the_form(
    world: World, client: TestClient, count: str
) -> None:
    # given a doctor posting a care-risk event count that is not a plain number
    rid = world.residents["in_given"]
    page = client.post(
        f"/residents/{rid}/assessments/new?instrument=gbt42195",
        data={"assessed_at": "2026-01-01T10:00", "care_risk_events.fall": count},
        headers=world.headers[Role.family_doctor.value],
    )  # fmt: skip
    # then the form comes back with the problem named, and nothing is recorded
    assert page.status_code == 422 and "次数须为 0 至 31 的整数" in page.text
    with world.database.unit_of_work() as session:
        assert session.scalar(select(func.count()).select_from(Assessment)) == 0


# -- 6. the import-run page is audited like the API --------------------------------------------


def test_imports_page_is_audited_like_the_api(world: World, client: TestClient) -> None:
    db, headers = world.database, world.headers[Role.civil_affairs_officer.value]
    # when a keeper opens the import runs page
    assert client.get("/imports", headers=headers).status_code == 200
    # then the read is one audit row, as GET /api/import-runs writes
    (row,) = audit_rows(db, resource_type="import_run")
    assert (row.action, row.field_group, row.outcome) == ("read", "list", "allowed")
    assert row.user_id == world.users[Role.civil_affairs_officer.value]
    assert row.role == Role.civil_affairs_officer.value

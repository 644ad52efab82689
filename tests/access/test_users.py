"""Users, role memberships with their scope, and family members' authorisations."""

from __future__ import annotations

import datetime as dt

import pytest
from fastapi.testclient import TestClient

from tests.access.conftest import PASSWORD, FakeClock, Place
from yiyang.access import service
from yiyang.access.actor import CredentialKind
from yiyang.access.roles import ROLES, AreaScope, Audience, Role
from yiyang.db import Database
from yiyang.errors import Conflict, Invalid

NOW = dt.datetime(2026, 11, 24, 8, 0, tzinfo=dt.UTC)


def test_every_role_has_chinese_and_english_labels() -> None:
    assert set(ROLES) == set(Role)
    for info in ROLES.values():
        assert info.zh and info.en and info.label == f"{info.zh} ({info.en})"
    assert ROLES[Role.grid_worker].area_scope is AreaScope.required
    assert ROLES[Role.family_member].audience is Audience.public


def test_a_jurisdictional_role_needs_its_area(sqlite_db: Database, place: Place) -> None:
    with sqlite_db.unit_of_work() as session:
        user = service.create_user(session, "grid.wu", password=PASSWORD)
        with pytest.raises(Invalid) as missing:
            service.grant_role(session, user, Role.grid_worker)
        assert missing.value.code == "role.area.required"
        membership = service.grant_role(session, user, Role.grid_worker, area_id=place.grid_id)
        actor = service.load_actor(session, user.id, NOW)
    assert membership.area_id == place.grid_id
    [grant] = actor.grants
    assert (grant.role, grant.area_id, grant.organisation_id) == (Role.grid_worker, place.grid_id, None)


def test_a_staff_role_carries_its_organisation_and_a_revoked_one_is_gone(
    sqlite_db: Database, place: Place
) -> None:
    with sqlite_db.unit_of_work() as session:
        user = service.create_user(session, "doctor.zhao", password=PASSWORD)
        doctor = service.grant_role(session, user, Role.family_doctor, organisation_id=place.centre_id)
        service.grant_role(session, user, Role.health_manager, organisation_id=place.centre_id)
        service.revoke_role(session, doctor.id, NOW)
        actor = service.load_actor(session, user.id, NOW)
    assert actor.roles == {Role.health_manager}
    assert actor.grants[0].organisation_id == place.centre_id


def test_residents_hold_no_organisation_and_must_be_linked(sqlite_db: Database, place: Place) -> None:
    with sqlite_db.unit_of_work() as session:
        unlinked = service.create_user(session, "someone", password=PASSWORD)
        with pytest.raises(Invalid):
            service.grant_role(session, unlinked, Role.resident)
        resident = service.create_user(session, "wang.xy", password=PASSWORD, resident_id=place.resident_id)
        with pytest.raises(Invalid):
            service.grant_role(session, resident, Role.resident, organisation_id=place.centre_id)
        service.grant_role(session, resident, Role.resident)
        actor = service.load_actor(session, resident.id, NOW)
    assert actor.resident_id == place.resident_id and actor.roles == {Role.resident}


def test_user_names_are_unique_whatever_their_case(sqlite_db: Database) -> None:
    with sqlite_db.unit_of_work() as session:
        service.create_user(session, "Nurse.Li", password=PASSWORD)
        with pytest.raises(Conflict):
            service.create_user(session, "nurse.li ", password=PASSWORD)
        with pytest.raises(Invalid):
            service.create_user(session, "a b", password=PASSWORD)


def test_a_family_member_acts_only_while_authorised(sqlite_db: Database, place: Place) -> None:
    # given a daughter authorised for a year from tomorrow
    with sqlite_db.unit_of_work() as session:
        daughter = service.create_user(session, "daughter.liu", password=PASSWORD)
        service.grant_role(session, daughter, Role.family_member)
        authorisation = service.authorise_family_member(
            session, place.resident_id, daughter, "子女",
            valid_from=NOW + dt.timedelta(days=1), valid_until=NOW + dt.timedelta(days=366),
        )  # fmt: skip

    def acts_for(at: dt.datetime) -> tuple[int, ...]:
        with sqlite_db.unit_of_work() as session:
            return service.load_actor(session, daughter.id, at).acts_for

    # then she acts for her mother only inside the period, and not after revocation
    assert acts_for(NOW) == ()
    assert acts_for(NOW + dt.timedelta(days=2)) == (place.resident_id,)
    assert acts_for(NOW + dt.timedelta(days=367)) == ()
    with sqlite_db.unit_of_work() as session:
        service.revoke_authorisation(session, authorisation.id, NOW + dt.timedelta(days=3))
    assert acts_for(NOW + dt.timedelta(days=4)) == ()


def test_an_authorisation_must_end_after_it_starts(sqlite_db: Database, place: Place) -> None:
    with sqlite_db.unit_of_work() as session:
        daughter = service.create_user(session, "daughter.liu", password=PASSWORD)
        with pytest.raises(Invalid):
            service.authorise_family_member(
                session, place.resident_id, daughter, "子女", valid_from=NOW, valid_until=NOW
            )


def test_me_shows_roles_with_labels_and_who_a_family_member_acts_for(
    client: TestClient, sqlite_db: Database, place: Place, clock: FakeClock
) -> None:
    with sqlite_db.unit_of_work() as session:
        daughter = service.create_user(session, "daughter.liu", password=PASSWORD)
        service.grant_role(session, daughter, Role.family_member)
        service.authorise_family_member(session, place.resident_id, daughter, "子女", valid_from=clock.now)
    token = client.post("/api/auth/login", json={"username": "daughter.liu", "password": PASSWORD}).json()[
        "token"
    ]
    me = client.get("/api/auth/me", headers={"Authorization": f"Bearer {token}"}).json()
    assert me["acts_for"] == [place.resident_id]
    assert me["roles"][0] == {
        "role": "family_member", "label_zh": "家属", "label_en": "family member", "organisation_id": None, "area_id": None,
    }  # fmt: skip


def test_changing_a_password_signs_out_everywhere(sqlite_db: Database) -> None:
    with sqlite_db.unit_of_work() as session:
        user = service.create_user(session, "nurse.li", password=PASSWORD)
        issued = service.issue_credential(session, user, CredentialKind.bearer, dt.timedelta(hours=1), NOW)
        assert service.set_password(session, user, "a-new-password", NOW) == 1
        assert service.find_credential(session, issued.secret, CredentialKind.bearer, NOW) is None


def test_a_session_secret_is_not_a_bearer_token(sqlite_db: Database) -> None:
    with sqlite_db.unit_of_work() as session:
        user = service.create_user(session, "nurse.li", password=PASSWORD)
        issued = service.issue_credential(session, user, CredentialKind.session, dt.timedelta(hours=1), NOW)
        assert service.find_credential(session, issued.secret, CredentialKind.bearer, NOW) is None
        assert service.find_credential(session, issued.secret, CredentialKind.session, NOW) is not None

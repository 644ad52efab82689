"""A resident's alert thresholds are changed by a clinician whose own grant reaches the resident:
another role the person holds (station staff at a home that serves her) does not lend its scope,
nor does a break-the-glass opening (an emergency read, not a lasting change)."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from tests.alerts.conftest import T0, Scene
from tests.signed_in import bearer_for
from yiyang.access import service as access
from yiyang.access.actor import system_actor
from yiyang.access.consent import record_consent
from yiyang.access.consent_models import ConsentDecision
from yiyang.access.models import AuditEvent
from yiyang.access.policy import DataCategory, Purpose, RecipientClass
from yiyang.access.roles import Role
from yiyang.alerts.book import effective_rules
from yiyang.alerts.models import AlertRuleOverride, OverrideScope
from yiyang.alerts.overrides import add_override
from yiyang.app import create_app
from yiyang.db import Database
from yiyang.errors import Forbidden
from yiyang.geo.models import Organisation, OrganisationKind

BP = {"when": [["8480-6", ">=", 170]]}


def overrides(session) -> int:  # type: ignore[no-untyped-def]
    return session.scalar(select(func.count()).select_from(AlertRuleOverride))


def test_a_nurse_of_another_team_who_is_station_staff_here_may_not_change_her_rules(
    db: Database, scene: Scene
) -> None:
    with db.unit_of_work() as session:
        # given a resident who lets the civil-affairs side see her sensor data, and a person who is
        # station staff at the station serving her and a nurse of a team with no contract with her
        record_consent(session, system_actor("test"), scene.resident_id, category=DataCategory.sensor,
                       recipient_class=RecipientClass.civil_affairs, purpose=Purpose.care,
                       decision=ConsentDecision.permit, now=T0)  # fmt: skip
        station_id = access.load_actor(session, scene.station_staff, T0).grants[0].organisation_id
        area_id = session.get(Organisation, station_id).area_id
        other_team = Organisation(
            code="FDT-9", name="家医九队", kind=OrganisationKind.family_doctor_team, area_id=area_id
        )
        session.add(other_team)
        session.flush()
        person = access.create_user(session, "nurse_and_staff")
        access.grant_role(session, person, Role.station_staff, organisation_id=station_id)
        access.grant_role(session, person, Role.nurse, organisation_id=other_team.id)
        actor = access.load_actor(session, person.id, T0)
        before = overrides(session)
        # when they set her blood-pressure threshold
        with pytest.raises(Forbidden) as refused:
            add_override(session, actor, OverrideScope.resident, "bp_urgent", BP, tier=None,
                         resident_id=scene.resident_id, by=person.id, now=T0)  # fmt: skip
        # then the nurse's grant decides, which does not reach her: refused, nothing kept
        assert refused.value.code == "access.scope"
        assert overrides(session) == before


def test_her_contracted_doctor_still_changes_them(db: Database, scene: Scene) -> None:
    with db.unit_of_work() as session:
        doctor = access.load_actor(session, scene.doctor, T0)
        add_override(session, doctor, OverrideScope.resident, "bp_urgent", BP, tier=None,
                     resident_id=scene.resident_id, by=scene.doctor, now=T0)  # fmt: skip
        assert overrides(session) == 1


def test_a_nurse_of_another_team_who_broke_the_glass_may_read_her_rules_but_not_change_them(
    db: Database, scene: Scene
) -> None:
    # given a threshold her own doctor set, and a nurse of a team with no contract with her
    with db.unit_of_work() as session:
        doctor = access.load_actor(session, scene.doctor, T0)
        kept = add_override(session, doctor, OverrideScope.resident, "bp_urgent", BP, tier=None,
                            resident_id=scene.resident_id, by=scene.doctor, now=T0).id  # fmt: skip
        area_id = session.scalar(select(Organisation.area_id).where(Organisation.code == "FDT-1"))
        other_team = Organisation(
            code="FDT-9", name="家医九队", kind=OrganisationKind.family_doctor_team, area_id=area_id
        )
        session.add(other_team)
        session.flush()
        nurse = access.create_user(session, "other_nurse")
        access.grant_role(session, nurse, Role.nurse, organisation_id=other_team.id)
        nurse_id = nurse.id
    headers = bearer_for(db, nurse_id)
    switch_off_falls = {"scope": "resident", "resident_id": scene.resident_id, "rule": "fall",
                        "params": {"enabled": False}}  # fmt: skip
    with TestClient(create_app(db)) as client:
        # and the nurse breaks the glass for her (an emergency call)
        opened = client.post(
            f"/api/residents/{scene.resident_id}/break-glass",
            json={"reason": "急诊来电需要查看病历信息"},
            headers=headers,
        )
        assert opened.status_code in (200, 201), opened.text
        # when the nurse reads her rules, then switches off her fall alerts and removes the threshold
        read = client.get(f"/api/residents/{scene.resident_id}/alert-rules", headers=headers)
        created = client.post("/api/alert-rules/overrides", json=switch_off_falls, headers=headers)
        removed = client.delete(f"/api/alert-rules/overrides/{kept}", headers=headers)
    # then the glass lets her read, but neither change is made: her own scope decides, not the glass
    assert read.status_code == 200
    assert (created.status_code, created.json().get("code")) == (403, "access.scope")
    assert (removed.status_code, removed.json().get("code")) == (403, "access.scope")
    with db.unit_of_work() as session:
        assert [o.id for o in session.scalars(select(AlertRuleOverride))] == [kept]
        rules = effective_rules(session, scene.resident_id)
        assert rules.rule("fall").enabled is True
        # and the refused changes are audited as denied
        denied = session.scalars(
            select(AuditEvent.action).where(
                AuditEvent.user_id == nurse_id,
                AuditEvent.resource_type == "alert_rule_override",
                AuditEvent.outcome == "denied",
            )
        ).all()
        assert denied == ["update", "update"]

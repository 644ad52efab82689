"""Two contracted residents for the tests of lists that name their residents: one has denied the
health side her identity (the family doctor may not see her name), the other recorded nothing."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from tests.signed_in import bearer_for, clinical_team, contract_everyone
from tests.tiers.builders import COMMUNITY, health_row, run, seed_areas
from yiyang.access import service
from yiyang.access.actor import system_actor
from yiyang.access.consent import record_consent
from yiyang.access.consent_models import ConsentDecision
from yiyang.access.models import RelationshipKind, ResidentRelationship
from yiyang.access.policy import DataCategory, Purpose, RecipientClass
from yiyang.access.roles import Role
from yiyang.db import Database, utcnow
from yiyang.geo.models import Organisation, OrganisationKind
from yiyang.sources.models import Feed
from yiyang.sources.records import ConditionFact
from yiyang.tiers.service import retier_residents

SHOWN_NAME, HIDDEN_NAME = "王秀兰", "李建国"
BIRTH_DATE = "1945-03-12"  # health_row's


@dataclass(frozen=True)
class ContractedPair:
    shown: int  # recorded nothing: the implied health consent holds
    hidden: int  # denied health x identity x care
    area_id: int  # their community
    doctor: dict[str, str]  # a family doctor of their team (that role only)


def contracted_pair(database: Database) -> ContractedPair:
    """Both residents in one community, contracted with one team, tiered; the deny recorded."""
    areas = seed_areas(database)
    report = run(database, Feed.health, [
        health_row("HR-SHOWN", "002", name=SHOWN_NAME, conditions=[ConditionFact("I10", "高血压")]),
        health_row("HR-HIDDEN", "014", name=HIDDEN_NAME, sex="M", conditions=[ConditionFact("I10", "高血压")]),
    ])  # fmt: skip
    shown, hidden = report.resident_ids["HR-SHOWN"], report.resident_ids["HR-HIDDEN"]
    team_id = clinical_team(database)
    contract_everyone(database, team_id)
    with database.unit_of_work() as session:
        doctor = service.create_user(session, "doctor-of-the-pair")
        service.grant_role(session, doctor, Role.family_doctor, organisation_id=team_id)
        doctor_id = doctor.id
        record_consent(
            session, system_actor("test-consent"), hidden, category=DataCategory.identity,
            recipient_class=RecipientClass.health, purpose=Purpose.care, decision=ConsentDecision.deny,
            now=utcnow() - dt.timedelta(minutes=1),
        )  # fmt: skip
        retier_residents(session, [shown, hidden])
    return ContractedPair(shown, hidden, areas[COMMUNITY], bearer_for(database, doctor_id))


def station_staff_serving(database: Database, pair: ContractedPair) -> dict[str, str]:
    """Station staff (no registry field group) serving both residents, with their clinical data
    permitted to the station (crossing sides needs an explicit permit); returns its header."""
    since = utcnow() - dt.timedelta(days=1)
    with database.unit_of_work() as session:
        station = Organisation(
            code="ST-PAIR", name="驿站", kind=OrganisationKind.elderly_care_station, area_id=pair.area_id
        )
        session.add(station)
        session.flush()
        staff = service.create_user(session, "station-of-the-pair")
        service.grant_role(session, staff, Role.station_staff, organisation_id=station.id)
        staff_id = staff.id
        for resident_id in (pair.shown, pair.hidden):
            session.add(ResidentRelationship(
                resident_id=resident_id, kind=RelationshipKind.service, organisation_id=station.id,
                valid_from=since, source_type="test", source_id=resident_id,
            ))  # fmt: skip
            session.flush()
            record_consent(
                session, system_actor("test-consent"), resident_id, category=DataCategory.clinical,
                recipient_class=RecipientClass.civil_affairs, purpose=Purpose.care,
                decision=ConsentDecision.permit, now=since,
            )  # fmt: skip
    return bearer_for(database, staff_id)

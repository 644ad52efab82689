"""Capturing assessments (SQLite and PostgreSQL): stored results, the registry's capability level,
the tier they move, reassessment due dates, and the FHIR resources they map to."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.observation import Observation
from fhir.resources.R4B.questionnaireresponse import QuestionnaireResponse
from fhir.resources.R4B.riskassessment import RiskAssessment
from sqlalchemy import func, select

from tests.tiers.builders import (
    capability_answers,
    civil_row,
    health_row,
    insurance_row,
    resident_id_of,
    run,
    seed_areas,
)
from yiyang.assessments import fhir, service
from yiyang.assessments.models import Assessment
from yiyang.assessments.service import AssessmentCapture, add_months
from yiyang.db import Database
from yiyang.errors import Invalid, NotFound
from yiyang.residents.models import FactChange, Feed, Resident, SourceRecord
from yiyang.tiers import service as tiers
from yiyang.tiers.rules import Tier

CN = dt.timezone(dt.timedelta(hours=8))
NOW = dt.datetime(2025, 6, 30, 9, tzinfo=CN)
AD8_POSITIVE = {code: index < 3 for index, code in enumerate(
    ("judgment", "interest", "repetition", "learning_tools", "month_year", "finances", "appointments", "daily_thinking")
)}  # fmt: skip
AD8_NEGATIVE = dict.fromkeys(AD8_POSITIVE, False)
MORSE_HIGH = {
    "fall_history": 25,
    "secondary_diagnosis": 15,
    "ambulatory_aid": 15,
    "iv_access": 0,
    "gait": 10,
    "mental_status": 0,
}
CHINA_PAR_HIGH = {
    "sex": "male", "age": 68, "sbp": 168, "bp_treated": True, "tc": 6.4, "hdl": 0.9, "waist": 98,
    "smoker": True, "diabetes": True, "north": True, "urban": True, "family_history": True,
}  # fmt: skip


def capture(instrument: str, answers: dict[str, Any], when: dt.datetime, **options: Any) -> AssessmentCapture:
    return AssessmentCapture(
        instrument=instrument, answers=answers, assessed_at=when, assessor="刘护士", options=options
    )


def record(database: Database, resident_id: int, item: AssessmentCapture) -> int:
    with database.unit_of_work() as session:
        return service.record_assessment(session, resident_id, item, recorded_by="test", now=NOW).id


def resident_from_health(database: Database, key: str = "HR-1", **overrides: Any) -> int:
    seed_areas(database)
    return resident_id_of(run(database, Feed.health, [health_row(key, **overrides)]), key)


def tier_view(database: Database, resident_id: int) -> tiers.TierView:
    with database.unit_of_work() as session:
        found = tiers.tier_of(session, resident_id)
    assert found is not None
    return found


def test_capability_assessment_is_stored_becomes_the_registry_level_and_makes_red(db: Database) -> None:
    # given a resident with no capability level
    rid = resident_from_health(db)
    # when a GB/T 42195 assessment scoring moderate disability is recorded
    assessment_id = record(
        db, rid, capture("gbt42195", capability_answers("moderate"), dt.datetime(2025, 6, 20, 10, tzinfo=CN))
    )
    with db.unit_of_work() as session:
        stored = session.get(Assessment, assessment_id)
        resident = session.get(Resident, rid)
        record_row = session.get(SourceRecord, stored.source_record_id)
        change = session.execute(
            select(FactChange).where(
                FactChange.resident_id == rid, FactChange.attribute == "capability_level"
            )
        ).scalar_one()
        # then the result is kept as scored, with a reassessment due in 6 months
        assert (stored.total, stored.level, stored.level_zh) == (50, "moderate", "中度失能")
        assert stored.explanation and stored.assessor == "刘护士" and stored.recorded_by == "test"
        assert stored.reassess_due_on == dt.date(2025, 12, 20)
        # and the registry's level is the assessment's, with a staff record as its evidence
        assert resident.capability_level == "moderate"
        assert resident.provenance["capability_level"][0] == record_row.id
        assert (record_row.feed, record_row.source_key) == (Feed.staff, f"assessment:{assessment_id}")
        assert (change.old_value, change.new_value, change.new_source_record_id) == (
            None,
            "moderate",
            record_row.id,
        )
    # and the resident is red, because of this assessment
    view = tier_view(db, rid)
    assert view.tier is Tier.red
    assert view.reasons[0].rule.code == "capability.disabled"
    assert view.reasons[0].fact.assessment_id == assessment_id
    assert f"评估记录 #{assessment_id}" in view.reasons[0].zh and "2025-06-20" in view.reasons[0].zh


def test_an_older_assessment_does_not_replace_a_newer_civil_level(db: Database) -> None:
    # given civil affairs reported mild disability on 2025-05-01
    seed_areas(db)
    rid = resident_id_of(
        run(db, Feed.civil, [civil_row("MZ-1", "002", "mild", observed="2025-05-01")]), "MZ-1"
    )
    # when an assessment made earlier (2025-01-10) is entered late, scoring total disability
    record(db, rid, capture("gbt42195", capability_answers("total"), dt.datetime(2025, 1, 10, 9, tzinfo=CN)))
    # then the registry keeps the newer civil level (recency), and the tier follows it
    with db.unit_of_work() as session:
        assert session.get(Resident, rid).capability_level == "mild"
    assert tier_view(db, rid).tier is Tier.yellow
    # when a newer assessment is entered, it wins
    newer = record(
        db, rid, capture("gbt42195", capability_answers("severe"), dt.datetime(2025, 6, 1, 9, tzinfo=CN))
    )
    with db.unit_of_work() as session:
        assert session.get(Resident, rid).capability_level == "severe"
    assert tier_view(db, rid).reasons[0].fact.assessment_id == newer


def test_positive_ad8_makes_red_and_a_later_negative_screen_takes_it_back(db: Database) -> None:
    rid = resident_from_health(db)
    first = record(db, rid, capture("ad8", AD8_POSITIVE, dt.datetime(2025, 3, 1, 9, tzinfo=CN)))
    view = tier_view(db, rid)
    assert view.tier is Tier.red
    assert (view.reasons[0].rule.code, view.reasons[0].fact.assessment_id) == ("dementia.ad8", first)
    record(db, rid, capture("ad8", AD8_NEGATIVE, dt.datetime(2025, 6, 1, 9, tzinfo=CN)))
    assert tier_view(db, rid).tier is Tier.green
    with db.unit_of_work() as session:
        changes = [(c.old_tier, c.new_tier, c.trigger) for c in reversed(tiers.tier_history(session, rid))]
    assert changes == [(None, Tier.red, "assessment"), (Tier.red, Tier.green, "assessment")]


def test_fall_risk_and_cardiovascular_risk_make_yellow(db: Database) -> None:
    rid = resident_from_health(db)
    record(db, rid, capture("morse", MORSE_HIGH, dt.datetime(2025, 6, 1, 9, tzinfo=CN)))
    assert [r.rule.code for r in tier_view(db, rid).reasons] == ["fall.morse_high"]
    par = record(db, rid, capture("china_par", CHINA_PAR_HIGH, dt.datetime(2025, 6, 2, 9, tzinfo=CN)))
    with db.unit_of_work() as session:
        assert session.get(Assessment, par).level == "high"
    assert [r.rule.code for r in tier_view(db, rid).reasons] == ["fall.morse_high", "cvd.china_par_high"]


@pytest.mark.parametrize(
    ("item", "code"),
    [
        (capture("barthel", {"feeding": 7}, dt.datetime(2025, 6, 1, tzinfo=CN)), "assessment.item.range"),
        (capture("ad8", AD8_POSITIVE, dt.datetime(2025, 7, 30, tzinfo=CN)), "assessment.assessed_at.future"),
        (capture("ad8", AD8_POSITIVE, dt.datetime(1980, 1, 1, tzinfo=CN)), "assessment.assessed_at.too_early"),
        (capture("sf36", {}, dt.datetime(2025, 6, 1, tzinfo=CN)), "assessment.instrument.unknown"),
        (AssessmentCapture("ad8", AD8_POSITIVE, dt.datetime(2025, 6, 1, tzinfo=CN), assessor="  "), "assessment.assessor.missing"),
        (capture("morse", MORSE_HIGH, dt.datetime(2025, 6, 1, tzinfo=CN), high_risk_cutoff=50), "assessment.option.invalid"),
    ],
)  # fmt: skip
def test_bad_capture_is_refused_and_nothing_is_stored(
    db: Database, item: AssessmentCapture, code: str
) -> None:
    rid = resident_from_health(db)
    with db.unit_of_work() as session, pytest.raises(Invalid) as caught:
        service.record_assessment(session, rid, item, recorded_by="test", now=NOW)
    assert caught.value.code == code
    with db.unit_of_work() as session:
        assert session.execute(select(func.count()).select_from(Assessment)).scalar_one() == 0
        assert (
            session.execute(
                select(func.count()).select_from(SourceRecord).where(SourceRecord.feed == Feed.staff)
            ).scalar_one()
            == 0
        )
        assert tiers.tier_of(session, rid) is None


def test_unknown_resident_is_not_found(db: Database) -> None:
    seed_areas(db)
    with db.unit_of_work() as session, pytest.raises(NotFound):
        service.record_assessment(session, 99, capture("ad8", AD8_POSITIVE, NOW), recorded_by="test", now=NOW)


def test_naive_assessment_time_is_read_as_china_time(db: Database) -> None:
    rid = resident_from_health(db)
    assessment_id = record(db, rid, capture("ad8", AD8_NEGATIVE, dt.datetime(2025, 6, 1, 7, 30)))
    with db.unit_of_work() as session:
        assert session.get(Assessment, assessment_id).assessed_at == dt.datetime(
            2025, 5, 31, 23, 30, tzinfo=dt.UTC
        )


# -- reassessment -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("day", "months", "expected"),
    [(dt.date(2025, 8, 31), 6, dt.date(2026, 2, 28)), (dt.date(2023, 8, 31), 6, dt.date(2024, 2, 29)),
     (dt.date(2025, 1, 15), 6, dt.date(2025, 7, 15)), (dt.date(2025, 11, 30), 12, dt.date(2026, 11, 30))],
)  # fmt: skip
def test_add_months(day: dt.date, months: int, expected: dt.date) -> None:
    assert add_months(day, months) == expected


def test_capability_reassessments_due_overdue_and_overtaken_by_change(db: Database) -> None:
    # given four assessed residents and one never assessed
    seed_areas(db)
    keys = {"overdue": "001", "due": "003", "fresh": "005", "stroke": "007", "level": "009"}
    ids = {
        label: resident_id_of(
            run(db, Feed.health, [health_row(f"HR-{label}", seq, name=f"居民{seq}")]), f"HR-{label}"
        )
        for label, seq in keys.items()
    }
    when = {
        "overdue": dt.datetime(2024, 11, 1, 9, tzinfo=CN),  # due 2025-05-01: overdue on 2025-06-30
        "due": dt.datetime(2025, 1, 15, 9, tzinfo=CN),  # due 2025-07-15: within 30 days
        "fresh": dt.datetime(2025, 6, 1, 9, tzinfo=CN),  # due 2025-12-01
        "stroke": dt.datetime(2025, 5, 1, 9, tzinfo=CN),  # due later, but a stroke was diagnosed since
        "level": dt.datetime(
            2025, 5, 1, 9, tzinfo=CN
        ),  # due later, but civil affairs reported a change since
    }
    for label, at in when.items():
        record(db, ids[label], capture("gbt42195", capability_answers("mild"), at))
    run(
        db,
        Feed.insurance,
        [insurance_row("JS-1", keys["stroke"], "I63.9", "脑梗死", "2025-06-10", name="居民007")],
    )
    run(db, Feed.civil, [civil_row("MZ-1", keys["level"], "severe", observed="2025-06-15", name="居民009")])
    # when the due list is read on 2025-06-30
    with db.unit_of_work() as session:
        total, items = service.capability_reassessments_due(
            session, today=dt.date(2025, 6, 30), within_days=30
        )
    # then overdue, due and changed residents are listed, the fresh one is not
    found = {item.resident_id: item for item in items}
    assert total == 4 and ids["fresh"] not in found
    assert found[ids["overdue"]].status == "overdue" and found[ids["overdue"]].due_on == dt.date(2025, 5, 1)
    assert found[ids["due"]].status == "due"
    assert (found[ids["stroke"]].status, found[ids["stroke"]].new_diagnoses) == ("changed", ("I63.9",))
    assert (found[ids["level"]].status, found[ids["level"]].registry_level) == ("changed", "severe")
    assert items[0].resident_id == ids["overdue"]


def test_two_capability_assessments_at_the_same_time_list_the_resident_once(db: Database) -> None:
    # given a capability assessment entered twice for the same minute (a corrected re-entry)
    rid = resident_from_health(db)
    at = dt.datetime(2024, 11, 1, 9, tzinfo=CN)
    record(db, rid, capture("gbt42195", capability_answers("mild"), at))
    corrected = record(db, rid, capture("gbt42195", capability_answers("moderate"), at))
    # when the due list is read after both are overdue
    with db.unit_of_work() as session:
        total, items = service.capability_reassessments_due(session, today=dt.date(2025, 6, 30))
    # then the resident is listed once, with the one recorded last (as the registry took it)
    assert total == 1
    assert [(item.assessment_id, item.level, item.status) for item in items] == [
        (corrected, "moderate", "overdue")
    ]


def test_residents_65_and_over_never_assessed(db: Database) -> None:
    seed_areas(db)
    old = resident_id_of(run(db, Feed.health, [health_row("HR-1", "002")]), "HR-1")
    young = resident_id_of(
        run(
            db,
            Feed.health,
            [health_row("HR-2", "004", id_number=None, name="孙小明", birth_date=dt.date(1970, 1, 1))],
        ),
        "HR-2",
    )
    assessed = resident_id_of(run(db, Feed.health, [health_row("HR-3", "006", name="周桂兰")]), "HR-3")
    record(
        db, assessed, capture("gbt42195", capability_answers("intact"), dt.datetime(2025, 6, 1, tzinfo=CN))
    )
    with db.unit_of_work() as session:
        total, rows = service.never_assessed(session, today=dt.date(2025, 6, 30))
    assert total == 1 and [r.id for r in rows] == [old]
    assert young not in [r.id for r in rows]


# -- FHIR ---------------------------------------------------------------------------------------


def stored(database: Database, resident_id: int, item: AssessmentCapture) -> Assessment:
    assessment_id = record(database, resident_id, item)
    with database.unit_of_work() as session:
        return session.get(Assessment, assessment_id)


def test_capability_assessment_maps_to_a_questionnaire_response_and_two_observations(db: Database) -> None:
    rid = resident_from_health(db)
    assessment = stored(
        db,
        rid,
        capture(
            "gbt42195",
            capability_answers("moderate", care_risk_events=["fall", "fall"]),
            dt.datetime(2025, 6, 20, 10, tzinfo=CN),
        ),
    )
    response = QuestionnaireResponse.model_validate(fhir.questionnaire_response(assessment))
    assert response.status == "completed" and response.subject.reference == f"Patient/{rid}"
    answers = {item.linkId: item.answer for item in response.item}
    assert answers["eating"][0].valueInteger == assessment.answers["eating"]
    assert answers["coma"][0].valueBoolean is False
    assert [a.valueString for a in answers["care_risk_events"]] == ["fall", "fall"]
    total, level = (Observation.model_validate(o) for o in fhir.score_observations(assessment))
    assert (
        total.valueQuantity.value == 50
        and total.derivedFrom[0].reference == f"QuestionnaireResponse/assessment-{assessment.id}"
    )
    assert level.valueCodeableConcept.coding[0].code == assessment.level
    bundle = Bundle.model_validate(fhir.assessment_bundle(assessment))
    assert [e.resource.get_resource_type() for e in bundle.entry] == [
        "QuestionnaireResponse",
        "Observation",
        "Observation",
    ]


def test_phq9_total_carries_its_loinc_code(db: Database) -> None:
    rid = resident_from_health(db)
    answers = dict.fromkeys(
        (
            "interest",
            "mood",
            "sleep",
            "energy",
            "appetite",
            "self_worth",
            "concentration",
            "psychomotor",
            "self_harm",
        ),
        1,
    )
    total = Observation.model_validate(
        fhir.score_observations(stored(db, rid, capture("phq9", answers, NOW)))[0]
    )
    assert (total.code.coding[0].system, total.code.coding[0].code) == ("http://loinc.org", "44261-6")


def test_china_par_maps_to_a_risk_assessment(db: Database) -> None:
    rid = resident_from_health(db)
    assessment = stored(db, rid, capture("china_par", CHINA_PAR_HIGH, NOW))
    risk = RiskAssessment.model_validate(fhir.risk_assessment(assessment))
    prediction = risk.prediction[0]
    assert float(prediction.probabilityDecimal) == pytest.approx(assessment.details["risk"], abs=1e-4)
    assert prediction.qualitativeRisk.coding[0].code == "high"
    assert risk.basis[0].reference == f"QuestionnaireResponse/assessment-{assessment.id}"
    bundle = Bundle.model_validate(fhir.assessment_bundle(assessment))
    assert [e.resource.get_resource_type() for e in bundle.entry] == [
        "QuestionnaireResponse",
        "RiskAssessment",
    ]


def test_china_par_outside_its_ages_says_why_instead_of_a_probability(db: Database) -> None:
    rid = resident_from_health(db)
    assessment = stored(db, rid, capture("china_par", {**CHINA_PAR_HIGH, "age": 80}, NOW))
    risk = RiskAssessment.model_validate(fhir.risk_assessment(assessment))
    assert risk.prediction[0].probabilityDecimal is None and "35-74" in risk.note[0].text


def test_assessments_follow_a_merge_and_come_back_on_unmerge(db: Database, reactions: None) -> None:
    from yiyang.residents import service as registry

    # given a resident and a duplicate registered without an ID number, assessed as demented
    survivor = resident_from_health(db)
    duplicate = resident_id_of(
        run(
            db,
            Feed.civil,
            [civil_row("MZ-9", "002", "intact", id_number=None, birth_date=dt.date(1946, 5, 1))],
        ),
        "MZ-9",
    )
    assert duplicate != survivor
    assessment_id = record(db, duplicate, capture("ad8", AD8_POSITIVE, dt.datetime(2025, 3, 1, 9, tzinfo=CN)))
    assert tier_view(db, survivor).tier is Tier.green
    # when staff merge the duplicate into the resident
    with db.unit_of_work() as session:
        merge_id = registry.merge_residents(session, survivor, duplicate, by="clerk", reason="same person").id
    # then the assessment is the survivor's, and so is the red tier it implies
    with db.unit_of_work() as session:
        assert session.get(Assessment, assessment_id).resident_id == survivor
    view = tier_view(db, survivor)
    assert view.tier is Tier.red and view.reasons[0].fact.assessment_id == assessment_id
    # and when the merge is undone the assessment goes back with its resident
    with db.unit_of_work() as session:
        registry.unmerge(session, merge_id, by="clerk")
    with db.unit_of_work() as session:
        assert session.get(Assessment, assessment_id).resident_id == duplicate
    assert tier_view(db, survivor).tier is Tier.green

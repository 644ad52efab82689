"""The schedule engine: the basic public health service spec's follow-up rules, on plain values."""

from __future__ import annotations

import datetime as dt

import pytest

from yiyang.care.models import WorkKind
from yiyang.care.schedule import (
    RULES,
    Programme,
    ScheduleRules,
    VisitClass,
    VisitOutcome,
    after_chronic_visit,
    after_mental_visit,
    annual_check_window,
    cadences,
    classify_visit,
    escalation_level,
    next_due,
    status_on,
)
from yiyang.db import china_day

DAY = dt.date(2026, 3, 2)


def visit(sbp: int, dbp: int, **more: object) -> VisitOutcome:
    return VisitOutcome(systolic=sbp, diastolic=dbp, **more)  # type: ignore[arg-type]


def test_an_unsatisfactory_bp_visit_yields_a_follow_up_due_in_14_days() -> None:
    decision = after_chronic_visit(
        Programme.hypertension, visit(156, 96), DAY, age=60, previous_unsatisfactory=False
    )
    assert decision.visit_class is VisitClass.unsatisfactory and not decision.refer
    (step,) = decision.steps
    assert (step.kind, step.due_by, step.rule) == (
        WorkKind.follow_up,
        DAY + dt.timedelta(days=14),
        "bphs.htn.unsatisfactory",
    )


def test_a_second_unsatisfactory_visit_in_a_row_yields_a_referral_and_a_2_week_follow_up() -> None:
    decision = after_chronic_visit(
        Programme.hypertension, visit(150, 95), DAY, age=60, previous_unsatisfactory=True
    )
    assert decision.refer
    (step,) = decision.steps
    assert step.kind is WorkKind.referral_follow_up and step.rule == "bphs.htn.two_unsatisfactory"
    assert step.due_by == DAY + dt.timedelta(days=14) and not step.urgent


@pytest.mark.parametrize(("sbp", "dbp"), [(180, 100), (150, 110), (200, 120)])
def test_an_urgent_referral_bp_yields_an_urgent_referral_and_a_2_week_follow_up(sbp: int, dbp: int) -> None:
    decision = after_chronic_visit(
        Programme.hypertension, visit(sbp, dbp), DAY, age=70, previous_unsatisfactory=False
    )
    assert decision.visit_class is VisitClass.urgent and decision.refer
    (step,) = decision.steps
    assert step.urgent and step.rule == "bphs.htn.urgent_referral" and step.due_by == dt.date(2026, 3, 16)


def test_a_controlled_visit_keeps_the_quarterly_cadence() -> None:
    decision = after_chronic_visit(
        Programme.hypertension, visit(132, 82), DAY, age=60, previous_unsatisfactory=True
    )
    (step,) = decision.steps
    assert decision.visit_class is VisitClass.controlled and not decision.refer
    assert step.rule == "bphs.htn.quarterly" and step.due_by == DAY + dt.timedelta(days=90)
    assert step.due_from == step.due_by - dt.timedelta(days=14)  # may be done up to two weeks early


def test_the_elderly_bp_limit_is_configurable() -> None:
    reading = visit(145, 85)
    assert classify_visit(Programme.hypertension, reading, age=70) is VisitClass.controlled
    strict = ScheduleRules(bp_limit_elderly=None)
    assert classify_visit(Programme.hypertension, reading, age=70, rules=strict) is VisitClass.unsatisfactory
    assert classify_visit(Programme.hypertension, reading, age=50) is VisitClass.unsatisfactory


def test_an_adverse_reaction_or_new_complication_is_not_satisfactory() -> None:
    assert (
        classify_visit(Programme.hypertension, visit(120, 80, adverse_reaction=True), age=60)
        is VisitClass.adverse
    )
    assert (
        classify_visit(Programme.hypertension, visit(120, 80, new_complication=True), age=60)
        is VisitClass.unsatisfactory
    )
    assert (
        classify_visit(Programme.hypertension, visit(120, 80, danger_symptoms=True), age=60)
        is VisitClass.urgent
    )


@pytest.mark.parametrize(
    ("glucose", "expected"),
    [
        (6.2, VisitClass.controlled),
        (7.0, VisitClass.unsatisfactory),
        (16.7, VisitClass.urgent),
        (3.9, VisitClass.urgent),
    ],
)
def test_diabetes_follows_fasting_glucose(glucose: float, expected: VisitClass) -> None:
    assert classify_visit(Programme.diabetes, VisitOutcome(fasting_glucose=glucose), age=60) is expected


def test_diabetes_two_unsatisfactory_visits_refer_under_the_diabetes_clause() -> None:
    decision = after_chronic_visit(
        Programme.diabetes, VisitOutcome(fasting_glucose=9.1), DAY, age=60, previous_unsatisfactory=True
    )
    assert decision.refer and decision.steps[0].rule == "bphs.dm.two_unsatisfactory"


@pytest.mark.parametrize(
    ("grade", "days", "refer", "rule"),
    [
        (0, 90, False, "bphs.smd.stable"),
        (2, 14, False, "bphs.smd.basically_stable"),
        (4, 14, True, "bphs.smd.unstable"),
    ],
)
def test_severe_mental_disorder_follow_up_by_risk_grade(
    grade: int, days: int, refer: bool, rule: str
) -> None:
    decision = after_mental_visit(grade, DAY)
    (step,) = decision.steps
    assert (step.due_by - DAY).days == days and decision.refer is refer and step.rule == rule
    with pytest.raises(ValueError):
        after_mental_visit(6, DAY)


def test_the_annual_check_is_once_per_calendar_year() -> None:
    assert annual_check_window(None, DAY) == (DAY, dt.date(2026, 12, 31))
    assert annual_check_window(dt.date(2025, 6, 1), DAY) == (DAY, dt.date(2026, 12, 31))
    # done this year: the next one is next year
    assert annual_check_window(dt.date(2026, 2, 10), DAY) == (dt.date(2027, 1, 1), dt.date(2027, 12, 31))


def test_next_due_from_the_last_visit_or_soon_for_a_new_patient() -> None:
    plans = cadences()
    assert next_due(plans[Programme.hypertension], None, DAY) == (DAY, DAY + dt.timedelta(days=30))
    assert next_due(plans[Programme.hypertension], dt.date(2026, 1, 5), DAY) == (
        dt.date(2026, 3, 22),
        dt.date(2026, 4, 5),
    )
    reassess = next_due(plans[Programme.capability], dt.date(2025, 9, 1), DAY)
    assert reassess[1] == dt.date(2025, 9, 1) + dt.timedelta(days=182)  # six months: already overdue


def test_status_and_escalation_follow_the_calendar() -> None:
    assert status_on(dt.date(2026, 3, 10), dt.date(2026, 3, 20), DAY) == "scheduled"
    assert status_on(DAY, DAY, DAY) == "due"
    assert status_on(dt.date(2026, 2, 1), dt.date(2026, 3, 1), DAY) == "overdue"
    assert [escalation_level(DAY - dt.timedelta(days=d), DAY) for d in (1, 7, 20, 21)] == [0, 1, 1, 2]


def test_every_rule_names_its_clause_and_the_local_day_is_beijing_time() -> None:
    assert all(rule.clause and rule.zh and rule.en for rule in RULES.values())
    assert china_day(dt.datetime(2026, 3, 1, 17, 0, tzinfo=dt.UTC)) == dt.date(2026, 3, 2)

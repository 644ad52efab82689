"""GB/T 42195-2022 capability assessment: items, level bands and the standard's adjustments."""

from __future__ import annotations

import pytest

from tests.assessments.builders import best, points_totalling
from yiyang.assessments import CAPABILITY_LEVEL_CODES, adjust_capability_level, score
from yiyang.assessments.scoring import CAPABILITY_DOMAINS, GBT42195_ITEMS
from yiyang.errors import Invalid


def with_total(total: int, **context: object) -> dict[str, object]:
    return {**points_totalling(GBT42195_ITEMS, total), **context}


def test_the_standard_has_26_items_whose_domain_maxima_are_32_15_28_15():
    # given the item table
    maxima = {domain: 0 for domain in CAPABILITY_DOMAINS}
    counts = {domain: 0 for domain in CAPABILITY_DOMAINS}
    for item in GBT42195_ITEMS:
        maxima[item.domain] += item.max_points
        counts[item.domain] += 1
    # then it matches GB/T 42195-2022 Annex B
    assert len(GBT42195_ITEMS) == 26
    assert counts == {"self_care": 8, "basic_movement": 4, "mental_state": 9, "perception_social": 5}
    assert maxima == {"self_care": 32, "basic_movement": 15, "mental_state": 28, "perception_social": 15}


def test_level_codes_are_the_five_shared_with_the_registry():
    assert CAPABILITY_LEVEL_CODES == ("intact", "mild", "moderate", "severe", "total")


@pytest.mark.parametrize(
    ("total", "level"),
    [
        (90, "intact"),
        (89, "mild"),
        (66, "mild"),
        (65, "moderate"),
        (46, "moderate"),
        (45, "severe"),
        (30, "severe"),
        (29, "total"),
        (0, "total"),
    ],
)
def test_each_level_boundary(total, level):
    # when a form with this total is scored
    result = score("gbt42195", with_total(total))
    # then the total and the band are the standard's
    assert result.total == total
    assert result.level == level
    assert result.details["base_level"] == level
    assert result.flags == []


def test_full_marks_report_domain_subtotals_and_no_lost_points():
    result = score("gbt42195", best(GBT42195_ITEMS))
    assert result.details["domains"] == {
        "self_care": 32,
        "basic_movement": 15,
        "mental_state": 28,
        "perception_social": 15,
    }
    assert result.max_total == 90
    assert result.level_zh == "能力完好" and result.level_en == "capability intact"
    assert not any(line.item in {item.code for item in GBT42195_ITEMS} for line in result.explanation)


def test_explanation_names_the_items_that_lost_points():
    # given full marks except stairs 1/3 and memory 2/4
    answers = {**best(GBT42195_ITEMS), "stairs": 1, "memory": 2}
    result = score("gbt42195", answers)
    lost = {line.item: line.points for line in result.explanation if line.item in {"stairs", "memory"}}
    assert lost == {"stairs": 1, "memory": 2}
    assert result.total == 86


def test_coma_is_total_disability_whatever_the_score():
    result = score("gbt42195", {**best(GBT42195_ITEMS), "coma": True})
    assert result.total == 90
    assert result.level == "total"
    assert result.details["base_level"] == "intact"
    assert "coma" in result.flag_codes
    assert any("昏迷" in line.zh for line in result.explanation)


@pytest.mark.parametrize("code", ["F00", "F00.1", "f01.9", "F02.8", "F03", "F03.x00"])
def test_a_dementia_code_raises_the_level_one_step(code):
    result = score("gbt42195", with_total(70, diagnoses=[code]))
    assert result.details["base_level"] == "mild"
    assert result.level == "moderate"
    assert "dementia" in result.flag_codes
    assert any(code.upper() in line.zh and "→" in line.zh for line in result.explanation)


@pytest.mark.parametrize("code", ["F10.2", "G30.9", "I10", "F04"])
def test_codes_outside_f00_f03_do_not_count_as_dementia(code):
    result = score("gbt42195", with_total(70, diagnoses=[code]))
    assert result.level == "mild"
    assert "dementia" not in result.flag_codes


def test_another_psychiatric_diagnosis_raises_one_step_and_with_dementia_still_one():
    alone = score("gbt42195", with_total(50, psychiatric_diagnosis=True))
    both = score("gbt42195", with_total(50, psychiatric_diagnosis=True, diagnoses=["F03"]))
    assert alone.level == "severe"
    assert both.level == "severe"
    assert {"dementia", "psychiatric_diagnosis"} <= both.flag_codes


def test_one_care_risk_event_changes_nothing_and_two_raise_one_step():
    one = score("gbt42195", with_total(90, care_risk_events=["fall"]))
    two = score("gbt42195", with_total(90, care_risk_events=["fall", "wandering"]))
    assert one.level == "intact" and one.flags == []
    assert two.level == "mild"
    assert "care_risk_events" in two.flag_codes
    assert any("跌倒、走失" in line.zh for line in two.explanation)


def test_dementia_and_repeated_events_add_up_to_two_steps():
    result = score("gbt42195", with_total(70, diagnoses=["F01"], care_risk_events=["choking", "self_harm"]))
    assert result.details["base_level"] == "mild"
    assert result.level == "severe"
    assert result.details["adjusted"] is True


def test_adjustments_stop_at_total_disability():
    # given a severe base level and two one-step adjustments
    result = score("gbt42195", with_total(35, diagnoses=["F03"], care_risk_events=["fall", "fall"]))
    # then the first step reaches total and the second says it cannot go further
    assert result.level == "total"
    assert any("不再提高" in line.zh for line in result.explanation)


def test_adjust_capability_level_is_usable_on_its_own():
    level, lines, flags = adjust_capability_level("moderate", psychiatric_diagnosis=True)
    assert level.code == "severe"
    assert [flag.code for flag in flags] == ["psychiatric_diagnosis"]
    assert len(lines) == 1


def test_an_unknown_care_risk_event_is_refused():
    with pytest.raises(Invalid) as caught:
        score("gbt42195", with_total(70, care_risk_events=["fall", "stroke"]))
    assert caught.value.code == "assessment.item.range"
    assert caught.value.detail["item"] == "care_risk_events"


def test_a_diagnosis_that_is_not_an_icd10_code_is_refused():
    with pytest.raises(Invalid) as caught:
        score("gbt42195", with_total(70, diagnoses=["痴呆"]))
    assert caught.value.code == "assessment.item.range"
    assert caught.value.detail["item"] == "diagnoses"


@pytest.mark.parametrize(
    ("item", "value", "maximum"),
    [("stairs", 4, 3), ("transport", 4, 3), ("vision", 3, 2), ("aggression", 2, 1)],
)
def test_an_item_above_its_own_maximum_is_refused_naming_the_item(item, value, maximum):
    with pytest.raises(Invalid) as caught:
        score("gbt42195", {**best(GBT42195_ITEMS), item: value})
    assert caught.value.code == "assessment.item.range"
    assert caught.value.detail["item"] == item
    assert max(caught.value.detail["allowed"]) == maximum
    assert f"0–{maximum}" in caught.value.message or "0、1 之一" in caught.value.message

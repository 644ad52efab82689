"""Blood-pressure grades per 中国高血压防治指南 2018: every boundary and the higher-grade rule."""

from __future__ import annotations

import pytest

from yiyang.assessments import bp_grade, score
from yiyang.errors import Invalid


@pytest.mark.parametrize(
    ("systolic", "grade"),
    [
        (119, "normal"),
        (120, "high_normal"),
        (139, "high_normal"),
        (140, "grade_1"),
        (159, "grade_1"),
        (160, "grade_2"),
        (179, "grade_2"),
        (180, "grade_3"),
    ],
)
def test_systolic_boundaries_with_a_normal_diastolic(systolic, grade):
    assert bp_grade(systolic, 70).code == grade


@pytest.mark.parametrize(
    ("diastolic", "grade"),
    [
        (79, "normal"),
        (80, "high_normal"),
        (89, "high_normal"),
        (90, "grade_1"),
        (99, "grade_1"),
        (100, "grade_2"),
        (109, "grade_2"),
        (110, "grade_3"),
    ],
)
def test_diastolic_boundaries_with_a_normal_systolic(diastolic, grade):
    assert bp_grade(115, diastolic).code == grade


@pytest.mark.parametrize(
    ("systolic", "diastolic", "grade"),
    [
        (165, 95, "grade_2"),  # systolic grade 2 beats diastolic grade 1
        (135, 105, "grade_2"),  # diastolic grade 2 beats systolic high-normal
        (118, 82, "high_normal"),  # normal needs both below 120/80
        (182, 70, "grade_3"),
        (150, 112, "grade_3"),
    ],
)
def test_the_higher_of_the_two_grades_wins(systolic, diastolic, grade):
    result = score("bp", {"systolic": systolic, "diastolic": diastolic})
    assert result.level == grade
    assert any("较高" in line.zh for line in result.explanation)


def test_a_reading_grades_both_parts_in_the_explanation_and_details():
    result = score("bp", {"systolic": 150, "diastolic": 85})
    assert result.total is None
    assert result.details["systolic_grade"] == "grade_1"
    assert result.details["diastolic_grade"] == "high_normal"
    assert result.level_zh.startswith("1级高血压")


def test_isolated_systolic_hypertension_is_flagged_only_with_diastolic_below_90():
    assert "isolated_systolic_hypertension" in score("bp", {"systolic": 150, "diastolic": 85}).flag_codes
    assert "isolated_systolic_hypertension" not in score("bp", {"systolic": 150, "diastolic": 90}).flag_codes
    assert "isolated_systolic_hypertension" not in score("bp", {"systolic": 139, "diastolic": 70}).flag_codes


def test_grade_3_carries_the_urgent_referral_flag():
    assert "bp_urgent_referral" in score("bp", {"systolic": 180, "diastolic": 80}).flag_codes
    assert "bp_urgent_referral" in score("bp", {"systolic": 130, "diastolic": 110}).flag_codes
    assert "bp_urgent_referral" not in score("bp", {"systolic": 179, "diastolic": 109}).flag_codes


def test_swapped_or_impossible_readings_are_refused():
    with pytest.raises(Invalid) as caught:
        score("bp", {"systolic": 80, "diastolic": 120})
    assert caught.value.code == "assessment.item.range"
    assert caught.value.detail["item"] == "diastolic"
    with pytest.raises(Invalid) as caught:
        score("bp", {"systolic": 400, "diastolic": 80})
    assert caught.value.detail["item"] == "systolic"
    assert "mmHg" in caught.value.message

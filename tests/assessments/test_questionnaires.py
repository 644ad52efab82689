"""Every published cut-off of the questionnaires, from both sides, plus their special rules."""

from __future__ import annotations

import pytest

from tests.assessments.builders import points_totalling, yes_count
from yiyang.assessments import score
from yiyang.assessments.scoring import (
    AD8_ITEMS,
    BARTHEL_ITEMS,
    BRADEN_ITEMS,
    FRAIL_ITEMS,
    GDS15_ITEMS,
    GDS15_REVERSE_KEYED,
    MINICOG_ITEMS,
    MNA_SF_ITEMS,
    MORSE_ITEMS,
    PHQ9_ITEMS,
    SELF_CARE_ITEMS,
)
from yiyang.errors import Invalid

SUMMED = {
    "self_care": SELF_CARE_ITEMS,
    "barthel": BARTHEL_ITEMS,
    "minicog": MINICOG_ITEMS,
    "phq9": PHQ9_ITEMS,
    "morse": MORSE_ITEMS,
    "mna_sf": MNA_SF_ITEMS,
    "braden": BRADEN_ITEMS,
}


@pytest.mark.parametrize(
    ("instrument", "total", "level"),
    [
        # 基本公卫 self-care table: 0-3 / 4-8 / 9-18 / >= 19
        ("self_care", 0, "independent"),
        ("self_care", 3, "independent"),
        ("self_care", 4, "mild_dependence"),
        ("self_care", 8, "mild_dependence"),
        ("self_care", 9, "moderate_dependence"),
        ("self_care", 18, "moderate_dependence"),
        ("self_care", 19, "dependent"),
        ("self_care", 37, "dependent"),
        # Barthel: <= 40 / 41-60 / 61-99 / 100, in steps of 5
        ("barthel", 0, "severe"),
        ("barthel", 40, "severe"),
        ("barthel", 45, "moderate"),
        ("barthel", 60, "moderate"),
        ("barthel", 65, "mild"),
        ("barthel", 95, "mild"),
        ("barthel", 100, "independent"),
        # Mini-Cog: 0-2 positive
        ("minicog", 0, "positive"),
        ("minicog", 2, "positive"),
        ("minicog", 3, "negative"),
        ("minicog", 5, "negative"),
        # PHQ-9: 5 / 10 / 15 / 20
        ("phq9", 0, "none"),
        ("phq9", 4, "none"),
        ("phq9", 5, "mild"),
        ("phq9", 9, "mild"),
        ("phq9", 10, "moderate"),
        ("phq9", 14, "moderate"),
        ("phq9", 15, "moderately_severe"),
        ("phq9", 19, "moderately_severe"),
        ("phq9", 20, "severe"),
        ("phq9", 27, "severe"),
        # Morse with the default high-risk cut-off 45 (scores come in steps of 5)
        ("morse", 0, "low"),
        ("morse", 20, "low"),
        ("morse", 25, "moderate"),
        ("morse", 40, "moderate"),
        ("morse", 45, "high"),
        ("morse", 125, "high"),
        # MNA-SF: 0-7 / 8-11 / 12-14
        ("mna_sf", 0, "malnourished"),
        ("mna_sf", 7, "malnourished"),
        ("mna_sf", 8, "at_risk"),
        ("mna_sf", 11, "at_risk"),
        ("mna_sf", 12, "normal"),
        ("mna_sf", 14, "normal"),
        # Braden: <= 9 / 10-12 / 13-14 / 15-18 / >= 19
        ("braden", 6, "very_high"),
        ("braden", 9, "very_high"),
        ("braden", 10, "high"),
        ("braden", 12, "high"),
        ("braden", 13, "moderate"),
        ("braden", 14, "moderate"),
        ("braden", 15, "mild"),
        ("braden", 18, "mild"),
        ("braden", 19, "none"),
        ("braden", 23, "none"),
    ],
)
def test_summed_instrument_cut_offs(instrument, total, level):
    # given answers adding up to the total, when scored
    result = score(instrument, points_totalling(SUMMED[instrument], total))
    # then the total is kept and the band is the published one
    assert result.total == total
    assert result.level == level
    assert result.level_zh and result.level_en


@pytest.mark.parametrize(
    ("instrument", "items", "count", "level"),
    [
        ("ad8", AD8_ITEMS, 0, "negative"),
        ("ad8", AD8_ITEMS, 1, "negative"),
        ("ad8", AD8_ITEMS, 2, "positive"),
        ("ad8", AD8_ITEMS, 8, "positive"),
        ("frail", FRAIL_ITEMS, 0, "robust"),
        ("frail", FRAIL_ITEMS, 1, "pre_frail"),
        ("frail", FRAIL_ITEMS, 2, "pre_frail"),
        ("frail", FRAIL_ITEMS, 3, "frail"),
        ("frail", FRAIL_ITEMS, 5, "frail"),
    ],
)
def test_yes_no_instrument_cut_offs(instrument, items, count, level):
    result = score(instrument, yes_count(items, count))
    assert result.total == count
    assert result.level == level


GDS_SCORING_ANSWER = {code: False for code in GDS15_REVERSE_KEYED}


def test_gds15_reverse_keys_the_five_positive_questions():
    assert set(GDS15_REVERSE_KEYED) == {
        "satisfied",
        "good_spirits",
        "happy",
        "wonderful_alive",
        "full_of_energy",
    }
    # given every question answered "no"
    result = score("gds15", {item.code: False for item in GDS15_ITEMS})
    # then only the five reverse-keyed questions score
    assert result.total == 5
    assert {line.item for line in result.explanation if line.item} == set(GDS15_REVERSE_KEYED)


@pytest.mark.parametrize(
    ("count", "level"),
    [(0, "normal"), (4, "normal"), (5, "suggests_depression"), (15, "suggests_depression")],
)
def test_gds15_cut_off_at_five(count, level):
    result = score("gds15", yes_count(GDS15_ITEMS, count, GDS_SCORING_ANSWER))
    assert result.total == count
    assert result.level == level


@pytest.mark.parametrize(
    ("education", "total", "level"),
    [
        ("illiterate", 17, "possible_dementia"),
        ("illiterate", 18, "normal"),
        ("primary", 20, "possible_dementia"),
        ("primary", 21, "normal"),
        ("secondary_plus", 24, "possible_dementia"),
        ("secondary_plus", 25, "normal"),
        ("secondary_plus", 0, "possible_dementia"),
        ("illiterate", 30, "normal"),
    ],
)
def test_mmse_cut_off_depends_on_education(education, total, level):
    result = score("mmse", {"total": total, "education": education})
    assert result.level == level
    assert result.max_total == 30


def test_mmse_refuses_an_unknown_education_and_a_total_over_30():
    with pytest.raises(Invalid) as caught:
        score("mmse", {"total": 20, "education": "college"})
    assert caught.value.code == "assessment.item.range"
    assert caught.value.detail["item"] == "education"
    with pytest.raises(Invalid) as caught:
        score("mmse", {"total": 31, "education": "primary"})
    assert caught.value.detail["item"] == "total"
    assert "0–30" in caught.value.message


def test_phq9_item_9_raises_the_self_harm_flag_even_with_a_low_total():
    # given only item 9 answered "several days"
    answers = {item.code: 0 for item in PHQ9_ITEMS} | {"self_harm": 1}
    result = score("phq9", answers)
    # then the level is "none" but the safety flag is raised
    assert result.total == 1
    assert result.level == "none"
    assert result.flag_codes == {"self_harm_risk"}


def test_phq9_without_item_9_has_no_flag_even_when_severe():
    answers = {item.code: 3 for item in PHQ9_ITEMS} | {"self_harm": 0}
    result = score("phq9", answers)
    assert result.total == 24
    assert result.level == "severe"
    assert result.flags == []


@pytest.mark.parametrize(
    ("total", "level"), [(25, "moderate"), (45, "moderate"), (50, "moderate"), (55, "high")]
)
def test_morse_cut_off_51_moves_the_high_risk_line(total, level):
    result = score("morse", points_totalling(MORSE_ITEMS, total), high_risk_cutoff=51)
    assert result.level == level
    assert result.details["high_risk_cutoff"] == 51


def test_morse_option_from_the_command_line_arrives_as_text_and_still_works():
    result = score("morse", points_totalling(MORSE_ITEMS, 45), high_risk_cutoff="51")
    assert result.level == "moderate"


@pytest.mark.parametrize("cutoff", [50, 0, "high"])
def test_morse_refuses_a_cut_off_no_source_uses(cutoff):
    with pytest.raises(Invalid) as caught:
        score("morse", points_totalling(MORSE_ITEMS, 45), high_risk_cutoff=cutoff)
    assert caught.value.code == "assessment.option.invalid"
    assert caught.value.detail["allowed"] == [45, 51]


def test_an_option_the_instrument_does_not_have_is_refused():
    with pytest.raises(Invalid) as caught:
        score("barthel", points_totalling(BARTHEL_ITEMS, 100), high_risk_cutoff=45)
    assert caught.value.code == "assessment.option.unknown"


def test_explanation_lists_the_items_that_contributed():
    answers = {item.code: 0 for item in BARTHEL_ITEMS} | {"feeding": 10, "transfers": 15}
    result = score("barthel", answers)
    contributed = [(line.item, line.points) for line in result.explanation if line.item]
    assert contributed == [("feeding", 10), ("transfers", 15)]
    assert "25" in result.explanation[-1].zh and result.explanation[-1].en.endswith("severe dependence")

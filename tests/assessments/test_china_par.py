"""China-PAR 10-year ASCVD risk.

The paper's published worked examples could not be found to test against, so these checks
come from the equation itself: an independent term-by-term computation from the published
coefficients, the direction of every risk factor, the sex-specific terms, the age range and
the category cut-offs.
"""

from __future__ import annotations

import math

import pytest

from yiyang.assessments import RiskFactors, risk_category, score, ten_year_risk
from yiyang.assessments.china_par import mmol_to_mg_dl
from yiyang.errors import Invalid

MAN = {
    "sex": "male",
    "age": 55,
    "sbp": 130,
    "bp_treated": False,
    "tc": 5.0,
    "hdl": 1.3,
    "waist": 85,
    "smoker": False,
    "diabetes": False,
    "north": True,
    "urban": True,
    "family_history": False,
}
WOMAN = {
    "sex": "female",
    "age": 62,
    "sbp": 150,
    "bp_treated": True,
    "tc": 5.8,
    "hdl": 1.1,
    "waist": 88,
    "smoker": False,
    "diabetes": True,
    "north": False,
}


def factors(answers: dict[str, object]) -> RiskFactors:
    return RiskFactors(
        sex=answers["sex"],
        age=answers["age"],
        sbp=answers["sbp"],
        bp_treated=answers["bp_treated"],
        tc_mmol=answers["tc"],
        hdl_mmol=answers["hdl"],
        waist_cm=answers["waist"],
        smoker=answers["smoker"],
        diabetes=answers["diabetes"],
        north=answers["north"],
        urban=bool(answers.get("urban")),
        family_history=bool(answers.get("family_history")),
    )


def test_man_matches_a_term_by_term_computation_from_the_published_coefficients():
    # given the men's equation written out by hand (Yang et al. 2016, 3-decimal set)
    ln_age, ln_sbp = math.log(55), math.log(130)
    terms = [
        31.967 * ln_age,
        26.148 * ln_sbp,  # untreated branch
        -5.731 * ln_age * ln_sbp,
        0.621 * math.log(5.0 / 0.0259),
        -0.695 * math.log(1.3 / 0.0259),
        -0.712 * math.log(85),
        0.475,  # north
        -0.164,  # urban
    ]
    expected = 1 - 0.9707 ** math.exp(sum(terms) - 140.68)
    # when scored
    result = score("china_par", MAN)
    # then the risk agrees to rounding error and the percentage is shown to one decimal
    assert result.details["risk"] == pytest.approx(expected, abs=1e-12)
    assert result.total == round(expected * 100, 1) == 5.3
    assert result.level == "medium"


def test_woman_matches_a_term_by_term_computation_with_the_treated_branch():
    ln_age, ln_sbp = math.log(62), math.log(150)
    terms = [
        24.874 * ln_age,
        20.709 * ln_sbp,  # treated branch
        -4.528 * ln_age * ln_sbp,
        0.058 * math.log(5.8 / 0.0259),
        -0.217 * math.log(1.1 / 0.0259),
        1.475 * math.log(88),
        0.567,  # diabetes
    ]
    expected = 1 - 0.9851 ** math.exp(sum(terms) - 117.26)
    result = score("china_par", WOMAN)
    assert result.details["risk"] == pytest.approx(expected, abs=1e-12)
    assert result.total == round(expected * 100, 1)


def test_cholesterol_is_converted_to_mg_dl_with_0_0259():
    assert mmol_to_mg_dl(5.18) == pytest.approx(200.0, abs=0.01)
    assert score("china_par", MAN).details["tc_mg_dl"] == pytest.approx(5.0 / 0.0259)


@pytest.mark.parametrize(
    ("change", "direction"),
    [
        ({"age": 65}, +1),
        ({"sbp": 150}, +1),
        ({"tc": 6.5}, +1),
        ({"hdl": 1.8}, -1),
        ({"smoker": True}, +1),
        ({"diabetes": True}, +1),
        ({"family_history": True}, +1),
        ({"bp_treated": True}, +1),
        ({"north": False}, -1),
        ({"urban": False}, +1),
    ],
)
def test_each_risk_factor_moves_a_mans_risk_the_expected_way(change, direction):
    base = ten_year_risk(factors(MAN))
    changed = ten_year_risk(factors(MAN | change))
    assert (changed - base) * direction > 0


@pytest.mark.parametrize(
    ("change", "direction"),
    [({"age": 70}, +1), ({"sbp": 170}, +1), ({"smoker": True}, +1), ({"waist": 100}, +1), ({"hdl": 1.6}, -1)],
)
def test_each_risk_factor_moves_a_womans_risk_the_expected_way(change, direction):
    base = ten_year_risk(factors(WOMAN))
    changed = ten_year_risk(factors(WOMAN | change))
    assert (changed - base) * direction > 0


def test_womens_equation_has_no_urban_or_family_history_terms():
    base = score("china_par", WOMAN)
    with_both = score("china_par", WOMAN | {"urban": True, "family_history": True})
    assert with_both.details["risk"] == base.details["risk"]


def test_men_must_say_urban_and_family_history():
    answers = dict(MAN)
    del answers["urban"]
    with pytest.raises(Invalid) as caught:
        score("china_par", answers)
    assert caught.value.code == "assessment.item.missing"
    assert caught.value.detail["item"] == "urban"


@pytest.mark.parametrize(("age", "applicable"), [(34, False), (35, True), (74, True), (75, False)])
def test_only_ages_35_to_74_get_a_risk(age, applicable):
    result = score("china_par", MAN | {"age": age})
    if applicable:
        assert isinstance(result.total, float)
        assert result.level in {"low", "medium", "high"}
    else:
        assert result.total is None
        assert result.level == "not_applicable"
        assert result.level_zh == "不适用"
        assert "risk" not in result.details
        assert any("35–74" in line.zh for line in result.explanation)


@pytest.mark.parametrize(
    ("percent", "category"),
    [
        (0.0, "low"),
        (4.9, "low"),
        (4.94, "low"),
        (4.95, "medium"),
        (5.0, "medium"),
        (9.9, "medium"),
        (9.96, "high"),
        (10.0, "high"),
    ],
)
def test_category_cut_offs_on_the_percentage_as_shown(percent, category):
    assert risk_category(percent).code == category


@pytest.mark.parametrize(
    ("answers", "category"),
    [
        (MAN | {"age": 40, "sbp": 120, "tc": 4.5, "north": False, "urban": False}, "low"),
        (MAN, "medium"),
        (MAN | {"age": 70, "sbp": 160, "bp_treated": True, "smoker": True, "diabetes": True}, "high"),
    ],
)
def test_scored_people_fall_in_each_category(answers, category):
    result = score("china_par", answers)
    assert result.level == category
    assert result.level == risk_category(result.total).code


@pytest.mark.parametrize(
    ("change", "item"),
    [
        ({"sbp": 20}, "sbp"),
        ({"tc": 50}, "tc"),
        ({"waist": 10}, "waist"),
        ({"sex": "x"}, "sex"),
        ({"age": 55.5}, "age"),
    ],
)
def test_implausible_measurements_are_refused(change, item):
    with pytest.raises(Invalid) as caught:
        score("china_par", MAN | change)
    assert caught.value.detail["item"] == item


def test_hdl_above_total_cholesterol_is_refused():
    with pytest.raises(Invalid) as caught:
        score("china_par", MAN | {"tc": 1.2, "hdl": 1.5})
    assert caught.value.detail["item"] == "hdl"

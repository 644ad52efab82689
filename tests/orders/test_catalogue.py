"""The catalogue's pure rules: eligibility with a reason, the subsidy, a district's changes."""

from __future__ import annotations

from pathlib import Path

import pytest

from yiyang.care.orders.catalogue import (
    DEFAULT_CATALOGUE,
    ResidentFacts,
    Status,
    load_catalogue,
    refusals,
    statuses_of,
    subsidy_for,
)
from yiyang.errors import Invalid, NotFound

MEAL = DEFAULT_CATALOGUE.get("meal")
BATHING = DEFAULT_CATALOGUE.get("bathing")
RESPITE = DEFAULT_CATALOGUE.get("respite")


def test_the_catalogue_holds_the_ten_services_each_with_skills_and_duration() -> None:
    codes = {s.code for s in DEFAULT_CATALOGUE}
    assert codes == {
        "meal", "bathing", "home_nursing", "rehab", "escort", "medicine_pickup", "respite", "home_bed_visit",
        "counselling", "carer_training",
    }  # fmt: skip
    assert all(s.skills and s.duration_minutes > 0 and s.providers for s in DEFAULT_CATALOGUE)


def test_statuses_come_from_subsidy_flags_disability_age_and_tier() -> None:
    facts = ResidentFacts(age=81, tier="red", dibao=True, tekun=False, disability_grade=2)
    assert statuses_of(facts) == {
        Status.dibao, Status.disabled, Status.severely_disabled, Status.age_80, Status.tier_red,
    }  # fmt: skip
    assert statuses_of(ResidentFacts(age=70, capability_level="mild")) == {Status.disabled}
    assert statuses_of(ResidentFacts(age=70, capability_level="intact")) == frozenset()


def test_a_resident_under_sixty_is_refused_meals_with_the_reason() -> None:
    found = refusals(MEAL, ResidentFacts(age=56))
    assert [r.code for r in found] == ["order.eligibility.age"]
    assert "60" in found[0].zh and "60" in found[0].en


def test_unknown_age_is_a_refusal_not_a_guess() -> None:
    assert [r.code for r in refusals(MEAL, ResidentFacts(age=None))] == ["order.eligibility.age_unknown"]


def test_respite_needs_serious_disability_or_the_red_tier() -> None:
    assert [r.code for r in refusals(RESPITE, ResidentFacts(age=75))] == ["order.eligibility.status"]
    assert refusals(RESPITE, ResidentFacts(age=75, tier="red")) == []
    assert refusals(RESPITE, ResidentFacts(age=75, capability_level="moderate")) == []
    assert refusals(RESPITE, ResidentFacts(age=75, capability_level="mild")) != []


def test_the_largest_applicable_subsidy_wins_capped_at_the_price() -> None:
    # 特困 15 yuan beats 80+ 5 yuan; the meal costs 15, so the resident pays nothing
    subsidy = subsidy_for(MEAL, ResidentFacts(age=82, tekun=True))
    assert (subsidy.amount_cents, subsidy.basis) == (1500, Status.tekun)
    assert subsidy.payable_cents(MEAL.price_cents) == 0
    assert subsidy_for(MEAL, ResidentFacts(age=82)).amount_cents == 500
    nothing = subsidy_for(MEAL, ResidentFacts(age=65))
    assert (nothing.amount_cents, nothing.basis) == (0, None)
    assert nothing.payable_cents(MEAL.price_cents) == 1500


def test_a_district_changes_prices_and_subsidies_from_a_file(tmp_path: Path) -> None:
    path = tmp_path / "catalogue.toml"
    path.write_text(
        "[services.meal]\nprice_yuan = 12\n[services.meal.subsidies_yuan]\ndibao = 12\nage_80 = 3\n", "utf-8"
    )
    catalogue = load_catalogue(path)
    meal = catalogue.get("meal")
    assert meal.price_cents == 1200
    assert dict(meal.subsidies) == {Status.dibao: 1200, Status.age_80: 300}
    assert catalogue.get("bathing") == BATHING


@pytest.mark.parametrize(
    "text",
    ["[services.lunch]\nprice_yuan = 1\n", "[services.meal]\nprice_yuan = -1\n",
     "[services.meal.subsidies_yuan]\nrich = 5\n"],
)  # fmt: skip
def test_a_bad_catalogue_file_is_refused_with_a_code(tmp_path: Path, text: str) -> None:
    path = tmp_path / "catalogue.toml"
    path.write_text(text, "utf-8")
    with pytest.raises(Invalid):
        load_catalogue(path)


@pytest.mark.parametrize(
    ("name", "text", "code"),
    [
        ("catalogue.toml", "[services.meal]\nprice = 12\n", "catalogue.key"),  # misspelt: not price_yuan
        ("catalogue.toml", "[services.meal\nprice_yuan = 12\n", "catalogue.file"),
        ("catalogue.toml", "[services]\nmeal = 12\n", "catalogue.file"),
        ("catalogue.toml", "services = 12\n", "catalogue.file"),
        ("catalogue.json", '{"services": {"meal": {"subsidies_yuan": 5}}}', "catalogue.file"),
        ("catalogue.json", "[1, 2]", "catalogue.file"),
    ],
)
def test_a_misspelt_or_malformed_catalogue_file_is_refused_with_a_code_not_ignored_or_a_crash(
    tmp_path: Path, name: str, text: str, code: str
) -> None:
    # given a district's file with a misspelt key, broken syntax or the wrong shape
    path = tmp_path / name
    path.write_text(text, "utf-8")
    # then loading it is refused with a code naming the problem, never applied in part or a 500
    with pytest.raises(Invalid) as refused:
        load_catalogue(path)
    assert refused.value.code == code


def test_a_missing_catalogue_file_is_refused_with_a_code(tmp_path: Path) -> None:
    with pytest.raises(Invalid) as refused:
        load_catalogue(tmp_path / "nowhere.toml")
    assert refused.value.code == "catalogue.file"


def test_an_unknown_service_is_not_found() -> None:
    with pytest.raises(NotFound):
        DEFAULT_CATALOGUE.get("massage")

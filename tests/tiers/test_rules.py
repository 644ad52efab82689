"""The tier rules as pure functions: every default rule, explanations, windows, district overrides."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from yiyang.errors import Invalid
from yiyang.tiers.rules import (
    DEFAULT_RULES,
    CodeSpec,
    Fact,
    FactKind,
    Tier,
    evaluate_tier,
    load_rules,
    reasons_from_json,
    rules_from_data,
)

AS_OF = dt.date(2025, 6, 30)


def condition(code: str, day: dt.date = dt.date(2025, 3, 1), display: str | None = None) -> Fact:
    return Fact(
        FactKind.condition,
        code,
        day,
        feed="health",
        source_key="HR-0001",
        source_record_id=11,
        display=display,
    )


def capability(level: str) -> Fact:
    return Fact(
        FactKind.capability_level,
        level,
        dt.datetime(2025, 5, 2, 9, tzinfo=dt.UTC),
        feed="civil",
        source_key="MZ-77",
    )


def assessment(instrument: str, level: str, day: dt.date = dt.date(2025, 6, 1)) -> Fact:
    return Fact(
        FactKind.assessment,
        level,
        dt.datetime.combine(day, dt.time(10), dt.UTC),
        assessment_id=42,
        instrument=instrument,
    )


def flag(instrument: str, code: str) -> Fact:
    return Fact(
        FactKind.assessment_flag,
        code,
        dt.datetime(2025, 6, 1, 10, tzinfo=dt.UTC),
        assessment_id=43,
        instrument=instrument,
    )


def alert(days_ago: int) -> Fact:
    return Fact(
        FactKind.alert, "fall", AS_OF - dt.timedelta(days=days_ago), feed="device", source_key="ALERT-9"
    )


# (rule code, fact, tier it must reach). Each default rule appears at least once.
MATCHING = [
    ("capability.disabled", capability("moderate"), Tier.red),
    ("capability.disabled", capability("severe"), Tier.red),
    ("capability.disabled", capability("total"), Tier.red),
    ("dementia.diagnosis", condition("F00.1"), Tier.red),
    ("dementia.diagnosis", condition("F01"), Tier.red),
    ("dementia.diagnosis", condition("F03"), Tier.red),
    ("dementia.diagnosis", condition("G30.9"), Tier.red),
    ("dementia.ad8", assessment("ad8", "positive"), Tier.red),
    ("dementia.minicog", assessment("minicog", "positive"), Tier.red),
    ("dementia.mmse", assessment("mmse", "possible_dementia"), Tier.red),
    ("dementia.capability_assessment", flag("gbt42195", "dementia"), Tier.red),
    ("disability.barthel", assessment("barthel", "severe"), Tier.red),
    ("disability.barthel", assessment("barthel", "moderate"), Tier.red),
    ("capability.mild", capability("mild"), Tier.yellow),
    ("condition.hypertension", condition("I10"), Tier.yellow),
    ("condition.hypertension", condition("I15.0"), Tier.yellow),
    ("condition.diabetes", condition("E11.9"), Tier.yellow),
    ("condition.diabetes", condition("E14"), Tier.yellow),
    ("condition.chd", condition("I25.1"), Tier.yellow),
    ("condition.stroke", condition("I63.9"), Tier.yellow),
    ("condition.stroke", condition("I69.3"), Tier.yellow),
    ("condition.copd", condition("J44.1"), Tier.yellow),
    ("condition.heart_failure", condition("I50.0"), Tier.yellow),
    ("condition.ckd", condition("N18.5"), Tier.yellow),
    ("condition.parkinson", condition("G20"), Tier.yellow),
    ("condition.severe_mental", condition("F20.0"), Tier.yellow),
    ("rehab.post_surgery", condition("Z48.8", AS_OF - dt.timedelta(days=90)), Tier.yellow),
    ("rehab.post_surgery", condition("Z54.0", AS_OF - dt.timedelta(days=3)), Tier.yellow),
    ("fall.morse_high", assessment("morse", "high", AS_OF - dt.timedelta(days=365)), Tier.yellow),
    ("cvd.china_par_high", assessment("china_par", "high"), Tier.yellow),
    ("alert.recent", alert(30), Tier.yellow),
]

# Facts no default rule takes: the resident stays green.
NOT_MATCHING = [
    capability("intact"),
    condition("F04"),  # organic amnestic syndrome: not a dementia code
    condition("I09"),
    condition("E15"),
    condition("J45"),  # asthma is not COPD
    condition("Z54.1"),  # convalescence after radiotherapy, not surgery
    condition("Z48.8", AS_OF - dt.timedelta(days=91)),  # the rehab window has passed
    assessment("ad8", "negative"),
    assessment("mmse", "normal"),
    assessment("barthel", "mild"),
    assessment("morse", "moderate"),
    assessment("morse", "high", AS_OF - dt.timedelta(days=366)),
    assessment("china_par", "medium"),
    assessment("phq9", "moderate"),  # no default rule reads PHQ-9
    flag("phq9", "self_harm_risk"),
    alert(31),
]


def test_every_default_rule_is_exercised() -> None:
    assert {code for code, _, _ in MATCHING} == {rule.code for rule in DEFAULT_RULES}


@pytest.mark.parametrize(("rule", "fact", "tier"), MATCHING, ids=[f"{r}-{f.value}" for r, f, _ in MATCHING])
def test_rule_puts_resident_in_its_tier_and_names_the_fact(rule: str, fact: Fact, tier: Tier) -> None:
    # given one fact a rule reads
    # when the tier is decided
    decision = evaluate_tier([fact], as_of=AS_OF)
    # then the rule's tier is reached and the one reason names the rule, the fact and its source
    assert decision.tier is tier
    assert [r.rule.code for r in decision.reasons] == [rule]
    reason = decision.reasons[0]
    assert reason.fact == fact
    assert fact.value in reason.zh or (fact.display or "") in reason.zh
    assert fact.observed_on.isoformat() in reason.zh and fact.observed_on.isoformat() in reason.en
    if fact.source_key:
        assert fact.source_key in reason.zh and fact.source_key in reason.en
    if fact.assessment_id:
        assert f"#{fact.assessment_id}" in reason.zh


@pytest.mark.parametrize("fact", NOT_MATCHING, ids=[f"{f.kind.value}-{f.value}" for f in NOT_MATCHING])
def test_fact_no_rule_reads_leaves_resident_green(fact: Fact) -> None:
    decision = evaluate_tier([fact], as_of=AS_OF)
    assert decision.tier is Tier.green
    assert decision.reasons == ()


def test_worst_tier_wins_and_milder_reasons_are_kept_in_order() -> None:
    # given hypertension, a mild capability level and a dementia diagnosis
    facts = [condition("I10", display="高血压"), capability("mild"), condition("F03", display="痴呆")]
    # when decided
    decision = evaluate_tier(facts, as_of=AS_OF)
    # then red wins, red reasons come first, and the yellow ones are still listed
    assert decision.tier is Tier.red
    assert [r.rule.code for r in decision.reasons] == [
        "dementia.diagnosis",
        "capability.mild",
        "condition.hypertension",
    ]
    assert [r.rule.code for r in decision.decisive] == ["dementia.diagnosis"]


def test_no_facts_is_green_without_reasons() -> None:
    decision = evaluate_tier([], as_of=AS_OF)
    assert decision.tier is Tier.green and decision.reasons == ()


def test_explanation_says_which_fact_from_which_source_and_when() -> None:
    decision = evaluate_tier([condition("E11.9", dt.date(2025, 4, 3), display="2型糖尿病")], as_of=AS_OF)
    reason = decision.reasons[0]
    assert reason.zh == "糖尿病：诊断 E11.9 2型糖尿病（来源：卫健 HR-0001，2025-04-03）"
    assert reason.en == "diabetes: diagnosis E11.9 2型糖尿病 (source: Health HR-0001, 2025-04-03)"


def test_a_timed_fact_is_dated_in_china_time() -> None:
    # given a capability level recorded at 23:30 UTC, which is 07:30 the next morning in Beijing
    fact = Fact(
        FactKind.capability_level,
        "severe",
        dt.datetime(2025, 5, 2, 23, 30, tzinfo=dt.UTC),
        feed="civil",
        source_key="MZ-1",
    )
    reason = evaluate_tier([fact], as_of=AS_OF).reasons[0]
    assert "2025-05-03" in reason.zh


def test_stored_reasons_read_back_with_the_same_words() -> None:
    decision = evaluate_tier(
        [capability("severe"), condition("I10"), assessment("morse", "high")], as_of=AS_OF
    )
    stored = json.loads(decision.dumps_reasons())
    assert stored[0][:4] == ["capability.disabled", "red", "capability_level", "severe"]
    again = reasons_from_json(stored)
    assert [r.fact for r in reasons_from_json(decision.as_json())] == [r.fact for r in decision.reasons]
    assert [(r.rule.code, r.tier, r.zh, r.en) for r in again] == [
        (r.rule.code, r.tier, r.zh, r.en) for r in decision.reasons
    ]


def test_stored_reason_of_a_removed_rule_reads_by_its_code() -> None:
    stored = [
        ["local.retired", "yellow", "condition", "I10", "2025-01-01", "health", "HR-1", 3, None, None, None]
    ]
    reason = reasons_from_json(stored)[0]
    assert reason.tier is Tier.yellow and reason.zh.startswith("local.retired")


def test_duplicate_facts_count_once() -> None:
    fact = condition("I10")
    assert len(evaluate_tier([fact, fact], as_of=AS_OF).reasons) == 1


# -- codes -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "code", "matches"),
    [
        ("I10-I15", "I10", True), ("I10-I15", "i13.2", True), ("I10-I15", "I16", False), ("J44", "J44.9", True),
        ("J44", "J4", False), ("Z54.0", "Z540", True), ("Z54.0", "Z54.01", True), ("Z54.0", "Z54.1", False),
    ],
)  # fmt: skip
def test_icd10_specs(spec: str, code: str, matches: bool) -> None:
    assert CodeSpec.parse(spec).matches(code) is matches


@pytest.mark.parametrize("spec", ["I1", "10-15", "I15-I10", "I10-J15", "I10.1-I10.9", "hypertension"])
def test_bad_icd10_spec_is_refused(spec: str) -> None:
    with pytest.raises(ValueError):
        CodeSpec.parse(spec)


# -- a district's rules ------------------------------------------------------------------------


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_toml_file_disables_changes_and_adds_rules(tmp_path: Path) -> None:
    # given a district file that drops hypertension, shortens the rehab window and adds emphysema
    path = write(
        tmp_path, "tiers.toml",
        """
[[rules]]
code = "condition.hypertension"
enabled = false

[[rules]]
code = "rehab.post_surgery"
within_days = 30

[[rules]]
code = "condition.emphysema"
tier = "yellow"
kind = "condition"
icd10 = ["J43"]
label_zh = "肺气肿"
label_en = "emphysema"
""",
    )  # fmt: skip
    rules = load_rules(path)
    codes = [rule.code for rule in rules]
    # then hypertension no longer counts, a 60-day-old operation no longer does, emphysema does
    assert "condition.hypertension" not in codes and codes[-1] == "condition.emphysema"
    assert evaluate_tier([condition("I10")], rules, as_of=AS_OF).tier is Tier.green
    assert (
        evaluate_tier([condition("Z48.8", AS_OF - dt.timedelta(days=60))], rules, as_of=AS_OF).tier
        is Tier.green
    )
    emphysema = evaluate_tier([condition("J43.9")], rules, as_of=AS_OF)
    assert emphysema.tier is Tier.yellow and emphysema.reasons[0].zh.startswith("肺气肿")
    # and the defaults themselves are untouched
    assert evaluate_tier([condition("I10")], as_of=AS_OF).tier is Tier.yellow


def test_json_file_can_replace_the_defaults(tmp_path: Path) -> None:
    path = write(
        tmp_path, "tiers.json",
        json.dumps({"replace_defaults": True, "rules": [
            {"code": "only.dementia", "tier": "red", "kind": "condition", "icd10": ["F00-F03"], "label_zh": "痴呆", "label_en": "dementia"}
        ]}),
    )  # fmt: skip
    rules = load_rules(path)
    assert [rule.code for rule in rules] == ["only.dementia"]
    assert evaluate_tier([capability("total")], rules, as_of=AS_OF).tier is Tier.green


def test_moving_a_rule_to_another_tier(tmp_path: Path) -> None:
    rules = rules_from_data({"rules": [{"code": "capability.mild", "tier": "red"}]})
    assert evaluate_tier([capability("mild")], rules, as_of=AS_OF).tier is Tier.red


@pytest.mark.parametrize(
    ("data", "words"),
    [
        ({"rules": [{"code": "condition.diabetes", "tier": "purple"}]}, "condition.diabetes"),
        ({"rules": [{"code": "condition.diabetes", "colour": "red"}]}, "colour"),
        ({"rules": [{"code": "condition.diabetes", "icd10": ["diabetes"]}]}, "ICD-10"),
        ({"rules": [{"code": "new.rule", "tier": "red", "kind": "condition"}]}, "label_zh"),
        ({"rules": [{"code": "new.rule", "tier": "red", "kind": "assessment", "instrument": "sf36", "label_zh": "x", "label_en": "x"}]}, "instrument"),
        ({"rules": [{"code": "capability.mild", "values": ["slightly"]}]}, "capability"),
        ({"rules": [{"code": "rehab.post_surgery", "within_days": -1}]}, "within_days"),
        ({"rules": [{"tier": "red"}]}, "code"),
        ({"rule": []}, "rule"),
        (["not", "an", "object"], "object"),
    ],
)  # fmt: skip
def test_bad_rules_are_refused_with_a_reason(data: object, words: str) -> None:
    with pytest.raises(Invalid) as caught:
        rules_from_data(data)
    assert caught.value.code == "tier.rules.invalid"
    assert words in caught.value.message


def test_unreadable_rules_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(Invalid) as caught:
        load_rules(write(tmp_path, "bad.toml", "[[rules]\ncode="))
    assert caught.value.code == "tier.rules.invalid"
    with pytest.raises(Invalid):
        load_rules(tmp_path / "missing.toml")

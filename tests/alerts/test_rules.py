"""Rules as data, evaluated as pure functions on a fake clock: no database."""

from __future__ import annotations

import datetime as dt

import pytest

from yiyang.alerts.rules import (
    RulesInvalid,
    absence_changes,
    apply_overrides,
    compile_rules,
    default_document,
    duration_changes,
    event_hits,
    steps_due,
    thresholds_crossed,
)
from yiyang.devices.telemetry import READING_BY_CODE, READINGS

T0 = dt.datetime(2026, 11, 24, 2, 0, tzinfo=dt.UTC)  # 10:00 in Beijing
RULES = compile_rules(default_document())
SECTIONS = ("thresholds", "events", "durations", "absence")


def values(**by_code: float) -> tuple[float | None, ...]:
    slots: list[float | None] = [None] * len(READINGS)
    for code, value in by_code.items():
        slots[READING_BY_CODE[code.replace("_", "-")]] = value
    return tuple(slots)


@pytest.mark.parametrize(
    ("reading", "value", "fires"),
    [
        ("8480-6", 180, "bp_urgent"),  # SBP >= 180 (basic public health spec)
        ("8480-6", 179, None),
        ("8462-4", 110, "bp_urgent"),  # DBP >= 110
        ("14771-0", 16.7, "glucose_urgent"),
        ("14771-0", 3.9, "glucose_urgent"),
        ("14771-0", 5.6, None),
        ("59408-5", 91, "spo2_low"),  # NEWS2 <= 91
        ("59408-5", 92, None),
        ("8867-4", 131, "heart_rate_abnormal"),
        ("8867-4", 40, "heart_rate_abnormal"),
        ("8867-4", 72, None),
        ("8310-5", 39.1, "temperature_abnormal"),
        ("8310-5", 36.6, None),
        ("9279-1", 25, "respiratory_rate_abnormal"),
    ],
)
def test_thresholds_fire_at_their_cited_values(reading: str, value: float, fires: str | None) -> None:
    hits = thresholds_crossed(RULES, values(**{reading.replace("-", "_"): value}), T0)
    assert [hit.rule for hit in hits] == ([fires] if fires else [])


def test_fall_sos_smoke_and_gas_fire_at_once_and_presence_does_not() -> None:
    for kind in ("fall", "sos", "smoke", "gas"):
        assert [hit.rule for hit in event_hits(RULES, kind, T0)] == [kind]
    assert event_hits(RULES, "presence", T0) == []


def test_out_of_bed_at_night_starts_a_clock_and_in_bed_stops_it() -> None:
    night = dt.datetime(2026, 11, 24, 18, 30, tzinfo=dt.UTC)  # 02:30 in Beijing
    started = duration_changes(RULES, "out_of_bed", night)
    assert [(c.rule, c.due) for c in started] == [("out_of_bed_long", night + dt.timedelta(minutes=30))]
    assert [(c.rule, c.due) for c in duration_changes(RULES, "in_bed", night)] == [("out_of_bed_long", None)]
    # by day, getting up is not watched
    assert duration_changes(RULES, "out_of_bed", T0) == []


def test_absence_clock_is_for_elders_living_alone_and_silence_for_every_device() -> None:
    alone = absence_changes(RULES, "motion", T0, living_alone=True)
    assert [(c.rule, c.due) for c in alone] == [("no_activity", T0 + dt.timedelta(hours=12))]
    assert absence_changes(RULES, "motion", T0, living_alone=False) == []
    silent = absence_changes(RULES, None, T0, living_alone=False)
    assert [(c.rule, c.due) for c in silent] == [("device_silent", T0 + dt.timedelta(hours=26))]


def test_overrides_change_one_rule_and_can_switch_it_off() -> None:
    document = apply_overrides(
        default_document(),
        [
            {"rule": "bp_urgent", "params": {"when": [["8480-6", ">=", 170]]}},
            {"rule": "out_of_bed_long", "params": {"minutes": 45}},
            {"rule": "gas", "params": {"enabled": False}},
        ],
    )
    rules = compile_rules(document)
    assert [h.rule for h in thresholds_crossed(rules, values(**{"8480_6": 172}), T0)] == ["bp_urgent"]
    night = dt.datetime(2026, 11, 24, 18, 30, tzinfo=dt.UTC)
    assert duration_changes(rules, "out_of_bed", night)[0].due == night + dt.timedelta(minutes=45)
    assert event_hits(rules, "gas", T0) == []
    # the district's defaults are untouched
    assert [h.rule for h in thresholds_crossed(RULES, values(**{"8480_6": 172}), T0)] == []


@pytest.mark.parametrize(
    "override",
    [
        {"rule": "nope", "params": {}},
        {"rule": "bp_urgent", "params": {"when": [["0000-0", ">=", 1]]}},
        {"rule": "bp_urgent", "params": {"when": [["8480-6", "=~", 1]]}},
        {"rule": "out_of_bed_long", "params": {"minutes": 0}},
        {"rule": "fall", "params": {"chain": "nowhere"}},
        {"rule": "fall", "params": {"event": "smoke"}},
    ],
)
def test_a_bad_override_is_refused_with_its_reason(override: dict) -> None:
    with pytest.raises(RulesInvalid):
        compile_rules(apply_overrides(default_document(), [override]))


@pytest.mark.parametrize(
    ("rule", "flag", "value"),
    [
        ("spo2_low", "enabled", "false"),
        ("spo2_low", "tier_fact", "false"),
        ("no_activity", "living_alone_only", "false"),
        ("fall", "enabled", 0),
        ("fall", "tier_fact", 1),
        ("no_activity", "living_alone_only", None),
        ("gas", "enabled", []),
    ],
)
def test_a_flag_that_is_not_true_or_false_is_refused(rule: str, flag: str, value: object) -> None:
    # bool("false") is True: taken as it was, the text "false" would leave the rule on
    with pytest.raises(RulesInvalid, match=f"{rule}: {flag} must be true or false"):
        compile_rules(apply_overrides(default_document(), [{"rule": rule, "params": {flag: value}}]))


def test_real_flags_switch_rules_and_the_district_rules_hold_only_real_flags() -> None:
    rules = compile_rules(
        apply_overrides(
            default_document(),
            [
                {"rule": "spo2_low", "params": {"enabled": False, "tier_fact": True}},
                {"rule": "no_activity", "params": {"living_alone_only": False}},
            ],
        )
    )
    spo2, absence = rules.rule("spo2_low"), rules.rule("no_activity")
    assert spo2 is not None and (spo2.enabled, spo2.tier_fact) == (False, True)
    assert absence is not None and absence.living_alone_only is False
    # the shipped district rules still load: every flag in them is a real boolean
    items = [item for section in SECTIONS for item in default_document().get(section, [])]
    for item in items:
        for flag in ("enabled", "tier_fact", "living_alone_only"):
            assert isinstance(item.get(flag, False), bool), (item["code"], flag)
    assert [rule.code for rule in compile_rules(default_document()).rules] == [item["code"] for item in items]


def test_a_fall_escalates_to_the_doctors_after_5_minutes_and_the_station_after_15() -> None:
    chain = RULES.chain("fall")
    assert steps_due(chain, T0, 0, T0) == [0]
    assert steps_due(chain, T0, 1, T0 + dt.timedelta(minutes=4, seconds=59)) == []
    assert steps_due(chain, T0, 1, T0 + dt.timedelta(minutes=5)) == [1]
    assert steps_due(chain, T0, 1, T0 + dt.timedelta(minutes=20)) == [1, 2]
    assert steps_due(chain, T0, 3, T0 + dt.timedelta(hours=1)) == []

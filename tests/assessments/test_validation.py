"""Bad answers are refused with a machine code and a message naming the item and what it allows."""

from __future__ import annotations

import re

import pytest

from tests.assessments.builders import best
from yiyang.assessments import INSTRUMENTS, get_instrument, score
from yiyang.assessments.scoring import BARTHEL_ITEMS, FRAIL_ITEMS, MORSE_ITEMS, SELF_CARE_ITEMS
from yiyang.errors import Invalid

CHINESE_THEN_ENGLISH = re.compile(r"^[^()]*[\u4e00-\u9fff][^()]*\(.*[A-Za-z].*\)$", re.S)


def refused(instrument: str, answers: object) -> Invalid:
    with pytest.raises(Invalid) as caught:
        score(instrument, answers)  # type: ignore[arg-type]
    return caught.value


def test_a_score_outside_the_items_allowed_values_names_item_and_values():
    # given a Barthel feeding score of 7 (allowed 0, 5, 10)
    error = refused("barthel", {**best(BARTHEL_ITEMS), "feeding": 7})
    # then the error says which item, what it allows, in Chinese then English
    assert error.code == "assessment.item.range"
    assert error.status_code == 422
    assert error.detail["item"] == "feeding"
    assert error.detail["allowed"] == [0, 5, 10]
    assert "进食" in error.message and "0、5、10" in error.message
    assert "one of 0, 5, 10" in error.message
    assert CHINESE_THEN_ENGLISH.match(error.message)


@pytest.mark.parametrize(
    ("instrument", "item", "raw"),
    [
        ("barthel", "feeding", "\ud800"),  # a lone surrogate: no UTF-8 response can carry it
        ("barthel", "feeding", "13800138000"),  # a phone number typed in the wrong box
        ("barthel", "feeding", 7),
        ("frail", "fatigue", "x" * 500),
    ],
)
def test_a_refused_answer_is_never_repeated_in_the_message(instrument, item, raw):
    # given an answer that is wrong for its item (and may be anything a person typed)
    answers = best(BARTHEL_ITEMS) if instrument == "barthel" else {i.code: False for i in FRAIL_ITEMS}
    # when it is scored
    error = refused(instrument, {**answers, item: raw})
    # then the message names the item and what it allows, not what was sent
    assert error.detail["item"] == item
    assert str(raw) not in error.message
    assert "got" not in error.message and "收到" not in error.message
    assert CHINESE_THEN_ENGLISH.match(error.message)
    # and no problem's message repeats it, so any response can carry them
    for problem in error.detail["errors"]:
        assert str(raw) not in problem["message"]
        problem["message"].encode("utf-8")


def test_an_unknown_item_is_named_in_detail_but_not_repeated_in_the_message():
    # given an answer under a key no Barthel item has
    error = refused("barthel", {**best(BARTHEL_ITEMS), "\ud800walk": 5})
    # then it is refused as unknown, the key sits in detail only, and the message lists the items
    assert error.code == "assessment.item.unknown"
    assert error.detail["item"] == "\ud800walk"
    assert "walk" not in error.message and "feeding" in error.message
    error.message.encode("utf-8")


@pytest.mark.parametrize("raw", ["\ud800", "13800138000", 50])
def test_a_refused_option_is_never_repeated_in_the_message(raw):
    # given a Morse high-risk cut-off that is not one of the published ones
    with pytest.raises(Invalid) as caught:
        score("morse", {item.code: 0 for item in MORSE_ITEMS}, high_risk_cutoff=raw)
    # then the message names the option and what it allows, not what was sent
    error = caught.value
    assert error.code == "assessment.option.invalid" and error.detail["allowed"] == [45, 51]
    assert str(raw) not in error.message and "got" not in error.message
    assert "45" in error.message and CHINESE_THEN_ENGLISH.match(error.message)


def test_self_care_items_accept_only_their_own_published_scores():
    # 梳洗 allows 0/1/3/7; 2 is not among them though it is below the maximum
    error = refused("self_care", {**best(SELF_CARE_ITEMS), "grooming": 2})
    assert error.code == "assessment.item.range"
    assert error.detail["allowed"] == [0, 1, 3, 7]


def test_every_problem_is_listed_not_only_the_first():
    error = refused("barthel", {"feeding": 7, "stairs": 20, "walk": 5})
    codes = [(problem["code"], problem["item"]) for problem in error.detail["errors"]]
    assert ("assessment.item.unknown", "walk") in codes
    assert ("assessment.item.range", "feeding") in codes
    assert ("assessment.item.range", "stairs") in codes
    assert ("assessment.item.missing", "bathing") in codes


def test_a_missing_item_is_named():
    answers = best(BARTHEL_ITEMS)
    del answers["stairs"]
    error = refused("barthel", answers)
    assert error.code == "assessment.item.missing"
    assert error.detail["item"] == "stairs"
    assert "上下楼梯" in error.message


@pytest.mark.parametrize("value", ["ten", 2.5, True, [5]])
def test_a_score_that_is_not_a_whole_number_is_a_type_error(value):
    error = refused("barthel", {**best(BARTHEL_ITEMS), "feeding": value})
    assert error.code == "assessment.item.type"
    assert error.detail["item"] == "feeding"


def test_whole_numbers_written_as_text_or_float_are_accepted():
    result = score("barthel", {**best(BARTHEL_ITEMS), "feeding": "5", "stairs": 10.0})
    assert result.total == 95


@pytest.mark.parametrize("value", ["maybe", 2, None])
def test_yes_no_items_refuse_other_answers(value):
    answers = {item.code: False for item in FRAIL_ITEMS} | {"fatigue": value}
    error = refused("frail", answers)
    assert error.detail["item"] == "fatigue"
    assert error.code in {"assessment.item.type", "assessment.item.missing"}


@pytest.mark.parametrize(
    ("value", "scores"), [(True, 1), ("是", 1), ("yes", 1), (1, 1), ("否", 0), ("no", 0), (0, 0)]
)
def test_yes_no_items_accept_the_usual_spellings(value, scores):
    answers = {item.code: False for item in FRAIL_ITEMS} | {"fatigue": value}
    assert score("frail", answers).total == scores


@pytest.mark.parametrize("answers", [[1, 2, 3], "feeding=10", None])
def test_answers_must_be_an_object(answers):
    assert refused("barthel", answers).code == "assessment.input.shape"


def test_unknown_instrument_lists_the_known_ones():
    with pytest.raises(Invalid) as caught:
        get_instrument("katz")
    assert caught.value.code == "assessment.instrument.unknown"
    assert "barthel" in caught.value.detail["known"]


def test_instrument_codes_tolerate_hyphens_and_case():
    assert get_instrument("China-PAR").code == "china_par"
    assert get_instrument("MNA-SF").code == "mna_sf"


def test_registry_holds_every_instrument_with_names_items_and_a_scorer():
    assert set(INSTRUMENTS) == {
        "gbt42195",
        "self_care",
        "barthel",
        "ad8",
        "minicog",
        "mmse",
        "phq9",
        "gds15",
        "morse",
        "frail",
        "mna_sf",
        "braden",
        "bp",
        "china_par",
    }
    for instrument in INSTRUMENTS.values():
        assert instrument.name_zh and instrument.name_en and instrument.items and callable(instrument.scorer)
        described = instrument.describe()
        assert all(item["label_zh"] and item["label_en"] for item in described["items"])
        codes = [item.code for item in instrument.items]
        assert len(codes) == len(set(codes))


@pytest.mark.parametrize(
    ("instrument", "answers", "item"),
    [
        ("bp", {"systolic": 10**400, "diastolic": 80}, "systolic"),
        ("bp", {"systolic": 140, "diastolic": -(10**400)}, "diastolic"),
        (
            "china_par",
            {"sex": "male", "age": 10**400, "sbp": 140, "bp_treated": False, "tc": 5.2, "hdl": 1.3,
             "waist": 90, "smoker": True, "diabetes": False, "north": True, "urban": True,
             "family_history": False},
            "age",
        ),
    ],
)  # fmt: skip
def test_a_whole_number_too_large_for_a_float_is_out_of_range_not_a_crash(instrument, answers, item):
    # JSON carries whole numbers of any length; converting one to float overflowed
    error = refused(instrument, answers)
    assert (error.code, error.detail["item"]) == ("assessment.item.range", item)


@pytest.mark.parametrize(
    ("instrument", "item", "raw"), [("barthel", "feeding", "1_0"), ("bp", "systolic", "1_40")]
)
def test_digits_with_an_underscore_are_not_read_as_a_number(instrument, item, raw):
    # Python's int("1_0") is 10: a slip on the keyboard must not become a score
    answers = {"bp": {"systolic": 140, "diastolic": 80}}.get(instrument) or best(BARTHEL_ITEMS)
    error = refused(instrument, {**answers, item: raw})
    assert (error.code, error.detail["item"]) == ("assessment.item.type", item)


@pytest.mark.parametrize("name", ["code", "answers"])
def test_an_option_named_like_a_parameter_is_an_unknown_option(name):
    with pytest.raises(Invalid) as caught:
        score("morse", best(MORSE_ITEMS), **{name: 1})
    assert (caught.value.code, caught.value.detail["option"]) == ("assessment.option.unknown", name)


@pytest.mark.parametrize("entry", ["F03\ud800", "F03\x00", "\ud800"])
def test_a_diagnosis_with_a_lone_surrogate_or_control_character_is_refused(entry):
    answers = {item.code: item.max_points for item in get_instrument("gbt42195").items if item.required}
    error = refused("gbt42195", {**answers, "diagnoses": [entry]})
    assert (error.code, error.detail["item"]) == ("assessment.item.type", "diagnoses")

"""GB 11643 ID numbers as people type them: only ASCII digits are ever kept."""

from __future__ import annotations

import datetime as dt

import pytest

from yiyang.residents.identity import IdNumberError, check_character, parse_id_number

TODAY = dt.date(2026, 1, 1)
FIRST17 = "11010819480312004"
NUMBER = FIRST17 + check_character(FIRST17)
FULL_WIDTH = str.maketrans("0123456789X", "０１２３４５６７８９Ｘ")
ARABIC_INDIC = str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩")


@pytest.mark.parametrize(
    "typed", [NUMBER.translate(FULL_WIDTH), NUMBER[:17].translate(FULL_WIDTH) + NUMBER[17]]
)
def test_full_width_digits_are_kept_as_their_ascii_digits(typed: str) -> None:
    parsed = parse_id_number(typed, TODAY)
    assert parsed.number == NUMBER and parsed.number.isascii()


def test_a_legacy_number_in_full_width_digits_is_upgraded_in_ascii() -> None:
    legacy = (FIRST17[:6] + FIRST17[8:] + "3")[:15]
    parsed = parse_id_number(legacy.translate(FULL_WIDTH), TODAY)
    assert parsed.upgraded_from_15 and parsed.number.isascii()
    assert parsed.number == parse_id_number(legacy, TODAY).number


def test_digits_of_other_scripts_are_not_an_id_number() -> None:
    with pytest.raises(IdNumberError) as raised:
        parse_id_number(NUMBER[:17].translate(ARABIC_INDIC) + NUMBER[17], TODAY)
    assert raised.value.code == "resident.id_number.format"


def test_a_trailing_newline_inside_the_value_is_not_part_of_a_valid_shape() -> None:
    with pytest.raises(IdNumberError):
        parse_id_number(NUMBER[:15] + "\n" + NUMBER[15:], TODAY)

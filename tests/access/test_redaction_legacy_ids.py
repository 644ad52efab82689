"""Redaction of the legacy 15-digit ID number (GB 11643-1989), in a line and in an exception."""

from __future__ import annotations

import logging

import pytest

from yiyang.access.redaction import ID_NUMBER_MARK, PHONE_MARK, PiiRedactingFilter, redact_pii

LEGACY_ID = "110105491231002"  # area 110105, born 1949-12-31, sequence 002


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (f"no resident for {LEGACY_ID}", f"no resident for {ID_NUMBER_MARK}"),
        (f"id={LEGACY_ID}&phone=+86 138-0013-8000", f"id={ID_NUMBER_MARK}&phone={PHONE_MARK}"),
        (f"身份证{LEGACY_ID}。", f"身份证{ID_NUMBER_MARK}。"),
    ],
)
def test_a_15_digit_id_number_is_redacted(line: str, expected: str) -> None:
    assert redact_pii(line) == expected


@pytest.mark.parametrize(
    "line", ["device imei 490154203237518", "order 1234567890123456", "took 123456789012345 ns"]
)
def test_other_15_digit_numbers_without_a_birth_date_are_left_alone(line: str) -> None:
    assert redact_pii(line) == line


def test_a_15_digit_id_number_in_exception_args_is_redacted() -> None:
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    handler = Keep()
    handler.addFilter(PiiRedactingFilter())
    logger = logging.getLogger("tests.access.redaction.legacy")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        try:
            raise KeyError(LEGACY_ID)
        except KeyError as error:
            logger.warning("lookup failed: %r", error, exc_info=True)
    finally:
        logger.removeHandler(handler)
    text = logging.Formatter().format(records[0])
    assert LEGACY_ID not in text and ID_NUMBER_MARK in text

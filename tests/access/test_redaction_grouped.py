"""Redaction of ID numbers written in 6-8-4 groups (area, birth date, sequence) and of mobiles
written in 3-4-4 groups, in a line, in log arguments, in exception args and in tracebacks."""

from __future__ import annotations

import logging

import pytest

from yiyang.access.redaction import ID_NUMBER_MARK, PHONE_MARK, PiiRedactingFilter, redact_pii

GROUPED_IDS = ["110108 19480312 0242", "110108-19480312-0242", "110108 19480312 024X", "110108-19480312 0242"]
GROUPED_PHONES = ["138 1234 5678", "138-1234-5678", "+86 138 1234 5678", "+86-138-1234-5678"]


@pytest.mark.parametrize("number", GROUPED_IDS)
def test_an_id_number_in_groups_is_redacted(number: str) -> None:
    assert redact_pii(f"no resident for {number}.") == f"no resident for {ID_NUMBER_MARK}."
    assert redact_pii(f"身份证：{number}，") == f"身份证：{ID_NUMBER_MARK}，"


@pytest.mark.parametrize("number", GROUPED_PHONES)
def test_a_mobile_in_groups_is_redacted(number: str) -> None:
    assert redact_pii(f"call {number} now") == f"call {PHONE_MARK} now"


@pytest.mark.parametrize(
    "line",
    [
        "visit on 2024-06-01 at 09:30",
        "dated 19480312",
        "area 110108 has 1200 residents",
        "area 110108, day 19480312",
        "paid 1 234 567.89 yuan",
        "device 110108-1948-0312 online",
        "gateway 35-209900-176148-1",
        "device imei 490154203237518",
        "landline 010-62751234",
        "order 2024 0601 1234",
    ],
)
def test_ordinary_numbers_stay(line: str) -> None:
    assert redact_pii(line) == line


def _records() -> tuple[logging.Logger, list[logging.LogRecord], logging.Handler]:
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    handler = Keep()
    handler.addFilter(PiiRedactingFilter())
    logger = logging.getLogger("tests.access.redaction.grouped")
    logger.addHandler(handler)
    logger.propagate = False
    return logger, records, handler


@pytest.mark.parametrize(
    ("number", "mark"), [(GROUPED_IDS[0], ID_NUMBER_MARK), (GROUPED_PHONES[2], PHONE_MARK)]
)
def test_grouped_numbers_in_log_records_exception_args_and_tracebacks_are_redacted(
    number: str, mark: str
) -> None:
    logger, records, handler = _records()
    try:
        logger.warning("no match for %s", number)  # an argument
        logger.warning(f"no match for {number}")  # the message itself
        try:
            raise KeyError(number)
        except KeyError as error:
            logger.warning("lookup failed: %r", error, exc_info=True)  # exception args and traceback
        try:
            raise ValueError(f"bad row {number}")
        except ValueError:
            logger.exception("import row failed")  # the traceback alone
    finally:
        logger.removeHandler(handler)
    output = "\n".join(logging.Formatter("%(message)s").format(record) for record in records)
    assert number not in output and number.replace(" ", "").replace("-", "") not in output
    assert output.count(mark) >= 5

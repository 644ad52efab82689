"""No ID numbers (18-digit, legacy 15-digit, or written in 6-8-4 groups) or mobile numbers in log lines."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from yiyang.access.redaction import ID_NUMBER_MARK, PHONE_MARK, PiiRedactingFilter, redact_pii

ID_NUMBER = "11010519491231002X"
LEGACY_ID = "110105491231002"  # area 110105, born 1949-12-31, sequence 002 (GB 11643-1989)
GROUPED_IDS = ["110108 19480312 0242", "110108-19480312-0242", "110108 19480312 024X", "110108-19480312 0242"]
GROUPED_PHONES = ["138 1234 5678", "138-1234-5678", "+86 138 1234 5678", "+86-138-1234-5678"]


@contextmanager
def filtered_log(name: str) -> Iterator[tuple[logging.Logger, list[logging.LogRecord]]]:
    """A logger whose only handler has the filter, and the records it kept."""
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    handler = Keep()
    handler.addFilter(PiiRedactingFilter())
    logger = logging.getLogger(name)
    logger.addHandler(handler)
    logger.propagate = False
    try:
        yield logger, records
    finally:
        logger.removeHandler(handler)


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (f"matched {ID_NUMBER} to resident 42", f"matched {ID_NUMBER_MARK} to resident 42"),
        ("matched 110105194912310021, then", f"matched {ID_NUMBER_MARK}, then"),
        (f"ID{ID_NUMBER}:", f"ID{ID_NUMBER_MARK}:"),
        ("call 13800138000 now", f"call {PHONE_MARK} now"),
        ("device AB13800138000CD", f"device AB{PHONE_MARK}CD"),
        ("call +86 138-0013-8000 now", f"call {PHONE_MARK} now"),
        ("电话13912345678。", f"电话{PHONE_MARK}。"),
        ("GET /api/residents?phone=13800138000&id=11010519491231002x", f"GET /api/residents?phone={PHONE_MARK}&id={ID_NUMBER_MARK}"),
    ],
)  # fmt: skip
def test_id_numbers_and_phones_are_redacted(line: str, expected: str) -> None:
    assert redact_pii(line) == expected


@pytest.mark.parametrize(
    "line",
    ["resident 42 imported 1200000 rows in 12.5 s", "timestamp 1732435200123", "order 12345678901234567890",
     "landline 010-62751234"],
)  # fmt: skip
def test_other_numbers_are_left_alone(line: str) -> None:
    assert redact_pii(line) == line


def test_the_filter_redacts_arguments_and_tracebacks() -> None:
    # given a logger whose handler has the filter
    with filtered_log("tests.access.redaction") as (logger, records):
        # when PII arrives as an argument, as a number, and inside an exception
        logger.warning("no match for %s", ID_NUMBER)
        logger.warning("phone %d unreachable", 13800138000)
        try:
            raise ValueError(f"bad id {ID_NUMBER}")
        except ValueError:
            logger.exception("import row failed")
    # then none of the formatted output holds it
    formatter = logging.Formatter("%(message)s")
    output = "\n".join(formatter.format(record) for record in records)
    assert ID_NUMBER not in output and "13800138000" not in output
    assert output.count(ID_NUMBER_MARK) == 2 and PHONE_MARK in output


def test_create_app_installs_redaction_for_every_logger(caplog: pytest.LogCaptureFixture) -> None:
    # given the app created (the handler below was never given a filter)
    from yiyang.app import create_app
    from yiyang.db import Database

    database = Database("sqlite:///:memory:")
    create_app(database)
    database.dispose()
    # when any logger logs an ID number
    with caplog.at_level(logging.INFO):
        logging.getLogger("uvicorn.access").info(
            '%s - "GET /x?id=%s HTTP/1.1" %d', "127.0.0.1", ID_NUMBER, 200
        )
    # then the captured line is redacted and still formatted from its arguments
    assert caplog.records[-1].getMessage() == f'127.0.0.1 - "GET /x?id={ID_NUMBER_MARK} HTTP/1.1" 200'
    assert isinstance(caplog.records[-1].args, tuple) and len(caplog.records[-1].args) == 3


# -- legacy 15-digit ID numbers ---------------------------------------------------------


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
    with filtered_log("tests.access.redaction.legacy") as (logger, records):
        try:
            raise KeyError(LEGACY_ID)
        except KeyError as error:
            logger.warning("lookup failed: %r", error, exc_info=True)
    text = logging.Formatter().format(records[0])
    assert LEGACY_ID not in text and ID_NUMBER_MARK in text


# -- numbers written in groups ------------------------------------------------------------


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


@pytest.mark.parametrize(
    ("number", "mark"), [(GROUPED_IDS[0], ID_NUMBER_MARK), (GROUPED_PHONES[2], PHONE_MARK)]
)
def test_grouped_numbers_in_log_records_exception_args_and_tracebacks_are_redacted(
    number: str, mark: str
) -> None:
    with filtered_log("tests.access.redaction.grouped") as (logger, records):
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
    output = "\n".join(logging.Formatter("%(message)s").format(record) for record in records)
    assert number not in output and number.replace(" ", "").replace("-", "") not in output
    assert output.count(mark) >= 5

"""No ID numbers or mobile numbers in log lines."""

from __future__ import annotations

import logging

import pytest

from yiyang.access.redaction import ID_NUMBER_MARK, PHONE_MARK, PiiRedactingFilter, redact_pii

ID_NUMBER = "11010519491231002X"


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
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    handler = Keep()
    handler.addFilter(PiiRedactingFilter())
    logger = logging.getLogger("tests.access.redaction")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        # when PII arrives as an argument, as a number, and inside an exception
        logger.warning("no match for %s", ID_NUMBER)
        logger.warning("phone %d unreachable", 13800138000)
        try:
            raise ValueError(f"bad id {ID_NUMBER}")
        except ValueError:
            logger.exception("import row failed")
    finally:
        logger.removeHandler(handler)
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

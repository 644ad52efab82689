"""No PII in logs: anything shaped like a resident ID number or a mainland mobile number is
replaced before a log record reaches any handler.

``install_pii_redaction()`` wraps the log-record factory, so every logger (ours, uvicorn's,
SQLAlchemy's) is covered whatever handlers are configured later; ``PiiRedactingFilter`` does the
same for a handler set up by a logging configuration file. Shapes, not validity, decide: a
mistyped ID number is still personal.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from typing import Any

# GB 11643: 17 digits and a digit or X, not inside a longer run of digits (letters around it may be a label);
# or the legacy 15-digit form (GB 11643-1989: area, YYMMDD, sequence), told from other 15-digit
# numbers (a device IMEI) by its month and day; or the 18 written in its three parts (area, birth
# date, sequence: 110108 19480312 0242), split by spaces or dashes.
ID_NUMBER_SHAPE = re.compile(
    r"(?<!\d)(?:\d{17}[\dXx]|\d{8}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])\d{3}"
    r"|\d{6}[ -]\d{8}[ -]\d{3}[\dXx])(?!\d)"
)
# Mainland mobile: 1[3-9] and 9 more digits, optionally +86 / 0086 in front and split by space or dash.
PHONE_SHAPE = re.compile(r"(?<!\d)(?:(?:\+|00)?86[ -]?)?1[3-9]\d[ -]?\d{4}[ -]?\d{4}(?!\d)")

ID_NUMBER_MARK = "[ID-REDACTED]"
PHONE_MARK = "[PHONE-REDACTED]"


def redact_pii(text: str) -> str:
    return PHONE_SHAPE.sub(PHONE_MARK, ID_NUMBER_SHAPE.sub(ID_NUMBER_MARK, text))


def _redact_argument(value: Any) -> Any:
    return redact_pii(value) if isinstance(value, str) else value


def redact_record(record: logging.LogRecord) -> None:
    """Redact a record in place, keeping its arguments where it can (uvicorn's formatters read them)."""
    if isinstance(record.msg, str):
        record.msg = redact_pii(record.msg)
    if isinstance(record.args, Mapping):
        record.args = {key: _redact_argument(value) for key, value in record.args.items()}
    elif isinstance(record.args, tuple):
        record.args = tuple(_redact_argument(value) for value in record.args)
    try:
        message = record.getMessage()
    except Exception:  # noqa: BLE001 - a broken format string is the handler's problem to report
        message = None
    if message is not None:
        redacted = redact_pii(message)
        if redacted != message:  # PII came in through a number or an object's str(): flatten
            record.msg, record.args = redacted, ()
    if record.exc_info and not record.exc_text:
        record.exc_text = logging.Formatter().formatException(record.exc_info)
    if record.exc_text:
        record.exc_text = redact_pii(record.exc_text)
    if record.stack_info:
        record.stack_info = redact_pii(record.stack_info)


class PiiRedactingFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        redact_record(record)
        return True


def install_pii_redaction() -> None:
    """Redact every log record of this process as it is made; calling again changes nothing."""
    factory = logging.getLogRecordFactory()
    if getattr(factory, "redacts_pii", False):
        return

    def redacting_factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = factory(*args, **kwargs)
        redact_record(record)
        return record

    redacting_factory.redacts_pii = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(redacting_factory)

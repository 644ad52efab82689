"""Request-scoped dependencies shared by every domain's routes."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Path, Request
from pydantic import AfterValidator, AwareDatetime
from pydantic_core import PydanticCustomError
from sqlalchemy.orm import Session

from yiyang.access.audit import relax_read_commit
from yiyang.access.denials import persist_denials
from yiyang.db import Database


def get_database(request: Request) -> Database:
    return request.app.state.database


_READS = frozenset({"GET", "HEAD"})


def get_session(request: Request) -> Iterator[Session]:
    """One unit of work per request: committed when the route returns, rolled back on error."""
    database: Database = request.app.state.database
    session = database.sessions()
    try:
        if request.method in _READS and not request.app.state.settings.audit_reads_durable:
            relax_read_commit(session)  # a read's commit holds only its audit rows (docs/access.md)
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        persist_denials(session)  # refused accesses stay audited though the request failed
        raise
    finally:
        session.close()


SessionDep = Annotated[Session, Depends(get_session)]
DatabaseDep = Annotated[Database, Depends(get_database)]

# Bounded ids: an unbounded integer path parameter overflows the database driver.
MAX_ID = 2_147_483_647
ResidentIdPath = Annotated[int, Path(ge=1, le=MAX_ID, description="resident id")]
IdPath = Annotated[int, Path(ge=1, le=MAX_ID)]
_ID_TEXT = re.compile(r"[0-9]{1,10}")  # ASCII only: str.isdigit() also takes "²" and "١٢"


def id_from_text(text: str) -> int | None:
    """An id written in a reference or a search value (``Patient/12``'s ``12``): ASCII digits,
    1 to ``MAX_ID``; None for anything else (int() would read "١٢" as 12 and fail on "²")."""
    if not _ID_TEXT.fullmatch(text):
        return None
    number = int(text)
    return number if 0 < number <= MAX_ID else None


# Request dates and times within a calendar people live in. Python's ends at 9999-12-31: a visit
# dated there overflows once a schedule adds its interval, and 9999-12-31T23:00-05:00 has no UTC
# moment to store. Out of range is a 422 naming the field (``request.date``/``request.datetime``).
EARLIEST_DAY = dt.date(1900, 1, 1)
LATEST_DAY = dt.date(2100, 12, 31)


def request_day(day: dt.date) -> dt.date:
    """A request's date, refused outside ``EARLIEST_DAY``..``LATEST_DAY``."""
    if not EARLIEST_DAY <= day <= LATEST_DAY:
        raise PydanticCustomError("request.date", "日期超出范围 (date out of range: 1900 to 2100)")
    return day


def moment_in_range(moment: dt.datetime) -> dt.datetime | None:
    """``moment`` in UTC (one without a zone is taken as UTC, as the database stores it), or None
    where it has no UTC moment or falls outside ``EARLIEST_DAY``..``LATEST_DAY``: the rule of
    ``request_moment`` for times read from documents (FHIR resources) rather than request fields."""
    try:
        utc = moment.replace(tzinfo=dt.UTC) if moment.tzinfo is None else moment.astimezone(dt.UTC)
    except OverflowError:  # 9999-12-31T23:00-05:00
        return None
    return utc if EARLIEST_DAY <= utc.date() <= LATEST_DAY else None


def request_moment(moment: dt.datetime) -> dt.datetime:
    """A request's time in UTC (one without a zone is taken as UTC, as the database stores it),
    refused where it has no UTC moment or falls outside ``EARLIEST_DAY``..``LATEST_DAY``."""
    utc = moment_in_range(moment)
    if utc is None:
        raise PydanticCustomError("request.datetime", "时间超出范围 (time out of range: 1900 to 2100)")
    return utc


RequestDate = Annotated[dt.date, AfterValidator(request_day)]
RequestDateTime = Annotated[dt.datetime, AfterValidator(request_moment)]  # naive is taken as UTC
AwareRequestDateTime = Annotated[AwareDatetime, AfterValidator(request_moment)]  # naive is refused

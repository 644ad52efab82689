"""Request-scoped dependencies shared by every domain's routes."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Path, Request
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

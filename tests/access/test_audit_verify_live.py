"""``yiyang audit verify`` on a live trail: writers keep appending while it walks the chain."""

from __future__ import annotations

from sqlalchemy import event
from sqlalchemy.orm import ORMExecuteState

from tests.access.test_audit import tamper, verify, write_events
from yiyang.access.audit import verify_chain
from yiyang.db import Database


def _append_between_reads(database: Database, session) -> list[int]:  # type: ignore[no-untyped-def]
    """Have another transaction append and commit an event before each statement the verifier runs
    (so between its pages, and between the rows and the chain head, whichever it reads first)."""
    written: list[int] = []

    @event.listens_for(session, "do_orm_execute")
    def _writer(_state: ORMExecuteState) -> None:
        if len(written) < 20:
            written.extend(write_events(database, 1))

    return written


def test_events_appended_during_verification_do_not_break_the_chain(db: Database) -> None:
    # given a trail of five events
    write_events(db, 5)
    # when more commit while verification is walking it
    with db.unit_of_work() as session:
        appended = _append_between_reads(db, session)
        result = verify_chain(session, batch_size=2)
    # then the trail verifies (the newcomers were really written, and they chain on too)
    assert appended, "the concurrent writer did not run"
    assert result.ok, result.reason
    assert verify(db).ok and verify(db).checked == 5 + len(appended)


def test_a_deleted_tail_is_still_caught_while_writers_append(db: Database) -> None:
    # given three events whose newest is deleted
    ids = write_events(db, 3)
    tamper(db, f"DELETE FROM audit_event WHERE id = {ids[2]}")
    # when verifying, even with a writer appending meanwhile
    with db.unit_of_work() as session:
        _append_between_reads(db, session)
        result = verify_chain(session, batch_size=2)
    # then the chain is reported broken
    assert not result.ok

"""The hash-chained audit trail, on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import threading

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError

from yiyang.access.actor import Actor, RoleGrant, system_actor
from yiyang.access.audit import GENESIS_HASH, chain_hash, record_access, record_denial, verify_chain
from yiyang.access.models import AuditAction, AuditEvent, AuditOutcome
from yiyang.access.roles import Role
from yiyang.db import Database, is_postgres

NURSE = Actor(
    user_id=7,
    username="nurse.li",
    grants=(RoleGrant(Role.nurse, organisation_id=3, membership_id=11),),
    request_id="req-1",
)


def write_events(database: Database, count: int, actor: Actor = NURSE) -> list[int]:
    ids = []
    with database.unit_of_work() as session:
        for number in range(count):
            event = record_access(
                session, actor, action=AuditAction.read, resource_type="resident", resident_id=100 + number,
                field_group="contact", purpose="follow_up",
            )  # fmt: skip
            ids.append(event.id)
    return ids


def verify(database: Database):  # type: ignore[no-untyped-def]
    with database.unit_of_work() as session:
        return verify_chain(session, batch_size=2)  # small batches: the walk crosses page boundaries


def tamper(database: Database, statement: str) -> None:
    """Change audit rows the way someone with database access could, past the append-only trigger."""
    with database.engine.begin() as connection:
        if is_postgres(database.engine):
            connection.execute(text("ALTER TABLE audit_event DISABLE TRIGGER audit_event_append_only"))
            connection.execute(text(statement))
            connection.execute(text("ALTER TABLE audit_event ENABLE TRIGGER audit_event_append_only"))
        else:  # each SQLite test has its own copy of the database
            connection.execute(text("DROP TRIGGER audit_event_no_update"))
            connection.execute(text("DROP TRIGGER audit_event_no_delete"))
            connection.execute(text(statement))


def test_events_record_who_what_and_why_and_chain_from_genesis(db: Database) -> None:
    # given a nurse's read of a resident's contact details
    first, second = write_events(db, 2)
    # then the rows carry her role and organisation, and each links to the one before
    with db.unit_of_work() as session:
        one, two = session.get(AuditEvent, first), session.get(AuditEvent, second)
        assert (one.user_id, one.role, one.organisation_id, one.request_id) == (7, "nurse", 3, "req-1")
        assert (one.action, one.outcome, one.field_group) == (
            AuditAction.read,
            AuditOutcome.allowed,
            "contact",
        )
        assert one.prev_hash == GENESIS_HASH
        assert two.prev_hash == one.row_hash
        assert one.row_hash == chain_hash(GENESIS_HASH, {name: getattr(one, name) for name in _fields()})
    result = verify(db)
    assert result.ok and result.checked == 2 and result.head_hash == two.row_hash


def _fields() -> tuple[str, ...]:
    from yiyang.access.audit import HASHED_FIELDS

    return HASHED_FIELDS


def test_an_empty_trail_verifies(db: Database) -> None:
    result = verify(db)
    assert result.ok and result.checked == 0


def test_verify_names_an_edited_row(db: Database) -> None:
    # given five events
    ids = write_events(db, 5)
    # when someone changes which resident the third was about
    tamper(db, f"UPDATE audit_event SET resident_id = 999 WHERE id = {ids[2]}")
    # then verification fails at exactly that row
    result = verify(db)
    assert not result.ok
    assert result.first_broken_id == ids[2]
    assert result.checked == 2


def test_verify_catches_an_edit_whose_hash_was_recomputed(db: Database) -> None:
    ids = write_events(db, 4)
    tamper(db, f"UPDATE audit_event SET row_hash = '{'f' * 64}' WHERE id = {ids[1]}")
    result = verify(db)
    assert not result.ok and result.first_broken_id in (ids[1], ids[2])


def test_verify_names_the_row_after_a_deleted_one(db: Database) -> None:
    ids = write_events(db, 5)
    tamper(db, f"DELETE FROM audit_event WHERE id = {ids[1]}")
    result = verify(db)
    assert not result.ok
    assert result.first_broken_id == ids[2]


def test_verify_catches_a_deleted_tail(db: Database) -> None:
    ids = write_events(db, 3)
    tamper(db, f"DELETE FROM audit_event WHERE id = {ids[2]}")
    result = verify(db)
    assert not result.ok
    assert result.first_broken_id == ids[2]


def test_the_database_refuses_update_and_delete(db: Database) -> None:
    # given an event
    [event_id] = write_events(db, 1)
    # when an ordinary session tries to change or remove it
    for statement in (
        f"UPDATE audit_event SET outcome = 'denied' WHERE id = {event_id}",
        f"DELETE FROM audit_event WHERE id = {event_id}",
    ):
        with pytest.raises(DBAPIError, match="append-only"), db.engine.begin() as connection:
            connection.execute(text(statement))
    # then the row is as it was and the chain holds
    with db.unit_of_work() as session:
        assert session.get(AuditEvent, event_id).outcome == AuditOutcome.allowed
    assert verify(db).ok


def test_an_event_rolls_back_with_the_work_it_describes(db: Database) -> None:
    # given one committed event
    write_events(db, 1)
    # when a unit of work records an event and then fails
    with pytest.raises(RuntimeError), db.unit_of_work() as session:
        record_access(session, NURSE, action="update", resource_type="resident", resident_id=1)
        raise RuntimeError("the update itself failed")
    # then no event was kept, the chain still holds, and the next event extends it
    write_events(db, 1)
    with db.unit_of_work() as session:
        assert session.scalar(select(func.count()).select_from(AuditEvent)) == 2
    assert verify(db).ok


def test_a_denial_is_kept_even_though_the_request_fails(db: Database) -> None:
    record_denial(
        db, NURSE, action=AuditAction.read, resource_type="resident", resident_id=5,
        field_group="clinical", reason="outside her panel",
    )  # fmt: skip
    with db.unit_of_work() as session:
        event = session.scalars(select(AuditEvent)).one()
    assert event.outcome == AuditOutcome.denied and event.reason == "outside her panel"


def test_system_jobs_are_audited_by_name(db: Database) -> None:
    with db.unit_of_work() as session:
        event = record_access(
            session, system_actor("absence_sweep"), action="read", resource_type="telemetry",
            at=dt.datetime(2026, 11, 24, 3, 0, 0, 123456, tzinfo=dt.UTC),
        )  # fmt: skip
    with db.unit_of_work() as session:
        stored = session.get(AuditEvent, event.id)
        assert stored.user_id is None and stored.actor_name == "system:absence_sweep" and stored.role is None
        assert stored.occurred_at == dt.datetime(2026, 11, 24, 3, 0, 0, 123456, tzinfo=dt.UTC)
    assert verify(db).ok


def test_codes_longer_than_their_columns_are_refused(db: Database) -> None:
    with pytest.raises(ValueError), db.unit_of_work() as session:
        record_access(session, NURSE, action="read", resource_type="r" * 41)


def test_concurrent_writers_keep_one_unbroken_chain(db: Database) -> None:
    # given several writers at once, each in its own transaction
    errors: list[BaseException] = []

    def writer() -> None:
        try:
            for _ in range(8):
                write_events(db, 1)
        except BaseException as error:  # noqa: BLE001 - reported below
            errors.append(error)

    threads = [threading.Thread(target=writer) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # then every event is there and the chain is one line
    assert errors == []
    with db.unit_of_work() as session:
        assert session.scalar(select(func.count()).select_from(AuditEvent)) == 32
        assert len(set(session.scalars(select(AuditEvent.prev_hash)).all())) == 32
    assert verify(db).ok

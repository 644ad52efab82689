"""The audit trail: one append-only, hash-chained row for every read or write of resident data.

Each row stores ``row_hash = SHA-256(prev_hash ‖ canonical JSON of its content)`` and the hash of
the row before it, so editing a row breaks its own hash and deleting one breaks the link of the
next; ``audit_chain_head`` names the newest row, so deleting the tail is noticed too. Writers
extend the chain one at a time: they lock the head row (``SELECT ... FOR UPDATE`` on PostgreSQL;
on SQLite the first write of a transaction takes the database write lock). A database trigger
(migration 0003) refuses UPDATE and DELETE on ``audit_event``.

A chain proves order and integrity against someone who edits rows, not against someone who
rewrites the whole chain and its head: publish the head hash (``yiyang audit verify`` prints it)
somewhere they cannot reach if that matters.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from yiyang.access.actor import Actor, RoleGrant
from yiyang.access.models import AuditAction, AuditChainHead, AuditEvent, AuditOutcome
from yiyang.db import Database, is_postgres, utcnow

GENESIS_HASH = "0" * 64
HEAD_ID = 1
HASHED_FIELDS = (
    "occurred_at", "user_id", "actor_name", "role", "organisation_id", "resident_id", "action",
    "resource_type", "field_group", "purpose", "outcome", "reason", "request_id",
)  # fmt: skip
_CODE_LIMITS = {"resource_type": 40, "field_group": 40, "purpose": 64}


# --- pure: canonical content and hashes ------------------------------------------------------


def _canonical_value(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    if isinstance(value, str):
        return str(value)  # enum members to their plain value
    return value


def canonical_content(fields: Mapping[str, Any]) -> bytes:
    """The hashed bytes of an event: its fields as sorted, compact JSON."""
    content = {name: _canonical_value(fields[name]) for name in HASHED_FIELDS}
    return json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def chain_hash(prev_hash: str, fields: Mapping[str, Any]) -> str:
    return hashlib.sha256(prev_hash.encode("ascii") + b"\n" + canonical_content(fields)).hexdigest()


# --- writing ---------------------------------------------------------------------------------


def relax_read_commit(session: Session) -> None:
    """Let this transaction commit without waiting for the WAL flush (PostgreSQL; SQLite in WAL mode
    with synchronous=NORMAL already does). Only for units of work that read resident data and write
    nothing but their audit rows (a GET): a crash may lose the audit rows of the last moment's reads,
    never a change to data, and the chain stays whole because rows are lost from its tail only.
    """
    if is_postgres(session):
        session.connection().exec_driver_sql("SET LOCAL synchronous_commit TO off")


def _ensure_head(session: Session) -> None:
    insert = pg_insert if is_postgres(session) else sqlite_insert
    session.connection().execute(
        insert(AuditChainHead)
        .values(id=HEAD_ID, last_event_id=0, last_hash=GENESIS_HASH)
        .on_conflict_do_nothing(index_elements=["id"])
    )


_HEAD_FOR_UPDATE = select(AuditChainHead.last_hash).where(AuditChainHead.id == HEAD_ID).with_for_update()


def _lock_head(session: Session) -> str:
    """The chain head's hash, the head locked for the rest of the caller's transaction (created if
    missing). On SQLite the write that ensures the head exists is what takes the database write
    lock, before the head is read; on PostgreSQL ``FOR UPDATE`` locks it, and the head is made only
    the first time."""
    if not is_postgres(session):
        _ensure_head(session)
        return session.connection().execute(_HEAD_FOR_UPDATE).scalar_one()
    last_hash = session.connection().execute(_HEAD_FOR_UPDATE).scalar_one_or_none()
    if last_hash is None:
        _ensure_head(session)
        last_hash = session.connection().execute(_HEAD_FOR_UPDATE).scalar_one()
    return last_hash


# Built once with bound parameters and run on the connection, not through the ORM: building the
# statement and the ORM's execution path cost more than the round trips themselves. On PostgreSQL
# the row is inserted and the head moved in one statement.
_EVENT_COLUMNS = (*HASHED_FIELDS, "prev_hash", "row_hash")
_INSERT_EVENT = (
    insert(AuditEvent)
    .values({name: bindparam(f"e_{name}") for name in _EVENT_COLUMNS})
    .returning(AuditEvent.id)
)
_INSERTED = _INSERT_EVENT.cte("inserted")
_APPEND_PG = (
    update(AuditChainHead)
    .where(AuditChainHead.id == HEAD_ID)
    .values(
        last_event_id=select(_INSERTED.c.id).scalar_subquery(),
        last_hash=bindparam("h_hash"),
        updated_at=bindparam("h_at"),
    )
    .returning(AuditChainHead.last_event_id)
)
_MOVE_HEAD = (
    update(AuditChainHead)
    .where(AuditChainHead.id == HEAD_ID)
    .values(last_event_id=bindparam("h_id"), last_hash=bindparam("h_hash"), updated_at=bindparam("h_at"))
)


def record_access(
    session: Session,
    actor: Actor,
    *,
    action: AuditAction | str,
    resource_type: str,
    resident_id: int | None = None,
    field_group: str | None = None,
    purpose: str | None = None,
    outcome: AuditOutcome | str = AuditOutcome.allowed,
    reason: str | None = None,
    grant: RoleGrant | None = None,
    at: dt.datetime | None = None,
) -> AuditEvent:
    """Append one event inside the caller's transaction: it commits or rolls back with the work.

    ``grant`` is the role the access relied on; by default the actor's first. ``reason`` is free
    text for people (why denied, the break-glass justification) and must not hold PII.
    """
    codes = {"resource_type": resource_type, "field_group": field_group, "purpose": purpose}
    for name, value in codes.items():
        if value is not None and len(value) > _CODE_LIMITS[name]:
            raise ValueError(f"audit {name} longer than {_CODE_LIMITS[name]} characters")
    grant = grant or (actor.grants[0] if actor.grants else None)
    event = AuditEvent(
        occurred_at=at or utcnow(),
        user_id=actor.user_id,
        actor_name=actor.username[:64],
        role=grant.role.value if grant else None,
        organisation_id=grant.organisation_id if grant else None,
        resident_id=resident_id,
        action=AuditAction(action),
        resource_type=resource_type,
        field_group=field_group,
        purpose=purpose,
        outcome=AuditOutcome(outcome),
        reason=reason[:200] if reason else None,
        request_id=actor.request_id[:64] if actor.request_id else None,
    )
    event.prev_hash = _lock_head(session)
    event.row_hash = chain_hash(event.prev_hash, {name: getattr(event, name) for name in HASHED_FIELDS})
    params = {f"e_{name}": getattr(event, name) for name in _EVENT_COLUMNS}
    params |= {"h_hash": event.row_hash, "h_at": event.occurred_at}
    connection = session.connection()
    if is_postgres(session):
        event.id = connection.execute(_APPEND_PG, params).scalar_one()
    else:
        event.id = connection.execute(_INSERT_EVENT, params).scalar_one()
        connection.execute(_MOVE_HEAD, params | {"h_id": event.id})
    return event  # not in the session: the row is written


def record_denial(database: Database, actor: Actor, **fields: Any) -> None:
    """Record a refused access in its own transaction, so it survives the refused request's rollback.

    Call it before the request has written anything audited: a request that already holds the
    chain head (or, on SQLite, the write lock) would wait on itself.
    """
    with database.unit_of_work() as session:
        record_access(session, actor, outcome=AuditOutcome.denied, **fields)


# --- verifying -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class VerifyResult:
    ok: bool
    checked: int  # events whose hash and link were checked
    head_hash: str  # the newest row's hash: worth writing down somewhere else
    first_broken_id: int | None = None
    reason: str | None = None


def verify_chain(session: Session, batch_size: int = 5000) -> VerifyResult:
    """Walk the chain in id order; report the first row whose hash or link does not hold.

    The head is read first and the walk stops at the row it names: on a live server events keep
    committing while the walk runs, and those are past that row (ids are taken under the head
    lock), so they are left for the next run instead of reading as a changed tail."""
    columns = [AuditEvent.id, AuditEvent.prev_hash, AuditEvent.row_hash]
    columns += [getattr(AuditEvent, name) for name in HASHED_FIELDS]
    head = session.execute(
        select(AuditChainHead.last_event_id, AuditChainHead.last_hash).where(AuditChainHead.id == HEAD_ID)
    ).one_or_none()
    previous, last_id, checked = GENESIS_HASH, 0, 0

    def broken(row_id: int | None, reason: str) -> VerifyResult:
        return VerifyResult(
            ok=False, checked=checked, head_hash=previous, first_broken_id=row_id, reason=reason
        )

    while True:
        query = select(*columns).where(AuditEvent.id > last_id)
        if head is not None:
            query = query.where(AuditEvent.id <= head.last_event_id)
        rows = session.execute(query.order_by(AuditEvent.id).limit(batch_size)).all()
        for row in rows:
            if chain_hash(row.prev_hash, row._mapping) != row.row_hash:
                return broken(row.id, "行内容与其哈希不符 (row content does not match its hash)")
            if row.prev_hash != previous:
                return broken(
                    row.id,
                    "与前一行的链接断开：其前的行被删除或改动 "
                    "(link to the previous row is broken: a row before it was removed or changed)",
                )
            previous, last_id, checked = row.row_hash, row.id, checked + 1
        if len(rows) < batch_size:
            break
    if head is None:
        if checked:
            return broken(last_id, "审计链头缺失 (the chain head row is missing)")
        return VerifyResult(ok=True, checked=0, head_hash=GENESIS_HASH)
    if head.last_event_id != last_id or head.last_hash != previous:
        return broken(
            head.last_event_id,
            "最新的审计行缺失或被改动 (the newest events named by the chain head are missing or changed)",
        )
    return VerifyResult(ok=True, checked=checked, head_hash=previous)

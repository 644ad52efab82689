"""Refused accesses are audited even though the refused request rolls back.

``policy`` does not write a denial into the request's transaction (the rollback would take it
away) nor in a second transaction at once (on SQLite the request may already hold the write
lock; on PostgreSQL it may hold the audit chain head, and the second writer would wait on the
first). It queues the denial on the session instead:

- if the request commits anyway (a page that renders its refusal), the queue is written inside
  that commit (``before_commit``);
- if it rolls back, the unit of work calls ``persist_denials`` after the rollback, which writes
  the queue in a short transaction of its own.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import Session

from yiyang.access.actor import Actor
from yiyang.access.audit import record_access
from yiyang.access.models import AuditOutcome

log = logging.getLogger("yiyang.access")
_QUEUE = "yiyang.access.denials"


def queue_denial(session: Session, actor: Actor, **fields: Any) -> None:
    """Keep a refused access to be written with this session's next commit or after its rollback."""
    session.info.setdefault(_QUEUE, []).append((actor, fields))


def pending_denials(session: Session) -> int:
    return len(session.info.get(_QUEUE, ()))


def _write_queue(session: Session) -> None:
    queued = session.info.pop(_QUEUE, None)
    for actor, fields in queued or ():
        record_access(session, actor, outcome=AuditOutcome.denied, **fields)


@event.listens_for(Session, "before_commit")
def _with_the_commit(session: Session) -> None:
    if session.info.get(_QUEUE):
        _write_queue(session)


def persist_denials(session: Session) -> None:
    """After a rollback: write the queued denials in a transaction of their own."""
    if not session.info.get(_QUEUE):
        return
    try:
        _write_queue(session)
        session.commit()
    except Exception:  # noqa: BLE001 - the request is failing already; never hide its own error
        session.rollback()
        log.exception("could not write the audit rows of refused accesses")

"""Version counters for the caches other processes keep (缓存版本号).

The ingest's device directory and the alert engine's rule book cache rows that the web app and
the jobs change. Rather than scan those tables to notice a change, a writer bumps its topic's
counter in the same transaction as the change (``bump``), and the caches read every counter in
one tiny statement (``read``) at most every few seconds, dropping what they hold when one moved.

A bump is written when its transaction commits, after the transaction's last flush and in topic
order: the counter row is locked only for the commit itself (a nightly sweep that re-tiers for
minutes does not hold up a clinician's assessment), and two transactions never take two topics
in opposite orders. A transaction rolled back bumps nothing. A change written around these
services (by hand, by the import) bumps nothing and is seen when the cache entry expires.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from sqlalchemy import BigInteger, String, event, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Mapped, Session, mapped_column

from yiyang.db import Base, is_postgres

DEVICES = "devices"  # a device registered or retired (the ingest's directory)
PLACEMENTS = "placements"  # a placement started, ended, dropped or carried to another record
TIERS = "tiers"  # a resident's tier set or changed
OVERRIDES = "overrides"  # an alert rule override added or removed

_PENDING = "yiyang.cache_version.pending"
_WRITTEN = "yiyang.cache_version.written"
# Bumps this process has committed, per topic: its own caches drop at once, without waiting for
# their next check of the table.
_committed: Counter[str] = Counter()


class CacheVersion(Base):
    __tablename__ = "cache_version"

    topic: Mapped[str] = mapped_column(String(32), primary_key=True)
    version: Mapped[int] = mapped_column(BigInteger)


def bump(session: Session, topic: str) -> None:
    """Count a change of ``topic`` in this session's transaction: written when it commits."""
    session.info.setdefault(_PENDING, set()).add(topic)


def read(session: Session) -> dict[str, int]:
    """Every topic's counter (a topic never bumped is missing: read it as 0)."""
    rows = session.execute(select(CacheVersion.topic, CacheVersion.version))
    return {topic: version for topic, version in rows}


def committed_here(topics: tuple[str, ...]) -> int:
    """How many bumps of these topics this process has committed (it only grows)."""
    return sum(_committed[topic] for topic in topics)


def _write_bumps(session: Session) -> None:
    topics = session.info.pop(_PENDING, None)
    if not topics:
        return
    session.info[_WRITTEN] = topics
    session.flush()  # the changes first: nothing is written after the counters are locked
    table = CacheVersion.__table__
    insert = pg_insert if is_postgres(session) else sqlite_insert
    for topic in sorted(topics):
        # An upsert: the row is made by the first bump (a truncated or fresh table has none).
        statement = insert(table).values(topic=topic, version=1)
        session.execute(
            statement.on_conflict_do_update(
                index_elements=[table.c.topic], set_={"version": table.c.version + 1}
            )
        )


def _count_committed(session: Session) -> None:
    _committed.update(session.info.pop(_WRITTEN, ()))


def _forget_bumps(session: Session, *_args: Any) -> None:
    session.info.pop(_PENDING, None)
    session.info.pop(_WRITTEN, None)


event.listen(Session, "before_commit", _write_bumps)
event.listen(Session, "after_commit", _count_committed)
event.listen(Session, "after_rollback", _forget_bumps)

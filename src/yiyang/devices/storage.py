"""The telemetry store: bulk idempotent writes, daily partitions, rollups and retention.

PostgreSQL: raw rows go by COPY into a per-connection staging table, then one
``INSERT ... ON CONFLICT DO NOTHING`` moves them into the partitioned ``telemetry`` table, so
a redelivered message never makes a second row. SQLite (the embedded default) inserts row by
row in one transaction, which is fast enough for one home gateway or a demo district.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine, bindparam, insert, select, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from yiyang.db import UTCDateTime, is_postgres
from yiyang.devices.models import DeviceEvent, TelemetryPendingMinute, TelemetryQuarantine
from yiyang.devices.telemetry import READINGS, TelemetryMessage

TELEMETRY_COLUMNS: tuple[str, ...] = ("measured_at", "device_id", "seq", *(spec.column for spec in READINGS))
PARTITIONED_TABLES = ("telemetry", "telemetry_minute")
_SQLITE_TIME = "%Y-%m-%d %H:%M:%S.%f"  # the format SQLAlchemy's DateTime stores on SQLite

TelemetryRow = tuple[Any, ...]  # TELEMETRY_COLUMNS order, measured_at as naive UTC, readings as float
_COPY_TYPES = ["timestamp", "int4", "int4", *(["float4"] * len(READINGS))]


def telemetry_row(device_id: int, message: TelemetryMessage) -> TelemetryRow:
    return (message.measured_at.replace(tzinfo=None), device_id, message.seq, *message.values)


def write_telemetry(session: Session, rows: Sequence[TelemetryRow]) -> list[bool]:
    """Insert the rows that are not stored yet and mark their minutes for the rollups
    (``mark_pending_minutes``); returns, per row, whether it was new."""
    if not rows:
        return []
    if is_postgres(session):
        return _write_telemetry_pg(session, rows)
    fresh = _write_telemetry_sqlite(session, rows)
    mark_pending_minutes(session, [row[0] for row, is_new in zip(rows, fresh, strict=True) if is_new])
    return fresh


def _write_telemetry_pg(session: Session, rows: Sequence[TelemetryRow]) -> list[bool]:
    connection = session.connection()
    raw = connection.connection.driver_connection
    columns = ", ".join(TELEMETRY_COLUMNS)
    with raw.cursor() as cursor:
        if not connection.info.get("telemetry_staging"):
            # Lives as long as the connection; emptied by every commit.
            cursor.execute(
                "CREATE TEMP TABLE IF NOT EXISTS telemetry_staging (LIKE telemetry) ON COMMIT DELETE ROWS"
            )
            connection.info["telemetry_staging"] = True
        # Binary COPY: no text formatting of floats and times on our side.
        with cursor.copy(f"COPY telemetry_staging ({columns}) FROM STDIN (FORMAT BINARY)") as copy:
            copy.set_types(_COPY_TYPES)
            for row in rows:
                copy.write_row(row)
        # In key order, so the key index (time first) grows at its right edge and its pages split
        # full rather than half empty; ctid (the COPY order) keeps the first of two rows with one
        # key. The new rows' minutes are marked for the rollups in the same statement, in order,
        # so two workers marking the same minutes cannot deadlock.
        cursor.execute(
            f"WITH new AS (INSERT INTO telemetry ({columns}) SELECT {columns} FROM telemetry_staging "
            "ORDER BY measured_at, device_id, seq, ctid "
            "ON CONFLICT DO NOTHING RETURNING device_id, measured_at, seq), "
            "pending AS (INSERT INTO telemetry_pending_minute (bucket) "
            "SELECT DISTINCT date_trunc('minute', measured_at) FROM new ORDER BY 1 ON CONFLICT DO NOTHING) "
            "SELECT device_id, measured_at, seq FROM new"
        )
        inserted = set(cursor.fetchall())
        # Emptied at commit anyway; emptied now too in case the transaction writes again.
        cursor.execute("DELETE FROM telemetry_staging")
    if len(inserted) == len(rows):
        return [True] * len(rows)
    # A key repeated inside one batch is stored once; only its first occurrence counts as new.
    fresh: list[bool] = []
    for row in rows:
        key = (row[1], row[0], row[2])
        fresh.append(key in inserted)
        inserted.discard(key)
    return fresh


def _write_telemetry_sqlite(session: Session, rows: Sequence[TelemetryRow]) -> list[bool]:
    raw = session.connection().connection.driver_connection
    placeholders = ", ".join("?" for _ in TELEMETRY_COLUMNS)
    statement = f"INSERT INTO telemetry ({', '.join(TELEMETRY_COLUMNS)}) VALUES ({placeholders}) ON CONFLICT DO NOTHING"
    cursor = raw.cursor()
    fresh: list[bool] = []
    try:
        for row in rows:
            cursor.execute(statement, (row[0].strftime(_SQLITE_TIME), *row[1:]))
            fresh.append(cursor.rowcount == 1)
    finally:
        cursor.close()
    return fresh


@dataclass(frozen=True, slots=True)
class EventRow:
    device_id: int
    measured_at: dt.datetime
    seq: int
    kind: str
    detail: dict[str, Any] | None
    received_at: dt.datetime


def write_events(session: Session, rows: Sequence[EventRow]) -> list[bool]:
    """Insert events not stored yet (events are few: one statement each is fine)."""
    if not rows:
        return []
    dialect_insert = postgresql.insert if is_postgres(session) else sqlite.insert
    table = DeviceEvent.__table__
    statement = dialect_insert(table).on_conflict_do_nothing().returning(table.c.seq)
    fresh: list[bool] = []
    for row in rows:
        result = session.execute(
            statement,
            {
                "device_id": row.device_id,
                "measured_at": row.measured_at,
                "seq": row.seq,
                "kind": row.kind,
                "detail": row.detail,
                "received_at": row.received_at,
            },
        )
        fresh.append(result.first() is not None)
    return fresh


@dataclass(frozen=True, slots=True)
class QuarantineRow:
    received_at: dt.datetime
    source: str
    topic: str | None
    device_uid: str | None
    reason: str
    detail: str | None
    payload: bytes | None

    PAYLOAD_LIMIT = 4096


def write_quarantine(session: Session, rows: Sequence[QuarantineRow]) -> int:
    if not rows:
        return 0
    session.execute(
        insert(TelemetryQuarantine),
        [
            {
                "received_at": row.received_at,
                "source": row.source,
                "topic": row.topic[:200] if row.topic else None,
                "device_uid": row.device_uid[:64] if row.device_uid else None,
                "reason": row.reason[:40],
                "detail": row.detail[:200] if row.detail else None,
                "payload": row.payload[: QuarantineRow.PAYLOAD_LIMIT] if row.payload is not None else None,
            }
            for row in rows
        ],
    )
    return len(rows)


@dataclass(frozen=True, slots=True)
class DeviceSeen:
    device_id: int
    seen_at: dt.datetime
    battery: int | None
    online: bool = True


_TOUCH = text(
    "UPDATE device SET "
    "last_seen_at = CASE WHEN last_seen_at IS NULL OR last_seen_at < :seen THEN :seen ELSE last_seen_at END, "
    "battery = COALESCE(:battery, battery), online = :online WHERE id = :id"
).bindparams(bindparam("seen", type_=UTCDateTime()))
# PostgreSQL: the whole batch in one statement (one statement per device cost a round of
# parse, plan and execute each, and with status written once a minute per device that is
# every device of the district each minute).
_TOUCH_PG = text(
    "UPDATE device AS d SET "
    "last_seen_at = CASE WHEN d.last_seen_at IS NULL OR d.last_seen_at < v.seen THEN v.seen "
    "ELSE d.last_seen_at END, "
    "battery = COALESCE(v.battery, d.battery), online = v.online "
    "FROM unnest(CAST(:ids AS integer[]), CAST(:seen AS timestamp[]), CAST(:battery AS smallint[]), "
    "CAST(:online AS boolean[])) AS v(id, seen, battery, online) WHERE d.id = v.id"
)


def touch_devices(session: Session, seen: Iterable[DeviceSeen]) -> int:
    """Record when devices were last heard from, their battery, and whether they are online."""
    items = list(seen)
    if not items:
        return 0
    if is_postgres(session):
        # One row per device, as if each item were applied in turn: the latest time, the last
        # battery given, the last online state.
        folded: dict[int, list[Any]] = {}
        for item in items:
            at = item.seen_at.astimezone(dt.UTC).replace(tzinfo=None)
            known = folded.get(item.device_id)
            if known is None:
                folded[item.device_id] = [at, item.battery, item.online]
            else:
                known[0] = max(known[0], at)
                known[1] = item.battery if item.battery is not None else known[1]
                known[2] = item.online
        session.execute(
            _TOUCH_PG,
            {
                "ids": list(folded),
                "seen": [values[0] for values in folded.values()],
                "battery": [values[1] for values in folded.values()],
                "online": [values[2] for values in folded.values()],
            },
        )
        return len(items)
    params = [
        {"id": item.device_id, "seen": item.seen_at, "battery": item.battery, "online": item.online}
        for item in items
    ]
    session.execute(_TOUCH, params)
    return len(params)


_PENDING_PG = text(
    "INSERT INTO telemetry_pending_minute (bucket) SELECT unnest(CAST(:buckets AS timestamp[])) "
    "ON CONFLICT DO NOTHING"
)
_PENDING_SQLITE = text(
    "INSERT INTO telemetry_pending_minute (bucket) VALUES (:bucket) ON CONFLICT DO NOTHING"
).bindparams(bindparam("bucket", type_=UTCDateTime()))


def mark_pending_minutes(session: Session, times: Iterable[dt.datetime]) -> None:
    """Note the minutes of these (naive UTC) times as needing their rollups recomputed."""
    buckets = sorted({value.replace(second=0, microsecond=0) for value in times})
    if not buckets:
        return
    if is_postgres(session):
        session.execute(_PENDING_PG, {"buckets": buckets})
    else:
        session.execute(_PENDING_SQLITE, [{"bucket": bucket} for bucket in buckets])


# ---- partitions (PostgreSQL) -------------------------------------------------------------


def ensure_partitions(session: Session, first_day: dt.date, days: int) -> int:
    """Create the missing daily partitions [first_day, first_day + days); returns how many."""
    if not is_postgres(session) or days <= 0:
        return 0
    made = 0
    for table in PARTITIONED_TABLES:
        made += session.execute(
            text("SELECT yiyang_ensure_daily_partitions(:parent, :first_day, :days)"),
            {"parent": table, "first_day": first_day, "days": days},
        ).scalar_one()
    return made


class PartitionKeeper:
    """Remembers which days this process made sure exist, so a batch checks at most once in a
    while (entries expire: retention may drop a day's partition behind our back)."""

    def __init__(self, ttl: float = 600.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl = ttl
        self.clock = clock
        self._covered: dict[dt.date, float] = {}
        self._lock = threading.Lock()

    def missing(self, days: Iterable[dt.date]) -> list[dt.date]:
        now = self.clock()
        with self._lock:
            return sorted(day for day in set(days) if self._covered.get(day, 0.0) <= now)

    def cover(self, session: Session, days: Iterable[dt.date]) -> int:
        """Create partitions for the days not yet covered. Run it in its own short transaction
        where possible: creating a partition locks the parent table until commit."""
        missing = self.missing(days)
        made = 0
        for day in missing:
            made += ensure_partitions(session, day, 1)
        expires = self.clock() + self.ttl
        with self._lock:
            self._covered.update(dict.fromkeys(missing, expires))
        return made


def compact_partitions(engine: Engine, before: dt.date) -> list[str]:
    """Rebuild the key index of finished days at full fill (PostgreSQL).

    While a day is written, keys from thousands of devices interleave and index pages split
    half full; once the day is over the index is rebuilt packed (REINDEX CONCURRENTLY, so
    late rows can still arrive). Returns the partitions compacted.
    """
    if engine.dialect.name != "postgresql":
        return []
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        rows = connection.execute(
            text(
                "SELECT c.relname AS partition, x.relname AS index FROM pg_inherits i "
                "JOIN pg_class c ON c.oid = i.inhrelid "
                "JOIN pg_index ix ON ix.indrelid = c.oid AND ix.indisprimary "
                "JOIN pg_class x ON x.oid = ix.indexrelid "
                "WHERE i.inhparent = 'telemetry'::regclass "
                "AND NOT coalesce(x.reloptions @> ARRAY['fillfactor=100'], false)"
            )
        ).all()
        done = []
        for row in sorted(rows):
            day = _partition_day(row.partition)
            if day is None or day >= before:
                continue
            connection.execute(text(f'ALTER INDEX "{row.index}" SET (fillfactor = 100)'))
            connection.execute(text(f'REINDEX INDEX CONCURRENTLY "{row.index}"'))
            done.append(row.partition)
        return done


def _partition_day(name: str) -> dt.date | None:
    try:
        return dt.datetime.strptime(name.rsplit("_p", 1)[1], "%Y%m%d").date()
    except (IndexError, ValueError):
        return None


# ---- rollups ----------------------------------------------------------------------------


@dataclass
class RollupReport:
    minutes: int = 0
    hours: int = 0
    minute_rows: int = 0
    hour_rows: int = 0
    buckets: list[dt.datetime] = field(default_factory=list)


def roll_up_pending(
    session: Session, now: dt.datetime, settle: dt.timedelta = dt.timedelta(seconds=30), limit: int = 1440
) -> RollupReport:
    """Recompute 1-minute rollups for minutes marked pending that ended at least ``settle``
    ago, then the 1-hour rollups of the hours they fall in. Safe to run from several processes."""
    cutoff = (now - settle - dt.timedelta(minutes=1)).astimezone(dt.UTC).replace(tzinfo=None)
    if is_postgres(session):
        buckets = list(
            session.execute(
                text(
                    "DELETE FROM telemetry_pending_minute WHERE bucket IN ("
                    "SELECT bucket FROM telemetry_pending_minute WHERE bucket <= :cutoff "
                    "ORDER BY bucket LIMIT :limit FOR UPDATE SKIP LOCKED) RETURNING bucket"
                ),
                {"cutoff": cutoff, "limit": limit},
            ).scalars()
        )
    else:
        table = TelemetryPendingMinute.__table__
        buckets = list(
            session.execute(
                select(table.c.bucket).where(table.c.bucket <= cutoff).order_by(table.c.bucket).limit(limit)
            ).scalars()
        )
        if buckets:
            session.execute(table.delete().where(table.c.bucket.in_(buckets)))
    report = RollupReport()
    if not buckets:
        return report
    buckets = sorted(bucket.replace(tzinfo=None) for bucket in buckets)
    report.buckets = buckets
    report.minutes = len(buckets)
    days = {bucket.date() for bucket in buckets}
    for day in sorted(days):
        ensure_partitions(session, day, 1)
    for start, end in _runs(buckets, dt.timedelta(minutes=1)):
        report.minute_rows += _roll_minutes(session, start, end)
    hours = sorted({bucket.replace(minute=0) for bucket in buckets})
    report.hours = len(hours)
    for start, end in _runs(hours, dt.timedelta(hours=1)):
        report.hour_rows += _roll_hours(session, start, end)
    return report


def _runs(points: Sequence[dt.datetime], step: dt.timedelta) -> list[tuple[dt.datetime, dt.datetime]]:
    """Sorted points -> contiguous [start, end) ranges."""
    runs: list[tuple[dt.datetime, dt.datetime]] = []
    for point in points:
        if runs and runs[-1][1] == point:
            runs[-1] = (runs[-1][0], point + step)
        else:
            runs.append((point, point + step))
    return runs


_UPSERT = (
    "ON CONFLICT (device_id, code, bucket) DO UPDATE SET "
    "n = excluded.n, mean = excluded.mean, low = excluded.low, high = excluded.high"
)


def _roll_minutes(session: Session, start: dt.datetime, end: dt.datetime) -> int:
    if is_postgres(session):
        values = ", ".join(f"('{spec.loinc}', t.{spec.column})" for spec in READINGS)
        source = (
            "SELECT t.device_id, r.code, date_trunc('minute', t.measured_at) AS bucket, r.value "
            f"FROM telemetry t CROSS JOIN LATERAL (VALUES {values}) AS r(code, value) "
            "WHERE t.measured_at >= :start AND t.measured_at < :end AND r.value IS NOT NULL"
        )
    else:
        source = " UNION ALL ".join(
            f"SELECT device_id, '{spec.loinc}' AS code, substr(measured_at, 1, 16) || '\\:00.000000' AS bucket, "
            f"{spec.column} AS value FROM telemetry "
            f"WHERE measured_at >= :start AND measured_at < :end AND {spec.column} IS NOT NULL"
            for spec in READINGS
        )
    statement = text(
        "INSERT INTO telemetry_minute (device_id, code, bucket, n, mean, low, high) "
        "SELECT * FROM (SELECT device_id, code, bucket, count(*), avg(value), min(value), max(value) "
        f"FROM ({source}) AS r GROUP BY device_id, code, bucket) AS g WHERE true {_UPSERT}"
    ).bindparams(bindparam("start", type_=UTCDateTime()), bindparam("end", type_=UTCDateTime()))
    return session.execute(statement, {"start": start, "end": end}).rowcount or 0


def _roll_hours(session: Session, start: dt.datetime, end: dt.datetime) -> int:
    bucket = (
        "date_trunc('hour', bucket)"
        if is_postgres(session)
        else "substr(bucket, 1, 13) || '\\:00\\:00.000000'"
    )
    statement = text(
        "INSERT INTO telemetry_hour (device_id, code, bucket, n, mean, low, high) "
        f"SELECT * FROM (SELECT device_id, code, {bucket} AS hour, sum(n), sum(mean * n) / sum(n), "
        "min(low), max(high) FROM telemetry_minute WHERE bucket >= :start AND bucket < :end "
        f"GROUP BY device_id, code, hour) AS g WHERE true {_UPSERT}"
    ).bindparams(bindparam("start", type_=UTCDateTime()), bindparam("end", type_=UTCDateTime()))
    return session.execute(statement, {"start": start, "end": end}).rowcount or 0


# ---- retention --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RetentionPolicy:
    """How long each layer is kept, in days (raw shortest, hourly rollups longest)."""

    raw_days: int = 30
    minute_days: int = 90
    hour_days: int = 1825
    event_days: int = 365
    quarantine_days: int = 30


def apply_retention(session: Session, today: dt.date, policy: RetentionPolicy) -> dict[str, int]:
    """Drop what is older than the policy keeps: whole daily partitions on PostgreSQL."""
    removed: dict[str, int] = {}
    layers = (
        ("telemetry", "measured_at", policy.raw_days),
        ("telemetry_minute", "bucket", policy.minute_days),
    )
    for table, column, days in layers:
        before = today - dt.timedelta(days=days)
        if is_postgres(session):
            removed[table] = session.execute(
                text("SELECT yiyang_drop_daily_partitions(:parent, :before)"),
                {"parent": table, "before": before},
            ).scalar_one()
        else:
            removed[table] = _delete_before(session, table, column, before)
    removed["telemetry_hour"] = _delete_before(
        session, "telemetry_hour", "bucket", today - dt.timedelta(days=policy.hour_days)
    )
    removed["device_event"] = _delete_before(
        session, "device_event", "measured_at", today - dt.timedelta(days=policy.event_days)
    )
    removed["telemetry_quarantine"] = _delete_before(
        session, "telemetry_quarantine", "received_at", today - dt.timedelta(days=policy.quarantine_days)
    )
    return removed


def _delete_before(session: Session, table: str, column: str, before: dt.date) -> int:
    cutoff = dt.datetime.combine(before, dt.time(), tzinfo=dt.UTC)
    statement = text(f"DELETE FROM {table} WHERE {column} < :cutoff").bindparams(
        bindparam("cutoff", type_=UTCDateTime())
    )
    return session.execute(statement, {"cutoff": cutoff}).rowcount or 0


# ---- measurement ------------------------------------------------------------------------


def telemetry_bytes(session: Session) -> int:
    """Bytes the raw telemetry takes on disk, indexes included (PostgreSQL; 0 elsewhere)."""
    if not is_postgres(session):
        return 0
    return session.execute(
        text("SELECT COALESCE(sum(pg_total_relation_size(relid)), 0) FROM pg_partition_tree('telemetry')")
    ).scalar_one()

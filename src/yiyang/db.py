"""Database wiring: the declarative base, engines, sessions and bulk writes.

SQLite (a file under the data folder) is the embedded default; PostgreSQL is the system of
record in production. Bulk paths use COPY on PostgreSQL and executemany on SQLite, because
ORM ``add_all`` is an order of magnitude slower for imports and telemetry.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import orjson
from sqlalchemy import JSON, Engine, MetaData, create_engine, event, text
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.types import DateTime, TypeDecorator

from yiyang.config import Settings, get_settings, normalise_database_url

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator):
    """Timezone-aware datetimes stored as UTC on both engines (SQLite has no tz type)."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC).replace(tzinfo=None)

    def process_result_value(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=dt.UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {dt.datetime: UTCDateTime(), dict[str, Any]: JSON, list[Any]: JSON}


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


# One zone for the whole country, without daylight saving since 1991: China Standard Time.
CHINA_TZ = dt.timezone(dt.timedelta(hours=8), "CST")


def china_day(moment: dt.datetime) -> dt.date:
    """The calendar day in China at ``moment`` (a naive value is UTC): due days, ages and "today"
    turn over at China's midnight, not the server's (a UTC server is on yesterday until 08:00)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.astimezone(CHINA_TZ).date()


def make_engine(url: str | None = None, settings: Settings | None = None) -> Engine:
    settings = settings or get_settings()
    url = normalise_database_url(url) if url else settings.resolved_database_url
    if url.startswith("sqlite"):
        path = url.removeprefix("sqlite:///")
        if path and path != ":memory:":
            from pathlib import Path

            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url, connect_args={"check_same_thread": False, "timeout": 30},
            json_serializer=_json_dumps, json_deserializer=orjson.loads,
        )  # fmt: skip
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(
        url, pool_pre_ping=True, pool_size=10, max_overflow=10,
        json_serializer=_json_dumps, json_deserializer=orjson.loads,
    )  # fmt: skip


def _json_dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def is_postgres(bind: Engine | Session) -> bool:
    engine = bind.get_bind() if isinstance(bind, Session) else bind
    return engine.dialect.name == "postgresql"


@contextmanager
def local_setting(session: Session, name: str, value: str) -> Iterator[None]:
    """A PostgreSQL setting changed for what runs inside, then put back as the transaction had it.

    Not put back after a failure: the transaction is aborted then, and its rollback undoes the
    change (a statement sent to put it back would fail and hide the first error)."""
    set_local = text("SELECT set_config(:name, :value, true)")
    previous = session.execute(text("SELECT current_setting(:name)"), {"name": name}).scalar_one()
    session.execute(set_local, {"name": name, "value": value})
    yield
    session.execute(set_local, {"name": name, "value": previous})


class Database:
    """One engine and its session factory; the app and the CLI each hold one."""

    def __init__(self, url: str | None = None, settings: Settings | None = None) -> None:
        self.engine = make_engine(url, settings)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)

    @contextmanager
    def unit_of_work(self) -> Iterator[Session]:
        """A session whose work commits together, or not at all."""
        session = self.sessions()
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            from yiyang.access.denials import persist_denials  # access builds on this module

            persist_denials(session)  # refused accesses stay audited though the work failed
            raise
        finally:
            session.close()

    def dispose(self) -> None:
        self.engine.dispose()


def db_datetime(value: dt.datetime | None) -> dt.datetime | None:
    """A datetime as the bulk paths store it: naive UTC, like ``UTCDateTime``."""
    if value is None:
        return None
    if value.tzinfo is None:
        return value
    return value.astimezone(dt.UTC).replace(tzinfo=None)


def allocate_ids(session: Session, table: str, count: int) -> list[int]:
    """Reserve ``count`` primary keys for rows written by a bulk path rather than the ORM."""
    if count <= 0:
        return []
    if is_postgres(session):
        # Look the sequence up once: inside the select list it would be resolved for every row.
        sequence = session.execute(text(f"SELECT pg_get_serial_sequence('{table}', 'id')")).scalar_one()
        rows = session.execute(
            text(f"SELECT nextval('{sequence}'::regclass) FROM generate_series(1, :n)"), {"n": count}
        ).scalars()
        return list(rows)
    # SQLite: the import holds the write lock for its whole transaction, so max+1 is safe.
    start = session.execute(text(f"SELECT COALESCE(MAX(id), 0) FROM {table}")).scalar_one() + 1
    return list(range(start, start + count))


def bulk_insert(session: Session, table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> int:
    """Insert many rows: COPY on PostgreSQL, executemany on SQLite. Values must be DB-ready."""
    rows = list(rows)
    if not rows:
        return 0
    if is_postgres(session):
        raw = session.connection().connection.driver_connection
        cols = ", ".join(columns)
        with raw.cursor() as cursor, cursor.copy(f"COPY {table} ({cols}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        return len(rows)
    placeholders = ", ".join("?" for _ in columns)
    raw = session.connection().connection.driver_connection
    raw.executemany(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({placeholders})", rows)
    return len(rows)


def bulk_update(
    session: Session, table: str, key: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]
) -> int:
    """Update many rows by key; each row is (key, *columns). COPY + UPDATE FROM on PostgreSQL."""
    rows = list(rows)
    if not rows:
        return 0
    if is_postgres(session):
        raw = session.connection().connection.driver_connection
        tmp = f"_upd_{table}"
        with raw.cursor() as cursor:
            cols = ", ".join([key, *columns])
            # Types only, no constraints: the rows carry just the columns being changed.
            cursor.execute(f"DROP TABLE IF EXISTS {tmp}")
            cursor.execute(f"CREATE TEMP TABLE {tmp} AS SELECT {cols} FROM {table} WITH NO DATA")
            with cursor.copy(f"COPY {tmp} ({cols}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
            assignments = ", ".join(f"{c} = t.{c}" for c in columns)
            cursor.execute(f"UPDATE {table} SET {assignments} FROM {tmp} t WHERE {table}.{key} = t.{key}")
        return len(rows)
    raw = session.connection().connection.driver_connection
    assignments = ", ".join(f"{c} = ?" for c in columns)
    raw.executemany(f"UPDATE {table} SET {assignments} WHERE {key} = ?", [(*row[1:], row[0]) for row in rows])
    return len(rows)

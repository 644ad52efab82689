"""Key rotation (密钥轮换): re-seal every personal field under the current field key, and
recompute blind indexes and record digests after the blind-index key changed.

Reads keep working throughout: the key ring holds the old keys after the new current one, so a
value opens whichever key sealed it, and lookups try the previous blind-index key too
(``YIYANG_BLIND_INDEX_KEY_PREVIOUS``). Work goes in batches, each its own transaction; a batch
writes a row only if the value it read is still there (compare and set), so a concurrent import
or edit is never overwritten with an older value. Rows already under the current key are left
alone, which makes a run idempotent and an interrupted run resumable: run it again. A value that
does not open (sealed under a key no longer configured, or damaged) is skipped and counted, so it
does not hold back the rest; ``unknown_keys`` names the keys such values need.

Besides the personal columns, a device secret waiting for the broker
(``broker_admission_pending.secret``) is sealed with the field keys: it is counted and re-sealed too.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
from sqlalchemy import text
from sqlalchemy.orm import Session

from yiyang.access import pii
from yiyang.access.crypto import FieldDecryptError, blind_index, reencrypt_field
from yiyang.access.keys import AccessKeys
from yiyang.db import Database, is_postgres

Progress = Callable[[str, int], None]  # (what, rows done in this batch)
DEFAULT_BATCH = 1000


@dataclass
class RotationReport:
    resealed: dict[str, int] = field(default_factory=dict)  # "table.column" -> rows re-sealed
    reindexed: int = 0  # residents whose blind indexes changed
    redigested: int = 0  # source records whose content hash changed
    conflicts: int = 0  # rows changed by someone else mid-batch (already under the current key)
    unreadable: dict[str, int] = field(default_factory=dict)  # "table.column" -> values that did not open


@dataclass(frozen=True, slots=True)
class SealedColumn:
    """A column holding values sealed with the field keys, and the context each row's value is bound to."""

    table: str
    column: str
    context: Callable[[Any], str]  # from the row's key
    key: str = "id"

    @property
    def name(self) -> str:
        return f"{self.table}.{self.column}"


def sealed_columns() -> tuple[SealedColumn, ...]:
    """Every column sealed with the field keys: the personal fields, then device secrets."""
    personal = tuple(
        SealedColumn(table, column, lambda _key, context=context: context)
        for table, column, context in pii.ENCRYPTED_COLUMNS
    )
    return (
        *personal,
        SealedColumn(
            "broker_admission_pending", "secret", lambda uid: f"{pii.DEVICE_SECRET}:{uid}", key="uid"
        ),
    )


def _kid_expression(session: Session, column: str) -> str:
    if is_postgres(session):
        return f"split_part({column}, ':', 1)"
    return f"substr({column}, 1, instr({column}, ':') - 1)"


def key_usage(session: Session) -> dict[str, dict[str, int]]:
    """For each encrypted column, how many values each field key sealed: a key no value names
    may be removed from ``YIYANG_FIELD_KEYS``."""
    usage: dict[str, dict[str, int]] = {}
    for sealed in sealed_columns():
        table, column = sealed.table, sealed.column
        kid = _kid_expression(session, column)
        rows = session.execute(
            text(f"SELECT {kid}, count(*) FROM {table} WHERE {column} IS NOT NULL GROUP BY {kid}")
        ).all()
        usage[sealed.name] = {str(k): int(n) for k, n in rows}
    return usage


def unknown_keys(session: Session, keys: AccessKeys) -> dict[str, int]:
    """Key ids that stored values name but ``YIYANG_FIELD_KEYS`` does not hold, with how many
    values each: those values do not open until the key is configured again."""
    configured = {key.kid for key in keys.field_keys.keys}
    unknown: dict[str, int] = {}
    for counts in key_usage(session).values():
        for kid, count in counts.items():
            if kid not in configured:
                unknown[kid] = unknown.get(kid, 0) + count
    return unknown


def pending(session: Session, keys: AccessKeys) -> dict[str, int]:
    """Values per encrypted column not yet sealed under the current key."""
    prefix = keys.field_keys.current.kid + ":"
    counts = {}
    for sealed in sealed_columns():
        table, column = sealed.table, sealed.column
        counts[sealed.name] = session.execute(
            text(
                f"SELECT count(*) FROM {table} WHERE {column} IS NOT NULL AND substr({column}, 1, :n) <> :prefix"
            ),
            {"n": len(prefix), "prefix": prefix},
        ).scalar_one()
    return counts


def reseal_all(
    database: Database,
    keys: AccessKeys,
    *,
    batch_size: int = DEFAULT_BATCH,
    on_progress: Progress | None = None,
) -> RotationReport:
    """Re-seal every value not under the current field key; returns what was done."""
    report = RotationReport()
    prefix = keys.field_keys.current.kid + ":"
    for sealed in sealed_columns():
        table, column, key, name = sealed.table, sealed.column, sealed.key, sealed.name
        report.resealed[name] = 0
        select = text(
            f"SELECT {key}, {column} FROM {table} WHERE {key} > :last AND {column} IS NOT NULL "
            f"AND substr({column}, 1, :n) <> :prefix ORDER BY {key} LIMIT :limit"
        )
        update = text(f"UPDATE {table} SET {column} = :new WHERE {key} = :id AND {column} = :old")
        last: Any = 0 if key == "id" else ""
        while True:
            with database.unit_of_work() as session:
                rows = session.execute(
                    select, {"last": last, "n": len(prefix), "prefix": prefix, "limit": batch_size}
                ).all()
                if not rows:
                    break
                changes = []
                for row_key, old in rows:
                    try:
                        new = reencrypt_field(keys.field_keys, old, sealed.context(row_key))
                    except FieldDecryptError:  # left as it is, counted: the rest still moves
                        report.unreadable[name] = report.unreadable.get(name, 0) + 1
                        continue
                    changes.append({"id": row_key, "old": old, "new": new})
                written = _update_each(session, update, changes)
                last = rows[-1][0]
            report.resealed[name] += written
            report.conflicts += len(changes) - written
            if on_progress:
                on_progress(name, len(rows))
    return report


def _update_each(session: Session, statement: Any, changes: list[dict[str, Any]]) -> int:
    """Run a compare-and-set update per row; how many rows it changed."""
    written = 0
    for change in changes:  # one statement per row: executemany does not report rows matched on every driver
        written += session.execute(statement, change).rowcount or 0
    return written


def stale_index_count(session: Session) -> int:
    """Residents with a sealed ID number or phone (for sizing a re-index progress bar)."""
    return session.execute(
        text("SELECT count(*) FROM resident WHERE id_number_enc IS NOT NULL OR phone_enc IS NOT NULL")
    ).scalar_one()


def reindex_all(
    database: Database,
    keys: AccessKeys,
    *,
    batch_size: int = DEFAULT_BATCH,
    on_progress: Progress | None = None,
) -> RotationReport:
    """Recompute blind indexes and source-record digests under the current blind-index key."""
    report = RotationReport()
    blind_key = keys.blind_index_key
    select = text(
        "SELECT id, id_number_enc, phone_enc, id_number_bidx, phone_bidx FROM resident "
        "WHERE id > :last ORDER BY id LIMIT :limit"
    )
    # Only if the sealed values are the ones read: a concurrent write already used the new key.
    update = text(
        "UPDATE resident SET id_number_bidx = :id_idx, phone_bidx = :phone_idx WHERE id = :id "
        "AND (id_number_enc = :id_enc OR (id_number_enc IS NULL AND :id_enc IS NULL)) "
        "AND (phone_enc = :phone_enc OR (phone_enc IS NULL AND :phone_enc IS NULL))"
    )
    last = 0
    while True:
        with database.unit_of_work() as session:
            rows = session.execute(select, {"last": last, "limit": batch_size}).all()
            if not rows:
                break
            changes = []
            for row_id, id_enc, phone_enc, id_idx, phone_idx in rows:
                number = _unseal_or_count(
                    id_enc, pii.RESIDENT_ID_NUMBER, "resident.id_number_enc", keys, report
                )
                phone = _unseal_or_count(phone_enc, pii.RESIDENT_PHONE, "resident.phone_enc", keys, report)
                if number is _UNREADABLE or phone is _UNREADABLE:
                    continue  # its index stays as it is until the value opens again
                new_id_idx = blind_index(blind_key, "id_number", number) if number else None
                new_phone_idx = blind_index(blind_key, "phone", phone) if phone else None
                if (new_id_idx, new_phone_idx) != (id_idx, phone_idx):
                    changes.append(
                        {"id": row_id, "id_enc": id_enc, "phone_enc": phone_enc, "id_idx": new_id_idx,
                         "phone_idx": new_phone_idx}
                    )  # fmt: skip
            written = _update_each(session, update, changes)
            last = rows[-1][0]
        report.reindexed += written
        report.conflicts += len(changes) - written
        if on_progress:
            on_progress("resident.blind_index", len(rows))
    report.redigested, conflicts = _redigest_records(database, keys, batch_size, on_progress, report)
    report.conflicts += conflicts
    return report


_UNREADABLE = object()


def _unseal_or_count(
    value: str | None, context: str, name: str, keys: AccessKeys, report: RotationReport
) -> Any:
    try:
        return pii.unseal(value, context, keys)
    except FieldDecryptError:
        report.unreadable[name] = report.unreadable.get(name, 0) + 1
        return _UNREADABLE


def _redigest_records(
    database: Database,
    keys: AccessKeys,
    batch_size: int,
    on_progress: Progress | None,
    report: RotationReport,
) -> tuple[int, int]:
    """Source-record content hashes are keyed from the blind-index key: recompute them too, so
    re-importing an unchanged file still finds every row unchanged. Records entered in this system
    (feed ``staff``, e.g. assessments) are never re-imported and keep their own hashes."""
    select = text(
        "SELECT id, payload, observed_at, id_number_enc, phone_enc, content_hash FROM source_record "
        "WHERE id > :last AND feed <> 'staff' ORDER BY id LIMIT :limit"
    )
    update = text("UPDATE source_record SET content_hash = :new WHERE id = :id AND content_hash = :old")
    last = redigested = conflicts = 0
    while True:
        with database.unit_of_work() as session:
            rows = session.execute(select, {"last": last, "limit": batch_size}).all()
            if not rows:
                break
            changes = []
            for row_id, payload, observed_at, id_enc, phone_enc, digest in rows:
                if isinstance(payload, str):
                    payload = orjson.loads(payload)
                if isinstance(observed_at, str):
                    observed_at = dt.datetime.fromisoformat(observed_at)
                number = _unseal_or_count(
                    id_enc, pii.SOURCE_ID_NUMBER, "source_record.id_number_enc", keys, report
                )
                phone = _unseal_or_count(phone_enc, pii.SOURCE_PHONE, "source_record.phone_enc", keys, report)
                if number is _UNREADABLE or phone is _UNREADABLE:
                    continue
                full = {**payload, "id_number": number, "phone": phone}
                new = pii.record_digest(full, observed_at, keys)
                if new != digest:
                    changes.append({"id": row_id, "old": digest, "new": new})
            written = _update_each(session, update, changes)
            last = rows[-1][0]
        redigested += written
        conflicts += len(changes) - written
        if on_progress:
            on_progress("source_record.content_hash", len(rows))
    return redigested, conflicts


def retired_keys(session: Session, keys: AccessKeys) -> list[str]:
    """Configured field keys that no stored value names any more (safe to remove)."""
    used = {kid for counts in key_usage(session).values() for kid in counts}
    return [key.kid for key in keys.field_keys.keys[1:] if key.kid not in used]

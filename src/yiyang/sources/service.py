"""Import runs: agency rows in, linked to residents, folded into profiles, with provenance.

One run is one transaction: a file is applied whole or not at all. Inside a run, rows are taken
in batches; each batch is linked (exact on a valid ID number, else probabilistic), folded into
the residents' profiles by the precedence rule, and written with the bulk paths (COPY on
PostgreSQL). Re-importing the same rows changes nothing: a row whose (feed, source key) is known
with the same content hash is counted as unchanged.

ID numbers and phones are written sealed with their blind indexes (``access/pii.py``); exact
linkage matches the index, and candidates' phones are opened in memory for the fuzzy comparison.
A source record keeps them sealed in its own columns, out of the payload JSON.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import gc
import hashlib
import logging
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import String, TypeDecorator, bindparam, select, text
from sqlalchemy.orm import Session
from sqlalchemy.types import NullType

from yiyang import events
from yiyang.access import pii
from yiyang.config import Settings, get_settings
from yiyang.db import (
    Database,
    allocate_ids,
    bulk_insert,
    bulk_update,
    db_datetime,
    is_postgres,
    local_setting,
    utcnow,
)
from yiyang.errors import Conflict
from yiyang.events import ResidentsChanged
from yiyang.geo.models import Area, AreaLevel
from yiyang.residents.identity import mask_attribute
from yiyang.residents.names import name_pinyin
from yiyang.residents.precedence import FactRef, replaces
from yiyang.residents.profile import apply_payload, attribute_values, provenance_from_json, provenance_to_json
from yiyang.sources import linkage
from yiyang.sources.models import Feed, ImportRun, LinkMethod, RunStatus
from yiyang.sources.records import RowRejection, SourceRow, payload_of

log = logging.getLogger(__name__)

# Columns of ``resident`` the runner reads and writes (id first).
RESIDENT_COLUMNS = (
    "id", "id_number_enc", "id_number_bidx", "name", "name_pinyin", "sex", "birth_date", "phone_enc",
    "phone_bidx", "address", "household_id",
    "community_id", "grid_id", "insurance_type", "living_arrangement", "dibao", "tekun",
    "disability_cert_grade", "capability_level", "status", "merged_into_id", "needs_review",
    "provenance", "created_at", "updated_at",
)  # fmt: skip
PROFILE_COLUMNS = (
    "id_number_enc", "id_number_bidx", "name", "name_pinyin", "sex", "birth_date", "phone_enc", "phone_bidx",
    "address", "household_id",
    "community_id", "grid_id", "insurance_type", "living_arrangement", "dibao", "tekun",
    "disability_cert_grade", "capability_level", "needs_review", "provenance", "updated_at",
)  # fmt: skip
SOURCE_RECORD_COLUMNS = (
    "id", "feed", "source_key", "resident_id", "import_run_id", "line", "observed_at", "recorded_at",
    "content_hash", "payload", "link_method", "link_score", "id_number_enc", "phone_enc",
)  # fmt: skip
SEALED_IN_RECORD = ("id_number", "phone")  # kept out of source_record.payload, in their own columns
# A resident's pinyin with its birth year ("wang li|1945"), and with its month and day as one
# number ("wang li|312"), per engine (True: PostgreSQL, which indexes both, migration 0016), as
# ``ImportRunner._name_clause`` looks them up. SQLite keeps dates as text.
PINYIN_YEAR = {
    True: "name_pinyin || '|' || date_part('year', birth_date)::int::text",
    False: "name_pinyin || '|' || substr(birth_date, 1, 4)",
}
PINYIN_DAY = {
    True: "name_pinyin || '|' || (date_part('month', birth_date) * 100 + date_part('day', birth_date))::int::text",
    False: "name_pinyin || '|' || (CAST(substr(birth_date, 6, 2) AS INTEGER) * 100 + CAST(substr(birth_date, 9, 2) AS INTEGER))",
}
# The (birth date, surname) block of linkage._blocks as PostgreSQL indexes it (migration 0016),
# keyed as linkage.born_surname_keys keys a row's.
BORN_SURNAME = f"split_part(name_pinyin, ' ', 1) || '|' || (birth_date - DATE '{linkage.BORN_EPOCH}')::text"
# What the runner reads of a resident to link rows to it (``ImportRunner._keys_of``).
CANDIDATE_COLUMNS = "id, name, name_pinyin, sex, birth_date, phone_enc, address, id_number_bidx IS NOT NULL"
# The element type of each array the runner's lookups bind, where not text (``_where_in``).
ARRAY_TYPES = {"id": "integer[]", "resident_id": "integer[]", "birth_date": "date[]"}
ANALYZE_AFTER_ROWS = 10_000  # see ImportRunner._refresh_statistics
RUN_STATISTICS_TARGET = 10  # PostgreSQL's default_statistics_target for the run's ANALYZEs
COLLECT_EVERY_BATCHES = 10  # see collector_paused
# Residents without an ID number held in memory for a run, at most (ImportRunner._residents_without_id).
NO_ID_IN_MEMORY = 100_000
# Above this share of new residents in the last batch, a batch seals its values for the resident
# rows and keys its addresses for households before it waits for the last batch's writes
# (ImportRunner.apply).
AHEAD_NEW_SHARE = 0.5
NEW_RESIDENT_METHODS = (LinkMethod.new, LinkMethod.review)
REPORT_REJECTIONS_KEPT = 1000  # rejections stored on the run row; the report file has them all


@dataclass
class ImportReport:
    run_id: int
    feed: str
    label: str
    counts: Counter[str] = field(default_factory=Counter)
    rejections: list[RowRejection] = field(default_factory=list)
    resident_ids: dict[str, int] = field(default_factory=dict)
    encoding: str | None = None
    elapsed_s: float = 0.0
    status: str = RunStatus.applied
    # Seconds per stage of the runner (hash, link, fold, households, resident rows, waiting for
    # writes, changed); the rest of the elapsed time is reading the file and committing.
    stage_seconds: Counter[str] = field(default_factory=Counter)
    # Seconds per stage of the writes (resident, record and fact writes, statistics). On
    # PostgreSQL they run on a second thread, beside the next batch; on SQLite inline.
    write_seconds: Counter[str] = field(default_factory=Counter)

    def as_json(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "feed": self.feed,
            "file": self.label,
            "status": self.status,
            "encoding": self.encoding,
            "elapsed_s": round(self.elapsed_s, 3),
            "counts": dict(self.counts),
            "rejections": [
                {
                    "line": r.line,
                    "code": r.code,
                    "message": r.message,
                    "source_key": r.source_key,
                    "column": r.column,
                    "community_code": r.community_code,
                }
                for r in self.rejections
            ],
        }


@dataclass(slots=True)
class _BatchWrites:
    """What one batch stores once it is linked and folded."""

    resident_inserts: list[tuple[Any, ...]]
    resident_updates: list[tuple[Any, ...]]
    records: list[tuple[Any, ...]]
    fact_changes: list[tuple[Any, ...]]
    conditions: list[tuple[int, int, dt.date, list[Any]]]
    observations: list[tuple[Any, ...]]
    reviews: list[tuple[Any, ...]]


class _Profile:
    """A resident's values while a batch folds rows into them."""

    __slots__ = ("values", "provenance", "is_new", "dirty", "address_changed")

    def __init__(self, values: dict[str, Any], provenance: dict[str, Any], is_new: bool) -> None:
        self.values = values
        self.provenance = provenance
        self.is_new = is_new
        self.dirty = is_new
        self.address_changed = is_new


class _Prepared:
    """A row with what is worked out of it before the batch may touch the database (``apply``)."""

    __slots__ = ("row", "payload", "digest", "stored", "observed", "stated", "observations", "keys")

    def __init__(self, row: SourceRow, keys: pii.AccessKeys) -> None:
        self.row = row
        payload = self.payload = payload_of(row)
        self.digest = content_hash(payload, row.observed_at)
        # The source record's stored form: payload JSON and the two seals.
        self.stored = (
            orjson.dumps(stored_payload(payload)).decode(),
            pii.seal(row.id_number, pii.SOURCE_ID_NUMBER, keys),
            pii.seal(row.phone, pii.SOURCE_PHONE, keys),
        )
        self.observed = db_datetime(row.observed_at)
        self.stated = attribute_values(payload)
        self.observations = [
            (code, value, value2, unit, db_datetime(dt.datetime.fromisoformat(effective)))
            for code, value, value2, unit, effective in payload.get("observations", ())
        ]
        # A row without an ID number is always searched for; one with an ID number only when the
        # registry does not know it (``_link`` works out those keys).
        self.keys = (
            None
            if row.id_number
            else linkage.make_keys(row.name, row.sex, row.birth_date, row.phone, row.address)
        )


def content_hash(payload: dict[str, Any], observed_at: dt.datetime) -> str:
    """Keyed, since the payload holds the ID number and phone (``pii.record_digest``)."""
    return pii.record_digest(payload, observed_at)


def stored_payload(payload: dict[str, Any]) -> dict[str, Any]:
    """What ``source_record.payload`` keeps: everything but the sealed fields."""
    return {key: value for key, value in payload.items() if key not in SEALED_IN_RECORD}


def address_key(address: str) -> str:
    """Households are matched on the normalised address within a community."""
    return linkage.normalise_address(address)[:200]


class ImportRunner:
    """Applies batches of rows for one run inside the caller's transaction."""

    def __init__(self, session: Session, feed: Feed, run_id: int, settings: Settings | None = None) -> None:
        self.session = session
        self.feed = feed
        self.run_id = run_id
        self.settings = settings or get_settings()
        self.report_counts: Counter[str] = Counter()
        self.stage_seconds: Counter[str] = Counter()
        self.resident_ids: dict[str, int] = {}
        self.rejections: list[RowRejection] = []  # rows refused once they met the registry
        areas = session.execute(select(Area.code, Area.id, Area.level, Area.parent_id)).all()
        self.community_ids = {code: id_ for code, id_, level, _ in areas if level == AreaLevel.community}
        self.grid_ids = {code: id_ for code, id_, level, _ in areas if level == AreaLevel.grid}
        # grid id -> its community's id: a grid counts only inside the resident's community
        self.grid_community = {id_: parent for _, id_, level, parent in areas if level == AreaLevel.grid}
        self.area_code_of = {
            id_: code for code, id_, level, _ in areas if level in (AreaLevel.community, AreaLevel.grid)
        }
        self.recorded_at = db_datetime(utcnow())
        self.postgres = is_postgres(session)
        # Whether anyone is registered without an ID number: if not, a row with an unknown ID
        # number is simply a new person, and the probabilistic search is skipped for it.
        self.anyone_without_id = (
            session.execute(
                text("SELECT 1 FROM resident WHERE id_number_bidx IS NULL AND status = 'active' LIMIT 1")
            ).first()
            is not None
        )
        # A feed's first import can meet its own records again only under keys it has already seen
        # in this run (``_known_records``).
        self.feed_had_records = (
            session.execute(
                text("SELECT 1 FROM source_record WHERE feed = :feed LIMIT 1"), {"feed": feed.value}
            ).first()
            is not None
        )
        # The registry's residents without an ID number, kept for the run once loaded
        # (``_residents_without_id``); False once there are too many to hold.
        self._without_id: linkage.LinkIndex | None | bool = None
        self.keys = pii.get_keys()
        self.opened_phones: dict[str, str] = {}  # sealed -> plain, for candidates met again
        # resident id -> attribute -> (plain, sealed, index) as loaded for this batch: an unchanged
        # value keeps them.
        self.stored_sealed: dict[int, dict[str, tuple[str | None, str | None, str | None]]] = {}
        self.current_prefix = self.keys.field_keys.current.kid + ":"
        # Rows this run has added to the registry since the planner last counted them: see
        # _refresh_statistics.
        self.added_since_analyze = 0
        self.planned_rows = self._planned_rows() if self.postgres else 0
        # Seconds per stage of the writes, apart: on PostgreSQL they overlap the next batch.
        self.write_seconds: Counter[str] = Counter()
        self._writer: ThreadPoolExecutor | None = None  # started by the first batch (PostgreSQL)
        self._pending: Future[None] | None = None
        # The share of the last batch's new rows that made new residents, and (attribute, value)
        # -> (sealed, blind index) made ahead for this batch's resident rows when it was high.
        self.new_share = 0.0
        self.sealed_ahead: dict[tuple[str, str], tuple[str | None, str | None]] = {}
        self.address_keys: dict[str, str] = {}  # address -> household key, worked out ahead

    # -- one batch -------------------------------------------------------------------------
    def apply(self, rows: list[SourceRow]) -> None:
        if not rows:
            return
        session = self.session
        clock = time.perf_counter
        stages = self.stage_seconds
        started = clock()
        self.stored_sealed.clear()  # the last batch's profiles are written
        # What needs nothing from the database, done while the last batch's writes run: the
        # payload, its keyed hash, the source record's stored form, what the row states and
        # observes, the link keys of rows without an ID number (``_Prepared``), and the blind
        # indexes that find the rows' ID numbers. The batch's turn is its own work after the
        # wait plus the longer of this and the last batch's writes, so work moved here is free
        # while the writes are the longer (measured: they are, on every feed).
        keys = self.keys
        number_of = {
            index: row.id_number
            for row in rows
            if row.id_number
            for index in pii.lookup_indexes("id_number", row.id_number, keys)
        }
        prepared = [_Prepared(row, keys) for row in rows]
        self.sealed_ahead.clear()
        self.address_keys.clear()
        if self.new_share > AHEAD_NEW_SHARE:
            # Most rows of the last batch made new residents (a district's first import): seal
            # this batch's ID numbers and phones for the resident rows now, while the writes run,
            # not after the wait, and work out the household key of each address (every new
            # resident is placed in a household). A value no new or changed resident takes is
            # sealed for nothing, and a later feed's rows mostly move nobody: they do neither.
            address_keys, sealed_ahead = self.address_keys, self.sealed_ahead
            for item in prepared:
                address = item.stated.get("address")
                if address and address not in address_keys:
                    address_keys[address] = address_key(address)
                for attribute, plain, context in (
                    ("id_number", item.row.id_number, pii.RESIDENT_ID_NUMBER),
                    ("phone", item.row.phone, pii.RESIDENT_PHONE),
                ):
                    if plain and (attribute, plain) not in sealed_ahead:
                        sealed_ahead[attribute, plain] = self._seal_afresh(attribute, plain, context)
        hashed_at = clock()
        self.wait_for_writes()  # this batch's lookups must see the last one's rows
        known_at = clock()

        known = self._known_records([row.source_key for row in rows])
        fresh: list[_Prepared] = []
        changed: list[tuple[_Prepared, int, int]] = []
        for item in prepared:
            record = known.get(item.row.source_key)
            if record is None:
                fresh.append(item)
            elif record[1] == item.digest:
                self.report_counts["unchanged"] += 1
                self.resident_ids[item.row.source_key] = record[2]
            else:
                changed.append((item, record[0], record[2]))

        profiles: dict[int, _Profile] = {}
        linked = clock()
        # The known-record lookup counts with the hashing, as the stage that sorts rows out.
        stages["hash"] += (hashed_at - started) + (linked - known_at)
        links = self._link(fresh, profiles, number_of)
        if fresh:
            self.new_share = sum(1 for link in links if link[1] in NEW_RESIDENT_METHODS) / len(fresh)
        record_ids = allocate_ids(session, "source_record", len(fresh))
        folded = clock()
        stages["link"] += folded - linked

        new_records = []
        fact_changes: list[tuple[Any, ...]] = []
        conditions: list[tuple[int, int, dt.date, list[Any]]] = []
        observations: list[tuple[Any, ...]] = []
        reviews: list[tuple[Any, ...]] = []
        for item, record_id, link in zip(fresh, record_ids, links, strict=True):
            row, payload = item.row, item.payload
            stored, id_number_enc, phone_enc = item.stored
            resident_id, method, score, review = link
            new_records.append(
                (record_id, self.feed.value, row.source_key, resident_id, self.run_id, row.line, item.observed,
                 self.recorded_at, item.digest, stored, method, score, id_number_enc, phone_enc)
            )  # fmt: skip
            self.resident_ids[row.source_key] = resident_id
            self.report_counts[f"linked_{method}" if method != LinkMethod.new else "new_resident"] += 1
            self.report_counts["accepted"] += 1
            profile = profiles[resident_id]
            ref = FactRef(record_id, self.feed.value, row.observed_at)
            for change in apply_payload(profile.values, profile.provenance, payload, ref, item.stated):
                profile.dirty = True
                if change.attribute in ("address", "community_code"):
                    profile.address_changed = True
                if change.old_ref is not None and not profile.is_new and change.old_value != change.new_value:
                    attribute = change.attribute
                    fact_changes.append(
                        (resident_id, attribute, _text(mask_attribute(attribute, change.old_value)),
                         _text(mask_attribute(attribute, change.new_value)),
                         change.old_ref.source_record_id, record_id, change.reason, self.recorded_at)
                    )  # fmt: skip
            conditions.extend(
                (resident_id, record_id, row.observed_at.date(), c) for c in payload.get("conditions", ())
            )
            observations.extend((resident_id, *observed, record_id) for observed in item.observations)
            if review is not None:
                candidate_id, comparison = review
                reviews.append(
                    (
                        resident_id,
                        candidate_id,
                        record_id,
                        score,
                        orjson.dumps(comparison).decode(),
                        "open",
                        self.recorded_at,
                    )
                )

        written = clock()
        stages["fold"] += written - folded
        self._write_households(profiles)
        households_at = clock()
        stages["households"] += households_at - written
        inserts, updates = self._resident_rows(profiles)
        self._follow_without_id(profiles)
        self._write_later(
            self._write_batch, _BatchWrites(inserts, updates, new_records, fact_changes, conditions, observations,
                                            reviews),
        )  # fmt: skip
        if changed:  # rare (a known record with new content): rebuilt from what is written
            self.wait_for_writes()
            changed_at = clock()
            self._apply_changed(changed)
            stages["changed"] += clock() - changed_at

    # -- writes ----------------------------------------------------------------------------
    def _write_later(self, write: Callable[[_BatchWrites], None], batch: _BatchWrites) -> None:
        """Hand a batch's writes to the writer thread (PostgreSQL) or make them now (SQLite).

        PostgreSQL spends about as long storing a batch (COPY into indexed tables) as Python
        spends linking and folding it. Writing on a second thread lets the server store batch N
        while this thread reads and hashes batch N+1, the part of a batch that needs nothing
        from the database. The connection stays one transaction: this thread touches it again
        only after ``wait_for_writes``."""
        if not self.postgres:  # sqlite3 connections belong to their thread: SQLite writes inline
            write(batch)
            return
        self.wait_for_writes()
        if self._writer is None:
            self._writer = ThreadPoolExecutor(1, "import-writes")
        self._pending = self._writer.submit(write, batch)

    def wait_for_writes(self) -> None:
        """Block until the last batch's writes are done; re-raises their error."""
        pending, self._pending = self._pending, None
        if pending is not None:
            started = time.perf_counter()
            pending.result()
            self.stage_seconds["waiting for writes"] += time.perf_counter() - started

    def close(self) -> None:
        """Finish the writes and stop the writer thread (every run ends with this)."""
        try:
            self.wait_for_writes()
        finally:
            if self._writer is not None:
                self._writer.shutdown(wait=True)
                self._writer = None

    def _write_batch(self, batch: _BatchWrites) -> None:
        session = self.session
        clock = time.perf_counter
        # Timed apart from this thread's stages: on PostgreSQL they overlap the next batch.
        stages = self.write_seconds
        started = clock()
        bulk_insert(session, "resident", RESIDENT_COLUMNS, batch.resident_inserts)
        bulk_update(session, "resident", "id", PROFILE_COLUMNS, batch.resident_updates)
        records_at = clock()
        stages["resident writes"] += records_at - started
        bulk_insert(session, "source_record", SOURCE_RECORD_COLUMNS, batch.records)
        facts_at = clock()
        stages["record writes"] += facts_at - records_at
        bulk_insert(
            session, "fact_change",
            ("resident_id", "attribute", "old_value", "new_value", "old_source_record_id",
             "new_source_record_id", "reason", "changed_at"),
            batch.fact_changes,
        )  # fmt: skip
        self._write_conditions(batch.conditions)
        bulk_insert(
            session, "observation",
            ("resident_id", "code", "value", "value2", "unit", "effective_at", "source_record_id"),
            batch.observations,
        )  # fmt: skip
        bulk_insert(
            session, "link_review",
            ("resident_id", "candidate_id", "source_record_id", "score", "comparison", "status", "created_at"),
            batch.reviews,
        )  # fmt: skip
        stages["fact writes"] += clock() - facts_at
        self.added_since_analyze += len(batch.records)
        self._refresh_statistics()

    def _planned_rows(self) -> int:
        """What the planner believes ``source_record`` holds (0 when never analysed)."""
        count = self.session.execute(
            text("SELECT reltuples FROM pg_class WHERE oid = 'source_record'::regclass")
        ).scalar()
        return max(int(count or 0), 0)

    def _refresh_statistics(self) -> None:
        """ANALYZE the registry's tables once a run has doubled them (and added 10,000 rows).

        A district's first imports grow the tables from nothing faster than autovacuum counts
        them; with no statistics the planner takes ``status = 'active'`` for selective and the
        candidate and profile lookups scan a whole index per batch (measured: the linkage of the
        second feed of a 400,000-resident district ran at half speed). Inside the run's
        transaction ANALYZE counts the rows the run itself has written."""
        if not self.postgres or self.added_since_analyze < max(ANALYZE_AFTER_ROWS, self.planned_rows):
            return
        # Doubling keeps the planner's counts within a factor of two at the cost of a few
        # ANALYZEs per run. The lookups need row counts and rough distinct counts, not fine
        # histograms: a small sample (RUN_STATISTICS_TARGET) makes each ANALYZE about fifteen
        # times cheaper (measured: resident 400 -> 27 ms at 100,000 residents). Autovacuum
        # analyses the tables afresh, at the server's own target, once the run has committed.
        started = time.perf_counter()
        with local_setting(self.session, "default_statistics_target", str(RUN_STATISTICS_TARGET)):
            # condition too: a batch's UPDATE of the conditions it saw again otherwise hashes the
            # whole table, which the planner believes a fraction of its size.
            for table in ("resident", "source_record", "household", "condition"):
                self.session.execute(text(f"ANALYZE {table}"))
        self.added_since_analyze = 0
        self.planned_rows = self._planned_rows()
        self.write_seconds["statistics"] += time.perf_counter() - started

    # -- linkage ---------------------------------------------------------------------------
    def _link(
        self, prepared: list[_Prepared], profiles: dict[int, _Profile], number_of: dict[str, str]
    ) -> list[tuple[int, str, float | None, tuple[int, dict[str, Any]] | None]]:
        """Resident id, link method, score and (candidate, comparison) for review, per fresh row.

        ``number_of``: blind index -> ID number, for the batch's ID numbers (under the current key
        and any previous one being retired)."""
        session = self.session
        fresh = [item.row for item in prepared]
        by_id: dict[str, int] = {}
        if any(row.id_number for row in fresh):
            stmt = self._where_in("SELECT id_number_bidx, id FROM resident WHERE {ids}", ids="id_number_bidx")
            by_id = {
                number_of[index]: resident_id
                for index, resident_id in session.execute(stmt, {"ids": list(number_of)}).all()
            }
        # Residents found by their ID number hold that number: their profiles need not open it.
        number_held = {resident_id: number for number, resident_id in by_id.items()}

        unlinked = [row for row in fresh if not row.id_number or row.id_number not in by_id]
        searched = [row for row in unlinked if not row.id_number or self.anyone_without_id]
        row_keys = {id(item.row): item.keys for item in prepared if item.keys is not None}
        for row in searched:
            if id(row) not in row_keys:
                row_keys[id(row)] = linkage.make_keys(
                    row.name, row.sex, row.birth_date, row.phone, row.address
                )
        index_all = linkage.LinkIndex()  # candidates for rows without an ID number
        # Candidates for rows with one: a row with an ID number the registry does not know can only
        # be someone registered without one. The run holds those residents in memory when it can;
        # else the batch asks for just them, so a district's first import does not load every
        # namesake as a candidate.
        if any(row.id_number for row in searched):
            self._residents_without_id()  # loaded once, on first need
        held = self._without_id if isinstance(self._without_id, linkage.LinkIndex) else None
        index_no_id = held if held is not None else linkage.LinkIndex()
        for with_id in (False, True):
            keys = [row_keys[id(row)] for row in searched if bool(row.id_number) == with_id]
            if not keys or (with_id and held is not None):
                continue
            for resident_id, candidate, has_id in self._load_candidates(keys, without_id=with_id):
                if resident_id not in index_all:
                    index_all.add(resident_id, candidate)
                if not has_id and held is None and resident_id not in index_no_id:
                    index_no_id.add(resident_id, candidate)

        new_ids = iter(allocate_ids(session, "resident", len(unlinked)))
        needed: set[int] = set()  # existing residents whose profiles this batch changes
        batch_has_no_id_rows = any(not row.id_number for row in unlinked)
        results = []
        link_at = self.settings.link_threshold
        review_at = self.settings.review_threshold
        for row in fresh:
            resident_id = by_id.get(row.id_number) if row.id_number else None
            if resident_id is not None:
                results.append((resident_id, LinkMethod.id_number, None, None))
                needed.add(resident_id)
                continue
            keys = row_keys.get(id(row))
            if keys is None and (self.anyone_without_id or batch_has_no_id_rows):
                keys = linkage.make_keys(row.name, row.sex, row.birth_date, row.phone, row.address)
            match = None
            if keys is not None and (not row.id_number or self.anyone_without_id):
                match = (index_no_id if row.id_number else index_all).best_match(keys)
            outcome = linkage.decide(match[1].weight, link_at, review_at) if match else "new"
            if outcome == "link":
                resident_id = match[0]
                needed.add(resident_id)
                if row.id_number:  # the resident gains its ID number now: later rows link exactly
                    by_id[row.id_number] = resident_id
                    index_no_id.remove(resident_id)
                results.append((resident_id, LinkMethod.probabilistic, round(match[1].weight, 2), None))
                continue
            resident_id = next(new_ids)
            profiles[resident_id] = _Profile(self._blank_profile(resident_id), {}, is_new=True)
            if outcome == "review":
                profiles[resident_id].values["needs_review"] = True
                comparison = {"weight": round(match[1].weight, 2), "levels": match[1].levels}
                results.append(
                    (resident_id, LinkMethod.review, round(match[1].weight, 2), (match[0], comparison))
                )
            else:
                results.append((resident_id, LinkMethod.new, None, None))
            if row.id_number:
                by_id[row.id_number] = resident_id
            else:
                self.anyone_without_id = True
                index_no_id.add(resident_id, keys)
            if keys is not None:  # later rows of this batch without an ID number may be this person
                index_all.add(resident_id, keys)
        self._load_profiles(profiles, needed - profiles.keys(), number_held)
        return results

    def _load_candidates(
        self, rows: list[linkage.LinkKeys], *, without_id: bool
    ) -> Iterator[tuple[int, linkage.LinkKeys, bool]]:
        wanted = linkage.block_keys(rows)
        phone_tokens = {
            phone: pii.lookup_indexes("phone", phone, self.keys) for phone in wanted.get("phone", ()) if phone
        }
        clauses, params = {}, {}
        if self.postgres:  # the (birth date, surname) block by its own index, not all born that day
            born_surname, wanted["birth_date"] = linkage.born_surname_keys(rows)
            if born_surname:
                clauses["born_surname"] = BORN_SURNAME
                params["born_surname"] = list(born_surname)
        for param, column in (("birth_date", "birth_date"), ("phone", "phone_bidx")):
            values = [v for v in wanted.get(param, ()) if v]
            if param == "phone":  # phones are found by blind index
                values = [index for indexes in phone_tokens.values() for index in indexes]
            if values:
                clauses[param] = column
                params[param] = values
        by_name, name_columns = self._name_clause(rows, params)
        if not clauses and not by_name:
            return
        # The query finds those born on a row's birth date whose surname folds alike (on SQLite
        # everyone born that day), everyone sharing its phone, and
        # those sharing its pinyin who were born in its year or on its day and month (or whose
        # birth date one of the two does not know). At district scale that is still about fifty
        # residents per row, one in ten sharing a block with it. The filter drops the rest from
        # the cheap columns, before phones are opened and keys built.
        relevant = linkage.CandidateFilter()
        for keys in rows:
            relevant.add_row(keys, phone_tokens.get(keys.phone, ()) if keys.phone else ())
        # Two passes: the cheap columns of everyone the query finds, then the rest for those kept.
        stmt = self._where_in(
            "SELECT id, name_pinyin, birth_date, phone_bidx FROM resident WHERE status = 'active' "
            f"{'AND id_number_bidx IS NULL ' if without_id else ''}"
            f"AND ({' OR '.join(['{' + c + '}' for c in clauses] + ([by_name] if by_name else []))})",
            **clauses,
            **name_columns,
        )
        wants = relevant.wants
        kept = []
        for resident_id, pinyin, birth, phone_index in self._by_blocks(stmt, params):
            if isinstance(birth, str):
                birth = dt.date.fromisoformat(birth)
            if wants(birth, pinyin, phone_index):
                kept.append(resident_id)
        if not kept:
            return
        stmt = self._where_in(f"SELECT {CANDIDATE_COLUMNS} FROM resident WHERE {{ids}}", ids="id")
        yield from self._keys_of(self.session.execute(stmt, {"ids": kept}).all())

    def _by_blocks(self, stmt: Any, params: dict[str, Any]) -> list[Any]:
        """The candidate query's rows, read through the block indexes on PostgreSQL.

        The planner overestimates what the blocks hold (about 75,000 residents for a batch's
        2,000 rows without an ID number, where 11,500 are found: the statistics undercount the
        distinct keys of the pinyin-and-year and pinyin-and-day indexes), prices the bitmap scans
        above a scan of the whole table, and read 400,000 residents in 470 ms where the indexes
        take 120-180 ms. Sequential scans are ruled out for this one statement."""
        if not self.postgres:
            return self.session.execute(stmt, params).all()
        with local_setting(self.session, "enable_seqscan", "off"):
            return self.session.execute(stmt, params).all()

    def _keys_of(self, rows: Iterable[Any]) -> Iterator[tuple[int, linkage.LinkKeys, bool]]:
        """Link keys of residents read as ``CANDIDATE_COLUMNS``, with whether each has an ID number."""
        keyring, opened = self.keys, self.opened_phones
        for resident_id, name, pinyin, sex, birth, sealed_phone, address, has_id in rows:
            if isinstance(birth, str):
                birth = dt.date.fromisoformat(birth)
            # Opened in memory: the phone comparison allows one mistyped or swapped digit. The same
            # residents come back batch after batch, so each sealed value is opened once per run.
            phone = opened.get(sealed_phone) if sealed_phone else None
            if phone is None and sealed_phone:
                phone = opened[sealed_phone] = pii.unseal(sealed_phone, pii.RESIDENT_PHONE, keyring)
            keys = linkage.make_keys(name, sex, birth, phone, address, name_pinyin=pinyin)
            yield resident_id, keys, bool(has_id)

    def _residents_without_id(self) -> linkage.LinkIndex | None:
        """The registry's active residents without an ID number, indexed and held for the run.

        They are a few percent of a district, and every row with an ID number the registry does
        not know is compared with them. Asking the database for them batch after batch was a tenth
        of a 400,000-resident district's import; the run loads them once and keeps the index in
        step with its own links (``_link``, ``_follow_without_id``). Residents another user
        registers while the run goes on are not among them: such a row becomes a new resident,
        as it would have a moment earlier. With more than ``NO_ID_IN_MEMORY`` of them the batch
        queries serve instead (None)."""
        if self._without_id is None:
            count = self.session.execute(
                text("SELECT count(*) FROM resident WHERE status = 'active' AND id_number_bidx IS NULL")
            ).scalar_one()
            if count > NO_ID_IN_MEMORY:
                self._without_id = False
            else:
                index = linkage.LinkIndex()
                rows = self.session.execute(
                    text(
                        f"SELECT {CANDIDATE_COLUMNS} FROM resident "
                        "WHERE status = 'active' AND id_number_bidx IS NULL ORDER BY id"
                    )
                ).all()
                for resident_id, keys, _ in self._keys_of(rows):
                    index.add(resident_id, keys)
                self._without_id = index
        return self._without_id or None

    def _follow_without_id(self, profiles: dict[int, _Profile]) -> None:
        """Keep the held residents without an ID number as this batch leaves them."""
        index = self._without_id
        if not isinstance(index, linkage.LinkIndex):
            return
        for resident_id, profile in profiles.items():
            if not profile.dirty or resident_id not in index:
                continue
            values = profile.values
            if values.get("id_number") or values.get("status", "active") != "active":
                index.remove(resident_id)
                continue
            name = values.get("name") or ""
            birth = values.get("birth_date")
            if isinstance(birth, str):
                birth = dt.date.fromisoformat(birth)
            address = (values.get("address") or "")[:200] or None  # as _resident_row stores it
            keys = linkage.make_keys(name, values.get("sex"), birth, values.get("phone"), address,
                                     name_pinyin=name_pinyin(name))  # fmt: skip
            index.add(resident_id, keys)
        if len(index) > NO_ID_IN_MEMORY:  # grown past what the run holds: the batch queries take over
            self._without_id = False

    def _name_clause(
        self, rows: list[linkage.LinkKeys], params: dict[str, Any]
    ) -> tuple[str, dict[str, str]]:
        """The part of the candidate query that finds residents by pinyin, and the column each of
        its lists is matched on (for ``_where_in``); the lists go into ``params``. A shared folded
        pinyin alone is no block: it takes the same birth year, or the same day and month, unless
        the row or the resident has no birth date (``linkage._blocks``). Asking for that in SQL
        halves the rows a district's batch loads. Each row asks for every spelling of its name
        that folds alike (``linkage.unfold_name``)."""
        undated, dated, years, days = set(), set(), set(), set()
        for keys in rows:
            spellings = linkage.unfold_name(keys)  # 程 cheng finds 陈 chen: the blocks are folded
            if not spellings:
                continue
            born = keys.birth_date
            if born is None:
                undated.update(spellings)
                continue
            dated.update(spellings)
            year, day = born.year, born.month * 100 + born.day  # as PINYIN_YEAR and PINYIN_DAY
            for pinyin in spellings:
                years.add(f"{pinyin}|{year}")
                days.add(f"{pinyin}|{day}")
        parts, columns = [], {}
        if undated:
            params["undated_pinyin"] = list(undated)
            columns["undated_pinyin"] = "name_pinyin"
            parts.append("{undated_pinyin}")
        if dated:
            params.update(dated_pinyin=list(dated), pinyin_year=list(years), pinyin_day=list(days))
            columns.update(
                dated_pinyin="name_pinyin",
                pinyin_year=PINYIN_YEAR[self.postgres],
                pinyin_day=PINYIN_DAY[self.postgres],
            )
            if self.postgres:  # each part by its own index: an OR inside one part reads every namesake
                parts.append("({dated_pinyin} AND birth_date IS NULL) OR {pinyin_year} OR {pinyin_day}")
            else:
                parts.append("({dated_pinyin} AND (birth_date IS NULL OR {pinyin_year} OR {pinyin_day}))")
        return " OR ".join(parts), columns

    # -- profiles --------------------------------------------------------------------------
    def _blank_profile(self, resident_id: int) -> dict[str, Any]:
        return {"id": resident_id, "status": "active", "needs_review": False, "household_id": None}

    def _load_profiles(
        self, profiles: dict[int, _Profile], resident_ids: set[int], number_held: dict[int, str]
    ) -> None:
        """Profiles of existing residents, their ID numbers and phones opened in memory.

        ``number_held``: the ID number each resident found by it holds (its blind index matched),
        which is then not opened again. Provenance comes as text for orjson to read: psycopg's
        reader of the ``json`` type uses the standard library's, three times slower."""
        if not resident_ids:
            return
        columns = ", ".join("CAST(provenance AS TEXT)" if c == "provenance" else c for c in RESIDENT_COLUMNS)
        stmt = self._where_in(f"SELECT {columns} FROM resident WHERE {{ids}}", ids="id")
        code_of = self.area_code_of
        keyring = self.keys
        for row in self.session.execute(stmt, {"ids": list(resident_ids)}).all():
            values = dict(zip(RESIDENT_COLUMNS, row, strict=True))
            resident_id = values["id"]
            id_enc, phone_enc = values.pop("id_number_enc"), values.pop("phone_enc")
            number = number_held.get(resident_id) if id_enc is not None else None
            if number is None:
                number = pii.unseal(id_enc, pii.RESIDENT_ID_NUMBER, keyring)
            phone = pii.unseal(phone_enc, pii.RESIDENT_PHONE, keyring)
            self.stored_sealed[resident_id] = {
                "id_number": (number, id_enc, values.pop("id_number_bidx")),
                "phone": (phone, phone_enc, values.pop("phone_bidx")),
            }
            values["id_number"], values["phone"] = number, phone
            profiles[resident_id] = _Profile(*_profile_from_columns(values, code_of), is_new=False)

    def _write_households(self, profiles: dict[int, _Profile]) -> None:
        """Residents at the same normalised address in the same community share a household.

        The household's grid and living arrangement follow what the batch leaves its members
        with: a newer row that moves someone in, re-draws the grid or (民政, the authority for it)
        says who lives there updates the household, not only the row that first made it."""
        wanted: dict[tuple[int, str], list[_Profile]] = {}
        # Households kept by members whose grid or living arrangement this batch may have changed:
        # a value whose evidence is from this feed (a batch folds only its feed's rows).
        kept: dict[int, list[_Profile]] = {}
        feed = self.feed.value
        address_keys = self.address_keys
        for profile in profiles.values():
            values = profile.values
            if not profile.address_changed:
                if profile.dirty and (household_id := values.get("household_id")) is not None:
                    provenance = profile.provenance
                    grid_ref, living_ref = provenance.get("grid_code"), provenance.get("living_arrangement")
                    if (grid_ref is not None and grid_ref.feed == feed) or (
                        living_ref is not None and living_ref.feed == feed
                    ):
                        kept.setdefault(household_id, []).append(profile)
                continue
            community_id = self.community_ids.get(values.get("community_code") or "")
            address = values.get("address")
            if community_id is None or not address:
                continue
            key = address_keys.get(address)
            if key is None:  # not worked out ahead (see apply)
                key = address_keys[address] = address_key(address)
            wanted.setdefault((community_id, key), []).append(profile)
        if not wanted and not kept:
            return
        stmt = self._where_in(
            "SELECT id, community_id, address_key, grid_id, living_arrangement FROM household "
            "WHERE {keys} OR {ids}",
            keys="address_key",
            ids="id",
        )
        found: dict[tuple[int, str], int] = {}
        stored: dict[int, tuple[int, int | None, str | None]] = {}  # id -> community, grid, arrangement
        for household_id, community_id, key, grid_id, living in self.session.execute(
            stmt, {"keys": list({k for _, k in wanted}), "ids": list(kept)}
        ).all():
            found[(community_id, key)] = household_id
            stored[household_id] = (community_id, grid_id, living)
        missing = [key for key in wanted if key not in found]
        new_rows = []
        for (community_id, key), household_id in zip(
            missing, allocate_ids(self.session, "household", len(missing)), strict=True
        ):
            members = wanted[(community_id, key)]
            grid_id, living = self._household_facts(community_id, members)
            new_rows.append(
                (household_id, members[0].values["address"][:200], key, community_id, grid_id, living)
            )
            found[(community_id, key)] = household_id
        bulk_insert(
            self.session, "household",
            ("id", "address", "address_key", "community_id", "grid_id", "living_arrangement"), new_rows,
        )  # fmt: skip
        for key, members in wanted.items():
            for profile in members:
                if profile.values.get("household_id") != found[key]:
                    profile.values["household_id"] = found[key]
                    profile.dirty = True
            household_id = found[key]
            if household_id in stored:  # an existing household: members joined or stayed
                kept.setdefault(household_id, []).extend(members)
        updates = []
        for household_id, members in kept.items():
            if household_id not in stored:
                continue  # gone since the profile was loaded (merged away): nothing to follow
            community_id, grid_id, living = stored[household_id]
            new_grid, new_living = self._household_facts(community_id, members)
            new_grid = grid_id if new_grid is None else new_grid
            new_living = living if new_living is None else new_living
            if new_grid != grid_id or new_living != living:
                updates.append((household_id, new_grid, new_living))
        bulk_update(self.session, "household", "id", ("grid_id", "living_arrangement"), updates)

    def _household_facts(self, community_id: int, members: list[_Profile]) -> tuple[int | None, str | None]:
        """The grid and living arrangement a household's members give; members who disagree are
        decided by the precedence rule (the newer grid; 民政's arrangement over a health record),
        as ``geo.service.household_arrangement`` decides on reading.

        A member's grid counts only when it lies in the household's community: a roster row that
        moves someone to another community names no grid, and her old one is not the new home's."""
        grid_id = living = None
        grid_ref = living_ref = None
        grid_community = self.grid_community
        for profile in members:
            values, provenance = profile.values, profile.provenance
            grid = self.grid_ids.get(values.get("grid_code") or "")
            if grid is not None and grid_community.get(grid) == community_id:
                ref = provenance.get("grid_code")
                if grid_id is None or (ref is not None and replaces("grid_code", grid_ref, ref)[0]):
                    grid_id, grid_ref = grid, ref
            value = values.get("living_arrangement")
            if value is not None:
                ref = provenance.get("living_arrangement")
                if living is None or (ref is not None and replaces("living_arrangement", living_ref, ref)[0]):
                    living, living_ref = value, ref
        return grid_id, living

    def _resident_rows(
        self, profiles: dict[int, _Profile]
    ) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
        """Rows to insert (new residents) and to update (changed ones), in column order."""
        started = time.perf_counter()
        now = self.recorded_at
        inserts, updates = [], []
        for resident_id, profile in profiles.items():
            if not profile.dirty:
                continue
            row = self._resident_row(profile, now)
            if profile.is_new:
                inserts.append(tuple(row[c] for c in RESIDENT_COLUMNS))
            else:
                updates.append((resident_id, *(row[c] for c in PROFILE_COLUMNS)))
        self.stage_seconds["resident rows"] += time.perf_counter() - started
        return inserts, updates

    def _resident_row(self, profile: _Profile, now: dt.datetime) -> dict[str, Any]:
        values = profile.values
        name = values.get("name") or ""
        community_id = self.community_ids.get(values.get("community_code") or "")
        grid_id = self.grid_ids.get(values.get("grid_code") or "")
        if grid_id is not None and self.grid_community.get(grid_id) != community_id:
            grid_id = None  # moved to another community by a row naming no grid: the old one's is not hers
        id_enc, id_index = self._sealed(values, "id_number", pii.RESIDENT_ID_NUMBER)
        phone_enc, phone_index = self._sealed(values, "phone", pii.RESIDENT_PHONE)
        return {
            "id": values["id"],
            "id_number_enc": id_enc,
            "id_number_bidx": id_index,
            "name": name,
            "name_pinyin": name_pinyin(name),
            "sex": values.get("sex"),
            "birth_date": values.get("birth_date"),
            "phone_enc": phone_enc,
            "phone_bidx": phone_index,
            "address": (values.get("address") or "")[:200] or None,
            "household_id": values.get("household_id"),
            "community_id": community_id,
            "grid_id": grid_id,
            "insurance_type": values.get("insurance_type"),
            "living_arrangement": values.get("living_arrangement"),
            "dibao": values.get("dibao"),
            "tekun": values.get("tekun"),
            "disability_cert_grade": values.get("disability_cert_grade"),
            "capability_level": values.get("capability_level"),
            "status": values.get("status", "active"),
            "merged_into_id": values.get("merged_into_id"),
            "needs_review": bool(values.get("needs_review")),
            "provenance": orjson.dumps(provenance_to_json(profile.provenance)).decode(),
            "created_at": values.get("created_at") or now,
            "updated_at": now,
        }

    def _sealed(self, values: dict[str, Any], attribute: str, context: str) -> tuple[str | None, str | None]:
        """The sealed value and blind index to store: as loaded when the value did not change and
        both are under the current keys (no rotation in progress), else made afresh."""
        plain = values.get(attribute)
        stored = self.stored_sealed.get(values["id"], {}).get(attribute)
        if (
            stored is not None
            and stored[0] == plain
            and (stored[1] is None or stored[1].startswith(self.current_prefix))
            and not self.keys.previous_blind_index_keys
        ):
            return stored[1], stored[2]
        # Each value sealed ahead serves one resident: two never share a ciphertext.
        ahead = self.sealed_ahead.pop((attribute, plain), None) if plain else None
        if ahead is not None:
            return ahead
        return self._seal_afresh(attribute, plain, context)

    def _seal_afresh(self, attribute: str, plain: str | None, context: str) -> tuple[str | None, str | None]:
        """A resident's sealed value and blind index, under the current keys."""
        return pii.seal(plain, context, self.keys), pii.write_index(attribute, plain, self.keys)

    def _write_conditions(self, conditions: list[tuple[int, int, dt.date, list[Any]]]) -> None:
        """One row per (resident, ICD-10 code): first and latest evidence."""
        if not conditions:
            return
        resident_ids = list({c[0] for c in conditions})
        stmt = self._where_in(
            "SELECT id, resident_id, code, first_seen, last_seen FROM condition WHERE {ids}",
            ids="resident_id",
        )
        existing = {}
        for cid, rid, code, first, last in self.session.execute(stmt, {"ids": resident_ids}).all():
            existing[(rid, code)] = [cid, _as_date(first), _as_date(last), None, None]
        inserts: dict[tuple[int, str], list[Any]] = {}
        for resident_id, record_id, seen, (code, display, long_rx) in conditions:
            key = (resident_id, code)
            if key in existing:
                entry = existing[key]
                if seen >= entry[2]:
                    entry[2], entry[3] = seen, record_id
                    entry[4] = bool(long_rx)
                continue
            if key in inserts:
                entry = inserts[key]
                if seen >= entry[7]:
                    entry[5], entry[7] = record_id, seen
                    entry[3] = entry[3] or bool(long_rx)
                if seen < entry[6]:
                    entry[4], entry[6] = record_id, seen
                continue
            inserts[key] = [resident_id, code, display, bool(long_rx), record_id, record_id, seen, seen]
        bulk_insert(
            self.session, "condition",
            ("resident_id", "code", "display", "long_prescription", "first_source_record_id",
             "last_source_record_id", "first_seen", "last_seen"),
            [tuple(v) for v in inserts.values()],
        )  # fmt: skip
        updates = [(e[0], e[2], e[3], e[4]) for e in existing.values() if e[3] is not None]
        bulk_update(
            self.session,
            "condition",
            "id",
            ("last_seen", "last_source_record_id", "long_prescription"),
            updates,
        )

    def _apply_changed(
        self,
        changed: list[tuple[_Prepared, int, int]],
    ) -> None:
        """A known record with new content: store it, then rebuild its resident from all evidence.
        ``changed``: (the row, its record's id, its resident's id)."""
        from yiyang.residents.service import rebuild_resident

        changed = self._refuse_taken_numbers(changed)
        if not changed:
            return
        rows = [
            (record_id, item.stored[0], item.digest, item.observed, self.run_id, item.row.line, self.recorded_at,
             item.stored[1], item.stored[2])
            for item, record_id, _ in changed
        ]  # fmt: skip
        bulk_update(
            self.session, "source_record", "id",
            ("payload", "content_hash", "observed_at", "import_run_id", "line", "recorded_at", "id_number_enc",
             "phone_enc"), rows,
        )  # fmt: skip
        for item, _, resident_id in changed:
            self.resident_ids[item.row.source_key] = resident_id
        for resident_id in sorted({c[2] for c in changed}):
            rebuild_resident(self.session, resident_id, reason="record_updated")
        if self._without_id is not False:  # a rebuilt profile may gain or lose its ID number
            self._without_id = None
        self.report_counts["updated"] += len(changed)

    def _refuse_taken_numbers(
        self, changed: list[tuple[_Prepared, int, int]]
    ) -> list[tuple[_Prepared, int, int]]:
        """A known record re-sent with an ID number another registered resident holds is a row
        rejected with its line (``resident.id_number.taken``), not applied: both are someone's
        records, and which person the record is about needs a person (merge the two, or have the
        agency correct it). Refusing the whole file for it would lose every other row."""
        indexes_of = {
            item.row.id_number: pii.lookup_indexes("id_number", item.row.id_number, self.keys)
            for item, _, _ in changed
            if item.row.id_number
        }
        if not indexes_of:
            return changed
        indexes = [index for found in indexes_of.values() for index in found]
        holders = dict(
            self.session.execute(
                self._where_in(
                    "SELECT id_number_bidx, id FROM resident WHERE {indexes} AND status <> 'merged'",
                    indexes="id_number_bidx",
                ),
                {"indexes": indexes},
            ).all()
        )
        kept = []
        for item, record_id, resident_id in changed:
            row = item.row
            held_by = {holders[i] for i in indexes_of.get(row.id_number or "", ()) if i in holders}
            if held_by and resident_id not in held_by:
                self.rejections.append(
                    RowRejection(
                        row.line, "resident.id_number.taken",
                        "该身份证号已属于另一位在册居民，请核对后合并或由来源机构更正 (the ID number belongs to "
                        "another registered resident: check, then merge the two or have the agency correct it)",
                        source_key=row.source_key, column="id_number", community_code=row.community_code,
                    )
                )  # fmt: skip
            else:
                kept.append((item, record_id, resident_id))
        return kept

    def _where_in(self, sql: str, **columns: str) -> Any:
        """Fill each ``{param}`` in ``sql`` with "column is one of :param": ``= ANY(:param)`` on
        PostgreSQL, the values sent as one array literal (``_ArrayLiteral``); on SQLite the values
        go as one JSON array read by ``json_each``, since a batch's lists can outgrow SQLite's
        32,766 parameters."""
        clauses, binds = {}, []
        for param, column in columns.items():
            if self.postgres:
                clauses[param] = f"{column} = ANY(CAST(:{param} AS {ARRAY_TYPES.get(column, 'text[]')}))"
                binds.append(bindparam(param, type_=_ArrayLiteral()))
            else:
                clauses[param] = f"{column} IN (SELECT value FROM json_each(:{param}))"
                binds.append(bindparam(param, type_=_JsonArray()))
        return text(sql.format(**clauses)).bindparams(*binds)

    def _known_records(self, keys: list[str]) -> dict[str, tuple[int, str, int]]:
        if not self.feed_had_records:  # the feed's first import: only its own earlier rows
            keys = [key for key in keys if key in self.resident_ids]
            if not keys:
                return {}
        stmt = self._where_in(
            "SELECT source_key, id, content_hash, resident_id FROM source_record WHERE feed = :feed AND {keys}",
            keys="source_key",
        )
        return {
            key: (record_id, digest, resident_id)
            for key, record_id, digest, resident_id in self.session.execute(
                stmt, {"feed": self.feed.value, "keys": keys}
            ).all()
        }


class _ArrayLiteral(TypeDecorator[list[Any]]):
    """A list bound as PostgreSQL's text form of an array, ``{a,b,c}``.

    psycopg adapts a list element by element in Python: for a batch's lookups of 20,000 ID
    indexes, record keys or resident ids that took about 7% of an import's main thread. Numbers
    and dates need no quoting; strings are quoted as JSON quotes them, which the array syntax
    reads alike unless a value holds a backslash or a control character (JSON escapes those its
    own way), and such a list goes element by element as before."""

    impl = NullType  # no bind cast: the server reads the literal as the array type CAST names
    cache_ok = True

    def process_bind_param(self, value: list[Any] | None, dialect: Any) -> Any:
        if not value:
            return value if value is None else "{}"
        first = value[0]
        if isinstance(first, int | dt.date):  # ints, dates: str() is the literal (ISO for a date)
            return "{" + ",".join(map(str, value)) + "}"
        quoted = orjson.dumps(value)
        if b"\\" in quoted:
            return list(value)
        return "{" + quoted[1:-1].decode() + "}"


class _JsonArray(TypeDecorator[list[Any]]):
    """A list bound as one JSON text (dates as ISO strings, as SQLite stores them)."""

    impl = String
    cache_ok = True

    def process_bind_param(self, value: list[Any] | None, dialect: Any) -> str | None:
        return None if value is None else orjson.dumps(list(value)).decode()


def _profile_from_columns(
    values: dict[str, Any], code_of: dict[int, str]
) -> tuple[dict[str, Any], dict[str, Any]]:
    provenance = values.pop("provenance") or {}
    if isinstance(provenance, str):
        provenance = orjson.loads(provenance)
    provenance = provenance_from_json(provenance)
    values["community_code"] = code_of.get(values.pop("community_id") or 0)
    values["grid_code"] = code_of.get(values.pop("grid_id") or 0)
    if isinstance(values.get("birth_date"), str):
        values["birth_date"] = dt.date.fromisoformat(values["birth_date"])
    for flag in ("dibao", "tekun", "needs_review"):
        if values.get(flag) is not None:
            values[flag] = bool(values[flag])
    return values, dict(provenance)


def _as_date(value: Any) -> dt.date:
    return dt.date.fromisoformat(value) if isinstance(value, str) else value


def _text(value: Any) -> str | None:
    if value is None:
        return None
    return str(value)[:200]


# -- runs ------------------------------------------------------------------------------------


def start_run(
    session: Session, feed: Feed, label: str, sha256: str = "", encoding: str | None = None
) -> ImportRun:
    run = ImportRun(
        feed=feed, filename=label[:200], file_sha256=sha256, encoding=encoding, status=RunStatus.running
    )
    session.add(run)
    session.flush()
    return run


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """Python's cyclic garbage collector paused over a run.

    A batch makes hundreds of thousands of small objects and keeps most of them to its end, so
    the collector keeps scanning them to find nothing (measured: about a quarter of the linkage
    stage); and between batches, with the run's caches grown to millions of objects, each full
    collection walked them all again (about 5% of a district's import). The runner makes no
    cycles worth chasing: it collects the young generations every ``COLLECT_EVERY_BATCHES``
    batches (``gc.collect(1)``), which finds any those batches made, and leaves the old ones for
    after the run. Not after every batch: each collection walks the last batch's writes, still
    alive on the writer thread, and found nothing (measured: 3% of a district's import)."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


# The key of the PostgreSQL advisory lock an import holds to its commit ("yiyang" in ASCII).
IMPORT_LOCK_KEY = 0x79_69_79_61_6E_67


def one_import_at_a_time(
    session: Session, *, wait: bool = True, on_wait: Callable[[], None] | None = None
) -> None:
    """Hold the registry for this import until the caller's transaction ends.

    Linkage decides each row against the registry as committed, so an import beside another
    would not see the residents the other is registering and would register them again: silently
    for those without an ID number, and for those with one by failing on the unique blind index
    when the other commits, after all its work. On PostgreSQL the lock is transaction-level
    (a savepoint's rollback keeps it); ``wait=False`` answers 409 ``import.busy`` instead of
    queueing. SQLite has one writer anyway: a second import waits on the file's lock for
    ``busy_timeout``."""
    if not is_postgres(session):
        return
    taken = session.execute(text("SELECT pg_try_advisory_xact_lock(:key)"), {"key": IMPORT_LOCK_KEY}).scalar()
    if taken:
        return
    if not wait:
        raise Conflict(
            "import.busy", "另一导入正在进行，请稍后重试 (another import is running; try again shortly)"
        )
    if on_wait:
        on_wait()
    session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": IMPORT_LOCK_KEY})


def import_source_rows(
    session: Session,
    feed: Feed,
    items: Iterable[SourceRow | RowRejection],
    *,
    label: str,
    sha256: str = "",
    encoding: str | None = None,
    settings: Settings | None = None,
    on_progress: Callable[[int], None] | None = None,
    wait: bool = True,
    on_wait: Callable[[], None] | None = None,
) -> ImportReport:
    """Apply rows (and count rejections) as one run inside the caller's transaction, once no
    other import runs (``one_import_at_a_time``)."""
    settings = settings or get_settings()
    one_import_at_a_time(session, wait=wait, on_wait=on_wait)
    with custom_plans(session):
        return _import_source_rows(
            session, feed, items, label=label, sha256=sha256, encoding=encoding, settings=settings,
            on_progress=on_progress,
        )  # fmt: skip


@contextlib.contextmanager
def custom_plans(session: Session) -> Iterator[None]:
    """The run's statements planned afresh each time on PostgreSQL (psycopg prepares none).

    psycopg prepares a statement on the server after its fifth execution, and PostgreSQL may then
    keep one generic plan for it. A batch's lookups take arrays of thousands of values, and the
    generic plan, costed for a handful, is the wrong one: measured on a 400,000-resident district,
    the second and third feeds ran 25-50% slower on a connection that had prepared them."""
    if not is_postgres(session):
        yield
        return
    connection = session.connection().connection.driver_connection
    threshold = connection.prepare_threshold
    connection.prepare_threshold = None
    # No JIT compilation either, over the run: a batch's lookups cost past jit_above_cost only
    # because they name thousands of values, and compiling each took about 50 ms per statement
    # for nothing (measured on the civil feed of a 400,000-resident district).
    try:
        with local_setting(session, "jit", "off"):
            yield
    finally:
        connection.prepare_threshold = threshold


def _import_source_rows(
    session: Session,
    feed: Feed,
    items: Iterable[SourceRow | RowRejection],
    *,
    label: str,
    sha256: str,
    encoding: str | None,
    settings: Settings,
    on_progress: Callable[[int], None] | None,
) -> ImportReport:
    started = time.perf_counter()
    run = start_run(session, feed, label, sha256, encoding)
    runner = ImportRunner(session, feed, run.id, settings)
    report = ImportReport(run_id=run.id, feed=feed.value, label=label, encoding=encoding)
    batch: list[SourceRow] = []
    seen = batches = 0
    with collector_paused():
        try:
            for item in items:
                seen += 1
                if isinstance(item, RowRejection):
                    report.rejections.append(item)
                    continue
                batch.append(item)
                if len(batch) >= settings.import_batch_rows:
                    runner.apply(batch)
                    batch = []
                    batches += 1
                    if batches % COLLECT_EVERY_BATCHES == 0:
                        gc.collect(1)
                    if on_progress:
                        on_progress(seen)
            runner.apply(batch)
        finally:
            runner.close()
    if on_progress:
        on_progress(seen)
    if runner.rejections:
        report.rejections = sorted([*report.rejections, *runner.rejections], key=lambda r: r.line)
    report.counts = runner.report_counts
    report.counts["rejected"] = len(report.rejections)
    report.counts["rows"] = seen
    report.resident_ids = runner.resident_ids
    report.stage_seconds = runner.stage_seconds
    report.write_seconds = runner.write_seconds
    report.elapsed_s = time.perf_counter() - started
    events.publish(session, ResidentsChanged(frozenset(runner.resident_ids.values()), cause="import"))
    run.status = RunStatus.applied
    run.finished_at = utcnow()
    run.counts = dict(report.counts)
    run.rejections = report.as_json()["rejections"][:REPORT_REJECTIONS_KEPT]
    return report


def import_file(
    database: Database,
    feed: Feed,
    path: Path,
    *,
    settings: Settings | None = None,
    on_total: Callable[[int], None] | None = None,
    on_progress: Callable[[int], None] | None = None,
    on_wait: Callable[[], None] | None = None,
) -> ImportReport:
    """Read an agency file and apply it whole; on any failure nothing is kept but a failed run row.
    Waits for an import already running (``on_wait`` is told)."""
    from yiyang.geo.service import community_directory
    from yiyang.sources.feeds import CommunityDirectory, read_feed

    settings = settings or get_settings()
    sha256 = _file_sha256(path)
    try:
        with database.unit_of_work() as session:
            directory = community_directory(session)
            if not isinstance(directory, CommunityDirectory):
                directory = CommunityDirectory(*directory)
            reader = read_feed(path, feed, directory)
            if on_total:
                on_total(reader.count_rows())
            return import_source_rows(
                session, feed, reader, label=path.name, sha256=sha256, encoding=reader.encoding,
                settings=settings, on_progress=on_progress, on_wait=on_wait,
            )  # fmt: skip
    except BaseException as error:
        with database.unit_of_work() as session:
            run = start_run(session, feed, path.name, sha256)
            run.status = RunStatus.failed
            run.finished_at = utcnow()
            run.counts = {"error": type(error).__name__}
        raise


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()

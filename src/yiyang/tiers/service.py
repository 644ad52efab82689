"""Deciding and keeping residents' tiers: load facts in bulk, evaluate, store what changed.

``retier_residents`` is called when a fact changes (an assessment stored, an import applied, a
merge); ``sweep_tiers`` re-decides everyone (nightly: facts with a time window, such as the
post-operative period, expire without any new record). Both read facts a chunk of residents at
a time, evaluate them with the pure ``rules.evaluate_tier`` and write only residents whose
decision changed, through the bulk paths (COPY on PostgreSQL). A tier change adds a history row
and a proposed care plan. Services do not commit.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import queue
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import ColumnElement, case, func, select
from sqlalchemy.orm import Session

from yiyang import cache_version
from yiyang.access import policy
from yiyang.access.actor import Actor
from yiyang.access.policy import DataCategory
from yiyang.config import Settings, get_settings
from yiyang.db import CHINA_TZ, allocate_ids, bulk_insert, bulk_update, db_datetime, is_postgres, utcnow
from yiyang.errors import Conflict, NotFound
from yiyang.events import ResidentsChanged
from yiyang.geo.models import Area, AreaLevel
from yiyang.residents.models import Resident, ResidentStatus
from yiyang.residents.service import get_active_resident
from yiyang.tiers.care_plans import plan_for
from yiyang.tiers.models import CarePlan, CarePlanStatus, ResidentTier, TierChange
from yiyang.tiers.rules import (
    DEFAULT_RULES,
    GREEN,
    SEVERITY,
    CompiledRules,
    Fact,
    FactKind,
    Tier,
    TierDecision,
    TierReason,
    TierRule,
    compile_rules,
    evaluate_tier,
    load_rules,
    reasons_from_json,
)

IDS_PER_QUERY = 5000  # residents named one by one per query (SQLite allows 32,766 parameters)
IDS_PER_RANGE = 20000  # residents per chunk of a sweep, selected by id range
ENGINE = "tier-engine"


# -- rules ------------------------------------------------------------------------------------


def current_rules(settings: Settings | None = None) -> tuple[TierRule, ...]:
    """The district's rules: the defaults changed by ``tier_rules_file`` when it is set."""
    path = (settings or get_settings()).tier_rules_file
    if path is None:
        return load_rules(None)
    return _rules_from_file(str(path), Path(path).stat().st_mtime_ns if Path(path).exists() else 0)


@lru_cache(maxsize=4)
def _rules_from_file(path: str, _mtime: int) -> tuple[TierRule, ...]:
    return load_rules(Path(path))


# -- the alerts hand-over ---------------------------------------------------------------------


def recent_alert_facts(session: Session, resident_id: int) -> list[Fact]:
    """A resident's recent alerts as facts (``FactKind.alert``); [] until the alerts domain exists."""
    return recent_alert_facts_for(session, [resident_id]).get(resident_id, [])


ALERT_LOOKBACK_DAYS = 90


def recent_alert_facts_for(
    session: Session,
    resident_ids: Sequence[int],
    now: dt.datetime | None = None,
    days: int | None = ALERT_LOOKBACK_DAYS,
) -> dict[int, list[Fact]]:
    """Alerts of many residents at once, for the sweep: one query over the alert table.

    Only alerts whose rule counts for the tier (``tier_fact``: a fall, an urgent BP or glucose
    reading) and that were not false alarms, raised in the last ``days`` (90; None: ever); the
    ``alert.recent`` rule keeps those of its own window (30 days). Read as plain SQL so tiers does
    not import the alerts domain (alerts reads tiers)."""
    if not resident_ids:
        return {}
    # None: since the epoch (a district's alert rule without a window reads every alert).
    since = db_datetime(
        (now or utcnow()) - dt.timedelta(days=days)
        if days is not None
        else dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    )
    postgres = is_postgres(session)
    found: dict[int, list[Fact]] = {}
    for start in range(0, len(resident_ids), IDS_PER_QUERY):
        scope = _Scope(ids=resident_ids[start : start + IDS_PER_QUERY])
        where, params = scope.sql("resident_id", postgres)
        mark = "%(since)s" if postgres else ":since"
        params["since"] = since if postgres else since.strftime("%Y-%m-%d %H:%M:%S.%f")
        sql = (
            "SELECT resident_id, id, kind, raised_at FROM alert "
            f"WHERE {where} AND tier_fact AND raised_at >= {mark} "
            "AND (outcome IS NULL OR outcome <> 'false_alarm') ORDER BY resident_id, raised_at"
        )
        for resident_id, alert_id, kind, raised_at in _fetch(session, sql, params):
            zh = _ALERT_NAMES.get(kind)
            found.setdefault(resident_id, []).append(
                Fact(
                    FactKind.alert, kind, _datetime(raised_at), "device", f"#{alert_id}", None, None, None, zh
                )
            )
    return found


# Alert kinds as staff read them (the alerts domain's default rule names), for explanations.
_ALERT_NAMES = {
    "fall": "跌倒",
    "bp_urgent": "血压达紧急转诊水平",
    "glucose_urgent": "血糖达紧急转诊水平",
    "sos": "一键呼叫",
}


def on_alert_raised(session: Session, event: Any) -> None:
    """An alert that counts for the tier (a fall) was raised: re-decide the resident's tier now."""
    if getattr(event, "tier_fact", False):
        retier_residents(session, [event.resident_id], trigger="alert")


# -- facts ------------------------------------------------------------------------------------


@dataclass(slots=True)
class _Scope:
    """Which residents a chunk covers: named ids, or an id range (a sweep)."""

    ids: Sequence[int] | None = None
    low: int | None = None
    high: int | None = None

    def sql(self, column: str, postgres: bool) -> tuple[str, dict[str, Any]]:
        """The condition and its parameters, in the driver's own parameter style."""
        mark = (lambda name: f"%({name})s") if postgres else (lambda name: f":{name}")
        if self.ids is None:
            return f"{column} BETWEEN {mark('low')} AND {mark('high')}", {"low": self.low, "high": self.high}
        if postgres:
            return f"{column} = ANY({mark('ids')})", {"ids": list(self.ids)}
        # SQLite: the ids are integers we hold, written inline to stay clear of its parameter limit.
        return f"{column} IN ({', '.join(str(int(i)) for i in self.ids) or 'NULL'})", {}


def _fetch(session: Session, sql: str, params: dict[str, Any]) -> list[tuple[Any, ...]]:
    """Rows straight from the driver. A sweep reads every resident; SQLAlchemy's result rows and
    type conversions (enums, UTC datetimes) cost more than deciding the tiers, so they are skipped
    and the few conversions needed are done by hand (``_datetime``, ``_date``)."""
    cursor = session.connection().connection.driver_connection.cursor()
    try:
        cursor.execute(sql, params)
        return cursor.fetchall()
    finally:
        cursor.close()


_CAPABILITY_SQL = {
    # PostgreSQL: LATERAL ... LIMIT 1 keeps the planner to one primary-key lookup per resident that
    # has a level, rather than hashing the whole source_record table for every chunk.
    True: """
SELECT r.id, r.capability_level, r.updated_at, s.id, s.feed, s.source_key, s.observed_at
FROM resident r
LEFT JOIN LATERAL (
    SELECT s.id, s.feed, s.source_key, s.observed_at FROM source_record s
    WHERE r.capability_level IS NOT NULL AND s.id = CAST((r.provenance -> 'capability_level') ->> 0 AS integer)
    LIMIT 1
) s ON true
WHERE r.status = 'active' AND {scope}
""",
    False: """
SELECT r.id, r.capability_level, r.updated_at, s.id, s.feed, s.source_key, s.observed_at
FROM resident r
LEFT JOIN source_record s ON r.capability_level IS NOT NULL AND s.id = json_extract(r.provenance, '$.capability_level[0]')
WHERE r.status = 'active' AND {scope}
""",
}
_CONDITIONS_SQL = """
SELECT c.resident_id, c.code, c.display, c.last_seen, c.last_source_record_id, s.feed, s.source_key
FROM condition c JOIN source_record s ON s.id = c.last_source_record_id
WHERE {scope} AND ({codes})
"""
_ASSESSMENTS_SQL = """
SELECT a.resident_id, a.instrument, a.id, a.level, a.level_zh, CAST(a.flags AS text), a.assessed_at
FROM assessment a
WHERE {scope} AND a.instrument IN ({instruments})
ORDER BY a.assessed_at, a.id
"""


def _condition_codes_sql(rules: CompiledRules) -> str | None:
    """Only conditions some rule reads are loaded: categories by 3-character prefix, subcodes by prefix.
    The codes passed ``CodeSpec.parse`` (a letter, then digits), so they are safe to write inline."""
    categories: set[str] = set()
    prefixes: set[str] = set()
    for rule in rules.by_kind[FactKind.condition]:
        for spec in rule.specs:
            if spec.prefix:
                prefixes.add(spec.low)
            else:
                letter, low, high = spec.low[0], int(spec.low[1:3]), int(spec.high[1:3])
                categories.update(f"{letter}{n:02d}" for n in range(low, high + 1))
    clauses = []
    if categories:
        clauses.append(f"substr(c.code, 1, 3) IN ({', '.join(repr(c) for c in sorted(categories))})")
    clauses.extend(
        f"substr(replace(c.code, '.', ''), 1, {len(prefix)}) = '{prefix}'" for prefix in sorted(prefixes)
    )
    return " OR ".join(clauses) or None


def _datetime(value: Any) -> dt.datetime:
    """A timestamp as stored (naive UTC): PostgreSQL gives datetimes, SQLite text."""
    return dt.datetime.fromisoformat(value) if isinstance(value, str) else value


def _date(value: Any) -> dt.date:
    return dt.date.fromisoformat(value) if isinstance(value, str) else value


def load_facts(
    session: Session, scope: _Scope, rules: CompiledRules, *, as_of: dt.date | None = None
) -> dict[int, list[Fact]]:
    """Every active resident in scope with the facts the rules read (an empty list for none).

    Timed facts carry naive UTC datetimes, as stored; ``Fact.observed_on`` reads them as UTC.
    Alerts are read back from the end of ``as_of`` (China time; today when None), the day the
    rules' windows count from, not from the clock of the machine."""
    from yiyang.assessments.service import assessment_id_from_key

    postgres = is_postgres(session)
    facts: dict[int, list[Fact]] = {}
    where, params = scope.sql("r.id", postgres)
    capability = FactKind.capability_level
    for resident_id, level, updated_at, record_id, feed, key, observed_at in _fetch(
        session, _CAPABILITY_SQL[postgres].format(scope=where), params
    ):
        if level is None:
            facts[resident_id] = []
            continue
        assessment_id = assessment_id_from_key(key) if feed == "staff" else None
        facts[resident_id] = [
            Fact(capability, level, _datetime(observed_at or updated_at), feed, key, record_id, assessment_id)
        ]
    if not facts:
        return facts

    codes = _condition_codes_sql(rules)
    if codes is not None:
        where, params = scope.sql("c.resident_id", postgres)
        condition = FactKind.condition
        get = facts.get
        for resident_id, code, display, last_seen, record_id, feed, key in _fetch(
            session, _CONDITIONS_SQL.format(scope=where, codes=codes), params
        ):
            found = get(resident_id)
            if found is not None:
                found.append(
                    Fact(condition, code, _date(last_seen), feed, key, record_id, None, None, display)
                )

    if rules.instruments:
        where, params = scope.sql("a.resident_id", postgres)
        instruments = ", ".join(repr(i) for i in sorted(rules.instruments))  # registered instrument codes
        latest: dict[tuple[int, str], tuple[Any, ...]] = {}
        for row in _fetch(session, _ASSESSMENTS_SQL.format(scope=where, instruments=instruments), params):
            latest[(row[0], row[1])] = row  # ordered by time: the last one seen is the latest
        for (resident_id, instrument), (_, _, assessment_id, level, level_zh, flags, at) in latest.items():
            found = facts.get(resident_id)
            if found is None:
                continue
            at = _datetime(at)
            found.append(
                Fact(FactKind.assessment, level, at, None, None, None, assessment_id, instrument, level_zh)
            )
            for flag in orjson.loads(flags) if flags and flags != "[]" else ():
                found.append(
                    Fact(
                        FactKind.assessment_flag,
                        flag["code"],
                        at,
                        None,
                        None,
                        None,
                        assessment_id,
                        instrument,
                        flag.get("zh"),
                    )
                )

    ids = list(facts) if scope.ids is None else [i for i in scope.ids if i in facts]
    until = None if as_of is None else dt.datetime.combine(as_of + dt.timedelta(days=1), dt.time(), CHINA_TZ)
    for resident_id, alert_facts in recent_alert_facts_for(
        session, ids, until, days=_alert_lookback(rules)
    ).items():
        if resident_id in facts:
            facts[resident_id].extend(alert_facts)
    return facts


def _alert_lookback(rules: CompiledRules) -> int | None:
    """How far back alerts are read: 90 days, or further when a district's alert rule looks further
    (a day more than its window, which counts China days from the sweep's day); None for a rule
    with no window."""
    windows = [rule.within_days for rule in rules.by_kind[FactKind.alert]]
    if None in windows:
        return None
    return max([ALERT_LOOKBACK_DAYS, *(days + 1 for days in windows if days is not None)])


def facts_of(session: Session, resident_id: int, rules: Sequence[TierRule] | None = None) -> list[Fact]:
    compiled = compile_rules(tuple(rules or current_rules()))
    return load_facts(session, _Scope(ids=[resident_id]), compiled).get(resident_id, [])


# -- deciding and storing ---------------------------------------------------------------------


@dataclass
class RetierReport:
    residents: int = 0
    changed: int = 0  # tier changed (or first decided): a history row each
    updated: int = 0  # same tier, different reasons
    unchanged: int = 0
    proposed_plans: int = 0
    by_tier: Counter[str] = field(default_factory=Counter)
    elapsed_s: float = 0.0

    def add(self, other: RetierReport) -> None:
        self.residents += other.residents
        self.changed += other.changed
        self.updated += other.updated
        self.unchanged += other.unchanged
        self.proposed_plans += other.proposed_plans
        self.by_tier.update(other.by_tier)

    def as_json(self) -> dict[str, Any]:
        return {
            "residents": self.residents, "changed": self.changed, "updated": self.updated,
            "unchanged": self.unchanged, "proposed_plans": self.proposed_plans, "by_tier": dict(self.by_tier),
            "elapsed_s": round(self.elapsed_s, 3),
        }  # fmt: skip


def retier_residents(
    session: Session,
    resident_ids: Iterable[int],
    *,
    trigger: str = "manual",
    as_of: dt.date | None = None,
    rules: Sequence[TierRule] | None = None,
    now: dt.datetime | None = None,
) -> RetierReport:
    """Re-decide these residents' tiers now (after an assessment, an import, a merge)."""
    started = time.perf_counter()
    now = now or utcnow()
    as_of = as_of or now.astimezone(CHINA_TZ).date()
    compiled = compile_rules(tuple(rules or current_rules()))
    session.flush()
    report = RetierReport()
    ids = sorted(set(resident_ids))
    for start in range(0, len(ids), IDS_PER_QUERY):
        scope = _Scope(ids=ids[start : start + IDS_PER_QUERY])
        report.add(_retier_chunk(session, scope, compiled, as_of=as_of, now=now, trigger=trigger))
    _expire_tier_rows(session)
    report.elapsed_s = time.perf_counter() - started
    return report


def sweep_tiers(
    session: Session,
    *,
    as_of: dt.date | None = None,
    rules: Sequence[TierRule] | None = None,
    now: dt.datetime | None = None,
    on_progress: Callable[[int], None] | None = None,
) -> RetierReport:
    """Re-decide every active resident (the nightly sweep), a range of ids at a time."""
    started = time.perf_counter()
    now = now or utcnow()
    as_of = as_of or now.astimezone(CHINA_TZ).date()
    compiled = compile_rules(tuple(rules or current_rules()))
    session.flush()
    low, high = session.execute(select(func.min(Resident.id), func.max(Resident.id))).one()
    report = RetierReport()
    if low is not None:
        scopes = [
            _Scope(low=start, high=start + IDS_PER_RANGE - 1) for start in range(low, high + 1, IDS_PER_RANGE)
        ]
        for scope, facts in _facts_by_chunk(session, scopes, compiled, as_of):
            report.add(
                _retier_chunk(session, scope, compiled, as_of=as_of, now=now, trigger="sweep", facts=facts)
            )
            if on_progress:
                on_progress(report.residents)
    _expire_tier_rows(session)
    report.elapsed_s = time.perf_counter() - started
    return report


def _facts_by_chunk(
    session: Session, scopes: list[_Scope], rules: CompiledRules, as_of: dt.date
) -> Iterator[tuple[_Scope, dict[int, list[Fact]]]]:
    """Each chunk's facts. On PostgreSQL a second connection reads the next chunk while this one is
    decided and written, so the database's work overlaps ours; it reads committed facts from one
    snapshot (REPEATABLE READ), which is what a sweep is for."""
    if not is_postgres(session) or len(scopes) < 2:
        for scope in scopes:
            yield scope, load_facts(session, scope, rules, as_of=as_of)
        return
    ready: queue.Queue[Any] = queue.Queue(maxsize=2)
    stop = threading.Event()
    engine = session.get_bind()

    def read() -> None:
        try:
            with engine.connect() as connection:
                connection.execution_options(isolation_level="REPEATABLE READ")
                with Session(bind=connection) as reader:
                    for scope in scopes:
                        if stop.is_set():
                            break
                        ready.put((scope, load_facts(reader, scope, rules, as_of=as_of)))
        except BaseException as error:  # noqa: BLE001 - handed to the sweep, which raises it
            ready.put(error)
        ready.put(None)

    thread = threading.Thread(target=read, name="tier-facts", daemon=True)
    thread.start()
    try:
        while (item := ready.get()) is not None:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        while thread.is_alive():  # let a reader blocked on a full queue finish
            with contextlib.suppress(queue.Empty):
                ready.get(timeout=0.1)
        thread.join()


def decision_digest(decision: TierDecision) -> tuple[bytes, str]:
    """The reasons as stored JSON, and a digest saying whether anything changed. The reasons carry
    their tiers and the decision is the most severe of them, so they fix the tier too. MD5 only
    tells versions apart here (nothing to defend against) and is the fastest digest at hand."""
    reasons = decision.dumps_reasons()
    return reasons, hashlib.md5(reasons, usedforsecurity=False).hexdigest()


_NO_REASONS = b"[]"
_GREEN_DIGEST = hashlib.md5(_NO_REASONS, usedforsecurity=False).hexdigest()


def _retier_chunk(
    session: Session,
    scope: _Scope,
    rules: CompiledRules,
    *,
    as_of: dt.date,
    now: dt.datetime,
    trigger: str,
    facts: dict[int, list[Fact]] | None = None,
) -> RetierReport:
    report = RetierReport()
    if facts is None:
        facts = load_facts(session, scope, rules, as_of=as_of)
    if not facts:
        return report
    postgres = is_postgres(session)
    where, params = scope.sql("resident_id", postgres)
    stored = {
        row[0]: row
        for row in _fetch(
            session, f"SELECT resident_id, tier, digest FROM resident_tier WHERE {where}", params
        )
    }
    at = db_datetime(now)
    inserts, tier_updates, reason_updates = [], [], []
    changes: list[tuple[int, str | None, str, str]] = []
    decided: dict[int, TierDecision] = {}
    counts: Counter[str] = Counter()
    for resident_id, resident_facts in facts.items():
        if resident_facts:
            decision = evaluate_tier(resident_facts, rules, as_of=as_of)
            reasons_json, digest = decision_digest(decision)
        else:  # no fact any rule reads: green, nothing to explain
            decision, reasons_json, digest = GREEN, _NO_REASONS, _GREEN_DIGEST
        tier = decision.tier.value
        counts[tier] += 1
        previous = stored.get(resident_id)
        if previous is not None and previous[2] == digest:
            continue
        decided[resident_id] = decision
        reasons = reasons_json.decode()
        if previous is None:
            inserts.append((resident_id, tier, reasons, digest, at, at))
            changes.append((resident_id, None, tier, reasons))
        elif previous[1] != tier:
            tier_updates.append((resident_id, tier, reasons, digest, at, at))
            changes.append((resident_id, previous[1], tier, reasons))
        else:
            reason_updates.append((resident_id, reasons, digest, at))
    report.residents = len(facts)
    report.by_tier = counts
    report.changed = len(changes)
    report.updated = len(reason_updates)
    report.unchanged = report.residents - len(decided)
    _insert_rows(
        session,
        "resident_tier",
        ("resident_id", "tier", "reasons", "digest", "decided_at", "changed_at"),
        inserts,
    )
    bulk_update(
        session,
        "resident_tier",
        "resident_id",
        ("tier", "reasons", "digest", "decided_at", "changed_at"),
        tier_updates,
    )
    bulk_update(session, "resident_tier", "resident_id", ("reasons", "digest", "decided_at"), reason_updates)
    change_ids = _allocate_ids(session, "tier_change", len(changes))
    _insert_rows(
        session, "tier_change", ("id", "resident_id", "old_tier", "new_tier", "reasons", "trigger", "changed_at"),
        [
            (change_id, resident_id, old, new, reasons, trigger[:32], at)
            for change_id, (resident_id, old, new, reasons) in zip(change_ids, changes, strict=True)
        ],
    )  # fmt: skip
    if changes:  # the alert engine's rules follow the tier: every process drops its cached ones
        cache_version.bump(session, cache_version.TIERS)
    change_of = {change[0]: change_id for change_id, change in zip(change_ids, changes, strict=True)}
    report.proposed_plans = _propose_plans(session, scope, decided, change_of, at)
    return report


def _allocate_ids(session: Session, table: str, count: int) -> list[int]:
    """Primary keys for rows written by COPY; read straight from the driver, like the facts."""
    if count <= 0:
        return []
    if not is_postgres(session):
        return allocate_ids(session, table, count)
    # The sequence is looked up once: inside the select list it would be looked up for every row.
    sequence = _fetch(session, f"SELECT pg_get_serial_sequence('{table}', 'id')", {})[0][0]
    rows = _fetch(
        session,
        "SELECT nextval(%(seq)s::regclass) FROM generate_series(1, %(n)s)",
        {"seq": sequence, "n": count},
    )
    return [row[0] for row in rows]


def _insert_rows(session: Session, table: str, columns: Sequence[str], rows: list[tuple[Any, ...]]) -> None:
    """Rows in one COPY on PostgreSQL, written as text here (faster than row by row); the shared
    bulk path elsewhere. Values are ints, None, naive datetimes or text."""
    if not rows:
        return
    if not is_postgres(session):
        bulk_insert(session, table, columns, rows)
        return
    times: dict[dt.datetime, str] = {}  # a chunk stamps every row with the same time: format it once

    def field(value: Any) -> str:
        if isinstance(value, dt.datetime):
            text = times.get(value)
            if text is None:
                text = times[value] = value.isoformat()
            return text
        return _copy_text(value)

    lines = "".join("\t".join(map(field, row)) + "\n" for row in rows)
    raw = session.connection().connection.driver_connection
    with raw.cursor() as cursor, cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
        copy.write(lines)


def _copy_text(value: Any) -> str:
    """One value in COPY's text format (backslash, tab and line breaks escaped)."""
    if value is None:
        return "\\N"
    if isinstance(value, str):
        if "\\" in value:
            value = value.replace("\\", "\\\\")
        if "\t" in value or "\n" in value or "\r" in value:
            value = value.replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")
        return value
    if isinstance(value, dt.datetime):
        return value.isoformat()
    return str(value)


@dataclass(slots=True)
class _Plan:
    """A proposal as the care_plan columns store it, JSON already written."""

    tier: str
    goals: str
    activities: str
    addresses: str


@lru_cache(maxsize=4096)
def _plan_for(tier: Tier, rule_codes: tuple[str, ...]) -> _Plan:
    proposal = plan_for(tier, rule_codes)
    return _Plan(
        proposal.tier.value, orjson.dumps(list(proposal.goals)).decode(), orjson.dumps(list(proposal.activities)).decode(),
        orjson.dumps(list(proposal.addresses)).decode(),
    )  # fmt: skip


def _propose_plans(
    session: Session,
    scope: _Scope,
    decided: dict[int, TierDecision],
    change_of: dict[int, int],
    at: dt.datetime,
) -> int:
    """A proposed plan for each changed decision, unless an open plan already says the same.

    A decision revokes the resident's proposals that say otherwise; an active plan stays active
    until a clinician accepts the new proposal (``activate_care_plan``)."""
    if not decided:
        return 0
    postgres = is_postgres(session)
    where, params = scope.sql("resident_id", postgres)
    open_plans: dict[int, list[tuple[Any, ...]]] = {}
    for resident_id, plan_id, status, tier, goals, activities in _fetch(
        session,
        "SELECT resident_id, id, status, tier, CAST(goals AS text), CAST(activities AS text) FROM care_plan "
        f"WHERE status IN ('proposed', 'active') AND {where}",
        params,
    ):
        if resident_id in decided:
            open_plans.setdefault(resident_id, []).append(
                (plan_id, status, tier, _compact(goals), _compact(activities))
            )
    inserts, revoked = [], []
    for resident_id, decision in decided.items():
        plan = _plan_for(decision.tier, tuple(reason.rule.code for reason in decision.reasons))
        plans = open_plans.get(resident_id, ())
        same = {
            plan_id
            for plan_id, _, tier, goals, activities in plans
            if tier == plan.tier and goals == plan.goals and activities == plan.activities
        }
        # Proposals the decision no longer calls for are withdrawn, also when an open plan already
        # says what it calls for (back to the active plan's tier: the proposal made in between goes).
        revoked.extend(
            (plan_id, CarePlanStatus.revoked.value, at, ENGINE)
            for plan_id, status, *_ in plans
            if status == "proposed" and plan_id not in same
        )
        if same:
            continue
        inserts.append(
            (resident_id, plan.tier, CarePlanStatus.proposed.value, plan.goals, plan.activities, plan.addresses,
             change_of.get(resident_id), at, at, ENGINE)
        )  # fmt: skip
    bulk_update(session, "care_plan", "id", ("status", "status_changed_at", "status_changed_by"), revoked)
    _insert_rows(
        session, "care_plan",
        ("resident_id", "tier", "status", "goals", "activities", "addresses", "tier_change_id", "created_at",
         "status_changed_at", "status_changed_by"),
        inserts,
    )  # fmt: skip
    return len(inserts)


def _compact(stored_json: str | None) -> str:
    """Stored JSON as orjson writes it, so a stored plan compares equal to a new one as text."""
    return orjson.dumps(orjson.loads(stored_json or "[]")).decode()


def _expire_tier_rows(session: Session) -> None:
    """The bulk paths wrote behind the ORM's back: reload tier rows it already holds."""
    for instance in list(session.identity_map.values()):
        if isinstance(instance, ResidentTier | TierChange | CarePlan):
            session.expire(instance)


# -- reads ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TierView:
    resident_id: int
    tier: Tier
    reasons: list[TierReason]
    decided_at: dt.datetime
    changed_at: dt.datetime

    @property
    def decisive(self) -> list[TierReason]:
        return [reason for reason in self.reasons if reason.tier is self.tier]


def tier_of(session: Session, resident_id: int, rules: Sequence[TierRule] | None = None) -> TierView | None:
    """A resident's current tier with its reasons in words, or None if never decided."""
    row = session.get(ResidentTier, resident_id)
    if row is None:
        return None
    return TierView(
        resident_id,
        Tier(row.tier),
        reasons_from_json(row.reasons, rules or current_rules()),
        row.decided_at,
        row.changed_at,
    )


def tier_history(session: Session, resident_id: int, limit: int = 100) -> Sequence[TierChange]:
    return (
        session.execute(
            select(TierChange)
            .where(TierChange.resident_id == resident_id)
            .order_by(TierChange.changed_at.desc(), TierChange.id.desc())
            .limit(limit)
        )
        .scalars()
        .all()
    )


_SEVERITY_ORDER = case({tier.value: rank for tier, rank in SEVERITY.items()}, value=ResidentTier.tier)


def residents_by_tier(
    session: Session,
    *,
    community_id: int | None = None,
    tier: Tier | None = None,
    limit: int = 50,
    offset: int = 0,
    visible: ColumnElement[bool] | None = None,
) -> tuple[int, list[tuple[Resident, ResidentTier]]]:
    """Active residents with their tier, most severe first, latest change first within a tier.

    ``visible``: the actor's scope (``access.policy.visible_residents``), applied in the query."""
    stmt = (
        select(Resident, ResidentTier)
        .join(ResidentTier, ResidentTier.resident_id == Resident.id)
        .where(Resident.status == ResidentStatus.active)
    )
    if visible is not None:
        stmt = stmt.where(visible)
    if community_id is not None:
        stmt = stmt.where(Resident.community_id == community_id)
    if tier is not None:
        stmt = stmt.where(ResidentTier.tier == tier)
    total = session.execute(select(func.count()).select_from(stmt.subquery())).scalar_one()
    rows = session.execute(
        stmt.order_by(_SEVERITY_ORDER, ResidentTier.changed_at.desc(), Resident.id)
        .limit(limit)
        .offset(offset)
    ).all()
    return total, [(resident, tier_row) for resident, tier_row in rows]


@dataclass(frozen=True, slots=True)
class TierMix:
    """Residents of one area by tier."""

    area_id: int | None
    code: str | None
    name: str | None
    red: int = 0
    yellow: int = 0
    green: int = 0

    @property
    def total(self) -> int:
        return self.red + self.yellow + self.green


def tier_mix(
    session: Session, parent_id: int | None = None, visible: ColumnElement[bool] | None = None
) -> list[TierMix]:
    """Tier counts for each area one level below ``parent_id`` (the streets of the district when
    None), rolled up from residents' communities; residents with no community are one row.
    ``visible``: the residents the actor may count (``visible_residents`` for statistics)."""
    areas = {a.id: a for a in session.execute(select(Area)).scalars()}
    counted = select(Resident.community_id, ResidentTier.tier, func.count()).join(
        ResidentTier, ResidentTier.resident_id == Resident.id
    )
    if visible is not None:
        counted = counted.where(visible)
    counts = session.execute(
        counted.where(Resident.status == ResidentStatus.active).group_by(
            Resident.community_id, ResidentTier.tier
        )
    ).all()
    if parent_id is not None and parent_id not in areas:
        raise NotFound("area.not_found", "未找到该区划 (area not found)", area_id=parent_id)
    totals: dict[int | None, Counter[str]] = {}
    for community_id, tier, count in counts:
        key = _child_under(areas, community_id, parent_id)
        if key == -1:
            continue  # outside the chosen area
        totals.setdefault(key, Counter())[str(getattr(tier, "value", tier))] += count
    rows = []
    for key, counter in totals.items():
        area = areas.get(key) if key is not None else None
        rows.append(
            TierMix(key, area.code if area else None, area.name if area else None,
                    counter["red"], counter["yellow"], counter["green"])
        )  # fmt: skip
    rows.sort(key=lambda row: (row.code is None, row.code or ""))
    return rows


def _child_under(areas: dict[int, Area], community_id: int | None, parent_id: int | None) -> int | None:
    """The area directly below ``parent_id`` that holds the community (-1 if none does)."""
    if community_id is None or community_id not in areas:
        return None if parent_id is None else -1
    chain = []
    area: Area | None = areas[community_id]
    while area is not None:
        chain.append(area)
        area = areas.get(area.parent_id) if area.parent_id else None
    chain.reverse()  # district, street, community
    if parent_id is None:
        street = next((a for a in chain if a.level == AreaLevel.street), None)
        return street.id if street else chain[-1].id
    ids = [a.id for a in chain]
    if parent_id not in ids:
        return -1
    index = ids.index(parent_id)
    return ids[index + 1] if index + 1 < len(ids) else ids[index]


# -- sensor data in tier answers --------------------------------------------------------------
# A reason drawn from an alert ("近期告警：告警 跌倒（来源：感知设备 #1，…）") names a device's alert,
# its id and its day: sensor data (docs/access.md), which a reader of the (clinical) tier may be
# refused, by role (a health officer) or by the resident's consent. The tier itself stays: it was
# authorized as clinical. The alert's reason, and what a care plan adds for it (its ``addresses``
# code and the ``alert_review`` activity), are shown only where sensor data is.


def is_sensor_reason(reason: TierReason) -> bool:
    """A reason drawn from an alert: its fact is sensor data."""
    return reason.fact.kind is FactKind.alert


def alert_rule_codes(rules: Sequence[TierRule] | None = None) -> frozenset[str]:
    """The codes of the rules that read alerts, in force or default (a stored plan may name either)."""
    return frozenset(
        rule.code for rule in (*DEFAULT_RULES, *(rules or current_rules())) if rule.kind is FactKind.alert
    )


def sensor_shown(session: Session, actor: Actor, resident_id: int, *, what: str, now: dt.datetime) -> bool:
    """Whether this reader may see the resident's sensor data here: ``policy.permitted`` (audited
    when allowed, as ``break_glass`` through an open glass; nothing recorded when not)."""
    return policy.permitted(session, actor, resident_id, category=DataCategory.sensor, what=what, now=now)


def shown_reasons(
    session: Session,
    actor: Actor,
    resident_id: int,
    reasons: Sequence[TierReason],
    *,
    what: str = "tier",
    now: dt.datetime,
) -> list[TierReason]:
    """One resident's reasons as this reader may see them: those from alerts only with sensor data
    allowed (asked once, and only when there is such a reason)."""
    if not any(is_sensor_reason(r) for r in reasons):
        return list(reasons)
    if sensor_shown(session, actor, resident_id, what=what, now=now):
        return list(reasons)
    return [r for r in reasons if not is_sensor_reason(r)]


def residents_with_sensor_shown(
    session: Session, actor: Actor, resident_ids: Iterable[int], *, now: dt.datetime
) -> set[int]:
    """Of these listed residents, those whose sensor data the reader may list
    (``policy.visible_residents(category=sensor)``: a list does not widen for a break-the-glass)."""
    ids = list(dict.fromkeys(resident_ids))
    if not ids:
        return set()
    visible = policy.visible_residents(session, actor, category=DataCategory.sensor, now=now)
    return set(session.scalars(select(Resident.id).where(Resident.id.in_(ids), visible)))


def listed_reasons(
    session: Session, actor: Actor, rows: Sequence[tuple[Resident, ResidentTier]], *, now: dt.datetime
) -> list[list[TierReason]]:
    """Per listed row (``residents_by_tier``), the reasons of its tier as this reader may see them:
    those from alerts only for residents whose sensor data the reader may list; the others keep
    their tier and the rest of its reasons."""
    rules = current_rules()
    decisive = [[r for r in reasons_from_json(row.reasons, rules) if r.tier == row.tier] for _, row in rows]
    with_alerts = [
        resident.id
        for (resident, _), reasons in zip(rows, decisive, strict=True)
        if any(map(is_sensor_reason, reasons))
    ]
    sensor = residents_with_sensor_shown(session, actor, with_alerts, now=now)
    return [
        [r for r in reasons if resident.id in sensor or not is_sensor_reason(r)]
        for (resident, _), reasons in zip(rows, decisive, strict=True)
    ]


def sensor_hidden_rules(
    session: Session,
    actor: Actor,
    resident_id: int,
    plans: Iterable[CarePlan],
    *,
    what: str = "care_plan",
    now: dt.datetime,
) -> frozenset[str]:
    """The alert rules whose part of these plans (of one resident) the reader may not see: none when
    no plan answers an alert rule or the reader may see her sensor data, else the alert rules."""
    alert_codes = alert_rule_codes()
    if not any(str(code) in alert_codes for plan in plans for code in plan.addresses):
        return frozenset()
    if sensor_shown(session, actor, resident_id, what=what, now=now):
        return frozenset()
    return alert_codes


# -- care plans -------------------------------------------------------------------------------


def care_plans_of(session: Session, resident_id: int, limit: int = 50) -> Sequence[CarePlan]:
    return (
        session.execute(
            select(CarePlan)
            .where(CarePlan.resident_id == resident_id)
            .order_by(CarePlan.created_at.desc(), CarePlan.id.desc())
            .limit(limit)
        )
        .scalars()
        .all()
    )


def get_care_plan(session: Session, plan_id: int) -> CarePlan:
    plan = session.get(CarePlan, plan_id)
    if plan is None:
        raise NotFound("care_plan.not_found", "未找到该照护计划 (care plan not found)", care_plan_id=plan_id)
    return plan


def activate_care_plan(
    session: Session, plan_id: int, *, by: str, now: dt.datetime | None = None
) -> CarePlan:
    """A clinician accepts a proposed plan: it becomes active and replaces the resident's active one.

    A merged-away record's plan is refused (``resident.merged``): its care moved to the survivor,
    whose own tier proposes the plan to accept."""
    now = now or utcnow()
    plan = get_care_plan(session, plan_id)
    get_active_resident(session, plan.resident_id)
    if plan.status != CarePlanStatus.proposed:
        raise Conflict(
            "care_plan.not_proposed",
            "只有待确认的计划可以启用 (only a proposed plan can be activated)",
            status=str(plan.status),
        )
    for other in session.execute(
        select(CarePlan).where(
            CarePlan.resident_id == plan.resident_id,
            CarePlan.status == CarePlanStatus.active,
            CarePlan.id != plan.id,
        )
    ).scalars():
        other.status = CarePlanStatus.revoked
        other.status_changed_at = now
        other.status_changed_by = by[:64]
    plan.status = CarePlanStatus.active
    plan.status_changed_at = now
    plan.status_changed_by = by[:64]
    session.flush()
    return plan


def on_residents_changed(session: Session, event: ResidentsChanged) -> None:
    """An import or a merge changed these residents' facts: re-decide their tiers now."""
    if event.resident_ids:
        retier_residents(session, event.resident_ids, trigger=event.cause)

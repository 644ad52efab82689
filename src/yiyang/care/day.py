"""The care day job: expire contracts, generate the routine work packages promise, move work from
scheduled to due to overdue, and escalate what stays overdue. ``run_care_day(database, now)``.

Set-based so it carries a district: one read per kind of fact (contracts in force with their
residents, qualifying diagnoses, open work, last completed work), the due dates worked out by the
pure schedule functions, new rows written in bulk (COPY on PostgreSQL), and the status moves as
single UPDATE statements with their history written by INSERT ... SELECT.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import asdict, dataclass
from typing import Any

import orjson
from sqlalchemy import (
    ColumnElement,
    DateTime,
    String,
    and_,
    cast,
    func,
    insert,
    literal,
    or_,
    select,
    text,
    type_coerce,
    update,
)
from sqlalchemy.orm import Session, aliased

from yiyang.care.contracts import expire_contracts
from yiyang.care.models import CareContract, CareHistory, CareTeam, ContractStatus, WorkItem, WorkStatus
from yiyang.care.packages import PACKAGES, Entitlement, entitlements_of
from yiyang.care.schedule import (
    DEFAULT_RULES,
    Cadence,
    ScheduleRules,
    cadences,
    next_due,
    status_on,
)
from yiyang.db import Database, bulk_insert, china_day, db_datetime, is_postgres
from yiyang.residents.models import Condition, Resident, ResidentStatus

BY = "system:care-day"
OPEN = (WorkStatus.scheduled.value, WorkStatus.due.value, WorkStatus.overdue.value)
COLUMNS = (
    "resident_id", "kind", "programme", "status", "rule", "owner_user_id", "owner_organisation_id", "due_from",
    "due_by", "source_type", "source_id", "escalation_level", "created_at", "status_changed_at",
)  # fmt: skip


@dataclass
class DayReport:
    expired_contracts: int = 0
    created: int = 0
    became_due: int = 0
    became_overdue: int = 0
    escalated_to_lead: int = 0
    escalated_to_centre: int = 0
    seconds: float = 0.0

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


ANALYZE_AFTER_ROWS = 10_000


def run_care_day(database: Database, now: dt.datetime, rules: ScheduleRules = DEFAULT_RULES) -> DayReport:
    """The whole day's work in one unit of work (committed here: the job owns it)."""
    with database.unit_of_work() as session:
        return care_day(session, now, rules)


def care_day(session: Session, now: dt.datetime, rules: ScheduleRules = DEFAULT_RULES) -> DayReport:
    started = time.perf_counter()
    report = DayReport()
    report.expired_contracts = expire_contracts(session, now, BY)
    report.created = generate_due_work(session, now, rules)
    report.became_due, report.became_overdue = mark_due_and_overdue(session, now)
    report.escalated_to_centre, report.escalated_to_lead = escalate_overdue(session, now, rules)
    if (
        is_postgres(session)
        and report.created + report.became_due + report.became_overdue > ANALYZE_AFTER_ROWS
    ):
        # A day that changed much of the table leaves the planner's row counts stale until autovacuum
        # gets to it; the overdue lists read right after would then join by nested loop.
        session.execute(text("ANALYZE work_item"))
    report.seconds = round(time.perf_counter() - started, 3)
    return report


@dataclass(frozen=True, slots=True)
class _Promise:
    """One programme a package combination promises, as plain values for the hot loop."""

    programme: str
    kind: str
    rule: str
    cadence: Cadence
    min_age: int | None
    prefixes: tuple[str, ...]


def _promises(
    packages_json: str | None, cache: dict[str | None, tuple[_Promise, ...]], plans: dict
) -> tuple[_Promise, ...]:  # type: ignore[type-arg]
    found = cache.get(packages_json)
    if found is None:
        codes = tuple(orjson.loads(packages_json)) if packages_json else ()
        found = cache[packages_json] = tuple(
            _Promise(p.value, plans[p].kind.value, plans[p].rule, plans[p], e.min_age, e.icd10_prefixes)
            for p, e in entitlements_of(codes).items()
        )
    return found


def covering_today(today: dt.date) -> ColumnElement[bool]:
    """The contract whose packages the resident is served under today: the one in force once it has
    started, or, after an early renewal, the old (renewed) contract until the new one's first day.
    At most one per resident (the new contract starts the day after the old one ends)."""
    successor = aliased(CareContract)
    renewed_early = select(successor.renewed_from_id).where(
        successor.status == ContractStatus.in_force, successor.renewed_from_id.is_not(None)
    )
    return or_(
        and_(CareContract.status == ContractStatus.in_force, CareContract.valid_from <= today),
        and_(
            CareContract.status == ContractStatus.renewed,
            CareContract.valid_from <= today,
            CareContract.valid_until >= today,
            CareContract.id.in_(renewed_early),
        ),
    )


def generate_due_work(session: Session, now: dt.datetime, rules: ScheduleRules = DEFAULT_RULES) -> int:
    """Each contract in force gets the next item of every programme its packages promise and the
    resident qualifies for, unless one is already open."""
    today = china_day(now)
    plans = cadences(rules)
    connection = session.connection()  # Core rows: no ORM loading for a district's worth of them
    contracts = connection.execute(
        select(CareContract.resident_id, CareContract.team_id, cast(CareContract.packages, String),
               Resident.birth_date)
        .join(Resident, Resident.id == CareContract.resident_id)
        .where(covering_today(today), Resident.status == ResidentStatus.active)
    ).all()  # fmt: skip
    if not contracts:
        return 0
    prefixes = sorted({p for e in _all_entitlements() for p in e.icd10_prefixes})
    diagnoses: dict[int, list[str]] = {}
    if prefixes:
        for resident_id, code in connection.execute(
            select(Condition.resident_id, Condition.code).where(
                or_(*[Condition.code.like(p + "%") for p in prefixes])
            )
        ).all():
            diagnoses.setdefault(resident_id, []).append(code)
    programmes = [p.value for p in plans]
    open_work = {
        (resident_id, programme)  # plain tuples: a Row compares slowly inside a set
        for resident_id, programme in connection.execute(
            select(WorkItem.resident_id, WorkItem.programme).where(
                WorkItem.status.in_(OPEN), WorkItem.programme.in_(programmes)
            )
        ).all()
    }
    # The last completed visit per resident and programme; read as plain naive UTC (no per-row
    # timezone conversion), shifted to China Standard Time for the calendar day.
    last_done: dict[tuple[int, str], dt.date] = {}
    shift = dt.timedelta(hours=8)
    for resident_id, programme, completed in connection.execute(
        select(
            WorkItem.resident_id, WorkItem.programme, type_coerce(func.max(WorkItem.completed_at), DateTime)
        )
        .where(WorkItem.status == WorkStatus.done.value, WorkItem.programme.in_(programmes))
        .group_by(WorkItem.resident_id, WorkItem.programme)
    ).all():
        if completed is not None:
            if isinstance(completed, str):  # SQLite hands the text back when the type is coerced
                completed = dt.datetime.fromisoformat(completed)
            last_done[(resident_id, programme)] = (completed.replace(tzinfo=None) + shift).date()
    stamp = db_datetime(now).isoformat(sep=" ")  # text: COPY and SQLite both take it
    cache: dict[str | None, tuple[_Promise, ...]] = {}
    adult_before = {}  # min_age -> latest birth date that is old enough today
    rows: list[tuple[Any, ...]] = []
    for resident_id, team_id, packages_json, birth_date in contracts:
        codes = diagnoses.get(resident_id, ())
        for promise in _promises(packages_json, cache, plans):
            if (resident_id, promise.programme) in open_work:
                continue
            if promise.min_age is not None:
                limit = adult_before.get(promise.min_age)
                if limit is None:
                    limit = adult_before[promise.min_age] = _born_by(today, promise.min_age)
                if birth_date is None or birth_date > limit:
                    continue
            if promise.prefixes and not any(c.startswith(promise.prefixes) for c in codes):
                continue
            due_from, due_by = next_due(
                promise.cadence, last_done.get((resident_id, promise.programme)), today, rules
            )
            rows.append((
                resident_id, promise.kind, promise.programme, status_on(due_from, due_by, today), promise.rule,
                None, team_id, due_from.isoformat(), due_by.isoformat(), "contract", None, 0, stamp, stamp,
            ))  # fmt: skip
    return _insert_work(session, rows)


def _insert_work(session: Session, rows: list[tuple[Any, ...]]) -> int:
    """COPY in text form on PostgreSQL: every value is an int, a date or one of our own codes (no
    tab, newline or backslash), so rows are joined here rather than adapted one by one."""
    if not rows or not is_postgres(session):
        return bulk_insert(session, "work_item", COLUMNS, rows)
    raw = session.connection().connection.driver_connection
    with raw.cursor() as cursor, cursor.copy(f"COPY work_item ({', '.join(COLUMNS)}) FROM STDIN") as copy:
        for start in range(0, len(rows), 50_000):
            chunk = rows[start : start + 50_000]
            copy.write(
                "".join("\t".join("\\N" if v is None else str(v) for v in row) + "\n" for row in chunk)
            )
    return len(rows)


def _born_by(today: dt.date, age: int) -> dt.date:
    """The latest birth date of someone ``age`` or older today (on 29 February: the 28th)."""
    try:
        return today.replace(year=today.year - age)
    except ValueError:
        return today.replace(year=today.year - age, day=28)


def _all_entitlements() -> list[Entitlement]:
    return [e for package in PACKAGES.values() for e in package.entitlements]


def _record_transition(
    session: Session, where: Any, action: str, from_status: Any, to_status: str, now: dt.datetime
) -> None:
    session.execute(
        insert(CareHistory).from_select(
            ["subject_type", "subject_id", "action", "from_status", "to_status", "at", "by"],
            select(
                literal("work_item"),
                WorkItem.id,
                literal(action),
                from_status,
                literal(to_status),
                literal(now, CareHistory.at.type),
                literal(BY),
            ).where(where),
        )  # fmt: skip
    )


def mark_due_and_overdue(session: Session, now: dt.datetime) -> tuple[int, int]:
    """scheduled -> due when the window opens; scheduled or due -> overdue once it has closed."""
    today = china_day(now)
    overdue = and_(
        WorkItem.status.in_((WorkStatus.scheduled.value, WorkStatus.due.value)), WorkItem.due_by < today
    )
    _record_transition(session, overdue, "overdue", WorkItem.status, WorkStatus.overdue.value, now)
    became_overdue = session.execute(
        update(WorkItem).where(overdue).values(status=WorkStatus.overdue, status_changed_at=now)
        .execution_options(synchronize_session=False)
    ).rowcount  # fmt: skip
    due = and_(WorkItem.status == WorkStatus.scheduled.value, WorkItem.due_from <= today)
    _record_transition(session, due, "due", WorkItem.status, WorkStatus.due.value, now)
    became_due = session.execute(
        update(WorkItem).where(due).values(status=WorkStatus.due, status_changed_at=now)
        .execution_options(synchronize_session=False)
    ).rowcount  # fmt: skip
    return became_due or 0, became_overdue or 0


def escalate_overdue(
    session: Session, now: dt.datetime, rules: ScheduleRules = DEFAULT_RULES
) -> tuple[int, int]:
    """Overdue past the lead's threshold: to the team lead; past the centre's: to the team's health
    centre (``care_team.health_centre_id``). The team is the owning team, or for work a person owns
    (a grid worker's visit) the team the resident is under contract with. Returns (to centre, to lead)."""
    today = china_day(now)
    contract_team = (
        select(CareContract.team_id)
        .where(
            CareContract.resident_id == WorkItem.resident_id, CareContract.status == ContractStatus.in_force
        )
        .limit(1)
        .scalar_subquery()
    )
    team = func.coalesce(WorkItem.owner_organisation_id, contract_team)
    lead = select(CareTeam.lead_user_id).where(CareTeam.organisation_id == team).scalar_subquery()
    centre = select(CareTeam.health_centre_id).where(CareTeam.organisation_id == team).scalar_subquery()
    counts = []
    for level, days in ((2, rules.escalate_to_centre_after_days), (1, rules.escalate_to_lead_after_days)):
        where = and_(
            WorkItem.status == WorkStatus.overdue.value,
            WorkItem.escalation_level < level,
            WorkItem.due_by <= today - dt.timedelta(days=days),
        )
        _record_transition(
            session,
            where,
            "escalated",
            WorkItem.status,
            WorkStatus.overdue.value,
            now,
        )
        values: dict[str, Any] = {
            "escalation_level": level,
            "escalated_at": now,
            "escalated_to_user_id": lead,
        }
        if level == 2:
            values["escalated_to_organisation_id"] = centre
        counts.append(
            session.execute(
                update(WorkItem).where(where).values(**values).execution_options(synchronize_session=False)
            ).rowcount
            or 0
        )
    return counts[0], counts[1]

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

from sqlalchemy import and_, func, insert, literal, or_, select, update
from sqlalchemy.orm import Session

from yiyang.care.contracts import expire_contracts
from yiyang.care.models import CareContract, CareHistory, CareTeam, ContractStatus, WorkItem, WorkStatus
from yiyang.care.packages import entitlements_of
from yiyang.care.schedule import (
    DEFAULT_RULES,
    Programme,
    ScheduleRules,
    cadences,
    local_day,
    next_due,
    status_on,
)
from yiyang.db import Database, bulk_insert, db_datetime
from yiyang.residents.identity import age_on
from yiyang.residents.models import Condition, Resident

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
    report.seconds = round(time.perf_counter() - started, 3)
    return report


def generate_due_work(session: Session, now: dt.datetime, rules: ScheduleRules = DEFAULT_RULES) -> int:
    """Each contract in force gets the next item of every programme its packages promise and the
    resident qualifies for, unless one is already open."""
    today = local_day(now)
    plans = cadences(rules)
    contracts = session.execute(
        select(CareContract.resident_id, CareContract.team_id, CareContract.doctor_user_id, CareContract.packages,
               Resident.birth_date)
        .join(Resident, Resident.id == CareContract.resident_id)
        .where(CareContract.status == ContractStatus.in_force, CareContract.valid_from <= today)
    ).all()  # fmt: skip
    if not contracts:
        return 0
    entitlement_cache: dict[tuple[str, ...], dict] = {}
    prefixes = sorted({p for e in _all_entitlements() for p in e.icd10_prefixes})
    diagnoses: dict[int, set[str]] = {}
    if prefixes:
        for resident_id, code in session.execute(
            select(Condition.resident_id, Condition.code).where(
                or_(*[Condition.code.like(p + "%") for p in prefixes])
            )
        ):
            diagnoses.setdefault(resident_id, set()).add(code)
    open_work = set(
        session.execute(select(WorkItem.resident_id, WorkItem.programme).where(WorkItem.status.in_(OPEN)))
    )
    last_done: dict[tuple[int, str], dt.date] = {}
    for resident_id, programme, completed in session.execute(
        select(WorkItem.resident_id, WorkItem.programme, func.max(WorkItem.completed_at))
        .where(WorkItem.status == WorkStatus.done.value, WorkItem.programme.in_([p.value for p in plans]))
        .group_by(WorkItem.resident_id, WorkItem.programme)
    ):
        if completed is not None:
            last_done[(resident_id, programme)] = local_day(completed)
    stamp = db_datetime(now).isoformat(sep=" ")  # text: COPY and SQLite both take it
    rows: list[tuple[Any, ...]] = []
    for resident_id, team_id, _doctor, packages, birth_date in contracts:
        key = tuple(packages or ())
        entitlements = entitlement_cache.get(key)
        if entitlements is None:
            entitlements = entitlement_cache[key] = entitlements_of(key)
        age = age_on(birth_date, today) if birth_date else None
        codes = diagnoses.get(resident_id, ())
        for programme, entitlement in entitlements.items():
            if (resident_id, programme.value) in open_work:
                continue
            if entitlement.min_age is not None and (age is None or age < entitlement.min_age):
                continue
            if entitlement.icd10_prefixes and not any(
                c.startswith(entitlement.icd10_prefixes) for c in codes
            ):
                continue
            cadence = plans[programme]
            due_from, due_by = next_due(cadence, last_done.get((resident_id, programme.value)), today, rules)
            rows.append((
                resident_id, cadence.kind.value, programme.value, status_on(due_from, due_by, today), cadence.rule,
                None, team_id, due_from.isoformat(), due_by.isoformat(), "contract", None, 0, stamp, stamp,
            ))  # fmt: skip
    return bulk_insert(session, "work_item", COLUMNS, rows)


def _all_entitlements():  # type: ignore[no-untyped-def]
    from yiyang.care.packages import PACKAGES

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
    today = local_day(now)
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
    """Overdue past the lead's threshold: to the owning team's lead; past the centre's: to its
    health centre (the team's ``health_centre_id``). Returns (to centre, to lead)."""
    today = local_day(now)
    lead = (
        select(CareTeam.lead_user_id).where(CareTeam.organisation_id == WorkItem.owner_organisation_id)
        .scalar_subquery()
    )  # fmt: skip
    centre = (
        select(CareTeam.health_centre_id).where(CareTeam.organisation_id == WorkItem.owner_organisation_id)
        .scalar_subquery()
    )  # fmt: skip
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


__all__ = ["DayReport", "Programme", "care_day", "run_care_day"]

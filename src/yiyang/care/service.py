"""Work items (工作任务): create, read, record an outcome and schedule what it calls for, cancel.

Hand-over points: ``on_alert_raised`` turns an alert into a home visit; a closed item publishes
``WorkItemCompleted`` so the domain that raised it (alerts) can close its own loop;
``accept_care_plan`` turns an accepted tier care plan's activities into work items.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import not_, select
from sqlalchemy.orm import Session

from yiyang import events
from yiyang.access.actor import Actor
from yiyang.access.models import RoleMembership
from yiyang.access.policy import DataCategory, authorize, permitted
from yiyang.access.roles import Role
from yiyang.access.service import as_clinician
from yiyang.care.contracts import by_of, contract_in_force, history, history_of, teams_in_force
from yiyang.care.models import OPEN_STATUSES, CareHistory, WorkItem, WorkKind, WorkStatus
from yiyang.care.schedule import (
    DEFAULT_RULES,
    NextStep,
    Programme,
    ScheduleRules,
    VisitOutcome,
    after_chronic_visit,
    after_mental_visit,
    annual_check_window,
    is_clinical_work,
    status_on,
)
from yiyang.db import china_day
from yiyang.errors import Conflict, Forbidden, Invalid, NotFound
from yiyang.residents.identity import age_on
from yiyang.residents.models import Resident
from yiyang.residents.service import get_active_resident


def create_work_item(
    session: Session, *, resident_id: int, kind: WorkKind, programme: str, rule: str, due_from: dt.date,
    due_by: dt.date, now: dt.datetime, by: str, owner_user_id: int | None = None,
    owner_organisation_id: int | None = None, source_type: str | None = None, source_id: int | None = None,
    note: str | None = None,
) -> WorkItem:  # fmt: skip
    item = _new_work_item(
        resident_id=resident_id, kind=kind, programme=programme, rule=rule, due_from=due_from, due_by=due_by,
        now=now, owner_user_id=owner_user_id, owner_organisation_id=owner_organisation_id,
        source_type=source_type, source_id=source_id, note=note,
    )  # fmt: skip
    session.add(item)
    session.flush()
    history(session, "work_item", item.id, "created", at=now, by=by, to_status=item.status.value)
    return item


def _new_work_item(
    *, resident_id: int, kind: WorkKind, programme: str, rule: str, due_from: dt.date, due_by: dt.date,
    now: dt.datetime, owner_user_id: int | None, owner_organisation_id: int | None, source_type: str | None,
    source_id: int | None, note: str | None,
) -> WorkItem:  # fmt: skip
    status = WorkStatus(status_on(due_from, due_by, china_day(now)))
    return WorkItem(
        resident_id=resident_id, kind=kind, programme=programme, status=status, rule=rule,
        owner_user_id=owner_user_id, owner_organisation_id=owner_organisation_id, due_from=due_from, due_by=due_by,
        source_type=source_type, source_id=source_id, note=note[:200] if note else None, created_at=now,
        status_changed_at=now, escalation_level=0,
    )  # fmt: skip


def get_work_item(session: Session, item_id: int) -> WorkItem:
    item = session.get(WorkItem, item_id)
    if item is None:
        raise NotFound(
            "care.work_item.not_found", "未找到该工作任务 (work item not found)", work_item_id=item_id
        )
    return item


def authorize_work_item(
    session: Session, actor: Actor, item: WorkItem, *, what: str = "work_item", action: str = "read",
    now: dt.datetime,
) -> None:  # fmt: skip
    """Care services for any work item, and clinical as well for clinical work (audited; Forbidden)."""
    authorize(session, actor, item.resident_id, category=DataCategory.care_services, what=what, action=action,
              now=now)  # fmt: skip
    if is_clinical_work(item.programme, item.source_type):
        authorize(session, actor, item.resident_id, category=DataCategory.clinical, what=what, action=action,
                  now=now)  # fmt: skip


def read_work_item(session: Session, actor: Actor, item_id: int, now: dt.datetime) -> WorkItem:
    item = get_work_item(session, item_id)
    authorize_work_item(session, actor, item, now=now)
    return item


def work_item_history(session: Session, item_id: int) -> Sequence[CareHistory]:
    return history_of(session, "work_item", item_id)


def work_items_of(
    session: Session,
    actor: Actor,
    resident_id: int,
    now: dt.datetime,
    *,
    open_only: bool = False,
    limit: int = 100,
) -> Sequence[WorkItem]:
    """The resident's work the actor may see: clinical work only where clinical is permitted too (left
    out, not masked, as in the overdue lists). One resident, so an open break-the-glass counts, as it
    does for a single item, and is audited as its use."""
    from yiyang.care.overdue import clinical_work  # overdue imports this module

    authorize(session, actor, resident_id, category=DataCategory.care_services, what="work_item", now=now)
    stmt = select(WorkItem).where(WorkItem.resident_id == resident_id)
    if not permitted(session, actor, resident_id, category=DataCategory.clinical, what="work_item", now=now):
        stmt = stmt.where(not_(clinical_work()))
    if open_only:
        stmt = stmt.where(WorkItem.status.in_(OPEN_STATUSES))
    return (
        session.execute(stmt.order_by(WorkItem.due_by.desc(), WorkItem.id.desc()).limit(limit))
        .scalars()
        .all()
    )


def actor_organisations(actor: Actor) -> set[int]:
    return {g.organisation_id for g in actor.grants if g.organisation_id is not None}


def may_work_on(actor: Actor, item: WorkItem) -> bool:
    """The owner, a member of the owning team, whoever it was escalated to, or an administrator."""
    if actor.is_admin:
        return True
    orgs = actor_organisations(actor)
    return (
        (actor.user_id is not None and actor.user_id in (item.owner_user_id, item.escalated_to_user_id))
        or (item.owner_organisation_id is not None and item.owner_organisation_id in orgs)
        or (item.escalated_to_organisation_id is not None and item.escalated_to_organisation_id in orgs)
    )


def _require_may_work_on(actor: Actor, item: WorkItem) -> None:
    if not may_work_on(actor, item):
        raise Forbidden(
            "care.work_item.not_owner",
            "该任务不属于您或您的团队 (this work item is not yours or your team's)",
        )


def _require_open(item: WorkItem) -> None:
    if item.status not in OPEN_STATUSES:
        raise Conflict(
            "care.work_item.closed",
            "该任务已关闭 (the work item is already closed)",
            status=item.status.value,
        )


# -- outcomes -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Outcome:
    """What was found when the work was done: measurements for follow-ups, findings for visits."""

    done: bool = True  # False: attempted and failed (not at home, refused)
    visited_on: dt.date | None = None
    visit: VisitOutcome = field(default_factory=VisitOutcome)
    findings: str | None = None
    refer_to_organisation_id: int | None = None  # where a referral goes when the outcome calls for one


@dataclass(frozen=True, slots=True)
class OutcomeResult:
    item: WorkItem
    visit_class: str | None
    next_items: tuple[WorkItem, ...]
    referral_required: bool
    referral_id: int | None


CHRONIC = (Programme.hypertension, Programme.diabetes)
CLINICAL_KINDS = frozenset({WorkKind.follow_up, WorkKind.referral_follow_up, WorkKind.health_check})


def outcome_category(item: WorkItem, outcome: Outcome) -> DataCategory:
    """A follow-up's or health check's outcome, any outcome carrying measurements, and any outcome of
    clinical work (``is_clinical_work``) is clinical; a home visit or a service delivered with findings
    only is care services (a grid worker's visit)."""
    measured = any(v not in (None, False, "") for v in _visit_json(outcome.visit).values())
    if item.kind in CLINICAL_KINDS or measured or outcome.refer_to_organisation_id is not None:
        return DataCategory.clinical
    if is_clinical_work(item.programme, item.source_type):  # a care-plan activity names the plan
        return DataCategory.clinical
    return DataCategory.care_services


def _previous_unsatisfactory(session: Session, item: WorkItem) -> bool:
    """Was the resident's last completed visit in this programme unsatisfactory (or worse)?"""
    outcome = session.scalar(
        select(WorkItem.outcome)
        .where(
            WorkItem.resident_id == item.resident_id,
            WorkItem.programme == item.programme,
            WorkItem.status == WorkStatus.done,
            WorkItem.id != item.id,
        )
        .order_by(WorkItem.completed_at.desc(), WorkItem.id.desc())
        .limit(1)
    )
    return bool(outcome) and outcome.get("visit_class") in ("unsatisfactory", "adverse", "urgent")


def record_outcome(
    session: Session, actor: Actor, item_id: int, outcome: Outcome, *, now: dt.datetime,
    rules: ScheduleRules = DEFAULT_RULES,
) -> OutcomeResult:  # fmt: skip
    """Close a work item with its outcome and schedule what the outcome requires (the spec's rules)."""
    item = get_work_item(session, item_id)
    authorize(session, actor, item.resident_id, category=outcome_category(item, outcome),
              what="work_item.outcome", action="update", now=now)  # fmt: skip
    _require_may_work_on(actor, item)
    _require_open(item)
    today = china_day(now)
    visited_on = outcome.visited_on or today
    if visited_on > today:
        # A mistyped year would date the next follow-up years ahead, and while it stays open the day
        # job raises no other: the resident would drop out of follow-up.
        raise Invalid(
            "care.outcome.visited_on", "随访日期不能晚于今天 (the visit cannot be dated after today)",
            visited_on=visited_on.isoformat(), latest=today.isoformat(),
        )  # fmt: skip
    stored: dict[str, Any] = {"done": outcome.done, "visited_on": visited_on.isoformat()}
    stored.update({k: v for k, v in _visit_json(outcome.visit).items() if v is not None})
    if outcome.findings:
        stored["findings"] = outcome.findings[:500]
    steps: tuple[NextStep, ...] = ()
    visit_class: str | None = None
    if outcome.done and item.kind in (WorkKind.follow_up, WorkKind.referral_follow_up):
        decision = _decide(session, item, outcome, visited_on, rules)
        if decision is not None:
            visit_class = decision.visit_class.value
            steps = decision.steps
            stored["visit_class"] = visit_class
    elif outcome.done and item.kind is WorkKind.health_check:
        start, end = annual_check_window(visited_on, today)
        steps = (NextStep(WorkKind.health_check, Programme.elderly_check, start, end, "bphs.elderly.annual"),)
    previous = item.status.value
    item.status = WorkStatus.done if outcome.done else WorkStatus.failed
    item.outcome = stored
    item.completed_at = now
    item.completed_by = by_of(actor)
    item.status_changed_at = now
    history(session, "work_item", item.id, item.status.value, at=now, by=by_of(actor), from_status=previous,
            to_status=item.status.value, note=visit_class)  # fmt: skip
    referral_required = any(step.refer for step in steps)
    referral_id: int | None = None
    if referral_required and outcome.refer_to_organisation_id is not None:
        from yiyang.care.referrals import send_referral

        urgent = any(step.urgent for step in steps)
        referral = send_referral(
            session, actor, resident_id=item.resident_id, to_organisation_id=outcome.refer_to_organisation_id,
            reason=_referral_reason(steps), urgent=urgent, source_work_item_id=item.id, now=now,
            schedule_follow_up=False,
        )  # fmt: skip
        referral_id = referral.id
    next_items = tuple(
        create_work_item(
            session,
            resident_id=item.resident_id,
            kind=step.kind,
            programme=step.programme.value,
            rule=step.rule,
            due_from=step.due_from,
            due_by=step.due_by,
            now=now,
            by=by_of(actor),
            owner_user_id=item.owner_user_id,
            owner_organisation_id=item.owner_organisation_id,
            source_type="work_item",
            source_id=item.id,
        )  # fmt: skip
        for step in steps
    )
    if next_items:
        stored["next_work_item_ids"] = [n.id for n in next_items]
    if referral_required:
        stored["referral_required"] = True
        if referral_id:
            stored["referral_id"] = referral_id
    item.outcome = dict(stored)
    session.flush()
    events.publish(
        session,
        events.WorkItemCompleted(
            work_item_id=item.id,
            resident_id=item.resident_id,
            kind=item.kind.value,
            status=item.status.value,
            source_type=item.source_type,
            source_id=item.source_id,
            outcome=dict(stored),
            completed_at=now,
        ),  # fmt: skip
    )
    return OutcomeResult(item, visit_class, next_items, referral_required, referral_id)


def _visit_json(visit: VisitOutcome) -> dict[str, Any]:
    return {
        "systolic": visit.systolic, "diastolic": visit.diastolic, "fasting_glucose": visit.fasting_glucose,
        "adverse_reaction": visit.adverse_reaction or None, "new_complication": visit.new_complication or None,
        "danger_symptoms": visit.danger_symptoms or None, "risk_grade": visit.risk_grade,
    }  # fmt: skip


def _referral_reason(steps: tuple[NextStep, ...]) -> str:
    from yiyang.care.schedule import RULES

    rule = RULES.get(steps[0].rule)
    return rule.zh + " (" + rule.en + ")" if rule else "随访转诊 (referral after follow-up)"


def _decide(session: Session, item: WorkItem, outcome: Outcome, visited_on: dt.date, rules: ScheduleRules):  # type: ignore[no-untyped-def]
    try:
        programme = Programme(item.programme)
    except ValueError:
        return None
    if programme in CHRONIC:
        resident = session.get(Resident, item.resident_id)
        age = age_on(resident.birth_date, visited_on) if resident and resident.birth_date else None
        return after_chronic_visit(
            programme, outcome.visit, visited_on, age=age,
            previous_unsatisfactory=_previous_unsatisfactory(session, item), rules=rules,
        )  # fmt: skip
    if programme is Programme.severe_mental:
        if outcome.visit.risk_grade is None:
            raise Invalid(
                "care.outcome.risk_grade", "严重精神障碍随访须填写危险性等级0-5 (risk grade 0-5 is required)"
            )
        return after_mental_visit(outcome.visit.risk_grade, visited_on, rules)
    return None


def cancel_work_item(
    session: Session, actor: Actor, item_id: int, *, reason: str, now: dt.datetime
) -> WorkItem:
    item = get_work_item(session, item_id)
    authorize_work_item(session, actor, item, action="update", now=now)
    _require_may_work_on(actor, item)
    _require_open(item)
    previous = item.status.value
    item.status = WorkStatus.cancelled
    item.status_changed_at = now
    history(session, "work_item", item.id, "cancelled", at=now, by=by_of(actor), from_status=previous,
            to_status=item.status.value, note=reason)  # fmt: skip
    session.flush()
    return item


# -- hand-over: alerts ----------------------------------------------------------------------------

URGENT_SEVERITIES = frozenset({"critical", "high", "urgent", "red"})


def grid_worker_of(session: Session, grid_id: int | None) -> int | None:
    if grid_id is None:
        return None
    return grid_workers_of(session, {grid_id}).get(grid_id)


def grid_workers_of(session: Session, grid_ids: set[int]) -> dict[int, int]:
    """Each grid's grid worker (the longest-serving, when there are several)."""
    if not grid_ids:
        return {}
    rows = session.execute(
        select(RoleMembership.area_id, RoleMembership.user_id)
        .where(
            RoleMembership.role == Role.grid_worker,
            RoleMembership.area_id.in_(sorted(grid_ids)),
            RoleMembership.revoked_at.is_(None),
        )
        .order_by(RoleMembership.id)
    )
    found: dict[int, int] = {}
    for area_id, user_id in rows:
        found.setdefault(area_id, user_id)
    return found


def on_alert_raised(session: Session, event: Any) -> WorkItem | None:
    """An alert (alert_id, resident_id, kind, severity, raised_at) becomes a home visit for the grid
    worker of the resident's grid, or the resident's family-doctor team; once per alert."""
    return on_alerts_raised(session, [event])[0]


def on_alerts_raised(session: Session, raised: Sequence[Any]) -> list[WorkItem | None]:
    """``on_alert_raised`` for alerts raised together (the ingest raises a batch's at once): the
    same visits, found and written in a few statements instead of a few per alert. Returns each
    alert's visit (None for an unknown resident)."""
    alert_ids = sorted({event.alert_id for event in raised})
    visits: dict[int, WorkItem] = {
        item.source_id: item
        for item in session.scalars(
            select(WorkItem).where(WorkItem.source_type == "alert", WorkItem.source_id.in_(alert_ids))
        )
    }
    resident_ids = sorted({event.resident_id for event in raised if event.alert_id not in visits})
    grid_of: dict[int, int | None] = (
        dict(
            session.execute(select(Resident.id, Resident.grid_id).where(Resident.id.in_(resident_ids))).all()
        )
        if resident_ids
        else {}
    )
    workers = grid_workers_of(session, {grid for grid in grid_of.values() if grid is not None})
    teams = teams_in_force(
        session, [resident for resident, grid in grid_of.items() if grid is None or grid not in workers]
    )
    made: list[WorkItem] = []
    results: list[WorkItem | None] = []
    for event in raised:
        visit = visits.get(event.alert_id)
        if visit is None and event.resident_id in grid_of:
            grid = grid_of[event.resident_id]
            owner_user = workers.get(grid) if grid is not None else None
            day = china_day(event.raised_at)
            days = 0 if str(event.severity).lower() in URGENT_SEVERITIES else 1
            visit = _new_work_item(
                resident_id=event.resident_id, kind=WorkKind.home_visit, programme=Programme.alert.value,
                rule="alert.home_visit", due_from=day, due_by=day + dt.timedelta(days=days), now=event.raised_at,
                owner_user_id=owner_user, owner_organisation_id=None if owner_user is not None else teams.get(
                    event.resident_id
                ), source_type="alert", source_id=event.alert_id, note=str(event.kind)[:64],
            )  # fmt: skip
            visits[event.alert_id] = visit
            made.append(visit)
        results.append(visit)
    if made:
        session.add_all(made)
        session.flush()
        for visit in made:
            history(
                session, "work_item", visit.id, "created", at=visit.created_at, by="system:alerts",
                to_status=visit.status.value,
            )  # fmt: skip
    return results


# -- hand-over: tier care plans -------------------------------------------------------------------

# activity code (tiers/care_plans.py) -> (kind, programme, days until due)
PLAN_ACTIVITY_WORK: dict[str, tuple[WorkKind, str, int]] = {
    "home_sickbed": (WorkKind.home_visit, Programme.home_sickbed.value, 7),
    "home_care_bed": (WorkKind.service_delivery, "plan.home_care_bed", 14),
    "bed_linkage_visits": (WorkKind.home_visit, "plan.bed_linkage_visits", 30),
    "respite_care": (WorkKind.service_delivery, "plan.respite_care", 30),
    "dementia_care": (WorkKind.home_visit, "plan.dementia_care", 30),
    "health_butler": (WorkKind.follow_up, "plan.health_butler", 14),
    "remote_monitoring": (WorkKind.service_delivery, "plan.remote_monitoring", 14),
    "hypertension_follow_up": (WorkKind.follow_up, Programme.hypertension.value, 14),
    "diabetes_follow_up": (WorkKind.follow_up, Programme.diabetes.value, 14),
    "chronic_follow_up": (WorkKind.follow_up, "plan.chronic_follow_up", 30),
    "stroke_rehab": (WorkKind.home_visit, Programme.rehab.value, 7),
    "rehab_plan": (WorkKind.home_visit, Programme.rehab.value, 14),
    "fall_prevention": (WorkKind.home_visit, "plan.fall_prevention", 30),
    "cvd_risk_management": (WorkKind.follow_up, "plan.cvd_risk_management", 30),
    "capability_support": (WorkKind.service_delivery, "plan.capability_support", 30),
    "alert_review": (WorkKind.home_visit, Programme.alert.value, 7),
    "wellness_activities": (WorkKind.reminder, "plan.wellness_activities", 30),
    "annual_health_check": (WorkKind.health_check, Programme.elderly_check.value, 0),
    "volunteer_invitation": (WorkKind.reminder, "plan.volunteer_invitation", 30),
}


def accept_care_plan(session: Session, actor: Actor, plan_id: int, *, now: dt.datetime) -> list[WorkItem]:
    """A clinician accepts a tier's proposed plan; each activity becomes a work item unless the
    resident already has open work of that programme.

    A lasting decision: the clinician's own team scope and the resident's consent decide, never a
    break-the-glass opening (``glass=False``), which is for reading in an emergency."""
    from yiyang.tiers import service as tiers

    plan = tiers.get_care_plan(session, plan_id)
    clinician = as_clinician(actor)
    authorize(session, clinician, plan.resident_id, category=DataCategory.clinical, what="care_plan",
              action="update", now=now, glass=False)  # fmt: skip
    contract = contract_in_force(session, plan.resident_id)
    orgs = sorted(actor_organisations(clinician))
    owner_org = contract.team_id if contract else (orgs[0] if orgs else None)
    owner_user = None if owner_org is not None else actor.user_id
    tiers.activate_care_plan(session, plan_id, by=by_of(actor), now=now)
    open_programmes = set(
        session.execute(
            select(WorkItem.programme).where(
                WorkItem.resident_id == plan.resident_id, WorkItem.status.in_(OPEN_STATUSES)
            )
        ).scalars()
    )
    today = china_day(now)
    created: list[WorkItem] = []
    for activity in plan.activities:
        work = PLAN_ACTIVITY_WORK.get(activity)
        if work is None or work[1] in open_programmes:
            continue
        kind, programme, days = work
        if kind is WorkKind.health_check:
            due_from, due_by = annual_check_window(None, today)
            rule = "bphs.elderly.annual"
        else:
            due_from, due_by = today, today + dt.timedelta(days=days)
            rule = "care_plan.activity"
        created.append(
            create_work_item(
                session,
                resident_id=plan.resident_id,
                kind=kind,
                programme=programme,
                rule=rule,
                due_from=due_from,
                due_by=due_by,
                now=now,
                by=by_of(actor),
                owner_user_id=owner_user,
                owner_organisation_id=owner_org,
                source_type="care_plan",
                source_id=plan.id,
                note=activity,
            )  # fmt: skip
        )
        open_programmes.add(programme)
    return created


def resident_of(session: Session, resident_id: int) -> Resident:
    return get_active_resident(session, resident_id)

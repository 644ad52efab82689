"""Tier routes: a resident's tier with reasons, its history, lists and mix, care plans, FHIR."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Query
from sqlalchemy import or_

from yiyang.access import policy
from yiyang.access.actor import Actor
from yiyang.access.deps import ActorDep, ClockDep
from yiyang.access.policy import DataCategory, Purpose
from yiyang.access.routes import no_resident_data, resident_data
from yiyang.access.service import as_clinician
from yiyang.care.contracts import by_of
from yiyang.deps import MAX_ID, IdPath, ResidentIdPath, SessionDep
from yiyang.errors import NotFound
from yiyang.residents.service import get_active_resident, get_resident
from yiyang.tiers import fhir, schemas, service
from yiyang.tiers.rules import Tier, reasons_from_json

router = APIRouter(prefix="/api", tags=["tiers"])
_CLINICAL = resident_data(DataCategory.clinical)


def _clinical(
    session: SessionDep,
    actor: Actor,
    resident_id: int,
    now: dt.datetime,
    *,
    what: str = "tier",
    action: str = "read",
    glass: bool = True,
) -> None:
    policy.authorize(
        session, actor, resident_id, category=DataCategory.clinical, what=what, action=action, now=now,
        glass=glass,
    )  # fmt: skip


def _tier_or_404(session: SessionDep, resident_id: int) -> service.TierView:
    get_resident(session, resident_id)
    view = service.tier_of(session, resident_id)
    if view is None:
        raise NotFound(
            "tier.not_decided",
            "该居民尚未分级 (no tier decided for this resident yet)",
            resident_id=resident_id,
        )
    return view


@router.get("/residents/{resident_id}/tier", response_model=schemas.TierRead, openapi_extra=_CLINICAL)
def read_tier(
    resident_id: ResidentIdPath, session: SessionDep, actor: ActorDep, clock: ClockDep
) -> schemas.TierRead:
    now = clock()
    _clinical(session, actor, resident_id, now)
    view = _tier_or_404(session, resident_id)
    reasons = service.shown_reasons(session, actor, resident_id, view.reasons, now=now)
    return schemas.tier_read(view.resident_id, view.tier, reasons, view.decided_at, view.changed_at)


@router.post(
    "/residents/{resident_id}/tier/recompute", response_model=schemas.TierRead, openapi_extra=_CLINICAL
)
def recompute_tier(
    resident_id: ResidentIdPath, session: SessionDep, actor: ActorDep, clock: ClockDep
) -> schemas.TierRead:
    now = clock()
    _clinical(session, actor, resident_id, now, action="update")
    get_active_resident(session, resident_id)
    service.retier_residents(session, [resident_id], trigger="manual")
    view = _tier_or_404(session, resident_id)
    reasons = service.shown_reasons(session, actor, resident_id, view.reasons, now=now)
    return schemas.tier_read(view.resident_id, view.tier, reasons, view.decided_at, view.changed_at)


@router.get(
    "/residents/{resident_id}/tier/history",
    response_model=list[schemas.TierChangeRead],
    openapi_extra=_CLINICAL,
)
def read_tier_history(
    resident_id: ResidentIdPath, session: SessionDep, actor: ActorDep, clock: ClockDep
) -> list[schemas.TierChangeRead]:
    now = clock()
    _clinical(session, actor, resident_id, now)
    get_resident(session, resident_id)
    rules = service.current_rules()
    changes = [
        (change, reasons_from_json(change.reasons, rules))
        for change in service.tier_history(session, resident_id)
    ]
    # Sensor data is asked about once for the whole history, and only if a change names an alert.
    every_reason = [reason for _, reasons in changes for reason in reasons]
    shown = set(map(id, service.shown_reasons(session, actor, resident_id, every_reason, now=now)))
    return [
        schemas.TierChangeRead(
            id=change.id,
            old_tier=change.old_tier,
            new_tier=change.new_tier,
            trigger=change.trigger,
            changed_at=change.changed_at,
            reasons=[schemas.TierReasonRead.of(r) for r in reasons if id(r) in shown],
        )  # fmt: skip
        for change, reasons in changes
    ]


@router.get("/residents/{resident_id}/tier/fhir", openapi_extra=_CLINICAL)
def read_tier_flag(
    resident_id: ResidentIdPath, session: SessionDep, actor: ActorDep, clock: ClockDep
) -> dict[str, Any]:
    """The tier as a FHIR Flag."""
    now = clock()
    _clinical(session, actor, resident_id, now)
    view = _tier_or_404(session, resident_id)
    reasons = service.shown_reasons(session, actor, resident_id, view.reasons, now=now)
    return fhir.tier_flag(view.resident_id, view.tier, reasons, view.changed_at)


@router.get(
    "/tiers",
    response_model=schemas.TierPage,
    openapi_extra=resident_data(DataCategory.clinical, DataCategory.identity, many=True),
)
def list_by_tier(
    session: SessionDep,
    actor: ActorDep,
    clock: ClockDep,
    community_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    tier: Tier | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> schemas.TierPage:
    now = clock()
    visible = policy.named_residents(session, actor, category=DataCategory.clinical, now=now)
    total, rows = service.residents_by_tier(
        session, community_id=community_id, tier=tier, limit=limit, offset=offset, visible=visible
    )
    listed = service.listed_reasons(session, actor, rows, now=now)
    items = [
        schemas.TierListItem(
            resident_id=resident.id,
            name=resident.name,
            community_id=resident.community_id,
            tier=row.tier,
            changed_at=row.changed_at,
            reasons=[schemas.TierReasonRead.of(r) for r in reasons],
        )  # fmt: skip
        for (resident, row), reasons in zip(rows, listed, strict=True)
    ]
    return schemas.TierPage(total=total, items=items)


@router.get(
    "/tiers/mix",
    response_model=list[schemas.TierMixRead],
    openapi_extra=resident_data(DataCategory.clinical, many=True),
)
def read_tier_mix(
    session: SessionDep,
    actor: ActorDep,
    clock: ClockDep,
    parent_id: Annotated[int | None, Query(ge=1, le=MAX_ID, description="area id; none: the streets")] = None,
) -> list[schemas.TierMixRead]:
    return [
        schemas.TierMixRead(
            area_id=m.area_id,
            code=m.code,
            name=m.name,
            red=m.red,
            yellow=m.yellow,
            green=m.green,
            total=m.total,
        )
        for m in service.tier_mix(session, parent_id, visible=_counted(session, actor, clock()))
    ]


def _counted(session: SessionDep, actor: Actor, now):  # type: ignore[no-untyped-def]
    """Aggregates: the residents counted for statistics, and those in the actor's care lists."""
    return or_(
        policy.visible_residents(
            session, actor, category=DataCategory.clinical, purpose=Purpose.statistics, now=now
        ),
        policy.visible_residents(session, actor, category=DataCategory.clinical, now=now),
    )


@router.get("/tiers/rules", openapi_extra=no_resident_data("the rules in force"))
def read_rules() -> list[dict[str, Any]]:
    """The rules in force: the defaults as changed by the district's rules file."""
    return [rule.as_json() for rule in service.current_rules()]


@router.get(
    "/residents/{resident_id}/care-plans", response_model=list[schemas.CarePlanRead], openapi_extra=_CLINICAL
)
def list_care_plans(
    resident_id: ResidentIdPath, session: SessionDep, actor: ActorDep, clock: ClockDep
) -> list[schemas.CarePlanRead]:
    now = clock()
    _clinical(session, actor, resident_id, now, what="care_plan")
    get_resident(session, resident_id)
    plans = service.care_plans_of(session, resident_id)
    hidden = service.sensor_hidden_rules(session, actor, resident_id, plans, now=now)
    return [schemas.care_plan_read(plan, dropped_rules=hidden) for plan in plans]


@router.get("/care-plans/{plan_id}", response_model=schemas.CarePlanRead, openapi_extra=_CLINICAL)
def read_care_plan(
    plan_id: IdPath, session: SessionDep, actor: ActorDep, clock: ClockDep
) -> schemas.CarePlanRead:
    plan = service.get_care_plan(session, plan_id)
    now = clock()
    _clinical(session, actor, plan.resident_id, now, what="care_plan")
    hidden = service.sensor_hidden_rules(session, actor, plan.resident_id, [plan], now=now)
    return schemas.care_plan_read(plan, dropped_rules=hidden)


@router.get("/care-plans/{plan_id}/fhir", openapi_extra=_CLINICAL)
def read_care_plan_fhir(
    plan_id: IdPath, session: SessionDep, actor: ActorDep, clock: ClockDep
) -> dict[str, Any]:
    plan = service.get_care_plan(session, plan_id)
    now = clock()
    _clinical(session, actor, plan.resident_id, now, what="care_plan")
    hidden = service.sensor_hidden_rules(session, actor, plan.resident_id, [plan], now=now)
    return fhir.care_plan_resource(plan, dropped_rules=hidden)


@router.post("/care-plans/{plan_id}/activate", response_model=schemas.CarePlanRead, openapi_extra=_CLINICAL)
def activate_care_plan(
    plan_id: IdPath,
    session: SessionDep,
    actor: ActorDep,
    clock: ClockDep,
    body: schemas.CarePlanActivate | None = None,
) -> schemas.CarePlanRead:
    """A clinician accepts a proposed plan (proposed -> active); the care loop takes it from here.

    A lasting decision: the clinician's own team scope and the resident's consent decide, never a
    break-the-glass opening (``glass=False``). The plan records the signed-in clinician as its
    acceptor; a name in ``body.by`` is not stored."""
    plan = service.get_care_plan(session, plan_id)
    now = clock()
    clinician = as_clinician(actor)  # a team clinician's grant decides, not another role's
    _clinical(session, clinician, plan.resident_id, now, what="care_plan", action="update", glass=False)
    activated = service.activate_care_plan(session, plan_id, by=by_of(actor), now=now)
    hidden = service.sensor_hidden_rules(session, clinician, plan.resident_id, [activated], now=now)
    return schemas.care_plan_read(activated, dropped_rules=hidden)

"""Tier routes: a resident's tier with reasons, its history, lists and mix, care plans, FHIR."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from yiyang.deps import MAX_ID, IdPath, ResidentIdPath, SessionDep
from yiyang.errors import NotFound
from yiyang.residents.service import get_active_resident, get_resident
from yiyang.tiers import fhir, schemas, service
from yiyang.tiers.rules import Tier, reasons_from_json

router = APIRouter(prefix="/api", tags=["tiers"])


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


@router.get("/residents/{resident_id}/tier", response_model=schemas.TierRead)
def read_tier(resident_id: ResidentIdPath, session: SessionDep) -> schemas.TierRead:
    view = _tier_or_404(session, resident_id)
    return schemas.tier_read(view.resident_id, view.tier, view.reasons, view.decided_at, view.changed_at)


@router.post("/residents/{resident_id}/tier/recompute", response_model=schemas.TierRead)
def recompute_tier(resident_id: ResidentIdPath, session: SessionDep) -> schemas.TierRead:
    get_active_resident(session, resident_id)
    service.retier_residents(session, [resident_id], trigger="manual")
    view = _tier_or_404(session, resident_id)
    return schemas.tier_read(view.resident_id, view.tier, view.reasons, view.decided_at, view.changed_at)


@router.get("/residents/{resident_id}/tier/history", response_model=list[schemas.TierChangeRead])
def read_tier_history(resident_id: ResidentIdPath, session: SessionDep) -> list[schemas.TierChangeRead]:
    get_resident(session, resident_id)
    rules = service.current_rules()
    return [
        schemas.TierChangeRead(
            id=change.id,
            old_tier=change.old_tier,
            new_tier=change.new_tier,
            trigger=change.trigger,
            changed_at=change.changed_at,
            reasons=[schemas.TierReasonRead.of(r) for r in reasons_from_json(change.reasons, rules)],
        )  # fmt: skip
        for change in service.tier_history(session, resident_id)
    ]


@router.get("/residents/{resident_id}/tier/fhir")
def read_tier_flag(resident_id: ResidentIdPath, session: SessionDep) -> dict[str, Any]:
    """The tier as a FHIR Flag."""
    view = _tier_or_404(session, resident_id)
    return fhir.tier_flag(view.resident_id, view.tier, view.reasons, view.changed_at)


@router.get("/tiers", response_model=schemas.TierPage)
def list_by_tier(
    session: SessionDep,
    community_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    tier: Tier | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> schemas.TierPage:
    total, rows = service.residents_by_tier(
        session, community_id=community_id, tier=tier, limit=limit, offset=offset
    )
    rules = service.current_rules()
    items = [
        schemas.TierListItem(
            resident_id=resident.id,
            name=resident.name,
            community_id=resident.community_id,
            tier=row.tier,
            changed_at=row.changed_at,
            reasons=[
                schemas.TierReasonRead.of(r)
                for r in reasons_from_json(row.reasons, rules)
                if r.tier == row.tier
            ],
        )  # fmt: skip
        for resident, row in rows
    ]
    return schemas.TierPage(total=total, items=items)


@router.get("/tiers/mix", response_model=list[schemas.TierMixRead])
def read_tier_mix(
    session: SessionDep,
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
        for m in service.tier_mix(session, parent_id)
    ]


@router.get("/tiers/rules")
def read_rules() -> list[dict[str, Any]]:
    """The rules in force: the defaults as changed by the district's rules file."""
    return [rule.as_json() for rule in service.current_rules()]


@router.get("/residents/{resident_id}/care-plans", response_model=list[schemas.CarePlanRead])
def list_care_plans(resident_id: ResidentIdPath, session: SessionDep) -> list[schemas.CarePlanRead]:
    get_resident(session, resident_id)
    return [schemas.care_plan_read(plan) for plan in service.care_plans_of(session, resident_id)]


@router.get("/care-plans/{plan_id}", response_model=schemas.CarePlanRead)
def read_care_plan(plan_id: IdPath, session: SessionDep) -> schemas.CarePlanRead:
    return schemas.care_plan_read(service.get_care_plan(session, plan_id))


@router.get("/care-plans/{plan_id}/fhir")
def read_care_plan_fhir(plan_id: IdPath, session: SessionDep) -> dict[str, Any]:
    return fhir.care_plan_resource(service.get_care_plan(session, plan_id))


@router.post("/care-plans/{plan_id}/activate", response_model=schemas.CarePlanRead)
def activate_care_plan(
    plan_id: IdPath, body: schemas.CarePlanActivate, session: SessionDep
) -> schemas.CarePlanRead:
    """A clinician accepts a proposed plan (proposed -> active); the care loop takes it from here."""
    return schemas.care_plan_read(service.activate_care_plan(session, plan_id, by=body.by))

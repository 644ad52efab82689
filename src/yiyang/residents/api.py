"""Registry routes: thin, each checks access (``access.policy``) and calls one service function."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import AfterValidator

from yiyang.access import policy
from yiyang.access.actor import Actor
from yiyang.access.deps import ActorDep, ClockDep
from yiyang.access.policy import DataCategory, FieldGroup
from yiyang.access.routes import resident_data
from yiyang.db import china_day
from yiyang.deps import IdPath, ResidentIdPath, SessionDep
from yiyang.residents import schemas, service
from yiyang.residents.identity import age_on, mask_attribute
from yiyang.residents.models import LinkReview, Resident, ResidentMerge
from yiyang.residents.precedence import PROFILE_ATTRIBUTES

router = APIRouter(prefix="/api", tags=["residents"])
_IDENTITY = resident_data(DataCategory.identity)
_REGISTRY = resident_data(DataCategory.identity, registry=True)


@router.get(
    "/residents",
    response_model=schemas.ResidentPage,
    response_model_exclude_unset=True,  # a field group the reader lacks is left out, not null
    openapi_extra=resident_data(DataCategory.identity, many=True),
)
def search_residents(
    session: SessionDep,
    actor: ActorDep,
    clock: ClockDep,
    q: Annotated[
        str | None,
        Query(max_length=64, description="name, pinyin, ID number or phone"),
        AfterValidator(schemas.search_text),
    ] = None,
    community_id: Annotated[int | None, Query(ge=1, le=2_147_483_647)] = None,
    needs_review: bool | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 20,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> schemas.ResidentPage:
    """Residents in the reader's scope; each item holds only the field groups its profile would show."""
    now = clock()
    service.authorize_search(session, actor, q, now=now)  # by ID number or phone: who may see them
    visible = policy.visible_residents(session, actor, category=DataCategory.identity, now=now)
    total, rows = service.search_residents(
        session,
        q,
        community_id=community_id,
        needs_review=needs_review,
        limit=limit,
        offset=offset,
        visible=visible,
    )
    groups = policy.listed_groups(session, actor, [r.id for r in rows], now=now)  # as each profile shows
    return schemas.ResidentPage(total=total, items=[_summary(r, groups[r.id]) for r in rows])


def _summary(resident: Resident, groups: frozenset[FieldGroup]) -> schemas.ResidentSummary:
    summary = schemas.ResidentSummary.model_validate(resident)
    if FieldGroup.registry in groups:
        return summary
    return schemas.ResidentSummary.model_validate(summary.model_dump(exclude={"birth_date"}))


@router.get("/residents/{resident_id}", response_model=schemas.ResidentProfile, openapi_extra=_IDENTITY)
def read_profile(
    resident_id: ResidentIdPath, session: SessionDep, actor: ActorDep, clock: ClockDep
) -> schemas.ResidentProfile:
    """The profile, minimised: only the field groups the reader's role and the resident's consent allow."""
    now = clock()
    groups = policy.authorize_profile(session, actor, resident_id, now=now)
    resident = service.get_active_resident(session, resident_id)
    attributes = {a for a in PROFILE_ATTRIBUTES if policy.ATTRIBUTE_GROUPS.get(a) in groups}
    clinical = FieldGroup.clinical in groups
    return schemas.ResidentProfile(
        id=resident.id,
        status=resident.status,
        merged_into_id=resident.merged_into_id,
        needs_review=resident.needs_review,
        age=age_on(resident.birth_date, china_day(now)) if resident.birth_date else None,
        # ID number and phone masked: the unmasked value only through POST .../reveal (audited).
        facts=[
            schemas.FactRead(**{**vars(f), "value": mask_attribute(f.attribute, f.value)})
            for f in service.profile_facts(session, resident)
            if f.attribute in attributes
        ],
        conditions=[
            schemas.ConditionRead.model_validate(c) for c in service.conditions_of(session, resident.id)
        ]
        if clinical
        else [],
        latest_observations=[
            schemas.ObservationRead.model_validate(o)
            for o in service.latest_observations(session, resident.id).values()
        ]
        if clinical
        else [],
        field_groups=sorted(groups),
    )


@router.get(
    "/residents/{resident_id}/sources", response_model=list[schemas.SourceRecordRead], openapi_extra=_REGISTRY
)
def read_sources(
    resident_id: ResidentIdPath, session: SessionDep, actor: ActorDep, clock: ClockDep
) -> list[schemas.SourceRecordRead]:
    """The agency records behind the profile: whole rows, so registry keepers only."""
    _registry(session, actor, clock(), resident_id, what="source_record")
    service.get_resident(session, resident_id)
    return [
        schemas.SourceRecordRead.model_validate(r).model_copy(
            update={
                "payload": {
                    **r.payload,
                    **{k: mask_attribute(k, getattr(r, k)) for k in ("id_number", "phone")},
                }
            }
        )
        for r in service.source_records_of(session, resident_id)
    ]


@router.get(
    "/residents/{resident_id}/history", response_model=list[schemas.FactChangeRead], openapi_extra=_REGISTRY
)
def read_history(
    resident_id: ResidentIdPath, session: SessionDep, actor: ActorDep, clock: ClockDep
) -> list[schemas.FactChangeRead]:
    _registry(session, actor, clock(), resident_id, what="fact_history")
    service.get_resident(session, resident_id)
    return [schemas.FactChangeRead.model_validate(c) for c in service.fact_history(session, resident_id)]


@router.post("/residents/merge", response_model=schemas.MergeRead, status_code=201, openapi_extra=_REGISTRY)
def merge(
    body: schemas.MergeRequest, session: SessionDep, actor: ActorDep, clock: ClockDep
) -> schemas.MergeRead:
    now = clock()
    for resident_id in (body.survivor_id, body.merged_id):
        _registry(session, actor, now, resident_id, what="resident_merge", action="update")
    record = service.merge_residents(
        session, body.survivor_id, body.merged_id, by=actor.username, reason=body.reason, now=now
    )
    return schemas.MergeRead.model_validate(record)


@router.post("/merges/{merge_id}/unmerge", response_model=schemas.MergeRead, openapi_extra=_REGISTRY)
def unmerge(merge_id: IdPath, session: SessionDep, actor: ActorDep, clock: ClockDep) -> schemas.MergeRead:
    now = clock()
    policy.require_registry(session, actor, what="resident_merge", action="update", now=now)
    record = session.get(ResidentMerge, merge_id)
    if record is not None:
        for resident_id in (record.survivor_id, record.merged_id):
            _registry(session, actor, now, resident_id, what="resident_merge", action="update")
    return schemas.MergeRead.model_validate(service.unmerge(session, merge_id, by=actor.username))


@router.get(
    "/link-reviews",
    response_model=schemas.ReviewPage,
    openapi_extra=resident_data(DataCategory.identity, many=True, registry=True),
)
def list_reviews(
    session: SessionDep,
    actor: ActorDep,
    clock: ClockDep,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> schemas.ReviewPage:
    now = clock()
    keeper = policy.require_registry(session, actor, what="link_review", now=now)
    # the registry role's scope, not another role's (a volunteer's pairing elsewhere)
    visible = policy.visible_residents(session, keeper, category=DataCategory.identity, now=now)
    total, rows = service.open_reviews(session, limit, offset, visible=visible)
    return schemas.ReviewPage(total=total, items=[schemas.ReviewRead.model_validate(r) for r in rows])


@router.post("/link-reviews/{review_id}/decision", response_model=schemas.ReviewRead, openapi_extra=_REGISTRY)
def decide_review(
    review_id: IdPath, body: schemas.ReviewDecision, session: SessionDep, actor: ActorDep, clock: ClockDep
) -> schemas.ReviewRead:
    now = clock()
    policy.require_registry(session, actor, what="link_review", action="update", now=now)
    review = session.get(LinkReview, review_id)
    if review is not None:
        for resident_id in (review.resident_id, review.candidate_id):
            _registry(session, actor, now, resident_id, what="link_review", action="update")
    decided = service.decide_review(session, review_id, same_person=body.same_person, by=actor.username)
    return schemas.ReviewRead.model_validate(decided)


def _registry(
    session: SessionDep, actor: Actor, now: dt.datetime, resident_id: int, *, what: str, action: str = "read"
) -> None:
    """Registry work: a role that keeps the registry, with the resident's identity in its scope."""
    keeper = policy.require_registry(
        session, actor, what=what, action=action, resident_id=resident_id, now=now
    )
    policy.authorize(
        session, keeper, resident_id, category=DataCategory.identity, what=what, action=action, now=now
    )

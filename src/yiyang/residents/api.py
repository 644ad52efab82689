"""Registry routes: thin, each calls one service function.

Until access control lands (users, scope, consent, audit), decisions are attributed to the
``X-Yiyang-Actor`` header or "api".
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Header, Query

from yiyang.deps import IdPath, ResidentIdPath, SessionDep
from yiyang.residents import schemas, service
from yiyang.residents.identity import age_on, mask_attribute

router = APIRouter(prefix="/api", tags=["residents"])

ActorHeader = Annotated[str, Header(alias="X-Yiyang-Actor", max_length=64)]


@router.get("/residents", response_model=schemas.ResidentPage)
def search_residents(
    session: SessionDep,
    q: Annotated[str | None, Query(max_length=64, description="name, pinyin, ID number or phone")] = None,
    community_id: Annotated[int | None, Query(ge=1, le=2_147_483_647)] = None,
    needs_review: bool | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 20,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> schemas.ResidentPage:
    total, rows = service.search_residents(
        session, q, community_id=community_id, needs_review=needs_review, limit=limit, offset=offset
    )
    return schemas.ResidentPage(total=total, items=[schemas.ResidentSummary.model_validate(r) for r in rows])


@router.get("/residents/{resident_id}", response_model=schemas.ResidentProfile)
def read_profile(resident_id: ResidentIdPath, session: SessionDep) -> schemas.ResidentProfile:
    resident = service.get_active_resident(session, resident_id)
    return schemas.ResidentProfile(
        id=resident.id,
        status=resident.status,
        merged_into_id=resident.merged_into_id,
        needs_review=resident.needs_review,
        age=age_on(resident.birth_date, dt.date.today()) if resident.birth_date else None,
        # ID number and phone masked: the unmasked value only through POST .../reveal (audited).
        facts=[
            schemas.FactRead(**{**vars(f), "value": mask_attribute(f.attribute, f.value)})
            for f in service.profile_facts(session, resident)
        ],
        conditions=[schemas.ConditionRead.model_validate(c) for c in service.conditions_of(session, resident.id)],
        latest_observations=[
            schemas.ObservationRead.model_validate(o) for o in service.latest_observations(session, resident.id).values()
        ],
    )


@router.get("/residents/{resident_id}/sources", response_model=list[schemas.SourceRecordRead])
def read_sources(resident_id: ResidentIdPath, session: SessionDep) -> list[schemas.SourceRecordRead]:
    service.get_resident(session, resident_id)
    return [
        schemas.SourceRecordRead.model_validate(r).model_copy(
            update={"payload": {**r.payload, **{k: mask_attribute(k, getattr(r, k)) for k in ("id_number", "phone")}}}
        )
        for r in service.source_records_of(session, resident_id)
    ]


@router.get("/residents/{resident_id}/history", response_model=list[schemas.FactChangeRead])
def read_history(resident_id: ResidentIdPath, session: SessionDep) -> list[schemas.FactChangeRead]:
    service.get_resident(session, resident_id)
    return [schemas.FactChangeRead.model_validate(c) for c in service.fact_history(session, resident_id)]


@router.post("/residents/merge", response_model=schemas.MergeRead, status_code=201)
def merge(body: schemas.MergeRequest, session: SessionDep, actor: ActorHeader = "api") -> schemas.MergeRead:
    record = service.merge_residents(session, body.survivor_id, body.merged_id, by=actor, reason=body.reason)
    return schemas.MergeRead.model_validate(record)


@router.post("/merges/{merge_id}/unmerge", response_model=schemas.MergeRead)
def unmerge(merge_id: IdPath, session: SessionDep, actor: ActorHeader = "api") -> schemas.MergeRead:
    return schemas.MergeRead.model_validate(service.unmerge(session, merge_id, by=actor))


@router.get("/link-reviews", response_model=schemas.ReviewPage)
def list_reviews(
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> schemas.ReviewPage:
    total, rows = service.open_reviews(session, limit, offset)
    return schemas.ReviewPage(total=total, items=[schemas.ReviewRead.model_validate(r) for r in rows])


@router.post("/link-reviews/{review_id}/decision", response_model=schemas.ReviewRead)
def decide_review(
    review_id: IdPath, body: schemas.ReviewDecision, session: SessionDep, actor: ActorHeader = "api"
) -> schemas.ReviewRead:
    review = service.decide_review(session, review_id, same_person=body.same_person, by=actor)
    return schemas.ReviewRead.model_validate(review)

"""Assessment routes: the instrument list, capture, history, FHIR export, reassessments due.

Assessments are clinical data: every route goes through ``access.policy`` for the resident.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Query

from yiyang.access import policy
from yiyang.access.deps import ActorDep, ClockDep
from yiyang.access.policy import DataCategory, FieldGroup
from yiyang.access.routes import no_resident_data, resident_data
from yiyang.assessments import fhir, schemas, service
from yiyang.assessments.instruments import INSTRUMENTS
from yiyang.db import CHINA_TZ
from yiyang.deps import MAX_ID, IdPath, ResidentIdPath, SessionDep
from yiyang.residents.service import get_resident, listed_field_groups, require_registry_search

router = APIRouter(prefix="/api", tags=["assessments"])

_CLINICAL = resident_data(DataCategory.clinical)
# The reassessment lists name their residents: identity as well as clinical.
_CLINICAL_LIST = resident_data(DataCategory.clinical, DataCategory.identity, many=True)
CommunityQuery = Annotated[int | None, Query(ge=1, le=MAX_ID)]
Limit = Annotated[int, Query(ge=1, le=500)]
Offset = Annotated[int, Query(ge=0, le=10_000_000)]


@router.get("/instruments", openapi_extra=no_resident_data("the instruments themselves"))
def list_instruments() -> list[dict[str, Any]]:
    """Every instrument with its items and allowed values (what a capture form is built from)."""
    return [instrument.describe() for instrument in INSTRUMENTS.values()]


@router.post(
    "/residents/{resident_id}/assessments", response_model=schemas.AssessmentRead, status_code=201,
    openapi_extra=_CLINICAL,
)  # fmt: skip
def record_assessment(
    resident_id: ResidentIdPath,
    body: schemas.AssessmentCreate,
    session: SessionDep,
    actor: ActorDep,
    clock: ClockDep,
) -> schemas.AssessmentRead:
    now = clock()
    # A clinician's act: the team grant decides scope and consent, not another role the person holds.
    recorder = service.as_recorder(session, actor, resident_id, now=now)
    policy.authorize(
        session, recorder, resident_id, category=DataCategory.clinical, what="assessment", action="create", now=now
    )  # fmt: skip
    capture = service.AssessmentCapture(
        instrument=body.instrument, answers=body.answers, assessed_at=body.assessed_at, assessor=body.assessor,
        options=body.options,
    )  # fmt: skip
    assessment = service.record_assessment(session, resident_id, capture, recorded_by=actor.username)
    return schemas.AssessmentRead.model_validate(assessment)


@router.get(
    "/residents/{resident_id}/assessments",
    response_model=list[schemas.AssessmentRead],
    openapi_extra=_CLINICAL,
)
def list_assessments(
    resident_id: ResidentIdPath,
    session: SessionDep,
    actor: ActorDep,
    clock: ClockDep,
    instrument: Annotated[str | None, Query(max_length=32)] = None,
    limit: Limit = 100,
) -> list[schemas.AssessmentRead]:
    policy.authorize(
        session, actor, resident_id, category=DataCategory.clinical, what="assessment", now=clock()
    )
    get_resident(session, resident_id)
    rows = service.assessments_of(session, resident_id, instrument, limit=limit)
    return [schemas.AssessmentRead.model_validate(row) for row in rows]


@router.get("/assessments/{assessment_id}", response_model=schemas.AssessmentRead, openapi_extra=_CLINICAL)
def read_assessment(
    assessment_id: IdPath, session: SessionDep, actor: ActorDep, clock: ClockDep
) -> schemas.AssessmentRead:
    assessment = service.get_assessment(session, assessment_id)
    policy.authorize(
        session, actor, assessment.resident_id, category=DataCategory.clinical, what="assessment", now=clock()
    )
    return schemas.AssessmentRead.model_validate(assessment)


@router.get("/assessments/{assessment_id}/fhir", openapi_extra=_CLINICAL)
def assessment_as_fhir(
    assessment_id: IdPath, session: SessionDep, actor: ActorDep, clock: ClockDep
) -> dict[str, Any]:
    """A collection Bundle: the QuestionnaireResponse, and its score Observations or RiskAssessment."""
    assessment = service.get_assessment(session, assessment_id)
    policy.authorize(
        session, actor, assessment.resident_id, category=DataCategory.clinical, what="assessment", now=clock()
    )
    return fhir.assessment_bundle(assessment)


@router.get(
    "/capability-reassessments/due", response_model=schemas.ReassessmentDuePage, openapi_extra=_CLINICAL_LIST
)
def reassessments_due(
    session: SessionDep,
    actor: ActorDep,
    clock: ClockDep,
    community_id: CommunityQuery = None,
    within_days: Annotated[int, Query(ge=0, le=366)] = 30,
    limit: Limit = 50,
    offset: Offset = 0,
) -> schemas.ReassessmentDuePage:
    """Residents whose capability assessment is overdue, due soon, or overtaken by a change."""
    now = clock()
    today = now.astimezone(CHINA_TZ).date()
    visible = policy.named_residents(session, actor, category=DataCategory.clinical, now=now)
    total, items = service.capability_reassessments_due(
        session, today=today, within_days=within_days, community_id=community_id, limit=limit, offset=offset,
        visible=visible,
    )  # fmt: skip
    return schemas.ReassessmentDuePage(
        total=total, items=[schemas.ReassessmentDueRead.model_validate(i) for i in items]
    )


@router.get(
    "/capability-reassessments/never", response_model=schemas.NeverAssessedPage, openapi_extra=_CLINICAL_LIST
)
def never_assessed(
    session: SessionDep,
    actor: ActorDep,
    clock: ClockDep,
    community_id: CommunityQuery = None,
    min_age: Annotated[int, Query(ge=0, le=120)] = service.NEVER_ASSESSED_MIN_AGE,
    limit: Limit = 50,
    offset: Offset = 0,
) -> schemas.NeverAssessedPage:
    """Residents of ``min_age`` or more with no capability assessment yet.

    The birth date is the registry group's (as on the profile): a reader without it gets none, the
    list in resident order (oldest first would rank their birthdays), and only the default age, as
    another ``min_age`` is a search by birth date, refused as the registry refuses it."""
    now = clock()
    today: dt.date = now.astimezone(CHINA_TZ).date()
    registry = FieldGroup.registry in listed_field_groups(actor)
    if min_age != service.NEVER_ASSESSED_MIN_AGE:
        require_registry_search(session, actor, searched="birth_date", what="never_assessed", now=now)
    visible = policy.named_residents(session, actor, category=DataCategory.clinical, now=now)
    total, rows = service.never_assessed(
        session, today=today, min_age=min_age, community_id=community_id, limit=limit, offset=offset,
        visible=visible, by_birth_date=registry,
    )  # fmt: skip
    items = [schemas.NeverAssessedRead.model_validate(r) for r in rows]
    if not registry:
        items = [item.model_copy(update={"birth_date": None}) for item in items]
    return schemas.NeverAssessedPage(total=total, items=items)

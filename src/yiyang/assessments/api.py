"""Assessment routes: the instrument list, capture, history, FHIR export, reassessments due.

Until access control is wired into these routes, the recording user is the ``X-Yiyang-Actor``
header (or "api"), as in the registry routes.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query

from yiyang.assessments import fhir, schemas, service
from yiyang.assessments.instruments import INSTRUMENTS
from yiyang.db import utcnow
from yiyang.deps import MAX_ID, IdPath, ResidentIdPath, SessionDep
from yiyang.residents.service import get_resident

router = APIRouter(prefix="/api", tags=["assessments"])

ActorHeader = Annotated[str, Header(alias="X-Yiyang-Actor", max_length=64)]
CommunityQuery = Annotated[int | None, Query(ge=1, le=MAX_ID)]
Limit = Annotated[int, Query(ge=1, le=500)]
Offset = Annotated[int, Query(ge=0, le=10_000_000)]


@router.get("/instruments")
def list_instruments() -> list[dict[str, Any]]:
    """Every instrument with its items and allowed values (what a capture form is built from)."""
    return [instrument.describe() for instrument in INSTRUMENTS.values()]


@router.post("/residents/{resident_id}/assessments", response_model=schemas.AssessmentRead, status_code=201)
def record_assessment(
    resident_id: ResidentIdPath,
    body: schemas.AssessmentCreate,
    session: SessionDep,
    actor: ActorHeader = "api",
) -> schemas.AssessmentRead:
    capture = service.AssessmentCapture(
        instrument=body.instrument, answers=body.answers, assessed_at=body.assessed_at, assessor=body.assessor,
        options=body.options,
    )  # fmt: skip
    assessment = service.record_assessment(session, resident_id, capture, recorded_by=actor)
    return schemas.AssessmentRead.model_validate(assessment)


@router.get("/residents/{resident_id}/assessments", response_model=list[schemas.AssessmentRead])
def list_assessments(
    resident_id: ResidentIdPath,
    session: SessionDep,
    instrument: Annotated[str | None, Query(max_length=32)] = None,
    limit: Limit = 100,
) -> list[schemas.AssessmentRead]:
    get_resident(session, resident_id)
    rows = service.assessments_of(session, resident_id, instrument, limit=limit)
    return [schemas.AssessmentRead.model_validate(row) for row in rows]


@router.get("/assessments/{assessment_id}", response_model=schemas.AssessmentRead)
def read_assessment(assessment_id: IdPath, session: SessionDep) -> schemas.AssessmentRead:
    return schemas.AssessmentRead.model_validate(service.get_assessment(session, assessment_id))


@router.get("/assessments/{assessment_id}/fhir")
def assessment_as_fhir(assessment_id: IdPath, session: SessionDep) -> dict[str, Any]:
    """A collection Bundle: the QuestionnaireResponse, and its score Observations or RiskAssessment."""
    return fhir.assessment_bundle(service.get_assessment(session, assessment_id))


@router.get("/capability-reassessments/due", response_model=schemas.ReassessmentDuePage)
def reassessments_due(
    session: SessionDep,
    community_id: CommunityQuery = None,
    within_days: Annotated[int, Query(ge=0, le=366)] = 30,
    limit: Limit = 50,
    offset: Offset = 0,
) -> schemas.ReassessmentDuePage:
    """Residents whose capability assessment is overdue, due soon, or overtaken by a change."""
    today = utcnow().astimezone(service.LOCAL_TZ).date()
    total, items = service.capability_reassessments_due(
        session, today=today, within_days=within_days, community_id=community_id, limit=limit, offset=offset
    )
    return schemas.ReassessmentDuePage(
        total=total, items=[schemas.ReassessmentDueRead.model_validate(i) for i in items]
    )


@router.get("/capability-reassessments/never", response_model=schemas.NeverAssessedPage)
def never_assessed(
    session: SessionDep,
    community_id: CommunityQuery = None,
    min_age: Annotated[int, Query(ge=0, le=120)] = 65,
    limit: Limit = 50,
    offset: Offset = 0,
) -> schemas.NeverAssessedPage:
    """Residents of ``min_age`` or more with no capability assessment yet."""
    today: dt.date = utcnow().astimezone(service.LOCAL_TZ).date()
    total, rows = service.never_assessed(
        session, today=today, min_age=min_age, community_id=community_id, limit=limit, offset=offset
    )
    return schemas.NeverAssessedPage(
        total=total, items=[schemas.NeverAssessedRead.model_validate(r) for r in rows]
    )

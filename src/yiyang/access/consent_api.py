"""Consent and break-the-glass routes. Thin: the work is in consent.py and break_glass.py."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from yiyang.access import break_glass, consent
from yiyang.access.consent_models import BreakGlassVerdict, ConsentDecision
from yiyang.access.deps import ActorDep, ClockDep
from yiyang.access.policy import DataCategory, Purpose, RecipientClass
from yiyang.access.routes import resident_data
from yiyang.access.schemas import (
    BreakGlassOpen,
    BreakGlassPage,
    BreakGlassRead,
    BreakGlassReview,
    ConsentCreate,
    ConsentRead,
)
from yiyang.deps import IdPath, ResidentIdPath, SessionDep

router = APIRouter(prefix="/api", tags=["consent"])
_IDENTITY = resident_data(DataCategory.identity)


@router.get("/residents/{resident_id}/consents", response_model=list[ConsentRead], openapi_extra=_IDENTITY)
def list_consents(
    resident_id: ResidentIdPath,
    session: SessionDep,
    actor: ActorDep,
    clock: ClockDep,
    in_force: Annotated[bool, Query(description="only the decisions in force now")] = False,
) -> list[ConsentRead]:
    rows = consent.consent_history(session, actor, resident_id, clock(), only_in_force=in_force)
    return [ConsentRead.model_validate(row) for row in rows]


@router.post(
    "/residents/{resident_id}/consents", response_model=ConsentRead, status_code=201, openapi_extra=_IDENTITY
)
def record_consent(
    resident_id: ResidentIdPath, body: ConsentCreate, session: SessionDep, actor: ActorDep, clock: ClockDep
) -> ConsentRead:
    """The resident, an authorised family member, or staff entering a signed paper form."""
    row = consent.record_consent(
        session, actor, resident_id, category=DataCategory(body.category),
        recipient_class=RecipientClass(body.recipient_class), purpose=Purpose(body.purpose),
        decision=ConsentDecision(body.decision), now=clock(), valid_from=body.valid_from,
        valid_until=body.valid_until, note=body.note,
    )  # fmt: skip
    return ConsentRead.model_validate(row)


@router.post("/consents/{consent_id}/revoke", response_model=ConsentRead, openapi_extra=_IDENTITY)
def revoke_consent(consent_id: IdPath, session: SessionDep, actor: ActorDep, clock: ClockDep) -> ConsentRead:
    return ConsentRead.model_validate(consent.revoke_consent(session, actor, consent_id, clock()))


@router.post(
    "/residents/{resident_id}/break-glass",
    response_model=BreakGlassRead,
    status_code=201,
    openapi_extra=resident_data(DataCategory.clinical),
)
def open_break_glass(
    resident_id: ResidentIdPath, body: BreakGlassOpen, session: SessionDep, actor: ActorDep, clock: ClockDep
) -> BreakGlassRead:
    """Open a resident outside your scope in an emergency, with a reason, for a limited time."""
    opened = break_glass.open_break_glass(session, actor, resident_id, body.reason, clock())
    return BreakGlassRead.model_validate(opened)


@router.get(
    "/break-glass",
    response_model=BreakGlassPage,
    openapi_extra=resident_data(DataCategory.identity, many=True),
)
def list_break_glass(
    session: SessionDep,
    actor: ActorDep,
    clock: ClockDep,
    unreviewed: bool = False,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> BreakGlassPage:
    """For officers: who opened whom, why, when, and the review so far."""
    total, rows = break_glass.list_break_glass(
        session, actor, clock(), unreviewed_only=unreviewed, limit=limit, offset=offset
    )
    return BreakGlassPage(total=total, items=[BreakGlassRead.model_validate(r) for r in rows])


@router.post(
    "/break-glass/{opening_id}/review",
    response_model=BreakGlassRead,
    openapi_extra=resident_data(DataCategory.identity),
)
def review_break_glass(
    opening_id: IdPath, body: BreakGlassReview, session: SessionDep, actor: ActorDep, clock: ClockDep
) -> BreakGlassRead:
    reviewed = break_glass.review_break_glass(
        session, actor, opening_id, BreakGlassVerdict(body.verdict), body.note, clock()
    )
    return BreakGlassRead.model_validate(reviewed)

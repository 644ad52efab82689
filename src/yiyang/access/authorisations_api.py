"""Family authorisations (数据授权) over HTTP. Thin: who may record, revoke and read them, and the
audit rows, are ``authorisations.py``'s (through the policy)."""

from __future__ import annotations

from fastapi import APIRouter

from yiyang.access import authorisations
from yiyang.access.deps import ActorDep, ClockDep
from yiyang.access.models import User
from yiyang.access.policy import DataCategory
from yiyang.access.routes import resident_data
from yiyang.access.schemas import AuthorisationCreate, AuthorisationRead
from yiyang.deps import IdPath, ResidentIdPath, SessionDep

router = APIRouter(tags=["consent"])
IDENTITY = resident_data(DataCategory.identity)
REFUSALS = {403: {}, 404: {}, 409: {}, 422: {}}


@router.get(
    "/api/residents/{resident_id}/authorisations", response_model=list[AuthorisationRead], responses=REFUSALS,
    openapi_extra=IDENTITY,
)  # fmt: skip
def list_authorisations(
    resident_id: ResidentIdPath, session: SessionDep, actor: ActorDep, clock: ClockDep
) -> list[AuthorisationRead]:
    """家属授权: who the resident lets act for them, in force and ended, newest first."""
    now = clock()
    rows = authorisations.authorisations_of(session, actor, resident_id, now=now)
    return [AuthorisationRead.of(authorisation, grantee, now) for authorisation, grantee in rows]


@router.post(
    "/api/residents/{resident_id}/authorisations", response_model=AuthorisationRead, status_code=201,
    responses=REFUSALS, openapi_extra=IDENTITY,
)  # fmt: skip
def authorise(
    resident_id: ResidentIdPath,
    body: AuthorisationCreate,
    session: SessionDep,
    actor: ActorDep,
    clock: ClockDep,
) -> AuthorisationRead:
    """授权家属: by the resident, or staff entering the signed form."""
    now = clock()
    authorisation = authorisations.authorise(
        session, actor, resident_id, body.grantee_username, body.kinship, valid_from=body.valid_from,
        valid_until=body.valid_until, now=now,
    )  # fmt: skip
    grantee = session.get(User, authorisation.grantee_id)
    assert grantee is not None
    return AuthorisationRead.of(authorisation, grantee, now)


@router.post(
    "/api/authorisations/{authorisation_id}/revoke", response_model=AuthorisationRead, responses=REFUSALS,
    openapi_extra=IDENTITY,
)  # fmt: skip
def revoke(
    authorisation_id: IdPath, session: SessionDep, actor: ActorDep, clock: ClockDep
) -> AuthorisationRead:
    """撤销授权: from now on; by the resident, staff entering the signed form, or the family member."""
    now = clock()
    authorisation = authorisations.revoke(session, actor, authorisation_id, now=now)
    grantee = session.get(User, authorisation.grantee_id)
    assert grantee is not None
    return AuthorisationRead.of(authorisation, grantee, now)

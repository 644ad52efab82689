"""Family authorisations (数据授权) on the resident's profile: who may act for her, and the form
staff fill in from the signed authorisation (or the resident herself). Thin: every decision and
audit row is ``access.authorisations``'s."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from sqlalchemy.orm import Session

from yiyang.access import authorisations
from yiyang.access.actor import Actor
from yiyang.access.consent import PAPER_FORM_ROLES
from yiyang.access.deps import ClockDep
from yiyang.access.policy import DataCategory
from yiyang.access.roles import Role
from yiyang.access.routes import resident_data
from yiyang.db import CHINA_TZ
from yiyang.deps import IdPath, ResidentIdPath, SessionDep, request_day
from yiyang.errors import DomainError, Forbidden, Invalid
from yiyang.web.actor import WebActorDep
from yiyang.web.pages import render

router = APIRouter(include_in_schema=False)


def family_panel(session: Session, actor: Actor, resident_id: int, now: dt.datetime) -> dict[str, Any]:
    """The profile's 家属授权 card: the authorisations (read through the policy, audited) and
    whether this reader may record one; nothing when the reader may not read them."""
    try:
        rows = authorisations.authorisations_of(session, actor, resident_id, now=now)
    except Forbidden:
        return {"family": None}
    own = actor.has_role(Role.resident) and actor.resident_id == resident_id
    return {
        "family": [(a, grantee, authorisations.in_force(a, now)) for a, grantee in rows],
        "may_authorise": own or bool(actor.acting_as(PAPER_FORM_ROLES).grants),
        "kinships": authorisations.KINSHIPS,
    }


def _back(resident_id: int, done: str) -> RedirectResponse:
    return RedirectResponse(f"/residents/{resident_id}?done={done}#family", status_code=303)


def _problem(request: Request, error: DomainError, back: str | None = None) -> HTMLResponse:
    # A mistyped account or date is a problem to fix, not a refusal: the page says which, and leads back.
    heading = None if error.status_code == 403 else "error.problem"
    return render(
        request,
        "forbidden.html",
        status_code=error.status_code,
        message=error.message,
        heading=heading,
        back=back,
    )


@router.post(
    "/residents/{resident_id}/authorisations", response_model=None,
    openapi_extra=resident_data(DataCategory.identity),
)  # fmt: skip
def authorise_page(
    request: Request,
    resident_id: ResidentIdPath,
    session: SessionDep,
    actor: WebActorDep,
    clock: ClockDep,
    grantee_username: Annotated[str, Form(max_length=64)],
    kinship: Annotated[str, Form(max_length=32)],
    valid_until: Annotated[str, Form(max_length=10)] = "",
) -> HTMLResponse | RedirectResponse:
    now = clock()
    try:
        until = None
        if valid_until:
            try:
                day = request_day(dt.date.fromisoformat(valid_until))
            except ValueError:
                raise Invalid("request.date", "日期应为 YYYY-MM-DD (a date is YYYY-MM-DD)") from None
            # the form's last day, to its end in China time
            until = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), CHINA_TZ)
        authorisations.authorise(
            session, actor, resident_id, grantee_username, kinship, valid_until=until, now=now
        )
    except DomainError as error:
        session.rollback()
        return _problem(request, error, back=f"/residents/{resident_id}#family")
    return _back(resident_id, "authorised")


@router.post(
    "/authorisations/{authorisation_id}/revoke", response_model=None,
    openapi_extra=resident_data(DataCategory.identity),
)  # fmt: skip
def revoke_page(
    request: Request, authorisation_id: IdPath, session: SessionDep, actor: WebActorDep, clock: ClockDep
) -> HTMLResponse | RedirectResponse:
    try:
        ended = authorisations.revoke(session, actor, authorisation_id, now=clock())
    except DomainError as error:
        session.rollback()
        return _problem(request, error)
    return _back(ended.resident_id, "revoked")

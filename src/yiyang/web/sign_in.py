"""Staff sign-in for the web (登录): a form that opens a cookie session, and sign-out."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from yiyang.access import service, tokens
from yiyang.access.actor import CredentialKind
from yiyang.access.deps import ClockDep
from yiyang.access.routes import no_resident_data
from yiyang.deps import SessionDep
from yiyang.web.actor import WebActorDep, safe_next
from yiyang.web.pages import render

router = APIRouter(include_in_schema=False)


@router.get("/login", response_class=HTMLResponse, openapi_extra=no_resident_data("the sign-in form"))
def login_page(request: Request, next: str | None = None) -> HTMLResponse:  # noqa: A002 - the query's name
    return render(request, "login.html", next=safe_next(next), error=None, username="")


@router.post("/login", response_model=None, openapi_extra=no_resident_data("signing in"))
def login_form(
    request: Request,
    session: SessionDep,
    clock: ClockDep,
    username: Annotated[str, Form(max_length=64)],
    password: Annotated[str, Form(max_length=256)],
    next: Annotated[str | None, Form(max_length=500)] = None,  # noqa: A002
) -> HTMLResponse | RedirectResponse:
    settings = request.app.state.settings
    now = clock()
    address = request.client.host if request.client else "unknown"
    outcome = service.attempt_sign_in(
        session, username, password, address, service.throttle_policy(settings), now
    )
    if outcome.retry_after is not None:
        refusal = service.SignInThrottled(outcome.retry_after)
        response = render(
            request,
            "login.html",
            status_code=429,
            next=safe_next(next),
            error=refusal.message,
            username=username,
        )
        response.headers.update(refusal.headers)
        return response
    if outcome.user is None:
        return render(  # the failed attempt commits with this answer, so it counts; the name typed stays
            request, "login.html", status_code=401, next=safe_next(next), error=service.WRONG_CREDENTIALS[1],
            username=username,
        )  # fmt: skip
    ttl = dt.timedelta(hours=settings.session_ttl_hours)
    issued = service.issue_credential(session, outcome.user, CredentialKind.session, ttl, now)
    redirect = RedirectResponse(safe_next(next), status_code=303)
    redirect.set_cookie(
        tokens.SESSION_COOKIE, issued.secret, max_age=int(ttl.total_seconds()), httponly=True, samesite="lax",
        secure=settings.environment == "production", path="/",
    )  # fmt: skip
    return redirect


@router.post("/logout", openapi_extra=no_resident_data("signing out"))
def logout_form(actor: WebActorDep, session: SessionDep, clock: ClockDep) -> RedirectResponse:
    if actor.credential_id:
        service.revoke_credential(session, actor.credential_id, clock())
    redirect = RedirectResponse("/login", status_code=303)
    redirect.delete_cookie(tokens.SESSION_COOKIE, path="/")
    return redirect

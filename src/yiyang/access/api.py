"""Sign-in routes under /api/auth. Thin: the work is in service.py."""

from __future__ import annotations

import datetime as dt

from fastapi import APIRouter, Request, Response

from yiyang.access import accounts, service, tokens
from yiyang.access.actor import CredentialKind
from yiyang.access.deps import ActorDep, ClockDep
from yiyang.access.routes import no_resident_data
from yiyang.access.schemas import (
    ActorRead,
    CredentialsRevoked,
    LoginRequest,
    LoginResponse,
    PasswordChange,
    SignOutResult,
)
from yiyang.config import Settings
from yiyang.deps import SessionDep

router = APIRouter(prefix="/api/auth", tags=["auth"])


def _settings(request: Request) -> Settings:
    return request.app.state.settings


def _client_address(request: Request) -> str:
    # Behind a proxy, run uvicorn with --proxy-headers/--forwarded-allow-ips so this is the caller.
    return request.client.host if request.client else "unknown"


@router.post(
    "/login",
    response_model=LoginResponse,
    responses={401: {}, 429: {}},
    openapi_extra=no_resident_data("sign-in"),
)
def login(body: LoginRequest, request: Request, response: Response, session: SessionDep, clock: ClockDep):
    settings = _settings(request)
    now = clock()
    outcome = service.attempt_sign_in(
        session,
        body.username,
        body.password,
        _client_address(request),
        service.throttle_policy(settings),
        now,
    )
    if outcome.retry_after is not None:
        raise service.SignInThrottled(outcome.retry_after)
    if outcome.user is None:
        session.commit()  # the failure must count even though this request is refused
        raise service.Unauthorized(*service.WRONG_CREDENTIALS)

    user = outcome.user
    if body.client == "web":
        ttl = dt.timedelta(hours=settings.session_ttl_hours)
        issued = service.issue_credential(session, user, CredentialKind.session, ttl, now)
        response.set_cookie(
            tokens.SESSION_COOKIE,
            issued.secret,
            max_age=int(ttl.total_seconds()),
            httponly=True,
            samesite="lax",
            secure=settings.environment == "production",
            path="/",
        )
        actor = service.load_actor(
            session, user.id, now, via=CredentialKind.session, credential_id=issued.credential.id
        )
        csrf = tokens.csrf_token_for(issued.secret)
        return LoginResponse(
            expires_at=issued.credential.expires_at, csrf_token=csrf, actor=ActorRead.of(actor, csrf)
        )

    ttl = dt.timedelta(hours=settings.token_ttl_hours)
    issued = service.issue_credential(session, user, CredentialKind.bearer, ttl, now, label=body.label)
    actor = service.load_actor(
        session, user.id, now, via=CredentialKind.bearer, credential_id=issued.credential.id
    )
    return LoginResponse(
        expires_at=issued.credential.expires_at,
        token=issued.secret,
        token_type="bearer",
        actor=ActorRead.of(actor),
    )


@router.post("/logout", response_model=SignOutResult, openapi_extra=no_resident_data("sign-out"))
def logout(actor: ActorDep, response: Response, session: SessionDep, clock: ClockDep) -> SignOutResult:
    revoked = service.revoke_credential(session, actor.credential_id, clock()) if actor.credential_id else 0
    if actor.via is CredentialKind.session:
        response.delete_cookie(tokens.SESSION_COOKIE, path="/")
    return SignOutResult(revoked=revoked)


@router.post("/logout-all", response_model=SignOutResult, openapi_extra=no_resident_data("sign-out"))
def logout_all(actor: ActorDep, response: Response, session: SessionDep, clock: ClockDep) -> SignOutResult:
    """Sign out everywhere: every token and session of this user."""
    assert actor.user_id is not None
    revoked = service.revoke_all_credentials(session, actor.user_id, clock())
    if actor.via is CredentialKind.session:
        response.delete_cookie(tokens.SESSION_COOKIE, path="/")
    return SignOutResult(revoked=revoked)


@router.post(
    "/password",
    response_model=CredentialsRevoked,
    responses={403: {}, 422: {}, 429: {}},
    openapi_extra=no_resident_data("one's own password"),
)
def change_password(
    body: PasswordChange, request: Request, session: SessionDep, actor: ActorDep, clock: ClockDep
) -> CredentialsRevoked:
    """修改密码: prove the current password; every other token and session is signed out."""
    revoked = accounts.change_own_password(
        session,
        actor,
        body.current_password,
        body.new_password,
        client_address=_client_address(request),
        throttle=service.throttle_policy(_settings(request)),
        now=clock(),
    )
    return CredentialsRevoked(revoked=revoked)


@router.get("/me", response_model=ActorRead, openapi_extra=no_resident_data("who is signed in"))
def me(actor: ActorDep, request: Request) -> ActorRead:
    csrf = None
    if actor.via is CredentialKind.session:
        csrf = tokens.csrf_token_for(request.cookies[tokens.SESSION_COOKIE])
    return ActorRead.of(actor, csrf)

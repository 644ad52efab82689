"""Request dependencies other domains use: ``ActorDep`` (the signed-in actor) and the clock.

A bearer token wins over a cookie. A cookie-authenticated request with an unsafe method must
carry the session's CSRF token in ``X-CSRF-Token`` (see tokens.py); a bearer request need not,
because a browser never attaches a bearer token on its own.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from yiyang.access import service, tokens
from yiyang.access.actor import Actor, CredentialKind
from yiyang.db import utcnow
from yiyang.deps import SessionDep
from yiyang.errors import Forbidden

Clock = Callable[[], dt.datetime]
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")


def get_clock(request: Request) -> Clock:
    """The app's clock: ``app.state.clock`` when a test sets one, else the real time."""
    return getattr(request.app.state, "clock", utcnow)


def request_id(request: Request) -> str:
    """The caller's X-Request-ID when it is a plain token, else a new one; kept for the request."""
    existing = getattr(request.state, "request_id", None)
    if existing:
        return existing
    offered = request.headers.get("x-request-id", "")
    value = offered if _REQUEST_ID.fullmatch(offered) else uuid.uuid4().hex
    request.state.request_id = value
    return value


def current_actor(request: Request, session: SessionDep) -> Actor:
    """The signed-in actor, or 401 (``auth.required`` / ``auth.invalid``); 403 ``auth.csrf``."""
    return resolve_actor(request, session, request.headers.get(tokens.CSRF_HEADER))


def resolve_actor(request: Request, session: Session, csrf_offered: str | None) -> Actor:
    """As ``current_actor``, with the CSRF token taken from wherever the caller found it (a header,
    or a staff page's form field)."""
    now = get_clock(request)()
    authorization = request.headers.get("authorization")
    if authorization:
        secret = tokens.bearer_from_header(authorization)
        if secret is None:
            raise service.Unauthorized("auth.scheme", "仅支持 Bearer 令牌 (only Bearer tokens are accepted)")
        kind = CredentialKind.bearer
    else:
        secret = request.cookies.get(tokens.SESSION_COOKIE)
        if not secret:
            raise service.Unauthorized("auth.required", "请先登录 (sign-in required)")
        kind = CredentialKind.session
    credential = service.find_credential(session, secret, kind, now)
    if credential is None:
        raise service.Unauthorized(
            "auth.invalid", "登录已失效，请重新登录 (credential unknown, expired or revoked)"
        )
    unsafe = request.method in tokens.UNSAFE_METHODS
    if kind is CredentialKind.session and unsafe and not tokens.csrf_matches(secret, csrf_offered):
        raise Forbidden("auth.csrf", "缺少或错误的 CSRF 令牌 (missing or wrong CSRF token)")
    actor = service.load_actor(
        session,
        credential.user_id,
        now,
        via=kind,
        credential_id=credential.id,
        request_id=request_id(request),
    )
    request.state.actor = actor
    return actor


ActorDep = Annotated[Actor, Depends(current_actor)]
ClockDep = Annotated[Clock, Depends(get_clock)]

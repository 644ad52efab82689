"""The staff pages' actor: the session cookie's user, or a redirect to the sign-in page.

A page's POST form carries the session's CSRF token in a hidden ``csrf_token`` field
(``csrf_field()`` in templates), checked like the ``X-CSRF-Token`` header of the JSON API.
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote

from fastapi import Depends, Request
from starlette.concurrency import run_in_threadpool

from yiyang.access import service, tokens
from yiyang.access.actor import Actor, CredentialKind
from yiyang.access.deps import resolve_actor
from yiyang.deps import SessionDep
from yiyang.errors import DomainError


class SignInRequired(DomainError):
    """Answered as a redirect to the sign-in page, coming back to where the person was going."""

    status_code = 303


def safe_next(target: str | None) -> str:
    # Only a path on this site: never an absolute URL an attacker chose.
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/residents"
    return target


async def web_actor(request: Request, session: SessionDep) -> Actor:
    offered = request.headers.get(tokens.CSRF_HEADER)
    if offered is None and request.method in tokens.UNSAFE_METHODS:
        form = await request.form()
        value = form.get("csrf_token")
        offered = value if isinstance(value, str) else None
    try:
        actor = await run_in_threadpool(resolve_actor, request, session, offered)
    except service.Unauthorized:
        wanted = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise SignInRequired(
            "auth.required",
            "请先登录 (sign-in required)",
            headers={"Location": f"/login?next={quote(wanted)}"},
        ) from None
    if actor.via is CredentialKind.session:
        request.state.csrf_token = tokens.csrf_token_for(request.cookies[tokens.SESSION_COOKIE])
    return actor


WebActorDep = Annotated[Actor, Depends(web_actor)]

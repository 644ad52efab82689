"""A resident's page: who accessed my record (谁查看了我的档案). Thin: calls
``access.audit_search.access_log`` (which checks and audits) and renders a template.

For the signed-in resident, or a family member with ``?resident_id=`` of a resident who
authorises them; anyone else is refused (and the refusal audited).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse

from yiyang.access import audit_search
from yiyang.access.deps import ClockDep
from yiyang.access.policy import DataCategory
from yiyang.access.routes import resident_data
from yiyang.deps import MAX_ID, SessionDep
from yiyang.errors import Forbidden
from yiyang.web.actor import WebActorDep
from yiyang.web.pages import render

router = APIRouter(include_in_schema=False)
PAGE_SIZE = 50


@router.get("/my/access-log", response_class=HTMLResponse, openapi_extra=resident_data(DataCategory.identity))
def access_log_page(
    request: Request,
    session: SessionDep,
    actor: WebActorDep,
    clock: ClockDep,
    resident_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
) -> HTMLResponse:
    chosen = resident_id or actor.resident_id or (actor.acts_for[0] if actor.acts_for else None)
    if chosen is None:
        return render(
            request, "access_log.html", status_code=403, refused=True, entries=[], total=0, page=1, pages=1
        )
    try:
        total, entries = audit_search.access_log(
            session, actor, chosen, limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE, now=clock()
        )
    except Forbidden:
        session.commit()  # the refused attempt stays in the audit trail
        return render(
            request, "access_log.html", status_code=403, refused=True, entries=[], total=0, page=1, pages=1
        )
    pages = max(1, (total + PAGE_SIZE - 1) // PAGE_SIZE)
    return render(
        request, "access_log.html", refused=False, entries=entries, total=total, page=page, pages=pages,
        resident_id=chosen, acts_for=actor.acts_for,
    )  # fmt: skip

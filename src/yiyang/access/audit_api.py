"""Routes over protected data and its trail: reveal a masked field, search and export the audit
trail, and a resident's view of who accessed their record. Thin: the work is in reveal.py and
audit_search.py.

Declarations (``access/routes.py``): a reveal and a resident's access log are identity data of one
resident; the audit search and its exports list events naming residents, filtered for officers by
``visible_residents`` (identity) and whole for district administrators.

A refusal writes a denied audit row into the request's session; these routes commit it before
answering 403, so the refused attempt is kept although the request fails.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response
from sqlalchemy.orm import Session

from yiyang.access import audit_search, reveal
from yiyang.access.deps import ActorDep, ClockDep
from yiyang.access.models import AuditAction, AuditOutcome
from yiyang.access.policy import DataCategory
from yiyang.access.routes import resident_data
from yiyang.access.schemas import (
    AccessEntryRead,
    AccessLogPage,
    AuditEventRead,
    AuditPage,
    RevealRequest,
    RevealResponse,
)
from yiyang.deps import MAX_ID, ResidentIdPath, SessionDep
from yiyang.errors import Forbidden, Invalid

router = APIRouter(tags=["access"])
IDENTITY = resident_data(DataCategory.identity)
EVENTS = resident_data(DataCategory.identity, many=True)

NO_STORE = {"Cache-Control": "no-store"}
BoundedId = Annotated[int | None, Query(ge=1, le=MAX_ID)]
Moment = Annotated[dt.datetime | None, Query(description="ISO 8601; without a zone it is UTC")]


@contextmanager
def _keeping_refusals(session: Session) -> Iterator[None]:
    try:
        yield
    except Forbidden:
        session.commit()  # the denied audit row outlives the refused request
        raise


def _utc(moment: dt.datetime | None) -> dt.datetime | None:
    if moment is None:
        return None
    try:
        return moment.replace(tzinfo=dt.UTC) if moment.tzinfo is None else moment.astimezone(dt.UTC)
    except OverflowError:  # 9999-12-31T23:00-05:00 has no UTC moment
        raise Invalid("request.datetime", "时间超出范围 (time out of range)") from None


@router.post(
    "/api/residents/{resident_id}/reveal",
    response_model=RevealResponse,
    responses={403: {}, 404: {}, 422: {}},
    openapi_extra=IDENTITY,
)
def reveal_field(
    resident_id: ResidentIdPath, body: RevealRequest, response: Response, session: SessionDep, actor: ActorDep,
    clock: ClockDep,
) -> RevealResponse:  # fmt: skip
    """查看完整身份证号或电话: the unmasked value, for roles allowed to see it, audited with the reason."""
    now = clock()
    with _keeping_refusals(session):
        value = reveal.reveal(
            session, actor, resident_id, reveal.RevealableField(body.field), body.reason, now=now
        )
    response.headers.update(NO_STORE)
    return RevealResponse(resident_id=resident_id, field=body.field, value=value, revealed_at=now)


def _query(
    resident_id: BoundedId = None,
    user_id: BoundedId = None,
    since: Moment = None,
    until: Moment = None,
    action: AuditAction | None = None,
    outcome: AuditOutcome | None = None,
) -> audit_search.AuditQuery:
    return audit_search.AuditQuery(
        resident_id=resident_id,
        user_id=user_id,
        since=_utc(since),
        until=_utc(until),
        action=action,
        outcome=outcome,
    )


AuditFilter = Annotated[audit_search.AuditQuery, Depends(_query)]  # the same filters on search and exports


@router.get("/api/audit/events", response_model=AuditPage, responses={403: {}}, openapi_extra=EVENTS)
def search_audit(
    session: SessionDep,
    actor: ActorDep,
    clock: ClockDep,
    query: AuditFilter,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> AuditPage:
    """审计查询: officers search the trail by resident, user, time, action and outcome (newest first)."""
    with _keeping_refusals(session):
        total, rows = audit_search.search_events(
            session, actor, query, limit=limit, offset=offset, now=clock()
        )
    return AuditPage(total=total, items=[AuditEventRead.model_validate(row) for row in rows])


def _export(session: Session, actor, clock, query: audit_search.AuditQuery, kind: str) -> Response:  # type: ignore[no-untyped-def]
    with _keeping_refusals(session):
        rows = audit_search.export_events(session, actor, query, now=clock())
    stamp = clock().strftime("%Y%m%dT%H%M%SZ")
    if kind == "csv":
        body, media = audit_search.as_csv(rows), "text/csv; charset=utf-8"
    else:
        body, media = (
            audit_search.as_xlsx(rows),
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        )
    headers = {"Content-Disposition": f'attachment; filename="audit-{stamp}.{kind}"', **NO_STORE}
    return Response(body, media_type=media, headers=headers)


@router.get(
    "/api/audit/events.csv",
    response_class=Response,
    responses={200: {"content": {"text/csv": {}}}, 403: {}},
    openapi_extra=EVENTS,
)
def export_audit_csv(
    session: SessionDep,
    actor: ActorDep,
    clock: ClockDep,
    query: AuditFilter,
) -> Response:
    """审计导出 (CSV, UTF-8 with BOM for Excel); the export is itself audited."""
    return _export(session, actor, clock, query, "csv")


@router.get("/api/audit/events.xlsx", response_class=Response, responses={403: {}}, openapi_extra=EVENTS)
def export_audit_xlsx(
    session: SessionDep,
    actor: ActorDep,
    clock: ClockDep,
    query: AuditFilter,
) -> Response:
    """审计导出 (Excel workbook); the export is itself audited."""
    return _export(session, actor, clock, query, "xlsx")


@router.get(
    "/api/residents/{resident_id}/access-log",
    response_model=AccessLogPage,
    responses={403: {}},
    openapi_extra=IDENTITY,
)
def read_access_log(
    resident_id: ResidentIdPath,
    session: SessionDep,
    actor: ActorDep,
    clock: ClockDep,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> AccessLogPage:
    """谁查看了我的档案: for the resident or an authorised family member; audited."""
    with _keeping_refusals(session):
        total, entries = audit_search.access_log(
            session, actor, resident_id, limit=limit, offset=offset, now=clock()
        )
    return AccessLogPage(total=total, items=[AccessEntryRead.model_validate(entry) for entry in entries])

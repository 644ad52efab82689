"""Alert routes: lists and detail (scoped by access policy), acknowledge and resolve, the inbox
with its live stream, and the rule overrides (district and tier: administrators; one resident:
their family-doctor team). Thin: the services do the work.

Every route declares what it exposes (``access/routes.py``): alerts are the residents' sensor
data. An inbox item names an alert's kind and the resident's registry number, so the inbox is
sensor data too; it holds only the items an escalation chain addressed to the signed-in user, while
the chain would still choose them (``service.entitled_clause``), and reading it is audited.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from yiyang.access.deps import ActorDep, ClockDep
from yiyang.access.policy import DataCategory, authorize, visible_residents
from yiyang.access.routes import no_resident_data, resident_data
from yiyang.alerts import overrides, schemas, service
from yiyang.alerts.book import effective_rules
from yiyang.alerts.engine import shared_book
from yiyang.alerts.models import AlertState
from yiyang.alerts.rules import default_document
from yiyang.db import Database
from yiyang.deps import MAX_ID, IdPath, ResidentIdPath, SessionDep
from yiyang.errors import Forbidden

router = APIRouter(prefix="/api", tags=["alerts"])
STREAM_POLL_S = 2.0
STREAM_LIFETIME_S = 600.0  # the browser's EventSource reconnects on its own
SENSOR = resident_data(DataCategory.sensor)
SENSOR_LIST = resident_data(DataCategory.sensor, many=True)


def detail_of(session: Any, alert: Any) -> schemas.AlertDetail:
    return schemas.AlertDetail(
        **schemas.AlertRead.model_validate(alert).model_dump(),
        transitions=[
            schemas.TransitionRead.model_validate(t) for t in service.transitions_of(session, alert.id)
        ],
        deliveries=[schemas.DeliveryRead.model_validate(d) for d in service.deliveries_of(session, alert.id)],
    )


@router.get("/alerts", response_model=schemas.AlertPage, openapi_extra=SENSOR_LIST)
def list_alerts(
    session: SessionDep,
    actor: ActorDep,
    clock: ClockDep,
    state: Annotated[list[AlertState] | None, Query()] = None,
    resident_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> schemas.AlertPage:
    visible = visible_residents(session, actor, category=DataCategory.sensor, now=clock())
    total, rows = service.list_alerts(
        session, visible, states=state, resident_id=resident_id, limit=limit, offset=offset
    )
    return schemas.AlertPage(total=total, items=[schemas.AlertRead.model_validate(a) for a in rows])


@router.get("/alerts/{alert_id}", response_model=schemas.AlertDetail, openapi_extra=SENSOR)
def read_alert(
    alert_id: IdPath, session: SessionDep, actor: ActorDep, clock: ClockDep
) -> schemas.AlertDetail:
    alert = service.get_alert(session, alert_id)
    service.authorize_alert(session, actor, alert, now=clock())
    return detail_of(session, alert)


@router.post("/alerts/{alert_id}/acknowledge", response_model=schemas.AlertDetail, openapi_extra=SENSOR)
def acknowledge_alert(
    alert_id: IdPath, body: schemas.Acknowledge, session: SessionDep, actor: ActorDep, clock: ClockDep
) -> schemas.AlertDetail:
    now = clock()
    alert = service.get_alert(session, alert_id)
    service.authorize_alert(session, actor, alert, action="update", now=now)
    return detail_of(session, service.acknowledge(session, alert_id, actor, now, body.note))


@router.post("/alerts/{alert_id}/resolve", response_model=schemas.AlertDetail, openapi_extra=SENSOR)
def resolve_alert(
    alert_id: IdPath, body: schemas.Resolve, session: SessionDep, actor: ActorDep, clock: ClockDep
) -> schemas.AlertDetail:
    now = clock()
    alert = service.get_alert(session, alert_id)
    service.authorize_alert(session, actor, alert, action="update", now=now)
    return detail_of(session, service.resolve(session, alert_id, body.outcome, actor, now, body.note))


@router.get("/inbox", response_model=list[schemas.InboxItemRead], openapi_extra=SENSOR)
def read_inbox(
    session: SessionDep,
    actor: ActorDep,
    clock: ClockDep,
    after_id: Annotated[int, Query(ge=0, le=MAX_ID)] = 0,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> list[schemas.InboxItemRead]:
    """The items the caller is still entitled to; the read is audited per resident shown."""
    items = service.read_inbox(session, actor, clock(), after_id=after_id, limit=limit)
    return [schemas.InboxItemRead.model_validate(item) for item in items]


@router.post("/inbox/{item_id}/read", response_model=schemas.InboxItemRead, openapi_extra=SENSOR)
def mark_inbox_read(
    item_id: IdPath, session: SessionDep, actor: ActorDep, clock: ClockDep
) -> schemas.InboxItemRead:
    if actor.user_id is None:
        raise Forbidden("inbox.forbidden", "无收件箱 (no inbox for this actor)")
    return schemas.InboxItemRead.model_validate(service.mark_read(session, actor.user_id, item_id, clock()))


@router.get("/inbox/stream", include_in_schema=False, openapi_extra=SENSOR)
async def inbox_stream(
    request: Request,
    session: SessionDep,
    actor: ActorDep,
    clock: ClockDep,
    after_id: Annotated[int, Query(ge=0, le=MAX_ID)] = 0,
) -> StreamingResponse:
    """Server-sent events: each new inbox item as ``event: inbox`` with its JSON, as it arrives.

    Each poll checks again that the session still holds (not signed out, not expired, the account
    active) and pushes only items the user is still entitled to, audited like ``GET /api/inbox``;
    a session that ended ends the stream."""
    database: Database = request.app.state.database
    # The request's own unit of work (signing in touched the credential) would stay open for the
    # stream's ten minutes, holding SQLite's write lock and the credential's row on PostgreSQL, so
    # that a sign-out, or the polls' audit rows, would wait on it: it ends here, each poll has its own.
    await run_in_threadpool(session.commit)

    def newer(last: int) -> list[dict[str, Any]] | None:
        with database.unit_of_work() as session:
            now = clock()
            if not service.session_in_force(session, actor.credential_id, now):
                return None
            return [
                schemas.InboxItemRead.model_validate(item).model_dump(mode="json")
                for item in service.read_inbox(session, actor, now, after_id=last, limit=50)
            ]

    async def events() -> AsyncIterator[bytes]:
        last = after_id
        waited = 0.0
        yield b"retry: 3000\n\n"
        while waited < STREAM_LIFETIME_S:
            items = await run_in_threadpool(newer, last)
            if items is None:
                return
            for item in items:
                last = max(last, item["id"])
                yield b"id: %d\nevent: inbox\ndata: %s\n\n" % (item["id"], orjson.dumps(item))
            if await request.is_disconnected():
                return
            yield b": keep-alive\n\n"
            await asyncio.sleep(STREAM_POLL_S)
            waited += STREAM_POLL_S

    return StreamingResponse(events(), media_type="text/event-stream", headers={"Cache-Control": "no-store"})


@router.get("/alert-rules", openapi_extra=no_resident_data("the district's default rule set"))
def district_rules(actor: ActorDep) -> dict[str, Any]:
    """The district's default rule set (the shipped document)."""
    return default_document()


@router.get("/residents/{resident_id}/alert-rules", openapi_extra=SENSOR)
def resident_rules(
    resident_id: ResidentIdPath, session: SessionDep, actor: ActorDep, clock: ClockDep
) -> list[dict[str, Any]]:
    """One resident's effective rules, after tier and resident overrides."""
    authorize(session, actor, resident_id, category=DataCategory.sensor, what="alert_rules", now=clock())
    rules = effective_rules(session, resident_id, shared_book())
    return [
        {
            "code": r.code, "kind": r.kind.value, "enabled": r.enabled, "severity": r.severity.value, "zh": r.zh, "en": r.en,
            "when": [[c.reading, c.op, c.value] for c in r.when], "minutes": r.minutes or None, "hours": r.hours or None,
            "standard": r.standard,
        }
        for r in rules.rules
    ]  # fmt: skip


@router.get("/alert-rules/overrides", response_model=list[schemas.OverrideRead], openapi_extra=SENSOR_LIST)
def list_overrides(session: SessionDep, actor: ActorDep, clock: ClockDep) -> list[schemas.OverrideRead]:
    """District and tier overrides, and the resident overrides of residents the caller may see."""
    visible = visible_residents(session, actor, category=DataCategory.sensor, now=clock())
    return [schemas.OverrideRead.model_validate(o) for o in overrides.list_overrides(session, visible)]


@router.post(
    "/alert-rules/overrides", response_model=schemas.OverrideRead, status_code=201, openapi_extra=SENSOR
)
def add_override(
    body: schemas.OverrideCreate, session: SessionDep, actor: ActorDep, clock: ClockDep
) -> schemas.OverrideRead:
    override = overrides.add_override(
        session, actor, body.scope, body.rule, body.params, tier=body.tier, resident_id=body.resident_id,
        by=actor.user_id, now=clock(),
    )  # fmt: skip
    return schemas.OverrideRead.model_validate(override)


@router.delete("/alert-rules/overrides/{override_id}", status_code=204, openapi_extra=SENSOR)
def remove_override(override_id: IdPath, session: SessionDep, actor: ActorDep, clock: ClockDep) -> None:
    overrides.remove_override(session, actor, override_id, clock())

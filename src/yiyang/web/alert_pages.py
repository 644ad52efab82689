"""Staff pages for alerts: the list, one alert (resident, readings around the event as a chart,
the escalation so far, acknowledge / resolve), and the inbox with live updates.

Every page takes the signed-in actor (``WebActorDep``: a redirect to /login without one) and goes
through the access policy (sensor data); a refusal is the 403 page. The buttons post to the JSON
API with the session's CSRF token in ``X-CSRF-Token``; the chart is an SVG drawn here on the server.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any
from urllib.parse import urlencode
from xml.sax.saxutils import escape

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse
from markupsafe import Markup
from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from yiyang.access import tokens
from yiyang.access.actor import Actor
from yiyang.access.deps import ClockDep
from yiyang.access.policy import DataCategory, authorize, visible_residents
from yiyang.access.routes import resident_data
from yiyang.alerts import service
from yiyang.alerts.engine import rule_names
from yiyang.alerts.models import AlertOutcome, AlertState
from yiyang.deps import MAX_ID, IdPath, SessionDep
from yiyang.devices.models import DeviceBinding, DeviceEvent, Telemetry
from yiyang.devices.telemetry import READINGS
from yiyang.errors import Forbidden, NotFound
from yiyang.residents.models import Resident
from yiyang.web.actor import WebActorDep
from yiyang.web.pages import refused, render

router = APIRouter(include_in_schema=False)
WINDOW = dt.timedelta(hours=2)
PAGE_SIZE = 100
COLOURS = ("#c0392b", "#2980b9", "#27ae60", "#8e44ad", "#d35400", "#16a085", "#7f8c8d", "#2c3e50")


def _csrf(request: Request) -> str:
    secret = request.cookies.get(tokens.SESSION_COOKIE)
    return tokens.csrf_token_for(secret) if secret else ""


@router.get(
    "/alerts", response_class=HTMLResponse, openapi_extra=resident_data(DataCategory.sensor, many=True)
)
def alerts_page(
    request: Request,
    session: SessionDep,
    actor: WebActorDep,
    clock: ClockDep,
    state: Annotated[str | None, Query(max_length=16)] = None,
    resident_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
) -> HTMLResponse:
    visible = visible_residents(session, actor, category=DataCategory.sensor, now=clock())
    known = state in {s.value for s in AlertState}
    states = [AlertState(state)] if known else list(service.OPEN_STATES)
    total, rows = service.list_alerts(
        session,
        visible,
        states=states,
        resident_id=resident_id,
        limit=PAGE_SIZE,
        offset=(page - 1) * PAGE_SIZE,
    )
    names = {code: rule_names(code) for code in {row.kind for row in rows}}
    # the pager keeps the list's filters: a district's resolved alerts run to thousands
    filters = urlencode(
        [(k, v) for k, v in (("state", state if known else None), ("resident_id", resident_id)) if v]
    )
    return render(
        request, "alerts/list.html", alerts=rows, total=total, names=names, state=state or "", page=page,
        pages=max(1, -(-total // PAGE_SIZE)), filters=filters,
    )  # fmt: skip


@router.get(
    "/alerts/{alert_id}",
    response_class=HTMLResponse,
    openapi_extra=resident_data(DataCategory.sensor, DataCategory.identity),
)
def alert_page(
    request: Request, alert_id: IdPath, session: SessionDep, actor: WebActorDep, clock: ClockDep
) -> HTMLResponse:
    now = clock()
    try:
        alert = service.get_alert(session, alert_id)
        service.authorize_alert(session, actor, alert, now=now)
    except NotFound as error:
        return render(request, "not_found.html", status_code=404, message=error.message)
    except Forbidden as error:
        return refused(request, error)  # its denial stays audited (access/denials.py)
    resident = _resident_if_allowed(session, actor, alert.resident_id, now)
    devices = _devices_of(session, alert.resident_id, alert.raised_at)
    chart = Markup(readings_svg(session, devices, alert.raised_at))  # noqa: S704 - built from numbers and escaped labels
    return render(
        request, "alerts/detail.html",
        alert=alert, resident=resident, name=rule_names(alert.kind), chart=chart,
        transitions=service.transitions_of(session, alert.id), deliveries=service.deliveries_of(session, alert.id),
        events=_events_around(session, devices, alert.raised_at), outcomes=list(AlertOutcome), csrf=_csrf(request),
    )  # fmt: skip


@router.get("/inbox", response_class=HTMLResponse, openapi_extra=resident_data(DataCategory.sensor))
def inbox_page(request: Request, session: SessionDep, actor: WebActorDep, clock: ClockDep) -> HTMLResponse:
    items = service.read_inbox(session, actor, clock(), limit=50)  # entitled items only; audited
    return render(
        request,
        "alerts/inbox.html",
        items=items,
        csrf=_csrf(request),
        last=max((i.id for i in items), default=0),
    )


def _resident_if_allowed(
    session: Session, actor: Actor, resident_id: int, now: dt.datetime
) -> Resident | None:
    """The resident's name is identity data: shown where the policy allows it (audited), else the
    page names the resident by number only."""
    try:
        authorize(session, actor, resident_id, category=DataCategory.identity, what="resident_name", now=now)
    except Forbidden:
        return None
    return session.get(Resident, resident_id)


Placement = tuple[int, dt.datetime, dt.datetime | None]  # device, placed from, placed until


def _devices_of(session: Session, resident_id: int, at: dt.datetime) -> list[Placement]:
    """Each device placed with the resident (or her household) during the alert's window, with
    the period it was hers: a device moved from another home shows only what it measured here
    (the alert's own device included: it was hers when it raised the alert)."""
    household = session.scalar(select(Resident.household_id).where(Resident.id == resident_id))
    holder = DeviceBinding.resident_id == resident_id
    if household is not None:
        holder = or_(holder, DeviceBinding.household_id == household)
    rows = session.execute(
        select(DeviceBinding.device_id, DeviceBinding.valid_from, DeviceBinding.valid_to).where(
            holder,
            DeviceBinding.valid_from <= at + WINDOW,
            or_(DeviceBinding.valid_to.is_(None), DeviceBinding.valid_to > at - WINDOW),
        )
    ).all()
    return sorted((row.device_id, row.valid_from, row.valid_to) for row in rows)


def _while_placed(model: Any, placements: list[Placement]) -> Any:
    """A clause over ``model``'s rows (device, measured at): measured by one of the devices while
    it was placed with the resident."""
    return or_(
        *(
            and_(
                model.device_id == device, model.measured_at >= since,
                *([model.measured_at < until] if until is not None else []),
            )
            for device, since, until in placements
        )
    )  # fmt: skip


def _events_around(session: Session, placements: list[Placement], at: dt.datetime) -> list[DeviceEvent]:
    if not placements:
        return []
    return list(
        session.scalars(
            select(DeviceEvent)
            .where(
                _while_placed(DeviceEvent, placements),
                DeviceEvent.measured_at.between(at - WINDOW, at + WINDOW),
            )
            .order_by(DeviceEvent.measured_at)
            .limit(50)
        )
    )


def readings_svg(
    session: Session, placements: list[Placement], at: dt.datetime, width: int = 720, height: int = 220
) -> str:
    """The readings of the resident's devices two hours either side of the alert, each only while
    placed with her: one line per reading, scaled to its own range, with the alert's moment marked."""
    rows: list[Any] = []
    if placements:
        rows = list(
            session.execute(
                select(Telemetry)
                .where(
                    _while_placed(Telemetry, placements),
                    Telemetry.measured_at.between(at - WINDOW, at + WINDOW),
                )
                .order_by(Telemetry.measured_at)
                .limit(2000)
            ).scalars()
        )
    start, span = at - WINDOW, (2 * WINDOW).total_seconds()
    pad = 30

    def x(when: dt.datetime) -> float:
        when = when if when.tzinfo else when.replace(tzinfo=dt.UTC)
        return pad + (when - start).total_seconds() / span * (width - 2 * pad)

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" role="img" class="chart">',
        f'<line x1="{x(at):.1f}" y1="10" x2="{x(at):.1f}" y2="{height - 30}" stroke="#c0392b" stroke-dasharray="4 3"/>',
    ]
    legend = 0
    for index, spec in enumerate(READINGS):
        points = [
            (row.measured_at, getattr(row, spec.column))
            for row in rows
            if getattr(row, spec.column) is not None
        ]
        if not points:
            continue
        low, high = min(v for _, v in points), max(v for _, v in points)
        scale = (high - low) or 1.0
        path = " ".join(
            f"{x(t):.1f},{(height - 40) - (v - low) / scale * (height - 60) + 10:.1f}" for t, v in points
        )
        colour = COLOURS[index % len(COLOURS)]
        parts.append(f'<polyline fill="none" stroke="{colour}" stroke-width="1.5" points="{path}"/>')
        label = escape(f"{spec.zh} {spec.en} {low:g}–{high:g} {spec.unit}")
        parts.append(
            f'<text x="{pad + legend * 180}" y="{height - 8}" font-size="11" fill="{colour}">{label}</text>'
        )
        legend += 1
    if not legend:
        parts.append(
            f'<text x="{pad}" y="{height / 2}" font-size="13" fill="#777">无读数 (no readings in this window)</text>'
        )
    parts.append("</svg>")
    return "".join(parts)

"""Pages for service orders and the time bank: a provider's board (接单看板), a staff order page,
and a volunteer's "my hours". Thin: each page calls services and renders a template.

The board's buttons are plain HTML forms. A browser form cannot set the ``X-CSRF-Token`` header,
so these posts carry the same token as a hidden ``csrf_token`` field, which the staff pages' actor
(``web/actor.py``) checks like the header. Before an order is accepted the board names no one.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Annotated
from xml.sax.saxutils import escape

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from markupsafe import Markup
from sqlalchemy import and_
from sqlalchemy.orm import Session

from yiyang.access import policy, tokens
from yiyang.access.actor import Actor
from yiyang.access.deps import ClockDep
from yiyang.access.policy import DataCategory
from yiyang.access.routes import no_resident_data, resident_data
from yiyang.care.orders import service as orders
from yiyang.care.orders.models import OrderStatus, ServiceProvider
from yiyang.deps import IdPath, SessionDep
from yiyang.errors import DomainError
from yiyang.residents.models import Resident
from yiyang.timebank import service as timebank
from yiyang.web.actor import WebActorDep
from yiyang.web.pages import china_time, render

router = APIRouter(include_in_schema=False)
STATUS_COLOURS = {
    OrderStatus.offered: "#d4a017", OrderStatus.unassigned: "#c0392b", OrderStatus.accepted: "#2f6fb0",
    OrderStatus.completed: "#2e8b57", OrderStatus.cancelled: "#8a8f98", OrderStatus.missed: "#6d4c41",
}  # fmt: skip


LIST_PAGE_SIZE = 100


def _csrf(request: Request) -> str | None:
    secret = request.cookies.get(tokens.SESSION_COOKIE)
    return tokens.csrf_token_for(secret) if secret else None


def _back(request: Request, path: str, message: str | None = None) -> RedirectResponse:
    lang = request.query_params.get("lang")
    query = [f"lang={lang}"] if lang else []
    if message:
        query.append(f"done={message}")
    return RedirectResponse(path + ("?" + "&".join(query) if query else ""), status_code=303)


# -- the provider's board ------------------------------------------------------------------------


@router.get(
    "/orders/board",
    response_class=HTMLResponse,
    openapi_extra=resident_data(DataCategory.care_services, many=True),
)
def board_page(request: Request, session: SessionDep, actor: WebActorDep, clock: ClockDep) -> HTMLResponse:
    now = clock()
    items = orders.provider_board(session, actor, now)
    catalogue = orders.current_catalogue(request.app.state.settings)
    return render(
        request, "orders/board.html", items=items, services=catalogue.services, now=now, csrf=_csrf(request),
        providers=orders.providers_of(session, actor), done=request.query_params.get("done"),
        china_time=china_time,
    )  # fmt: skip


@router.post(
    "/orders/{order_id}/accept", response_model=None, openapi_extra=resident_data(DataCategory.care_services)
)
def accept_from_board(
    order_id: IdPath, request: Request, session: SessionDep, actor: WebActorDep, clock: ClockDep
) -> RedirectResponse | HTMLResponse:
    try:
        orders.accept_order(session, actor, order_id, clock())
    except DomainError as error:
        session.rollback()
        return render(request, "orders/problem.html", status_code=error.status_code, message=error.message)
    return _back(request, "/orders/board", "accepted")


@router.post(
    "/orders/{order_id}/decline",
    response_model=None,
    openapi_extra=no_resident_data("declining an offer, which names no one"),
)
def decline_from_board(
    order_id: IdPath,
    request: Request,
    session: SessionDep,
    actor: WebActorDep,
    clock: ClockDep,
    reason: Annotated[str, Form(max_length=200)] = "",
) -> RedirectResponse | HTMLResponse:
    catalogue = orders.current_catalogue(request.app.state.settings)
    try:
        orders.decline_order(session, actor, order_id, reason or None, clock(), catalogue)
    except DomainError as error:
        session.rollback()
        return render(request, "orders/problem.html", status_code=error.status_code, message=error.message)
    return _back(request, "/orders/board", "declined")


@router.post(
    "/orders/{order_id}/complete",
    response_model=None,
    openapi_extra=resident_data(DataCategory.care_services),
)
def complete_from_board(
    order_id: IdPath,
    request: Request,
    session: SessionDep,
    actor: WebActorDep,
    clock: ClockDep,
    minutes_on_site: Annotated[int, Form(ge=1, le=720)],
    note: Annotated[str, Form(min_length=1, max_length=1000)],
    photo_ref: Annotated[str, Form(max_length=200, pattern=r"^[A-Za-z0-9._:/-]*$")] = "",
) -> RedirectResponse | HTMLResponse:
    proof = orders.CompletionProof(minutes_on_site, note, photo_ref or None)
    try:
        orders.complete_order(session, actor, order_id, proof, clock())
    except DomainError as error:
        session.rollback()
        return render(request, "orders/problem.html", status_code=error.status_code, message=error.message)
    return _back(request, "/orders/board", "completed")


# -- staff: an order, and the list ---------------------------------------------------------------


@router.get(
    "/orders/{order_id}",
    response_class=HTMLResponse,
    openapi_extra=resident_data(DataCategory.care_services, DataCategory.identity),
)
def order_page(
    order_id: IdPath, request: Request, session: SessionDep, actor: WebActorDep, clock: ClockDep
) -> HTMLResponse:
    try:
        order = orders.get_order(session, actor, order_id, clock())
        # the page names the resident: their identity is a read of its own
        policy.authorize(session, actor, order.resident_id, category=DataCategory.identity, what="service_order",
                         now=clock())  # fmt: skip
    except DomainError as error:
        return render(request, "orders/problem.html", status_code=error.status_code, message=error.message)
    catalogue = orders.current_catalogue(request.app.state.settings)
    provider = session.get(ServiceProvider, order.provider_id) if order.provider_id else None
    return render(
        request, "orders/order.html", order=order, resident=session.get(Resident, order.resident_id),
        service=catalogue.services.get(order.service_code), history=orders.order_history(session, order.id),
        provider_name=orders.provider_name(session, provider) if provider else None, china_time=china_time,
    )  # fmt: skip


@router.get(
    "/orders",
    response_class=HTMLResponse,
    openapi_extra=resident_data(DataCategory.care_services, DataCategory.identity, many=True),
)
def orders_page(
    request: Request,
    session: SessionDep,
    actor: WebActorDep,
    clock: ClockDep,
    status: OrderStatus | None = None,
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
) -> HTMLResponse:
    now = clock()
    total, rows = orders.list_orders(
        session, actor, now, status=status, limit=LIST_PAGE_SIZE, offset=(page - 1) * LIST_PAGE_SIZE
    )
    pages = max(1, -(-total // LIST_PAGE_SIZE))
    counts = orders.status_counts(session, actor, now)
    lang = "en" if request.query_params.get("lang") == "en" else "zh-CN"
    chart = Markup(status_chart_svg(counts, lang=lang))  # noqa: S704 - labels are our own, escaped
    catalogue = orders.current_catalogue(request.app.state.settings)
    return render(
        request, "orders/list.html", rows=rows, total=total, status=status, statuses=list(OrderStatus),
        chart=chart, services=catalogue.services, page=page, pages=pages, china_time=china_time,
    )  # fmt: skip


def status_chart_svg(counts: dict[OrderStatus, int], *, lang: str = "zh-CN", width: int = 640) -> str:
    """One horizontal bar per order status, with its count written out (readable without colour)."""
    names = {
        OrderStatus.offered: ("待接单", "offered"), OrderStatus.unassigned: ("待派单", "unassigned"),
        OrderStatus.accepted: ("服务中", "accepted"), OrderStatus.completed: ("已完成", "completed"),
        OrderStatus.cancelled: ("已取消", "cancelled"), OrderStatus.missed: ("逾期未接单", "missed"),
    }  # fmt: skip
    pick = 0 if lang == "zh-CN" else 1
    label_w, bar_h, gap = 90, 22, 8
    biggest = max(counts.values(), default=0) or 1
    height = len(OrderStatus) * (bar_h + gap) + 10
    title = "订单状态" if pick == 0 else "Orders by status"
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" '
        f'aria-label="{escape(title)}" font-family="sans-serif" font-size="13"><title>{escape(title)}</title>'
    ]
    for index, status in enumerate(OrderStatus):
        y = 5 + index * (bar_h + gap)
        count = counts.get(status, 0)
        w = (width - label_w - 60) * count / biggest
        parts.append(
            f'<text x="{label_w - 8}" y="{y + 16}" text-anchor="end">{escape(names[status][pick])}</text>'
        )
        parts.append(
            f'<rect x="{label_w}" y="{y}" width="{w:.1f}" height="{bar_h}" fill="{STATUS_COLOURS[status]}"/>'
        )
        parts.append(f'<text x="{label_w + w + 6:.1f}" y="{y + 16}">{count:,}</text>')
    parts.append("</svg>")
    return "".join(parts)


# -- a volunteer's hours ---------------------------------------------------------------------------


@router.get(
    "/timebank/me",
    response_class=HTMLResponse,
    openapi_extra=resident_data(DataCategory.identity, DataCategory.care_services, many=True),
)
def my_hours_page(request: Request, session: SessionDep, actor: WebActorDep, clock: ClockDep) -> HTMLResponse:
    try:
        account = timebank.own_account(session, actor, clock())
    except DomainError as error:
        return render(request, "orders/problem.html", status_code=error.status_code, message=error.message)
    summary = timebank.hours_summary(session, account.id)
    lang = "en" if request.query_params.get("lang") == "en" else "zh-CN"
    chart = Markup(hours_chart_svg(summary, lang=lang))  # noqa: S704 - numbers and our own labels only
    return render(
        request, "orders/hours.html", summary=summary, chart=chart,
        lines=timebank.statement(session, account.id, limit=50), pairings=_pairings(session, actor, clock()),
        china_time=china_time,
    )  # fmt: skip


def _pairings(session: Session, actor: Actor, now: dt.datetime) -> Sequence[tuple[object, str]]:
    """The volunteer's current pairings with the elder's name: those whose identity and care
    services the volunteer may see as a volunteer, whatever other role they hold (filtered in the
    query)."""
    actor = timebank.as_volunteer(actor)
    visible = and_(
        policy.visible_residents(session, actor, category=DataCategory.identity, now=now),
        policy.visible_residents(session, actor, category=DataCategory.care_services, now=now),
    )
    assert actor.user_id is not None
    rows = []
    for pairing in timebank.pairings_of(session, actor.user_id, visible=visible):
        resident = session.get(Resident, pairing.resident_id)
        rows.append((pairing, resident.name if resident else "—"))
    return rows


def hours_chart_svg(summary: timebank.HoursSummary, *, lang: str = "zh-CN", width: int = 560) -> str:
    """Hours in (earned, received) and out (spent, donated, expired) as bars, with figures."""
    bars = [
        (("获得", "earned"), summary.earned, "#2e8b57"),
        (("受赠", "received"), summary.received, "#6fbf8f"),
        (("兑换", "spent"), summary.spent, "#2f6fb0"),
        (("捐赠", "donated"), summary.donated, "#d4a017"),
        (("过期", "expired"), summary.expired, "#8a8f98"),
    ]
    pick = 0 if lang == "zh-CN" else 1
    label_w, bar_h, gap = 70, 22, 8
    biggest = max((value for _, value, _ in bars), default=0) or 1
    height = len(bars) * (bar_h + gap) + 10
    title = "时间收支（小时）" if pick == 0 else "Hours in and out"
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" '
        f'aria-label="{escape(title)}" font-family="sans-serif" font-size="13"><title>{escape(title)}</title>'
    ]
    for index, (names, minutes, colour) in enumerate(bars):
        y = 5 + index * (bar_h + gap)
        w = (width - label_w - 70) * minutes / biggest
        parts.append(f'<text x="{label_w - 8}" y="{y + 16}" text-anchor="end">{escape(names[pick])}</text>')
        parts.append(f'<rect x="{label_w}" y="{y}" width="{w:.1f}" height="{bar_h}" fill="{colour}"/>')
        parts.append(f'<text x="{label_w + w + 6:.1f}" y="{y + 16}">{minutes / 60:.1f} h</text>')
    parts.append("</svg>")
    return "".join(parts)

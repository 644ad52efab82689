"""Service-order routes: the catalogue, a resident's offers, placing and following orders, the
provider's board and steps (接单), provider registration. Thin: the work is in service.py."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request

from yiyang.access.actor import Actor
from yiyang.access.deps import ActorDep, ClockDep
from yiyang.access.policy import DataCategory
from yiyang.access.routes import no_resident_data, resident_data
from yiyang.care.orders import schemas, service
from yiyang.care.orders.catalogue import Catalogue
from yiyang.care.orders.models import OrderStatus
from yiyang.deps import MAX_ID, IdPath, ResidentIdPath, SessionDep
from yiyang.errors import Forbidden

router = APIRouter(prefix="/api", tags=["service orders"])


def _catalogue(request: Request) -> Catalogue:
    return service.current_catalogue(request.app.state.settings)


def _admin(actor: Actor) -> None:
    if not actor.is_admin:
        raise Forbidden("order.admin_only", "仅管理员可执行此操作 (administrators only)")


@router.get(
    "/service-catalogue",
    response_model=list[schemas.ServiceRead],
    openapi_extra=no_resident_data("the district's service catalogue"),
)
def read_catalogue(request: Request) -> list[schemas.ServiceRead]:
    """The services a district offers, with eligibility, subsidies, skills and durations."""
    return [schemas.ServiceRead.of(s) for s in _catalogue(request)]


@router.get(
    "/residents/{resident_id}/service-offers",
    response_model=list[schemas.OfferRead],
    openapi_extra=resident_data(DataCategory.care_services),
)
def read_offers(
    resident_id: ResidentIdPath, request: Request, session: SessionDep, actor: ActorDep, clock: ClockDep
) -> list[schemas.OfferRead]:
    """Each service as it applies to this resident: eligible or why not, the subsidy, what they pay."""
    offers = service.offers_for(session, actor, resident_id, clock(), _catalogue(request))
    return [schemas.OfferRead.of(o) for o in offers]


@router.post(
    "/residents/{resident_id}/service-orders",
    response_model=schemas.OrderRead,
    status_code=201,
    openapi_extra=resident_data(DataCategory.care_services),
)
def place_order(
    resident_id: ResidentIdPath,
    body: schemas.OrderCreate,
    request: Request,
    session: SessionDep,
    actor: ActorDep,
    clock: ClockDep,
) -> schemas.OrderRead:
    order = service.place_order(
        session,
        actor,
        resident_id,
        service.OrderRequest(body.service_code, body.requested_for, body.note),
        clock(),
        _catalogue(request),
    )
    return schemas.OrderRead.of(order)


@router.get(
    "/service-orders",
    response_model=schemas.OrderPage,
    openapi_extra=resident_data(DataCategory.care_services, many=True),
)
def list_orders(
    session: SessionDep,
    actor: ActorDep,
    clock: ClockDep,
    resident_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    status: OrderStatus | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> schemas.OrderPage:
    total, rows = service.list_orders(
        session, actor, clock(), resident_id=resident_id, status=status, limit=limit, offset=offset
    )
    return schemas.OrderPage(total=total, items=[schemas.OrderRead.of(o) for o in rows])


@router.get(
    "/service-orders/{order_id}",
    response_model=schemas.OrderRead,
    openapi_extra=resident_data(DataCategory.care_services),
)
def read_order(order_id: IdPath, session: SessionDep, actor: ActorDep, clock: ClockDep) -> schemas.OrderRead:
    return schemas.OrderRead.of(service.get_order(session, actor, order_id, clock()))


@router.get(
    "/service-orders/{order_id}/history",
    response_model=list[schemas.TransitionRead],
    openapi_extra=resident_data(DataCategory.care_services),
)
def read_history(
    order_id: IdPath, session: SessionDep, actor: ActorDep, clock: ClockDep
) -> list[schemas.TransitionRead]:
    order = service.get_order(session, actor, order_id, clock())
    return [schemas.TransitionRead.of(row) for row in service.order_history(session, order.id)]


@router.post(
    "/service-orders/{order_id}/accept",
    response_model=schemas.OrderRead,
    openapi_extra=resident_data(DataCategory.care_services),
)
def accept_order(
    order_id: IdPath, session: SessionDep, actor: ActorDep, clock: ClockDep
) -> schemas.OrderRead:
    return schemas.OrderRead.of(service.accept_order(session, actor, order_id, clock()))


@router.post(
    "/service-orders/{order_id}/decline",
    response_model=schemas.DeclinedRead,
    openapi_extra=no_resident_data("declining an offer, which names no one; the answer names no one either"),
)
def decline_order(
    order_id: IdPath,
    body: schemas.DeclineBody,
    request: Request,
    session: SessionDep,
    actor: ActorDep,
    clock: ClockDep,
) -> schemas.DeclinedRead:
    """The offered provider declines; the order goes on to the next. The answer names no one."""
    provider_id = service.decline_order_as(
        session, actor, order_id, body.reason, clock(), _catalogue(request)
    )
    return schemas.DeclinedRead(order_id=order_id, provider_id=provider_id)


@router.post(
    "/service-orders/{order_id}/complete",
    response_model=schemas.OrderRead,
    openapi_extra=resident_data(DataCategory.care_services),
)
def complete_order(
    order_id: IdPath, body: schemas.CompleteBody, session: SessionDep, actor: ActorDep, clock: ClockDep
) -> schemas.OrderRead:
    proof = service.CompletionProof(body.minutes_on_site, body.note, body.photo_ref)
    return schemas.OrderRead.of(service.complete_order(session, actor, order_id, proof, clock()))


@router.post(
    "/service-orders/{order_id}/rate",
    response_model=schemas.OrderRead,
    openapi_extra=resident_data(DataCategory.care_services),
)
def rate_order(
    order_id: IdPath, body: schemas.RateBody, session: SessionDep, actor: ActorDep, clock: ClockDep
) -> schemas.OrderRead:
    return schemas.OrderRead.of(
        service.rate_order(session, actor, order_id, body.rating, body.comment, clock())
    )


@router.post(
    "/service-orders/{order_id}/cancel",
    response_model=schemas.OrderRead,
    openapi_extra=resident_data(DataCategory.care_services),
)
def cancel_order(
    order_id: IdPath, body: schemas.CancelBody, session: SessionDep, actor: ActorDep, clock: ClockDep
) -> schemas.OrderRead:
    return schemas.OrderRead.of(service.cancel_order(session, actor, order_id, body.reason, clock()))


@router.get(
    "/service-board",
    response_model=list[schemas.BoardItemRead],
    openapi_extra=resident_data(DataCategory.care_services, many=True),
)
def read_board(session: SessionDep, actor: ActorDep, clock: ClockDep) -> list[schemas.BoardItemRead]:
    """Orders offered to, or being served by, the caller's station, team, organisation or self."""
    return [
        schemas.BoardItemRead(
            order_id=item.order.id,
            provider_id=item.provider_id,
            service_code=item.order.service_code,
            status=item.order.status,
            area_id=item.order.area_id,
            area_name=item.area_name,
            requested_for=item.order.requested_for,
            offer_expires_at=item.order.offer_expires_at,
            resident_id=item.order.resident_id if item.order.status == OrderStatus.accepted else None,
        )  # fmt: skip
        for item in service.provider_board(session, actor, clock())
    ]


@router.get(
    "/service-providers",
    response_model=list[schemas.ProviderRead],
    openapi_extra=no_resident_data("providers: organisations, skills, coverage"),
)
def list_providers(
    session: SessionDep,
    actor: ActorDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> list[schemas.ProviderRead]:
    _admin(actor)
    providers = service.list_providers(session, limit, offset)
    coverage = service.coverage_of(session, [p.id for p in providers])
    names = service.provider_names(session, providers)
    return [schemas.ProviderRead.of(p, names[p.id], coverage.get(p.id, [])) for p in providers]


@router.post(
    "/service-providers",
    response_model=schemas.ProviderRead,
    status_code=201,
    openapi_extra=no_resident_data("registering an organisation as a provider"),
)
def register_provider(
    body: schemas.ProviderCreate, session: SessionDep, actor: ActorDep, clock: ClockDep
) -> schemas.ProviderRead:
    """Register or update an organisation as a provider (administrators)."""
    _admin(actor)
    provider = service.register_provider(
        session,
        service.ProviderRequest(
            body.organisation_id,
            tuple(body.skills),
            tuple(body.coverage_area_ids),
            body.capacity,
            body.active,
        ),
        clock(),
        by=actor,
    )
    coverage = service.coverage_of(session, [provider.id]).get(provider.id, [])
    return schemas.ProviderRead.of(provider, service.provider_name(session, provider), coverage)


@router.post(
    "/service-orders/sweep",
    response_model=schemas.SweepResult,
    openapi_extra=no_resident_data("re-dispatch run by an administrator; answers counts"),
)
def sweep(request: Request, session: SessionDep, actor: ActorDep, clock: ClockDep) -> schemas.SweepResult:
    """Miss orders long past their requested time, re-dispatch lapsed offers and retry unassigned
    orders now (the timed job does this too)."""
    _admin(actor)
    grace = service.missed_grace(request.app.state.settings)
    lapsed, offered, missed = service.sweep_offers(session, clock(), _catalogue(request), missed_after=grace)
    return schemas.SweepResult(lapsed=lapsed, offered=offered, missed=missed)

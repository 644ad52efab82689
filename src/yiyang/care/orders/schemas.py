"""Service-order payloads in and out."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from yiyang.care.orders.catalogue import STATUS_NAMES, ProviderKind, Service
from yiyang.care.orders.models import (
    OrderStatus,
    PlacedAs,
    ServiceOrder,
    ServiceOrderTransition,
    ServiceProvider,
)
from yiyang.care.orders.service import Offer
from yiyang.deps import MAX_ID, AwareRequestDateTime

Id = Annotated[int, Field(ge=1, le=MAX_ID)]
ShortText = Annotated[str, Field(max_length=500)]


class ServiceRead(BaseModel):
    code: str
    name_zh: str
    name_en: str
    duration_minutes: int
    skills: list[str]
    providers: list[ProviderKind]
    price_yuan: float
    min_age: int | None
    requires_any_of: list[str]
    subsidies_yuan: dict[str, float]

    @classmethod
    def of(cls, service: Service) -> ServiceRead:
        return cls(
            code=service.code,
            name_zh=service.zh,
            name_en=service.en,
            duration_minutes=service.duration_minutes,
            skills=sorted(service.skills),
            providers=list(service.providers),
            price_yuan=service.price_cents / 100,
            min_age=service.eligibility.min_age,
            requires_any_of=sorted(s.value for s in service.eligibility.any_of),
            subsidies_yuan={s.value: amount / 100 for s, amount in service.subsidies.items()},
        )


class RefusalRead(BaseModel):
    code: str
    message: str


class OfferRead(BaseModel):
    service: ServiceRead
    eligible: bool
    refusals: list[RefusalRead]
    subsidy_yuan: float
    subsidy_basis: str | None
    subsidy_basis_label: str | None
    payable_yuan: float

    @classmethod
    def of(cls, offer: Offer) -> OfferRead:
        basis = offer.subsidy.basis
        return cls(
            service=ServiceRead.of(offer.service),
            eligible=offer.eligible,
            refusals=[RefusalRead(code=r.code, message=r.message) for r in offer.refusals],
            subsidy_yuan=offer.subsidy.amount_cents / 100,
            subsidy_basis=basis.value if basis else None,
            subsidy_basis_label=" / ".join(STATUS_NAMES[basis]) if basis else None,
            payable_yuan=offer.subsidy.payable_cents(offer.service.price_cents) / 100,
        )


class OrderCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    service_code: str = Field(min_length=1, max_length=32)
    requested_for: AwareRequestDateTime | None = None  # with its offset, e.g. 2026-11-24T10:00:00+08:00
    note: ShortText | None = None


class DeclineBody(BaseModel):
    reason: Annotated[str, Field(max_length=200)] | None = None


class CancelBody(BaseModel):
    reason: Annotated[str, Field(max_length=200)] | None = None


class CompleteBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    minutes_on_site: int = Field(ge=1, le=720)  # at most twelve hours for one visit
    note: str = Field(min_length=1, max_length=1000)
    photo_ref: Annotated[str, Field(max_length=200, pattern=r"^[A-Za-z0-9._:/-]+$")] | None = None


class RateBody(BaseModel):
    rating: int = Field(ge=1, le=5)
    comment: ShortText | None = None


class DeclinedRead(BaseModel):
    """A declined offer: which provider declined which order (an offer names no one)."""

    order_id: int
    provider_id: int


class OrderRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    resident_id: int
    service_code: str
    status: OrderStatus
    placed_as: PlacedAs
    requested_for: dt.datetime | None
    note: str | None
    area_id: int
    price_yuan: float
    subsidy_yuan: float
    subsidy_basis: str | None
    payable_yuan: float
    provider_id: int | None
    offered_at: dt.datetime | None
    offer_expires_at: dt.datetime | None
    accepted_at: dt.datetime | None
    completed_at: dt.datetime | None
    cancelled_at: dt.datetime | None
    minutes_on_site: int | None
    proof_note: str | None
    photo_ref: str | None
    rating: int | None
    rating_comment: str | None
    created_at: dt.datetime

    @classmethod
    def of(cls, order: ServiceOrder) -> OrderRead:
        return cls(
            **{name: getattr(order, name) for name in cls.model_fields if hasattr(ServiceOrder, name)},
            price_yuan=order.price_cents / 100,
            subsidy_yuan=order.subsidy_cents / 100,
            payable_yuan=max(0, order.price_cents - order.subsidy_cents) / 100,
        )


class OrderPage(BaseModel):
    total: int
    items: list[OrderRead]


class TransitionRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    event: str
    from_status: str | None
    to_status: str
    provider_id: int | None
    by_name: str
    reason: str | None
    at: dt.datetime

    @classmethod
    def of(cls, row: ServiceOrderTransition) -> TransitionRead:
        return cls.model_validate(row)


class BoardItemRead(BaseModel):
    """An order on a provider's board: before acceptance, no name, address or note."""

    order_id: int
    provider_id: int
    service_code: str
    status: OrderStatus
    area_id: int
    area_name: str
    requested_for: dt.datetime | None
    offer_expires_at: dt.datetime | None
    resident_id: int | None  # only once accepted


class ProviderCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    organisation_id: Id
    skills: list[Annotated[str, Field(max_length=32)]] = Field(default_factory=list, max_length=20)
    coverage_area_ids: list[Id] = Field(default_factory=list, max_length=200)
    capacity: int = Field(default=5, ge=1, le=1000)
    active: bool = True


class ProviderRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    kind: ProviderKind
    organisation_id: int | None
    user_id: int | None
    name: str
    base_area_id: int
    coverage_area_ids: list[int]
    skills: list[str]
    availability: list[str]
    capacity: int
    active: bool

    @classmethod
    def of(cls, provider: ServiceProvider, name: str, coverage: list[int]) -> ProviderRead:
        return cls(
            id=provider.id, kind=provider.kind, organisation_id=provider.organisation_id, user_id=provider.user_id,
            name=name, base_area_id=provider.base_area_id, coverage_area_ids=coverage,
            skills=list(provider.skills), availability=list(provider.availability), capacity=provider.capacity,
            active=provider.active,
        )  # fmt: skip


class SweepResult(BaseModel):
    lapsed: int
    offered: int
    missed: int  # long past their requested time: closed as missed (逾期未接单)

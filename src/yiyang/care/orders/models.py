"""Service-order tables: the providers that take orders, the orders, and every transition.

``service_provider_area`` lists the areas each provider covers. ``service_order_transition`` is the history: one row per change of state (placed, offered,
accepted, declined, lapsed, completed, rated, cancelled, missed), with who did it and why, so an
order's whole path can be replayed.
"""

from __future__ import annotations

import datetime as dt
import enum
from typing import Any

from sqlalchemy import JSON, Boolean, Enum, ForeignKey, Index, Integer, SmallInteger, String
from sqlalchemy.orm import Mapped, mapped_column

from yiyang.care.orders.catalogue import ProviderKind
from yiyang.db import Base, utcnow


class OrderStatus(enum.StrEnum):
    offered = "offered"  # dispatched to a provider, waiting for it to take the order (接单)
    unassigned = "unassigned"  # no provider can take it now; staff or the next sweep dispatch again
    accepted = "accepted"  # the provider took it
    completed = "completed"  # done, with proof
    cancelled = "cancelled"
    # 逾期未接单: still not taken long after the requested time (YIYANG_ORDER_MISSED_AFTER_MINUTES);
    # closed by the sweep. The column is a plain string (native_enum=False, no CHECK), so no migration.
    missed = "missed"


OPEN_STATUSES = frozenset({OrderStatus.offered, OrderStatus.unassigned, OrderStatus.accepted})


class PlacedAs(enum.StrEnum):
    resident = "resident"
    family = "family"
    staff = "staff"


class ServiceProvider(Base):
    """An organisation (station, family-doctor team, social organisation) or a volunteer that
    takes orders, with the skills it offers, the areas it covers and how many open orders it can
    carry at once."""

    __tablename__ = "service_provider"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[ProviderKind] = mapped_column(Enum(ProviderKind, native_enum=False, length=32))
    organisation_id: Mapped[int | None] = mapped_column(ForeignKey("organisation.id"), unique=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"), unique=True)  # a volunteer
    base_area_id: Mapped[int] = mapped_column(ForeignKey("area.id"))
    skills: Mapped[list[Any]] = mapped_column(JSON, default=list)
    availability: Mapped[list[Any]] = mapped_column(JSON, default=list)  # slots "tue.pm"; empty: any time
    capacity: Mapped[int] = mapped_column(Integer, default=5)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class ServiceProviderArea(Base):
    """An area a provider covers, with everything under it. A table rather than a list on the
    provider, so dispatch finds the providers covering an address by index (the area and its
    ancestors) instead of reading every volunteer in the district."""

    __tablename__ = "service_provider_area"

    provider_id: Mapped[int] = mapped_column(ForeignKey("service_provider.id"), primary_key=True)
    area_id: Mapped[int] = mapped_column(ForeignKey("area.id"), primary_key=True, index=True)


class ServiceOrder(Base):
    """居民点单: one service for one resident, from placing to completion or cancellation."""

    __tablename__ = "service_order"
    __table_args__ = (
        Index("ix_service_order_provider_status", "provider_id", "status"),
        Index("ix_service_order_status_offer", "status", "offer_expires_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    resident_id: Mapped[int] = mapped_column(ForeignKey("resident.id"), index=True)
    service_code: Mapped[str] = mapped_column(String(32))
    status: Mapped[OrderStatus] = mapped_column(Enum(OrderStatus, native_enum=False, length=16))
    placed_as: Mapped[PlacedAs] = mapped_column(Enum(PlacedAs, native_enum=False, length=16))
    placed_by_user_id: Mapped[int | None] = mapped_column(Integer)
    requested_for: Mapped[dt.datetime | None] = mapped_column()  # None: as soon as possible
    note: Mapped[str | None] = mapped_column(String(500))
    area_id: Mapped[int] = mapped_column(ForeignKey("area.id"), index=True)  # where the service happens
    price_cents: Mapped[int] = mapped_column(Integer)
    subsidy_cents: Mapped[int] = mapped_column(Integer)
    subsidy_basis: Mapped[str | None] = mapped_column(String(32))
    provider_id: Mapped[int | None] = mapped_column(ForeignKey("service_provider.id"))
    offered_at: Mapped[dt.datetime | None] = mapped_column()
    offer_expires_at: Mapped[dt.datetime | None] = mapped_column()
    accepted_at: Mapped[dt.datetime | None] = mapped_column()
    completed_at: Mapped[dt.datetime | None] = mapped_column()
    cancelled_at: Mapped[dt.datetime | None] = mapped_column()
    minutes_on_site: Mapped[int | None] = mapped_column(Integer)
    proof_note: Mapped[str | None] = mapped_column(String(1000))
    photo_ref: Mapped[str | None] = mapped_column(String(200))  # a reference to a stored photo, not the photo
    rating: Mapped[int | None] = mapped_column(SmallInteger)  # 1-5
    rating_comment: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class ServiceOrderTransition(Base):
    """History of one order; append-only."""

    __tablename__ = "service_order_transition"

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("service_order.id"), index=True)
    event: Mapped[str] = mapped_column(String(16))  # placed offered accepted declined lapsed ...
    from_status: Mapped[str | None] = mapped_column(String(16))
    to_status: Mapped[str] = mapped_column(String(16))
    provider_id: Mapped[int | None] = mapped_column(Integer)
    by_user_id: Mapped[int | None] = mapped_column(Integer)
    by_name: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str | None] = mapped_column(String(200))
    at: Mapped[dt.datetime] = mapped_column()

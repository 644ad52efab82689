"""Service orders, step by step: place (eligibility, subsidy), dispatch, accept or decline (接单),
re-dispatch on decline or a lapsed offer, complete with proof, rate, cancel; an order nobody took
long after its requested time is missed (逾期未接单) rather than offered for ever.

Every step writes a ``service_order_transition``; none commits (the request or job does). A
provider serving a resident holds a ``resident_relationship`` (kind service, source
``service_order``) from acceptance to completion or cancellation, which is what gives it scope.
Before acceptance a provider sees only what it needs to decide (service, area, time), not who.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from sqlalchemy import ColumnElement, and_, delete, exists, func, or_, select
from sqlalchemy.orm import Session

from yiyang import events
from yiyang.access.accounts import administers_all
from yiyang.access.actor import Actor
from yiyang.access.denials import queue_denial
from yiyang.access.models import RelationshipKind, ResidentRelationship, User
from yiyang.access.policy import (
    SCOPES,
    DataCategory,
    Purpose,
    RecipientClass,
    authorize,
    refused_recipients,
    visible_residents,
)
from yiyang.access.roles import CLINICAL_TEAM_ROLES, Audience, Role, role_info
from yiyang.access.service import family_of
from yiyang.care.orders.catalogue import (
    Catalogue,
    ProviderKind,
    Refusal,
    ResidentFacts,
    Service,
    Subsidy,
    load_catalogue,
    refusals,
    subsidy_for,
)
from yiyang.care.orders.dispatch import (
    DEFAULT_WEIGHTS,
    SLOTS,
    Candidate,
    DispatchWeights,
    Exclusion,
    Ranking,
    available_at,
    rank_providers,
)
from yiyang.care.orders.models import (
    OPEN_STATUSES,
    OrderStatus,
    PlacedAs,
    ServiceOrder,
    ServiceOrderTransition,
    ServiceProvider,
    ServiceProviderArea,
)
from yiyang.care.relationships import RELATIONSHIP_OF_DRAW, granting
from yiyang.config import Settings, get_settings
from yiyang.db import china_day
from yiyang.errors import Conflict, Forbidden, Invalid, NotFound
from yiyang.geo.models import Area, Organisation, OrganisationKind
from yiyang.residents.identity import age_on
from yiyang.residents.models import Resident
from yiyang.residents.service import get_active_resident
from yiyang.tiers.models import ResidentTier

SOURCE_TYPE = "service_order"  # resident_relationship.source_type of a provider serving an order
WHAT = "service_order"  # the audit trail's resource type
ORGANISATION_KINDS = {
    ProviderKind.station: {OrganisationKind.elderly_care_station, OrganisationKind.elderly_care_institution},
    ProviderKind.family_doctor_team: {OrganisationKind.family_doctor_team},
    ProviderKind.social_organisation: {OrganisationKind.social_organisation},
}
VOLUNTEER_CAPACITY = 2  # open orders a volunteer carries at once
# The roles a provider's people accept its orders in, hence the consent recipient class acceptance
# asks (``policy.SCOPES``) and the relationship it writes: a volunteer as themselves (social,
# pairing); a team's clinicians by contract (health); a station's staff by service (civil affairs);
# a social organisation's workers by service (social, as consent names them with volunteers).
# Someone holding other roles in the same organisation (a nurse at an institution that is also a
# station) accepts in these only, so a meal order never gives them a clinician's scope.
ACCEPTING_ROLES: dict[ProviderKind, frozenset[Role]] = {
    ProviderKind.station: frozenset({Role.station_staff}),
    ProviderKind.social_organisation: frozenset({Role.social_worker}),
    ProviderKind.family_doctor_team: CLINICAL_TEAM_ROLES,
    ProviderKind.volunteer: frozenset({Role.volunteer}),
}


# -- the catalogue in force ----------------------------------------------------------------------


def current_catalogue(settings: Settings | None = None) -> Catalogue:
    path = (settings or get_settings()).service_catalogue_file
    if path is None:
        return load_catalogue(None)
    return _catalogue_from_file(str(path), Path(path).stat().st_mtime_ns if Path(path).exists() else 0)


@lru_cache(maxsize=4)
def _catalogue_from_file(path: str, _mtime: int) -> Catalogue:
    return load_catalogue(Path(path))


# -- eligibility -------------------------------------------------------------------------------------


def resident_facts(session: Session, resident: Resident, today: dt.date) -> ResidentFacts:
    tier = session.get(ResidentTier, resident.id)
    return ResidentFacts(
        age=age_on(resident.birth_date, today) if resident.birth_date else None,
        tier=str(tier.tier) if tier is not None else None,
        dibao=bool(resident.dibao),
        tekun=bool(resident.tekun),
        disability_grade=resident.disability_cert_grade,
        capability_level=resident.capability_level,
    )


@dataclass(frozen=True, slots=True)
class Offer:
    """A service as offered to one resident: may they order it, and what it costs them."""

    service: Service
    refusals: list[Refusal]
    subsidy: Subsidy

    @property
    def eligible(self) -> bool:
        return not self.refusals


def offers_for(
    session: Session, actor: Actor, resident_id: int, now: dt.datetime, catalogue: Catalogue
) -> list[Offer]:
    """The whole catalogue as it applies to one resident (read of their care-services data)."""
    resident = get_active_resident(session, resident_id)
    authorize(
        session, actor, resident_id, category=DataCategory.care_services, what="service_offers", now=now
    )
    facts = resident_facts(session, resident, china_day(now))
    return [Offer(service, refusals(service, facts), subsidy_for(service, facts)) for service in catalogue]


# -- placing ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OrderRequest:
    service_code: str
    requested_for: dt.datetime | None = None
    note: str | None = None


def place_order(
    session: Session,
    actor: Actor,
    resident_id: int,
    request: OrderRequest,
    now: dt.datetime,
    catalogue: Catalogue,
    weights: DispatchWeights = DEFAULT_WEIGHTS,
) -> ServiceOrder:
    """A resident, an authorised family member or staff orders a service; it is dispatched at once."""
    service = catalogue.get(request.service_code)
    resident = get_active_resident(session, resident_id)
    placed_as = _placed_as(actor, resident_id)
    if placed_as is None:
        # Refused before the policy is asked, so audited here as its refusals are (kept though the
        # request rolls back): an unauthorised family member's attempt is in the resident's trail.
        queue_denial(
            session, actor, action="create", resource_type=WHAT, resident_id=resident_id,
            field_group=DataCategory.care_services.value, purpose=Purpose.care.value,
            reason="order.place.forbidden", at=now,
        )  # fmt: skip
        raise Forbidden(
            "order.place.forbidden",
            "只有本人、经授权的家属或工作人员可以点单 (only the resident, an authorised family member or staff may order)",
        )
    authorize(
        session, actor, resident_id, category=DataCategory.care_services, what=WHAT, action="create", now=now
    )
    if request.requested_for is not None and request.requested_for < now - dt.timedelta(minutes=5):
        raise Invalid("order.requested_for.past", "预约时间已过 (the requested time is in the past)")
    area_id = resident.grid_id or resident.community_id
    if area_id is None:
        raise Invalid(
            "order.area.unknown",
            "档案缺少所在社区，无法派单 (the resident's community is unknown, so no provider can be found)",
        )
    facts = resident_facts(session, resident, china_day(now))
    refused = refusals(service, facts)
    if refused:
        raise Invalid(
            refused[0].code,
            f"不符合{service.zh}的服务条件：{refused[0].zh} (not eligible for {service.en}: {refused[0].en})",
            reasons=[{"code": r.code, "message": r.message} for r in refused],
        )
    subsidy = subsidy_for(service, facts)
    order = ServiceOrder(
        resident_id=resident_id,
        service_code=service.code,
        status=OrderStatus.unassigned,
        placed_as=placed_as,
        placed_by_user_id=actor.user_id,
        requested_for=request.requested_for,
        note=request.note,
        area_id=area_id,
        price_cents=service.price_cents,
        subsidy_cents=subsidy.amount_cents,
        subsidy_basis=subsidy.basis.value if subsidy.basis else None,
        created_at=now,
        updated_at=now,
    )
    session.add(order)
    session.flush()
    _record(session, order, "placed", None, actor, now, reason=placed_as.value)
    dispatch_order(session, order, now, catalogue, actor=actor, weights=weights)
    return order


def _placed_as(actor: Actor, resident_id: int) -> PlacedAs | None:
    """In which capacity the actor orders for this resident; None: in none."""
    if actor.resident_id == resident_id:
        return PlacedAs.resident
    if resident_id in actor.acts_for:
        return PlacedAs.family
    if any(role_info(role).audience is Audience.staff for role in actor.roles) or actor.user_id is None:
        return PlacedAs.staff
    return None


# -- dispatch ----------------------------------------------------------------------------------------


def dispatch_order(
    session: Session,
    order: ServiceOrder,
    now: dt.datetime,
    catalogue: Catalogue,
    *,
    actor: Actor | None = None,
    weights: DispatchWeights = DEFAULT_WEIGHTS,
    missed_after: dt.timedelta | None = None,
) -> Ranking:
    """Offer the order to the best provider that has not yet declined it, or leave it unassigned;
    an order long past its requested time is missed instead (``missed_after``: the grace, by
    default ``YIYANG_ORDER_MISSED_AFTER_MINUTES``)."""
    grace = missed_after if missed_after is not None else missed_grace()
    if is_past_grace(order, now, grace):
        miss_order(session, order, now, grace, actor)
        return Ranking((), {})
    service = catalogue.get(order.service_code)
    ranking, refused = _rank(session, order, service, now, weights)
    _offer(session, order, service, ranking, refused, now, actor)
    return ranking


def recipient_class_of(kind: ProviderKind) -> RecipientClass:
    """The consent recipient class a provider of this kind accepts an order as."""
    (recipient,) = {SCOPES[role].recipient for role in ACCEPTING_ROLES[kind]}
    return recipient


def relationship_kind_of(kind: ProviderKind) -> RelationshipKind:
    """The relationship an acceptance by a provider of this kind writes: the one its accepting
    roles draw their residents from."""
    (draw,) = {SCOPES[role].draw for role in ACCEPTING_ROLES[kind]}
    return RELATIONSHIP_OF_DRAW[draw]


def refused_kinds(
    session: Session, resident_id: int, service: Service, now: dt.datetime
) -> frozenset[ProviderKind]:
    """The service's kinds of provider whose acceptance the resident's consent (care services, for
    care) would refuse now: one consent read per order. Acceptance asks again, since consent can
    change between the offer and the acceptance."""
    refused = refused_recipients(session, resident_id, category=DataCategory.care_services, now=now)
    return frozenset(kind for kind in service.providers if recipient_class_of(kind) in refused)


def _rank(
    session: Session, order: ServiceOrder, service: Service, now: dt.datetime, weights: DispatchWeights
) -> tuple[Ranking, frozenset[ProviderKind]]:
    area_path = _area_path(session, order.area_id)
    refused = refused_kinds(session, order.resident_id, service, now)
    ranking = rank_providers(
        service,
        area_path,
        _candidates(session, service, area_path, order.requested_for, order.resident_id, now),
        already_tried=tried_providers(session, order.id),
        refused_kinds=refused,
        weights=weights,
    )
    return ranking, refused


def _offer(
    session: Session,
    order: ServiceOrder,
    service: Service,
    ranking: Ranking,
    refused: frozenset[ProviderKind],
    now: dt.datetime,
    actor: Actor | None,
) -> None:
    """Offer to the best ranked provider, or leave the order unassigned with why."""
    previous = order.status
    best = ranking.best
    if best is None:
        order.status = OrderStatus.unassigned
        order.provider_id = order.offered_at = order.offer_expires_at = None
        order.updated_at = now
        reasons = sorted({reason.value for reason in ranking.excluded.values()})
        if Exclusion.consent in reasons:  # say whom: the kinds refused (no one's name, no decision's detail)
            kinds = ", ".join(sorted(k.value for k in refused))
            reasons = [f"consent refuses {kinds}" if r == Exclusion.consent else r for r in reasons]
        _record(
            session, order, "unassigned", previous, actor, now,
            reason="no provider: " + (", ".join(reasons) if reasons else "none covers the area"),
        )  # fmt: skip
        return
    order.status = OrderStatus.offered
    order.provider_id = best.provider_id
    order.offered_at = now
    order.offer_expires_at = now + dt.timedelta(minutes=service.offer_minutes)
    order.updated_at = now
    _record(
        session, order, "offered", previous, actor, now, provider_id=best.provider_id,
        reason=f"score {best.score:.3f}, {best.hops} hops, {best.open_orders} open",
    )  # fmt: skip


def tried_providers(session: Session, order_id: int) -> set[int]:
    """Providers that declined this order or let its offer lapse."""
    rows = session.scalars(
        select(ServiceOrderTransition.provider_id).where(
            ServiceOrderTransition.order_id == order_id,
            ServiceOrderTransition.event.in_(("declined", "lapsed")),
        )
    )
    return {row for row in rows if row is not None}


def _candidates(
    session: Session,
    service: Service,
    area_path: str,
    requested_for: dt.datetime | None,
    resident_id: int,
    now: dt.datetime,
) -> list[Candidate]:
    """Providers of the service's kinds that cover the area (found through the area's ancestors,
    by index), as dispatch sees them: skills, coverage, base, open orders, availability. Never a
    volunteer who is the resident served or their family (``access.service.family_of``): nobody earns time-bank
    hours serving themselves, and family care is not time-bank service."""
    ancestors = select(Area.id).where(Area.code.in_(area_path.split("/")))
    covering = select(ServiceProviderArea.provider_id).where(ServiceProviderArea.area_id.in_(ancestors))
    providers = session.scalars(
        select(ServiceProvider)
        .where(
            ServiceProvider.active.is_(True),
            ServiceProvider.kind.in_(service.providers),
            ServiceProvider.id.in_(covering),
            or_(
                ServiceProvider.user_id.is_(None), ServiceProvider.user_id.not_in(family_of(resident_id, now))
            ),
        )
        .order_by(ServiceProvider.id)
    ).all()
    if not providers:
        return []
    ids = [p.id for p in providers]
    load = dict(
        session.execute(
            select(ServiceOrder.provider_id, func.count())
            .where(
                ServiceOrder.provider_id.in_(ids),
                ServiceOrder.status.in_((OrderStatus.offered, OrderStatus.accepted)),
            )
            .group_by(ServiceOrder.provider_id)
        ).all()
    )
    coverage = coverage_of(session, ids)
    area_ids = {p.base_area_id for p in providers} | {a for areas in coverage.values() for a in areas}
    paths = dict(session.execute(select(Area.id, Area.path).where(Area.id.in_(area_ids))).all())
    return [
        Candidate(
            provider_id=p.id,
            kind=ProviderKind(p.kind),
            skills=frozenset(p.skills),
            coverage_paths=tuple(paths[a] for a in coverage.get(p.id, ()) if a in paths),
            base_path=paths.get(p.base_area_id, ""),
            open_orders=load.get(p.id, 0),
            capacity=p.capacity,
            available=available_at(p.availability, requested_for),
            active=p.active,
        )
        for p in providers
    ]


def coverage_of(session: Session, provider_ids: Sequence[int]) -> dict[int, list[int]]:
    """The areas each provider covers."""
    found: dict[int, list[int]] = {}
    rows = session.execute(
        select(ServiceProviderArea.provider_id, ServiceProviderArea.area_id)
        .where(ServiceProviderArea.provider_id.in_(provider_ids))
        .order_by(ServiceProviderArea.provider_id, ServiceProviderArea.area_id)
    )
    for provider_id, area_id in rows:
        found.setdefault(provider_id, []).append(area_id)
    return found


def _set_coverage(session: Session, provider: ServiceProvider, area_ids: Sequence[int]) -> None:
    session.flush()  # the provider needs its id
    session.execute(delete(ServiceProviderArea).where(ServiceProviderArea.provider_id == provider.id))
    session.add_all(ServiceProviderArea(provider_id=provider.id, area_id=a) for a in sorted(set(area_ids)))


def _area_path(session: Session, area_id: int) -> str:
    path = session.scalar(select(Area.path).where(Area.id == area_id))
    if path is None:
        raise NotFound("area.not_found", "辖区不存在 (no such area)")
    return path


def missed_grace(settings: Settings | None = None) -> dt.timedelta:
    """How long after its requested time an order still not taken is missed
    (``YIYANG_ORDER_MISSED_AFTER_MINUTES``, two hours by default)."""
    return dt.timedelta(minutes=(settings or get_settings()).order_missed_after_minutes)


def is_past_grace(order: ServiceOrder, now: dt.datetime, grace: dt.timedelta) -> bool:
    """Still offered or unassigned more than the grace after its requested time. An order for as
    soon as possible (no requested time) never is: lapsed offers go on to the next provider."""
    return (
        order.status in (OrderStatus.offered, OrderStatus.unassigned)
        and order.requested_for is not None
        and now - order.requested_for > grace
    )


def miss_order(
    session: Session, order: ServiceOrder, now: dt.datetime, grace: dt.timedelta, actor: Actor | None
) -> None:
    """逾期未接单: the order is closed as missed and its open offer (if any) ends. No relationship
    to end: only acceptance writes one."""
    previous = order.status
    ended_offer = order.provider_id if previous == OrderStatus.offered else None
    order.status = OrderStatus.missed
    order.provider_id = order.offered_at = order.offer_expires_at = None
    order.updated_at = now
    minutes = int(grace.total_seconds() // 60)
    _record(
        session, order, "missed", previous, actor, now, provider_id=ended_offer,
        reason=f"not taken {minutes} min after the requested time",
    )  # fmt: skip


def sweep_offers(
    session: Session,
    now: dt.datetime,
    catalogue: Catalogue,
    weights: DispatchWeights = DEFAULT_WEIGHTS,
    *,
    missed_after: dt.timedelta | None = None,
) -> tuple[int, int, int]:
    """The timed job: orders still not taken more than ``missed_after`` (the setting by default)
    after their requested time are missed; offers not taken in time lapse and go to the next
    provider; unassigned orders are tried again (a provider may have joined or freed up).
    Returns (lapsed, offered, missed)."""
    grace = missed_after if missed_after is not None else missed_grace()
    lapsed = offered = missed = 0
    overdue = session.scalars(
        select(ServiceOrder)
        .where(
            ServiceOrder.status.in_((OrderStatus.offered, OrderStatus.unassigned)),
            ServiceOrder.requested_for < now - grace,
        )
        .order_by(ServiceOrder.id)
        .with_for_update(skip_locked=True)
    ).all()
    for order in overdue:
        miss_order(session, order, now, grace, None)
        missed += 1
    expired = session.scalars(
        select(ServiceOrder)
        .where(ServiceOrder.status == OrderStatus.offered, ServiceOrder.offer_expires_at <= now)
        .order_by(ServiceOrder.id)
        .with_for_update(skip_locked=True)
    ).all()
    for order in expired:
        _record(
            session, order, "lapsed", order.status, None, now, provider_id=order.provider_id, reason="timeout"
        )
        lapsed += 1
        ranking = dispatch_order(session, order, now, catalogue, weights=weights, missed_after=grace)
        if ranking.best is not None:
            offered += 1
    waiting = session.scalars(
        select(ServiceOrder)
        .where(ServiceOrder.status == OrderStatus.unassigned)
        .order_by(ServiceOrder.id)
        .with_for_update(skip_locked=True)
    ).all()
    for order in waiting:
        service = catalogue.get(order.service_code)
        ranking, refused = _rank(session, order, service, now, weights)
        if ranking.best is not None:  # only then: a retry that finds nobody writes no history
            _offer(session, order, service, ranking, refused, now, None)
            offered += 1
    return lapsed, offered, missed


# -- the provider's steps ------------------------------------------------------------------------


def accept_order(session: Session, actor: Actor, order_id: int, now: dt.datetime) -> ServiceOrder:
    """接单: the offered provider takes the order and gets scope over the resident while serving."""
    order = _locked(session, order_id)
    provider = _acting_provider(session, actor, order)
    _expect_accepting_role(actor, provider)
    _expect(order, OrderStatus.offered)
    if order.offer_expires_at is not None and order.offer_expires_at <= now:
        raise Conflict(
            "order.offer.lapsed", "派单已超时，已转派他人 (the offer lapsed and goes to another provider)"
        )
    if is_past_grace(order, now, missed_grace()):  # the sweep closes it as missed
        raise Conflict(
            "order.missed",
            "预约时间已过去太久，订单已逾期 (the requested time is long past: the order is missed)",
        )
    _expect_not_family(session, provider, order, now)
    accepting = accepting_as(actor, provider)

    def accept() -> ServiceOrder:
        order.status = OrderStatus.accepted
        order.accepted_at = now
        order.updated_at = now
        session.add(
            ResidentRelationship(
                resident_id=order.resident_id,
                kind=relationship_kind_of(provider.kind),
                organisation_id=provider.organisation_id,
                user_id=provider.user_id,
                valid_from=now,
                source_type=SOURCE_TYPE,
                source_id=order.id,
                created_at=now,
            )
        )
        return order

    # The offer entitles the provider to accept; accepting gives it scope over the resident, so
    # it is authorized under the new relationship (role and consent decide), or nothing is written.
    # Only the accepting roles count: a volunteer who is also the elder's grid worker must not
    # take a volunteer's order through the grid role after the elder withdrew volunteers' consent.
    granting(session, accepting, order.resident_id, accept,
             category=DataCategory.care_services, what=WHAT, action="update", now=now)  # fmt: skip
    _record(session, order, "accepted", OrderStatus.offered, actor, now, provider_id=provider.id)
    return order


def decline_order(
    session: Session, actor: Actor, order_id: int, reason: str | None, now: dt.datetime, catalogue: Catalogue
) -> ServiceOrder:
    """The offered provider declines; the order goes to the next provider at once.

    The provider has no scope over the resident (the offer names no one), so callers must not show
    it the order they get back (``decline_order_as`` answers only the provider).
    """
    order = _locked(session, order_id)
    provider = _acting_provider(session, actor, order)
    _expect_accepting_role(actor, provider)  # who may not take an order may not turn it away
    _expect(order, OrderStatus.offered)
    _record(session, order, "declined", order.status, actor, now, provider_id=provider.id, reason=reason)
    dispatch_order(session, order, now, catalogue, actor=actor)
    return order


def decline_order_as(
    session: Session, actor: Actor, order_id: int, reason: str | None, now: dt.datetime, catalogue: Catalogue
) -> int:
    """Decline, answering only which of the actor's providers declined."""
    provider_id = _acting_provider(session, actor, _locked(session, order_id)).id
    decline_order(session, actor, order_id, reason, now, catalogue)
    return provider_id


@dataclass(frozen=True, slots=True)
class CompletionProof:
    minutes_on_site: int
    note: str
    photo_ref: str | None = None


def complete_order(
    session: Session, actor: Actor, order_id: int, proof: CompletionProof, now: dt.datetime
) -> ServiceOrder:
    """Done, with proof: what was done, how long on site, optionally a photo reference."""
    order = _locked(session, order_id)
    provider = _acting_provider(session, actor, order)
    _expect_accepting_role(actor, provider)
    _expect(order, OrderStatus.accepted)
    authorize(
        session,
        accepting_as(actor, provider),
        order.resident_id,
        category=DataCategory.care_services,
        what=WHAT,
        action="update",
        now=now,
    )
    _expect_time_on_site(order, proof, now)
    if provider.kind == ProviderKind.volunteer:
        _expect_not_elsewhere(session, provider, order, proof, now)
    order.status = OrderStatus.completed
    order.completed_at = now
    order.minutes_on_site = proof.minutes_on_site
    order.proof_note = proof.note
    order.photo_ref = proof.photo_ref
    order.updated_at = now
    _end_relationship(session, order.id, now)
    _record(session, order, "completed", OrderStatus.accepted, actor, now, provider_id=provider.id)
    events.publish(
        session,
        events.ServiceOrderCompleted(
            order_id=order.id,
            resident_id=order.resident_id,
            service_code=order.service_code,
            volunteer_user_id=provider.user_id if provider.kind == ProviderKind.volunteer else None,
            minutes=proof.minutes_on_site,
            completed_at=now,
        ),
    )
    return order


# A minute of grace for clocks and for the tap on "accept" made at the door.
ON_SITE_GRACE = dt.timedelta(minutes=1)


def _expect_time_on_site(order: ServiceOrder, proof: CompletionProof, now: dt.datetime) -> None:
    """The time claimed on site fits between acceptance and completion. The minutes become a
    volunteer's time-bank hours, a currency: 720 minutes claimed seconds after accepting would mint
    them (completing later than the visit still works)."""
    if order.accepted_at is not None:
        _expect_minutes_since(
            proof, order.accepted_at, now, "在岗时长超过接单以来的时间，最多 {longest} 分钟 "
            "(minutes on site exceed the time since the order was accepted: at most {longest})",
        )  # fmt: skip


def _expect_not_elsewhere(
    session: Session, provider: ServiceProvider, order: ServiceOrder, proof: CompletionProof, now: dt.datetime
) -> None:
    """A volunteer is on one site at a time: the minutes claimed fit after their own most recent
    completion of another order too, or two orders held at once would each claim the same
    wall-clock time and credit it twice as hours. Organisations have many staff, so only
    volunteers. The volunteer's provider row is locked first (PostgreSQL), so two completions of
    theirs at once are decided one after the other, each seeing the other's."""
    session.get(ServiceProvider, provider.id, with_for_update=True, populate_existing=True)
    previous = session.scalar(
        select(func.max(ServiceOrder.completed_at)).where(
            ServiceOrder.provider_id.in_(
                select(ServiceProvider.id).where(ServiceProvider.user_id == provider.user_id)
            ),
            ServiceOrder.status == OrderStatus.completed,
            ServiceOrder.id != order.id,
        )
    )
    if previous is None or order.accepted_at is None or previous <= order.accepted_at:
        return
    _expect_minutes_since(
        proof, previous if previous.tzinfo is not None else previous.replace(tzinfo=dt.UTC), now,
        "一人不能同时在两处服务：在岗时长须在您完成另一订单之后，最多 {longest} 分钟 "
        "(a person cannot be on two sites at once: the time since you completed another order "
        "is at most {longest} minutes)",
    )  # fmt: skip


def _expect_minutes_since(proof: CompletionProof, since: dt.datetime, now: dt.datetime, message: str) -> None:
    """``order.proof.minutes`` when the minutes claimed exceed the time from ``since`` to now."""
    available = now - since + ON_SITE_GRACE
    if dt.timedelta(minutes=proof.minutes_on_site) > available:
        longest = max(0, int(available.total_seconds() // 60))
        raise Invalid("order.proof.minutes", message.format(longest=longest), longest=longest)


# -- the resident's (or staff's) steps --------------------------------------------------------------


def rate_order(
    session: Session, actor: Actor, order_id: int, rating: int, comment: str | None, now: dt.datetime
) -> ServiceOrder:
    order = _locked_for_update(session, actor, order_id, now)
    _expect(order, OrderStatus.completed)
    if order.provider_id is not None and order.provider_id in {p.id for p in providers_of(session, actor)}:
        raise Forbidden(
            "order.rating.own", "服务方不能评价自己的服务 (a provider cannot rate its own service)"
        )
    if order.rating is not None:
        raise Conflict("order.rating.exists", "该服务已评价 (this order was already rated)")
    order.rating = rating
    order.rating_comment = comment
    order.updated_at = now
    _record(session, order, "rated", order.status, actor, now, reason=f"{rating}/5")
    return order


def cancel_order(
    session: Session, actor: Actor, order_id: int, reason: str | None, now: dt.datetime
) -> ServiceOrder:
    order = _locked_for_update(session, actor, order_id, now)
    if order.status not in OPEN_STATUSES:
        raise Conflict(
            "order.state",
            f"订单状态为{order.status}，不能取消 (an order that is {order.status} cannot be cancelled)",
        )
    previous = order.status
    order.status = OrderStatus.cancelled
    order.cancelled_at = now
    order.updated_at = now
    _end_relationship(session, order.id, now)
    _record(session, order, "cancelled", previous, actor, now, provider_id=order.provider_id, reason=reason)
    return order


# -- reading -----------------------------------------------------------------------------------------


def get_order(session: Session, actor: Actor, order_id: int, now: dt.datetime) -> ServiceOrder:
    order = _order(session, order_id)
    authorize(session, actor, order.resident_id, category=DataCategory.care_services, what=WHAT, now=now)
    return order


def order_history(session: Session, order_id: int) -> Sequence[ServiceOrderTransition]:
    return session.scalars(
        select(ServiceOrderTransition)
        .where(ServiceOrderTransition.order_id == order_id)
        .order_by(ServiceOrderTransition.id)
    ).all()


def list_orders(
    session: Session,
    actor: Actor,
    now: dt.datetime,
    *,
    resident_id: int | None = None,
    status: OrderStatus | None = None,
    limit: int = 50,
    offset: int = 0,
) -> tuple[int, Sequence[ServiceOrder]]:
    """Orders of the residents this actor may see (filtered in the query), newest first."""
    query = select(ServiceOrder).where(_visible(session, actor, now))
    if resident_id is not None:
        query = query.where(ServiceOrder.resident_id == resident_id)
    if status is not None:
        query = query.where(ServiceOrder.status == status)
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = session.scalars(query.order_by(ServiceOrder.id.desc()).limit(limit).offset(offset)).all()
    return total, rows


def status_counts(session: Session, actor: Actor, now: dt.datetime) -> dict[OrderStatus, int]:
    """Orders by status among the residents this actor may see."""
    rows = session.execute(
        select(ServiceOrder.status, func.count())
        .where(_visible(session, actor, now))
        .group_by(ServiceOrder.status)
    ).all()
    return {OrderStatus(status): count for status, count in rows}


def _visible(session: Session, actor: Actor, now: dt.datetime) -> ColumnElement[bool]:
    clause = visible_residents(session, actor, category=DataCategory.care_services, now=now)
    visible_ids = select(Resident.id).where(clause)
    return ServiceOrder.resident_id.in_(visible_ids)


@dataclass(frozen=True, slots=True)
class BoardItem:
    """An order on a provider's board. Before acceptance it names no one: service, area, time."""

    order: ServiceOrder
    area_name: str
    provider_id: int


def provider_board(session: Session, actor: Actor, now: dt.datetime) -> list[BoardItem]:
    """Orders offered to, or being served by, the providers this actor works for (接单看板)."""
    providers = providers_of(session, actor)
    if not providers:
        return []
    # An offer names no one (service, area, time): the provider may see it before it has scope.
    # An accepted order names its resident, so it shows only while the resident is visible.
    rows = session.execute(
        select(ServiceOrder, Area.name)
        .join(Area, Area.id == ServiceOrder.area_id)
        .where(
            ServiceOrder.provider_id.in_([p.id for p in providers]),
            or_(
                ServiceOrder.status == OrderStatus.offered,
                and_(ServiceOrder.status == OrderStatus.accepted, _visible(session, actor, now)),
            ),
        )
        .order_by(ServiceOrder.status.desc(), ServiceOrder.offer_expires_at, ServiceOrder.id)
    ).all()
    return [
        BoardItem(order, name, order.provider_id) for order, name in rows if order.provider_id is not None
    ]


def providers_of(session: Session, actor: Actor) -> Sequence[ServiceProvider]:
    """The providers an actor takes orders for: organisations they hold a staff role in, and
    themselves as a volunteer."""
    organisation_ids = {
        g.organisation_id
        for g in actor.grants
        if g.organisation_id is not None and role_info(g.role).audience is Audience.staff
    }
    conditions = []
    if organisation_ids:
        conditions.append(ServiceProvider.organisation_id.in_(organisation_ids))
    if actor.user_id is not None and actor.has_role(Role.volunteer):
        conditions.append(ServiceProvider.user_id == actor.user_id)
    if not conditions:
        return []
    return session.scalars(select(ServiceProvider).where(or_(*conditions)).order_by(ServiceProvider.id)).all()


# -- providers -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ProviderRequest:
    organisation_id: int
    skills: tuple[str, ...]
    coverage_area_ids: tuple[int, ...]
    capacity: int = 5
    active: bool = True


def register_provider(
    session: Session, request: ProviderRequest, now: dt.datetime, *, by: Actor | None = None
) -> ServiceProvider:
    """Register (or update) an organisation as a provider; its kind follows the organisation's.
    ``by``: the administrator asking (the API), kept to their area (``expect_administers``);
    commands and the demo pass none."""
    organisation = session.get(Organisation, request.organisation_id)
    if organisation is None:
        raise NotFound("organisation.not_found", "机构不存在 (no such organisation)")
    kind = next((k for k, kinds in ORGANISATION_KINDS.items() if organisation.kind in kinds), None)
    if kind is None:
        raise Invalid(
            "provider.organisation.kind",
            "只有养老驿站/机构、家庭医生团队和社会组织可以接单 "
            "(only care stations, family-doctor teams and social organisations take orders)",
        )
    _check_areas(session, request.coverage_area_ids)
    provider = session.scalar(
        select(ServiceProvider).where(ServiceProvider.organisation_id == organisation.id)
    )
    if by is not None:
        # The organisation, every area it is to cover, and every area it covers now (narrowing
        # it would take it from the rest): a street's administrator cannot stop, take over or
        # spread another street's station.
        held = coverage_of(session, [provider.id]).get(provider.id, []) if provider is not None else []
        if not administers_all(session, by, [organisation.area_id, *request.coverage_area_ids, *held]):
            raise Forbidden(
                "provider.scope",
                "只能登记或修改您管理辖区内的服务方，且其服务范围须在辖区内 "
                "(you may register or change only providers of the area you administer, covering "
                "only areas inside it)",
            )
    if provider is None:
        provider = ServiceProvider(organisation_id=organisation.id, kind=kind, created_at=now)
        session.add(provider)
    provider.base_area_id = organisation.area_id
    _set_coverage(session, provider, request.coverage_area_ids or (organisation.area_id,))
    provider.skills = sorted(set(request.skills))
    provider.capacity = request.capacity
    provider.active = request.active
    provider.updated_at = now
    session.flush()
    return provider


def list_providers(session: Session, limit: int = 100, offset: int = 0) -> Sequence[ServiceProvider]:
    return session.scalars(
        select(ServiceProvider).order_by(ServiceProvider.id).limit(limit).offset(offset)
    ).all()


def provider_name(session: Session, provider: ServiceProvider) -> str:
    return provider_names(session, [provider])[provider.id]


def provider_names(session: Session, providers: Sequence[ServiceProvider]) -> dict[int, str]:
    """Each provider's name, its organisations read in one query (a page lists up to 500)."""
    organisation_ids = {p.organisation_id for p in providers if p.organisation_id is not None}
    organisations: dict[int, str] = {}
    if organisation_ids:
        rows = session.execute(
            select(Organisation.id, Organisation.name).where(Organisation.id.in_(organisation_ids))
        )
        organisations = {organisation_id: name for organisation_id, name in rows}
    names = {}
    for p in providers:
        if p.organisation_id is None:
            names[p.id] = f"志愿者 #{p.user_id} (volunteer)"
        else:
            names[p.id] = organisations.get(p.organisation_id, "—")
    return names


def on_volunteer_profile_changed(session: Session, event: events.VolunteerProfileChanged) -> None:
    """A volunteer's profile is their provider row: skills, area (covered and worked from), slots."""
    provider = session.scalar(select(ServiceProvider).where(ServiceProvider.user_id == event.user_id))
    if provider is None:
        provider = ServiceProvider(
            user_id=event.user_id, kind=ProviderKind.volunteer, capacity=VOLUNTEER_CAPACITY
        )
        session.add(provider)
    provider.base_area_id = event.area_id
    _set_coverage(session, provider, (event.area_id,))
    provider.skills = sorted(set(event.skills))
    provider.availability = sorted(set(event.availability) & SLOTS)
    provider.active = event.active
    session.flush()


# -- helpers -----------------------------------------------------------------------------------------


def _order(session: Session, order_id: int) -> ServiceOrder:
    order = session.get(ServiceOrder, order_id)
    if order is None:
        raise NotFound("order.not_found", "订单不存在 (no such order)")
    return order


def _locked(session: Session, order_id: int) -> ServiceOrder:
    """The order, locked for this transaction (PostgreSQL), so two hands cannot both take it."""
    order = session.get(ServiceOrder, order_id, with_for_update=True, populate_existing=True)
    if order is None:
        raise NotFound("order.not_found", "订单不存在 (no such order)")
    return order


def _locked_for_update(session: Session, actor: Actor, order_id: int, now: dt.datetime) -> ServiceOrder:
    """The order, locked, once the actor may change this resident's care services (audited)."""
    order = _locked(session, order_id)
    authorize(
        session,
        actor,
        order.resident_id,
        category=DataCategory.care_services,
        what=WHAT,
        action="update",
        now=now,
    )
    return order


def _acting_provider(session: Session, actor: Actor, order: ServiceOrder) -> ServiceProvider:
    provider = session.get(ServiceProvider, order.provider_id) if order.provider_id else None
    if provider is None or provider.id not in {p.id for p in providers_of(session, actor)}:
        raise Forbidden(
            "order.not_provider", "该订单未派给您的机构 (this order is not assigned to your organisation)"
        )
    return provider


def _expect_accepting_role(actor: Actor, provider: ServiceProvider) -> None:
    """The actor holds one of the roles the provider's kind accepts in: in its organisation, or as
    the volunteer themselves."""
    roles = ACCEPTING_ROLES[provider.kind]
    if provider.organisation_id is None:
        holds = actor.user_id == provider.user_id and any(actor.has_role(role) for role in roles)
    else:
        holds = any(g.role in roles and g.organisation_id == provider.organisation_id for g in actor.grants)
    if not holds:
        names = "、".join(sorted(role_info(role).zh for role in roles))
        english = ", ".join(sorted(role_info(role).en for role in roles))
        raise Forbidden(
            "order.accepting_role", f"接单须以{names}身份 (accepting this order needs the role: {english})"
        )


def _expect_not_family(
    session: Session, provider: ServiceProvider, order: ServiceOrder, now: dt.datetime
) -> None:
    """A volunteer does not take an order of their own or of an elder they are family of: family
    care is not time-bank service. Dispatch leaves them out; the family may have been authorised
    after the offer."""
    if provider.user_id is None:
        return
    family = select(
        exists().where(User.id == provider.user_id, User.id.in_(family_of(order.resident_id, now)))
    )
    if session.scalar(family):
        raise Forbidden(
            "order.family_care",
            "家人之间的照护不计入时间银行，不能以志愿者身份接本家老人的订单 "
            "(family care is not time-bank service: a volunteer may not take the order of their own family)",
        )


def accepting_as(actor: Actor, provider: ServiceProvider) -> Actor:
    """The actor holding only the roles the provider's kind accepts in, so that scope and consent
    are decided as that role, never through another role the person also holds."""
    return actor.acting_as(ACCEPTING_ROLES[provider.kind])


def _expect(order: ServiceOrder, status: OrderStatus) -> None:
    if order.status != status:
        raise Conflict(
            "order.state",
            f"订单当前状态为{order.status}，需为{status} (the order is {order.status}, not {status})",
            status=str(order.status),
        )


def _end_relationship(session: Session, order_id: int, now: dt.datetime) -> None:
    rows = session.scalars(
        select(ResidentRelationship).where(
            ResidentRelationship.source_type == SOURCE_TYPE,
            ResidentRelationship.source_id == order_id,
            ResidentRelationship.ended_at.is_(None),
        )
    )
    for row in rows:
        row.ended_at = now
        row.valid_until = now


def _check_areas(session: Session, area_ids: Sequence[int]) -> None:
    if not area_ids:
        return
    found = set(session.scalars(select(Area.id).where(Area.id.in_(set(area_ids)))))
    if found != set(area_ids):
        raise NotFound("area.not_found", "辖区不存在 (no such area)", missing=sorted(set(area_ids) - found))


def _record(
    session: Session,
    order: ServiceOrder,
    event: str,
    previous: OrderStatus | str | None,
    actor: Actor | None,
    now: dt.datetime,
    *,
    provider_id: int | None = None,
    reason: str | None = None,
) -> None:
    session.add(
        ServiceOrderTransition(
            order_id=order.id,
            event=event,
            from_status=str(previous) if previous is not None else None,
            to_status=str(order.status),
            provider_id=provider_id,
            by_user_id=actor.user_id if actor else None,
            by_name=actor.username if actor else "system:dispatch",
            reason=reason[:200] if reason else None,
            at=now,
        )
    )

"""Device registry: registration, credentials, bindings to a resident or household, status,
and the HTTP path for gateways. Services do not commit; the caller's unit of work does."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, false, or_, select, true, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from yiyang import cache_version
from yiyang.access import policy
from yiyang.access.actor import Actor
from yiyang.access.audit import record_access
from yiyang.access.denials import queue_denial
from yiyang.access.policy import DataCategory, Purpose
from yiyang.access.roles import Role
from yiyang.db import utcnow
from yiyang.devices import broker, storage
from yiyang.devices.ingest import (
    BatchOutcome,
    Delivery,
    DeviceRef,
    Rules,
    no_rules,
    parse_deliveries,
    store_batch,
    telemetry_days,
)
from yiyang.devices.models import Device, DeviceBinding, DeviceKind, DeviceState
from yiyang.devices.telemetry import DEFAULT_LIMITS, UID_PATTERN, Channel, TimeLimits
from yiyang.errors import Conflict, DomainError, Forbidden, Invalid, NotFound
from yiyang.geo.models import Area, Household
from yiyang.geo.service import get_household, household_members
from yiyang.residents.models import Resident, ResidentStatus
from yiyang.residents.service import carry_back, carry_to_survivor, get_active_resident


class DeviceUnauthorized(DomainError):
    status_code = 401


# How long a device may be silent before it counts as offline: continuous sensors report
# every few seconds to minutes; meters only when someone measures; alarms send hourly heartbeats.
SILENCE: dict[DeviceKind, dt.timedelta] = {
    DeviceKind.wearable: dt.timedelta(minutes=10),
    DeviceKind.mattress: dt.timedelta(minutes=10),
    DeviceKind.radar: dt.timedelta(minutes=10),
    DeviceKind.terminal: dt.timedelta(minutes=30),
    DeviceKind.bp_meter: dt.timedelta(hours=26),
    DeviceKind.glucose_meter: dt.timedelta(hours=26),
    DeviceKind.gas_sensor: dt.timedelta(hours=2),
    DeviceKind.smoke_sensor: dt.timedelta(hours=2),
    DeviceKind.door_sensor: dt.timedelta(hours=2),
}


def is_online(
    kind: DeviceKind,
    last_seen_at: dt.datetime | None,
    reported_online: bool,
    now: dt.datetime,
    silence: dict[DeviceKind, dt.timedelta] = SILENCE,
) -> bool:
    """Online if the device has not said it went offline and was heard from recently enough."""
    if not reported_online or last_seen_at is None:
        return False
    return now - last_seen_at <= silence[kind]


def periods_overlap(
    a_from: dt.datetime, a_to: dt.datetime | None, b_from: dt.datetime, b_to: dt.datetime | None
) -> bool:
    """Half-open periods [from, to); an open end means 'until further notice'."""
    return (b_to is None or a_from < b_to) and (a_to is None or b_from < a_to)


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def new_secret() -> str:
    """A random 256-bit device secret, shown once at registration or rotation."""
    return secrets.token_urlsafe(32)


# ---- registry -----------------------------------------------------------------------------


def register_device(
    session: Session, uid: str, kind: DeviceKind, model: str | None = None, now: dt.datetime | None = None
) -> tuple[Device, str]:
    """Register a device; returns it with its secret (stored only as a hash). The broker is told
    (``broker.admit_device``): the device may connect and publish on its own topics."""
    if not UID_PATTERN.match(uid):
        raise Invalid(
            "device.uid.format",
            "设备编号格式错误：字母数字开头，可含 _ . : -，最长64位 (uid: letters/digits, then _ . : -, at most 64)",
        )
    if session.scalar(select(Device.id).where(Device.uid == uid)) is not None:
        raise Conflict("device.uid.taken", "设备编号已登记 (a device with this uid is already registered)")
    secret = new_secret()
    device = Device(
        uid=uid, kind=kind, model=model, secret_hash=hash_secret(secret), state=DeviceState.active
    )
    session.add(device)
    try:
        session.flush()
    except IntegrityError:
        raise Conflict(
            "device.uid.taken", "设备编号已登记 (a device with this uid is already registered)"
        ) from None
    broker.admit_device(session, device, secret, now or utcnow())
    cache_version.bump(session, cache_version.DEVICES)  # the ingest's directory, in every worker
    return device, secret


def get_device(session: Session, device_id: int) -> Device:
    device = session.get(Device, device_id)
    if device is None:
        raise NotFound("device.not_found", "设备不存在 (device not found)")
    return device


def _bound_at(at: dt.datetime) -> Select[tuple[int]]:
    """The devices with a binding in force at ``at``."""
    return select(DeviceBinding.device_id).where(
        DeviceBinding.valid_from <= at, or_(DeviceBinding.valid_to.is_(None), DeviceBinding.valid_to > at)
    )


def list_devices(
    session: Session,
    *,
    kind: DeviceKind | None = None,
    resident_id: int | None = None,
    household_id: int | None = None,
    at: dt.datetime | None = None,
    limit: int = 100,
    offset: int = 0,
    visible: ColumnElement[bool] | None = None,
    administered: ColumnElement[bool] | None = None,
) -> Sequence[Device]:
    """Devices, optionally of one kind or bound (at ``at``) to a resident or household.

    ``visible`` (``device_scope``, a clause over ``resident``) keeps out the devices bound at
    ``at`` to a resident outside it, or to a household none of whose current members is in it,
    unless nobody lives there and the household is in ``administered`` (a clause over
    ``household``, ``administered_households``); the page is cut after that, in the query.
    """
    query = select(Device).order_by(Device.id).limit(limit).offset(offset)
    if kind is not None:
        query = query.where(Device.kind == kind)
    if visible is not None:
        at = at or dt.datetime.now(dt.UTC)
        # As the households API answers: a household is seen through a current member.
        households_seen = select(Resident.household_id).where(
            Resident.household_id.is_not(None), Resident.status == ResidentStatus.active, visible
        )
        if administered is not None:
            lived_in = select(Resident.household_id).where(
                Resident.household_id.is_not(None), Resident.status == ResidentStatus.active
            )
            empty_seen = select(Household.id).where(administered, Household.id.not_in(lived_in))
            households_seen = households_seen.union(empty_seen)
        hidden = _bound_at(at).where(
            or_(
                and_(
                    DeviceBinding.resident_id.is_not(None),
                    ~DeviceBinding.resident_id.in_(select(Resident.id).where(visible)),
                ),
                and_(
                    DeviceBinding.household_id.is_not(None),
                    ~DeviceBinding.household_id.in_(households_seen),
                ),
            )
        )
        query = query.where(Device.id.not_in(hidden))
    if resident_id is not None or household_id is not None:
        at = at or dt.datetime.now(dt.UTC)
        bound = _bound_at(at)
        if resident_id is not None:
            bound = bound.where(DeviceBinding.resident_id == resident_id)
        if household_id is not None:
            bound = bound.where(DeviceBinding.household_id == household_id)
        query = query.where(Device.id.in_(bound))
    return session.scalars(query).all()


def rotate_secret(session: Session, device_id: int, now: dt.datetime | None = None) -> tuple[Device, str]:
    """A new secret for an active device; the broker gets the new password."""
    device = get_device(session, device_id)
    if device.state != DeviceState.active:
        raise Conflict("device.retired", "设备已停用 (device is retired)")
    secret = new_secret()
    device.secret_hash = hash_secret(secret)
    broker.admit_device(session, device, secret, now or utcnow())
    return device, secret


def bindings_from(session: Session, device_id: int, at: dt.datetime) -> Sequence[DeviceBinding]:
    """The device's bindings in force at ``at`` or agreed for later: what retiring it changes."""
    return session.scalars(
        select(DeviceBinding)
        .where(
            DeviceBinding.device_id == device_id,
            or_(DeviceBinding.valid_to.is_(None), DeviceBinding.valid_to > at),
        )
        .order_by(DeviceBinding.valid_from)
    ).all()


def retire_device(session: Session, device_id: int, at: dt.datetime) -> Device:
    """Stop accepting a device's data and end its binding at ``at``; its history stays.

    A placement agreed until a later date ends now too, and one that has not begun by then is
    dropped: a retired device is with nobody, and it would otherwise still read as placed."""
    device = get_device(session, device_id)
    device.state = DeviceState.retired
    device.online = False
    cache_version.bump(session, cache_version.DEVICES)
    for binding in bindings_from(session, device_id, at):
        if binding.valid_from < at:
            binding.valid_to = at
        else:
            session.delete(binding)
        cache_version.bump(session, cache_version.PLACEMENTS)
    broker.revoke_device(session, device, at)  # its broker client goes, its connection is cut
    return device


def authenticate_device(session: Session, uid: str, secret: str) -> Device:
    """The active device these credentials belong to; one answer for every failure."""
    device = session.scalar(select(Device).where(Device.uid == uid)) if UID_PATTERN.match(uid) else None
    presented = hash_secret(secret)
    expected = device.secret_hash if device is not None else hash_secret("")
    if device is None or not hmac.compare_digest(presented, expected) or device.state != DeviceState.active:
        raise DeviceUnauthorized("device.auth", "设备认证失败 (device credentials rejected)")
    return device


# ---- who may see a placement ----------------------------------------------------------------


def device_scope(session: Session, actor: Actor, now: dt.datetime) -> ColumnElement[bool] | None:
    """The residents through whom this actor sees devices' placements (identity), for
    ``list_devices``; None for jobs and commands (audited, not scoped) and with the policy off."""
    if policy.is_system(actor) or not policy.current_settings().enforce:
        return None
    return policy.visible_residents(session, actor, category=DataCategory.identity, now=now)


def administered_households(session: Session, actor: Actor) -> ColumnElement[bool]:
    """The households in the areas the actor administers (a clause over ``household``): the
    answer for a household nobody lives in any more, whose address is no one's data, so that
    the device left there can still be found, retired or moved by the administrator over it."""
    clauses = []
    for grant in actor.grants:
        if grant.role is not Role.district_admin:
            continue
        if grant.area_id is None:
            return true()
        area = session.get(Area, grant.area_id)
        if area is not None:
            subtree = select(Area.id).where(area.subtree())
            clauses.append(Household.community_id.in_(subtree))
    return or_(*clauses) if clauses else false()


def authorize_household(
    session: Session, actor: Actor, household_id: int, *, what: str, action: str = "read", now: dt.datetime
) -> list[int]:
    """Allow (audited per member relied on) or refuse a device placement with a household.

    The households API's rule (``geo.service.read_household``): a household's devices are data
    about its people, so it answers only through a current member the actor may see (identity).
    When none is seen, the first member's refusal is the answer. A household with no member
    answers to the administrators over its community (``administered_households``), audited
    with no resident, and is refused as out of scope to anyone else. Returns the members relied on.
    """
    household = get_household(session, household_id)  # 404 geo.household.not_found, as the households API
    visible = policy.visible_residents(session, actor, category=DataCategory.identity, now=now)
    seen = household_members(session, household_id, visible)
    if not seen:
        if policy.is_system(actor) or not policy.current_settings().enforce:
            return seen  # not scoped, and nobody in it to audit against
        members = household_members(session, household_id)
        if not members and session.scalar(
            select(Household.id).where(Household.id == household.id, administered_households(session, actor))
        ):
            record_access(
                session, actor, action=action, resource_type=what, resident_id=None,
                field_group=DataCategory.identity.value, reason=f"household #{household_id}, nobody living there",
                at=now,
            )  # fmt: skip
            return []
        if not members:
            queue_denial(
                session, actor, action=action, resource_type=what, resident_id=None,
                field_group=DataCategory.identity.value, purpose=Purpose.care.value, reason="access.scope",
                at=now,
            )  # fmt: skip
            raise Forbidden("access.scope", policy.DENIALS["access.scope"])
        seen = members[:1]  # refused here, unless a break-the-glass opening lets the actor in
    for resident_id in seen:
        policy.authorize(
            session, actor, resident_id, category=DataCategory.identity, what=what, action=action, now=now
        )
    return seen


def authorize_holder(
    session: Session,
    actor: Actor,
    binding: DeviceBinding,
    *,
    what: str,
    action: str = "read",
    now: dt.datetime,
) -> None:
    """A binding is data of the resident or household it names: the policy decides, audited."""
    if binding.resident_id is not None:
        policy.authorize(
            session, actor, binding.resident_id, category=DataCategory.identity, what=what, action=action,
            now=now,
        )  # fmt: skip
    elif binding.household_id is not None:
        authorize_household(session, actor, binding.household_id, what=what, action=action, now=now)


# ---- bindings -----------------------------------------------------------------------------


def bind_device(
    session: Session,
    device_id: int,
    *,
    resident_id: int | None = None,
    household_id: int | None = None,
    valid_from: dt.datetime,
    valid_to: dt.datetime | None = None,
) -> DeviceBinding:
    """Place a device with one resident or one household for a period; periods may not overlap."""
    # The device row is locked (PostgreSQL) until commit, so two placements made at once are
    # checked one after the other: otherwise both see no overlap and both are written.
    device = session.get(Device, device_id, with_for_update=True)
    if device is None:
        raise NotFound("device.not_found", "设备不存在 (device not found)")
    if device.state != DeviceState.active:
        raise Conflict("device.retired", "设备已停用，不能绑定 (device is retired)")
    if (resident_id is None) == (household_id is None):
        raise Invalid(
            "device.binding.holder", "须且只能指定居民或家庭之一 (give exactly one of resident or household)"
        )
    if valid_to is not None and valid_to <= valid_from:
        raise Invalid("device.binding.period", "结束时间须晚于开始时间 (valid_to must be after valid_from)")
    if resident_id is not None:
        # A record merged into another is no one's any more: its readings would reach nobody.
        get_active_resident(session, resident_id)
    if household_id is not None and session.get(Household, household_id) is None:
        raise NotFound("household.not_found", "家庭不存在 (household not found)")
    for other in session.scalars(select(DeviceBinding).where(DeviceBinding.device_id == device_id)):
        if periods_overlap(valid_from, valid_to, other.valid_from, other.valid_to):
            raise Conflict(
                "device.binding.overlap",
                "该时段设备已绑定给他人，请先结束原绑定 (device already bound in this period; end that binding first)",
                binding_id=other.id,
            )
    binding = DeviceBinding(
        device_id=device_id,
        resident_id=resident_id,
        household_id=household_id,
        valid_from=valid_from,
        valid_to=valid_to,
    )
    session.add(binding)
    session.flush()
    cache_version.bump(session, cache_version.PLACEMENTS)  # the alert engine's placements
    return binding


def get_binding(session: Session, device_id: int, binding_id: int) -> DeviceBinding:
    binding = session.get(DeviceBinding, binding_id)
    if binding is None or binding.device_id != device_id:
        raise NotFound("device.binding.not_found", "绑定不存在 (binding not found)")
    return binding


def end_binding(session: Session, device_id: int, binding_id: int, valid_to: dt.datetime) -> DeviceBinding:
    binding = get_binding(session, device_id, binding_id)
    if valid_to <= binding.valid_from:
        raise Invalid("device.binding.period", "结束时间须晚于开始时间 (valid_to must be after valid_from)")
    if binding.valid_to is not None and binding.valid_to <= valid_to:
        return binding  # already ended by then
    binding.valid_to = valid_to
    cache_version.bump(session, cache_version.PLACEMENTS)
    return binding


def bindings_of(session: Session, device_id: int) -> Sequence[DeviceBinding]:
    get_device(session, device_id)
    return session.scalars(
        select(DeviceBinding).where(DeviceBinding.device_id == device_id).order_by(DeviceBinding.valid_from)
    ).all()


def binding_at(session: Session, device_id: int, at: dt.datetime) -> DeviceBinding | None:
    """Whom the device was with at a moment: readings belong to that resident or household."""
    return session.scalar(
        select(DeviceBinding).where(
            DeviceBinding.device_id == device_id,
            DeviceBinding.valid_from <= at,
            or_(DeviceBinding.valid_to.is_(None), DeviceBinding.valid_to > at),
        )
    )


def bindings_at(session: Session, device_ids: Sequence[int], at: dt.datetime) -> dict[int, DeviceBinding]:
    """``binding_at`` for a page of devices in one query: device id -> its binding at ``at``."""
    if not device_ids:
        return {}
    found = session.scalars(
        select(DeviceBinding).where(
            DeviceBinding.device_id.in_(device_ids),
            DeviceBinding.valid_from <= at,
            or_(DeviceBinding.valid_to.is_(None), DeviceBinding.valid_to > at),
        )
    )
    return {binding.device_id: binding for binding in found}


def mark_silent_offline(
    session: Session, now: dt.datetime, silence: dict[DeviceKind, dt.timedelta] = SILENCE
) -> int:
    """Mark devices offline that have been silent longer than their kind allows (a timed job)."""
    changed = 0
    for kind, quiet in silence.items():
        result = session.execute(
            update(Device)
            .where(Device.kind == kind, Device.online.is_(True), Device.last_seen_at < now - quiet)
            .values(online=False)
        )
        changed += result.rowcount or 0
    return changed


# ---- HTTP telemetry for gateways ------------------------------------------------------------

_PARTITIONS: dict[str, storage.PartitionKeeper] = {}


def channel_of(item: Any) -> Channel | None:
    """An uploaded item's channel: ``readings`` -> telemetry, ``event`` -> event, else status."""
    if not isinstance(item, dict):
        return Channel.telemetry  # parsed anyway, to be rejected with the usual reason
    has_readings, has_event = "readings" in item, "event" in item
    if has_readings and has_event:
        return None
    if has_readings:
        return Channel.telemetry
    if has_event:
        return Channel.event
    return Channel.status


def ingest_uploaded(
    session: Session,
    device: Device,
    items: Sequence[Any],
    now: dt.datetime,
    *,
    rules: Rules = no_rules,
    limits: TimeLimits = DEFAULT_LIMITS,
) -> BatchOutcome:
    """Store a gateway's batch for one authenticated device, exactly as the MQTT worker would."""
    deliveries = [Delivery(device.uid, channel_of(item), item, now, "http", None) for item in items]
    parsed = parse_deliveries(deliveries, now, limits)
    keeper = _PARTITIONS.setdefault(str(session.get_bind().url), storage.PartitionKeeper())
    keeper.cover(session, telemetry_days(parsed))
    ref = DeviceRef(device.id, device.uid, device.kind, device.state == DeviceState.active)
    outcome, _written = store_batch(session, deliveries, parsed, {device.uid: ref}, rules=rules)
    return outcome


# -- registry merges ------------------------------------------------------------------------------


def on_residents_merged(session: Session, event: Any) -> None:
    """A merged record's device placements follow the person to the survivor, so her wearable's
    readings and alerts reach the record people open (noted, so an unmerge takes them back).
    Placements with her household stay with the household."""
    if carry_to_survivor(session, event.merge, "device_binding_ids", DeviceBinding):
        cache_version.bump(session, cache_version.PLACEMENTS)


def on_residents_unmerged(session: Session, event: Any) -> None:
    if (event.merge.moved or {}).get("device_binding_ids"):
        cache_version.bump(session, cache_version.PLACEMENTS)
    carry_back(session, event.merge, "device_binding_ids", DeviceBinding)

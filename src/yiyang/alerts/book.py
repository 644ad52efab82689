"""The rules and bindings the hot path needs, held in memory (规则与绑定缓存).

``RuleBook`` compiles each distinct (tier, resident overrides) combination once and remembers
which devices belong to which residents. Both are read from the database in bulk for whole
batches and kept until they are invalidated: ``invalidate()`` in this process (the override
service calls it), and a cheap version check (count and latest change of the overrides, count
and latest id of the bindings) at most every ``check_every`` seconds for changes made by other
processes. Binding entries also expire after ``ttl`` seconds, so a binding that ended is noticed.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from yiyang.alerts.models import AlertRuleOverride, OverrideScope
from yiyang.alerts.rules import RuleSet, apply_overrides, compile_rules, default_document
from yiyang.devices.models import DeviceBinding
from yiyang.geo.models import LivingArrangement
from yiyang.residents.models import Resident


@dataclass(frozen=True, slots=True)
class Holder:
    """A resident a device belongs to, with what the rules need to know about them."""

    resident_id: int
    living_alone: bool
    rules: RuleSet


class RuleBook:
    def __init__(
        self,
        document: dict[str, Any] | None = None,
        ttl: float = 300.0,
        check_every: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.document = document or default_document()
        self.ttl = ttl
        self.check_every = check_every
        self.clock = clock
        self._lock = threading.Lock()
        self._compiled: dict[tuple[Any, ...], RuleSet] = {}
        self._devices: dict[int, tuple[float, tuple[Holder, ...]]] = {}
        self._version: tuple[Any, ...] | None = None
        self._next_check = 0.0
        self.base = compile_rules(self.document)

    def invalidate(self) -> None:
        with self._lock:
            self._compiled.clear()
            self._devices.clear()

    def _check_version(self, session: Session) -> None:
        now = self.clock()
        if now < self._next_check:
            return
        self._next_check = now + self.check_every
        version = (
            *session.execute(select(func.count(), func.max(AlertRuleOverride.changed_at))).one(),
            *session.execute(select(func.count(), func.max(DeviceBinding.id))).one(),
        )
        if self._version is not None and version != self._version:
            self.invalidate()
        self._version = version

    def rules_for(self, tier: str | None, overrides: list[dict[str, Any]]) -> RuleSet:
        key = (tier, tuple((o["rule"], repr(sorted(o["params"].items()))) for o in overrides))
        found = self._compiled.get(key)
        if found is None:
            found = compile_rules(apply_overrides(self.document, overrides)) if key[1] else self.base
            self._compiled[key] = found
        return found

    def holders(
        self, session: Session, device_ids: Iterable[int], at: dt.datetime
    ) -> dict[int, tuple[Holder, ...]]:
        """device id -> the residents it belongs to now (a household device: everyone in it)."""
        self._check_version(session)
        now = self.clock()
        found: dict[int, tuple[Holder, ...]] = {}
        missing = []
        for device_id in set(device_ids):
            cached = self._devices.get(device_id)
            if cached is not None and cached[0] > now:
                found[device_id] = cached[1]
            else:
                missing.append(device_id)
        if missing:
            loaded = load_holders(session, missing, at, self)
            expires = now + self.ttl
            with self._lock:
                for device_id in missing:
                    holders = loaded.get(device_id, ())
                    self._devices[device_id] = (expires, holders)
                    found[device_id] = holders
        return found


def load_holders(
    session: Session, device_ids: list[int], at: dt.datetime, book: RuleBook
) -> dict[int, tuple[Holder, ...]]:
    """Bindings in force at ``at`` for these devices, their residents, tiers and overrides."""
    from yiyang.tiers.models import ResidentTier

    holders: dict[int, list[tuple[int, bool]]] = {}
    for start in range(0, len(device_ids), 500):
        chunk = device_ids[start : start + 500]
        rows = session.execute(
            select(DeviceBinding.device_id, DeviceBinding.resident_id, DeviceBinding.household_id).where(
                DeviceBinding.device_id.in_(chunk),
                DeviceBinding.valid_from <= at,
                or_(DeviceBinding.valid_to.is_(None), DeviceBinding.valid_to > at),
            )
        ).all()
        households = {row.household_id for row in rows if row.household_id is not None}
        members: dict[int, list[int]] = {}
        if households:
            for resident_id, household_id in session.execute(
                select(Resident.id, Resident.household_id).where(
                    Resident.household_id.in_(households), Resident.status == "active"
                )
            ):
                members.setdefault(household_id, []).append(resident_id)
        for row in rows:
            ids = [row.resident_id] if row.resident_id is not None else members.get(row.household_id, [])
            holders.setdefault(row.device_id, []).extend((rid, False) for rid in ids)
    resident_ids = {rid for items in holders.values() for rid, _ in items}
    if not resident_ids:
        return {}
    info: dict[int, tuple[bool, str | None]] = {}
    overrides: dict[int, list[dict[str, Any]]] = {}
    tier_overrides: dict[str, list[dict[str, Any]]] = {}
    ids = sorted(resident_ids)
    for start in range(0, len(ids), 1000):
        chunk = ids[start : start + 1000]
        for rid, living, tier in session.execute(
            select(Resident.id, Resident.living_arrangement, ResidentTier.tier)
            .outerjoin(ResidentTier, ResidentTier.resident_id == Resident.id)
            .where(Resident.id.in_(chunk))
        ):
            info[rid] = (living == LivingArrangement.alone, str(tier) if tier is not None else None)
        for rid, rule, params in session.execute(
            select(AlertRuleOverride.resident_id, AlertRuleOverride.rule, AlertRuleOverride.params)
            .where(
                AlertRuleOverride.scope == OverrideScope.resident, AlertRuleOverride.resident_id.in_(chunk)
            )
            .order_by(AlertRuleOverride.id)
        ):
            overrides.setdefault(rid, []).append({"rule": rule, "params": params or {}})
    for tier, rule, params in session.execute(
        select(AlertRuleOverride.tier, AlertRuleOverride.rule, AlertRuleOverride.params)
        .where(AlertRuleOverride.scope == OverrideScope.tier)
        .order_by(AlertRuleOverride.id)
    ):
        tier_overrides.setdefault(tier, []).append({"rule": rule, "params": params or {}})
    result: dict[int, tuple[Holder, ...]] = {}
    for device_id, items in holders.items():
        built = []
        for rid, _ in items:
            living_alone, tier = info.get(rid, (False, None))
            chosen = [*tier_overrides.get(tier or "", []), *overrides.get(rid, [])]
            built.append(Holder(rid, living_alone, book.rules_for(tier, chosen)))
        result[device_id] = tuple(built)
    return result


def effective_rules(session: Session, resident_id: int, book: RuleBook | None = None) -> RuleSet:
    """One resident's rules, for pages and the API (not cached per resident)."""
    from yiyang.tiers.models import ResidentTier

    book = book or RuleBook()
    tier = session.scalar(select(ResidentTier.tier).where(ResidentTier.resident_id == resident_id))
    tier_text = str(tier) if tier is not None else None
    rows = session.execute(
        select(AlertRuleOverride.scope, AlertRuleOverride.rule, AlertRuleOverride.params)
        .where(
            or_(
                (AlertRuleOverride.scope == OverrideScope.tier) & (AlertRuleOverride.tier == tier_text),
                (AlertRuleOverride.scope == OverrideScope.resident)
                & (AlertRuleOverride.resident_id == resident_id),
            )
        )
        .order_by(AlertRuleOverride.id)
    ).all()
    # Tier overrides first, then the resident's own: the most specific wins.
    chosen = [
        {"rule": rule, "params": params or {}}
        for scope, rule, params in sorted(rows, key=lambda row: row[0] == OverrideScope.resident)
    ]
    return book.rules_for(tier_text, chosen)

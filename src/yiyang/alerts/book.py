"""The rules and placements the hot path needs, held in memory (规则与绑定缓存).

``RuleBook`` compiles each distinct (tier, resident overrides) combination once and remembers
each device's placements: every period it was with a resident or a household, and their
residents with their rules, so that a reading goes to whoever had the device when it was
measured, not when the batch arrived. Both are read from the database in bulk for a batch's
unknown devices and kept until they are invalidated when the placement, override and tier
services bump their ``cache_version`` counters: at once for a bump this process committed, and,
for other processes' changes, by a version check (one small read of the counters) run at most
every ``check_every`` seconds. Placements also expire after ``ttl`` seconds, so a
household's changed members and a changed living arrangement (an import) are noticed.

A stored override that no longer compiles (kept before a check that now refuses it, or written
by hand) is left out, logged once by id and rule: that resident keeps the rest of their rules,
and the ingest goes on for everybody.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from yiyang import cache_version
from yiyang.alerts.models import AlertRuleOverride, OverrideScope
from yiyang.alerts.rules import RuleSet, apply_overrides, compile_rules, default_document
from yiyang.devices.models import DeviceBinding
from yiyang.geo.models import LivingArrangement
from yiyang.residents.models import Resident

log = logging.getLogger("yiyang.alerts")


@dataclass(frozen=True, slots=True)
class Holder:
    """A resident a device belongs to, with what the rules need to know about them."""

    resident_id: int
    living_alone: bool
    rules: RuleSet


@dataclass(frozen=True, slots=True)
class Placement:
    """A device with its holders for a period (a ``device_binding`` row; a household's: its members)."""

    valid_from: dt.datetime
    valid_to: dt.datetime | None
    holders: tuple[Holder, ...]


def holders_at(placements: Sequence[Placement], at: dt.datetime) -> tuple[Holder, ...]:
    """Whom the device was with at ``at``: nobody outside its placements (periods never overlap)."""
    for placement in placements:
        if placement.valid_from <= at and (placement.valid_to is None or at < placement.valid_to):
            return placement.holders
    return ()


# What the cached placements and rules follow: a holder's rules come from their tier's overrides.
_TOPICS = (cache_version.PLACEMENTS, cache_version.OVERRIDES, cache_version.TIERS)


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
        self._devices: dict[int, tuple[float, tuple[Placement, ...]]] = {}
        self._version: tuple[Any, ...] | None = None
        self._next_check = 0.0
        self._written = cache_version.committed_here(_TOPICS)
        self._reported: set[Any] = set()  # overrides logged as not compiling
        self.base = compile_rules(self.document)

    def invalidate(self) -> None:
        with self._lock:
            self._compiled.clear()
            self._devices.clear()

    def _check_version(self, session: Session) -> None:
        written = cache_version.committed_here(_TOPICS)  # this process's own changes: at once
        if written != self._written:
            self._written = written
            self.invalidate()
        now = self.clock()
        if now < self._next_check:
            return
        self._next_check = now + self.check_every
        counters = cache_version.read(session)
        version = tuple(counters.get(topic, 0) for topic in _TOPICS)
        if self._version is not None and version != self._version:
            self.invalidate()
        self._version = version

    def rules_for(self, tier: str | None, overrides: list[dict[str, Any]]) -> RuleSet:
        key = (tier, tuple((o["rule"], _params_key(o["params"])) for o in overrides))
        found = self._compiled.get(key)
        if found is None:
            found = self._compile(overrides) if key[1] else self.base
            self._compiled[key] = found
        return found

    def _compile(self, overrides: list[dict[str, Any]]) -> RuleSet:
        try:
            return compile_rules(apply_overrides(self.document, overrides))
        except Exception:  # noqa: BLE001 - one resident's stored override must not stop everybody's alerts
            pass
        # Some stored override no longer compiles: keep those that do, in order, and leave out
        # (and report) the others, so the resident falls back to the rules without them.
        kept: list[dict[str, Any]] = []
        for override in overrides:
            try:
                compile_rules(apply_overrides(self.document, [*kept, override]))
            except Exception as error:  # noqa: BLE001
                self._report(override, error)
                continue
            kept.append(override)
        return compile_rules(apply_overrides(self.document, kept)) if kept else self.base

    def _report(self, override: Mapping[str, Any], error: Exception) -> None:
        # The override's id and rule only: its row names the resident, the error may quote values.
        key = override.get("id", (override.get("rule"), _params_key(override.get("params"))))
        if key in self._reported:
            return
        self._reported.add(key)
        log.warning(
            "alert rule override #%s (%.32s) no longer compiles (%s); left out",
            override.get("id", "?"),
            override.get("rule"),
            type(error).__name__,
        )

    def placements(self, session: Session, device_ids: Iterable[int]) -> dict[int, tuple[Placement, ...]]:
        """device id -> its placements, each with the residents it belongs to then (a household
        device: everyone in it); pick a reading's holders with ``holders_at``."""
        self._check_version(session)
        now = self.clock()
        found: dict[int, tuple[Placement, ...]] = {}
        missing = []
        for device_id in set(device_ids):
            cached = self._devices.get(device_id)
            if cached is not None and cached[0] > now:
                found[device_id] = cached[1]
            else:
                missing.append(device_id)
        if missing:
            loaded = load_placements(session, missing, self)
            expires = now + self.ttl
            with self._lock:
                for device_id in missing:
                    placements = loaded.get(device_id, ())
                    self._devices[device_id] = (expires, placements)
                    found[device_id] = placements
        return found


def _params_key(params: Any) -> str:
    # A row written by hand may hold any JSON: a list or a text is a key too (and will not compile).
    return repr(sorted(params.items())) if isinstance(params, dict) else repr(params)


def load_placements(
    session: Session, device_ids: list[int], book: RuleBook
) -> dict[int, tuple[Placement, ...]]:
    """Every placement of these devices, with their residents, tiers and overrides."""
    from yiyang.tiers.models import ResidentTier

    periods: dict[int, list[tuple[dt.datetime, dt.datetime | None, list[int]]]] = {}
    for start in range(0, len(device_ids), 500):
        chunk = device_ids[start : start + 500]
        rows = session.execute(
            select(
                DeviceBinding.device_id,
                DeviceBinding.resident_id,
                DeviceBinding.household_id,
                DeviceBinding.valid_from,
                DeviceBinding.valid_to,
            ).where(DeviceBinding.device_id.in_(chunk))
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
            ids = (
                [row.resident_id]
                if row.resident_id is not None
                else sorted(members.get(row.household_id, []))
            )
            periods.setdefault(row.device_id, []).append((row.valid_from, row.valid_to, ids))
    resident_ids = {rid for items in periods.values() for _, _, ids in items for rid in ids}
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
        for override_id, rid, rule, params in session.execute(
            select(
                AlertRuleOverride.id,
                AlertRuleOverride.resident_id,
                AlertRuleOverride.rule,
                AlertRuleOverride.params,
            )
            .where(
                AlertRuleOverride.scope == OverrideScope.resident, AlertRuleOverride.resident_id.in_(chunk)
            )
            .order_by(AlertRuleOverride.id)
        ):
            overrides.setdefault(rid, []).append({"id": override_id, "rule": rule, "params": params or {}})
    if ids:
        for override_id, tier, rule, params in session.execute(
            select(
                AlertRuleOverride.id, AlertRuleOverride.tier, AlertRuleOverride.rule, AlertRuleOverride.params
            )
            .where(AlertRuleOverride.scope == OverrideScope.tier)
            .order_by(AlertRuleOverride.id)
        ):
            tier_overrides.setdefault(tier, []).append(
                {"id": override_id, "rule": rule, "params": params or {}}
            )
    holders: dict[int, Holder] = {}
    for rid in ids:
        living_alone, tier = info.get(rid, (False, None))
        chosen = [*tier_overrides.get(tier or "", []), *overrides.get(rid, [])]
        holders[rid] = Holder(rid, living_alone, book.rules_for(tier, chosen))
    return {
        device_id: tuple(
            Placement(valid_from, valid_to, tuple(holders[rid] for rid in ids))
            for valid_from, valid_to, ids in sorted(items, key=lambda item: item[0])
        )
        for device_id, items in periods.items()
    }


def effective_rules(session: Session, resident_id: int, book: RuleBook | None = None) -> RuleSet:
    """One resident's rules, for pages and the API (not cached per resident)."""
    from yiyang.tiers.models import ResidentTier

    book = book or RuleBook()
    tier = session.scalar(select(ResidentTier.tier).where(ResidentTier.resident_id == resident_id))
    tier_text = str(tier) if tier is not None else None
    rows = session.execute(
        select(
            AlertRuleOverride.scope, AlertRuleOverride.id, AlertRuleOverride.rule, AlertRuleOverride.params
        )
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
        {"id": override_id, "rule": rule, "params": params or {}}
        for scope, override_id, rule, params in sorted(rows, key=lambda row: row[0] == OverrideScope.resident)
    ]
    return book.rules_for(tier_text, chosen)

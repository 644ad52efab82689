"""Dispatch (派单) as a pure function: which providers may take an order, and in what order.

A provider may take an order when it is active, its kind is one the service allows, it holds
every skill the service needs, its coverage areas include the resident's area, it has room
(open orders below capacity), it is available at the requested time (volunteers), it has not
already declined or let this order's offer lapse, and the resident's consent does not refuse the
recipient class its people accept as (the caller passes the refused kinds: consent is read once
per order, outside this function).

Among those, the highest score wins. Each term is in [0, 1], higher is better:

    score = 0.50 * nearness + 0.35 * spare capacity + 0.15 * kind preference

- nearness = 1 - hops / 6, where hops counts steps in the area tree (grid > community > street
  > district) between the resident's area and the provider's base: same grid 0, neighbouring grid
  of one community 2, another street of the district 4 to 6. The registry holds areas, not
  coordinates, so the tree is the distance we can measure for every resident.
- spare capacity = 1 - open orders / capacity: spreads work across providers (load balance).
- kind preference = 1 - rank / number of kinds the service allows (the catalogue lists kinds
  in order of preference: a nursing visit prefers the family-doctor team to a station).

Ties go to the lower provider id, so the same inputs always give the same answer. Weights are a
parameter (``DispatchWeights``) so a district can tune them.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass

from yiyang.care.orders.catalogue import ProviderKind, Service
from yiyang.db import CHINA_TZ

MAX_HOPS = 6


@dataclass(frozen=True, slots=True)
class DispatchWeights:
    nearness: float = 0.50
    spare_capacity: float = 0.35
    kind_preference: float = 0.15


DEFAULT_WEIGHTS = DispatchWeights()


@dataclass(frozen=True, slots=True)
class Candidate:
    """A provider as dispatch sees it."""

    provider_id: int
    kind: ProviderKind
    skills: frozenset[str]
    coverage_paths: tuple[str, ...]  # area paths it serves, each with everything under it
    base_path: str  # the area path it works from
    open_orders: int
    capacity: int
    available: bool = True  # at the requested time (volunteers' availability)
    active: bool = True


class Exclusion(enum.StrEnum):
    inactive = "inactive"
    kind = "kind"  # the service does not use this kind of provider
    skill = "skill"
    coverage = "coverage"
    full = "full"  # open orders at capacity
    unavailable = "unavailable"
    declined = "declined"  # declined this order, or let its offer lapse
    consent = "consent"  # the resident's consent would refuse this kind of provider on acceptance


@dataclass(frozen=True, slots=True)
class Ranked:
    provider_id: int
    score: float
    hops: int
    open_orders: int


@dataclass(frozen=True, slots=True)
class Ranking:
    ranked: tuple[Ranked, ...]  # best first
    excluded: dict[int, Exclusion]

    @property
    def best(self) -> Ranked | None:
        return self.ranked[0] if self.ranked else None


def covers(coverage_paths: Iterable[str], area_path: str) -> bool:
    """A coverage path covers its own area and everything under it."""
    return any(area_path == path or area_path.startswith(path + "/") for path in coverage_paths)


def hops_between(path_a: str, path_b: str) -> int:
    """Steps in the area tree between two areas (0: the same area)."""
    a, b = path_a.split("/"), path_b.split("/")
    common = 0
    for left, right in zip(a, b, strict=False):
        if left != right:
            break
        common += 1
    return (len(a) - common) + (len(b) - common)


def exclusion(
    candidate: Candidate,
    service: Service,
    area_path: str,
    already_tried: Collection[int],
    refused_kinds: Collection[ProviderKind] = (),
) -> Exclusion | None:
    if not candidate.active:
        return Exclusion.inactive
    if candidate.kind not in service.providers:
        return Exclusion.kind
    if not service.skills <= candidate.skills:
        return Exclusion.skill
    if not covers(candidate.coverage_paths, area_path):
        return Exclusion.coverage
    if candidate.provider_id in already_tried:
        return Exclusion.declined
    if candidate.open_orders >= candidate.capacity:
        return Exclusion.full
    if not candidate.available:
        return Exclusion.unavailable
    # Last, so "consent" is recorded only where the resident's consent is all that stands in the way.
    if candidate.kind in refused_kinds:
        return Exclusion.consent
    return None


def score(
    candidate: Candidate, service: Service, area_path: str, weights: DispatchWeights = DEFAULT_WEIGHTS
) -> float:
    hops = min(hops_between(area_path, candidate.base_path), MAX_HOPS)
    nearness = 1 - hops / MAX_HOPS
    spare = 1 - candidate.open_orders / candidate.capacity if candidate.capacity > 0 else 0.0
    preference = 1 - service.providers.index(candidate.kind) / len(service.providers)
    return weights.nearness * nearness + weights.spare_capacity * spare + weights.kind_preference * preference


def rank_providers(
    service: Service,
    area_path: str,
    candidates: Sequence[Candidate],
    *,
    already_tried: Collection[int] = (),
    refused_kinds: Collection[ProviderKind] = (),
    weights: DispatchWeights = DEFAULT_WEIGHTS,
) -> Ranking:
    """Every candidate either ranked (best first) or excluded with the reason.

    ``refused_kinds``: kinds of provider whose acceptance the resident's consent would refuse.
    """
    ranked: list[Ranked] = []
    excluded: dict[int, Exclusion] = {}
    for candidate in candidates:
        reason = exclusion(candidate, service, area_path, already_tried, refused_kinds)
        if reason is not None:
            excluded[candidate.provider_id] = reason
            continue
        ranked.append(
            Ranked(
                candidate.provider_id,
                round(score(candidate, service, area_path, weights), 6),
                hops_between(area_path, candidate.base_path),
                candidate.open_orders,
            )
        )
    ranked.sort(key=lambda r: (-r.score, r.provider_id))
    return Ranking(tuple(ranked), excluded)


# -- volunteers' availability ----------------------------------------------------------------------

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
PARTS = {"am": (6, 12), "pm": (12, 18), "eve": (18, 22)}
SLOTS = frozenset(f"{day}.{part}" for day in WEEKDAYS for part in PARTS)


def slot_at(when: dt.datetime) -> str | None:
    """The availability slot ("tue.pm") a moment falls in, in China time; None at night."""
    local = when.astimezone(CHINA_TZ)
    for part, (start, end) in PARTS.items():
        if start <= local.hour < end:
            return f"{WEEKDAYS[local.weekday()]}.{part}"
    return None


def available_at(slots: Collection[str], when: dt.datetime | None) -> bool:
    """No slots given means any time; no requested time means as soon as possible."""
    if not slots or when is None:
        return True
    return slot_at(when) in slots

"""Which source's value a profile shows: the documented precedence rule (docs/registry.md).

Each attribute has a policy. ``authority``: a value from a higher-ranked feed replaces one from a
lower-ranked feed whatever their dates; within the same rank the newer observation wins; a feed not
ranked for the attribute only fills a gap. ``recency``: the newest observation wins, whoever made it
(people move and change phones; the newest report is the best guess).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import NamedTuple

# Feed names as stored in source_record.feed.
STAFF, HEALTH, INSURANCE, CIVIL = "staff", "health", "insurance", "civil"


@dataclass(frozen=True, slots=True)
class AttributeRule:
    policy: str  # "authority" or "recency"
    ranking: tuple[str, ...] = ()  # most authoritative first (authority policy only)
    rank: dict[str, int] = field(init=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "rank", {feed: index for index, feed in enumerate(self.ranking)})


IDENTITY = AttributeRule("authority", (STAFF, HEALTH, INSURANCE, CIVIL))

RULES: dict[str, AttributeRule] = {
    # Identity: the health commission's resident file is checked face to face at signing.
    "name": IDENTITY,
    "sex": IDENTITY,
    "birth_date": IDENTITY,
    "id_number": IDENTITY,
    # Contact and whereabouts: the latest report wins.
    "phone": AttributeRule("recency"),
    "address": AttributeRule("recency"),
    "community_code": AttributeRule("recency"),
    "grid_code": AttributeRule("recency"),
    # Each agency is the authority for what it administers.
    "insurance_type": AttributeRule("authority", (INSURANCE, STAFF, HEALTH)),
    "living_arrangement": AttributeRule("authority", (CIVIL, STAFF, HEALTH)),
    "dibao": AttributeRule("authority", (CIVIL, STAFF)),
    "tekun": AttributeRule("authority", (CIVIL, STAFF)),
    "disability_cert_grade": AttributeRule("authority", (CIVIL, STAFF)),
    # Capability is reassessed (GB/T 42195-2022 asks for reassessment on change): the latest assessment wins.
    "capability_level": AttributeRule("recency"),
}

PROFILE_ATTRIBUTES = tuple(RULES)


class FactRef(NamedTuple):
    """Where a profile value came from. A tuple: an import makes one per row and one per record
    it loads provenance from, and a tuple is made several times faster than a frozen dataclass."""

    source_record_id: int
    feed: str
    observed_at: dt.datetime

    def as_json(self) -> list[object]:
        return [self.source_record_id, self.feed, self.observed_at.isoformat()]

    @staticmethod
    def from_json(value: list[object]) -> FactRef:
        return FactRef(int(value[0]), str(value[1]), dt.datetime.fromisoformat(str(value[2])))


def replaces(attribute: str, current: FactRef | None, candidate: FactRef) -> tuple[bool, str]:
    """Whether ``candidate`` replaces ``current`` for ``attribute``, and the rule that decided."""
    if current is None:
        return True, "gap"
    rule = RULES[attribute]
    if rule.policy == "recency":
        return candidate.observed_at >= current.observed_at, "recency"
    rank_new = _rank(rule, candidate.feed)
    rank_old = _rank(rule, current.feed)
    if rank_new != rank_old:
        return rank_new < rank_old, "authority"
    return candidate.observed_at >= current.observed_at, "recency"


def _rank(rule: AttributeRule, feed: str) -> int:
    # Unranked feeds come last: they only fill a gap or replace another unranked value.
    return rule.rank.get(feed, len(rule.ranking))

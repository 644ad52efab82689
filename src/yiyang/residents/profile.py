"""Folding source records into a profile: pure functions shared by import and rebuild.

A record's payload is the normalised row as stored in ``source_record.payload``. The profile is
a plain dict of attribute -> value plus ``provenance`` (attribute -> FactRef); the stored form of
provenance is JSON (``provenance_to_json`` / ``provenance_from_json``).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from yiyang.residents.precedence import PROFILE_ATTRIBUTES, FactRef, replaces

@dataclass(frozen=True, slots=True)
class ValueChange:
    attribute: str
    old_value: Any
    new_value: Any
    old_ref: FactRef | None
    new_ref: FactRef
    reason: str


def attribute_values(payload: dict[str, Any]) -> dict[str, Any]:
    """The profile attributes a payload states (None means it says nothing)."""
    values = {}
    for attribute in PROFILE_ATTRIBUTES:
        value = payload.get(attribute)
        if value is None or value == "":
            continue
        if attribute == "birth_date" and isinstance(value, str):
            value = dt.date.fromisoformat(value)
        values[attribute] = value
    return values


def provenance_from_json(stored: dict[str, list[Any]] | None) -> dict[str, FactRef]:
    return {attribute: FactRef.from_json(value) for attribute, value in (stored or {}).items()}


def provenance_to_json(provenance: dict[str, FactRef]) -> dict[str, list[Any]]:
    return {attribute: ref.as_json() for attribute, ref in provenance.items()}


def apply_payload(
    profile: dict[str, Any], provenance: dict[str, FactRef], payload: dict[str, Any], ref: FactRef
) -> list[ValueChange]:
    """Fold one record into a profile in place; returns the values that changed."""
    changes: list[ValueChange] = []
    for attribute, value in attribute_values(payload).items():
        current = provenance.get(attribute)
        wins, reason = replaces(attribute, current, ref)
        if not wins:
            continue
        old = profile.get(attribute)
        if old == value and current is not None and reason != "authority":
            continue  # same value, no better source: keep the first evidence for it
        profile[attribute] = value
        provenance[attribute] = ref
        changes.append(ValueChange(attribute, old, value, current, ref, reason))
    return changes

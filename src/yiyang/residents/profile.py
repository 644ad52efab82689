"""Folding source records into a profile: pure functions shared by import and rebuild.

A record's payload is the normalised row as stored in ``source_record.payload``. The profile is
a plain dict of attribute -> value plus ``provenance`` (attribute -> FactRef); the stored form of
provenance is JSON (``provenance_to_json`` / ``provenance_from_json``).
"""

from __future__ import annotations

import datetime as dt
from typing import Any, NamedTuple

from yiyang.residents.precedence import PROFILE_ATTRIBUTES, FactRef, replaces


class ValueChange(NamedTuple):
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
    refs: dict[Any, FactRef] = {}  # one record usually supplies most values: parse it once
    provenance = {}
    for attribute, value in (stored or {}).items():
        ref = refs.get(value[0])
        if ref is None:
            ref = refs[value[0]] = FactRef.from_json(value)
        provenance[attribute] = ref
    return provenance


def provenance_to_json(provenance: dict[str, FactRef]) -> dict[str, list[Any]]:
    # One record usually supplies most values: serialise each record's reference once.
    by_record: dict[int, list[Any]] = {}
    stored = {}
    for attribute, ref in provenance.items():
        value = by_record.get(ref.source_record_id)
        if value is None:
            value = by_record[ref.source_record_id] = ref.as_json()
        stored[attribute] = value
    return stored


def apply_payload(
    profile: dict[str, Any],
    provenance: dict[str, FactRef],
    payload: dict[str, Any],
    ref: FactRef,
    stated: dict[str, Any] | None = None,
) -> list[ValueChange]:
    """Fold one record into a profile in place; returns the values that changed.

    ``stated``: the payload's ``attribute_values`` when the caller has them already."""
    changes: list[ValueChange] = []
    if stated is None:
        stated = attribute_values(payload)
    if not provenance:  # a new profile: every stated value fills a gap (the import's common case)
        for attribute, value in stated.items():
            profile[attribute] = value
            provenance[attribute] = ref
            changes.append(ValueChange(attribute, None, value, None, ref, "gap"))
        return changes
    for attribute, value in stated.items():
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

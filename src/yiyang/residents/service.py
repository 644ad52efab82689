"""The registry's operations: read a profile with its evidence, search, rebuild, merge, unmerge.

Services do not commit: the request or command that owns the unit of work does.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, delete, false, func, or_, select, update
from sqlalchemy.orm import Session

from yiyang import events
from yiyang.access import pii, policy
from yiyang.access.actor import Actor
from yiyang.access.denials import queue_denial
from yiyang.access.policy import FieldGroup, Purpose
from yiyang.db import utcnow
from yiyang.errors import Conflict, Forbidden, Invalid, NotFound
from yiyang.events import ResidentsChanged, ResidentsMerged, ResidentsUnmerged
from yiyang.geo.models import Area
from yiyang.residents.identity import IdNumberError, mask_attribute, parse_id_number
from yiyang.residents.models import (
    Condition,
    FactChange,
    LinkMethod,
    LinkReview,
    Observation,
    Resident,
    ResidentMerge,
    ResidentStatus,
    ReviewStatus,
    SourceRecord,
)
from yiyang.residents.names import name_pinyin
from yiyang.residents.precedence import PROFILE_ATTRIBUTES, FactRef
from yiyang.residents.profile import apply_payload, provenance_to_json

CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f]")  # C0 and DEL: in no name, number or search text
COLUMN_ATTRIBUTES = tuple(a for a in PROFILE_ATTRIBUTES if a not in ("community_code", "grid_code"))


def get_resident(session: Session, resident_id: int) -> Resident:
    resident = session.get(Resident, resident_id)
    if resident is None:
        raise NotFound("resident.not_found", "未找到该居民 (resident not found)", resident_id=resident_id)
    return resident


def get_active_resident(session: Session, resident_id: int) -> Resident:
    resident = get_resident(session, resident_id)
    if resident.status == ResidentStatus.merged:
        raise NotFound(
            "resident.merged",
            "该居民档案已合并到另一档案 (this record was merged into another)",
            merged_into=resident.merged_into_id,
        )
    return resident


def search_residents(
    session: Session,
    query: str | None = None,
    *,
    community_id: int | None = None,
    needs_review: bool | None = None,
    limit: int = 20,
    offset: int = 0,
    visible: ColumnElement[bool] | None = None,
) -> tuple[int, Sequence[Resident]]:
    """Active residents by name (characters or pinyin), ID number or phone, newest first.

    ``visible``: the actor's scope (``access.policy.visible_residents``), applied in the query.
    """
    stmt = select(Resident).where(Resident.status == ResidentStatus.active)
    if visible is not None:
        stmt = stmt.where(visible)
    if query:
        query = query.strip()
        stmt = stmt.where(_query_clause(query))
    if community_id is not None:
        stmt = stmt.where(Resident.community_id == community_id)
    if needs_review is not None:
        stmt = stmt.where(Resident.needs_review == needs_review)
    total = session.execute(select(func.count()).select_from(stmt.subquery())).scalar_one()
    rows = session.execute(stmt.order_by(Resident.id).limit(limit).offset(offset)).scalars().all()
    return total, rows


def _compact_number(query: str | None) -> str | None:
    """A search text that is a number (digits, or 17 digits and a check character), spaces taken out."""
    compact = (query or "").strip().replace(" ", "")
    return compact if compact.isdigit() or (len(compact) == 18 and compact[:17].isdigit()) else None


def id_number_query(query: str | None) -> str | None:
    """The normalised ID number a search text names (GB 11643, 15 or 18 characters), or None."""
    compact = _compact_number(query)
    if compact is None:
        return None
    try:
        return parse_id_number(compact).number
    except IdNumberError:
        return None


def _query_clause(query: str):  # type: ignore[no-untyped-def]
    if CONTROL_CHARACTERS.search(query):  # no name holds one; PostgreSQL cannot even compare a NUL
        return false()
    number = id_number_query(query)
    if number is not None:
        return Resident.id_number_bidx.in_(pii.lookup_indexes("id_number", number))
    if phone_query(query):
        return Resident.phone_bidx.in_(pii.lookup_indexes("phone", _compact_number(query) or ""))
    # autoescape: a "%" or "_" typed into the search box is that character, not "anyone"
    if query.isascii():
        return Resident.name_pinyin.startswith(query.lower(), autoescape=True)
    return or_(Resident.name.contains(query, autoescape=True), Resident.name_pinyin == name_pinyin(query))


# -- what a reader of a list sees, and what it may search by ------------------------------------


def listed_field_groups(actor: Actor) -> frozenset[FieldGroup]:
    """The identity field groups (contact, registry, living) this actor sees of EVERY resident a list
    filtered by ``policy.visible_residents(category=identity)`` may hold: the groups all its listing
    grants share, so never more than any listed resident's profile shows.

    A profile (``policy.authorize_profile``) shows the groups of the grants whose scope covers that
    resident, so a resident who also volunteers sees their own record whole and a paired resident as
    a volunteer does: here, only the volunteer's groups. For the groups of each listed resident, use
    ``policy.listed_groups``. This is the gate of searches by a registry value (below): such a search
    reaches every resident of the list, so it needs the group for all of them.
    """
    if policy.is_system(actor) or not policy.current_settings().enforce:
        return policy.IDENTITY_GROUPS
    shared: frozenset[FieldGroup] | None = None
    for grant in policy.listing_grants(actor):
        groups = policy.SCOPES[grant.role].groups & policy.IDENTITY_GROUPS
        shared = groups if shared is None else shared & groups
    return shared or frozenset()


SEARCH_REFUSED = "resident.search.registry"
_SEARCHED = {
    "id_number": ("身份证号", "ID number"),
    "birth_date": ("出生日期", "birth date"),
    "health_record_number": ("健康档案编号", "health record number"),
}


def require_registry_search(
    session: Session, actor: Actor, *, searched: str, what: str, now: dt.datetime | None = None
) -> None:
    """Refuse (audited) a search by a registry value to an actor who does not see the registry group.

    A search answers "someone has this value" or "no one does": with a resident's birth date and
    area known, about 500 guesses would recover an ID number. So searching by a value is allowed
    only to readers shown it (docs/registry.md, "Search and the list").
    """
    if FieldGroup.registry in listed_field_groups(actor):
        return
    queue_denial(
        session, actor, action="read", resource_type=what, resident_id=None,
        field_group=FieldGroup.registry.value, purpose=Purpose.care.value,
        reason=f"{SEARCH_REFUSED}: {searched}", at=now or utcnow(),
    )  # fmt: skip
    chinese, english = _SEARCHED[searched]
    raise Forbidden(
        SEARCH_REFUSED,
        f"您的角色无权按{chinese}查找居民 (your role may not search residents by {english})",
        searched=searched,
    )


PHONE_SEARCH_REFUSED = "resident.search.phone"


def phone_query(query: str | None) -> bool:
    """Whether a search text is matched as a phone: digits that are not a valid ID number (``_query_clause``)."""
    return _compact_number(query) is not None and id_number_query(query) is None


def authorize_search(
    session: Session, actor: Actor, query: str | None, *, what: str = "resident_search", now: dt.datetime
) -> None:
    """A search text that is an ID number needs the registry group; one that is a phone needs a role
    that may reveal phones; a name needs neither."""
    if id_number_query(query) is not None:
        require_registry_search(session, actor, searched="id_number", what=what, now=now)
    elif phone_query(query):
        _require_phone_search(session, actor, what=what, now=now)


def _require_phone_search(session: Session, actor: Actor, *, what: str, now: dt.datetime) -> None:
    """Phones are shown masked (138****5678) to all but the roles that may reveal them, so a search
    by phone is an oracle for the four hidden digits: ten thousand guesses. Only those roles search."""
    from yiyang.access.reveal import RevealableField, reveal_grant  # reveal imports this module

    if policy.is_system(actor) or not policy.current_settings().enforce:
        return
    if reveal_grant(actor, RevealableField.phone) is not None:
        return
    queue_denial(
        session, actor, action="read", resource_type=what, resident_id=None,
        field_group=FieldGroup.contact.value, purpose=Purpose.care.value,
        reason=f"{PHONE_SEARCH_REFUSED}: phone", at=now,
    )  # fmt: skip
    raise Forbidden(
        PHONE_SEARCH_REFUSED, "您的角色无权按电话号码查找居民 (your role may not search residents by phone)"
    )


@dataclass
class ProfileFact:
    attribute: str
    value: Any
    source_record_id: int | None
    feed: str | None
    source_key: str | None
    observed_at: dt.datetime | None
    recorded_at: dt.datetime | None


def profile_facts(session: Session, resident: Resident) -> list[ProfileFact]:
    """Every profile value with the source record it came from."""
    refs = {attribute: FactRef.from_json(value) for attribute, value in (resident.provenance or {}).items()}
    records = {
        record.id: record
        for record in session.execute(
            select(SourceRecord).where(SourceRecord.id.in_([r.source_record_id for r in refs.values()]))
        ).scalars()
    }
    values = _current_values(session, resident)
    facts = []
    for attribute in PROFILE_ATTRIBUTES:
        ref = refs.get(attribute)
        record = records.get(ref.source_record_id) if ref else None
        facts.append(
            ProfileFact(
                attribute=attribute,
                value=values.get(attribute),
                source_record_id=ref.source_record_id if ref else None,
                feed=ref.feed if ref else None,
                source_key=record.source_key if record else None,
                observed_at=ref.observed_at if ref else None,
                recorded_at=record.recorded_at if record else None,
            )
        )
    return facts


def _current_values(session: Session, resident: Resident) -> dict[str, Any]:
    values = {attribute: getattr(resident, attribute) for attribute in COLUMN_ATTRIBUTES}
    for attribute, area_id in (("community_code", resident.community_id), ("grid_code", resident.grid_id)):
        values[attribute] = session.get(Area, area_id).code if area_id else None
    return values


def conditions_of(session: Session, resident_id: int) -> Sequence[Condition]:
    return (
        session.execute(
            select(Condition).where(Condition.resident_id == resident_id).order_by(Condition.code)
        )
        .scalars()
        .all()
    )


def observations_of(session: Session, resident_id: int, limit: int = 50) -> Sequence[Observation]:
    return (
        session.execute(
            select(Observation)
            .where(Observation.resident_id == resident_id)
            .order_by(Observation.effective_at.desc(), Observation.id.desc())
            .limit(limit)
        )
        .scalars()
        .all()
    )


def latest_observations(session: Session, resident_id: int) -> dict[str, Observation]:
    """The newest observation of each code: the profile's 'latest key observations'."""
    latest: dict[str, Observation] = {}
    for observation in observations_of(session, resident_id, limit=500):
        latest.setdefault(observation.code, observation)
    return latest


def source_records_of(session: Session, resident_id: int) -> Sequence[SourceRecord]:
    return (
        session.execute(
            select(SourceRecord)
            .where(SourceRecord.resident_id == resident_id)
            .order_by(SourceRecord.observed_at, SourceRecord.id)
        )
        .scalars()
        .all()
    )


def fact_history(session: Session, resident_id: int, limit: int = 100) -> Sequence[FactChange]:
    return (
        session.execute(
            select(FactChange)
            .where(FactChange.resident_id == resident_id)
            .order_by(FactChange.changed_at.desc(), FactChange.id.desc())
            .limit(limit)
        )
        .scalars()
        .all()
    )


# -- rebuild -----------------------------------------------------------------------------------


# A profile value as the resident's row holds it, with its provenance entry (None when it has none).
Unsourced = dict[str, tuple[Any, list[Any] | None]]


def unsourced_values(session: Session, resident: Resident) -> Unsourced:
    """The profile values no source record stands behind: attribute -> (value, provenance entry).

    A resident written without the import runner (today only tests and scripts do so; any
    registration route would) holds them; so does one whose provenance names a record that does
    not exist. A value whose record exists,
    this resident's or (after an unmerge) another's, is evidence's to give or take, not listed.
    """
    stored = resident.provenance or {}
    named = {int(entry[0]) for entry in stored.values()}
    existing = (
        set(session.execute(select(SourceRecord.id).where(SourceRecord.id.in_(named))).scalars())
        if named
        else set()
    )
    unsourced: Unsourced = {}
    for attribute, value in _current_values(session, resident).items():
        entry = stored.get(attribute)
        if value is not None and value != "" and (entry is None or int(entry[0]) not in existing):
            unsourced[attribute] = (value, entry)
    return unsourced


def rebuild_resident(session: Session, resident_id: int, *, reason: str) -> Resident:
    """Recompute a profile and its conditions from all of the resident's source records.

    The same fold as an import (``residents.profile.apply_payload``), applied in observation
    order; values that end up different from before are logged in ``fact_change``. A value no
    source record stands behind (``unsourced_values``) is kept as it is: the rebuild has no
    evidence about it, and wiping it would lose what the registry knew.
    """
    return _rebuild(session, resident_id, reason=reason)[0]


def _rebuild(
    session: Session,
    resident_id: int,
    *,
    reason: str,
    fill: Unsourced | None = None,
    forget: Collection[str] = (),
) -> tuple[Resident, list[str]]:
    """``rebuild_resident``, and for a merge or unmerge: ``fill``, values without a source record
    that fill what the profile still lacks after the fold (the merged resident's), and ``forget``,
    attributes whose values without a source record are dropped (given back by an unmerge).
    Returns the resident and the attributes ``fill`` supplied."""
    resident = get_resident(session, resident_id)
    session.flush()
    before = _current_values(session, resident)
    before_refs = dict(resident.provenance or {})
    kept = {a: v for a, v in unsourced_values(session, resident).items() if a not in forget}
    profile: dict[str, Any] = {}
    provenance: dict[str, FactRef] = {}
    conditions: dict[str, dict[str, Any]] = {}
    for record in source_records_of(session, resident_id):
        ref = FactRef(record.id, record.feed.value, record.observed_at)
        payload = record.full_payload()
        apply_payload(profile, provenance, payload, ref)
        seen = record.observed_at.date()
        for code, display, long_rx in payload.get("conditions", ()):
            entry = conditions.get(code)
            if entry is None:
                conditions[code] = {
                    "display": display, "long_prescription": bool(long_rx), "first": (seen, record.id),
                    "last": (seen, record.id),
                }  # fmt: skip
            else:
                if seen >= entry["last"][0]:
                    entry["last"] = (seen, record.id)
                    entry["long_prescription"] = bool(long_rx)
                if seen < entry["first"][0]:
                    entry["first"] = (seen, record.id)

    # The row's own values outrank the records (the fold has nothing to say about them); the
    # merged resident's fill only what is still missing.
    unsourced: Unsourced = dict(kept)
    filled = [a for a in (fill or {}) if a not in kept and profile.get(a) is None]
    unsourced.update({a: fill[a] for a in filled} if fill else {})
    for attribute, (value, _entry) in unsourced.items():
        profile[attribute] = value
        provenance.pop(attribute, None)

    areas = _area_ids(session, [profile.get("community_code"), profile.get("grid_code")])
    if profile.get("id_number") and profile["id_number"] != resident.id_number:
        _release_id_number(session, profile["id_number"], keep=resident_id)
    for attribute in COLUMN_ATTRIBUTES:
        setattr(resident, attribute, profile.get(attribute))
    resident.name = profile.get("name") or before["name"] or ""  # NOT NULL: no evidence keeps the old name
    resident.name_pinyin = name_pinyin(resident.name)[:128]
    community = areas.get(profile.get("community_code"))
    grid = areas.get(profile.get("grid_code"))
    resident.community_id = community[0] if community else None
    # A grid counts only inside her community: a later row that moved her to another community
    # without naming a grid leaves her in none (as the import decides).
    resident.grid_id = grid[0] if grid and grid[1] == resident.community_id else None
    stored = provenance_to_json(provenance)
    stored.update({a: entry for a, (_value, entry) in unsourced.items() if entry is not None})
    resident.provenance = stored
    resident.updated_at = utcnow()

    session.execute(delete(Condition).where(Condition.resident_id == resident_id))
    for code, entry in conditions.items():
        session.add(
            Condition(
                resident_id=resident_id, code=code, display=entry["display"],
                long_prescription=entry["long_prescription"], first_source_record_id=entry["first"][1],
                last_source_record_id=entry["last"][1], first_seen=entry["first"][0], last_seen=entry["last"][0],
            )
        )  # fmt: skip
    after = _current_values(session, resident)
    for attribute in PROFILE_ATTRIBUTES:
        if before.get(attribute) != after.get(attribute):
            old_ref = before_refs.get(attribute)
            new_ref = provenance.get(attribute)
            session.add(
                FactChange(
                    resident_id=resident_id, attribute=attribute,
                    old_value=_text(mask_attribute(attribute, before.get(attribute))),
                    new_value=_text(mask_attribute(attribute, after.get(attribute))),
                    old_source_record_id=old_ref[0] if old_ref else None,
                    new_source_record_id=new_ref.source_record_id if new_ref else None, reason=reason,
                )
            )  # fmt: skip
    session.flush()
    return resident, filled


def _area_ids(session: Session, codes: list[str | None]) -> dict[str | None, tuple[int, int | None]]:
    """code -> (area id, its parent's id)."""
    wanted = [c for c in codes if c]
    if not wanted:
        return {}
    rows = session.execute(select(Area.code, Area.id, Area.parent_id).where(Area.code.in_(wanted)))
    return {code: (id_, parent) for code, id_, parent in rows}


def _release_id_number(session: Session, id_number: str, keep: int) -> None:
    """The ID number is unique: a merged-away holder gives it up before the survivor takes it."""
    holder = session.execute(
        select(Resident).where(Resident.id_number_bidx.in_(pii.lookup_indexes("id_number", id_number)))
    ).scalar_one_or_none()
    if holder is not None and holder.id != keep:
        if holder.status != ResidentStatus.merged and (
            source_records_of(session, holder.id) or "id_number" in unsourced_values(session, holder)
        ):
            raise Conflict(
                "resident.id_number.taken",
                "该身份证号已属于另一位在册居民 (the ID number belongs to another active resident)",
                resident_id=holder.id,
            )
        holder.id_number = None
        session.flush()


def _text(value: Any) -> str | None:
    return None if value is None else str(value)[:200]


# -- merge and unmerge -------------------------------------------------------------------------


def carry_to_survivor(
    session: Session, merge: ResidentMerge, key: str, model: Any, ids: Sequence[int] | None = None
) -> list[int]:
    """For another domain's ``ResidentsMerged`` handler: move its rows (``ids``, by default every
    row of the merged resident) to the survivor, noted as ``merge.moved[key]`` so that
    ``carry_back`` returns them on an unmerge."""
    if ids is None:
        ids = session.scalars(select(model.id).where(model.resident_id == merge.merged_id)).all()
    moved = list(ids)
    _move(session, model, moved, merge.survivor_id)
    merge.moved = {**(merge.moved or {}), key: moved}
    return moved


def carry_back(session: Session, merge: ResidentMerge, key: str, model: Any) -> None:
    """For a ``ResidentsUnmerged`` handler: the rows ``carry_to_survivor`` moved go back."""
    _move(session, model, (merge.moved or {}).get(key) or [], merge.merged_id)


def _move(session: Session, model: Any, ids: Sequence[int], resident_id: int) -> None:
    if ids:
        session.execute(
            update(model)
            .where(model.id.in_(ids))
            .values(resident_id=resident_id)
            .execution_options(synchronize_session="fetch")
        )
    session.flush()


def merge_residents(
    session: Session,
    survivor_id: int,
    merged_id: int,
    *,
    by: str,
    reason: str,
    now: dt.datetime | None = None,
) -> ResidentMerge:
    """Fold ``merged_id`` into ``survivor_id``: its evidence moves, both profiles are rebuilt.
    ``now`` (the merge's moment, which other domains end what it ends at) is the clock's by default."""
    if survivor_id == merged_id:
        raise Invalid("resident.merge.same", "不能将档案与自身合并 (cannot merge a resident with itself)")
    survivor = get_active_resident(session, survivor_id)
    merged = get_active_resident(session, merged_id)
    if survivor.id_number and merged.id_number and survivor.id_number != merged.id_number:
        raise Conflict(
            "resident.merge.id_conflict",
            "两份档案的身份证号不同，不能合并 (the two residents have different ID numbers)",
        )
    record_ids = [r.id for r in source_records_of(session, merged_id)]
    observation_ids = (
        session.execute(select(Observation.id).where(Observation.resident_id == merged_id)).scalars().all()
    )
    session.execute(
        update(SourceRecord).where(SourceRecord.id.in_(record_ids)).values(resident_id=survivor_id)
    )
    session.execute(
        update(Observation).where(Observation.id.in_(observation_ids)).values(resident_id=survivor_id)
    )
    session.execute(
        update(LinkReview)
        .where(LinkReview.status == ReviewStatus.open)
        .where(or_(LinkReview.resident_id == merged_id, LinkReview.candidate_id == merged_id))
        .where(or_(LinkReview.resident_id == survivor_id, LinkReview.candidate_id == survivor_id))
        .values(status=ReviewStatus.same, decided_by=by[:64], decided_at=utcnow())
    )
    # Values of the merged row that no source record stands behind do not move with the records:
    # they fill the survivor's gaps, and the merge notes which, so an unmerge takes them back.
    carried = unsourced_values(session, merged)
    merged.status = ResidentStatus.merged
    merged.merged_into_id = survivor_id
    merged.id_number = None
    merged.needs_review = False
    session.flush()
    merge = ResidentMerge(
        survivor_id=survivor_id, merged_id=merged_id, source_record_ids=record_ids,
        moved={"observation_ids": list(observation_ids)}, reason=reason[:200], merged_by=by[:64],
        merged_at=now or utcnow(),
    )  # fmt: skip
    session.add(merge)
    session.flush()
    events.publish(session, ResidentsMerged(merge))  # other domains move their rows first
    _, filled = _rebuild(session, survivor_id, reason="merge", fill=carried)
    merge.moved = {**(merge.moved or {}), "unsourced_attributes": filled}
    session.execute(delete(Condition).where(Condition.resident_id == merged_id))
    survivor.needs_review = False
    session.flush()
    events.publish(session, ResidentsChanged(frozenset({survivor_id, merged_id}), cause="merge"))
    return merge


def unmerge(session: Session, merge_id: int, *, by: str) -> ResidentMerge:
    """Undo a merge: the moved evidence goes back and both profiles are rebuilt from it."""
    merge = session.get(ResidentMerge, merge_id)
    if merge is None:
        raise NotFound("resident.merge.not_found", "未找到该合并记录 (merge not found)")
    if merge.unmerged_at is not None:
        raise Conflict("resident.merge.already_undone", "该合并已撤销 (this merge was already undone)")
    merged = get_resident(session, merge.merged_id)
    later = session.execute(
        select(ResidentMerge.id).where(
            ResidentMerge.merged_id == merge.survivor_id, ResidentMerge.unmerged_at.is_(None)
        )
    ).first()
    if later is not None:
        raise Conflict(
            "resident.merge.superseded",
            "存活档案已被再次合并，请先撤销后一次合并 (undo the later merge of the survivor first)",
            merge_id=later[0],
        )
    session.execute(
        update(SourceRecord)
        .where(SourceRecord.id.in_(merge.source_record_ids))
        .values(resident_id=merged.id, link_method=LinkMethod.manual)
    )
    session.execute(
        update(Observation)
        .where(Observation.id.in_(merge.moved.get("observation_ids", [])))
        .values(resident_id=merged.id)
    )
    merged.status = ResidentStatus.active
    merged.merged_into_id = None
    merge.unmerged_at = utcnow()
    merge.unmerged_by = by[:64]
    session.flush()
    events.publish(session, ResidentsUnmerged(merge))
    # What the merged row gave without a source record goes back: the row kept it all but its
    # ID number (one resident per number), which the survivor hands back.
    carried = list((merge.moved or {}).get("unsourced_attributes", []))
    given_back = None
    if "id_number" in carried and merged.id_number is None:
        survivor_values = unsourced_values(session, get_resident(session, merge.survivor_id))
        given_back = survivor_values.get("id_number", (None, None))[0]
    # The survivor first, so an ID number that came from the merged records is released.
    survivor = _rebuild(session, merge.survivor_id, reason="unmerge", forget=carried)[0]
    if given_back is not None and survivor.id_number != given_back:
        merged.id_number = given_back
        session.flush()
    rebuild_resident(session, merged.id, reason="unmerge")
    events.publish(session, ResidentsChanged(frozenset({merge.survivor_id, merged.id}), cause="unmerge"))
    return merge


# -- the review queue -------------------------------------------------------------------------


def open_reviews(
    session: Session, limit: int = 50, offset: int = 0, visible: ColumnElement[bool] | None = None
) -> tuple[int, Sequence[LinkReview]]:
    """Open reviews; with ``visible`` (a clause over ``resident``), those whose both residents it selects."""
    stmt = select(LinkReview).where(LinkReview.status == ReviewStatus.open)
    if visible is not None:
        shown = select(Resident.id).where(visible)
        stmt = stmt.where(LinkReview.resident_id.in_(shown), LinkReview.candidate_id.in_(shown))
    total = session.execute(select(func.count()).select_from(stmt.subquery())).scalar_one()
    rows = session.execute(stmt.order_by(LinkReview.score.desc(), LinkReview.id).limit(limit).offset(offset))
    return total, rows.scalars().all()


def decide_review(session: Session, review_id: int, *, same_person: bool, by: str) -> LinkReview:
    """A person decides a possible match: one person (merge) or two (keep both)."""
    review = session.get(LinkReview, review_id)
    if review is None:
        raise NotFound("link_review.not_found", "未找到该待核对记录 (review not found)")
    if review.status != ReviewStatus.open:
        raise Conflict("link_review.decided", "该记录已处理 (this review was already decided)")
    if same_person:
        merge_residents(
            session, review.candidate_id, review.resident_id, by=by, reason=f"link review {review.id}"
        )
        review.status = ReviewStatus.same
    else:
        review.status = ReviewStatus.different
        provisional = get_resident(session, review.resident_id)
        still_open = session.execute(
            select(func.count())
            .select_from(LinkReview)
            .where(
                LinkReview.resident_id == provisional.id,
                LinkReview.status == ReviewStatus.open,
                LinkReview.id != review.id,
            )
        ).scalar_one()
        provisional.needs_review = still_open > 0
    review.decided_by = by[:64]
    review.decided_at = utcnow()
    session.flush()
    return review

"""The registry tables: one row per resident, with the facts that make the profile.

The profile is derived from evidence: every value on ``resident`` names the source record it
came from in ``provenance`` (attribute -> [source_record_id, feed, observed_at]), and the
source records themselves are kept, so any past value can be traced and the profile rebuilt
(merge and unmerge do exactly that). ``fact_change`` logs each time a value was replaced.

ID numbers and phones rest encrypted (``access/pii.py``): the attributes ``id_number`` and
``phone`` read and write plain values, the columns ``*_enc`` hold ciphertext, and the blind
indexes ``*_bidx`` beside them (kept in step when the attribute is set) are what lookups match.
``fact_change`` keeps only masked forms of them; the source records keep them sealed.
"""

from __future__ import annotations

import datetime as dt
import enum
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    Enum,
    Float,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
    event,
)
from sqlalchemy.orm import Mapped, mapped_column

from yiyang.access import pii
from yiyang.db import Base, utcnow
from yiyang.geo.models import LivingArrangement


class Feed(enum.StrEnum):
    health = "health"  # 卫健: basic public health records (WS 365), FHIR bundles
    insurance = "insurance"  # 医保: visits and claims
    civil = "civil"  # 民政: elderly roster
    staff = "staff"  # entered by a user of this system


class ResidentStatus(enum.StrEnum):
    active = "active"
    merged = "merged"  # folded into another resident; see resident_merge


class Resident(Base):
    """一人一档: one row per person, its values chosen from the source records by precedence."""

    __tablename__ = "resident"

    id: Mapped[int] = mapped_column(primary_key=True)
    id_number: Mapped[str | None] = mapped_column(
        "id_number_enc", pii.EncryptedString(pii.RESIDENT_ID_NUMBER)
    )
    id_number_bidx: Mapped[str | None] = mapped_column(String(pii.INDEX_LENGTH))
    name: Mapped[str] = mapped_column(String(64))
    name_pinyin: Mapped[str] = mapped_column(String(128), index=True)
    sex: Mapped[str | None] = mapped_column(String(1))
    # PostgreSQL also indexes linkage's blocks: surname and birth date, pinyin and birth year,
    # pinyin and day, pinyin without a birth date (migration 0016).
    birth_date: Mapped[dt.date | None] = mapped_column(Date, index=True)
    phone: Mapped[str | None] = mapped_column("phone_enc", pii.EncryptedString(pii.RESIDENT_PHONE))
    phone_bidx: Mapped[str | None] = mapped_column(String(pii.INDEX_LENGTH), index=True)
    address: Mapped[str | None] = mapped_column(String(200))
    household_id: Mapped[int | None] = mapped_column(ForeignKey("household.id"), index=True)
    community_id: Mapped[int | None] = mapped_column(ForeignKey("area.id"), index=True)
    grid_id: Mapped[int | None] = mapped_column(ForeignKey("area.id"), index=True)
    insurance_type: Mapped[str | None] = mapped_column(String(32))
    living_arrangement: Mapped[LivingArrangement | None] = mapped_column(
        Enum(LivingArrangement, native_enum=False, length=16)
    )
    dibao: Mapped[bool | None] = mapped_column(Boolean)  # 低保 minimum living allowance
    tekun: Mapped[bool | None] = mapped_column(Boolean)  # 特困 destitute support
    disability_cert_grade: Mapped[int | None] = mapped_column(SmallInteger)  # 残疾证 1-4
    capability_level: Mapped[str | None] = mapped_column(String(16))  # GB/T 42195-2022 level
    # Not indexed: nearly every resident is active, so no query is helped (migration 0015).
    status: Mapped[ResidentStatus] = mapped_column(
        Enum(ResidentStatus, native_enum=False, length=16), default=ResidentStatus.active
    )
    merged_into_id: Mapped[int | None] = mapped_column(ForeignKey("resident.id"))
    needs_review: Mapped[bool] = mapped_column(Boolean, default=False)
    provenance: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    # One resident per ID number, checked on its blind index (the ciphertexts all differ).
    __table_args__ = (Index("uq_resident_id_number_bidx", "id_number_bidx", unique=True),)


@event.listens_for(Resident.id_number, "set")
def _index_id_number(target: Resident, value: str | None, _old: object, _initiator: object) -> None:
    target.id_number_bidx = pii.write_index("id_number", value)


@event.listens_for(Resident.phone, "set")
def _index_phone(target: Resident, value: str | None, _old: object, _initiator: object) -> None:
    target.phone_bidx = pii.write_index("phone", value)


class Condition(Base):
    """A diagnosis (ICD-10) known for a resident, with the first and latest evidence."""

    __tablename__ = "condition"

    id: Mapped[int] = mapped_column(primary_key=True)
    # No foreign keys on the tables only the import runner writes (migration 0012).
    resident_id: Mapped[int] = mapped_column(Integer)
    code: Mapped[str] = mapped_column(String(16))
    display: Mapped[str | None] = mapped_column(String(100))
    long_prescription: Mapped[bool] = mapped_column(Boolean, default=False)  # 长处方
    first_source_record_id: Mapped[int] = mapped_column(Integer)
    last_source_record_id: Mapped[int] = mapped_column(Integer)
    first_seen: Mapped[dt.date] = mapped_column(Date)
    last_seen: Mapped[dt.date] = mapped_column(Date)

    __table_args__ = (Index("uq_condition_resident_code", "resident_id", "code", unique=True),)


class Observation(Base):
    """A measurement from an agency record (sensor telemetry has its own store)."""

    __tablename__ = "observation"

    id: Mapped[int] = mapped_column(primary_key=True)
    resident_id: Mapped[int] = mapped_column(Integer)  # no foreign key: see Condition
    code: Mapped[str] = mapped_column(String(16))  # LOINC; 85354-9 BP panel keeps diastolic in value2
    value: Mapped[float] = mapped_column(Float)
    value2: Mapped[float | None] = mapped_column(Float)
    unit: Mapped[str] = mapped_column(String(16))
    effective_at: Mapped[dt.datetime] = mapped_column()
    source_record_id: Mapped[int] = mapped_column(Integer)

    __table_args__ = (Index("ix_observation_resident_code_time", "resident_id", "code", "effective_at"),)


class FactChange(Base):
    """History: a profile value replaced by a newer or more authoritative one."""

    __tablename__ = "fact_change"

    id: Mapped[int] = mapped_column(primary_key=True)
    resident_id: Mapped[int] = mapped_column(Integer, index=True)  # no foreign key: see Condition
    attribute: Mapped[str] = mapped_column(String(40))
    old_value: Mapped[str | None] = mapped_column(String(200))
    new_value: Mapped[str | None] = mapped_column(String(200))
    old_source_record_id: Mapped[int | None] = mapped_column(Integer)
    new_source_record_id: Mapped[int | None] = mapped_column(Integer)
    reason: Mapped[str] = mapped_column(String(32))  # precedence rule that decided, or merge/unmerge
    changed_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class ResidentMerge(Base):
    """Two residents found to be one person; undone by unmerge, and both kept as history."""

    __tablename__ = "resident_merge"

    id: Mapped[int] = mapped_column(primary_key=True)
    survivor_id: Mapped[int] = mapped_column(ForeignKey("resident.id"), index=True)
    merged_id: Mapped[int] = mapped_column(ForeignKey("resident.id"), index=True)
    source_record_ids: Mapped[list[Any]] = mapped_column(JSON)
    moved: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # condition/observation ids moved
    reason: Mapped[str] = mapped_column(String(200))
    merged_by: Mapped[str] = mapped_column(String(64))
    merged_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    unmerged_by: Mapped[str | None] = mapped_column(String(64))
    unmerged_at: Mapped[dt.datetime | None] = mapped_column()


class ReviewStatus(enum.StrEnum):
    open = "open"
    same = "same"  # confirmed one person: merged
    different = "different"  # confirmed two people


class LinkReview(Base):
    """A possible match the linkage was not sure of, waiting for a person to decide."""

    __tablename__ = "link_review"

    id: Mapped[int] = mapped_column(primary_key=True)
    resident_id: Mapped[int] = mapped_column(ForeignKey("resident.id"), index=True)  # provisional
    candidate_id: Mapped[int] = mapped_column(ForeignKey("resident.id"), index=True)
    source_record_id: Mapped[int] = mapped_column(ForeignKey("source_record.id"))
    score: Mapped[float] = mapped_column(Float)
    comparison: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    status: Mapped[ReviewStatus] = mapped_column(
        Enum(ReviewStatus, native_enum=False, length=16), default=ReviewStatus.open, index=True
    )
    decided_by: Mapped[str | None] = mapped_column(String(64))
    decided_at: Mapped[dt.datetime | None] = mapped_column()
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class LinkMethod(enum.StrEnum):
    id_number = "id_number"  # exact on a valid GB 11643 number
    probabilistic = "probabilistic"  # scored above the link threshold
    new = "new"  # no candidate: a new resident
    review = "review"  # a provisional resident, a possible match waiting in the review queue
    manual = "manual"  # moved by a merge or unmerge


class SourceRecord(Base):
    """One accepted row (or FHIR resource) from an agency, linked to a resident."""

    __tablename__ = "source_record"

    id: Mapped[int] = mapped_column(primary_key=True)
    feed: Mapped[Feed] = mapped_column(Enum(Feed, native_enum=False, length=16))
    source_key: Mapped[str] = mapped_column(String(64))  # the agency's own record id
    resident_id: Mapped[int] = mapped_column(Integer, index=True)  # no foreign key: see Condition
    import_run_id: Mapped[int | None] = mapped_column(Integer)
    line: Mapped[int | None] = mapped_column(Integer)
    observed_at: Mapped[dt.datetime] = mapped_column()
    recorded_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    content_hash: Mapped[str] = mapped_column(String(32))  # keyed: pii.content_digest
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)  # without id_number and phone, sealed below
    id_number: Mapped[str | None] = mapped_column("id_number_enc", pii.EncryptedString(pii.SOURCE_ID_NUMBER))
    phone: Mapped[str | None] = mapped_column("phone_enc", pii.EncryptedString(pii.SOURCE_PHONE))
    link_method: Mapped[LinkMethod] = mapped_column(Enum(LinkMethod, native_enum=False, length=16))
    link_score: Mapped[float | None] = mapped_column(Float)

    __table_args__ = (Index("uq_source_record_feed_key", "feed", "source_key", unique=True),)

    def full_payload(self) -> dict[str, Any]:
        """The record as it arrived: its payload with the sealed ID number and phone put back."""
        return {**self.payload, "id_number": self.id_number, "phone": self.phone}

"""Import runs and the source records they accepted: the evidence behind every profile fact."""

from __future__ import annotations

import datetime as dt
import enum
from typing import Any

from sqlalchemy import JSON, Enum, Float, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from yiyang.db import Base, utcnow


class Feed(enum.StrEnum):
    health = "health"  # 卫健: basic public health records (WS 365), FHIR bundles
    insurance = "insurance"  # 医保: visits and claims
    civil = "civil"  # 民政: elderly roster
    staff = "staff"  # entered by a user of this system


class RunStatus(enum.StrEnum):
    running = "running"
    applied = "applied"
    failed = "failed"  # rolled back whole; nothing from the run was kept


class ImportRun(Base):
    __tablename__ = "import_run"

    id: Mapped[int] = mapped_column(primary_key=True)
    feed: Mapped[Feed] = mapped_column(Enum(Feed, native_enum=False, length=16))
    filename: Mapped[str] = mapped_column(String(200))
    file_sha256: Mapped[str] = mapped_column(String(64), index=True)
    encoding: Mapped[str | None] = mapped_column(String(16))
    status: Mapped[RunStatus] = mapped_column(Enum(RunStatus, native_enum=False, length=16))
    started_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[dt.datetime | None] = mapped_column()
    counts: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    rejections: Mapped[list[Any]] = mapped_column(JSON, default=list)  # first rejections, for the UI


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
    resident_id: Mapped[int] = mapped_column(ForeignKey("resident.id"), index=True)
    import_run_id: Mapped[int | None] = mapped_column(ForeignKey("import_run.id"), index=True)
    line: Mapped[int | None] = mapped_column(Integer)
    observed_at: Mapped[dt.datetime] = mapped_column()
    recorded_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    content_hash: Mapped[str] = mapped_column(String(32))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    link_method: Mapped[LinkMethod] = mapped_column(Enum(LinkMethod, native_enum=False, length=16))
    link_score: Mapped[float | None] = mapped_column(Float)

    __table_args__ = (Index("uq_source_record_feed_key", "feed", "source_key", unique=True),)

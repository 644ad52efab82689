"""Stored assessments (评估记录): one row per completed instrument, scored when it was captured.

The row keeps the answers as entered and the result as the scorer produced it (total, level,
flags, explanation), so a record reads the same later even if a cut-off option changes. A
capability assessment (GB/T 42195-2022) also writes a ``staff`` source record carrying the level,
which is how the registry's ``capability_level`` learns it, with provenance.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, Date, Float, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from yiyang.db import Base, utcnow


class Assessment(Base):
    __tablename__ = "assessment"

    id: Mapped[int] = mapped_column(primary_key=True)
    resident_id: Mapped[int] = mapped_column(ForeignKey("resident.id"), index=True)
    instrument: Mapped[str] = mapped_column(String(32))
    answers: Mapped[dict[str, Any]] = mapped_column(JSON)
    options: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    total: Mapped[float | None] = mapped_column(Float)
    max_total: Mapped[float | None] = mapped_column(Float)
    level: Mapped[str] = mapped_column(String(32))
    level_zh: Mapped[str] = mapped_column(String(64))
    level_en: Mapped[str] = mapped_column(String(100))
    flags: Mapped[list[Any]] = mapped_column(JSON, default=list)  # [{code, zh, en}]
    explanation: Mapped[list[Any]] = mapped_column(JSON, default=list)  # [{zh, en, item?, points?}]
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    assessed_at: Mapped[dt.datetime] = mapped_column()
    assessor: Mapped[str] = mapped_column(String(64))
    recorded_by: Mapped[str] = mapped_column(String(64))
    recorded_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    # When this instrument is next due (capability: 6 months); None where no schedule applies.
    reassess_due_on: Mapped[dt.date | None] = mapped_column(Date)
    # The staff source record that carried a capability level into the registry.
    source_record_id: Mapped[int | None] = mapped_column(ForeignKey("source_record.id"))

    __table_args__ = (
        Index("ix_assessment_resident_instrument_time", "resident_id", "instrument", "assessed_at"),
        Index("ix_assessment_instrument_due", "instrument", "reassess_due_on"),
    )

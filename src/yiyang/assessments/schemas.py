"""What the assessment API reads and returns."""

from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class AssessmentCreate(BaseModel):
    """A completed instrument. A datetime without an offset is read as China time (UTC+8)."""

    model_config = ConfigDict(extra="forbid")

    instrument: str = Field(min_length=1, max_length=32, examples=["gbt42195"])
    answers: dict[str, Any] = Field(
        max_length=200, description="item code -> answer; see GET /api/instruments"
    )
    options: dict[str, int | str] = Field(
        default_factory=dict, max_length=10, description="e.g. high_risk_cutoff for morse"
    )
    assessed_at: dt.datetime
    assessor: str = Field(min_length=1, max_length=64, description="who assessed (评估人)")


class ExplanationRead(BaseModel):
    zh: str
    en: str
    item: str | None = None
    points: int | float | None = None


class FlagRead(BaseModel):
    code: str
    zh: str
    en: str


class AssessmentRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    resident_id: int
    instrument: str
    answers: dict[str, Any]
    options: dict[str, Any]
    total: float | None
    max_total: float | None
    level: str
    level_zh: str
    level_en: str
    flags: list[FlagRead]
    explanation: list[ExplanationRead]
    details: dict[str, Any]
    assessed_at: dt.datetime
    assessor: str
    recorded_by: str
    recorded_at: dt.datetime
    reassess_due_on: dt.date | None
    source_record_id: int | None


class ReassessmentDueRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    resident_id: int
    name: str
    community_id: int | None
    assessment_id: int
    assessed_at: dt.datetime
    level: str
    due_on: dt.date
    status: str = Field(description="overdue | changed | due")
    new_diagnoses: list[str]
    registry_level: str | None


class ReassessmentDuePage(BaseModel):
    total: int
    items: list[ReassessmentDueRead]


class NeverAssessedRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    birth_date: dt.date | None = Field(
        description="only for readers whose roles see the registry field group (docs/access.md)"
    )
    community_id: int | None
    capability_level: str | None


class NeverAssessedPage(BaseModel):
    total: int
    items: list[NeverAssessedRead]

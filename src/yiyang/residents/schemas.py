"""What the registry API reads and returns."""

from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from pydantic_core import PydanticCustomError

from yiyang.deps import MAX_ID
from yiyang.residents.service import CONTROL_CHARACTERS


def search_text(text: str | None) -> str | None:
    """A search text as typed: no control characters. PostgreSQL cannot compare text holding a NUL
    (a 500), and SQLite's LIKE stops at one (so "\\x00" found everyone): refused, a 4xx naming the
    parameter. For ``Query`` parameters: ``Annotated[str | None, Query(...), AfterValidator(search_text)]``."""
    if text is not None and CONTROL_CHARACTERS.search(text):
        raise PydanticCustomError(
            "request.search_text", "搜索内容不能含有控制字符 (search text cannot contain control characters)"
        )
    return text


class ResidentSummary(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    sex: str | None
    # Registry field group: left out (not null) for a reader without it, as the profile leaves it out.
    birth_date: dt.date | None = None
    community_id: int | None
    grid_id: int | None
    household_id: int | None
    needs_review: bool


class ResidentPage(BaseModel):
    total: int
    items: list[ResidentSummary]


class FactRead(BaseModel):
    attribute: str
    value: Any
    source_record_id: int | None
    feed: str | None
    source_key: str | None
    observed_at: dt.datetime | None
    recorded_at: dt.datetime | None


class ConditionRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    code: str
    display: str | None
    long_prescription: bool
    first_seen: dt.date
    last_seen: dt.date
    first_source_record_id: int
    last_source_record_id: int


class ObservationRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    code: str
    value: float
    value2: float | None
    unit: str
    effective_at: dt.datetime
    source_record_id: int


class ResidentProfile(BaseModel):
    id: int
    status: str
    merged_into_id: int | None
    needs_review: bool
    age: int | None
    facts: list[FactRead]
    conditions: list[ConditionRead]
    latest_observations: list[ObservationRead]
    field_groups: list[str] = []  # what the reader's role and the resident's consent let them see


class SourceRecordRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    feed: str
    source_key: str
    import_run_id: int | None
    line: int | None
    observed_at: dt.datetime
    recorded_at: dt.datetime
    link_method: str
    link_score: float | None
    payload: dict[str, Any]


class FactChangeRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    attribute: str
    old_value: str | None
    new_value: str | None
    old_source_record_id: int | None
    new_source_record_id: int | None
    reason: str
    changed_at: dt.datetime


class MergeRequest(BaseModel):
    survivor_id: int = Field(ge=1, le=MAX_ID)
    merged_id: int = Field(ge=1, le=MAX_ID)
    reason: str = Field(min_length=1, max_length=200)


class MergeRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    survivor_id: int
    merged_id: int
    source_record_ids: list[int]
    reason: str
    merged_by: str
    merged_at: dt.datetime
    unmerged_by: str | None
    unmerged_at: dt.datetime | None


class ReviewRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    resident_id: int
    candidate_id: int
    source_record_id: int
    score: float
    comparison: dict[str, Any]
    status: str
    decided_by: str | None
    decided_at: dt.datetime | None


class ReviewPage(BaseModel):
    total: int
    items: list[ReviewRead]


class ReviewDecision(BaseModel):
    same_person: bool

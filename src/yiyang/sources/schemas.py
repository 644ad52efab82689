"""What the import API returns."""

from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import BaseModel, ConfigDict


class ImportRunRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    feed: str
    filename: str
    status: str
    encoding: str | None
    started_at: dt.datetime
    finished_at: dt.datetime | None
    counts: dict[str, Any]


class RejectionRead(BaseModel):
    """One rejected row of the file: where, why, and the community it names (when known)."""

    line: int
    code: str
    message: str
    source_key: str | None = None
    column: str | None = None
    community_code: str | None = None  # absent from runs stored before it was recorded


class ImportRunDetail(ImportRunRead):
    rejections: list[RejectionRead]
    rejections_withheld: int = 0  # rejections about communities outside the reader's area

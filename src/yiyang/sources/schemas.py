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

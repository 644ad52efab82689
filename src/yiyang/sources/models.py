"""Import runs and the source records they accepted: the evidence behind every profile fact."""

from __future__ import annotations

import datetime as dt
import enum
from typing import Any

from sqlalchemy import JSON, Enum, String
from sqlalchemy.orm import Mapped, mapped_column

from yiyang.db import Base, utcnow
from yiyang.residents.models import Feed, LinkMethod, SourceRecord  # noqa: F401 - re-exported


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
